"""Baking an object transform into the Gaussians themselves (export of a moved object; pure numpy).

An object transform M = T R S is baked as: positions through the full matrix (exact), rotations
as q_object * q_gaussian (Hamilton product, wxyz), normals rotated, log-scales + log(s), and the
view-dependent colour (f_rest, SH bands 1-3) through the rotation of each band
(`sh_rotation`), so the splat looks from every side as it did inside the rotated object. A
Gaussian can only absorb a uniform scale exactly; for a non-uniform S the geometric mean is used
and a warning is returned. Every property keeps its dtype (float64 stays float64).
"""

from __future__ import annotations

import numpy as np

from .colmap import quaternion_to_matrix
from .gaussians import GaussianCloud
from .sh_rotation import rotate_sh_rest

# Relative spread of the three scale factors above which the object scale counts as non-uniform.
UNIFORM_SCALE_TOLERANCE = 1e-4


def quaternion_multiply(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Hamilton product of wxyz quaternions, broadcasting over leading axes."""
    lw, lx, ly, lz = np.moveaxis(np.asarray(left, dtype=np.float64), -1, 0)
    rw, rx, ry, rz = np.moveaxis(np.asarray(right, dtype=np.float64), -1, 0)
    return np.stack([lw * rw - lx * rx - ly * ry - lz * rz,
                     lw * rx + lx * rw + ly * rz - lz * ry,
                     lw * ry - lx * rz + ly * rw + lz * rx,
                     lw * rz + lx * ry - ly * rx + lz * rw], axis=-1)


def _stack64(props: dict[str, np.ndarray], names) -> np.ndarray:
    return np.stack([np.asarray(props[name], dtype=np.float64) for name in names], axis=1)


def _store(props: dict[str, np.ndarray], names, values: np.ndarray, like: dict[str, np.ndarray]) -> None:
    """Columns of `values` back into `props`, each in the dtype the property had."""
    for i, name in enumerate(names):
        props[name] = values[:, i].astype(np.asarray(like[name]).dtype)


def bake_transform(cloud: GaussianCloud, matrix, rotation_wxyz, scale) -> tuple[GaussianCloud, list[str]]:
    """The cloud with the object transform `matrix` (4x4 = T R S, decomposed as `rotation_wxyz`
    and `scale`) applied to every Gaussian; returns (new cloud, warnings for the user)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    rotation_wxyz = np.asarray(rotation_wxyz, dtype=np.float64)
    scale = np.abs(np.asarray(scale, dtype=np.float64))
    warnings: list[str] = []
    original = cloud.properties
    props = dict(original)

    positions = _stack64(original, "xyz") @ matrix[:3, :3].T + matrix[:3, 3]
    _store(props, "xyz", positions, original)

    if scale.max() - scale.min() > UNIFORM_SCALE_TOLERANCE * scale.max():
        factor = float(np.cbrt(np.prod(scale)))
        warnings.append(f"non-uniform object scale {tuple(round(float(s), 4) for s in scale)}: a Gaussian can "
                        f"only be scaled uniformly, so the splat sizes use their geometric mean {factor:.4g} "
                        "(positions are exact, shapes approximate)")
    else:
        factor = float(scale.mean())
    if np.linalg.det(matrix[:3, :3]) < 0:
        warnings.append("mirrored object transform (negative scale): Gaussian orientations cannot be mirrored "
                        "by a rotation and are approximate")
    scale_names = ("scale_0", "scale_1", "scale_2")
    _store(props, scale_names, _stack64(original, scale_names) + np.log(factor), original)

    rotation_names = ("rot_0", "rot_1", "rot_2", "rot_3")
    _store(props, rotation_names, quaternion_multiply(rotation_wxyz, _stack64(original, rotation_names)), original)

    if not np.allclose(np.abs(rotation_wxyz[0]), 1.0, atol=1e-7):
        rotation = quaternion_to_matrix(rotation_wxyz)
        normal_names = ("nx", "ny", "nz")
        if all(name in props for name in normal_names):
            _store(props, normal_names, _stack64(original, normal_names) @ rotation.T, original)
        if cloud.rest_names:
            props.update(rotated_sh_properties(cloud, rotation))
    return GaussianCloud(props, source=cloud.source, comments=list(cloud.comments)), warnings


def rotated_sh_properties(cloud: GaussianCloud, rotation: np.ndarray) -> dict[str, np.ndarray]:
    """The f_rest_* properties of `cloud` rotated by the 3x3 `rotation`, each in its own dtype."""
    names = cloud.rest_names
    per_channel = _stack64(cloud.properties, names).reshape(len(cloud), 3, len(names) // 3).transpose(0, 2, 1)
    rotated = rotate_sh_rest(per_channel, rotation)  # (N, K-1, 3)
    flat = rotated.transpose(0, 2, 1).reshape(len(cloud), -1)  # back to the file's channel-major order
    props: dict[str, np.ndarray] = {}
    _store(props, names, flat, cloud.properties)
    return props
