"""Each Click-Gaussian loss term on tiny hand-made cases: value and gradient direction."""

import math

import numpy as np
import torch
import torch.nn.functional as F

from clickgauss_backend.features import gfl, losses
from clickgauss_backend.features.config import TrainConfig
from clickgauss_core.protocol import COARSE, FINE, PRESET_CPU_FAST, PRESET_PAPER

CONFIG = TrainConfig()


def unit(*values):
    v = torch.tensor(values, dtype=torch.float64)
    return v / v.norm()


def feature(coarse, rest):
    """A 24-dim feature from a 12-dim coarse and a 12-dim rest vector given by their first entries."""
    c = torch.zeros(12, dtype=torch.float64)
    r = torch.zeros(12, dtype=torch.float64)
    c[:len(coarse)] = torch.tensor(coarse, dtype=torch.float64)
    r[:len(rest)] = torch.tensor(rest, dtype=torch.float64)
    return torch.cat([c, r])


def ids(coarse, fine):
    return {COARSE: torch.tensor(coarse), FINE: torch.tensor(fine)}


def test_positive_term_pulls_same_mask_pixels_together():
    rendered = torch.stack([feature([1, 0], [1, 0]), feature([0.6, 0.8], [0.6, 0.8])]).requires_grad_()
    positive, _ = losses.contrastive_loss(rendered, ids([1, 1], [2, 2]), CONFIG)
    before = F.cosine_similarity(rendered[0], rendered[1], dim=0).item()
    positive.backward()
    with torch.no_grad():
        stepped = rendered - 0.1 * rendered.grad
    after = F.cosine_similarity(stepped[0], stepped[1], dim=0).item()
    assert positive.item() < 0
    assert after > before + 1e-3


def test_positive_term_ignores_pixels_without_mask_and_different_masks():
    rendered = torch.stack([feature([1, 0], [1, 0]), feature([0, 1], [0, 1])]).requires_grad_()
    positive, _ = losses.contrastive_loss(rendered, ids([1, 2], [0, 3]), CONFIG)
    positive.backward()
    # the one pair (pixel 0 in P1, pixel 1 in P2) has different coarse masks and no fine mask on pixel 0
    assert positive.item() == 0
    assert torch.allclose(rendered.grad, torch.zeros_like(rendered.grad))


def test_pairs_are_taken_between_the_two_halves_of_the_sample():
    a, b = feature([1, 0], [1, 0]), feature([0.6, 0.8], [0.6, 0.8])
    rendered = torch.stack([a, a, b, b])  # P1 = (a, a), P2 = (b, b)
    positive, _ = losses.contrastive_loss(rendered, ids([1, 1, 1, 1], [0, 0, 0, 0]), CONFIG)
    # 4 cross pairs, all same coarse mask with cosine 0.6; pairs inside a half do not count
    assert math.isclose(positive.item(), -0.6, rel_tol=1e-6)


def test_negative_term_only_acts_above_the_margin():
    close = torch.stack([feature([1, 0], [1, 0]), feature([1, 0.2], [1, 0.2])]).requires_grad_()
    far = torch.stack([feature([1, 0], [1, 0]), feature([0, 1], [0, 1])]).requires_grad_()
    _, negative_close = losses.contrastive_loss(close, ids([1, 2], [1, 2]), CONFIG)
    _, negative_far = losses.contrastive_loss(far, ids([1, 2], [1, 2]), CONFIG)
    assert negative_close.item() > 0
    assert negative_far.item() == 0
    negative_close.backward()
    with torch.no_grad():
        stepped = close - 0.1 * close.grad
    assert (F.cosine_similarity(stepped[0], stepped[1], dim=0)
            < F.cosine_similarity(close[0], close[1], dim=0) - 1e-4)


