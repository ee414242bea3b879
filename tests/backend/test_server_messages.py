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
from clickgauss_core.protocol import (
    BAD_CAMERA, BAD_HOST, BAD_PIXEL, BAD_REQUEST, BAD_TOKEN, COARSE, FAILED, FILE_NOT_FOUND, INTERNAL_ERROR,
    INVALID_DATASET, INVALID_FIELD, INVALID_MASKS, INVALID_PLY, JOB_NOT_FOUND, JOB_NOT_RESUMABLE,
    MALFORMED_JSON, METHOD_NOT_ALLOWED, NOT_FOUND, NO_FEATURES, OUTSIDE_DATA_ROOT, PRESET_TINY,
    REQUEST_TOO_LARGE, SAM_NOT_CONFIGURED, TRAINING_RUNNING, UNKNOWN_SCENE, UNSUPPORTED_MEDIA_TYPE,
    UPLOAD_TOO_LARGE,
)

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
    assert final["state"] == FAILED and final["error"]["code"] == code, final
    return final["error"]["message"]


def _open(server, ply, dataset=None) -> dict:
    response = server.post("/v1/scenes", json={"ply_path": str(ply), "dataset_path": dataset and str(dataset)})
    assert response.status_code == 200, response.text
    return response.json()


def _train(server, scene_id: str, masks, **settings):
    return server.post("/v1/jobs", json={"scene_id": scene_id, "preset": PRESET_TINY, "settings": settings,
                                         "masks": {"source": "folder", "path": str(masks)}})


