"""The service's guards, against the real server process: tokens, data roots, uploads, bad input."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from clickgauss_backend.features.config import TrainConfig
from clickgauss_backend.features.field import FeatureField
from clickgauss_core.launcher import free_port
from clickgauss_core.ply import read_gaussian_ply, write_gaussian_ply
from clickgauss_core.protocol import (
    BAD_CAMERA, BAD_HOST, BAD_REQUEST, BAD_TOKEN, COARSE, FAILED, FILE_NOT_FOUND, INTERRUPTED, INVALID_FIELD,
    INVALID_MASKS, INVALID_PLY, JOB_NOT_FOUND, MALFORMED_JSON, METHOD_NOT_ALLOWED, NOT_FOUND,
    OUTSIDE_DATA_ROOT, PRESET_TINY, REQUEST_TOO_LARGE, SAM_NOT_CONFIGURED, UNKNOWN_SCENE,
    UNSUPPORTED_MEDIA_TYPE, UPLOAD_TOO_LARGE,
)


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
        assert_error(missing, 401, BAD_TOKEN)
        wrong = server.client.get(path, headers={"Authorization": "Bearer s3cret-tokeN"})
        assert_error(wrong, 401, BAD_TOKEN)
    health = server.get("/v1/health")
    assert health.status_code == 200 and health.json()["auth_required"] is True
    assert server.get("/openapi.json").status_code == 200


def test_token_from_environment(start_server, data_root):
    server = start_server(data_roots=[data_root[0]], token_env="from-env")
    assert server.get("/v1/health").status_code == 200
    assert_error(server.client.get("/v1/health", headers={"Authorization": "Bearer other"}), 401, BAD_TOKEN)


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
        assert_error(server.post("/v1/scenes", json={"ply_path": ply_path}), 403, OUTSIDE_DATA_ROOT)
    assert_error(server.post("/v1/scenes", json={"ply_path": str(root / "missing.ply")}), 404, FILE_NOT_FOUND)
    # a name longer than the file system allows (found by the fuzz run): a clear 400, not a 500
    assert_error(server.post("/v1/scenes", json={"ply_path": str(root / ("x" * 300 + ".ply"))}), 400, BAD_REQUEST)
    # the home folder of a user this machine does not have (found by the fuzz run): 400, not a 500
    assert_error(server.post("/v1/scenes", json={"ply_path": "~no_such_user_here/scene.ply"}), 400, BAD_REQUEST)


def test_dataset_and_mask_paths_are_confined_too(server, tiny_synthetic_scene, data_root):
    _, outside = data_root
    ply = str(tiny_synthetic_scene.ply_path)
    assert_error(server.post("/v1/scenes", json={"ply_path": ply, "dataset_path": str(outside.parent)}),
                 403, OUTSIDE_DATA_ROOT)
    assert_error(server.post("/v1/scenes", json={"ply_path": ply, "images": "../../etc"}), 422, BAD_REQUEST)
    opened = server.post("/v1/scenes", json={"ply_path": ply, "dataset_path": str(tiny_synthetic_scene.dataset_path)})
    assert opened.status_code == 200, opened.text
    job = server.post("/v1/jobs", json={"scene_id": opened.json()["scene_id"],
                                        "masks": {"source": "folder", "path": str(outside.parent)}})
    assert_error(job, 403, OUTSIDE_DATA_ROOT)


def test_a_file_that_is_not_a_splat_is_invalid_ply(server, data_root):
    error = assert_error(server.post("/v1/scenes", json={"ply_path": str(data_root[0] / "security_probe" / "not_a_splat.ply")}),
                         400, INVALID_PLY)
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
    assert_error(server.post("/v1/scenes/upload", files={"file": ("big.ply", too_big)}), 413, UPLOAD_TOO_LARGE)

    def chunks():  # no Content-Length: the server must count the streamed bytes itself
        boundary = b"--cgboundary"
        yield boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="big.ply"\r\n\r\n'
        for start in range(0, len(too_big), 65536):
            yield too_big[start:start + 65536]
        yield b"\r\n" + boundary + b"--\r\n"

    streamed = server.post("/v1/scenes/upload", content=chunks(),
                           headers={"Content-Type": "multipart/form-data; boundary=cgboundary"})
    assert_error(streamed, 413, UPLOAD_TOO_LARGE)
    assert server.get("/v1/health").status_code == 200  # still serving


def test_upload_that_is_not_multipart_or_not_a_ply(server):
    assert_error(server.post("/v1/scenes/upload", content=b"ply...", headers={"Content-Type": "application/octet-stream"}),
                 415, UNSUPPORTED_MEDIA_TYPE)
    assert_error(server.post("/v1/scenes/upload", files={"other": ("x.ply", b"abc")}), 422, BAD_REQUEST)
    assert_error(server.post("/v1/scenes/upload", files={"file": ("junk.ply", b"definitely not a ply")}), 400, INVALID_PLY)


# -- malformed requests ------------------------------------------------------------------------------------

def test_malformed_json_and_schema_violations(server):
    broken = server.post("/v1/scenes", content=b'{"ply_path": ', headers={"Content-Type": "application/json"})
    assert_error(broken, 400, MALFORMED_JSON)
    assert_error(server.post("/v1/scenes", json={"ply_path": 3}), 422, BAD_REQUEST)
    assert_error(server.post("/v1/scenes", json={"nonsense": True}), 422, BAD_REQUEST)
    assert_error(server.post("/v1/jobs", json={"scene_id": "a" * 64, "masks": {"source": "magic"}}), 422, BAD_REQUEST)
    assert_error(server.get("/v1/nowhere"), 404, NOT_FOUND)
    assert_error(server.client.delete("/v1/health"), 405, METHOD_NOT_ALLOWED)
    assert_error(server.get("/v1/scenes/" + "0" * 64), 404, UNKNOWN_SCENE)
    assert_error(server.get("/v1/jobs/" + "0" * 32), 404, JOB_NOT_FOUND)


def test_unknown_training_settings_are_rejected(server, tiny_synthetic_scene):
    scene_id = server.post("/v1/scenes", json={"ply_path": str(tiny_synthetic_scene.ply_path),
                                               "dataset_path": str(tiny_synthetic_scene.dataset_path)}).json()["scene_id"]
    masks = {"source": "folder", "path": str(tiny_synthetic_scene.masks_dir)}
    error = assert_error(server.post("/v1/jobs", json={"scene_id": scene_id, "masks": masks, "preset": PRESET_TINY,
                                                       "settings": {"no_such_setting": 1}}), 422, BAD_REQUEST)
    assert "no_such_setting" in error["message"]
    assert_error(server.post("/v1/jobs", json={"scene_id": scene_id, "masks": masks, "preset": PRESET_TINY,
                                               "settings": {"iterations": 2.5}}), 422, BAD_REQUEST)
    assert_error(server.post("/v1/jobs", json={"scene_id": scene_id, "masks": {"source": "sam"}}), 400, SAM_NOT_CONFIGURED)


def test_sam_masks_with_a_bad_checkpoint_fail_the_job_clearly(start_server, tiny_synthetic_scene, tmp_path):
    junk = tiny_synthetic_scene.root / "security_probe" / "not_a_sam_checkpoint.pth"
    junk.write_bytes(b"definitely not a torch checkpoint")
    server = start_server(data_roots=[tiny_synthetic_scene.root], args=["--sam-checkpoint", str(junk), "--sam-model", "vit_b"])
    health = server.get("/v1/health").json()
    assert health["sam_checkpoint_configured"] is True and health["sam_model"] == "vit_b"
    scene_id = server.post("/v1/scenes", json={"ply_path": str(tiny_synthetic_scene.ply_path),
                                               "dataset_path": str(tiny_synthetic_scene.dataset_path)}).json()["scene_id"]
    error = assert_error(server.post("/v1/jobs", json={"scene_id": scene_id, "masks": {"source": "sam", "settings": {"points_per_sid": 8}}}),
                         422, BAD_REQUEST)
    assert "points_per_sid" in error["message"]
    job = server.post("/v1/jobs", json={"scene_id": scene_id, "preset": PRESET_TINY,
                                        "masks": {"source": "sam", "settings": {"points_per_side": 8}}})
    assert job.status_code == 202, job.text
    final = server.wait_for_job(job.json()["job_id"], timeout=120)
    assert final["state"] == FAILED and final["error"]["code"] == INVALID_MASKS, final
    assert "not_a_sam_checkpoint.pth" in final["error"]["message"]
    # The SAM settings of the request reach the generator (checked before the checkpoint is read).
    job = server.post("/v1/jobs", json={"scene_id": scene_id, "preset": PRESET_TINY,
                                        "masks": {"source": "sam", "settings": {"input_size": 500}}})
    final = server.wait_for_job(job.json()["job_id"], timeout=120)
    assert final["state"] == FAILED and "SAM input_size 500" in final["error"]["message"], final


# -- bounds: what a request may cost ---------------------------------------------------------------

def open_tiny_scene(server, synthetic) -> str:
    opened = server.post("/v1/scenes", json={"ply_path": str(synthetic.ply_path), "dataset_path": str(synthetic.dataset_path)})
    assert opened.status_code == 200, opened.text
    return opened.json()["scene_id"]


def camera_dict(**changes) -> dict:
    camera = {"world_to_camera": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 4], [0, 0, 0, 1]],
              "width": 64, "height": 48, "fx": 50.0, "fy": 50.0, "cx": 32.0, "cy": 24.0}
    camera.update(changes)
    return camera


@pytest.fixture(scope="module")
def scene_with_field(server, tiny_synthetic_scene, tmp_path_factory) -> str:
    """The tiny scene with a (random, untrained) feature field: clicks on it really render."""
    scene_id = open_tiny_scene(server, tiny_synthetic_scene)
    n = len(read_gaussian_ply(tiny_synthetic_scene.ply_path))
    features = np.random.default_rng(0).normal(size=(n, 24)).astype(np.float32)
    path = tmp_path_factory.mktemp("field") / "field.npz"
    FeatureField(features, {}, {"scene_hash": scene_id, "settings": TrainConfig.preset(PRESET_TINY).to_dict()}).save(path)
    uploaded = server.put(f"/v1/scenes/{scene_id}/field", files={"file": ("field.npz", path.read_bytes())})
    assert uploaded.status_code == 200, uploaded.text
    return scene_id


@pytest.mark.parametrize("size", [dict(width=100_000, height=100_000), dict(width=2**31 - 1), dict(height=10**18),
                                  dict(width=20_000, height=20_000)])
def test_a_camera_larger_than_the_server_renders_is_refused(server, scene_with_field, size):
    body = {"camera": camera_dict(**size), "pixel": [0.5, 0.5], "level": COARSE}
    error = assert_error(server.post(f"/v1/scenes/{scene_with_field}/click", json=body), 400, BAD_CAMERA)
    assert "limit" in error["message"] and ("width" in error["message"] or "height" in error["message"])
    # The largest camera allowed is clicked like any other.
    largest = camera_dict(width=32_768, height=4096, cx=16_384.0, cy=2048.0)
    clicked = server.post(f"/v1/scenes/{scene_with_field}/click", json={**body, "camera": largest})
    assert clicked.status_code == 200, clicked.text


def test_camera_intrinsics_must_be_finite(server, scene_with_field):
    scene_id = scene_with_field
    for key, value in (("fx", "1e400"), ("cy", "NaN"), ("fx", "0.0"), ("near", "-Infinity")):
        body = json.dumps({"camera": camera_dict(**{key: 12345.0}), "pixel": [0.5, 0.5], "level": COARSE})
        body = body.replace("12345.0", value)
        response = server.post(f"/v1/scenes/{scene_id}/click", content=body, headers={"Content-Type": "application/json"})
        assert response.status_code in (400, 422), response.text
        error = response.json()["error"]
        assert key in error["message"] or error["code"] == MALFORMED_JSON, error
    # Finite, but beyond the renderer's float32 (found by the fuzz run: a 500 before the bound).
    for key, value in (("fx", 1e308), ("fy", 1e-300), ("cx", -1e200), ("far", 1e39)):
        body = {"camera": camera_dict(**{key: value}), "pixel": [0.5, 0.5], "level": COARSE}
        error = assert_error(server.post(f"/v1/scenes/{scene_id}/click", json=body), 400, BAD_CAMERA)
        assert f"camera.{key}" in error["message"] and "limit" in error["message"]


@pytest.mark.parametrize("setting, value", [("iterations", 10**30), ("pixels_per_iteration", 10**13), ("coarse_dim", 30),
                                            ("learning_rate", 1e30), ("feature_dim", 10**6), ("tau_fine", 5.0),
                                            ("spatial_neighbours", 10**9), ("checkpoint_every", 10**12),
                                            ("learning_rate", 0.0)])
def test_training_settings_out_of_range_are_refused_at_submission(server, tiny_synthetic_scene, setting, value):
    scene_id = open_tiny_scene(server, tiny_synthetic_scene)
    masks = {"source": "folder", "path": str(tiny_synthetic_scene.masks_dir)}
    response = server.post("/v1/jobs", json={"scene_id": scene_id, "masks": masks, "preset": PRESET_TINY,
                                             "settings": {setting: value}})
    if response.status_code == 202:  # never leave a runaway training behind for the other tests
        server.post(f"/v1/jobs/{response.json()['job_id']}/cancel")
    error = assert_error(response, 422, BAD_REQUEST)
    assert f"settings.{setting}" in error["message"]


def test_many_unknown_settings_give_a_short_error(server, tiny_synthetic_scene):
    scene_id = open_tiny_scene(server, tiny_synthetic_scene)
    masks = {"source": "folder", "path": str(tiny_synthetic_scene.masks_dir)}
    unknown = {f"s{index}": 1 for index in range(50_000)}
    error = assert_error(server.post("/v1/jobs", json={"scene_id": scene_id, "masks": masks, "settings": unknown}),
                         422, BAD_REQUEST)
    assert "s0" in error["message"] and "unknown setting" in error["message"] and len(error["message"]) <= 2048


def test_json_body_size_is_limited_and_never_echoed(server):
    marker = "SECRET-BODY-MARKER"
    big = json.dumps({"ply_path": marker * (2 * 2**20 // len(marker))}).encode()
    error = assert_error(server.post("/v1/scenes", content=big, headers={"Content-Type": "application/json"}),
                         413, REQUEST_TOO_LARGE)
    assert marker not in error["message"] and "--max-json-kb" in error["message"]

    def chunks():  # no Content-Length: the server counts what arrives
        for start in range(0, len(big), 65536):
            yield big[start:start + 65536]

    streamed = server.post("/v1/scenes", content=chunks(), headers={"Content-Type": "application/json"})
    assert marker not in assert_error(streamed, 413, REQUEST_TOO_LARGE)["message"]
    broken = server.post("/v1/scenes", content=b'{"ply_path": "' + marker.encode(), headers={"Content-Type": "application/json"})
    assert marker not in assert_error(broken, 400, MALFORMED_JSON)["message"]
    assert server.get("/v1/health").status_code == 200


def npz_with_member(name: str, npy_header_shape: tuple, data: bytes | None = None, zeros: int = 0) -> bytes:
    """An .npz whose member `name` declares `npy_header_shape` float32 and holds `data` or `zeros` zero bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open(name, "w", force_zip64=True) as member:
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": npy_header_shape})
            member.write(header.getvalue())
            if data is not None:
                member.write(data)
            chunk = bytes(2**20)
            for _ in range(zeros // len(chunk)):
                member.write(chunk)
    return buffer.getvalue()


def test_feature_field_uploads_are_bounded_by_their_decompressed_size(server, tiny_synthetic_scene):
    scene_id = open_tiny_scene(server, tiny_synthetic_scene)
    n = len(read_gaussian_ply(tiny_synthetic_scene.ply_path))
    # A zip bomb: 200 MB of zeros in about 200 KB, for a scene whose field is n x 24 floats.
    bomb = npz_with_member("features.npy", (200 * 2**20 // 96, 24), zeros=200 * 2**20)
    assert len(bomb) < 1024 * 1024
    error = assert_error(server.put(f"/v1/scenes/{scene_id}/field", files={"file": ("field.npz", bomb)}),
                         400, INVALID_FIELD)
    assert "features" in error["message"] and str(n) in error["message"]
    # A header declaring 10^12 x 24 values over a few bytes of data: refused before any allocation.
    liar = npz_with_member("features.npy", (10**12, 24), data=bytes(96))
    error = assert_error(server.put(f"/v1/scenes/{scene_id}/field", files={"file": ("field.npz", liar)}),
                         400, INVALID_FIELD)
    assert "1000000000000" in error["message"]
    assert server.get("/v1/health").status_code == 200


# -- DNS rebinding: the Host header of a loopback server ---------------------------------------------

def test_a_loopback_server_answers_only_to_loopback_host_names(server):
    for host in ("127.0.0.1", "localhost", "[::1]", f"127.0.0.1:{server.port}", f"localhost:{server.port}",
                 f"[::1]:{server.port}", f"LOCALHOST:{server.port}"):
        assert server.get("/v1/health", headers={"Host": host}).status_code == 200, host
    for host in (f"evil.example:{server.port}", "attacker.test", f"127.0.0.1.evil.example:{server.port}", "x" * 5000):
        error = assert_error(server.get("/v1/health", headers={"Host": host}), 400, BAD_HOST)
        assert "--allowed-host" in error["message"] and len(error["message"]) <= 2048


def test_allowed_host_adds_a_name(start_server, data_root):
    server = start_server(data_roots=[data_root[0]], args=["--allowed-host", "splats.lan"])
    assert server.get("/v1/health", headers={"Host": f"splats.lan:{server.port}"}).status_code == 200
    assert server.get("/v1/health", headers={"Host": f"localhost:{server.port}"}).status_code == 200
    assert_error(server.get("/v1/health", headers={"Host": "other.lan"}), 400, BAD_HOST)


# -- files inside a dataset are confined like every other path ----------------------------------------

def linked_dataset(synthetic, data_root, name: str, link: str) -> Path:
    """A copy of the tiny dataset inside the data root whose file `link` is a symlink to a copy outside it."""
    root, outside = data_root
    target = root / "security_probe" / name
    if not target.exists():
        shutil.copytree(synthetic.dataset_path / "sparse", target / "sparse")
        shutil.copytree(synthetic.images_dir, target / "images")
        original = target / link
        copy_outside = outside.parent / f"{name}-{original.name}"
        shutil.copyfile(original, copy_outside)
        original.unlink()
        original.symlink_to(copy_outside)
    return target


def test_a_symlinked_image_pointing_outside_the_data_roots_is_refused(server, tiny_synthetic_scene, data_root):
    image = sorted(p.name for p in tiny_synthetic_scene.images_dir.iterdir())[0]
    dataset = linked_dataset(tiny_synthetic_scene, data_root, "linked_image", f"images/{image}")
    error = assert_error(server.post("/v1/scenes", json={"ply_path": str(tiny_synthetic_scene.ply_path),
                                                         "dataset_path": str(dataset)}), 403, OUTSIDE_DATA_ROOT)
    assert image in error["message"] and "outside" in error["message"]


def test_a_symlinked_camera_file_pointing_outside_the_data_roots_is_refused(server, tiny_synthetic_scene, data_root):
    model = next((tiny_synthetic_scene.dataset_path / "sparse" / "0").glob("cameras.*")).name
    dataset = linked_dataset(tiny_synthetic_scene, data_root, "linked_cameras", f"sparse/0/{model}")
    error = assert_error(server.post("/v1/scenes", json={"ply_path": str(tiny_synthetic_scene.ply_path),
                                                         "dataset_path": str(dataset)}), 403, OUTSIDE_DATA_ROOT)
    assert model in error["message"]


def test_a_symlinked_mask_pointing_outside_the_data_roots_fails_the_job(server, tiny_synthetic_scene, data_root):
    root, outside = data_root
    masks = root / "security_probe" / "linked_masks"
    if not masks.exists():
        shutil.copytree(tiny_synthetic_scene.masks_dir, masks)
        first = sorted(masks.iterdir())[0]
        shutil.copyfile(first, outside.parent / first.name)
        first.unlink()
        first.symlink_to(outside.parent / first.name)
    scene_id = open_tiny_scene(server, tiny_synthetic_scene)
    job = server.post("/v1/jobs", json={"scene_id": scene_id, "preset": PRESET_TINY, "masks": {"source": "folder", "path": str(masks)}})
    assert job.status_code == 202, job.text
    final = server.wait_for_job(job.json()["job_id"], timeout=120)
    assert final["state"] == FAILED and final["error"]["code"] == OUTSIDE_DATA_ROOT, final


# -- PLYs: no content echoed, no empty scenes --------------------------------------------------------------

def test_a_ply_error_never_echoes_the_file_content(server, data_root):
    secret = data_root[0] / "security_probe" / "credentials.ply"
    secret.write_text("password=hunter2 and more\n")
    error = assert_error(server.post("/v1/scenes", json={"ply_path": str(secret)}), 400, INVALID_PLY)
    assert "credentials.ply" in error["message"] and "hunter2" not in error["message"] and "password" not in error["message"]


def test_a_ply_without_gaussians_is_refused_before_any_work(server, data_root, tiny_synthetic_scene):
    empty = data_root[0] / "security_probe" / "empty.ply"
    write_gaussian_ply(empty, read_gaussian_ply(tiny_synthetic_scene.ply_path).subset(np.zeros(0, dtype=int)))
    error = assert_error(server.post("/v1/scenes", json={"ply_path": str(empty)}), 400, INVALID_PLY)
    assert "no Gaussians" in error["message"] and "empty.ply" in error["message"]
    upload = server.post("/v1/scenes/upload", files={"file": ("empty.ply", empty.read_bytes())})
    assert "no Gaussians" in assert_error(upload, 400, INVALID_PLY)["message"]


# -- SIGTERM with a half-sent upload ---------------------------------------------------------------------

def test_sigterm_with_a_half_sent_upload_stops_promptly_and_interrupts_training(start_server, tiny_synthetic_scene, tmp_path):
    cache = tmp_path / "cache"
    server = start_server(data_roots=[tiny_synthetic_scene.root], cache_dir=cache)
    scene_id = open_tiny_scene(server, tiny_synthetic_scene)
    job = server.post("/v1/jobs", json={"scene_id": scene_id, "preset": PRESET_TINY, "settings": {"iterations": 3000},
                                        "masks": {"source": "folder", "path": str(tiny_synthetic_scene.masks_dir)}})
    assert job.status_code == 202, job.text
    job_id = job.json()["job_id"]
    server.wait_until(job_id, lambda j: j["stage"] == "training", timeout=120)
    with socket.create_connection(("127.0.0.1", server.port)) as upload:
        upload.sendall(b"POST /v1/scenes/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       b"Content-Type: multipart/form-data; boundary=cg\r\nContent-Length: 10000000\r\n\r\n"
                       b'--cg\r\nContent-Disposition: form-data; name="file"; filename="a.ply"\r\n\r\nply\nformat')
        time.sleep(0.5)
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=30)
        stopped_after = time.monotonic() - started
    record = json.loads((cache / "jobs" / job_id / "job.json").read_text())
    assert record["state"] == INTERRUPTED and record["iteration"] < 3000, record
    assert stopped_after < 15, stopped_after
    server.start()  # same cache: the job is there, resumable
    assert server.get(f"/v1/jobs/{job_id}").json()["state"] == INTERRUPTED
