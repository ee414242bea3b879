"""clickgauss_core.click without torch: the culling never drops a Gaussian that contributes to the
pixel (checked against projecting every Gaussian), on awkward clouds and cameras; and the stored
field's archive and record (clickgauss_core.stored_field)."""

import io
import json

import numpy as np
import pytest

from clickgauss_core.cameras import Camera
from clickgauss_core.click import ALPHA_THRESHOLD, ClickIndex, assign_to_clusters, level_slice, select, unit_rows
from clickgauss_core.protocol import COARSE, FINE
from clickgauss_core.stored_field import FieldRecord, StoredFieldError, read_field_archive


def _camera(rng, projection, width=97, height=61):
    rotation, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    rotation *= np.sign(np.linalg.det(rotation))
    w2c = np.eye(4)
    w2c[:3, :3] = rotation
    w2c[:3, 3] = (0.0, 0.0, 6.0)  # the origin 6 units in front of the camera, seen from a random direction
    fx = rng.uniform(20, 120) if projection == "perspective" else rng.uniform(5, 20)
    return Camera(w2c, width, height, fx, fx * rng.uniform(0.5, 2.0), rng.uniform(0, width), rng.uniform(0, height),
                  projection=projection, near=0.1)


def _awkward_cloud(rng, n=3000):
    """Clustered means, scales over three orders of magnitude, needle-like Gaussians, a few huge
    ones, opacities down to below the alpha threshold."""
    means = np.concatenate([rng.standard_normal((n // 2, 3)) * 0.3, rng.uniform(-3, 3, (n - n // 2, 3))])
    scales = np.exp(rng.uniform(-6, -1, (n, 3)))
    scales[::50, 0] *= 30.0  # needles / huge
    quats = rng.standard_normal((n, 4))
    opacities = rng.uniform(0.0, 1.0, n)
    opacities[::7] = ALPHA_THRESHOLD * 0.5
    return means, scales, quats, opacities


@pytest.mark.parametrize("projection", ["perspective", "orthographic"])
def test_culling_keeps_every_contributing_gaussian(projection):
    rng = np.random.default_rng(0 if projection == "perspective" else 1)
    index = ClickIndex(*_awkward_cloud(rng))
    everyone = np.arange(len(index))
    checked = 0
    for _ in range(40):
        camera = _camera(rng, projection)
        x, y = int(rng.integers(camera.width)), int(rng.integers(camera.height))
        _, _, counts = index._alpha_at(everyone, camera, x + 0.5, y + 0.5)
        contributing = set(np.flatnonzero(counts).tolist())
        candidates = set(index.candidates(camera, (x, y)).tolist())
        assert contributing <= candidates, sorted(contributing - candidates)[:5]
        assert len(candidates) < len(index)  # and it does cull
        checked += len(contributing)
    assert checked > 100


def test_composite_is_front_to_back_and_stops_when_opaque():
    # Ten opaque discs facing the camera, one behind the other: the first takes 0.999 of the pixel.
    n = 10
    means = np.zeros((n, 3))
    means[:, 2] = np.arange(n, dtype=float)
    index = ClickIndex(means, np.full((n, 3), 0.5), np.tile([1.0, 0, 0, 0], (n, 1)), np.full(n, 1.0))
    w2c = np.eye(4)
    w2c[2, 3] = 5.0
    camera = Camera(w2c, 32, 32, 40.0, 40.0, 16.5, 16.5, near=0.1)  # disc centres on pixel (16, 16)
    composite = index.composite(camera, (16.2, 16.9))
    assert composite.ids[0] == 0 and composite.weights[0] == pytest.approx(0.999, abs=1e-6)
    assert composite.transmittance > 1e-4 and len(composite.ids) <= 2
    features = np.eye(n, dtype=np.float32)
    assert composite.feature(features)[0] == pytest.approx(0.999, abs=1e-6)


def test_select_and_clusters():
    features = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]], dtype=np.float32)
    selected, similarity, used = select(unit_rows(features), np.array([2.0, 0.0]), 0.9)
    assert selected.tolist() == [True, True, False] and similarity[0] == pytest.approx(1.0) and used == 0.9
    assert assign_to_clusters(features, np.array([[1.0, 0.0]]), 0.75).tolist() == [0, 0, -1]
    assert level_slice(FINE, 12, 24, False) == slice(12, 24)
    with pytest.raises(ValueError, match="unknown level"):
        level_slice("medium")


def _archive(features, metadata, **overrides):
    arrays = {"features": features, "clusters_coarse": np.eye(12, dtype=np.float32)[:2],
              "clusters_fine": np.eye(24, dtype=np.float32)[:3], "metadata_json": np.array(json.dumps(metadata))}
    arrays.update(overrides)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_field_archive_to_record_and_back():
    features = np.random.default_rng(0).standard_normal((50, 24)).astype(np.float32)
    metadata = {"scene_hash": "ab" * 32, "settings": {"feature_dim": 24, "coarse_dim": 12, "granularity_prior": True}}
    read, record = read_field_archive(_archive(features, metadata))
    np.testing.assert_array_equal(read, features)
    assert record.level_slices == {COARSE: (0, 12), FINE: (0, 24)}
    assert record.thresholds == {COARSE: 0.6, FINE: 0.9}
    again = FieldRecord.from_json(record.to_json())
    assert again.trained_from["scene_hash"] == "ab" * 32
    np.testing.assert_array_equal(again.clusters[FINE], record.clusters[FINE])
    assert again.segment_ids(features, COARSE).shape == (50,)


def test_bad_field_archives_are_named_errors():
    with pytest.raises(StoredFieldError, match="not a readable"):
        read_field_archive(b"<html>502 Bad Gateway</html>", "download")
    features = np.zeros((5, 24), dtype=np.float32)
    with pytest.raises(StoredFieldError, match="settings say 16"):
        read_field_archive(_archive(features, {"settings": {"feature_dim": 16}}))
    with pytest.raises(StoredFieldError, match="finite"):
        read_field_archive(_archive(np.full((5, 24), np.nan, dtype=np.float32), {}))
    buffer = io.BytesIO()
    np.savez(buffer, features=features)
    with pytest.raises(StoredFieldError, match="missing clusters_coarse"):
        read_field_archive(buffer.getvalue())
    with pytest.raises(StoredFieldError, match="damaged"):
        FieldRecord.from_json(json.dumps({"version": 1, "feature_dim": 24}))
