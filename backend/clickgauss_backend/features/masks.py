"""Two-level (coarse / fine) segment-id maps per training view, and where they come from.

A mask source turns one view into `TwoLevelMasks`: two int32 (H, W) id maps, 0 = no mask. Sources:
- `PrecomputedMasks(folder)`: `<image stem>_coarse.png` / `_fine.png` (16-bit PNG) or `.npy`.
- `SamMaskGenerator(checkpoint, ...)` (in `sam.py`, imported only when SAM is used): SAM's automatic mask
  generator; per pixel the coarse id is the largest covering mask, the fine id the smallest.

`MaskStore.build(source, views, size_of_view, cache_dir)` runs a source over every view once and
caches the result on disk (keyed by the source's input content, its settings and the size), so a
second build is instant; `load(i)` then streams one view from disk through a small LRU, so the
trainer never holds every view's masks in memory (SAGA's preloaded SAM masks run out of GPU memory).

A source is any object with
    describe() -> dict                       # JSON settings; part of the cache key and the metadata
    fingerprint(view) -> str                 # hash of the files it reads for this view
    generate(view, size) -> TwoLevelMasks    # size = (width, height) of the training image
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np
from PIL import Image

from clickgauss_core.confinement import check_confined
from clickgauss_core.errors import MaskError
from clickgauss_core.files import file_sha256
from clickgauss_core.protocol import COARSE, FINE, LEVELS

MASK_SUFFIXES = (".png", ".npy")
# Bump when the cache file layout or the meaning of cached masks changes: old entries are ignored.
CACHE_FORMAT_VERSION = 1
# A mask of another aspect ratio than its image belongs to another image (or a crop): refuse it.
ASPECT_TOLERANCE = 0.02


@dataclass(frozen=True)
class TwoLevelMasks:
    """Segment ids per pixel at both levels; int32 (H, W); 0 = no mask covers the pixel."""

    coarse: np.ndarray
    fine: np.ndarray

    def __post_init__(self):
        if self.coarse.shape != self.fine.shape or self.coarse.ndim != 2:
            raise ValueError(f"coarse {self.coarse.shape} and fine {self.fine.shape} must be equal (H, W) maps")

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return int(self.coarse.shape[1]), int(self.coarse.shape[0])

    def level(self, name: str) -> np.ndarray:
        if name not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, not {name!r}")
        return self.coarse if name == COARSE else self.fine


class MaskSource(Protocol):
    """A source may also offer `generate_batch(views, sizes)` and `views_per_batch` (SAM does)."""
    def describe(self) -> dict: ...
    def fingerprint(self, view) -> str: ...
    def generate(self, view, size: tuple[int, int]) -> TwoLevelMasks: ...


# -- pure mask logic -----------------------------------------------------------------------------

def two_level_from_masks(masks: Sequence[np.ndarray], shape: tuple[int, int]) -> TwoLevelMasks:
    """Per pixel: coarse id = the LARGEST covering mask, fine id = the SMALLEST (Click-Gaussian).

    `masks` are boolean (H, W) arrays (SAM's automatic masks, or simulated ones); mask k gets id
    k + 1 at both levels. Ties in area keep the earlier mask.
    """
    coarse = np.zeros(shape, dtype=np.int32)
    fine = np.zeros(shape, dtype=np.int32)
    areas = np.array([int(np.count_nonzero(m)) for m in masks], dtype=np.int64)
    # Paint so that the wanted mask is painted last: ascending area for coarse, descending for fine.
    for k in np.argsort(areas, kind="stable"):
        coarse[masks[k]] = k + 1
    for k in np.argsort(-areas, kind="stable"):
        fine[masks[k]] = k + 1
    return TwoLevelMasks(coarse, fine)


def resize_ids(ids: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an id map to (width, height); ids are never blended."""
    width, height = size
    if ids.shape == (height, width):
        return ids.astype(np.int32, copy=False)
    image = Image.fromarray(ids.astype(np.int32))  # mode "I"
    return np.asarray(image.resize((width, height), Image.Resampling.NEAREST), dtype=np.int32)


def write_mask_png(path: str | os.PathLike, ids: np.ndarray) -> None:
    """Write an id map as a 16-bit greyscale PNG (ids 0..65535)."""
    ids = np.asarray(ids)
    if ids.size and (ids.min() < 0 or ids.max() > 65535):
        raise ValueError(f"{os.fspath(path)}: ids must be in 0..65535 for a 16-bit PNG")
    Image.fromarray(ids.astype(np.uint16)).save(path)


def read_mask_file(path: str | os.PathLike) -> np.ndarray:
    """A single-channel id map from a 8/16-bit PNG or an integer .npy, as int32 (H, W)."""
    path = Path(path)
    if not path.is_file():
        raise MaskError(path, "mask file not found")
    if path.suffix.lower() == ".npy":
        try:
            ids = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise MaskError(path, f"not a readable .npy array ({exc})") from None
        if ids.ndim != 2:
            raise MaskError(path, f"expected a 2-D (H, W) id map, got shape {ids.shape}")
        if not (np.issubdtype(ids.dtype, np.integer) or ids.dtype == np.bool_):
            raise MaskError(path, f"expected integer segment ids, got dtype {ids.dtype}")
    else:
        try:
            with Image.open(path) as image:
                mode = image.mode
                if mode not in ("1", "L", "P", "I", "I;16", "I;16L", "I;16B"):
                    raise MaskError(path, f"is a {mode} image; expected a single-channel 8- or 16-bit id map")
                ids = np.asarray(image)
        except MaskError:
            raise
        except Exception as exc:
            raise MaskError(path, f"not a readable image ({exc})") from None
    if ids.size == 0:
        raise MaskError(path, "empty mask")
    if ids.min() < 0:
        raise MaskError(path, "negative segment ids (0 = no mask, ids are >= 1)")
    if ids.max() > np.iinfo(np.int32).max:
        raise MaskError(path, "segment ids do not fit in int32")
    return ids.astype(np.int32)


def view_image_path(view, purpose: str) -> Path:
    """The view's image file, or a `MaskError` that names the view or the missing file and `purpose`
    (why the image is needed, and how to do without it)."""
    path = getattr(view, "image_path", None)
    if not path:
        raise MaskError(None, f"view '{getattr(view, 'name', view)}' has no image file ({purpose})")
    path = Path(path)
    if not path.is_file():
        raise MaskError(path, f"image not found ({purpose})")
    return path


def _view_stem(view) -> str:
    """The image file name without extension: what mask files and caches are named after."""
    image_path = getattr(view, "image_path", None)
    return Path(image_path if image_path else view.name).stem


def _view_label(view) -> str:
    return str(getattr(view, "name", None) or getattr(view, "image_path", None) or view)


# -- sources -------------------------------------------------------------------------------------

class PrecomputedMasks:
    """Masks prepared elsewhere: `<folder>/<image stem>_coarse.(png|npy)` and `_fine.(png|npy)`.

    Read at their own resolution and resized (nearest) to the training size; they must have the
    image's aspect ratio.
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise MaskError(self.folder, "mask folder not found")

    def describe(self) -> dict:
        return {"kind": "precomputed", "folder": str(self.folder.resolve())}

    def files_for(self, view) -> dict[str, Path]:
        """The coarse and fine file of a view (PNG preferred over .npy when both exist)."""
        stem = _view_stem(view)
        files = {}
        for level in LEVELS:
            candidates = [self.folder / f"{stem}_{level}{suffix}" for suffix in MASK_SUFFIXES]
            found = [c for c in candidates if c.is_file()]
            if not found:
                raise MaskError(candidates[0], f"missing {level} mask for view '{_view_label(view)}' "
                                               f"(expected {stem}_{level}.png or {stem}_{level}.npy)")
            check_confined(found[0], f"{level} mask of view '{_view_label(view)}'")
            files[level] = found[0]
        return files

    def fingerprint(self, view) -> str:
        digest = hashlib.sha256()
        for level, path in self.files_for(view).items():
            digest.update(f"{level}:{path.name}:{file_sha256(path)};".encode())
        return digest.hexdigest()

    def generate(self, view, size: tuple[int, int]) -> TwoLevelMasks:
        files = self.files_for(view)
        maps = {level: read_mask_file(path) for level, path in files.items()}
        if maps[COARSE].shape != maps[FINE].shape:
            raise MaskError(files[FINE], f"shape {maps[FINE].shape} differs from the coarse mask "
                                           f"{files[COARSE].name} {maps[COARSE].shape}")
        height, width = maps[COARSE].shape
        want_width, want_height = size
        if abs((width / height) / (want_width / want_height) - 1.0) > ASPECT_TOLERANCE:
            raise MaskError(files[COARSE], f"mask is {width}x{height} but view '{_view_label(view)}' is "
                                             f"{want_width}x{want_height} (another aspect ratio: "
                                             "masks of another image?)")
        return TwoLevelMasks(resize_ids(maps[COARSE], size), resize_ids(maps[FINE], size))


# -- the on-disk cache ---------------------------------------------------------------------------

def _cache_key(settings: dict, content: str, size: tuple[int, int]) -> str:
    blob = json.dumps({"format": CACHE_FORMAT_VERSION, "source": settings, "content": content,
                       "size": list(size)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _save_cached(path: Path, masks: TwoLevelMasks) -> None:
    largest = max(int(masks.coarse.max(initial=0)), int(masks.fine.max(initial=0)))
    dtype = np.uint16 if largest <= np.iinfo(np.uint16).max else np.int32
    # Write then rename, so a killed job never leaves a half-written entry that looks valid.
    partial = path.with_name(f".{path.stem}.{os.getpid()}.partial.npz")
    np.savez_compressed(partial, coarse=masks.coarse.astype(dtype), fine=masks.fine.astype(dtype))
    os.replace(partial, path)


def _load_cached(path: Path) -> TwoLevelMasks:
    try:
        with np.load(path, allow_pickle=False) as data:
            coarse, fine = data[COARSE].astype(np.int32), data[FINE].astype(np.int32)
    except Exception as exc:
        raise MaskError(path, f"unreadable mask cache entry ({exc}); delete it to regenerate") from None
    coarse.setflags(write=False)  # shared through the LRU: callers must not edit it in place
    fine.setflags(write=False)
    return TwoLevelMasks(coarse, fine)


class MaskStore:
    """Every view's two-level masks, cached on disk; `load(i)` reads one view (LRU in RAM)."""

    def __init__(self, settings: dict, view_names: list[str], sizes: list[tuple[int, int]],
                 files: list[Path], stats: dict, memory_cache_size: int = 8):
        self.settings = settings
        self.view_names = view_names
        self.sizes = sizes
        self.files = files
        self.stats = stats
        self._load = functools.lru_cache(maxsize=memory_cache_size)(self._read)

    @classmethod
    def build(cls, source: MaskSource, views: Sequence, size_of_view: Callable[[object], tuple[int, int]],
              cache_dir: str | os.PathLike, progress: Callable[[int, int], None] | None = None,
              memory_cache_size: int = 8) -> "MaskStore":
        """Generate (or find in `cache_dir`) the masks of every view at `size_of_view(view)`.

        `progress(done, total)` is called after each view. Cache entries are keyed by the source's
        input content (`fingerprint`), its settings (`describe`) and the size.
        """
        cache_dir = Path(cache_dir)
        cache_dir.mkdir(parents=True, exist_ok=True)
        settings = source.describe()
        names, sizes, files = [], [], []
        for view in views:
            width, height = (int(v) for v in size_of_view(view))
            names.append(_view_label(view))
            sizes.append((width, height))
            files.append(cache_dir / f"{_cache_key(settings, source.fingerprint(view), (width, height))}.npz")
        missing = [index for index, path in enumerate(files) if not path.is_file()]
        done = len(files) - len(missing)
        if progress is not None and done:
            progress(done, len(views))
        # A source that batches views (SAM's encoder) gets them `views_per_batch` at a time.
        batch = getattr(source, "views_per_batch", 1) if hasattr(source, "generate_batch") else 1
        generated, seconds = 0, 0.0
        for start in range(0, len(missing), batch):
            chunk = missing[start:start + batch]
            begin = time.perf_counter()
            if hasattr(source, "generate_batch"):
                results = source.generate_batch([views[i] for i in chunk], [sizes[i] for i in chunk])
            else:
                results = [source.generate(views[chunk[0]], sizes[chunk[0]])]
            seconds += time.perf_counter() - begin
            for index, masks in zip(chunk, results):
                if masks.size != sizes[index]:
                    raise MaskError(None, f"mask source {settings.get('kind')} returned {masks.size} for view "
                                          f"'{names[index]}' instead of {sizes[index]}")
                _save_cached(files[index], masks)
                generated += 1
                done += 1
                if progress is not None:
                    progress(done, len(views))
        stats = {"views": len(files), "generated": generated, "cached": len(files) - generated,
                 "generation_seconds": seconds,
                 "seconds_per_generated_view": seconds / generated if generated else None}
        return cls(settings, names, sizes, files, stats, memory_cache_size)

    def __len__(self) -> int:
        return len(self.files)

    def load(self, view_index: int) -> TwoLevelMasks:
        """The masks of view `view_index` (read-only arrays)."""
        return self._load(int(view_index))

    def _read(self, view_index: int) -> TwoLevelMasks:
        return _load_cached(self.files[view_index])

    def describe(self) -> dict:
        """The mask source and its settings, for the feature field's metadata."""
        return {"source": self.settings, "num_views": len(self.files),
                "sizes": sorted({f"{w}x{h}" for w, h in self.sizes})}