def test_stop_gradient_keeps_the_coarse_half_still_under_the_fine_negative_term():
    # Two parts of one object: same coarse mask, different fine masks, identical features, so
    # only the fine negative term is active (the positive term has zero gradient at cosine 1).
    rendered = torch.stack([feature([1, 0], [1, 0]), feature([1, 0], [1, 0.01])]).requires_grad_()
    positive, negative = losses.contrastive_loss(rendered, ids([1, 1], [1, 2]), CONFIG)
    assert negative.item() > 0
    negative.backward()
    assert torch.count_nonzero(rendered.grad[:, :12]) == 0
    assert torch.count_nonzero(rendered.grad[:, 12:]) > 0

    without = rendered.detach().clone().requires_grad_()
    _, negative = losses.contrastive_loss(without, ids([1, 1], [1, 2]), CONFIG.with_changes(stop_gradient=False))
    negative.backward()
    assert torch.count_nonzero(without.grad[:, :12]) > 0


def test_without_granularity_prior_the_fine_level_is_the_rest_only():
    config = CONFIG.with_changes(granularity_prior=False)
    rendered = torch.stack([feature([1, 0], [1, 0]), feature([0, 1], [1, 0.01])]).requires_grad_()
    _, negative = losses.contrastive_loss(rendered, ids([1, 2], [1, 2]), config)
    # coarse halves are orthogonal (no coarse push); the rest halves nearly equal: fine push only on rest
    negative.backward()
    assert torch.count_nonzero(rendered.grad[:, :12]) == 0
    assert torch.count_nonzero(rendered.grad[:, 12:]) > 0
    assert math.isclose(config.rendered_norm_target(FINE), 1.0)


def test_gfl_pulls_a_feature_toward_its_cluster_and_away_from_others():
    centres = torch.stack([unit(1, 0, 0), unit(0, 1, 0)])
    # cosine to centre 0 ~0.94 (> tau_g 0.9): pulled in; cosine to centre 1 ~0.33 (< tau 0.5): no push
    member = unit(1, 0.35, 0.05).clone().requires_grad_()
    positive, negative = losses.gfl_loss(member[None], centres, 0.9, 0.5)
    (positive + negative).backward()
    stepped = member.detach() - 0.1 * member.grad
    assert negative.item() == 0
    assert F.cosine_similarity(stepped, centres[0], dim=0) > F.cosine_similarity(member.detach(), centres[0], dim=0)

    # between two clusters: best is centre 0, centre 1 is above tau -> pushed away from centre 1
    between = unit(1, 0.9, 0).clone().requires_grad_()
    positive, negative = losses.gfl_loss(between[None], centres, 0.9, 0.5)
    assert positive.item() == 0  # cosine 0.74 to its best cluster is below tau_g
    assert negative.item() > 0
    negative.backward()
    stepped = between.detach() - 0.1 * between.grad
    assert F.cosine_similarity(stepped, centres[1], dim=0) < F.cosine_similarity(between.detach(), centres[1], dim=0)


def test_gfl_pulls_a_retargeted_feature_to_its_target_however_far():
    centres = torch.stack([unit(1, 0, 0), unit(0, 1, 0)])
    # at cosine ~0.99 to centre 0, but its pixels' votes sent it to centre 1
    stray = unit(1, 0.1, 0).clone().requires_grad_()
    kept, _ = losses.gfl_loss(stray[None], centres, 0.9, 0.5, torch.tensor([-1]))
    assert kept.item() < -0.9  # -1 keeps the nearest cluster's pull
    positive, negative = losses.gfl_loss(stray[None], centres, 0.9, 0.5, torch.tensor([1]))
    assert abs(positive.item() + F.cosine_similarity(stray.detach(), centres[1], dim=0).item()) < 1e-6
    (positive + negative).backward()
    stepped = stray.detach() - 0.1 * stray.grad
    assert F.cosine_similarity(stepped, centres[1], dim=0) > F.cosine_similarity(stray.detach(), centres[1], dim=0)
    assert F.cosine_similarity(stepped, centres[0], dim=0) < F.cosine_similarity(stray.detach(), centres[0], dim=0)


