"""`rasterize()`: render per-Gaussian features through a camera, on our torch rasterizer or gsplat."""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch

from clickgauss_core.cameras import Camera

from .gaussians import GaussianTensors
from .gsplat_rasterizer import gsplat_available, rasterize_gsplat
from .torch_rasterizer import compositing_weights, weighted_sum

RasterizerName = Literal["auto", "torch", "gsplat"]
NO_GRAD_PIXELS_PER_BAND = 1 << 18  # a 512x512 image's worth: W of ~0.1-0.3 GB at 50-100 contributions


class RenderResult(NamedTuple):
    """features (H, W, C) or (P, C); alpha and depth (H, W) or (P,).

    alpha = 1 - final transmittance; depth = expected camera-space z of the composited
    Gaussians (sum_i w_i z_i / alpha, 0 where nothing was hit), like gsplat's "ED" mode.
    """

    features: torch.Tensor
    alpha: torch.Tensor
    depth: torch.Tensor


def resolve_rasterizer(gaussians: GaussianTensors, rasterizer: RasterizerName) -> str:
    if rasterizer == "auto":
        return "gsplat" if gaussians.means.is_cuda and gsplat_available() else "torch"
    if rasterizer not in ("torch", "gsplat"):
        raise ValueError(f"unknown rasterizer {rasterizer!r}: use 'auto', 'torch' or 'gsplat'")
    return rasterizer


def rasterize(gaussians: GaussianTensors, features: torch.Tensor, camera: Camera, rasterizer: RasterizerName = "auto",
              background: torch.Tensor | None = None, pixels: torch.Tensor | None = None,
              gradient_min_transmittance: float = 0.0) -> RenderResult:
    """Alpha-composite `features` (N, C) front to back: F(p) = sum_i f_i alpha_i T_i (+ T background).

    `pixels`: None renders the whole image; a (P, 2) integer tensor of (x, y) renders only those
    pixels (in that order). Differentiable w.r.t. `features`.

    `gradient_min_transmittance` > 0: the gradient reaches f_i only through the pixels that reach
    Gaussian i with a transmittance T_i of at least it (the rendered values are unchanged): a
    Gaussian behind the surface a pixel shows is not that pixel's to move. Our torch rasterizer
    only (gsplat's backward has no such cut): with "auto" a differentiable render then takes it.

    Pixel subsets equal the same pixels of the whole image (torch rasterizer). A cropped camera
    (`camera.cropped`) does too for orthographic cameras; for perspective ones gsplat's
    projection clamps the Jacobian of Gaussians centred beyond 1.3x the half field of view of
    *the given image*, so a small crop (a 1x1 click) differs from the full render by a few
    percent where large off-crop Gaussians reach in. `pixels=` with the full camera is exact.
    The gsplat rasterizer renders pixel subsets through their bounding crop (same caveat).
    """
    _check_inputs(gaussians, features, camera, background, pixels)
    if pixels is not None and pixels.shape[0] == 0:
        empty = features.new_zeros((0,))
        return RenderResult(features.new_zeros((0, features.shape[1])) + features.sum() * 0, empty, empty)
    differentiable = torch.is_grad_enabled() and features.requires_grad
    cut = gradient_min_transmittance if differentiable else 0.0
    chosen = "torch" if cut > 0 and rasterizer == "auto" else resolve_rasterizer(gaussians, rasterizer)
    if chosen == "gsplat" and cut > 0:
        raise ValueError("gradient_min_transmittance needs the torch rasterizer (gsplat's backward has no such cut)")
    # gsplat cannot launch on zero Gaussians; the torch path runs on any device and returns the background.
    if chosen == "gsplat" and len(gaussians) > 0:
        return _rasterize_with_gsplat(gaussians, features, camera, background, pixels)

    whole_image = pixels is None
    if whole_image:
        ys, xs = torch.meshgrid(torch.arange(camera.height, device=gaussians.device),
                                torch.arange(camera.width, device=gaussians.device), indexing="ij")
        pixels = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1)
    pixels = pixels.to(gaussians.device, torch.int64)
    if differentiable:
        # The backward needs W for every pixel at once.
        rendered, alpha, depth = _render_torch(gaussians, features, camera, background, pixels, cut)
    else:
        # Without autograd, bands of pixels bound the memory of W (full-HD views, GFL renders).
        bands = [_render_torch(gaussians, features, camera, background, band)
                 for band in pixels.split(NO_GRAD_PIXELS_PER_BAND)]
        rendered, alpha, depth = (torch.cat(parts) for parts in zip(*bands))
    if whole_image:
        shape = (camera.height, camera.width)
        return RenderResult(rendered.reshape(shape + (-1,)), alpha.reshape(shape), depth.reshape(shape))
    return RenderResult(rendered, alpha, depth)


