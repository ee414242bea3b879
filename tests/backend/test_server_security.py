"""The service's guards, against the real server process: tokens, data roots, uploads, bad input."""

from __future__ import annotations

import hashlib
import os
import subprocess

import pytest

from clickgauss_backend.server.process import free_port
from clickgauss_core.ply import read_gaussian_ply


@pytest.fixture(scope="module")
def data_root(tiny_synthetic_scene, tmp_path_factory):
    """The data root (the synthetic scene's folder) and a secret file outside it."""
    root = tiny_synthetic_scene.root
    outside = tmp_path_factory.mktemp("outside") / "secret.ply"
    outside.write_bytes(tiny_synthetic_scene.ply_path.read_bytes())
    probe = root / "security_probe"
    probe.mkdir(exist_ok=True)
    link = probe / "escape.ply"
    if not link.is_symlink():
        link.symlink_to(outside)
    (probe / "not_a_splat.ply").write_text("ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\n"
                                           "end_header\n0\n")
    return root, outside


@pytest.fixture(scope="module")
def server(start_module_server, data_root, tiny_synthetic_scene):
    root, _ = data_root
    ply_mb = tiny_synthetic_scene.ply_path.stat().st_size / 2**20
    # An upload limit just above the scene's PLY: the real PLY fits, twice its size does not.
    return start_module_server(data_roots=[root], args=["--max-upload-mb", f"{ply_mb * 1.5:.3f}"])


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert error["message"]
    return error


# -- tokens ------------------------------------------------------------------------------------------

def test_token_is_required_on_every_request(start_server, data_root):
    server = start_server(data_roots=[data_root[0]], token="s3cret-token")
    for path in ("/v1/health", "/v1/scenes", "/openapi.json", "/v1/jobs/0123"):
        missing = server.client.get(path, headers={"Authorization": ""})
        assert_error(missing, 401, "bad_token")
        wrong = server.client.get(path, headers={"Authorization": "Bearer s3cret-tokeN"})
        assert_error(wrong, 401, "bad_token")
    health = server.get("/v1/health")
    assert health.status_code == 200 and health.json()["auth_required"] is True
    assert server.get("/openapi.json").status_code == 200


def test_token_from_environment(start_server, data_root):
    server = start_server(data_roots=[data_root[0]], token_env="from-env")
    assert server.get("/v1/health").status_code == 200
    assert_error(server.client.get("/v1/health", headers={"Authorization": "Bearer other"}), 401, "bad_token")


