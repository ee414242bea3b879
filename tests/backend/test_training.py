"""Training on the synthetic "tiny" scene: determinism, checkpoint resume, cancel, progress,
an end-to-end click that finds the right object, and the train / click / segment-all CLI."""

import json
import math
import subprocess
from dataclasses import asdict

import numpy as np
import pytest
import torch

from clickgauss_core import wire
from clickgauss_core.errors import ClickGaussInputError
from clickgauss_core.protocol import COARSE, DONE, FINE, PRESET_TINY

from clickgauss_backend.features import losses
from clickgauss_backend.features.config import TrainConfig
from clickgauss_backend.features.evaluate import evaluate_level, plan_clicks, visible_gaussians
from clickgauss_backend.features.field import FeatureField
from clickgauss_backend.features.mask_snapping import SnapSettings
from clickgauss_backend.features.masks import MaskStore, PrecomputedMasks
from clickgauss_backend.features.query import click
from clickgauss_backend.features.pipeline import MaskChoice, TrainingPlaces, TrainingRequest, run_training
from clickgauss_backend.features.trainer import (TrainingCancelled, _TrainingViews, colour_affinity, compute_global_clusters,
                                                 mask_edges, neighbour_table)
from clickgauss_backend.splat_scene import SplatScene

CONFIG = TrainConfig.preset(PRESET_TINY)
# Determinism and resume need several runs; a short schedule (GFL included) keeps them cheap.
SHORT_CHANGES = dict(iterations=30, gfl_start=10, gfl_refresh_every=10, checkpoint_every=10)
SHORT = CONFIG.with_changes(**SHORT_CHANGES)


