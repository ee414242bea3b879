"""Click and segment-everything queries on a trained feature field.

A click renders the feature of the one clicked pixel (`clickgauss_core.click`: only the Gaussians
whose footprint covers that pixel are found, through a grid, and composited as the rasterizer
does, so the cost depends neither on the viewport size nor much on the scene size, and the result
equals that pixel of a whole-image render; the add-on runs the same code inside Blender), takes its level
part (coarse: the first 12 dims; fine: all 24 with the granularity prior), and compares it by
cosine similarity with every Gaussian's level feature in one vectorised pass. Gaussians at or
above the threshold are selected. Without an explicit threshold each click chooses its own from
its similarities (`clickgauss_core.click.adaptive_threshold`: the valley below the clicked
segment), falling back to the fixed defaults below where there is no clear valley.

Default thresholds (`DEFAULT_THRESHOLDS`, kept in clickgauss_core.click for the add-on too) were calibrated on the synthetic "demo" benchmark:
`benchmarks/bench_train.py` sweeps thresholds 0.50..0.99 for each level on held-out views (views
not used in training), one click per object (coarse) / part (fine) deep inside its ground-truth
pixel mask, scored by mean 3D IoU; the sweep is printed by the benchmark and recorded in
benchmarks/RESULTS.md. Over nine cpu-fast runs (seeds and variants of the preset) 0.60 was within
0.01 of the best coarse value in every run, while 0.65-0.85 lost up to 0.03 in runs where an
object's part drifts (the lamp's base); different objects end below tau_coarse = 0.5, so 0.60
does not reach them. Fine: 0.90 was the best or within 0.002 of it in both seeds. The sidebar and
the API take another threshold per click.
"""

from __future__ import annotations

import numpy as np
import torch

from clickgauss_core.click import DEFAULT_THRESHOLDS, ClickIndex, adaptive_threshold, pixel_feature, unit_rows
from clickgauss_core.errors import ClickGaussInputError

from .config import LEVELS
from .field import FeatureField

__all__ = ["DEFAULT_THRESHOLDS", "click", "click_index", "click_with_feature", "render_pixel_feature", "segment_all", "similarity_to"]


def _check_level(level: str) -> None:
    if level not in LEVELS:
        raise ClickGaussInputError(None, f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")


def _field_tensors(field: FeatureField, device) -> dict:
    """The field's features on `device` and its unit level features, prepared once per field."""
    cache = field.__dict__.setdefault("_query_cache", {})
    key = str(device)
    if key not in cache:
        cache[key] = {"features": torch.from_numpy(field.features).to(device),
                      **{level: torch.from_numpy(unit_rows(field.level_features(level))).to(device) for level in LEVELS}}
    return cache[key]


def click_index(gaussians) -> ClickIndex:
    """The Gaussians' click index (clickgauss_core.click: the same culling and compositing as the
    add-on's in-Blender click), built once per set of Gaussians."""
    index = gaussians.__dict__.get("_click_index")
    if index is None:
        index = ClickIndex(*(t.detach().cpu().numpy() for t in (gaussians.means, gaussians.scales,
                                                                gaussians.quats, gaussians.opacities)))
        gaussians.__dict__["_click_index"] = index  # a frozen dataclass: its __dict__ holds caches
    return index


def render_pixel_feature(field: FeatureField, gaussians, camera, pixel_xy) -> torch.Tensor:
    """The rendered (D,) feature at pixel (x, y) of `camera` (pixel (0, 0) is the top-left one).

    Composited from only the Gaussians whose footprint covers the pixel (found through a grid,
    not by projecting every Gaussian), exactly as `rasterize(..., pixels=)` composites it
    (tests/backend/test_click_culling.py checks it against the torch rasterizer)."""
    try:
        feature = pixel_feature(click_index(gaussians), field.features, camera, pixel_xy)
    except ValueError as exc:
        raise ClickGaussInputError(None, str(exc)) from exc
    return torch.from_numpy(feature.astype(np.float32)).to(gaussians.means.device)


def similarity_to(field: FeatureField, query_feature, level: str, device="cpu") -> torch.Tensor:
    """(N,) cosine similarity between `query_feature` (the level part, or the full D vector) and every Gaussian."""
    _check_level(level)
    query = torch.as_tensor(query_feature, dtype=torch.float32, device=device).reshape(-1)
    if query.shape[0] == field.features.shape[1]:
        query = query[field.config.level_slice(level)]
    unit = _field_tensors(field, device)[level]
    return unit @ (query / query.norm().clamp_min(1e-12))


def snap_to_cluster(field: FeatureField, level_query: torch.Tensor, level: str, min_similarity: float) -> torch.Tensor:
    """The global cluster centre most similar to the query when it is at least `min_similarity`, else the query."""
    centres = field.clusters[level]
    if len(centres) == 0:
        return level_query
    query = level_query / level_query.norm().clamp_min(1e-12)
    centres_t = torch.from_numpy(centres).to(query.device)
    similarity = centres_t @ query
    best = int(similarity.argmax())
    return centres_t[best] if float(similarity[best]) >= min_similarity else level_query


def click(field: FeatureField, gaussians, camera, pixel_xy, level: str, threshold: float | None = None,
          snap: bool = False) -> np.ndarray:
    """Select the Gaussians that belong with the clicked pixel: bool (N,) in PLY order.

    `threshold=None`: the click's adaptive threshold (fixed default as its fallback). `snap=True` compares the Gaussians with the nearest global cluster's centre instead of the
    rendered pixel feature (when that centre is at least as similar as the threshold).
    """
    return click_with_feature(field, gaussians, camera, pixel_xy, level, threshold, snap)[0]


def click_with_feature(field: FeatureField, gaussians, camera, pixel_xy, level: str, threshold: float | None = None,
                       snap: bool = False) -> tuple[np.ndarray, np.ndarray, float]:
    """`click`, the rendered (D,) feature of the clicked pixel (float32) and the threshold used."""
    _check_level(level)
    if len(field) != len(gaussians.means):
        raise ClickGaussInputError(None, f"the feature field has {len(field)} Gaussians but the scene has "
                                         f"{len(gaussians.means)}: it was trained for another PLY")
    device = gaussians.means.device
    feature = render_pixel_feature(field, gaussians, camera, pixel_xy)
    query = feature[field.config.level_slice(level)]
    if snap:
        query = snap_to_cluster(field, query, level, DEFAULT_THRESHOLDS[level] if threshold is None else threshold)
    similarity = similarity_to(field, query, level, device).cpu().numpy()
    threshold = adaptive_threshold(similarity, level) if threshold is None else float(threshold)
    return similarity >= threshold, feature.cpu().numpy(), threshold


def segment_all(field: FeatureField) -> dict[str, np.ndarray]:
    """Every Gaussian's global-cluster id per level ("segment everything"); -1 = noise."""
    return {level: field.cluster_ids(level) for level in LEVELS}
