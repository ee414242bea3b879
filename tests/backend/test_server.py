"""The service end to end, against the REAL server process and the real engine (synthetic "tiny").

One server trains the tiny scene once (module fixture); the tests then check progress, clicks,
segment-all, the feature-field download/upload (into a second server), cancel, resume and the queue.
"""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pytest
from clickgauss_backend.features.config import TrainConfig
from clickgauss_backend.features.evaluate import iou, plan_clicks, visible_gaussians
from clickgauss_backend.features.field import FeatureField
from clickgauss_backend.features.query import click_with_feature as engine_click
from clickgauss_backend.splat_scene import SplatScene
from clickgauss_core import wire
from clickgauss_core.ply import read_gaussian_ply, write_gaussian_ply
from clickgauss_core.protocol import (
    CANCELLED, COARSE, DONE, FAILED, FINE, INTERRUPTED, INVALID_FIELD, JOB_NOT_RESUMABLE, PRESET_TINY,
    QUEUED, RUNNING, TRAINING_RUNNING,
)

TERMINAL = (DONE, FAILED, CANCELLED, INTERRUPTED)
TINY_ITERATIONS = TrainConfig.preset(PRESET_TINY).iterations


@pytest.fixture(scope="module")
def server(start_module_server, tiny_synthetic_scene):
    return start_module_server(data_roots=[tiny_synthetic_scene.root])


def open_scene(server, synthetic, ply_path=None) -> dict:
    response = server.post("/v1/scenes", json={"ply_path": str(ply_path or synthetic.ply_path),
                                               "dataset_path": str(synthetic.dataset_path)})
    assert response.status_code == 200, response.text
    return response.json()


def start_job(server, synthetic, scene_id: str, **settings) -> dict:
    response = server.post("/v1/jobs", json={"scene_id": scene_id, "preset": PRESET_TINY, "settings": settings,
                                             "masks": {"source": "folder", "path": str(synthetic.masks_dir)}})
    assert response.status_code == 202, response.text
    return response.json()


@pytest.fixture(scope="module")
def trained(server, tiny_synthetic_scene):
    """Train the tiny scene through the API; keep every progress snapshot the client saw."""
    scene = open_scene(server, tiny_synthetic_scene)
    job = start_job(server, tiny_synthetic_scene, scene["scene_id"])
    second_request = server.post("/v1/jobs", json={"scene_id": scene["scene_id"], "preset": PRESET_TINY,
                                                   "masks": {"source": "folder", "path": str(tiny_synthetic_scene.masks_dir)}})
    snapshots: list[dict] = []
    final = server.wait_for_job(job["job_id"], on_poll=snapshots.append)
    return {"scene": scene, "job": job, "final": final, "snapshots": snapshots, "second_request": second_request}


def download_field(server, scene_id: str, folder) -> FeatureField:
    response = server.get(f"/v1/scenes/{scene_id}/field")
    assert response.status_code == 200, response.text
    (folder / "downloaded.npz").write_bytes(response.content)
    return FeatureField.load(folder / "downloaded.npz")


def click(server, scene_id: str, camera, pixel, level: str, threshold=None) -> dict:
    response = server.post(f"/v1/scenes/{scene_id}/click", json={"camera": wire.camera_to_dict(camera), "pixel": list(pixel),
                                                                 "level": level, "threshold": threshold})
    assert response.status_code == 200, response.text
    return response.json()


def test_health_describes_the_server(server):
    health = server.get("/v1/health").json()
    assert health["status"] == "ok" and health["api"] == "v1" and health["device"] == "cpu"
    assert health["sam_checkpoint_configured"] is False and health["auth_required"] is False
    assert health["gsplat_usable"] is (health["cuda_available"] and health["gsplat_usable"])
    assert health["version"]
    assert "/v1/scenes/{scene_id}/click" in server.get("/openapi.json").json()["paths"]


