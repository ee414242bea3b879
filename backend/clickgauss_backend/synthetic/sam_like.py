"""SAM-like, cross-view inconsistent two-level masks made from ground-truth label maps.

Per view, it simulates what SAM's automatic mask generator returns: a list of binary masks (one
per object, one per part, some background regions), corrupted the ways SAM is inconsistent
between views: neighbouring parts (fine) or objects (coarse) merged, small segments dropped,
any segment occasionally missed or split in two, boundaries jittered by about a pixel at 160x120, the floor
and walls segmented only sometimes. The masks are then turned into coarse/fine id maps by the
very rule used on real SAM output (`two_level_from_masks`: largest / smallest covering mask), and
the ids are randomly permuted per view, as SAM's ids mean nothing across views.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..features.masks import TwoLevelMasks, two_level_from_masks

MAX_MASK_ID = 65535  # masks are stored as 16-bit PNGs


@dataclass(frozen=True)
class MaskNoise:
    """Rates of each inconsistency; the defaults are about as inconsistent as SAM is between views."""

    part_merge_rate: float = 0.15    # each touching pair of parts of one object: one fine mask
    object_merge_rate: float = 0.1   # each touching pair of objects: one coarse mask
    drop_rate: float = 0.03          # any segment missed
    small_drop_rate: float = 0.5     # a segment under small_area_fraction of the image missed
    small_area_fraction: float = 0.002
    split_rate: float = 0.05         # a segment cut in two by a random line through its centre
    boundary_jitter: float = 0.005   # std of the smooth boundary displacement, x image diagonal
    background_rate: float = 0.5     # the floor / each wall segmented
    min_area_px: int = 3             # anything smaller is never a mask (SAM's min region area)

    def __post_init__(self):
        rates = [f.name for f in fields(self) if f.name.endswith("_rate") or f.name.endswith("_fraction")]
        bad = [name for name in rates if not 0.0 <= getattr(self, name) <= 1.0]
        if bad or self.boundary_jitter < 0 or self.min_area_px < 0:
            raise ValueError("mask noise rates must be in [0, 1] and the jitter / min area >= 0 "
                             f"(bad: {bad or 'jitter/area'})")

    @classmethod
    def consistent(cls) -> "MaskNoise":
        """No inconsistency at all: masks equal the ground truth (background never segmented)."""
        return cls(part_merge_rate=0.0, object_merge_rate=0.0, drop_rate=0.0, small_drop_rate=0.0,
                   split_rate=0.0, boundary_jitter=0.0, background_rate=0.0, min_area_px=1)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


def touching_pairs(labels: np.ndarray) -> np.ndarray:
    """(K, 2) unique pairs (a < b) of non-zero labels that touch (4-neighbourhood)."""
    pairs = [np.stack([labels[:, :-1].ravel(), labels[:, 1:].ravel()], axis=1),
             np.stack([labels[:-1, :].ravel(), labels[1:, :].ravel()], axis=1)]
    pairs = np.concatenate(pairs)
    pairs = pairs[(pairs[:, 0] != pairs[:, 1]) & (pairs.min(axis=1) > 0)]
    return np.unique(np.sort(pairs, axis=1), axis=0)


def merge_groups(labels_present: np.ndarray, pairs: np.ndarray, rate: float,
                 rng: np.random.Generator) -> list[np.ndarray]:
    """Each touching pair is merged with probability `rate`; returns the merged groups of labels."""
    chosen = pairs[rng.uniform(size=len(pairs)) < rate] if len(pairs) else pairs
    index = {int(label): i for i, label in enumerate(labels_present)}
    rows = [index[int(a)] for a in chosen[:, 0]] if len(chosen) else []
    cols = [index[int(b)] for b in chosen[:, 1]] if len(chosen) else []
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(labels_present),) * 2)
    _, component = connected_components(graph, directed=False)
    return [labels_present[component == c] for c in np.unique(component)]


def _jitter(mask: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """The mask warped by a smooth random displacement field of std `amount` pixels."""
    if amount <= 0:
        return mask
    height, width = mask.shape
    offsets = []
    for _ in range(2):
        field = gaussian_filter(rng.standard_normal((height, width)), sigma=2.0, mode="wrap")
        offsets.append(field / max(field.std(), 1e-9) * amount)
    ys, xs = np.mgrid[0:height, 0:width]
    ys = np.clip(np.rint(ys + offsets[0]), 0, height - 1).astype(np.intp)
    xs = np.clip(np.rint(xs + offsets[1]), 0, width - 1).astype(np.intp)
    return mask[ys, xs]


def _split(mask: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    ys, xs = np.nonzero(mask)
    angle = rng.uniform(0, np.pi)
    side = (xs - xs.mean()) * np.cos(angle) + (ys - ys.mean()) * np.sin(angle) > 0
    halves = []
    for keep in (side, ~side):
        half = np.zeros_like(mask)
        half[ys[keep], xs[keep]] = True
        halves.append(half)
    return halves


def simulate_sam_masks(part_map: np.ndarray, part_objects: np.ndarray, background_map: np.ndarray | None,
                       noise: MaskNoise, rng: np.random.Generator) -> TwoLevelMasks:
    """Two-level masks for one view from its GT maps.

    part_map: (H, W) part label per pixel (0 = none); part_objects: part label -> object label;
    background_map: (H, W) background region per pixel (0 = none) or None.
    """
    object_map = part_objects[part_map]
    candidates: list[np.ndarray] = []

    parts_present = np.unique(part_map[part_map > 0])
    part_pairs = touching_pairs(part_map)
    part_pairs = part_pairs[part_objects[part_pairs[:, 0]] == part_objects[part_pairs[:, 1]]]
    part_groups = merge_groups(parts_present, part_pairs, noise.part_merge_rate, rng)
    fine_masks = [np.isin(part_map, group) for group in part_groups]

    objects_present = np.unique(object_map[object_map > 0])
    object_groups = merge_groups(objects_present, touching_pairs(object_map), noise.object_merge_rate, rng)
    coarse_masks = [np.isin(object_map, group) for group in object_groups]
    # An object seen as a single (possibly merged) part is one mask, not two identical ones.
    part_group_sets = {frozenset(g.tolist()) for g in part_groups}
    for group, mask in zip(object_groups, coarse_masks):
        parts_of_group = frozenset(np.unique(part_map[mask]).tolist()) - {0}
        if parts_of_group not in part_group_sets:
            candidates.append(mask)
    candidates.extend(fine_masks)

    if background_map is not None:
        for region in np.unique(background_map[background_map > 0]):
            if rng.uniform() < noise.background_rate:
                candidates.append(background_map == region)

    small_area = noise.small_area_fraction * part_map.size
    masks = []
    for mask in candidates:
        area = int(mask.sum())
        if rng.uniform() < noise.drop_rate or (area < small_area and rng.uniform() < noise.small_drop_rate):
            continue
        pieces = _split(mask, rng) if rng.uniform() < noise.split_rate else [mask]
        for piece in pieces:
            piece = _jitter(piece, noise.boundary_jitter * np.hypot(*part_map.shape), rng)
            if piece.sum() >= max(noise.min_area_px, 1):
                masks.append(piece)

    levels = two_level_from_masks(masks, part_map.shape)
    # Random per-view ids: a segment's id says nothing about the same segment in another view.
    new_ids = np.zeros(len(masks) + 1, dtype=np.int32)
    if masks:
        new_ids[1:] = rng.choice(np.arange(1, MAX_MASK_ID + 1), size=len(masks), replace=False)
    return TwoLevelMasks(new_ids[levels.coarse], new_ids[levels.fine])