def test_gfl_pulls_an_unclustered_feature_nowhere_and_pushes_it_from_its_nearest_cluster():
    centres = torch.stack([unit(1, 0, 0), unit(0, 1, 0)])
    # a handle at cosine 0.8 to the body's cluster (over the margin 0.5, under tau_global 0.9)
    handle = unit(0.8, 0, 0.6).clone().requires_grad_()
    positive, negative = losses.gfl_loss(handle[None], centres, 0.9, 0.5, torch.tensor([-1]))
    assert positive.item() == 0 and negative.item() == 0  # the paper's GFL: the nearest holds it
    positive, negative = losses.gfl_loss(handle[None], centres, 0.9, 0.5, torch.tensor([losses.UNCLUSTERED]))
    assert positive.item() == 0 and negative.item() > 0
    negative.backward()
    stepped = handle.detach() - 0.1 * handle.grad
    assert F.cosine_similarity(stepped, centres[0], dim=0) < F.cosine_similarity(handle.detach(), centres[0], dim=0)
    # close to a cluster it is not pulled in either
    near = unit(1, 0.1, 0)[None]
    pulled, _ = losses.gfl_loss(near, centres, 0.9, 0.5, torch.tensor([-1]))
    free, _ = losses.gfl_loss(near, centres, 0.9, 0.5, torch.tensor([losses.UNCLUSTERED]))
    assert pulled.item() < -0.9 and free.item() == 0


def test_gfl_without_clusters_is_zero():
    feats = torch.randn(5, 12, requires_grad=True)
    positive, negative = losses.gfl_loss(feats, torch.zeros((0, 12)), 0.9, 0.5)
    assert positive.item() == 0 and negative.item() == 0


def test_hypersphere_pulls_each_half_to_unit_norm():
    features = torch.cat([torch.full((1, 12), 0.5), torch.full((1, 12), 0.1)], dim=1).requires_grad_()
    value = losses.hypersphere_loss(features, CONFIG)
    expected = (0.5 * math.sqrt(12) - 1) ** 2 + (0.1 * math.sqrt(12) - 1) ** 2
    assert math.isclose(value.item(), expected, rel_tol=1e-6)
    value.backward()
    # coarse norm 1.73 > 1: gradient points outward (descent shrinks it); rest norm 0.35 < 1: grows
    assert (features.grad[0, :12] > 0).all() and (features.grad[0, 12:] < 0).all()


def test_rendered_norm_targets_one_and_sqrt_two():
    aligned = torch.cat([torch.tensor([1.0]), torch.zeros(11), torch.tensor([1.0]), torch.zeros(11)])[None]
    assert losses.rendered_norm_loss(aligned, CONFIG).item() < 1e-12  # |F_c| = 1, |F_f| = sqrt 2
    shrunk = (0.5 * aligned).requires_grad_()
    value = losses.rendered_norm_loss(shrunk, CONFIG)
    assert value.item() > 0
    value.backward()
    assert shrunk.grad[0, 0] < 0 and shrunk.grad[0, 12] < 0  # descent lengthens the blended feature


def test_spatial_pulls_neighbours_together():
    features = torch.stack([unit(1, 0, 0), unit(0.5, 1, 0), unit(0, 0, 1)]).float().requires_grad_()
    value = losses.spatial_loss(features, torch.tensor([0]), torch.tensor([[1]]))
    assert math.isclose(value.item(), -F.cosine_similarity(features[0], features[1], dim=0).item(), rel_tol=1e-6)
    value.backward()
    assert torch.count_nonzero(features.grad[2]) == 0  # not a neighbour: untouched
    stepped = features.detach() - 0.1 * features.grad
    assert F.cosine_similarity(stepped[0], stepped[1], dim=0) > F.cosine_similarity(features[0], features[1], dim=0)


def test_spatial_pairs_can_be_weighted():
    # neighbour 1 at full weight, neighbour 2 at none: the term is the weighted mean of the cosines
    # and the unweighted pair moves nothing
    features = torch.stack([unit(1, 0, 0), unit(0.5, 1, 0), unit(0, 0, 1)]).float().requires_grad_()
    value = losses.spatial_loss(features, torch.tensor([0]), torch.tensor([[1, 2]]), torch.tensor([[1.0, 0.0]]))
    expected = -(F.cosine_similarity(features[0], features[1], dim=0) + 0.0) / 2
    assert math.isclose(value.item(), expected.item(), rel_tol=1e-6)
    value.backward()
    assert torch.count_nonzero(features.grad[2]) == 0
    assert torch.count_nonzero(features.grad[1]) > 0


