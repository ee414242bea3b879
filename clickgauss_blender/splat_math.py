"""Pure numpy math the add-on needs around Gaussians (no bpy): display colours, recolouring,
and baking an object transform into the Gaussians themselves for export.

An object transform M = T R S is baked as: positions through the full matrix (exact),
rotations as q_object * q_gaussian (Hamilton product, wxyz), log-scales + log(s). A Gaussian can
only absorb a uniform scale exactly; for a non-uniform S the geometric mean is used and a warning
is returned. View-dependent colour (f_rest) is not rotated (SH rotation is not implemented), which
is also reported.
"""

from __future__ import annotations

import numpy as np
from clickgauss_core.gaussians import SH_C0, GaussianCloud

# Relative spread of the three scale factors above which the object scale counts as non-uniform.
UNIFORM_SCALE_TOLERANCE = 1e-4


def srgb_to_linear(srgb: np.ndarray) -> np.ndarray:
    """sRGB-encoded [0, 1] values -> linear (Blender colour attributes are scene-linear)."""
    srgb = np.asarray(srgb, dtype=np.float32)
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4).astype(np.float32)


def sh_dc_from_color(color_srgb) -> np.ndarray:
    """The f_dc_0..2 that make a Gaussian's base colour `color_srgb` (inverse of 0.5 + SH_C0 * f_dc)."""
    return ((np.asarray(color_srgb, dtype=np.float32) - 0.5) / np.float32(SH_C0)).astype(np.float32)


def quaternion_multiply(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Hamilton product of wxyz quaternions, broadcasting over leading axes."""
    lw, lx, ly, lz = np.moveaxis(np.asarray(left, dtype=np.float64), -1, 0)
    rw, rx, ry, rz = np.moveaxis(np.asarray(right, dtype=np.float64), -1, 0)
    return np.stack([lw * rw - lx * rx - ly * ry - lz * rz,
                     lw * rx + lx * rw + ly * rz - lz * ry,
                     lw * ry - lx * rz + ly * rw + lz * rx,
                     lw * rz + lx * ry - ly * rx + lz * rw], axis=-1)


def quaternion_to_matrix(quaternion_wxyz) -> np.ndarray:
    """3x3 rotation matrix of a unit wxyz quaternion."""
    w, x, y, z = np.asarray(quaternion_wxyz, dtype=np.float64) / np.linalg.norm(quaternion_wxyz)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def bake_transform(cloud: GaussianCloud, matrix, rotation_wxyz, scale) -> tuple[GaussianCloud, list[str]]:
    """The cloud with the object transform `matrix` (4x4 = T R S, decomposed as `rotation_wxyz`
    and `scale`) applied to every Gaussian; returns (new cloud, warnings for the user)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    rotation_wxyz = np.asarray(rotation_wxyz, dtype=np.float64)
    scale = np.abs(np.asarray(scale, dtype=np.float64))
    warnings: list[str] = []
    props = dict(cloud.properties)

    positions = cloud.positions.astype(np.float64) @ matrix[:3, :3].T + matrix[:3, 3]
    for i, axis in enumerate("xyz"):
        props[axis] = positions[:, i].astype(np.float32)

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
    log_factor = np.float32(np.log(factor))
    for i in range(3):
        props[f"scale_{i}"] = (np.asarray(cloud.properties[f"scale_{i}"], dtype=np.float32) + log_factor)

    rotated = quaternion_multiply(rotation_wxyz, cloud.rotations_raw.astype(np.float64))
    for i in range(4):
        props[f"rot_{i}"] = rotated[:, i].astype(np.float32)

    is_rotated = not np.allclose(np.abs(rotation_wxyz[0]), 1.0, atol=1e-7)
    if is_rotated and all(n in props for n in ("nx", "ny", "nz")):
        normals = np.stack([props[n] for n in ("nx", "ny", "nz")], axis=1).astype(np.float64)
        normals = normals @ quaternion_to_matrix(rotation_wxyz).T
        for i, name in enumerate(("nx", "ny", "nz")):
            props[name] = normals[:, i].astype(np.float32)
    if is_rotated and cloud.rest_names and any(np.any(props[n]) for n in cloud.rest_names):
        warnings.append(f"the object is rotated: view-dependent colour (SH degree {cloud.sh_degree}) is not "
                        "rotated with it, so reflections/sheen may look different from some angles")
    return GaussianCloud(props, source=cloud.source, comments=list(cloud.comments)), warnings
