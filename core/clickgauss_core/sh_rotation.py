"""Real spherical harmonics in the INRIA 3DGS convention, and their rotation (pure numpy).

`sh_basis(dirs, degree)` evaluates the (degree + 1)^2 basis functions exactly as INRIA's
`eval_sh` weights the coefficients (SH_C0..SH_C3, its signs and its order), so a Gaussian's
view-dependent colour is `0.5 + sh_basis(d) @ coefficients` for the unit direction d from the
camera to the Gaussian.

Rotating a Gaussian by R rotates its colour function: the new one, seen along d, is the old one
seen along R^T d. Every band l spans a rotation-invariant space, so that is one (2l+1)x(2l+1)
orthogonal matrix per band, found exactly (to float64 rounding) by least squares on a fixed set
of well-spread directions: Y_l(d_k) D_l = Y_l(R^T d_k) (rows: basis values).
"""

from __future__ import annotations

import numpy as np

from .gaussians import SH_C0

SH_C1 = 0.4886025119029199
SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
SH_C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
         -0.4570457994644658, 1.445305721320277, -0.5900435899266435)
MAX_SH_DEGREE = 3
# Directions the band matrices are fitted on: many more than the 2l+1 <= 7 unknowns per row.
FIT_DIRECTIONS = 64


def sh_basis(dirs: np.ndarray, degree: int) -> np.ndarray:
    """(..., (degree + 1)^2) basis values at unit directions `dirs` (..., 3), INRIA order and signs."""
    if not 0 <= degree <= MAX_SH_DEGREE:
        raise ValueError(f"SH degree must be 0..{MAX_SH_DEGREE}, got {degree}")
    dirs = np.asarray(dirs, dtype=np.float64)
    x, y, z = dirs[..., 0], dirs[..., 1], dirs[..., 2]
    values = [np.full_like(x, SH_C0)]
    if degree >= 1:
        values += [-SH_C1 * y, SH_C1 * z, -SH_C1 * x]
    if degree >= 2:
        xx, yy, zz = x * x, y * y, z * z
        values += [SH_C2[0] * x * y, SH_C2[1] * y * z, SH_C2[2] * (2 * zz - xx - yy),
                   SH_C2[3] * x * z, SH_C2[4] * (xx - yy)]
    if degree >= 3:
        values += [SH_C3[0] * y * (3 * xx - yy), SH_C3[1] * x * y * z, SH_C3[2] * y * (4 * zz - xx - yy),
                   SH_C3[3] * z * (2 * zz - 3 * xx - 3 * yy), SH_C3[4] * x * (4 * zz - xx - yy),
                   SH_C3[5] * z * (xx - yy), SH_C3[6] * x * (xx - 3 * yy)]
    return np.stack(values, axis=-1)


def _fit_directions() -> np.ndarray:
    """A Fibonacci sphere: deterministic, evenly spread, so the fit is well conditioned."""
    k = np.arange(FIT_DIRECTIONS) + 0.5
    z = 1 - 2 * k / FIT_DIRECTIONS
    phi = np.pi * (1 + 5 ** 0.5) * k
    r = np.sqrt(1 - z * z)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def sh_band_rotations(rotation: np.ndarray, degree: int) -> list[np.ndarray]:
    """The (2l+1)x(2l+1) matrices D_l (l = 1..degree) with c_l' = D_l c_l for a rotation matrix R."""
    rotation = np.asarray(rotation, dtype=np.float64).reshape(3, 3)
    dirs = _fit_directions()
    original = sh_basis(dirs, degree)
    turned_back = sh_basis(dirs @ rotation, degree)  # rows: R^T d_k
    bands = []
    for band in range(1, degree + 1):
        columns = slice(band * band, (band + 1) * (band + 1))
        solution, *_ = np.linalg.lstsq(original[:, columns], turned_back[:, columns], rcond=None)
        bands.append(solution)
    return bands


def rotate_sh_rest(sh_rest: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """(N, K-1, 3) higher-order coefficients (bands 1..degree, INRIA order) of Gaussians rotated
    by the 3x3 rotation matrix `rotation`; float64. The DC term (band 0) never changes."""
    sh_rest = np.asarray(sh_rest, dtype=np.float64)
    count = sh_rest.shape[1] + 1
    degree = int(round(np.sqrt(count))) - 1
    if (degree + 1) ** 2 != count or degree > MAX_SH_DEGREE:
        raise ValueError(f"{sh_rest.shape[1]} higher-order SH coefficients per channel: expected 0, 3, 8 or 15")
    rotated = np.empty_like(sh_rest)
    for band, matrix in enumerate(sh_band_rotations(rotation, degree), start=1):
        rows = slice(band * band - 1, (band + 1) * (band + 1) - 1)
        rotated[:, rows] = np.einsum("ij,njc->nic", matrix, sh_rest[:, rows])
    return rotated