def test_every_documented_error_speaks_to_people(setup):
    server, root = setup["server"], setup["root"]
    no_token = {"Authorization": ""}
    messages: dict[str, list[str]] = {}

    def seen(code: str, message: str) -> None:
        messages.setdefault(code, []).append(message)

    seen(BAD_TOKEN, _error(server.client.get("/v1/health", headers=no_token), BAD_TOKEN))
    seen(BAD_TOKEN, _error(server.client.get("/v1/health", headers={"Authorization": "Bearer nope"}), BAD_TOKEN))
    seen(BAD_REQUEST, _error(server.post("/v1/scenes", json={"ply_path": 5}), BAD_REQUEST))
    seen(BAD_REQUEST, _error(server.post("/v1/scenes", json={"ply_path": str(root / "scene")}), BAD_REQUEST))
    seen(MALFORMED_JSON, _error(server.post("/v1/scenes", content=b"{", headers={"Content-Type": "application/json"}),
                                  MALFORMED_JSON))
    seen(FILE_NOT_FOUND, _error(server.post("/v1/scenes", json={"ply_path": str(root / "gone.ply")}), FILE_NOT_FOUND))
    seen(OUTSIDE_DATA_ROOT, _error(server.post("/v1/scenes", json={"ply_path": "/etc/hosts"}), OUTSIDE_DATA_ROOT))
    seen(INVALID_PLY, _error(server.post("/v1/scenes", json={"ply_path": str(root / "not_a_splat.ply")}),
                               INVALID_PLY))
    with open(root / "not_a_splat.ply", "rb") as stream:  # an upload is named by its own file name
        uploaded = server.post("/v1/scenes/upload", files={"file": ("my_capture.ply", stream)})
    upload_message = _error(uploaded, INVALID_PLY)
    assert "my_capture.ply" in upload_message
    seen(INVALID_PLY, upload_message)
    seen(INVALID_DATASET, _error(server.post("/v1/scenes", json={"ply_path": str(setup["ply"]),
                                                                   "dataset_path": str(root / "empty_folder")}),
                                   INVALID_DATASET))
    seen(UPLOAD_TOO_LARGE, _error(server.post("/v1/scenes/upload",
                                                files={"file": ("big.ply", b"x" * (setup["ply_bytes"] * 2))}),
                                    UPLOAD_TOO_LARGE))
    seen(UNSUPPORTED_MEDIA_TYPE, _error(server.post("/v1/scenes/upload", json={}), UNSUPPORTED_MEDIA_TYPE))
    seen(UNKNOWN_SCENE, _error(server.get(f"/v1/scenes/{ZERO_SCENE}"), UNKNOWN_SCENE))
    seen(JOB_NOT_FOUND, _error(server.post(f"/v1/jobs/{ZERO_JOB}/resume"), JOB_NOT_FOUND))
    seen(NOT_FOUND, _error(server.get("/v1/no-such-thing"), NOT_FOUND))
    seen(METHOD_NOT_ALLOWED, _error(server.client.delete("/v1/health"), METHOD_NOT_ALLOWED))
    seen(BAD_HOST, _error(server.client.get("/v1/health", headers={"Host": "rebound.example:8765"}), BAD_HOST))
    seen(REQUEST_TOO_LARGE, _error(server.post("/v1/scenes", json={"ply_path": "x" * (2 << 20)}),
                                     REQUEST_TOO_LARGE))

    # A scene opened without a dataset (none next to the copy of its PLY in another folder).
    bare_folder = root / "bare"
    bare_folder.mkdir()
    shutil.copy(setup["ply"], bare_folder / "bare_scene.ply")
    bare = _open(server, bare_folder / "bare_scene.ply")
    # (Without photos the default views are planned around the splat: ask for the photos to meet the error.)
    no_views = _error(server.post("/v1/jobs", json={"scene_id": bare["scene_id"], "preset": PRESET_TINY,
                                                    "masks": {"source": "folder", "path": str(setup["masks"])},
                                                    "views": {"source": "photos"}}), INVALID_DATASET)
    assert "bare_scene.ply" in no_views
    seen(INVALID_DATASET, no_views)

    scene = _open(server, setup["ply"], setup["scene"])
    scene_id = scene["scene_id"]
    seen(SAM_NOT_CONFIGURED, _error(server.post("/v1/jobs", json={"scene_id": scene_id, "masks": {"source": "sam"}}),
                                      SAM_NOT_CONFIGURED))
    seen(NO_FEATURES, _error(server.post(f"/v1/scenes/{scene_id}/click", json={
        "camera": setup["camera"], "pixel": [1, 1], "level": COARSE}), NO_FEATURES))
    seen(BAD_CAMERA, _error(server.post(f"/v1/scenes/{scene_id}/click", json={
        "camera": {**setup["camera"], "width": -3}, "pixel": [1, 1], "level": COARSE}), BAD_CAMERA))
    seen(BAD_PIXEL, _error(server.post(f"/v1/scenes/{scene_id}/click", json={
        "camera": setup["camera"], "pixel": [1e6, 1e6], "level": COARSE}), BAD_PIXEL))
    seen(INVALID_FIELD, _error(server.put(f"/v1/scenes/{scene_id}/field", files={"file": ("f.npz", b"junk")}),
                                 INVALID_FIELD))

    # The masks are checked when the job runs.
    failed = _train(server, scene_id, root / "no_masks")
    assert failed.status_code == 202, failed.text
    seen(INVALID_MASKS, _job_error(server, failed.json(), INVALID_MASKS))

    # While one training runs: a second one, a features upload, resuming it.
    running = _train(server, scene_id, setup["masks"])
    assert running.status_code == 202, running.text
    job = running.json()
    seen(TRAINING_RUNNING, _error(_train(server, scene_id, setup["masks"]), TRAINING_RUNNING))
    seen(TRAINING_RUNNING, _error(server.put(f"/v1/scenes/{scene_id}/field", files={"file": ("f.npz", b"junk")}),
                                    TRAINING_RUNNING))
    seen(JOB_NOT_RESUMABLE, _error(server.post(f"/v1/jobs/{job['job_id']}/resume"), JOB_NOT_RESUMABLE))
    server.post(f"/v1/jobs/{job['job_id']}/cancel")
    server.wait_for_job(job["job_id"], timeout=240)

    # A failure the server does not expect: the place the trained field is saved to is taken by a
    # folder (a disk the user tidied by hand), so saving it at the end of training fails.
    (Path(setup["cache"]) / "scenes" / scene_id / "field.npz").mkdir(parents=True)
    crashing = _train(server, scene_id, setup["masks"], iterations=3, gfl_start=2, gfl_refresh_every=1,
                      checkpoint_every=1)
    assert crashing.status_code == 202, crashing.text
    seen(INTERNAL_ERROR, _job_error(server, crashing.json(), INTERNAL_ERROR))

    assert sorted(messages) == documented_error_codes(), "every documented code provoked"
    forbidden = (str(setup["cache"]), scene_id, TOKEN)
    wrong = {code: [(message, problems_for_people(message, forbidden)) for message in texts
                    if problems_for_people(message, forbidden)] for code, texts in messages.items()}
    assert not any(wrong.values()), wrong
