"""Click-Gaussian training: 24-dim features per Gaussian from two-level masks, Gaussians frozen (docs/method.md).

Each iteration picks one training view, importance-samples pixels that carry a mask (a pixel's
probability is inversely proportional to the pixel count of its masks, so small masks are not
starved), renders only those pixels (`rasterize(..., pixels=...)`) and applies the contrastive
loss, GFL (from `gfl_start`, clusters refreshed every `gfl_refresh_every` iterations), and the
hypersphere, rendered-norm and spatial regularisers. Everything random comes from one seeded
numpy Generator and one seeded torch Generator, whose states are checkpointed with the features,
Adam's state and the current clusters, so a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import functools
import json
import os
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from scipy.spatial import cKDTree

from clickgauss_core.errors import ClickGaussInputError
from clickgauss_core.protocol import COARSE, DONE, FINE

from ..render import rasterize
from . import gfl as gfl_module
from . import losses
from .config import LEVELS, TrainConfig
from .field import FIELD_FORMAT_VERSION, FeatureField

CHECKPOINT_NAME = "checkpoint.pt"
# Pixels rendered per call in the no-grad GFL pass; bounds its memory on big views.
RENDER_CHUNK_PIXELS = 65_536
# A Gaussian is only pulled away from its nearest GFL cluster on at least this much evidence:
# its compositing weight summed over GFL-grid pixels of the winning cluster (one = a pixel's colour).
MIN_GFL_VOTE = 1.0
# ... and is left out of every cluster on this much (a Gaussian barely seen keeps its cluster).
MIN_NOISE_VOTE = 0.05
# Size-aware spatial neighbours are looked for among this many times K nearest centres.
SIZE_SEARCH_FACTOR = 4


class TrainingCancelled(Exception):
    """`should_cancel()` returned True; the last checkpoint (if any) lets the job resume."""


@dataclass
class TrainingProgress:
    stage: str               # "masks" | "training" | "clustering" | "done"
    iteration: int
    total: int
    losses: dict = field(default_factory=dict)
    eta_seconds: float | None = None


@dataclass
class _ViewMasks:
    camera: object                 # Camera at the mask resolution
    ids: dict[str, np.ndarray]     # level -> (H*W,) int64 segment ids, 0 = no mask / not used
    unmasked: np.ndarray           # (H*W,) bool: no mask covers the pixel (and it is no mask's edge)
    sampling_weight: np.ndarray    # (H*W,) float64, 0 where a pixel is never sampled


def _camera_for_masks(camera, height: int, width: int, view_name: str):
    """The view's camera at the resolution its masks were made at."""
    if (camera.width, camera.height) == (width, height):
        return camera
    scaled = camera.scaled(width / camera.width)
    if (scaled.width, scaled.height) != (width, height):
        raise ClickGaussInputError(view_name, f"masks are {width}x{height} but the camera is "
                                              f"{camera.width}x{camera.height} (different aspect ratio)")
    return scaled


def mask_edges(ids: np.ndarray) -> np.ndarray:
    """bool (H, W): pixels with a 4-neighbour of another id, except in a segment that is all edge
    (a part one or two pixels thin keeps its pixels rather than vanish from the view)."""
    edge = np.zeros(ids.shape, dtype=bool)
    horizontal = ids[:, 1:] != ids[:, :-1]
    vertical = ids[1:, :] != ids[:-1, :]
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    edge[1:, :] |= vertical
    edge[:-1, :] |= vertical
    interior_counts = np.bincount(ids[~edge].ravel(), minlength=int(ids.max()) + 1)
    return edge & (interior_counts[ids] > 0)


