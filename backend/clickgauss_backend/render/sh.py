"""View-dependent colour: the per-Gaussian RGB of 3DGS spherical harmonics seen from a camera
(the INRIA convention: rgb = max(0, 0.5 + sum_k Y_k(d) c_k), d the unit direction from the
camera centre to the Gaussian). Render the result as 3-channel features with `rasterize`."""

from __future__ import annotations

import numpy as np
import torch

from clickgauss_core.cameras import Camera
from clickgauss_core.gaussians import GaussianCloud
from clickgauss_core.sh_rotation import sh_basis


def sh_to_rgb(sh: torch.Tensor, view_dirs: torch.Tensor, degree: int) -> torch.Tensor:
    """(N, 3) colours of SH coefficients `sh` (N, K >= (degree+1)^2, 3) along unit `view_dirs` (N, 3)."""
    count = (degree + 1) ** 2
    if sh.ndim != 3 or sh.shape[1] < count or sh.shape[2] != 3:
        raise ValueError(f"sh must have shape (N, >= {count}, 3) for degree {degree}, got {tuple(sh.shape)}")
    basis = torch.as_tensor(sh_basis(view_dirs.detach().cpu().numpy(), degree), dtype=sh.dtype, device=sh.device)
    return torch.clamp_min(torch.einsum("nk,nkc->nc", basis, sh[:, :count]) + 0.5, 0.0)


def view_colors(cloud: GaussianCloud, camera: Camera) -> torch.Tensor:
    """(N, 3) float32 colours of every Gaussian of `cloud` as `camera` sees them (full SH degree)."""
    positions = cloud.positions.astype(np.float64)
    directions = positions - camera.center
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    sh = np.concatenate([cloud.sh_dc[:, None, :], cloud.sh_rest], axis=1)
    return sh_to_rgb(torch.from_numpy(sh), torch.from_numpy(directions), cloud.sh_degree)
