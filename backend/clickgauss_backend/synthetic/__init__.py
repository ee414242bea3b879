"""The synthetic benchmark scene: objects made of parts, cameras, GT labels and SAM-like masks,
written as a normal 3DGS PLY + COLMAP dataset + mask folder (see `scene.py`)."""

from .sam_like import MaskNoise
from .scene import PRESETS, SyntheticConfig, SyntheticScene, generate_scene, load_synthetic

__all__ = ["MaskNoise", "PRESETS", "SyntheticConfig", "SyntheticScene", "generate_scene", "load_synthetic"]