def level_sampling_weights(level_ids: np.ndarray, exponent: float, min_mask_fraction: float) -> tuple[np.ndarray, float]:
    """(per-pixel sampling weight of one level's masks, the mean mass of one of its masks).

    The level gets one share per mask (less for a mask under `min_mask_fraction` of the view: it
    is sampled as if it had that many pixels), whatever the exponent; inside the level a pixel's
    weight goes as (its mask's pixel count) ** -exponent: 1 (the paper) gives every mask the
    same share, 0.5 gives a larger mask more. Keeping the level's total fixed keeps the two
    levels' balance when one level's exponent changes."""
    counts = np.bincount(level_ids)
    weight = np.zeros(level_ids.shape, dtype=np.float64)
    present = counts[1:] > 0
    if not present.any():
        return weight, 1.0
    # as a mask of at least this many pixels (1 keeps ids absent from the view finite)
    floor = max(1.0, min_mask_fraction * level_ids.size)

    def mass(per_pixel: np.ndarray) -> float:
        return float(np.sum(counts[1:][present] * per_pixel[1:][present]))

    level_mass = mass(np.maximum(counts, floor) ** -1.0)
    sampled_as = np.maximum(counts, floor) ** -exponent
    sampled_as *= level_mass / mass(sampled_as)
    covered = level_ids > 0
    weight[covered] = sampled_as[level_ids[covered]]
    return weight, level_mass / int(present.sum())


def _view_masks(mask_store, index: int, camera, view_name: str, config: TrainConfig) -> _ViewMasks:
    masks = mask_store.load(index)
    coarse = np.asarray(masks.coarse, dtype=np.int64)
    fine = np.asarray(masks.fine, dtype=np.int64)
    if coarse.shape != fine.shape or coarse.ndim != 2:
        raise ClickGaussInputError(view_name, f"coarse masks {coarse.shape} and fine masks {fine.shape} differ")
    unmasked = (coarse == 0).reshape(-1)  # no mask at either level: the largest covering mask is none
    if config.skip_mask_edges:
        # A pixel on a mask's edge mixes two surfaces and sits where masks disagree between views.
        coarse_edges, fine_edges = mask_edges(coarse), mask_edges(fine)
        unmasked &= ~coarse_edges.reshape(-1)
        coarse, fine = np.where(coarse_edges, 0, coarse), np.where(fine_edges, 0, fine)
    ids = {COARSE: coarse.reshape(-1), FINE: fine.reshape(-1)}
    weight = np.zeros(coarse.size, dtype=np.float64)
    mask_mass = []
    for level, level_ids in ids.items():
        level_weight, mass_per_mask = level_sampling_weights(level_ids, config.sampling_exponent(level),
                                                             config.sampling_min_mask_fraction(level))
        weight += level_weight
        mask_mass.append(mass_per_mask)
    if config.unmasked_negatives and unmasked.any():
        weight[unmasked] += sum(mask_mass) / unmasked.sum()  # as much as one (average) mask at each level
    camera = _camera_for_masks(camera, coarse.shape[0], coarse.shape[1], view_name)
    return _ViewMasks(camera, ids, unmasked, weight)


class _TrainingViews:
    """The training views' masks, derived one view at a time from the mask store (small LRU), so
    memory does not grow with the number of views."""

    def __init__(self, mask_store, dataset_views, config: TrainConfig, cache_size: int = 8):
        self.mask_store = mask_store
        self.config = config
        self.dataset_views = list(dataset_views)
        self.get = functools.lru_cache(maxsize=cache_size)(self._derive)

    def __len__(self) -> int:
        return len(self.dataset_views)

    def _derive(self, index: int) -> _ViewMasks:
        view = self.dataset_views[index]
        return _view_masks(self.mask_store, index, view.camera, view.name, self.config)

    def __iter__(self):
        return (self.get(index) for index in range(len(self)))


def colour_affinity(colours: np.ndarray, neighbours: np.ndarray, sigma: float) -> np.ndarray:
    """(N, K) float32 exp(-|c_i - c_j|^2 / (2 sigma^2)) between each Gaussian's base colour (N, 3)
    and each of its neighbours' (`neighbours` (N, K))."""
    difference = colours[:, None, :] - colours[neighbours]
    return np.exp(-(difference ** 2).sum(axis=-1) / (2.0 * sigma ** 2)).astype(np.float32)


