"""Rendering per-Gaussian features: `rasterize(gaussians, features, camera, rasterizer="auto", pixels=None)`.

`rasterizer="torch"` is our pure-torch tile rasterizer (CPU and GPU, the reference); `"gsplat"`
is gsplat's CUDA rasterizer; `"auto"` picks gsplat for CUDA tensors when it imports.
"""

from .gaussians import GaussianTensors
from .rasterizer import RenderResult, rasterize

__all__ = ["GaussianTensors", "RenderResult", "rasterize"]
