"""Pure numpy math the add-on needs around Gaussians (no bpy): display colours and recolouring.
(Baking an object transform into the Gaussians for export is `clickgauss_core.transforms`.)
"""

from __future__ import annotations

import numpy as np
from clickgauss_core.gaussians import SH_C0


def srgb_to_linear(srgb: np.ndarray) -> np.ndarray:
    """sRGB-encoded [0, 1] values -> linear (Blender colour attributes are scene-linear)."""
    srgb = np.asarray(srgb, dtype=np.float32)
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4).astype(np.float32)


def sh_dc_from_color(color_srgb) -> np.ndarray:
    """The f_dc_0..2 that make a Gaussian's base colour `color_srgb` (inverse of 0.5 + SH_C0 * f_dc)."""
    return ((np.asarray(color_srgb, dtype=np.float32) - 0.5) / np.float32(SH_C0)).astype(np.float32)
