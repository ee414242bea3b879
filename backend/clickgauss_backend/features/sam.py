"""SAM's automatic mask generator as a two-level mask source (coarse = largest, fine = smallest).

Batched: the image encoder runs on `views_per_batch` views at once (by default 4 on a GPU, 1
on the CPU), then each view's `points_per_side` x `points_per_side` point prompts are decoded
`points_per_batch` at a time (on a CPU this decoding, not the encoder, dominates at the default
32 x 32: see benchmarks/RESULTS.md). `input_size` is the encoder's square input: SAM's native
1024, or less (a multiple of 16) for an encoder and decoder several times cheaper with coarser
masks; the positional embeddings are resized to it (SAM's relative positions interpolate by
themselves).

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
from clickgauss_core.files import file_sha256

from .masks import TwoLevelMasks, resize_ids, two_level_from_masks, view_image_path

# SAM's native input: images are resized to this on their long side and padded to a square.
SAM_INPUT_SIZE = 1024
SAM_PATCH_SIZE = 16
DEFAULT_GPU_VIEWS_PER_BATCH = 4
MIN_INPUT_SIZE = 256  # below it SAM's 14-token attention windows cover most of the image
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


def check_input_size(input_size: int) -> None:
    if input_size % SAM_PATCH_SIZE or not MIN_INPUT_SIZE <= input_size <= SAM_INPUT_SIZE:
        raise MaskError(None, f"SAM input_size {input_size}: use a multiple of {SAM_PATCH_SIZE} "
                              f"from {MIN_INPUT_SIZE} to {SAM_INPUT_SIZE}")


def set_input_size(model: torch.nn.Module, input_size: int) -> None:
    """Make a loaded SAM take `input_size` x `input_size` images: the absolute positional
    embedding is resized (bicubic) to the new token grid, the prompt encoder told the new sizes."""
    check_input_size(input_size)
    encoder, tokens = model.image_encoder, input_size // SAM_PATCH_SIZE
    if encoder.img_size == input_size:
        return
    if encoder.pos_embed is not None:
        grid = encoder.pos_embed.data.permute(0, 3, 1, 2)
        resized = torch.nn.functional.interpolate(grid, size=(tokens, tokens), mode="bicubic", align_corners=False)
        encoder.pos_embed = torch.nn.Parameter(resized.permute(0, 2, 3, 1).contiguous())
    encoder.img_size = input_size
    model.prompt_encoder.image_embedding_size = (tokens, tokens)
    model.prompt_encoder.input_image_size = (input_size, input_size)
    model.prompt_encoder.mask_input_size = (4 * tokens, 4 * tokens)


def _batched_predictor(model: torch.nn.Module):
    """A SamPredictor whose `set_image` can take image features computed beforehand for a batch
    of views (`queue_features`), so the automatic generator skips its own one-image encoder run."""
    from segment_anything import SamPredictor

    class BatchedPredictor(SamPredictor):
        queued: torch.Tensor | None = None

        def queue_features(self, features: torch.Tensor) -> None:
            self.queued = features

        def set_image(self, image: np.ndarray, image_format: str = "RGB") -> None:
            if self.queued is None:
                return super().set_image(image, image_format)
            # What set_torch_image records, with the features already computed.
            self.reset_image()
            self.original_size = image.shape[:2]
            self.input_size = tuple(self.transform.get_preprocess_shape(*image.shape[:2], self.transform.target_length))
            self.features, self.queued = self.queued, None
            self.is_image_set = True

    return BatchedPredictor(model)


class SamMaskGenerator:
    """SAM automatic masks per view -> TwoLevelMasks at the training size.

    `model_type` is "vit_h" | "vit_l" | "vit_b" or a `SamArchitecture`. The generator settings
    are segment_anything's (defaults: the peers' values, see docs/method); `input_size` and
    `views_per_batch` are ours (module docstring).
    """

    def __init__(self, checkpoint: str | os.PathLike, model_type: str | SamArchitecture = "vit_h",
                 device: str | None = None, points_per_side: int = 32, pred_iou_thresh: float = 0.88,
                 stability_score_thresh: float = 0.95, min_mask_region_area: int = 100,
                 points_per_batch: int = 64, input_size: int = SAM_INPUT_SIZE, views_per_batch: int = 0):
        if isinstance(model_type, str):
            if model_type not in SAM_ARCHITECTURES:
                raise MaskError(None, f"unknown SAM model type '{model_type}' "
                                      f"(choose one of {', '.join(SAM_ARCHITECTURES)})")
            model_type = SAM_ARCHITECTURES[model_type]
        self.architecture = model_type
        self.checkpoint = Path(checkpoint)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        _check_device(self.device)
        self.input_size = int(input_size)
        check_input_size(self.input_size)  # before the (large) checkpoint is read
        # 0 = auto: 4 views at once on a GPU; one on the CPU, where a batch is no faster and a
        # vit_h batch of 4 at 1024 px needs ~10 GB for its global attention alone.
        auto_batch = DEFAULT_GPU_VIEWS_PER_BATCH if torch.device(self.device).type == "cuda" else 1
        self.views_per_batch = int(views_per_batch) if views_per_batch > 0 else auto_batch
        self.settings = dict(points_per_side=points_per_side, pred_iou_thresh=pred_iou_thresh,
                             stability_score_thresh=stability_score_thresh,
                             min_mask_region_area=min_mask_region_area, points_per_batch=points_per_batch)
        model = load_sam_model(self.checkpoint, self.architecture)
        set_input_size(model, self.input_size)
        self.model = model.to(self.device)
        # The checkpoint's identity goes into the cache key: another file with the same name regenerates.
        self.checkpoint_sha256 = file_sha256(self.checkpoint)

        from segment_anything import SamAutomaticMaskGenerator

        self._generator = SamAutomaticMaskGenerator(self.model, output_mode="binary_mask", **self.settings)
        self._predictor = self._generator.predictor = _batched_predictor(self.model)

    def describe(self) -> dict:
        # views_per_batch changes the speed, not the masks: it stays out of the cache key.
        return {"kind": "sam", "model_type": self.architecture.name, "architecture": asdict(self.architecture),
                "checkpoint": str(self.checkpoint.resolve()), "checkpoint_sha256": self.checkpoint_sha256,
                "input_size": self.input_size, **self.settings}

    def fingerprint(self, view) -> str:
        return file_sha256(self._image_path(view))

    @staticmethod
    def _image_path(view) -> Path:
        return view_image_path(view, "SAM needs the training images")

    def _read_image(self, view) -> np.ndarray:
        path = self._image_path(view)
        try:
            with Image.open(path) as image:
                image = image.convert("RGB")
                # SAM resizes to input_size on the long side: a larger image only costs time.
                scale = self.input_size / max(image.size)
                if scale < 1.0:
                    image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                                         Image.Resampling.BILINEAR)
                return np.asarray(image, dtype=np.uint8)
        except Exception as exc:
            raise MaskError(path, f"not a readable image ({exc})") from None

    @torch.inference_mode()
    def _encode(self, images: list[np.ndarray]) -> torch.Tensor:
        """The image encoder's features of several images in one batch (B, 256, S/16, S/16)."""
        batch = []
        for image in images:
            resized = self._predictor.transform.apply_image(image)
            pixels = torch.as_tensor(resized, device=self.device).permute(2, 0, 1)[None].float()
            batch.append(self.model.preprocess(pixels))  # normalised, padded to the square input
        return self.model.image_encoder(torch.cat(batch))

    def generate_batch(self, views: list, sizes: list[tuple[int, int]]) -> list[TwoLevelMasks]:
        """SAM's masks of several views (their encoder run batched), each resized (nearest) to its
        size = (width, height)."""
        results = []
        for start in range(0, len(views), self.views_per_batch):
            images = [self._read_image(view) for view in views[start:start + self.views_per_batch]]
            features = self._encode(images)
            for index, image in enumerate(images):
                self._predictor.queue_features(features[index:index + 1])
                records = self._generator.generate(image)
                levels = two_level_from_masks([r["segmentation"] for r in records], image.shape[:2])
                width_height = sizes[start + index]
                results.append(TwoLevelMasks(resize_ids(levels.coarse, width_height),
                                             resize_ids(levels.fine, width_height)))
        return results

    def generate(self, view, size: tuple[int, int]) -> TwoLevelMasks:
        """SAM's masks of one view, as coarse/fine id maps resized (nearest) to `size` = (width, height)."""
        return self.generate_batch([view], [size])[0]