def test_scene_identity_is_the_content_hash(server, tiny_synthetic_scene):
    first = open_scene(server, tiny_synthetic_scene)
    again = open_scene(server, tiny_synthetic_scene)
    assert first["scene_id"] == again["scene_id"] == hashlib.sha256(tiny_synthetic_scene.ply_path.read_bytes()).hexdigest()
    assert first["n_gaussians"] == len(tiny_synthetic_scene.gaussian_objects)
    assert first["n_views"] == len(tiny_synthetic_scene.view_names)
    listed = server.get("/v1/scenes").json()["scenes"]
    assert [s["scene_id"] for s in listed].count(first["scene_id"]) == 1
    assert server.get(f"/v1/scenes/{first['scene_id']}").json() == again


def test_training_reports_progress_and_finishes(server, trained):
    final, snapshots = trained["final"], trained["snapshots"]
    assert final["state"] == DONE, final
    assert final["error"] is None and final["stage"] == DONE and final["finished_at"]
    assert final["iteration"] == final["total"] == TINY_ITERATIONS
    # A second training of the same scene while the first was queued/running is refused.
    second = trained["second_request"]
    assert second.status_code == 409 and second.json()["error"]["code"] == TRAINING_RUNNING
    training = [s for s in snapshots if s["state"] == RUNNING and s["stage"] == "training"]
    assert training, [(s["state"], s["stage"]) for s in snapshots]
    iterations = [s["iteration"] for s in training]
    assert iterations == sorted(iterations)
    assert all(s["total"] == TINY_ITERATIONS for s in training)
    assert any(s["losses"] for s in training)
    assert all(v is None or np.isfinite(v) for s in training for v in s["losses"].values())
    assert any(s["eta_seconds"] is not None and s["eta_seconds"] >= 0 for s in training)
    scene = server.get(f"/v1/scenes/{trained['scene']['scene_id']}").json()
    assert scene["has_features"] is True and scene["training_job"] is None
    assert final["job_id"] in [job["job_id"] for job in server.get("/v1/jobs").json()["jobs"]]
    assert [job["job_id"] for job in server.get("/v1/jobs", params={"scene_id": scene["scene_id"]}).json()["jobs"]] \
        == [final["job_id"]]
    assert server.get("/v1/jobs", params={"scene_id": "0" * 64}).json()["jobs"] == []


@pytest.fixture(scope="module")
def engine_scene(tiny_synthetic_scene):
    """The same scene loaded in the test process, to compare the server with the engine itself."""
    scene = SplatScene.load(tiny_synthetic_scene.ply_path, tiny_synthetic_scene.dataset_path)
    return scene, visible_gaussians(scene.gaussians, tiny_synthetic_scene.cameras)


@pytest.mark.parametrize("level", [COARSE, FINE])
def test_click_selects_the_clicked_object(server, trained, tiny_synthetic_scene, engine_scene, level, tmp_path):
    synthetic, scene_id = tiny_synthetic_scene, trained["scene"]["scene_id"]
    scene, counted = engine_scene
    field = download_field(server, scene_id, tmp_path)
    scores = []
    targets = plan_clicks(synthetic, level, synthetic.test_indices)
    assert len(targets) >= 2
    for target in targets:
        camera = synthetic.cameras[target.view_index]
        result = click(server, scene_id, camera, target.pixel, level)
        selection = wire.decode_mask(result["mask"])
        assert result["selected"] == int(selection.sum()) and result["n_gaussians"] == len(selection)
        # Exactly the engine's answer for this camera and pixel, at the click's own adaptive
        # threshold (none was sent): nothing lost on the wire.
        expected, _, threshold = engine_click(field, scene.gaussians, camera, target.pixel, level)
        assert result["threshold"] == threshold
        np.testing.assert_array_equal(selection, expected)
        scores.append(iou(selection & counted, (synthetic.gaussian_labels(level) == target.label) & counted))
    # The tiny preset trains for seconds on inconsistent masks: a modest bar, but a real one.
    assert np.mean(scores) >= 0.5, scores