class Setup:
    def __init__(self, synthetic, cache_dir):
        self.synthetic = synthetic
        self.cache_dir = cache_dir
        self.scene = SplatScene.load(synthetic.ply_path, dataset_path=synthetic.dataset_path)
        self.train_views = [self.scene.views[i] for i in synthetic.train_indices]
        self.masks = MaskStore.build(PrecomputedMasks(synthetic.masks_dir), self.train_views,
                                     lambda view: (view.camera.width, view.camera.height), cache_dir)

    def train(self, overrides=None, seed=0, checkpoint_dir=None, progress=None, should_stop=None):
        """Through the one training pipeline, on the synthetic scene's training views (test views held out)."""
        request = TrainingRequest(MaskChoice("folder", str(self.synthetic.masks_dir)), preset=PRESET_TINY,
                                  overrides=overrides or {}, seed=seed)
        places = TrainingPlaces(view_cache_dir=self.cache_dir / "views", mask_cache_dir=self.cache_dir,
                                checkpoint_dir=checkpoint_dir)
        return run_training(request, self.scene, places, progress, should_stop, views=self.train_views)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Determinism is per thread count (parallel float sums change order with it), and other
    tests in this process (the in-process fuzz run's clicks) change torch's thread count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def setup(tiny_synthetic_scene, tmp_path_factory):
    return Setup(tiny_synthetic_scene, tmp_path_factory.mktemp("mask_cache"))


@pytest.fixture(scope="module")
def trained(setup):
    events = []
    field = setup.train(progress=events.append, seed=0)
    return field, events


def test_progress_reports_every_stage_and_the_losses(trained, setup):
    field, events = trained
    stages = [e.stage for e in events]
    assert stages[0] == "masks" and stages[-1] == DONE
    # The "masks" stage is counted once, 0..N, before any other stage (not once per pipeline step).
    masks = [e.iteration for e in events if e.stage == "masks"]
    assert masks[0] == 0 and masks[-1] == len(setup.train_views) and masks == sorted(set(masks))
    assert stages[:len(masks)] == ["masks"] * len(masks)
    assert "clustering" in stages and "training" in stages
    last_training = [e for e in events if e.stage == "training"][-1]
    assert last_training.iteration == last_training.total == CONFIG.iterations
    assert {"contrastive", "gfl", "hypersphere", "rendered_norm", "spatial", "total"} <= set(last_training.losses)
    assert all(e.eta_seconds >= 0 for e in events if e.stage == "training")


def test_field_metadata_describes_the_training(trained, setup):
    field, _ = trained
    assert field.features.shape == (len(setup.scene.cloud), 24)
    assert field.metadata["scene_hash"] == setup.scene.content_hash
    assert field.metadata["views"] == [v.name for v in setup.train_views]
    given = setup.masks.describe()  # the tiny preset snaps the masks to the images' colours first
    assert field.metadata["mask_source"] == {**given, "source": {**given["source"],
                                                                "snapped_to_colours": asdict(SnapSettings())}}
    assert TrainConfig.from_dict(field.metadata["settings"]) == CONFIG


@pytest.fixture(scope="module")
def short_run(setup):
    return setup.train(SHORT_CHANGES, seed=0)


def test_same_seed_gives_identical_features_and_another_seed_does_not(short_run, setup):
    again = setup.train(SHORT_CHANGES, seed=0)
    np.testing.assert_array_equal(again.features, short_run.features)
    for level in (COARSE, FINE):
        np.testing.assert_array_equal(again.clusters[level], short_run.clusters[level])
    other = setup.train(SHORT_CHANGES, seed=1)
    assert not np.array_equal(other.features, short_run.features)


def test_resume_after_cancel_equals_uninterrupted_training(short_run, setup, tmp_path):
    field = short_run
    seen = []

    def cancel_after_25():
        return len(seen) >= 25

    def count(event):
        if event.stage == "training":
            seen.append(event.iteration)

    with pytest.raises(TrainingCancelled):
        setup.train(SHORT_CHANGES, seed=0, checkpoint_dir=tmp_path, progress=count, should_stop=cancel_after_25)
    assert max(seen) == 25 < SHORT.iterations
    resumed_events = []
    resumed = setup.train(SHORT_CHANGES, seed=0, checkpoint_dir=tmp_path, progress=resumed_events.append)
    first = [e.iteration for e in resumed_events if e.stage == "training"][0]
    assert first == 21  # continued after the checkpoint of iteration 20, not from zero
    np.testing.assert_array_equal(resumed.features, field.features)
    for level in (COARSE, FINE):
        np.testing.assert_array_equal(resumed.clusters[level], field.clusters[level])


def test_checkpoint_of_other_settings_is_refused(setup, tmp_path):
    setup.train({**SHORT_CHANGES, "iterations": 10}, seed=0, checkpoint_dir=tmp_path)
    with pytest.raises(ClickGaussInputError, match="checkpoint"):
        setup.train(SHORT_CHANGES, seed=0, checkpoint_dir=tmp_path)


def test_trained_click_selects_the_clicked_object(trained, setup):
    field, _ = trained
    synthetic = setup.synthetic
    counted = visible_gaussians(setup.scene.gaussians, synthetic.cameras)
    result = evaluate_level(field, setup.scene.gaussians, synthetic, COARSE, synthetic.test_indices, counted,
                            threshold=0.8)
    assert len(result.per_target_3d) >= 2
    assert result.iou_3d >= 0.6 and result.iou_2d >= 0.6, result.to_dict()

    # the same field's features shuffled between Gaussians select nothing coherent
    shuffled = FeatureField(np.random.default_rng(0).permutation(field.features), field.clusters, field.metadata)
    baseline = evaluate_level(shuffled, setup.scene.gaussians, synthetic, COARSE, synthetic.test_indices, counted,
                              threshold=0.8)
    assert baseline.iou_3d < result.iou_3d - 0.3

    target = plan_clicks(synthetic, COARSE, synthetic.test_indices)[0]
    selection = click(field, setup.scene.gaussians, synthetic.cameras[target.view_index], target.pixel, COARSE)
    truth = synthetic.gaussian_labels(COARSE) == target.label
    assert (selection & truth & counted).sum() > 0.5 * (truth & counted).sum()


def test_cli_train_click_segment_all(setup, backend_cli, tmp_path):
    synthetic = setup.synthetic
    out = tmp_path / "field.npz"
    subprocess.run([*backend_cli, "train", str(synthetic.ply_path), "--dataset", str(synthetic.dataset_path),
                    "--masks", str(synthetic.masks_dir), "--preset", PRESET_TINY, "--out", str(out)],
                   check=True, capture_output=True, text=True)
    field = FeatureField.load(out)
    assert field.metadata["scene_hash"] == setup.scene.content_hash

    target = plan_clicks(synthetic, COARSE, synthetic.test_indices)[0]
    camera_json = tmp_path / "camera.json"
    camera_json.write_text(json.dumps(wire.camera_to_dict(synthetic.cameras[target.view_index])))
    mask_path = tmp_path / "mask.npy"
    subprocess.run([*backend_cli, "click", str(out), str(synthetic.ply_path), "--camera", str(camera_json),
                    "--pixel", str(target.pixel[0]), str(target.pixel[1]), "--level", COARSE,
                    "--out", str(mask_path)], check=True, capture_output=True, text=True)
    selection = np.load(mask_path)
    expected = click(field, setup.scene.gaussians, synthetic.cameras[target.view_index], target.pixel, COARSE)
    np.testing.assert_array_equal(selection, expected)
    assert selection.any()

    ids_path = tmp_path / "ids.npz"
    subprocess.run([*backend_cli, "segment-all", str(out), "--out", str(ids_path)], check=True, capture_output=True)
    with np.load(ids_path) as ids:
        np.testing.assert_array_equal(ids[COARSE], field.cluster_ids(COARSE))
        assert ids[FINE].shape == (len(field),)

    bad = subprocess.run([*backend_cli, "click", str(tmp_path / "nope.npz"), str(synthetic.ply_path), "--camera",
                          str(camera_json), "--pixel", "1", "1", "--level", COARSE, "--out", str(mask_path)],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "nope.npz" in bad.stderr


def test_mask_edges_are_where_ids_change_and_thin_parts_keep_their_pixels():
    ids = np.zeros((9, 11), dtype=np.int64)
    ids[2:7, 2:7] = 1  # a 5x5 square: its 16-pixel rim is edge, the 3x3 core is not
    ids[2:7, 9] = 2    # a one-pixel-wide bar: all edge, so none of it is dropped
    ids[0, 0] = 3      # a one-pixel segment: likewise kept
    edges = mask_edges(ids)
    square = np.zeros_like(edges)
    square[2:7, 2:7] = True
    square[3:6, 3:6] = False
    assert np.array_equal(edges & (ids == 1), square)
    assert not edges[ids == 2].any() and not edges[0, 0]
    # the background's pixels touching the square, the bar or the dot are edge; the others are not
    assert edges[1, 4] and edges[7, 3] and edges[4, 8] and edges[0, 1]
    assert not edges[8, 0] and not edges[4, 0]


def test_spatial_neighbours_of_alike_size_leave_a_large_gaussian_out_of_small_ones():
    # a row of small Gaussians (an object's surface) with one large floor Gaussian centred among
    # them, and a row of large ones (the floor) further off
    small = np.stack([np.arange(8) * 0.01, np.zeros(8), np.zeros(8)], axis=1)
    large_one = np.array([[0.035, 0.002, 0.0]])
    floor = np.stack([0.2 + np.arange(6) * 0.1, np.zeros(6), np.zeros(6)], axis=1)
    positions = np.concatenate([small, large_one, floor])
    sizes = np.array([0.01] * 8 + [0.1] + [0.12] * 6)
    big = 8
    nearest = neighbour_table(positions, 3)
    assert set(nearest[big]) <= set(range(8))  # by centres alone: three of the small ones
    alike = neighbour_table(positions, 3, sizes, max_size_ratio=3.0)
    assert set(alike[big]) == {9, 10, 11}      # its own kind, though further away
    assert all(set(alike[i]) <= set(range(8)) - {i} for i in range(8))
    # a Gaussian with too few alike neighbours lists itself in the free places
    lonely = neighbour_table(positions[:9], 3, sizes[:9], max_size_ratio=3.0)
    assert list(lonely[big]) == [big, big, big]


def test_colour_affinity_keeps_alike_colours_and_drops_a_colour_edge():
    # a red Gaussian whose neighbours are a slightly different red and a green one (a part's edge)
    colours = np.array([[0.80, 0.10, 0.10], [0.83, 0.12, 0.09], [0.10, 0.70, 0.20]])
    weights = colour_affinity(colours, np.array([[1, 2], [0, 2], [0, 1]]), sigma=0.1)
    assert weights.shape == (3, 2) and weights.dtype == np.float32
    assert weights[0, 0] > 0.9 and weights[1, 0] > 0.9   # alike: kept (symmetric)
    assert weights[0, 1] < 1e-6 and weights[2, 0] < 1e-6  # across the colour edge: gone
    assert math.isclose(float(colour_affinity(colours[:2], np.array([[1], [0]]), sigma=0.1)[0, 0]),
                        math.exp(-(0.03 ** 2 + 0.02 ** 2 + 0.01 ** 2) / (2 * 0.1 ** 2)), rel_tol=1e-5)


def test_spatial_colour_sigma_reaches_the_training(short_run, setup):
    # the other side of the preset's choice (weighted pairs or the paper's) trains other features
    other_sigma = 0.0 if short_run.config.spatial_colour_sigma > 0 else 0.1
    other = setup.train({**SHORT_CHANGES, "spatial_colour_sigma": other_sigma}, seed=0)
    assert other.config.spatial_colour_sigma == other_sigma
    assert not np.allclose(other.features, short_run.features, atol=1e-3)


def test_gradient_min_transmittance_reaches_the_training(short_run, setup):
    # Off in every preset; switched on, the loss's and the votes' renders cut what lies behind
    # (`render.rasterize`, tested in test_render.py): the same seed then trains other features.
    cut = setup.train({**SHORT_CHANGES, "gradient_min_transmittance": 0.5}, seed=0)
    assert cut.config.gradient_min_transmittance == 0.5 and short_run.config.gradient_min_transmittance == 0.0
    assert not np.allclose(cut.features, short_run.features, atol=1e-3)


def test_gfl_votes_send_a_stray_floor_gaussian_back_to_the_floor(setup):
    config = CONFIG.with_changes(gfl_vote_ratio_coarse=2.0, gfl_vote_ratio_fine=0.0, gfl_noise_vote_ratio=0.0)
    objects, parts = setup.synthetic.gaussian_labels(COARSE), setup.synthetic.gaussian_labels(FINE)
    count = len(objects)
    # the features of a perfect field: one direction per object (0: the floor), one per part
    directions = torch.nn.functional.normalize(torch.randn(int(parts.max()) + 1, config.rest_dim,
                                                           generator=torch.Generator().manual_seed(0)), dim=1)
    perfect = torch.zeros(count, config.feature_dim)
    perfect[np.arange(count), objects] = 1.0
    perfect[:, config.coarse_dim:] = directions[parts]
    views = _TrainingViews(setup.masks, setup.train_views, config)
    centres, targets = compute_global_clusters(setup.scene.gaussians, perfect, views, config)
    assert (targets[COARSE] >= 0).sum() <= 0.005 * count  # a perfect field is (nearly) left alone
    assert FINE not in targets  # no votes at a level whose ratio is 0
    # the floor's 30 largest Gaussians take the first object's feature, as if pulled into it
    floor = np.flatnonzero(objects == 0)
    strays = floor[np.argsort(-setup.scene.cloud.log_scales[floor].max(axis=1))[:30]]
    astray = perfect.clone()
    astray[strays, :config.coarse_dim] = 0.0
    astray[strays, 1] = 1.0
    centres, targets = compute_global_clusters(setup.scene.gaussians, astray, views, config)
    sent = targets[COARSE][strays]
    assert (sent >= 0).sum() >= 10
    assert (centres[COARSE][sent[sent >= 0]].argmax(axis=1) == 0).all()  # back to a floor cluster
    # without votes (the paper's GFL) nothing is retargeted
    paper_gfl = config.with_changes(gfl_vote_ratio_coarse=0.0)
    _, none = compute_global_clusters(setup.scene.gaussians, astray, views, paper_gfl)
    assert none == {}


def test_gfl_noise_votes_leave_a_part_without_a_cluster_out_of_every_cluster(setup):
    """A part whose segments HDBSCAN leaves as noise (here: its Gaussians' features scattered, so
    its segment means agree in no two views) is in no cluster: GFL pulls its Gaussians nowhere
    (`losses.UNCLUSTERED`); the Gaussians of the parts with a cluster keep theirs."""
    config = CONFIG.with_changes(gfl_vote_ratio_coarse=0.0, gfl_vote_ratio_fine=0.0, gfl_noise_vote_ratio=2.0)
    objects, parts = setup.synthetic.gaussian_labels(COARSE), setup.synthetic.gaussian_labels(FINE)
    generator = torch.Generator().manual_seed(0)
    directions = torch.nn.functional.normalize(torch.randn(int(parts.max()) + 1, config.rest_dim, generator=generator), dim=1)
    features = torch.zeros(len(objects), config.feature_dim)
    features[np.arange(len(objects)), objects] = 1.0
    features[:, config.coarse_dim:] = directions[parts]
    seen = visible_gaussians(setup.scene.gaussians, [view.camera for view in setup.train_views])
    scattered = int(np.bincount(parts[seen & (parts > 0)]).argmax())  # the part seen most
    in_scattered = parts == scattered
    features[in_scattered, config.coarse_dim:] = torch.nn.functional.normalize(
        torch.randn(int(in_scattered.sum()), config.rest_dim, generator=generator), dim=1)
    views = _TrainingViews(setup.masks, setup.train_views, config)
    _, targets = compute_global_clusters(setup.scene.gaussians, features, views, config)
    unclustered = targets[FINE] == losses.UNCLUSTERED
    # (where its pixels share segments with its neighbours' they vote for those clusters: 37 % left out)
    assert unclustered[in_scattered & seen].mean() >= 0.25
    assert unclustered[~in_scattered & (parts > 0) & seen].mean() <= 0.02
    # without the ratio (the paper's GFL) no Gaussian is left out
    paper_gfl = config.with_changes(gfl_noise_vote_ratio=0.0)
    assert compute_global_clusters(setup.scene.gaussians, features, views, paper_gfl)[1] == {}


def test_sampling_covers_uncovered_surfaces_and_skips_mask_edges(setup):
    raw = setup.masks.load(0)
    coarse, fine = np.asarray(raw.coarse).reshape(-1), np.asarray(raw.fine).reshape(-1)
    paper = _TrainingViews(setup.masks, setup.train_views, TrainConfig()).get(0)
    robust = _TrainingViews(setup.masks, setup.train_views,
                            TrainConfig(unmasked_negatives=True, skip_mask_edges=True)).get(0)
    # the paper's recipe samples exactly the masked pixels, each level's masks with equal mass
    assert np.array_equal(paper.sampling_weight > 0, coarse > 0)
    assert np.isclose(paper.sampling_weight.sum(), len(np.unique(coarse[coarse > 0])) + len(np.unique(fine[fine > 0])))
    # edges dropped at each level; what no mask covers is sampled with the mass of one mask per level
    for level, ids in ((COARSE, coarse), (FINE, fine)):
        edges = mask_edges(ids.reshape(np.asarray(raw.coarse).shape)).reshape(-1)
        assert edges.any() and not robust.ids[level][edges].any()
        assert np.array_equal(robust.ids[level][~edges], ids[~edges])
    assert robust.unmasked.any() and not (robust.unmasked & (coarse > 0)).any()
    masked_mass = sum(len(np.unique(robust.ids[level][robust.ids[level] > 0])) for level in (COARSE, FINE))
    assert np.isclose(robust.sampling_weight[robust.unmasked].sum(), 2.0)
    assert np.isclose(robust.sampling_weight.sum(), masked_mass + 2.0)


def test_sampling_exponent_divides_a_levels_share_but_keeps_the_levels_balance(setup):
    raw = setup.masks.load(0)
    coarse, fine = np.asarray(raw.coarse).reshape(-1), np.asarray(raw.fine).reshape(-1)
    fine_counts = np.bincount(fine)
    fine_part = np.zeros(coarse.size)
    fine_part[fine > 0] = 1.0 / fine_counts[fine[fine > 0]]  # the fine level keeps the paper's 1 / area
    coarse_ids, coarse_counts = np.unique(coarse[coarse > 0], return_counts=True)
    # exponent 0 at the coarse level: every coarse-masked pixel weighs the same (a mask's share grows
    # with its area), and the level still has one share per mask in all
    flat = _TrainingViews(setup.masks, setup.train_views, TrainConfig(sampling_exponent_coarse=0.0)).get(0)
    coarse_part = flat.sampling_weight - fine_part
    assert np.allclose(coarse_part[coarse > 0], len(coarse_ids) / (coarse > 0).sum())
    # 0.5: a mask's share goes as the square root of its area, the level's total unchanged
    half = _TrainingViews(setup.masks, setup.train_views, TrainConfig(sampling_exponent_coarse=0.5)).get(0)
    shares = np.array([(half.sampling_weight - fine_part)[coarse == i].sum() for i in coarse_ids])
    assert np.allclose(shares / shares.sum(), np.sqrt(coarse_counts) / np.sqrt(coarse_counts).sum())
    assert np.isclose(shares.sum(), len(coarse_ids))
    # so the fine level's part of the samples does not shrink when the coarse exponent falls
    paper = _TrainingViews(setup.masks, setup.train_views, TrainConfig()).get(0)
    for view in (flat, half):
        assert np.isclose(view.sampling_weight.sum(), paper.sampling_weight.sum())


def test_masks_under_the_minimum_fraction_get_a_share_by_their_area(setup):
    raw = setup.masks.load(0)
    coarse, fine = np.asarray(raw.coarse).reshape(-1), np.asarray(raw.fine).reshape(-1)
    ids, counts = np.unique(coarse[coarse > 0], return_counts=True)
    floor_pixels = float(np.median(counts))  # half of the coarse masks are under it
    config = TrainConfig(sampling_min_mask_fraction_coarse=floor_pixels / coarse.size)
    view = _TrainingViews(setup.masks, setup.train_views, config).get(0)
    fine_counts = np.bincount(fine)
    fine_part = np.zeros(coarse.size)
    fine_part[fine > 0] = 1.0 / fine_counts[fine[fine > 0]]
    shares = np.array([(view.sampling_weight - fine_part)[coarse == i].sum() for i in ids])
    small = counts < floor_pixels
    assert small.any() and (~small).any()
    assert np.allclose(shares[~small], 1.0)                    # the paper's equal share
    assert np.allclose(shares[small], counts[small] / floor_pixels)  # a sliver: its area's worth
