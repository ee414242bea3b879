"""Feature-field file, click and segment-all queries on hand-made fields (no training needed)."""

import json

import numpy as np
import pytest
import torch

from clickgauss_core.cameras import Camera
from clickgauss_core.errors import ClickGaussInputError
from clickgauss_core.gaussians import GaussianCloud
from clickgauss_core.protocol import COARSE, FINE

from clickgauss_backend.features.field import FeatureField, FeatureFieldError
from clickgauss_backend.features.config import TrainConfig
from clickgauss_backend.features.query import DEFAULT_THRESHOLDS, click, click_with_feature, segment_all, similarity_to
from clickgauss_backend.render import GaussianTensors


def direction(index, dims=12):
    v = np.zeros(dims, dtype=np.float32)
    v[index] = 1.0
    return v


def two_objects_scene():
    """Object A (left, x < 0) with parts A1 (top) and A2 (bottom); object B (right). 100 Gaussians each part."""
    rng = np.random.default_rng(0)
    centres = {"A1": (-0.6, -0.3, 0.0), "A2": (-0.6, 0.3, 0.0), "B": (0.6, 0.0, 0.0)}
    positions, labels = [], []
    for name, centre in centres.items():
        positions.append(np.asarray(centre) + 0.05 * rng.standard_normal((100, 3)))
        labels += [name] * 100
    positions = np.concatenate(positions)
    n = len(positions)
    cloud = GaussianCloud.from_arrays(positions, np.full((n, 3), np.log(0.05)), np.tile([1.0, 0, 0, 0], (n, 1)),
                                      np.full(n, 4.0), np.zeros((n, 3)))
    coarse = {"A1": direction(0), "A2": direction(0), "B": direction(1)}
    rest = {"A1": direction(0), "A2": direction(1), "B": direction(2)}
    features = np.stack([np.concatenate([coarse[l], rest[l]]) for l in labels])
    field = FeatureField(features, clusters={COARSE: np.stack([direction(0), direction(1)]),
                                             FINE: np.stack([features[0], features[100], features[200]]) / np.sqrt(2)},
                         metadata={"scene_hash": "abc", "settings": TrainConfig().to_dict()})
    # camera 3 units in front (OpenCV: +z forward), world y down = image down
    camera = Camera(world_to_camera=np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 3.0], [0, 0, 0, 1]]),
                    width=80, height=60, fx=60, fy=60, cx=40, cy=30)
    return GaussianTensors.from_cloud(cloud), field, np.array(labels), camera


def pixel_of(camera, point):
    uv, _ = camera.project(np.asarray([point], dtype=np.float64))
    return tuple(uv[0])


def test_click_coarse_selects_the_whole_object_and_fine_only_the_part():
    gaussians, field, labels, camera = two_objects_scene()
    coarse = click(field, gaussians, camera, pixel_of(camera, (-0.6, -0.3, 0)), COARSE)
    assert coarse.dtype == bool and coarse.shape == (300,)
    assert np.array_equal(coarse, np.isin(labels, ["A1", "A2"]))
    fine = click(field, gaussians, camera, pixel_of(camera, (-0.6, -0.3, 0)), FINE)
    assert np.array_equal(fine, labels == "A1")
    right = click(field, gaussians, camera, pixel_of(camera, (0.6, 0, 0)), COARSE)
    assert np.array_equal(right, labels == "B")


def test_threshold_controls_the_selection():
    gaussians, field, labels, camera = two_objects_scene()
    # sibling parts have fine cosine 0.5 (shared coarse half): a threshold below that takes both
    loose = click(field, gaussians, camera, pixel_of(camera, (-0.6, -0.3, 0)), FINE, threshold=0.4)
    assert np.array_equal(loose, np.isin(labels, ["A1", "A2"]))
    assert 0.5 < DEFAULT_THRESHOLDS[FINE] < 1.0 and 0.0 < DEFAULT_THRESHOLDS[COARSE] < 1.0


