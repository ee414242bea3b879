"""Pure numpy math for drawing each Gaussian as an oriented quad (no bpy): the quad lies in the
plane of the Gaussian's two largest axes, reaches as far as the Gaussian is still visible
(opacity * exp(-r^2 / 2) >= 1/255, the 3DGS rasterizers' cut-off), and the display material
fades it with exp(-r^2 / 2) * opacity. The third (smallest) axis is dropped: a flat Gaussian is
drawn exactly, a round one as the disc through its middle.
"""

from __future__ import annotations

import numpy as np

MIN_ALPHA = 1.0 / 255.0  # 3DGS skips a Gaussian's contribution below this alpha
MAX_ALPHA = 0.999        # and clamps it here (the backend rasterizer's and gsplat's value)


def quaternion_matrices(wxyz: np.ndarray) -> np.ndarray:
    """(N, 3, 3) rotation matrices of unit wxyz quaternions (columns: the Gaussian's local axes)."""
    w, x, y, z = (np.asarray(wxyz, dtype=np.float64)[:, i] for i in range(4))
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], axis=1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], axis=1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], axis=1),
    ], axis=1)


def visible_extent(opacities: np.ndarray) -> np.ndarray:
    """How far out (in standard deviations) a Gaussian of this opacity stays above MIN_ALPHA:
    sqrt(2 ln(opacity / MIN_ALPHA)); 0 for Gaussians that never reach it."""
    ratio = np.clip(np.minimum(np.asarray(opacities, dtype=np.float64), MAX_ALPHA) / MIN_ALPHA, 1.0, None)
    return np.sqrt(2.0 * np.log(ratio))


def quad_frames(rotations_wxyz: np.ndarray, scales: np.ndarray, opacities: np.ndarray):
    """Per Gaussian: (u (N, 3), v (N, 3), extent (N,)). The quad centre +- u +- v covers the
    Gaussian out to `extent` standard deviations along its largest (u) and second (v) axis; at
    the quad's point centre + a u + b v the Gaussian is at r = extent * |(a, b)| sigma."""
    matrices = quaternion_matrices(rotations_wxyz)
    scales = np.asarray(scales, dtype=np.float64)
    order = np.argsort(-scales, axis=1, kind="stable")  # largest axis first
    rows = np.arange(len(scales))
    extent = visible_extent(opacities)
    u = matrices[rows, :, order[:, 0]] * (scales[rows, order[:, 0]] * extent)[:, None]
    v = matrices[rows, :, order[:, 1]] * (scales[rows, order[:, 1]] * extent)[:, None]
    return u.astype(np.float32), v.astype(np.float32), extent.astype(np.float32)
