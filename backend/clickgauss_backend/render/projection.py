"""EWA splatting of 3D Gaussians onto a camera's image plane, with gsplat 1.5's conventions.

Each constant and rule below mirrors gsplat's CUDA projection (`ProjectionEWA3DGSFused.cu`,
`persp_proj` / `ortho_proj` in `Utils.cuh`) so that our torch rasterizer and gsplat agree
pixel for pixel: the Jacobian's off-axis clamp at 1.3x the half field of view, the 0.3 px^2
low-pass dilation, the opacity-aware 3-sigma extent and the near/far/off-screen culling.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from clickgauss_core.cameras import Camera
# The constants live in clickgauss_core.click, which mirrors this projection for the add-on's click.
from clickgauss_core.click import ALPHA_THRESHOLD, FOV_CLAMP_MARGIN, LOW_PASS_VARIANCE, MAX_EXTENT_SIGMAS

from .gaussians import GaussianTensors



@dataclass
class ProjectedGaussians:
    """Per-Gaussian 2D footprints for one camera; rows of culled Gaussians are meaningless."""

    means2d: torch.Tensor   # (N, 2) pixel coordinates (pixel centres at +0.5)
    conics: torch.Tensor    # (N, 3) upper triangle (a, b, c) of the inverse 2D covariance
    depths: torch.Tensor    # (N,) camera-space z
    radii: torch.Tensor     # (N, 2) bounding half-sizes in pixels (x, y)
    opacities: torch.Tensor  # (N,)
    visible: torch.Tensor   # (N,) bool: survives near/far, degenerate and off-screen culling


def project_gaussians(gaussians: GaussianTensors, camera: Camera) -> ProjectedGaussians:
    dtype, device = gaussians.means.dtype, gaussians.device
    view = torch.as_tensor(camera.world_to_camera, dtype=dtype, device=device)
    rotation_view, translation_view = view[:3, :3], view[:3, 3]
    means_cam = gaussians.means @ rotation_view.T + translation_view
    x, y, z = means_cam.unbind(-1)
    fx, fy, cx, cy = camera.fx, camera.fy, camera.cx, camera.cy

    # Σ_cam = (R_view R S)(R_view R S)^T, so the 2D covariance is (J R_view R S)(...)^T.
    axes_cam = rotation_view @ gaussians.rotation_scale
    if camera.projection == "perspective":
        # Behind-camera Gaussians are culled below; a safe z keeps their (unused) rows finite.
        safe_z = torch.where(z.abs() > 1e-12, z, torch.ones_like(z))
        inv_z = 1.0 / safe_z
        tan_half_fov_x, tan_half_fov_y = 0.5 * camera.width / fx, 0.5 * camera.height / fy
        lim_x_pos = (camera.width - cx) / fx + FOV_CLAMP_MARGIN * tan_half_fov_x
        lim_x_neg = cx / fx + FOV_CLAMP_MARGIN * tan_half_fov_x
        lim_y_pos = (camera.height - cy) / fy + FOV_CLAMP_MARGIN * tan_half_fov_y
        lim_y_neg = cy / fy + FOV_CLAMP_MARGIN * tan_half_fov_y
        tx = safe_z * torch.clamp(x * inv_z, -lim_x_neg, lim_x_pos)
        ty = safe_z * torch.clamp(y * inv_z, -lim_y_neg, lim_y_pos)
        # Rows of the perspective Jacobian: (fx/z, 0, -fx tx/z^2) and (0, fy/z, -fy ty/z^2).
        row_u = fx * inv_z[:, None] * (axes_cam[:, 0, :] - (tx * inv_z)[:, None] * axes_cam[:, 2, :])
        row_v = fy * inv_z[:, None] * (axes_cam[:, 1, :] - (ty * inv_z)[:, None] * axes_cam[:, 2, :])
        means2d = torch.stack([fx * x * inv_z + cx, fy * y * inv_z + cy], dim=-1)
    elif camera.projection == "orthographic":
        row_u = fx * axes_cam[:, 0, :]
        row_v = fy * axes_cam[:, 1, :]
        means2d = torch.stack([fx * x + cx, fy * y + cy], dim=-1)
    else:
        raise ValueError(f"camera {camera.name!r} has unknown projection {camera.projection!r}")

    cov_xx = (row_u * row_u).sum(-1) + LOW_PASS_VARIANCE
    cov_xy = (row_u * row_v).sum(-1)
    cov_yy = (row_v * row_v).sum(-1) + LOW_PASS_VARIANCE
    det = cov_xx * cov_yy - cov_xy * cov_xy
    safe_det = torch.where(det > 0, det, torch.ones_like(det))
    conics = torch.stack([cov_yy / safe_det, -cov_xy / safe_det, cov_xx / safe_det], dim=-1)

    # Opacity-aware extent: beyond sqrt(2 ln(opacity / threshold)) sigmas alpha < threshold.
    opacities = gaussians.opacities
    strong_enough = opacities >= ALPHA_THRESHOLD
    extent = torch.sqrt(2.0 * torch.log(opacities.clamp_min(ALPHA_THRESHOLD) / ALPHA_THRESHOLD))
    extent = extent.clamp_max(MAX_EXTENT_SIGMAS)
    radii = torch.stack([torch.ceil(extent * cov_xx.clamp_min(0).sqrt()),
                         torch.ceil(extent * cov_yy.clamp_min(0).sqrt())], dim=-1)

    on_screen = ((means2d[:, 0] + radii[:, 0] > 0) & (means2d[:, 0] - radii[:, 0] < camera.width)
                 & (means2d[:, 1] + radii[:, 1] > 0) & (means2d[:, 1] - radii[:, 1] < camera.height))
    visible = ((z >= camera.near) & (z <= camera.far) & (det > 0) & strong_enough & on_screen
               & (radii > 0).any(-1))
    return ProjectedGaussians(means2d=means2d, conics=conics, depths=z, radii=radii, opacities=opacities,
                              visible=visible)