def test_click_threshold_controls_the_selection(server, trained, tiny_synthetic_scene):
    synthetic, scene_id = tiny_synthetic_scene, trained["scene"]["scene_id"]
    target = plan_clicks(synthetic, COARSE, synthetic.test_indices)[0]
    view, pixel = target.view_index, target.pixel
    everything = wire.decode_mask(click(server, scene_id, synthetic.cameras[view], pixel, COARSE, -1.0)["mask"])
    default = wire.decode_mask(click(server, scene_id, synthetic.cameras[view], pixel, COARSE)["mask"])
    strict = wire.decode_mask(click(server, scene_id, synthetic.cameras[view], pixel, COARSE, 0.999)["mask"])
    assert everything.all()
    assert strict.sum() <= default.sum() < everything.sum()
    assert not (strict & ~default).any()


def test_segment_everything(server, trained, tiny_synthetic_scene):
    response = server.get(f"/v1/scenes/{trained['scene']['scene_id']}/segments")
    assert response.status_code == 200, response.text
    body = response.json()
    count = len(tiny_synthetic_scene.gaussian_objects)
    assert body["n_gaussians"] == count
    for level in (COARSE, FINE):
        ids = wire.decode_array(body[level])
        assert ids.shape == (count,) and ids.dtype == np.int32 and ids.min() >= -1
        assert len(np.unique(ids[ids >= 0])) >= 2, level
        # Each segment is mostly one ground-truth label (segments follow the objects / parts).
        gt = tiny_synthetic_scene.gaussian_labels(level)
        purity = [np.bincount(gt[ids == s]).max() / (ids == s).sum() for s in np.unique(ids[ids >= 0])]
        assert np.average(purity, weights=[(ids == s).sum() for s in np.unique(ids[ids >= 0])]) >= 0.6


def test_feature_field_download_and_upload_restores_clicks(server, trained, tiny_synthetic_scene,
                                                           start_server, tmp_path):
    synthetic, scene_id = tiny_synthetic_scene, trained["scene"]["scene_id"]
    download = server.get(f"/v1/scenes/{scene_id}/field")
    assert download.status_code == 200 and download.headers["content-type"] == "application/octet-stream"
    (tmp_path / "field.npz").write_bytes(download.content)
    field = FeatureField.load(tmp_path / "field.npz")
    assert field.features.shape == (len(synthetic.gaussian_objects), 24) and field.scene_hash == scene_id

    fresh = start_server(data_roots=[synthetic.root])  # another cache: knows nothing of this scene
    assert open_scene(fresh, synthetic)["has_features"] is False
    npz = ("field.npz", download.content, "application/octet-stream")
    restored = fresh.put(f"/v1/scenes/{scene_id}/field", files={"file": npz})
    assert restored.status_code == 200, restored.text
    assert restored.json()["has_features"] is True
    target = plan_clicks(synthetic, FINE, synthetic.test_indices)[0]
    view, pixel = target.view_index, target.pixel
    for level in (COARSE, FINE):
        original = click(server, scene_id, synthetic.cameras[view], pixel, level)
        again = click(fresh, scene_id, synthetic.cameras[view], pixel, level)
        assert np.array_equal(wire.decode_mask(original["mask"]), wire.decode_mask(again["mask"]))