def test_public_bind_without_token_is_refused(backend_cli, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CLICKGAUSS_TOKEN"}
    result = subprocess.run([*backend_cli, "serve", "--host", "0.0.0.0", "--port", str(free_port()),
                             "--cache-dir", str(tmp_path)], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0 without a token" in result.stderr


# -- data roots ----------------------------------------------------------------------------------------

def test_paths_outside_the_data_roots_are_refused(server, data_root):
    root, outside = data_root
    for ply_path in ("../../../../etc/passwd", "/etc/passwd", str(outside),
                     str(root / "security_probe" / "escape.ply"),  # a symlink pointing outside
                     str(root / ".." / outside.parent.name / outside.name)):
        assert_error(server.post("/v1/scenes", json={"ply_path": ply_path}), 403, "outside_data_root")
    assert_error(server.post("/v1/scenes", json={"ply_path": str(root / "missing.ply")}), 404, "file_not_found")
    # a name longer than the file system allows (found by the fuzz run): a clear 400, not a 500
    assert_error(server.post("/v1/scenes", json={"ply_path": str(root / ("x" * 300 + ".ply"))}), 400, "bad_request")


def test_dataset_and_mask_paths_are_confined_too(server, tiny_synthetic_scene, data_root):
    _, outside = data_root
    ply = str(tiny_synthetic_scene.ply_path)
    assert_error(server.post("/v1/scenes", json={"ply_path": ply, "dataset_path": str(outside.parent)}),
                 403, "outside_data_root")
    assert_error(server.post("/v1/scenes", json={"ply_path": ply, "images": "../../etc"}), 422, "bad_request")
    opened = server.post("/v1/scenes", json={"ply_path": ply, "dataset_path": str(tiny_synthetic_scene.dataset_path)})
    assert opened.status_code == 200, opened.text
    job = server.post("/v1/jobs", json={"scene_id": opened.json()["scene_id"],
                                        "masks": {"source": "folder", "path": str(outside.parent)}})
    assert_error(job, 403, "outside_data_root")


def test_a_file_that_is_not_a_splat_is_invalid_ply(server, data_root):
    error = assert_error(server.post("/v1/scenes", json={"ply_path": str(data_root[0] / "security_probe" / "not_a_splat.ply")}),
                         400, "invalid_ply")
    assert "not_a_splat.ply" in error["message"]


# -- uploads ---------------------------------------------------------------------------------------------

def test_uploaded_ply_is_the_same_scene_as_the_path(server, tiny_synthetic_scene):
    ply_bytes = tiny_synthetic_scene.ply_path.read_bytes()
    by_path = server.post("/v1/scenes", json={"ply_path": str(tiny_synthetic_scene.ply_path)})
    uploaded = server.post("/v1/scenes/upload", files={"file": ("scene.ply", ply_bytes, "application/octet-stream")},
                           data={"dataset_path": str(tiny_synthetic_scene.dataset_path)})
    assert by_path.status_code == 200 and uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["scene_id"] == by_path.json()["scene_id"] == hashlib.sha256(ply_bytes).hexdigest()
    assert uploaded.json()["n_gaussians"] == len(read_gaussian_ply(tiny_synthetic_scene.ply_path))
    assert uploaded.json()["n_views"] > 0
    # Opened by path without dataset_path, the COLMAP model next to the PLY is found.
    assert by_path.json()["dataset_path"] == str(tiny_synthetic_scene.dataset_path.resolve())
    assert by_path.json()["n_views"] == len(tiny_synthetic_scene.view_names)


def test_upload_larger_than_the_limit_is_refused(server, tiny_synthetic_scene):
    too_big = tiny_synthetic_scene.ply_path.read_bytes() * 2
    assert_error(server.post("/v1/scenes/upload", files={"file": ("big.ply", too_big)}), 413, "upload_too_large")

    def chunks():  # no Content-Length: the server must count the streamed bytes itself
        boundary = b"--cgboundary"
        yield boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="big.ply"\r\n\r\n'
        for start in range(0, len(too_big), 65536):
            yield too_big[start:start + 65536]
        yield b"\r\n" + boundary + b"--\r\n"

    streamed = server.post("/v1/scenes/upload", content=chunks(),
                           headers={"Content-Type": "multipart/form-data; boundary=cgboundary"})
    assert_error(streamed, 413, "upload_too_large")
    assert server.get("/v1/health").status_code == 200  # still serving


def test_upload_that_is_not_multipart_or_not_a_ply(server):
    assert_error(server.post("/v1/scenes/upload", content=b"ply...", headers={"Content-Type": "application/octet-stream"}),
                 415, "unsupported_media_type")
    assert_error(server.post("/v1/scenes/upload", files={"other": ("x.ply", b"abc")}), 422, "bad_request")
    assert_error(server.post("/v1/scenes/upload", files={"file": ("junk.ply", b"definitely not a ply")}), 400, "invalid_ply")


# -- malformed requests ------------------------------------------------------------------------------------

def test_malformed_json_and_schema_violations(server):
    broken = server.post("/v1/scenes", content=b'{"ply_path": ', headers={"Content-Type": "application/json"})
    assert_error(broken, 400, "malformed_json")
    assert_error(server.post("/v1/scenes", json={"ply_path": 3}), 422, "bad_request")
    assert_error(server.post("/v1/scenes", json={"nonsense": True}), 422, "bad_request")
    assert_error(server.post("/v1/jobs", json={"scene_id": "a" * 64, "masks": {"source": "magic"}}), 422, "bad_request")
    assert_error(server.get("/v1/nowhere"), 404, "not_found")
    assert_error(server.client.delete("/v1/health"), 405, "method_not_allowed")
    assert_error(server.get("/v1/scenes/" + "0" * 64), 404, "unknown_scene")
    assert_error(server.get("/v1/jobs/" + "0" * 32), 404, "job_not_found")


def test_unknown_training_settings_are_rejected(server, tiny_synthetic_scene):
    scene_id = server.post("/v1/scenes", json={"ply_path": str(tiny_synthetic_scene.ply_path),
                                               "dataset_path": str(tiny_synthetic_scene.dataset_path)}).json()["scene_id"]
    masks = {"source": "folder", "path": str(tiny_synthetic_scene.masks_dir)}
    error = assert_error(server.post("/v1/jobs", json={"scene_id": scene_id, "masks": masks, "preset": "tiny",
                                                       "settings": {"no_such_setting": 1}}), 422, "bad_request")
    assert "no_such_setting" in error["message"]
    assert_error(server.post("/v1/jobs", json={"scene_id": scene_id, "masks": masks, "preset": "tiny",
                                               "settings": {"iterations": 2.5}}), 422, "bad_request")
    assert_error(server.post("/v1/jobs", json={"scene_id": scene_id, "masks": {"source": "sam"}}), 400, "sam_not_configured")


def test_sam_masks_with_a_bad_checkpoint_fail_the_job_clearly(start_server, tiny_synthetic_scene, tmp_path):
    junk = tiny_synthetic_scene.root / "security_probe" / "not_a_sam_checkpoint.pth"
    junk.write_bytes(b"definitely not a torch checkpoint")
    server = start_server(data_roots=[tiny_synthetic_scene.root], args=["--sam-checkpoint", str(junk), "--sam-model", "vit_b"])
    health = server.get("/v1/health").json()
    assert health["sam_checkpoint_configured"] is True and health["sam_model"] == "vit_b"
    scene_id = server.post("/v1/scenes", json={"ply_path": str(tiny_synthetic_scene.ply_path),
                                               "dataset_path": str(tiny_synthetic_scene.dataset_path)}).json()["scene_id"]
    error = assert_error(server.post("/v1/jobs", json={"scene_id": scene_id, "masks": {"source": "sam", "settings": {"points_per_sid": 8}}}),
                         422, "bad_request")
    assert "points_per_sid" in error["message"]
    job = server.post("/v1/jobs", json={"scene_id": scene_id, "preset": "tiny",
                                        "masks": {"source": "sam", "settings": {"points_per_side": 8}}})
    assert job.status_code == 202, job.text
    final = server.wait_for_job(job.json()["job_id"], timeout=120)
    assert final["state"] == "failed" and final["error"]["code"] == "invalid_masks", final
    assert "not_a_sam_checkpoint.pth" in final["error"]["message"]
    # The SAM settings of the request reach the generator (checked before the checkpoint is read).
    job = server.post("/v1/jobs", json={"scene_id": scene_id, "preset": "tiny",
                                        "masks": {"source": "sam", "settings": {"input_size": 500}}})
    final = server.wait_for_job(job.json()["job_id"], timeout=120)
    assert final["state"] == "failed" and "SAM input_size 500" in final["error"]["message"], final