def _render_torch(gaussians, features, camera, background, pixels, gradient_min_transmittance: float = 0.0):
    weights = compositing_weights(gaussians, camera, pixels)
    backward_weights = weights.reaching(gradient_min_transmittance) if gradient_min_transmittance > 0 else None
    rendered = weighted_sum(weights, features, backward_weights)
    transmittance = weights.transmittance
    if background is not None:
        rendered = rendered + transmittance[:, None].to(rendered.dtype) * background.to(rendered)
    with torch.no_grad():
        depths = _camera_depths(gaussians, camera)
        # sum_i w_i z_i / sum_i w_i: the same as dividing by alpha, without 1 - T's rounding.
        weighted = weights.matrix(depths.dtype) @ torch.stack([depths, torch.ones_like(depths)], dim=1)
        depth = weighted[:, 0] / weighted[:, 1].clamp_min(1e-10)
    return rendered, 1.0 - transmittance, depth


def _camera_depths(gaussians: GaussianTensors, camera: Camera) -> torch.Tensor:
    view = torch.as_tensor(camera.world_to_camera, dtype=gaussians.means.dtype, device=gaussians.device)
    return gaussians.means @ view[2, :3] + view[2, 3]


def _rasterize_with_gsplat(gaussians, features, camera, background, pixels) -> RenderResult:
    if pixels is None:
        return RenderResult(*rasterize_gsplat(gaussians, features, camera, background))
    # Render the bounding window of the requested pixels and pick them out of it.
    pixels = pixels.to(gaussians.device, torch.int64)
    x0, y0 = (int(v) for v in pixels.min(dim=0).values)
    x1, y1 = (int(v) + 1 for v in pixels.max(dim=0).values)
    window = camera.cropped(x0, y0, x1 - x0, y1 - y0)
    rendered, alpha, depth = rasterize_gsplat(gaussians, features, window, background)
    rows, cols = pixels[:, 1] - y0, pixels[:, 0] - x0
    return RenderResult(rendered[rows, cols], alpha[rows, cols], depth[rows, cols])


def _check_inputs(gaussians, features, camera, background, pixels) -> None:
    if features.ndim != 2 or features.shape[0] != len(gaussians) or features.shape[1] == 0:
        raise ValueError(f"features must have shape (N={len(gaussians)}, C>=1), got {tuple(features.shape)}")
    if features.device != gaussians.device:
        raise ValueError(f"features are on {features.device} but the Gaussians on {gaussians.device}")
    if camera.width < 1 or camera.height < 1:
        raise ValueError(f"camera {camera.name!r} has an empty image ({camera.width}x{camera.height})")
    if background is not None and tuple(background.shape) != (features.shape[1],):
        raise ValueError(f"background must have shape ({features.shape[1]},), got {tuple(background.shape)}")
    if pixels is not None:
        if pixels.ndim != 2 or pixels.shape[1] != 2:
            raise ValueError(f"pixels must have shape (P, 2) of (x, y), got {tuple(pixels.shape)}")
        if pixels.dtype.is_floating_point or pixels.dtype == torch.bool:
            raise ValueError(f"pixels must be integer (x, y) coordinates, got dtype {pixels.dtype}")
        outside = ((pixels[:, 0] < 0) | (pixels[:, 0] >= camera.width)
                   | (pixels[:, 1] < 0) | (pixels[:, 1] >= camera.height))
        if bool(outside.any()):
            first = pixels[outside.nonzero()[0, 0]].tolist()
            raise ValueError(f"pixel {first} lies outside the {camera.width}x{camera.height} image "
                             f"({int(outside.sum())} of {pixels.shape[0]} requested pixels do)")