def test_segment_means_average_each_segment():
    features = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [9.0, 9.0]])
    means = gfl.segment_means(features, torch.tensor([4, 4, 7, 0]))
    assert torch.allclose(means, torch.tensor([[2.0, 0.0], [0.0, 2.0]]))


def test_segment_means_can_leave_out_segments_whose_pixels_disagree():
    # segment 4: two pixels agree (coherence 1); segment 7: a merged mask over two orthogonal
    # features (coherence |(1, 1)| / 2 = 0.71) in the last two dims; the first dim is ignored
    features = torch.tensor([[5.0, 1.0, 0.0], [-5.0, 2.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    ids = torch.tensor([4, 4, 7, 7])
    kept_ids, kept = gfl.segment_means(features, ids, min_coherence=0.9, coherence_dims=slice(1, 3), return_ids=True)
    assert torch.allclose(kept, torch.tensor([[0.0, 1.5, 0.0]])) and kept_ids.tolist() == [4]
    both = gfl.segment_means(features, ids, min_coherence=0.7, coherence_dims=slice(1, 3))
    assert torch.allclose(both, gfl.segment_means(features, ids)) and len(both) == 2


def test_hdbscan_finds_the_repeated_segments_and_leaves_outliers_as_noise():
    rng = np.random.default_rng(0)
    a, b = np.eye(12)[0], np.eye(12)[1]
    means = np.concatenate([a + 0.01 * rng.standard_normal((10, 12)), b + 0.01 * rng.standard_normal((10, 12)),
                            np.eye(12)[5:6]])
    centres, labels = gfl.cluster_centres(means, epsilon=1e-2, min_size=4, return_labels=True)
    assert centres.shape == (2, 12)
    assert len(set(labels[:10])) == 1 and len(set(labels[10:20])) == 1 and labels[0] != labels[10] and labels[20] == -1
    assert sorted(np.argmax(centres, axis=1).tolist()) == [0, 1]
    ids = gfl.assign_to_clusters(np.stack([a, b, np.eye(12)[5]]), centres, min_similarity=0.75)
    assert ids[0] != ids[1] and ids[0] >= 0 and ids[1] >= 0 and ids[2] == -1


def test_presets_and_level_slices():
    assert TrainConfig() == TrainConfig.preset(PRESET_PAPER)
    assert TrainConfig().iterations == 3000 and TrainConfig().gfl_start == 2000
    fast = TrainConfig.preset(PRESET_CPU_FAST)
    assert fast.gfl_start < fast.iterations and fast.pixels_per_iteration < 10_000
    assert CONFIG.level_slice(FINE) == slice(0, 24)
    assert TrainConfig.from_dict(fast.to_dict()) == fast


def test_pixel_outside_every_mask_is_a_negative_and_never_a_positive():
    outside = losses.OUTSIDE_EVERY_MASK
    close = torch.stack([feature([1, 0], [1, 0]), feature([0.9, 0.1], [0.9, 0.1])]).requires_grad_()
    # masked pixel vs a surface pixel no mask covers: pushed apart above the margin, at both levels
    positive, negative = losses.contrastive_loss(close, ids([1, outside], [2, outside]), CONFIG)
    assert positive.item() == 0
    assert negative.item() > 0
    negative.backward()
    with torch.no_grad():
        stepped = close - 0.1 * close.grad
    assert F.cosine_similarity(stepped[0], stepped[1], dim=0) < F.cosine_similarity(close[0], close[1], dim=0)

    # two uncovered pixels: no pair at all (what the masks leave uncovered is no one thing)
    far = torch.stack([feature([1, 0], [1, 0]), feature([0, 1], [0, 1])]).requires_grad_()
    positive, negative = losses.contrastive_loss(far, ids([outside, outside], [outside, outside]), CONFIG)
    (positive + negative).backward()
    assert positive.item() == 0 and negative.item() == 0
    assert torch.allclose(far.grad, torch.zeros_like(far.grad))


def test_fine_clusters_on_rest_dims_keep_sibling_parts_apart():
    """Two parts of one object share its (noisy) coarse half; a few masks merge them. Over all 24 dims
    HDBSCAN makes the two parts one cluster; by the rest dims they stay two (the config switch)."""
    rng = np.random.default_rng(0)
    axes = np.eye(12)

    def segments(coarse_direction, rest_direction, count):
        coarse = coarse_direction + 0.5 * rng.standard_normal((count, 12))
        rest = rest_direction + 0.03 * rng.standard_normal((count, 12))
        unit = lambda rows: rows / np.linalg.norm(rows, axis=1, keepdims=True)  # noqa: E731
        return np.concatenate([unit(coarse), unit(rest)], axis=1)

    head, hat = axes[0], 0.4 * axes[0] + np.sqrt(1 - 0.4 ** 2) * axes[1]
    share = np.linspace(0.25, 0.75, 7)[:, None]
    means = np.concatenate([segments(axes[0], head, 15), segments(axes[0], hat, 15),
                            segments(axes[0], share * head + (1 - share) * hat, 7),  # merged masks
                            segments(axes[5], axes[2], 15)])  # another object
    config = TrainConfig(fine_clusters_on_rest=True)
    assert config.cluster_dims(FINE) == slice(12, 24) and config.cluster_dims(COARSE) is None
    assert TrainConfig(fine_clusters_on_rest=True, granularity_prior=False).cluster_dims(FINE) is None

    over_all_dims = gfl.cluster_centres(means, epsilon=1e-3, min_size=6)
    by_rest = gfl.cluster_centres(means, epsilon=1e-3, min_size=6, cluster_dims=config.cluster_dims(FINE))
    assert len(over_all_dims) == 2  # head and hat in one cluster
    assert by_rest.shape == (3, 24)
    rest_of_centres = by_rest[:, 12:] / np.linalg.norm(by_rest[:, 12:], axis=1, keepdims=True)
    for part in (head, hat, axes[2]):
        assert (rest_of_centres @ part).max() > 0.95  # one centre per part


def test_a_cluster_chained_through_merged_segments_is_split_in_two():
    """A neck and its cap (cosine 0.3 apart) seen separately in most views and merged in some: the
    merged masks' segment means fill the space between, and HDBSCAN makes one cluster of both;
    `split_below` cuts it where its two halves are further apart than that, and leaves a tight
    cluster (another object) whole."""
    rng = np.random.default_rng(0)
    axes = np.eye(12)
    neck, cap = axes[0], 0.3 * axes[0] + np.sqrt(1 - 0.3 ** 2) * axes[1]

    def segments(low_share, high_share, count, direction_a=neck, direction_b=cap):
        share = rng.uniform(low_share, high_share, (count, 1))
        rows = share * direction_a + (1 - share) * direction_b + 0.05 * rng.standard_normal((count, 12))
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    means = np.concatenate([segments(0.85, 1.0, 15), segments(0.0, 0.15, 25),   # the neck's, the cap's own
                            segments(0.15, 0.85, 15),                           # merged masks
                            segments(1.0, 1.0, 20, direction_a=axes[5])])       # another object
    necks, caps, other = slice(0, 15), slice(15, 40), slice(55, 75)
    _, chained = gfl.cluster_centres(means, epsilon=1e-3, min_size=10, return_labels=True)
    assert len(set(chained[necks]) | set(chained[caps])) == 1

    centres, labels = gfl.cluster_centres(means, epsilon=1e-3, min_size=10, return_labels=True, split_below=0.8)
    assert len(centres) == 3
    neck_label, cap_label = (np.bincount(labels[part][labels[part] >= 0]).argmax() for part in (necks, caps))
    assert neck_label != cap_label
    assert (labels[necks] == neck_label).mean() >= 0.9 and (labels[caps] == cap_label).mean() >= 0.9
    assert centres[neck_label] @ neck > centres[neck_label] @ cap and centres[cap_label] @ cap > centres[cap_label] @ neck
    assert len(set(labels[other])) == 1 and labels[other][0] not in (neck_label, cap_label)
    # the split needs both halves large enough: nothing to cut in a cluster of tight points
    assert (gfl.split_chained(means[other], np.zeros(20, dtype=np.int64), 0.8, 5) == 0).all()
