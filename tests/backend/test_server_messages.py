"""Every error code of docs/protocol.md, provoked against the real backend process over HTTP: its
message must speak to a person (no route, no Python name, no hex id, no cache path) and say what to
do. The add-on shows these messages as they are (tests/blender/test_messages.py walks the ones a
Blender user can reach through the add-on)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from clickgauss_core import wire

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "shared"))
from message_rules import documented_error_codes, problems_for_people  # noqa: E402

TOKEN = "messages-test-token"
ZERO_SCENE = "0" * 64
ZERO_JOB = "0" * 32


@pytest.fixture(scope="module")
def setup(start_module_server, tiny_synthetic_scene, tmp_path_factory):
    root = tmp_path_factory.mktemp("messages_root")
    scene_folder = root / "scene"
    shutil.copytree(tiny_synthetic_scene.root, scene_folder)
    (root / "not_a_splat.ply").write_text("ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nend_header\n0\n")
    (root / "empty_folder").mkdir()
    (root / "no_masks").mkdir()
    ply_bytes = (scene_folder / tiny_synthetic_scene.ply_path.name).stat().st_size
    cache = tmp_path_factory.mktemp("messages_cache")
    server = start_module_server(data_roots=[root], cache_dir=cache, token=TOKEN,
                                 args=["--max-upload-mb", f"{ply_bytes * 1.5 / 2**20:.3f}"])
    return {"server": server, "root": root, "scene": scene_folder, "ply": scene_folder / tiny_synthetic_scene.ply_path.name,
            "masks": scene_folder / tiny_synthetic_scene.masks_dir.name, "cache": cache, "ply_bytes": ply_bytes,
            "camera": wire.camera_to_dict(tiny_synthetic_scene.dataset().views[0].camera)}


def _error(response, code: str) -> str:
    assert response.status_code >= 400, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    return error["message"]


def _job_error(server, job: dict, code: str) -> str:
    final = server.wait_for_job(job["job_id"], timeout=240)
    assert final["state"] == "failed" and final["error"]["code"] == code, final
    return final["error"]["message"]


def _open(server, ply, dataset=None) -> dict:
    response = server.post("/v1/scenes", json={"ply_path": str(ply), "dataset_path": dataset and str(dataset)})
    assert response.status_code == 200, response.text
    return response.json()


def _train(server, scene_id: str, masks, **settings):
    return server.post("/v1/jobs", json={"scene_id": scene_id, "preset": "tiny", "settings": settings,
                                         "masks": {"source": "folder", "path": str(masks)}})


def test_every_documented_error_speaks_to_people(setup):
    server, root = setup["server"], setup["root"]
    no_token = {"Authorization": ""}
    messages: dict[str, list[str]] = {}

    def seen(code: str, message: str) -> None:
        messages.setdefault(code, []).append(message)

    seen("bad_token", _error(server.client.get("/v1/health", headers=no_token), "bad_token"))
    seen("bad_token", _error(server.client.get("/v1/health", headers={"Authorization": "Bearer nope"}), "bad_token"))
    seen("bad_request", _error(server.post("/v1/scenes", json={"ply_path": 5}), "bad_request"))
    seen("bad_request", _error(server.post("/v1/scenes", json={"ply_path": str(root / "scene")}), "bad_request"))
    seen("malformed_json", _error(server.post("/v1/scenes", content=b"{", headers={"Content-Type": "application/json"}),
                                  "malformed_json"))
    seen("file_not_found", _error(server.post("/v1/scenes", json={"ply_path": str(root / "gone.ply")}), "file_not_found"))
    seen("outside_data_root", _error(server.post("/v1/scenes", json={"ply_path": "/etc/hosts"}), "outside_data_root"))
    seen("invalid_ply", _error(server.post("/v1/scenes", json={"ply_path": str(root / "not_a_splat.ply")}),
                               "invalid_ply"))
    with open(root / "not_a_splat.ply", "rb") as stream:  # an upload is named by its own file name
        uploaded = server.post("/v1/scenes/upload", files={"file": ("my_capture.ply", stream)})
    upload_message = _error(uploaded, "invalid_ply")
    assert "my_capture.ply" in upload_message
    seen("invalid_ply", upload_message)
    seen("invalid_dataset", _error(server.post("/v1/scenes", json={"ply_path": str(setup["ply"]),
                                                                   "dataset_path": str(root / "empty_folder")}),
                                   "invalid_dataset"))
    seen("upload_too_large", _error(server.post("/v1/scenes/upload",
                                                files={"file": ("big.ply", b"x" * (setup["ply_bytes"] * 2))}),
                                    "upload_too_large"))
    seen("unsupported_media_type", _error(server.post("/v1/scenes/upload", json={}), "unsupported_media_type"))
    seen("unknown_scene", _error(server.get(f"/v1/scenes/{ZERO_SCENE}"), "unknown_scene"))
    seen("job_not_found", _error(server.post(f"/v1/jobs/{ZERO_JOB}/resume"), "job_not_found"))
    seen("not_found", _error(server.get("/v1/no-such-thing"), "not_found"))
    seen("method_not_allowed", _error(server.client.delete("/v1/health"), "method_not_allowed"))
    seen("bad_host", _error(server.client.get("/v1/health", headers={"Host": "rebound.example:8765"}), "bad_host"))
    seen("request_too_large", _error(server.post("/v1/scenes", json={"ply_path": "x" * (2 << 20)}),
                                     "request_too_large"))

    # A scene opened without a dataset (none next to the copy of its PLY in another folder).
    bare_folder = root / "bare"
    bare_folder.mkdir()
    shutil.copy(setup["ply"], bare_folder / "bare_scene.ply")
    bare = _open(server, bare_folder / "bare_scene.ply")
    # (Without photos the default views are planned around the splat: ask for the photos to meet the error.)
    no_views = _error(server.post("/v1/jobs", json={"scene_id": bare["scene_id"], "preset": "tiny",
                                                    "masks": {"source": "folder", "path": str(setup["masks"])},
                                                    "views": {"source": "photos"}}), "invalid_dataset")
    assert "bare_scene.ply" in no_views
    seen("invalid_dataset", no_views)

    scene = _open(server, setup["ply"], setup["scene"])
    scene_id = scene["scene_id"]
    seen("sam_not_configured", _error(server.post("/v1/jobs", json={"scene_id": scene_id, "masks": {"source": "sam"}}),
                                      "sam_not_configured"))
    seen("no_features", _error(server.post(f"/v1/scenes/{scene_id}/click", json={
        "camera": setup["camera"], "pixel": [1, 1], "level": "coarse"}), "no_features"))
    seen("bad_camera", _error(server.post(f"/v1/scenes/{scene_id}/click", json={
        "camera": {**setup["camera"], "width": -3}, "pixel": [1, 1], "level": "coarse"}), "bad_camera"))
    seen("bad_pixel", _error(server.post(f"/v1/scenes/{scene_id}/click", json={
        "camera": setup["camera"], "pixel": [1e6, 1e6], "level": "coarse"}), "bad_pixel"))
    seen("invalid_field", _error(server.put(f"/v1/scenes/{scene_id}/field", files={"file": ("f.npz", b"junk")}),
                                 "invalid_field"))

    # The masks are checked when the job runs.
    failed = _train(server, scene_id, root / "no_masks")
    assert failed.status_code == 202, failed.text
    seen("invalid_masks", _job_error(server, failed.json(), "invalid_masks"))

    # While one training runs: a second one, a features upload, resuming it.
    running = _train(server, scene_id, setup["masks"])
    assert running.status_code == 202, running.text
    job = running.json()
    seen("training_running", _error(_train(server, scene_id, setup["masks"]), "training_running"))
    seen("training_running", _error(server.put(f"/v1/scenes/{scene_id}/field", files={"file": ("f.npz", b"junk")}),
                                    "training_running"))
    seen("job_not_resumable", _error(server.post(f"/v1/jobs/{job['job_id']}/resume"), "job_not_resumable"))
    server.post(f"/v1/jobs/{job['job_id']}/cancel")
    server.wait_for_job(job["job_id"], timeout=240)

    # A failure the server does not expect: the place the trained field is saved to is taken by a
    # folder (a disk the user tidied by hand), so saving it at the end of training fails.
    (Path(setup["cache"]) / "scenes" / scene_id / "field.npz").mkdir(parents=True)
    crashing = _train(server, scene_id, setup["masks"], iterations=3, gfl_start=2, gfl_refresh_every=1,
                      checkpoint_every=1)
    assert crashing.status_code == 202, crashing.text
    seen("internal_error", _job_error(server, crashing.json(), "internal_error"))

    assert sorted(messages) == documented_error_codes(), "every documented code provoked"
    forbidden = (str(setup["cache"]), scene_id, TOKEN)
    wrong = {code: [(message, problems_for_people(message, forbidden)) for message in texts
                    if problems_for_people(message, forbidden)] for code, texts in messages.items()}
    assert not any(wrong.values()), wrong
