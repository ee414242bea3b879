"""Global Feature-guided Learning: global feature candidates from segment-mean rendered features (docs/method.md).

Every training view is rendered without gradients; the rendered feature is averaged inside every
segment of every view, per level; HDBSCAN groups those means across views, and the (normalised)
mean of each cluster is a global feature candidate. A segment that one view's SAM mask got wrong
lands in the noise or in the cluster of what it really is, which is why this corrects
inconsistent masks.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.cluster import HDBSCAN, KMeans

from clickgauss_core.click import assign_to_clusters, unit_rows  # noqa: F401 (assign_to_clusters: re-exported)

from .config import LEVELS, TrainConfig


def segment_means(features: torch.Tensor, segment_ids: torch.Tensor, min_coherence: float = 0.0,
                  coherence_dims: slice | None = None, return_ids: bool = False):
    """Mean feature (S, D) of every segment id > 0 present in `segment_ids` (P,), ordered by id
    (with `return_ids`: (the ids (S,), the means)).

    `min_coherence` > 0: only the segments whose pixels agree, |sum f_p| / sum |f_p| >= it over
    `coherence_dims` (all dims when None). A mask that merges two segments the field already
    tells apart averages their features: its mean lies between two clusters and, through
    HDBSCAN's single linkage, bridges them into one that GFL then fuses."""
    valid = segment_ids > 0
    ids = segment_ids[valid]
    unique, inverse = torch.unique(ids, return_inverse=True)
    sums = features.new_zeros((len(unique), features.shape[1])).index_add_(0, inverse, features[valid])
    counts = torch.bincount(inverse, minlength=len(unique)).to(features.dtype)
    means = sums / counts[:, None].clamp_min(1)
    if min_coherence > 0.0 and len(unique):
        dims = slice(None) if coherence_dims is None else coherence_dims
        norms = features.new_zeros(len(unique)).index_add_(0, inverse, features[valid][:, dims].norm(dim=1))
        coherent = sums[:, dims].norm(dim=1) / norms.clamp_min(1e-12) >= min_coherence
        unique, means = unique[coherent], means[coherent]
    return (unique, means) if return_ids else means


def min_cluster_size(config: TrainConfig, view_count: int) -> int:
    return max(2, int(round(config.min_cluster_size_per_view * view_count)))


def cluster_centres(means: np.ndarray, epsilon: float, min_size: int,
                    cluster_dims: slice | None = None, return_labels: bool = False,
                    split_below: float = 0.0):
    """HDBSCAN over L2-normalised segment means -> (C, D) unit cluster centres (C may be 0)
    (with `return_labels`: (the centres, each mean's cluster (M,), -1 for noise)).

    `cluster_dims`: group the means by these dims only (normalised on their own); the centres are
    still the mean of the whole (normalised) means of each group. `split_below` > 0: a cluster
    whose two halves (`split_chained`) lie further apart than that cosine is split in two."""
    means = np.asarray(means, dtype=np.float64)
    labels = np.full(len(means), -1, dtype=np.int64)
    centres = np.zeros((0, means.shape[1] if means.ndim == 2 else 0), dtype=np.float32)
    if len(means) >= max(min_size, 2):
        unit = unit_rows(means)
        grouped_by = unit if cluster_dims is None else unit_rows(means[:, cluster_dims])
        labels = HDBSCAN(min_cluster_size=min_size, cluster_selection_epsilon=epsilon,
                         copy=True).fit_predict(grouped_by).astype(np.int64)
        if split_below > 0:
            labels = split_chained(grouped_by, labels, split_below, max(2, min_size // 2))
        if labels.max() >= 0:
            centres = np.stack([unit[labels == label].mean(axis=0) for label in range(labels.max() + 1)])
            centres = (centres / np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-12)).astype(np.float32)
    return (centres, labels) if return_labels else centres


def split_chained(points: np.ndarray, labels: np.ndarray, split_below: float, min_half: int) -> np.ndarray:
    """Labels with every cluster split (repeatedly, by 2-means) while its two halves have at least
    `min_half` members each and centres at cosine < `split_below`.

    HDBSCAN links two groups through the points between them: the segments of the masks that
    merge two touching parts (a bottle's neck and its cap in a third of the views) sit between
    the parts' own segments and chain them into one cluster, which GFL then fuses."""
    labels = labels.copy()
    pending = list(range(labels.max() + 1))
    while pending:
        label = pending.pop()
        members = np.flatnonzero(labels == label)
        if len(members) < 2 * min_half:
            continue
        halves = KMeans(n_clusters=2, n_init=4, random_state=0).fit(points[members]).labels_
        sizes = np.bincount(halves, minlength=2)
        half_centres = unit_rows(np.stack([points[members[halves == h]].mean(axis=0) for h in (0, 1)]))
        if sizes.min() < min_half or float(half_centres[0] @ half_centres[1]) >= split_below:
            continue
        new_label = labels.max() + 1
        labels[members[halves == 1]] = new_label
        pending += [label, new_label]
    return labels


def global_clusters(means_per_level: dict[str, list[torch.Tensor]], config: TrainConfig,
                    view_count: int) -> tuple[dict[str, np.ndarray], dict[str, list[np.ndarray]]]:
    """({level: (C, D_level) centres}, {level: per view, the cluster of each of its segment means
    (-1: noise)}) from the per-view segment means of each level."""
    size = min_cluster_size(config, view_count)
    clusters, labels_per_view = {}, {}
    for level in LEVELS:
        parts = [m.detach().cpu().numpy() for m in means_per_level[level]]
        width = config.level_slice(level).stop - config.level_slice(level).start
        stacked = np.concatenate(parts) if parts else np.zeros((0, width), dtype=np.float32)
        clusters[level], labels = cluster_centres(stacked, config.hdbscan_epsilon(level), size,
                                                  config.cluster_dims(level), return_labels=True,
                                                  split_below=config.gfl_split_below)
        labels_per_view[level] = np.split(labels, np.cumsum([len(part) for part in parts])[:-1])
    return clusters, labels_per_view