def _pixel_coordinates(flat_index: np.ndarray, width: int) -> torch.Tensor:
    """(P,) flat pixel indices -> (P, 2) int64 (x, y), the rasterizer's `pixels=` layout."""
    return torch.from_numpy(np.stack([flat_index % width, flat_index // width], axis=1).astype(np.int64))


def _render_pixels(gaussians, features: torch.Tensor, camera, flat_index: np.ndarray,
                   gradient_min_transmittance: float = 0.0):
    pixels = _pixel_coordinates(flat_index, camera.width).to(features.device)
    return rasterize(gaussians, features, camera, pixels=pixels, gradient_min_transmittance=gradient_min_transmittance)


def _initial_features(count: int, config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """Random directions with each half on the unit sphere (where the hypersphere term keeps them)."""
    values = torch.randn((count, config.feature_dim), generator=generator, dtype=torch.float32)
    coarse = torch.nn.functional.normalize(values[:, :config.coarse_dim], dim=1)
    rest = torch.nn.functional.normalize(values[:, config.coarse_dim:], dim=1)
    return torch.cat([coarse, rest], dim=1)


def neighbour_table(positions: np.ndarray, k: int, sizes: np.ndarray | None = None,
                    max_size_ratio: float = 0.0) -> np.ndarray:
    """K nearest neighbours (excluding itself) of every Gaussian, from one KD-tree built once.

    With `max_size_ratio` > 0, only neighbours whose size (`sizes`) is within that factor of the
    Gaussian's own count; they are searched among the `SIZE_SEARCH_FACTOR * k` nearest, and a
    Gaussian with fewer such neighbours lists itself in the free places (cos(f, f) = 1 has no gradient).
    """
    k = min(k, len(positions) - 1)
    if k <= 0:
        return np.zeros((len(positions), 0), dtype=np.int64)
    by_size = max_size_ratio > 0 and sizes is not None
    candidates = min(SIZE_SEARCH_FACTOR * k, len(positions) - 1) if by_size else k
    _, index = cKDTree(positions).query(positions, k=candidates + 1)
    index = np.asarray(index[:, 1:], dtype=np.int64)
    if not by_size:
        return index
    log_sizes = np.log(np.maximum(sizes, 1e-12))
    alike = np.abs(log_sizes[index] - log_sizes[:, None]) <= np.log(max_size_ratio)
    # the first k alike candidates in distance order: a stable sort puts them in front
    order = np.argsort(~alike, axis=1, kind="stable")[:, :k]
    chosen = np.take_along_axis(index, order, axis=1)
    keep = np.take_along_axis(alike, order, axis=1)
    return np.where(keep, chosen, np.arange(len(positions))[:, None])


def compute_global_clusters(gaussians, features: torch.Tensor, views: "_TrainingViews",
                            config: TrainConfig, vote: bool = True) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Render every view (no grad) on the `gfl_pixel_stride` grid, average per segment, cluster.

    Returns ({level: (C, D_level) centres}, {level: (N,) the cluster GFL pulls each Gaussian to
    instead of its nearest one, UNCLUSTERED where none, -1 where it keeps the nearest}); the second
    is empty without `vote`, and holds the levels whose `config.gfl_vote_ratio(level)` or
    `config.gfl_noise_vote_ratio` is > 0 (`_vote_targets`)."""
    means: dict[str, list[torch.Tensor]] = {level: [] for level in LEVELS}
    segments: dict[str, list[np.ndarray]] = {level: [] for level in LEVELS}
    grids: list[tuple] = []
    stride = max(1, config.gfl_pixel_stride)
    with torch.no_grad():
        for view in views:
            width, height = view.camera.width, view.camera.height
            ys, xs = np.meshgrid(np.arange(stride // 2, height, stride), np.arange(stride // 2, width, stride),
                                 indexing="ij")
            flat = (ys * width + xs).reshape(-1)
            flat = flat[(view.ids[COARSE][flat] > 0) | (view.ids[FINE][flat] > 0)]
            if flat.size == 0:
                continue
            grids.append((view, flat))
            rendered = torch.cat([
                _render_pixels(gaussians, features, view.camera, flat[start:start + RENDER_CHUNK_PIXELS]).features
                for start in range(0, flat.size, RENDER_CHUNK_PIXELS)])
            for level in LEVELS:
                level_ids = torch.from_numpy(view.ids[level][flat]).to(rendered.device)
                ids, level_means = gfl_module.segment_means(
                    losses.level_features(rendered, config, level), level_ids, config.gfl_min_segment_coherence,
                    config.cluster_dims(level), return_ids=True)
                means[level].append(level_means)
                segments[level].append(ids.cpu().numpy())
    centres, labels = gfl_module.global_clusters(means, config, len(views))
    voting = [level for level in LEVELS if vote and len(centres[level])
              and (config.gfl_vote_ratio(level) > 0 or config.gfl_noise_vote_ratio > 0)]
    if not voting:
        return centres, {}
    votes = _cluster_votes(gaussians, grids, segments, labels,
                           {level: len(centres[level]) if level in voting else None for level in LEVELS}, features.device,
                           config.gradient_min_transmittance)
    return centres, {level: _vote_targets(features, centres[level], votes[level], config, level) for level in voting}


def _vote_targets(features: torch.Tensor, centres: np.ndarray, votes: torch.Tensor, config: TrainConfig,
                  level: str) -> np.ndarray:
    """(N,) the cluster whose pixels outvote each Gaussian's nearest cluster, UNCLUSTERED where the
    pixels of segments in no cluster do, -1 where neither does. `votes` (N, C + 1): the last column
    is the noise segments'."""
    level_centres = torch.from_numpy(centres).to(features.device)
    votes, noise_votes = votes[:, :-1], votes[:, -1]
    unit = torch.nn.functional.normalize(losses.level_features(features, config, level), dim=1)
    nearest = (unit @ level_centres.T).argmax(dim=1)
    # one thing often has several clusters; those within the level's margin of the nearest one
    # vote together, and only a cluster the contrastive loss would push apart can win
    alike = (level_centres @ level_centres.T >= config.tau(level))[nearest]
    own_votes = (votes * alike).sum(dim=1)
    other_votes, other = votes.masked_fill(alike, 0.0).max(dim=1)
    targets = torch.full_like(other, -1)
    ratio = config.gfl_vote_ratio(level)
    if ratio > 0:
        outvoted = (other_votes > ratio * own_votes) & (other_votes >= MIN_GFL_VOTE)
        targets = torch.where(outvoted, other, targets)
    noise_ratio = config.gfl_noise_vote_ratio
    if noise_ratio > 0:
        unclustered = ((noise_votes > noise_ratio * torch.maximum(own_votes, other_votes))
                       & (noise_votes >= MIN_NOISE_VOTE))
        targets = torch.where(unclustered, torch.full_like(other, losses.UNCLUSTERED), targets)
    return targets.cpu().numpy()


def _cluster_votes(gaussians, grids: list[tuple], segments: dict[str, list[np.ndarray]],
                   labels: dict[str, list[np.ndarray]], cluster_counts: dict[str, int | None], device,
                   min_transmittance: float = 0.0) -> dict[str, torch.Tensor]:
    """{level: (N, C + 1) how much of each Gaussian's colour lands, over the views' GFL pixel grids,
    on pixels whose segment is in each global cluster, and (last column) in none}, for the levels
    whose count is not None: every pixel counts the same, however densely its mask is sampled;
    a pixel counts only for the Gaussians it reaches with at least `min_transmittance` (the
    training's `gradient_min_transmittance`).
    d(sum_p X(p)[cluster of p]) / dX_i = sum_p alpha_i T_i [cluster of p]."""
    columns_per_level = [0 if cluster_counts[level] is None else cluster_counts[level] + 1 for level in LEVELS]
    offsets = np.cumsum([0] + columns_per_level)
    gaussian_count = len(gaussians.means)
    weights = torch.zeros((gaussian_count, int(offsets[-1])), device=device, requires_grad=True)
    if offsets[-1] > 0:
        for position, (view, flat) in enumerate(grids):
            columns = []
            for level_index, level in enumerate(LEVELS):
                if cluster_counts[level] is None:
                    continue
                noise_column = offsets[level_index + 1] - 1
                ids, clusters = segments[level][position], labels[level][position]
                lookup = np.full(int(max(view.ids[level].max(), ids.max(initial=0))) + 1, -1, dtype=np.int64)
                lookup[ids] = np.where(clusters >= 0, clusters + offsets[level_index], noise_column)
                columns.append(lookup[view.ids[level][flat]])
            for start in range(0, flat.size, RENDER_CHUNK_PIXELS):
                chunk = slice(start, start + RENDER_CHUNK_PIXELS)
                rendered = _render_pixels(gaussians, weights, view.camera, flat[chunk], min_transmittance).features
                picked = torch.zeros_like(rendered)
                for level_columns in columns:
                    column = torch.from_numpy(level_columns[chunk]).to(device)
                    rows = torch.nonzero(column >= 0)[:, 0]
                    picked[rows, column[rows]] = 1.0
                (rendered * picked).sum().backward()
    grad = weights.grad if weights.grad is not None else torch.zeros_like(weights)
    return {level: grad[:, offsets[i]:offsets[i + 1]].detach() for i, level in enumerate(LEVELS)
            if cluster_counts[level] is not None}


def _save_checkpoint(path: str, state: dict) -> None:
    partial = path + ".partial"
    torch.save(state, partial)
    os.replace(partial, path)  # a job killed mid-write keeps the previous checkpoint


def _load_checkpoint(path: str, config: TrainConfig, scene_hash: str, seed: int) -> dict | None:
    if not os.path.isfile(path):
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unreadable file: say which and why
        raise ClickGaussInputError(path, f"unreadable training checkpoint ({exc})") from exc
    written_for = (state.get("settings_json"), state.get("scene_hash"), state.get("seed"))
    expected = (json.dumps(config.to_dict(), sort_keys=True), scene_hash, seed)
    if written_for != expected:
        raise ClickGaussInputError(path, "checkpoint was written for another scene, seed or settings; "
                                         "use another checkpoint directory or delete it")
    return state


@dataclass
class _TrainingState:
    """What a checkpoint holds: the features being trained, the optimiser, both RNGs, the clusters."""
    features: torch.Tensor
    optimizer: torch.optim.Optimizer
    rng: np.random.Generator
    generator: torch.Generator
    # compute_global_clusters' results, on the features' device (GFL reads them every iteration)
    clusters: dict[str, torch.Tensor] = field(default_factory=dict)
    gfl_targets: dict[str, torch.Tensor] = field(default_factory=dict)
    iteration: int = 0


def _views_to_train(scene, mask_store, views: list | None) -> list:
    views_in_dataset = list(scene.views if views is None else views)
    if not views_in_dataset:
        raise ClickGaussInputError(scene.ply_path, "the scene has no training views (load it with a dataset)")
    if len(mask_store) != len(views_in_dataset):
        raise ClickGaussInputError(scene.ply_path, f"the mask store has {len(mask_store)} views but the "
                                                   f"dataset has {len(views_in_dataset)}")
    return views_in_dataset


def _read_masks(scene, mask_store, views: list, config: TrainConfig) -> tuple[_TrainingViews, list[int]]:
    """Every view's masks read once: checks them and finds the views with mask pixels to sample."""
    training_views = _TrainingViews(mask_store, views, config)
    sampled_views = [index for index in range(len(training_views))
                     if training_views.get(index).sampling_weight.any()]
    if not sampled_views:
        raise ClickGaussInputError(scene.ply_path, "no training view has any mask pixel")
    return training_views, sampled_views


def _initial_state(gaussian_count: int, config: TrainConfig, seed: int, device) -> _TrainingState:
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    features = _initial_features(gaussian_count, config, generator).to(device).requires_grad_()
    optimizer = torch.optim.Adam([features], lr=config.learning_rate)
    return _TrainingState(features, optimizer, rng, generator)


def _restore_checkpoint(path: str, state: _TrainingState, config: TrainConfig, scene_hash: str, seed: int) -> None:
    saved = _load_checkpoint(path, config, scene_hash, seed)
    if saved is None:
        return
    with torch.no_grad():
        state.features.copy_(saved["features"].to(state.features.device))
    state.optimizer.load_state_dict(saved["optimizer"])
    state.rng.bit_generator.state = json.loads(saved["numpy_rng_json"])
    state.generator.set_state(saved["torch_rng"])
    device = state.features.device
    state.clusters = {level: saved[f"clusters_{level}"].to(device) for level in LEVELS if f"clusters_{level}" in saved}
    state.gfl_targets = {level: saved[f"gfl_targets_{level}"].to(device) for level in LEVELS
                         if f"gfl_targets_{level}" in saved}
    state.iteration = int(saved["iteration"])


def _checkpoint(state: _TrainingState, config: TrainConfig, scene_hash: str, seed: int) -> dict:
    saved = {"features": state.features.detach().cpu(), "optimizer": state.optimizer.state_dict(),
             "iteration": state.iteration, "numpy_rng_json": json.dumps(state.rng.bit_generator.state),
             "torch_rng": state.generator.get_state(), "settings_json": json.dumps(config.to_dict(), sort_keys=True),
             "scene_hash": scene_hash, "seed": seed}
    saved.update({f"clusters_{level}": centres.cpu() for level, centres in state.clusters.items()})
    saved.update({f"gfl_targets_{level}": targets.cpu() for level, targets in state.gfl_targets.items()})
    return saved


def _gfl_refresh_due(config: TrainConfig, iteration: int) -> bool:
    return (config.gfl and iteration >= config.gfl_start
            and (iteration - config.gfl_start) % config.gfl_refresh_every == 0)


def _loss_terms(scene, state: _TrainingState, training_views: _TrainingViews, sampled_views: list[int],
                neighbours: torch.Tensor, config: TrainConfig, iteration: int,
                neighbour_weights: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """One iteration's weighted loss terms: a view's pixels sampled, rendered, compared."""
    features, rng, device = state.features, state.rng, state.features.device
    gaussian_count = features.shape[0]
    view = training_views.get(sampled_views[int(rng.integers(len(sampled_views)))])
    probability = view.sampling_weight / view.sampling_weight.sum()
    flat = rng.choice(probability.size, size=config.pixels_per_iteration, replace=True, p=probability)
    result = _render_pixels(scene.gaussians, features, view.camera, flat, config.gradient_min_transmittance)
    rendered = result.features
    segment_ids = {level: torch.from_numpy(view.ids[level][flat]).to(device) for level in LEVELS}
    if config.unmasked_negatives:
        opaque = result.alpha.detach() >= config.unmasked_alpha
        outside = torch.from_numpy(view.unmasked[flat]).to(device) & opaque
        segment_ids = {level: torch.where(outside, losses.OUTSIDE_EVERY_MASK, ids)
                       for level, ids in segment_ids.items()}

    terms: dict[str, torch.Tensor] = {}
    positive, negative = losses.contrastive_loss(rendered, segment_ids, config)
    terms["contrastive"] = positive + config.lambda_negative * negative
    if config.gfl and state.clusters and iteration >= config.gfl_start:
        gfl_total = features.new_zeros(())
        for level in LEVELS:
            pos, neg = losses.gfl_loss(losses.level_features(features, config, level), state.clusters[level],
                                       config.tau_global, config.tau(level), state.gfl_targets.get(level))
            gfl_total = gfl_total + pos + neg
        terms["gfl"] = config.lambda_gfl * gfl_total
    if config.hypersphere:
        terms["hypersphere"] = config.lambda_hypersphere * losses.hypersphere_loss(features, config)
    # Only pixels that take part in contrastive pairs: a pixel that sees no surface has no feature.
    in_pairs = (segment_ids[COARSE] != 0) | (segment_ids[FINE] != 0)
    if config.rendered_norm and bool(in_pairs.any()):
        terms["rendered_norm"] = config.lambda_rendered_norm * losses.rendered_norm_loss(rendered[in_pairs], config)
    if config.spatial and neighbours.shape[1] > 0:
        sampled = torch.from_numpy(rng.integers(gaussian_count, size=min(config.spatial_samples, gaussian_count))).to(device)
        terms["spatial"] = config.lambda_spatial * losses.spatial_loss(
            features, sampled, neighbours[sampled], None if neighbour_weights is None else neighbour_weights[sampled])
    return terms


def _optimizer_step(state: _TrainingState, terms: dict[str, torch.Tensor]) -> dict[str, float]:
    """One Adam step on the sum of the terms; the terms and their total as floats."""
    total = sum(terms.values())
    state.optimizer.zero_grad(set_to_none=True)
    total.backward()
    state.optimizer.step()
    state.iteration += 1
    values = {name: float(value.detach()) for name, value in terms.items()}
    values["total"] = float(total.detach())
    return values


def _final_field(scene, state: _TrainingState, training_views: _TrainingViews, views: list, mask_store,
                 config: TrainConfig, seed: int, last_losses: dict) -> FeatureField:
    final_features = state.features.detach()
    final_clusters, _ = compute_global_clusters(scene.gaussians, final_features, training_views, config, vote=False)
    return FeatureField(
        features=final_features.cpu().numpy(), clusters=final_clusters,
        metadata={"version": FIELD_FORMAT_VERSION, "scene_hash": scene.content_hash,
                  "gaussians": len(scene.cloud), "views": [v.name for v in views],
                  "mask_source": mask_store.describe(), "settings": config.to_dict(), "seed": seed,
                  "final_losses": last_losses})


def train_feature_field(scene, mask_store, config: TrainConfig | None = None,
                        progress: Callable[[TrainingProgress], None] | None = None,
                        should_cancel: Callable[[], bool] | None = None,
                        checkpoint_dir: str | os.PathLike | None = None, seed: int = 0,
                        views: list | None = None) -> FeatureField:
    """Train a `FeatureField` for `scene` from `mask_store`'s two-level masks.

    `views`: the training views, in the mask store's order (default: all of the scene's dataset
    views); pass a subset to hold views out for evaluation. Callers go through
    `features/pipeline.py` `run_training`, which builds the mask store (the "masks" stage).
    """
    config = config or TrainConfig()
    report = progress or (lambda _event: None)
    views = _views_to_train(scene, mask_store, views)
    training_views, sampled_views = _read_masks(scene, mask_store, views, config)
    device = scene.gaussians.means.device
    state = _initial_state(len(scene.cloud), config, seed, device)
    neighbours = torch.from_numpy(neighbour_table(
        scene.cloud.positions, config.spatial_neighbours, np.exp(scene.cloud.log_scales).max(axis=1),
        config.spatial_max_size_ratio)).to(device)
    neighbour_weights = None
    if config.spatial_colour_sigma > 0:
        neighbour_weights = torch.from_numpy(colour_affinity(
            np.asarray(scene.cloud.colors), neighbours.cpu().numpy(), config.spatial_colour_sigma)).to(device)
    checkpoint_path = None
    if checkpoint_dir is not None:
        os.makedirs(checkpoint_dir, exist_ok=True)
        checkpoint_path = os.path.join(os.fspath(checkpoint_dir), CHECKPOINT_NAME)
        _restore_checkpoint(checkpoint_path, state, config, scene.content_hash, seed)

    started, start_iteration = time.monotonic(), state.iteration
    last_losses: dict[str, float] = {}
    report_every = max(1, config.iterations // 100)
    for iteration in range(start_iteration, config.iterations):
        if should_cancel is not None and should_cancel():
            raise TrainingCancelled(f"training cancelled at iteration {iteration}")
        if _gfl_refresh_due(config, iteration):
            report(TrainingProgress("clustering", iteration, config.iterations, dict(last_losses)))
            clusters, targets = compute_global_clusters(scene.gaussians, state.features.detach(), training_views, config)
            state.clusters = {level: torch.from_numpy(centres).to(device) for level, centres in clusters.items()}
            state.gfl_targets = {level: torch.from_numpy(chosen).to(device) for level, chosen in targets.items()}
        terms = _loss_terms(scene, state, training_views, sampled_views, neighbours, config, iteration,
                            neighbour_weights)
        last_losses = _optimizer_step(state, terms)
        done = state.iteration
        if done % report_every == 0 or done == config.iterations:
            elapsed = time.monotonic() - started
            eta = elapsed / (done - start_iteration) * (config.iterations - done)
            report(TrainingProgress("training", done, config.iterations, dict(last_losses), eta))
        if checkpoint_path is not None and (done % config.checkpoint_every == 0 or done == config.iterations):
            _save_checkpoint(checkpoint_path, _checkpoint(state, config, scene.content_hash, seed))

    report(TrainingProgress("clustering", config.iterations, config.iterations, dict(last_losses)))
    field_ = _final_field(scene, state, training_views, views, mask_store, config, seed, last_losses)
    report(TrainingProgress(DONE, config.iterations, config.iterations, dict(last_losses), 0.0))
    return field_
