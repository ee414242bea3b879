"""Click-Gaussian's loss terms as pure tensor functions (equations in docs/method.md).

Rendered features are (P, D) rows of sampled pixels; Gaussian features are (N, D). The level
features are taken with `TrainConfig.level_slice`, so switching the granularity prior off changes
every term consistently.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .config import LEVELS, TrainConfig
from clickgauss_core.protocol import FINE

OUTSIDE_EVERY_MASK = -1
UNCLUSTERED = -2  # a `gfl_loss` target: the Gaussian belongs to no global cluster


def level_features(features: torch.Tensor, config: TrainConfig, level: str,
                   stop_coarse_gradient: bool = False) -> torch.Tensor:
    """The level-`level` part of (.., D) features; optionally sg(coarse) ⊕ rest for the fine level."""
    part = features[..., config.level_slice(level)]
    if stop_coarse_gradient and level == FINE and config.granularity_prior:
        # The fine negative term must not push apart the coarse feature two parts of one object share.
        return torch.cat([features[..., :config.coarse_dim].detach(), features[..., config.coarse_dim:]], dim=-1)
    return part


def cosine_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T


def contrastive_loss(rendered: torch.Tensor, segment_ids: dict[str, torch.Tensor],
                     config: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_pos, L_neg) summed over levels, over all pairs (p1, p2) in P1 x P2.

    The P sampled pixels are split in halves P1 (first) and P2 (second; an odd last pixel is
    unused), so every pair is two distinct pixels and the P1 x P2 similarity matrix is a quarter
    of the P x P one. `segment_ids[level]` is (P,) int; 0 = no mask (the pixel takes part in no
    pair at that level); OUTSIDE_EVERY_MASK (-1) = a surface pixel no mask covers: it is a
    negative for every masked pixel (it is in none of their masks) and a positive for nothing
    (what masks leave uncovered is no one thing). Both sums are normalised by |P1||P2| as in the paper.
    """
    half = rendered.shape[0] // 2
    first, second = rendered[:half], rendered[half:2 * half]
    pairs = half * half
    positive = rendered.new_zeros(())
    negative = rendered.new_zeros(())
    for level in LEVELS:
        ids_first, ids_second = segment_ids[level][:half], segment_ids[level][half:2 * half]
        pair_valid = (ids_first != 0)[:, None] & (ids_second != 0)[None, :]
        same = (ids_first[:, None] == ids_second[None, :]) & pair_valid
        different = pair_valid & ~same
        same = same & (ids_first > 0)[:, None]
        similarity = cosine_matrix(level_features(first, config, level), level_features(second, config, level))
        positive = positive - (similarity * same).sum() / pairs
        if config.stop_gradient and level == FINE:
            similarity = cosine_matrix(level_features(first, config, level, stop_coarse_gradient=True),
                                       level_features(second, config, level, stop_coarse_gradient=True))
        over_margin = different & (similarity > config.tau(level))
        negative = negative + (similarity * over_margin).sum() / pairs
    return positive, negative


def gfl_loss(level_feats: torch.Tensor, centres: torch.Tensor, tau_global: float,
             tau_level: float, targets: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_pos_GFL, L_neg_GFL) of one level: pull each Gaussian to its best global cluster, push from the rest.

    `targets` (N,): where >= 0, the cluster to pull that Gaussian to instead (however far it is);
    where UNCLUSTERED, no cluster: the Gaussian is pulled nowhere and pushed from every cluster."""
    if centres.shape[0] == 0:
        zero = level_feats.sum() * 0.0
        return zero, zero
    similarity = cosine_matrix(level_feats, centres)  # (N, C)
    best, best_index = similarity.max(dim=1)
    pulled = torch.where(best > tau_global, best, torch.zeros_like(best))
    assigned = torch.ones_like(best, dtype=torch.bool)
    if targets is not None:
        retargeted = targets >= 0
        best_index = torch.where(retargeted, targets, best_index)
        pulled = torch.where(retargeted, similarity.gather(1, best_index[:, None])[:, 0], pulled)
        # a Gaussian in no cluster is pulled nowhere, and its nearest cluster may not hold it either
        assigned = targets != UNCLUSTERED
        pulled = torch.where(assigned, pulled, torch.zeros_like(pulled))
    positive = -pulled.mean()
    others = torch.ones_like(similarity, dtype=torch.bool)
    rows = torch.arange(len(best_index), device=best_index.device)
    others[rows[assigned], best_index[assigned]] = False
    too_close = others & (similarity > tau_level)
    negative = (similarity * too_close).sum(dim=1).mean() / centres.shape[0]
    return positive, negative


def hypersphere_loss(features: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    """L_3D: each half of every Gaussian feature on the unit sphere."""
    coarse_norm = features[:, :config.coarse_dim].norm(dim=1)
    rest_norm = features[:, config.coarse_dim:].norm(dim=1)
    return ((coarse_norm - 1.0) ** 2 + (rest_norm - 1.0) ** 2).mean()


def rendered_norm_loss(rendered: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    """L_2D: rendered level features should have norm r_l (their contributors agree)."""
    total = rendered.new_zeros(())
    for level in LEVELS:
        norm = level_features(rendered, config, level).norm(dim=1)
        total = total + ((norm - config.rendered_norm_target(level)) ** 2).mean()
    return total


def spatial_loss(features: torch.Tensor, sampled: torch.Tensor, neighbours: torch.Tensor,
                 pair_weights: torch.Tensor | None = None) -> torch.Tensor:
    """L_spatial: -mean cosine between sampled Gaussians (Ns,) and their K nearest neighbours (Ns, K),
    each pair's cosine times its weight in `pair_weights` (Ns, K) when given."""
    anchor = F.normalize(features[sampled], dim=-1)[:, None, :]
    near = F.normalize(features[neighbours], dim=-1)
    cosine = (anchor * near).sum(dim=-1)
    return -(cosine if pair_weights is None else cosine * pair_weights).mean()
