"""Persistence across server processes: SIGKILL mid-training, restart, resume, and reload."""

from __future__ import annotations

from clickgauss_backend.features.evaluate import plan_clicks
from clickgauss_core import wire
from clickgauss_core.protocol import CANCELLED, COARSE, DONE, FAILED, INTERRUPTED, PRESET_TINY, RUNNING

TERMINAL = (DONE, FAILED, CANCELLED, INTERRUPTED)


def test_killed_training_is_interrupted_then_resumes_and_the_field_survives_restarts(
        start_server, tiny_synthetic_scene, tmp_path):
    synthetic = tiny_synthetic_scene
    cache = tmp_path / "cache"
    server = start_server(data_roots=[synthetic.root], cache_dir=cache)
    scene_id = server.post("/v1/scenes", json={"ply_path": str(synthetic.ply_path),
                                               "dataset_path": str(synthetic.dataset_path)}).json()["scene_id"]
    masks = {"source": "folder", "path": str(synthetic.masks_dir)}
    # 30 iterations (<= 100: progress every iteration; before the tiny preset's GFL start, so
    # cheap), a checkpoint every 2.
    started = server.post("/v1/jobs", json={"scene_id": scene_id, "masks": masks, "preset": PRESET_TINY,
                                            "settings": {"iterations": 30, "checkpoint_every": 2}})
    assert started.status_code == 202, started.text
    job_id = started.json()["job_id"]
    server.wait_until(job_id, lambda job: job["stage"] == "training" and job["iteration"] >= 10)

    server.kill()  # SIGKILL: no shutdown handler runs
    assert any((cache / "jobs" / job_id / "checkpoints").iterdir())
    server.start()  # same cache dir, new process
    job = server.get(f"/v1/jobs/{job_id}").json()
    assert job["state"] == INTERRUPTED, job
    scene = server.get(f"/v1/scenes/{scene_id}").json()  # the scene record survived too
    assert scene["has_features"] is False and scene["n_views"] == len(synthetic.view_names)

    resumed = server.post(f"/v1/jobs/{job_id}/resume")
    assert resumed.status_code == 202, resumed.text
    # A queued job still shows the stage it was interrupted in: wait until it runs again.
    first = server.wait_until(job_id, lambda job: (job["state"] == RUNNING and job["stage"] == "training")
                              or job["state"] in TERMINAL)
    assert first["state"] == RUNNING and first["iteration"] >= 8, first  # from the checkpoint, not from 1
    final = server.wait_for_job(job_id)
    assert final["state"] == DONE and final["iteration"] == final["total"] == 30, final

    target = plan_clicks(synthetic, COARSE, synthetic.test_indices)[0]
    request = {"camera": wire.camera_to_dict(synthetic.cameras[target.view_index]), "pixel": list(target.pixel),
               "level": COARSE}
    before = server.post(f"/v1/scenes/{scene_id}/click", json=request)
    assert before.status_code == 200, before.text

    # A graceful stop during another training leaves that job interrupted (resumable) as well.
    second = server.post("/v1/jobs", json={"scene_id": scene_id, "masks": masks, "preset": PRESET_TINY, "seed": 1}).json()
    server.wait_until(second["job_id"], lambda job: job["stage"] == "training")
    server.restart()  # SIGTERM, then a new process on the same cache
    assert server.get(f"/v1/jobs/{second['job_id']}").json()["state"] == INTERRUPTED
    # The finished field is reloaded from disk, without retraining: same answer to the same click.
    assert server.get(f"/v1/scenes/{scene_id}").json()["has_features"] is True
    after = server.post(f"/v1/scenes/{scene_id}/click", json=request)
    assert after.status_code == 200, after.text
    assert after.json()["mask"] == before.json()["mask"]
    assert [job["state"] for job in server.get("/v1/jobs").json()["jobs"]] == [INTERRUPTED, DONE]