def test_a_click_without_threshold_takes_its_own_threshold_from_its_similarities():
    """A sibling part pulled close (fine cosine ~0.92 to the clicked part): the fixed 0.90 takes
    both parts, the click's adaptive threshold (the gap between 0.92 and the clicked part's 1.0)
    only the clicked one; an explicit threshold still wins."""
    gaussians, field, labels, camera = two_objects_scene()
    features = field.features.copy()
    rest = 0.83 * direction(0) + np.sqrt(1 - 0.83 ** 2) * direction(1)  # rest cosine 0.83 to A1's
    features[100:200, 12:] = rest
    close = FeatureField(features, clusters=field.clusters, metadata=field.metadata)
    pixel = pixel_of(camera, (-0.6, -0.3, 0))
    fixed = click(close, gaussians, camera, pixel, FINE, threshold=DEFAULT_THRESHOLDS[FINE])
    assert np.array_equal(fixed, np.isin(labels, ["A1", "A2"]))
    adaptive, _, used = click_with_feature(close, gaussians, camera, pixel, FINE)
    assert np.array_equal(adaptive, labels == "A1")
    assert 0.92 < used < 1.0
    assert np.array_equal(click(close, gaussians, camera, pixel, FINE), adaptive)


def test_similarity_is_cosine_against_every_gaussian_at_the_level():
    _, field, labels, _ = two_objects_scene()
    query = np.concatenate([direction(0), direction(1)])  # the A2 feature
    fine = similarity_to(field, query, FINE).numpy()
    np.testing.assert_allclose(fine[labels == "A2"], 1.0, atol=1e-6)
    np.testing.assert_allclose(fine[labels == "A1"], 0.5, atol=1e-6)
    np.testing.assert_allclose(fine[labels == "B"], 0.0, atol=1e-6)
    coarse = similarity_to(field, query, COARSE).numpy()
    np.testing.assert_allclose(coarse[labels != "B"], 1.0, atol=1e-6)


def test_click_outside_the_image_or_on_another_scene_is_a_clear_error():
    gaussians, field, _, camera = two_objects_scene()
    with pytest.raises(ClickGaussInputError, match="outside"):
        click(field, gaussians, camera, (80, 10), COARSE)
    with pytest.raises(ClickGaussInputError, match="level"):
        click(field, gaussians, camera, (10, 10), "medium")
    smaller = gaussians.subset(torch.arange(10))
    with pytest.raises(ClickGaussInputError, match="another PLY"):
        click(field, smaller, camera, (10, 10), COARSE)


def test_segment_all_assigns_global_clusters():
    _, field, labels, _ = two_objects_scene()
    ids = segment_all(field)
    assert len(set(ids[COARSE][labels != "B"])) == 1 and ids[COARSE][0] != ids[COARSE][-1]
    assert len({ids[FINE][0], ids[FINE][100], ids[FINE][200]}) == 3
    assert (ids[COARSE] >= 0).all()


def test_field_save_load_round_trip(tmp_path):
    _, field, _, _ = two_objects_scene()
    field.metadata["views"] = ["a.png", "b.png"]
    path = tmp_path / "field.npz"
    field.save(path)
    loaded = FeatureField.load(path)
    np.testing.assert_array_equal(loaded.features, field.features)
    for level in (COARSE, FINE):
        np.testing.assert_array_equal(loaded.clusters[level], field.clusters[level])
    assert loaded.metadata == json.loads(json.dumps(field.metadata))
    assert loaded.scene_hash == "abc" and loaded.config == TrainConfig()
    with np.load(path, allow_pickle=False) as data:  # nothing in it needs pickle
        assert set(data.files) == {"features", "clusters_coarse", "clusters_fine", "metadata_json"}


def test_field_load_errors_name_the_file(tmp_path):
    with pytest.raises(FeatureFieldError, match="missing.npz"):
        FeatureField.load(tmp_path / "missing.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(FeatureFieldError, match="garbage.npz"):
        FeatureField.load(garbage)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, features=np.zeros((2, 24), np.float32), clusters_coarse=np.zeros((0, 12)),
             clusters_fine=np.zeros((0, 24)), metadata_json=np.array([{"version": 1}], dtype=object))
    with pytest.raises(FeatureFieldError, match="pickled.npz"):
        FeatureField.load(pickled)
    other = tmp_path / "other.npz"
    np.savez(other, something=np.zeros(3))
    with pytest.raises(FeatureFieldError, match="missing"):
        FeatureField.load(other)
    future = tmp_path / "future.npz"
    np.savez(future, features=np.zeros((2, 24), np.float32), clusters_coarse=np.zeros((0, 12)),
             clusters_fine=np.zeros((0, 24)), metadata_json=np.array(json.dumps({"version": 99})))
    with pytest.raises(FeatureFieldError, match="version 99"):
        FeatureField.load(future)
