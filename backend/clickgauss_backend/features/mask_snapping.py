"""Masks snapped to the image's colours: a pixel near a segment boundary moves to the nearby
segment that explains its colour clearly better than its own.

Why: a mask generator's boundaries wander between views by a pixel or two (SAM's with the image,
the benchmark's by a smooth random warp). A part two or three pixels wide (a handle, a ring, a
lamp's base) then lies mostly outside its own mask in most views, and its mask is mostly the
sibling's pixels, so no mask-driven loss can tell the two apart. The image still shows the part
crisply. Each segment's colour histogram (from its own, noisy pixels) times the segment's share
of the pixel's neighbourhood is the pixel's evidence for that segment; a pixel changes segment
only when another one explains it `margin` times better and its colour alone is `colour_margin`
times likelier there. The second condition, on histograms mixed with a uniform floor, keeps the
masks as they are where colour says nothing (a part the colour of its sibling, a colour neither
segment has): the smoothed histograms of the first favour large segments and would otherwise
erode thin ones. A second pass uses the histograms of the purified segments. Label 0 (no mask)
is a segment like any other here.

Pure numpy on (H, W) id maps and (H, W, 3) uint8 images; `ColourSnappedMasks` wraps any mask
source so the snapped masks are what `MaskStore` caches.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import maximum_filter, minimum_filter

from clickgauss_core.errors import MaskError
from clickgauss_core.files import file_sha256

from .masks import TwoLevelMasks, view_image_path


@dataclass(frozen=True)
class SnapSettings:
    radius: int = 3              # how far (px) a pixel may look for a better segment
    colour_levels: int = 8       # histogram bins per RGB channel
    prior_count: float = 0.5     # pseudo-count per colour bin, so a segment's unseen colours are not impossible
    margin: float = 1.5          # how much better another segment must explain the pixel
    colour_margin: float = 1.5   # ... and how much likelier its colour must be there on its own
    colour_floor: float = 0.1    # the uniform share mixed into the histograms for `colour_margin`
    passes: int = 2


def _offsets(radius: int, disk: bool) -> list[tuple[int, int]]:
    span = range(-radius, radius + 1)
    return [(dy, dx) for dy in span for dx in span if not disk or dy * dy + dx * dx <= radius * radius]


def snap_ids_to_colours(ids: np.ndarray, image: np.ndarray, settings: SnapSettings = SnapSettings()) -> np.ndarray:
    """`ids` (H, W) with each boundary pixel moved to the segment its colour says (see the module)."""
    if image.shape[:2] != ids.shape or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image {image.shape} does not match the id map {ids.shape}")
    height, width = ids.shape
    radius, levels = settings.radius, settings.colour_levels
    quantised = image.astype(np.int64) * levels // 256
    colour_bin = ((quantised[..., 0] * levels + quantised[..., 1]) * levels + quantised[..., 2]).ravel()
    bins = levels ** 3
    disk = np.zeros((2 * radius + 1,) * 2, dtype=bool)
    for dy, dx in _offsets(radius, disk=True):
        disk[dy + radius, dx + radius] = True
    window, candidates = _offsets(radius, disk=False), _offsets(radius, disk=True)
    result = np.asarray(ids).copy()
    for _ in range(settings.passes):
        labels, compact = np.unique(result, return_inverse=True)
        compact = compact.reshape(height, width)
        counts = np.bincount(compact.ravel() * bins + colour_bin, minlength=len(labels) * bins).reshape(len(labels), bins)
        pixels = counts.sum(axis=1, keepdims=True)
        likelihood = (counts + settings.prior_count) / (pixels + settings.prior_count * bins)
        colour_alone = (1 - settings.colour_floor) * counts / pixels + settings.colour_floor / bins
        # Only pixels with another segment within reach can change.
        band = maximum_filter(compact, footprint=disk, mode="nearest") != minimum_filter(compact, footprint=disk, mode="nearest")
        ys, xs = np.nonzero(band)
        if not len(ys):
            break
        padded = np.pad(compact, radius, mode="edge")
        around = np.stack([padded[ys + radius + dy, xs + radius + dx] for dy, dx in window])  # (window, B)
        pixel_bin = colour_bin[ys * width + xs]

        def evidence(label: np.ndarray) -> np.ndarray:
            return likelihood[label, pixel_bin] * (around == label).mean(axis=0)

        own = compact[ys, xs]
        best_label, best = own, evidence(own) * settings.margin
        own_colour = colour_alone[own, pixel_bin] * settings.colour_margin
        for dy, dx in candidates:
            label = padded[ys + radius + dy, xs + radius + dx]
            score = evidence(label)
            better = (score > best) & (colour_alone[label, pixel_bin] > own_colour)
            best_label, best = np.where(better, label, best_label), np.where(better, score, best)
        compact[ys, xs] = best_label
        result = labels[compact]
    return result


def read_image_at(path: str | Path, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 of the image at `path`, resized (area average) to `size` = (width, height)."""
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            if image.size != tuple(size):
                image = image.resize(tuple(size), Image.Resampling.BOX)
            return np.asarray(image, dtype=np.uint8)
    except Exception as exc:
        raise MaskError(path, f"not a readable image ({exc})") from None


class ColourSnappedMasks:
    """A mask source whose masks are another source's, snapped to the view's image colours."""

    def __init__(self, source, settings: SnapSettings = SnapSettings()):
        self.source = source
        self.settings = settings
        self.views_per_batch = getattr(source, "views_per_batch", 1)

    def describe(self) -> dict:
        return {**self.source.describe(), "snapped_to_colours": asdict(self.settings)}

    @staticmethod
    def _image_path(view) -> Path:
        return view_image_path(view, "snapping masks to colours needs the training images; train with "
                                     "snap_masks_to_colours false to use the masks as given")

    def fingerprint(self, view) -> str:
        return f"{self.source.fingerprint(view)}+{file_sha256(self._image_path(view))}"

    def _snapped(self, view, masks: TwoLevelMasks) -> TwoLevelMasks:
        image = read_image_at(self._image_path(view), masks.size)
        return TwoLevelMasks(snap_ids_to_colours(masks.coarse, image, self.settings),
                             snap_ids_to_colours(masks.fine, image, self.settings))

    def generate_batch(self, views: list, sizes: list[tuple[int, int]]) -> list[TwoLevelMasks]:
        if hasattr(self.source, "generate_batch"):
            results = self.source.generate_batch(views, sizes)
        else:
            results = [self.source.generate(view, size) for view, size in zip(views, sizes)]
        return [self._snapped(view, masks) for view, masks in zip(views, results)]

    def generate(self, view, size: tuple[int, int]) -> TwoLevelMasks:
        return self.generate_batch([view], [size])[0]
