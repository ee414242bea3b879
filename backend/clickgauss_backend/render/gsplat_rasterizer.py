"""gsplat's CUDA rasterizer behind our `rasterize()` interface (CUDA tensors only)."""

from __future__ import annotations

import torch

from clickgauss_core.cameras import Camera

from .gaussians import GaussianTensors


def gsplat_available() -> bool:
    try:
        import gsplat  # noqa: F401  (imported for the check only)
    except ImportError:
        return False
    return True


def rasterize_gsplat(gaussians: GaussianTensors, features: torch.Tensor, camera: Camera,
                     background: torch.Tensor | None = None):
    """(H, W, C) features, (H, W) alpha, (H, W) expected depth of the whole `camera` image."""
    from gsplat import rasterization

    if not gaussians.means.is_cuda:
        raise ValueError("the gsplat rasterizer needs CUDA tensors; move the Gaussians with .to('cuda') "
                         "or use rasterizer='torch'")
    device = gaussians.device
    view = torch.as_tensor(camera.world_to_camera, dtype=torch.float32, device=device)[None]
    intrinsics = torch.as_tensor(camera.intrinsics, dtype=torch.float32, device=device)[None]
    backgrounds = None if background is None else background.to(device, torch.float32)[None]
    # gsplat pads channel counts it has no kernel for (24 -> 32) with zeros and crops them again;
    # "RGB+ED" appends the expected depth as one more channel.
    rendered, alpha, _ = rasterization(
        gaussians.means, gaussians.quats, gaussians.scales, gaussians.opacities,
        features.to(torch.float32), view, intrinsics, camera.width, camera.height,
        near_plane=camera.near, far_plane=camera.far, sh_degree=None, backgrounds=backgrounds,
        render_mode="RGB+ED", rasterize_mode="classic",
        camera_model="ortho" if camera.projection == "orthographic" else "pinhole")
    return rendered[0, ..., :-1].to(features.dtype), alpha[0, ..., 0], rendered[0, ..., -1]
