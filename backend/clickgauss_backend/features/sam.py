"""SAM's automatic mask generator as a two-level mask source (coarse = largest, fine = smallest).

The checkpoint is loaded safely and completely before any view is processed: the model is built
without weights, the file read with `torch.load(weights_only=True)` (no pickle code runs) and
loaded with `strict=True`, so a wrong file fails at once with a message saying what it is.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from clickgauss_core.errors import MaskError

from .masks import TwoLevelMasks, file_sha256, resize_ids, two_level_from_masks

# SAM resizes every image to 1024 on its long side; feeding more only costs time.
SAM_INPUT_LONG_SIDE = 1024
PATCH_EMBED_KEY = "image_encoder.patch_embed.proj.weight"


@dataclass(frozen=True)
class SamArchitecture:
    """The image-encoder configuration that distinguishes SAM variants (the rest is shared)."""

    name: str
    embed_dim: int
    depth: int
    num_heads: int
    global_attn_indexes: tuple[int, ...]

    def build(self) -> torch.nn.Module:
        """The model with random weights (segment_anything's own builder, official layout)."""
        from segment_anything.build_sam import _build_sam

        return _build_sam(encoder_embed_dim=self.embed_dim, encoder_depth=self.depth,
                          encoder_num_heads=self.num_heads,
                          encoder_global_attn_indexes=list(self.global_attn_indexes))


# The published checkpoints (segment_anything/build_sam.py).
SAM_ARCHITECTURES = {
    "vit_h": SamArchitecture("vit_h", 1280, 32, 16, (7, 15, 23, 31)),
    "vit_l": SamArchitecture("vit_l", 1024, 24, 16, (5, 11, 17, 23)),
    "vit_b": SamArchitecture("vit_b", 768, 12, 12, (2, 5, 8, 11)),
}


def _encoder_shape(state: dict) -> tuple[int, int]:
    """(embed dim, depth) of the image encoder stored in a SAM state_dict."""
    embed_dim = int(state[PATCH_EMBED_KEY].shape[0])
    blocks = {key.split(".")[2] for key in state if key.startswith("image_encoder.blocks.")}
    return embed_dim, len(blocks)


def describe_checkpoint_architecture(state: dict) -> str:
    """Which SAM variant a state_dict looks like, in words."""
    embed_dim, depth = _encoder_shape(state)
    for arch in SAM_ARCHITECTURES.values():
        if (arch.embed_dim, arch.depth) == (embed_dim, depth):
            return f"a SAM {arch.name} checkpoint"
    return f"a SAM checkpoint of an unknown variant (encoder width {embed_dim}, depth {depth})"


def load_sam_model(checkpoint: str | os.PathLike, architecture: SamArchitecture) -> torch.nn.Module:
    """Build `architecture` and load `checkpoint` into it; every failure is a MaskError naming the file."""
    path = Path(checkpoint)
    if not path.is_file():
        raise MaskError(path, "SAM checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MaskError(path, f"not a PyTorch checkpoint that loads safely (weights only): {reason}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise MaskError(path, "does not hold a model state_dict (a mapping of parameter names to tensors)")
    if PATCH_EMBED_KEY not in state:
        sample = ", ".join(list(state)[:3])
        raise MaskError(path, f"not a Segment Anything checkpoint (no '{PATCH_EMBED_KEY}'; keys start with: {sample})")
    if _encoder_shape(state) != (architecture.embed_dim, architecture.depth):
        raise MaskError(path, f"looks like {describe_checkpoint_architecture(state)}, "
                              f"but model type '{architecture.name}' was asked for")
    model = architecture.build()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise MaskError(path, f"does not match SAM {architecture.name}: "
                              f"{' '.join(line.strip() for line in first[:3])}") from None
    return model.eval()


def _check_device(device: str) -> None:
    """Refuse an unusable device up front, not after the checkpoint has been loaded."""
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise MaskError(None, f"unknown device '{device}' for SAM (use cpu, cuda or cuda:N)") from None
    if parsed.type == "cuda" and (not torch.cuda.is_available() or (parsed.index or 0) >= torch.cuda.device_count()):
        raise MaskError(None, f"device '{device}' is not available here "
                              f"({torch.cuda.device_count()} CUDA device(s)); use device='cpu'")


class SamMaskGenerator:
    """SAM automatic masks per view -> TwoLevelMasks at the training size.

    `model_type` is "vit_h" | "vit_l" | "vit_b" or a `SamArchitecture`. The generator settings
    are segment_anything's (defaults: the peers' values, see docs/method).
    """

    def __init__(self, checkpoint: str | os.PathLike, model_type: str | SamArchitecture = "vit_h",
                 device: str | None = None, points_per_side: int = 32, pred_iou_thresh: float = 0.88,
                 stability_score_thresh: float = 0.95, min_mask_region_area: int = 100,
                 points_per_batch: int = 64, input_long_side: int = SAM_INPUT_LONG_SIDE):
        if isinstance(model_type, str):
            if model_type not in SAM_ARCHITECTURES:
                raise MaskError(None, f"unknown SAM model type '{model_type}' "
                                      f"(choose one of {', '.join(SAM_ARCHITECTURES)})")
            model_type = SAM_ARCHITECTURES[model_type]
        self.architecture = model_type
        self.checkpoint = Path(checkpoint)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        _check_device(self.device)
        self.input_long_side = min(int(input_long_side), SAM_INPUT_LONG_SIDE)
        self.settings = dict(points_per_side=points_per_side, pred_iou_thresh=pred_iou_thresh,
                             stability_score_thresh=stability_score_thresh,
                             min_mask_region_area=min_mask_region_area, points_per_batch=points_per_batch)
        model = load_sam_model(self.checkpoint, self.architecture).to(self.device)
        # The checkpoint's identity goes into the cache key: another file with the same name regenerates.
        self.checkpoint_sha256 = file_sha256(self.checkpoint)

        from segment_anything import SamAutomaticMaskGenerator

        self._generator = SamAutomaticMaskGenerator(model, output_mode="binary_mask", **self.settings)

    def describe(self) -> dict:
        return {"kind": "sam", "model_type": self.architecture.name, "architecture": asdict(self.architecture),
                "checkpoint": str(self.checkpoint.resolve()), "checkpoint_sha256": self.checkpoint_sha256,
                "input_long_side": self.input_long_side, **self.settings}

    def fingerprint(self, view) -> str:
        return file_sha256(self._image_path(view))

    @staticmethod
    def _image_path(view) -> Path:
        path = getattr(view, "image_path", None)
        if not path:
            raise MaskError(None, f"view '{getattr(view, 'name', view)}' has no image file to run SAM on")
        path = Path(path)
        if not path.is_file():
            raise MaskError(path, "image not found (SAM needs the training images)")
        return path

    def _read_image(self, view) -> np.ndarray:
        path = self._image_path(view)
        try:
            with Image.open(path) as image:
                image = image.convert("RGB")
                scale = self.input_long_side / max(image.size)
                if scale < 1.0:
                    image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                                         Image.Resampling.BILINEAR)
                return np.asarray(image, dtype=np.uint8)
        except Exception as exc:
            raise MaskError(path, f"not a readable image ({exc})") from None

    def generate(self, view, size: tuple[int, int]) -> TwoLevelMasks:
        """SAM's masks of one view, as coarse/fine id maps resized (nearest) to `size` = (width, height)."""
        image = self._read_image(view)
        records = self._generator.generate(image)
        levels = two_level_from_masks([r["segmentation"] for r in records], image.shape[:2])
        return TwoLevelMasks(resize_ids(levels.coarse, size), resize_ids(levels.fine, size))
