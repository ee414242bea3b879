"""The add-on's stdlib HTTP client against a real backend process, and against dead ones."""

from __future__ import annotations

import socket
import threading

import pytest


def test_health_and_protocol_errors(backend, addon_module, protocol):
    client_module = addon_module("client")
    health = backend.health()
    assert health["status"] == "ok" and health["api"] == protocol.API_VERSION and health["device"] in ("cpu", "cuda")
    with pytest.raises(client_module.BackendError) as error:
        backend.scene("0" * 64)
    assert error.value.code == protocol.UNKNOWN_SCENE and error.value.status == 404
    with pytest.raises(client_module.BackendError) as error:
        backend.open_scene("/definitely/not/here.ply")
    assert error.value.code in (protocol.FILE_NOT_FOUND, protocol.OUTSIDE_DATA_ROOT)


def test_upload_gives_the_same_scene_as_the_path(backend, synthetic_scene, tmp_path):
    by_path = backend.open_scene(str(synthetic_scene / "point_cloud.ply"))
    uploaded = backend.upload_scene(str(synthetic_scene / "point_cloud.ply"))
    assert uploaded["scene_id"] == by_path["scene_id"]
    assert uploaded["n_gaussians"] == by_path["n_gaussians"] == 4000


def test_nothing_listening_is_unreachable(addon_module, protocol):
    client_module = addon_module("client")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    client = client_module.BackendClient(f"http://127.0.0.1:{port}")
    with pytest.raises(client_module.BackendError) as error:
        client.health()
    assert error.value.code == protocol.UNREACHABLE and f"127.0.0.1:{port}" in str(error.value)


def test_backend_that_never_answers_times_out(addon_module, protocol):
    client_module = addon_module("client")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        accepted = []
        thread = threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True)
        thread.start()
        client = client_module.BackendClient(f"http://127.0.0.1:{server.getsockname()[1]}", timeout=0.3)
        with pytest.raises(client_module.BackendError) as error:
            client.health()
        assert error.value.code == protocol.TIMEOUT and "did not answer within 0.3 s" in str(error.value)
        thread.join(1)
        for connection, _ in accepted:
            connection.close()


def test_malformed_url_is_refused(addon_module):
    with pytest.raises(ValueError, match="http://host:port"):
        addon_module("client").BackendClient("localhost:8765")


def test_click_against_dead_backend_reports_unreachable(clean_scene, addon_module, tmp_path, protocol):
    import time

    import bpy
    import numpy as np
    from clickgauss_core.cameras import Camera
    from clickgauss_core.ply import write_gaussian_ply

    from splat_fixtures import make_cloud

    client_module, selection = addon_module("client"), addon_module("blender.selection")
    click, session = addon_module("blender.click"), addon_module("blender.session")
    write_gaussian_ply(tmp_path / "s.ply", make_cloud(20, 0, False, False))
    obj = addon_module("blender.io_operators").import_splats(bpy.context, str(tmp_path / "s.ply"))
    obj.clickgauss.scene_id = "0" * 64
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dead = client_module.BackendClient(f"http://127.0.0.1:{port}")
    camera = Camera(np.eye(4), 64, 48, 50, 50, 32, 24)
    with pytest.raises(client_module.BackendError) as error:
        click.click_select(dead, obj, obj.clickgauss.scene_id, camera, (10.5, 10.5))
    assert error.value.code == protocol.UNREACHABLE

    # the operator's path: the error reaches the panel's state, the selection is untouched
    click.start_click(dead, obj, camera, (10.5, 10.5), protocol.COARSE, None, "NEW")
    deadline = time.monotonic() + 10
    while obj.name not in session.STATE.errors and time.monotonic() < deadline:
        session.TASKS.deliver_finished()
        time.sleep(0.01)
    assert "not reachable" in session.STATE.errors[obj.name]
    assert not selection.get_selection(obj).any()


def test_click_operator_passes_through_outside_a_viewport(clean_scene):
    import bpy

    # No 3D viewport under the mouse (background mode): the click is not ours to take.
    assert bpy.ops.clickgauss.click_select("INVOKE_DEFAULT") == {"PASS_THROUGH"}


def test_check_backend_operator_reports_connected_then_unreachable(backend, addon_module, protocol):
    import time

    import bpy

    from conftest import ADDON_MODULE

    session = addon_module("blender.session")
    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences

    def check() -> str:
        assert bpy.ops.clickgauss.check_backend() == {"FINISHED"}
        deadline = time.monotonic() + 30
        while session.STATE.backend.state == "checking" and time.monotonic() < deadline:
            session.TASKS.deliver_finished()
            time.sleep(0.01)
        return session.STATE.backend.state

    assert check() == "connected" and session.STATE.backend.health["api"] == protocol.API_VERSION
    url = prefs.backend_url
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        prefs.backend_url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    try:
        assert check() == protocol.UNREACHABLE
        assert "not reachable" in session.STATE.backend.message
    finally:
        prefs.backend_url = url