def test_bad_feature_field_uploads_are_refused(server, trained, tiny_synthetic_scene, tmp_path):
    scene_id = trained["scene"]["scene_id"]
    field = download_field(server, scene_id, tmp_path)

    def upload(content: bytes):
        return server.put(f"/v1/scenes/{scene_id}/field", files={"file": ("field.npz", content)})

    def error_code(response) -> str:
        assert response.status_code == 400, response.text
        return response.json()["error"]["code"]

    assert error_code(upload(b"not an npz")) == INVALID_FIELD
    assert error_code(upload(b"")) == INVALID_FIELD
    odd_metadata = io.BytesIO()
    np.savez(odd_metadata, features=field.features, clusters_coarse=field.clusters[COARSE],
             clusters_fine=field.clusters[FINE], metadata_json=np.array("[1, 2]"))
    assert error_code(upload(odd_metadata.getvalue())) == INVALID_FIELD
    other_scene = FeatureField(field.features, dict(field.clusters), {**field.metadata, "scene_hash": "f" * 64})
    other_scene.save(tmp_path / "other.npz")
    assert error_code(upload((tmp_path / "other.npz").read_bytes())) == INVALID_FIELD
    fewer = FeatureField(field.features[:-1], dict(field.clusters), dict(field.metadata))
    fewer.save(tmp_path / "fewer.npz")
    assert error_code(upload((tmp_path / "fewer.npz").read_bytes())) == INVALID_FIELD
    pickled = io.BytesIO()
    np.savez(pickled, features=np.array([{"evil": 1}], dtype=object), clusters_coarse=field.clusters[COARSE],
             clusters_fine=field.clusters[FINE], metadata_json=np.array(json.dumps(field.metadata)))
    assert error_code(upload(pickled.getvalue())) == INVALID_FIELD
    # The scene's own field is untouched by the refused uploads.
    assert np.array_equal(download_field(server, scene_id, tmp_path).features, field.features)


def test_cancel_resume_and_queue(server, trained, tiny_synthetic_scene):
    synthetic, scene_id = tiny_synthetic_scene, trained["scene"]["scene_id"]
    # <= 100 iterations: the trainer reports every iteration; a checkpoint every 2.
    job = start_job(server, synthetic, scene_id, iterations=100, checkpoint_every=2)
    job_id = job["job_id"]
    server.wait_for_job(job_id, states=(RUNNING,))
    # A second scene (half of the Gaussians, same dataset) waits in the queue behind it.
    half = read_gaussian_ply(synthetic.ply_path)
    write_gaussian_ply(synthetic.root / "half.ply", half.subset(np.arange(len(half)) % 2 == 0))
    other_scene = open_scene(server, synthetic, synthetic.root / "half.ply")
    queued = start_job(server, synthetic, other_scene["scene_id"])
    assert queued["state"] == QUEUED and queued["queue_position"] == 1
    assert server.post(f"/v1/jobs/{queued['job_id']}/cancel").json()["state"] == CANCELLED  # at once

    server.wait_until(job_id, lambda job: job["stage"] == "training" and job["iteration"] >= 10)
    assert server.post(f"/v1/jobs/{job_id}/cancel").status_code == 200
    cancelled = server.wait_for_job(job_id, timeout=60)
    assert cancelled["state"] == CANCELLED and 10 <= cancelled["iteration"] < 100
    assert server.get(f"/v1/scenes/{scene_id}").json()["has_features"] is True  # the old field stays

    resumed = server.post(f"/v1/jobs/{job_id}/resume")
    assert resumed.status_code == 202, resumed.text
    assert resumed.json()["job_id"] == job_id and resumed.json()["state"] in (QUEUED, RUNNING)
    again = server.post(f"/v1/jobs/{job_id}/resume")
    assert again.status_code == 409 and again.json()["error"]["code"] == JOB_NOT_RESUMABLE
    # A queued job still shows the stage it was cancelled in: wait until it runs again.
    first = server.wait_until(job_id, lambda job: (job["state"] == RUNNING and job["stage"] == "training")
                              or job["state"] in TERMINAL)
    # It continued from the last checkpoint (>= iteration 10 - 2), it did not start again at 1.
    assert first["state"] == RUNNING and first["iteration"] >= 8, first
    server.post(f"/v1/jobs/{job_id}/cancel")
    assert server.wait_for_job(job_id, timeout=60)["state"] == CANCELLED
