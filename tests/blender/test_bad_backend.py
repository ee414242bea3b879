"""The add-on against a fake misbehaving backend (tests/blender/bad_backend.py): a stalled or
dripping server never holds Blender's main thread, and a bad answer (garbage, an HTML 500 page,
JSON of the wrong shape) is a clear error that leaves the object as it was."""

from __future__ import annotations

import time

import bpy
import numpy as np
import pytest

from bad_backend import BadBackend
from conftest import ADDON_MODULE
from splat_fixtures import make_cloud

REQUEST_TIMEOUT_S = 1.0
MAIN_THREAD_BUDGET_S = 0.1  # the bound: every operator returns within 100 ms
SCENE_A, SCENE_B = "a" * 64, "b" * 64


@pytest.fixture
def session(addon_module):
    return addon_module("blender.session")


@pytest.fixture
def bad_backend(addon, session):
    """A BadBackend the add-on's preferences point at (short request timeout); put back after."""
    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    saved = prefs.backend_url, prefs.request_timeout
    server = BadBackend("hang").start()
    prefs.backend_url, prefs.request_timeout = server.url, REQUEST_TIMEOUT_S
    yield server
    server.stop()
    deliver_until_idle(session)
    prefs.backend_url, prefs.request_timeout = saved
    for scene_id in (SCENE_A, SCENE_B):
        session.STATE.segments.pop(scene_id, None)


def deliver_until_idle(session, timeout: float = 15.0) -> None:
    """What Blender's timer does, until every background request has ended."""
    deadline = time.monotonic() + timeout
    while session.TASKS.busy() and time.monotonic() < deadline:
        session.TASKS.deliver_finished()
        time.sleep(0.02)
    assert not session.TASKS.busy(), "a background request outlived its deadline"


def splat_object(tmp_path, name: str, scene_id: str):
    """An imported splat object that believes it has trained features on the (fake) backend."""
    from clickgauss_core.ply import write_gaussian_ply

    path = tmp_path / f"{name}.ply"
    write_gaussian_ply(path, make_cloud(40, 1, False, False, seed=len(name)))
    assert bpy.ops.import_scene.clickgauss_splats(filepath=str(path), orientation="KEEP") == {"FINISHED"}
    obj = bpy.context.active_object
    obj.clickgauss.scene_id, obj.clickgauss.has_features, obj.clickgauss.job_id = scene_id, True, "c" * 32
    obj.clickgauss.masks_path = str(tmp_path)
    return obj


def make_active(obj) -> None:
    bpy.context.view_layer.objects.active = obj


def snapshot(obj, addon_module) -> dict:
    mesh_io = addon_module("blender.mesh_io")
    return {"scene_id": obj.clickgauss.scene_id, "has_features": obj.clickgauss.has_features,
            "job_id": obj.clickgauss.job_id, "vertices": len(obj.data.vertices),
            "selected": mesh_io.read_attribute(obj.data, "cg_selected").copy(), "objects": len(bpy.data.objects)}


def assert_unchanged(before: dict, after: dict) -> None:
    for key, value in before.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(after[key], value, err_msg=key)
        else:
            assert after[key] == value, key


# -- the client on its own ------------------------------------------------------------------------
@pytest.mark.parametrize("mode, code, words", [
    ("garbage", "bad_answer", "not JSON"),
    ("html500", "http_error", "HTTP 500"),
    ("html200", "bad_answer", "not JSON: '<!DOCTYPE html>"),
    ("wrong_shape", "bad_answer", "expected a JSON object (a scene), got list"),
    ("wrong_fields", "bad_answer", "'scene_id' must be a non-empty string, got 7"),
    ("hang", "timeout", "did not answer within 0.5 s"),
    ("drip", "timeout", "did not answer within"),
])
def test_client_turns_every_bad_answer_into_a_clear_error_within_its_deadline(addon_module, mode, code, words):
    client_module = addon_module("client")
    server = BadBackend(mode).start()
    try:
        client = client_module.BackendClient(server.url, timeout=0.5)
        started = time.monotonic()
        with pytest.raises(client_module.BackendError) as error:
            client.scene("x")
        elapsed = time.monotonic() - started
    finally:
        server.stop()
    assert error.value.code == code and words in str(error.value), str(error.value)
    assert server.url in str(error.value) or code == "http_error"
    # The whole answer has a deadline: a drip (a byte every 20 ms) is cut like a hang (0.5 s, plus
    # the time its announced 100 kB would take at the minimum transfer rate).
    assert elapsed < 2.0, elapsed


def test_html_error_page_is_named_readably(addon_module):
    client_module = addon_module("client")
    server = BadBackend("html500").start()
    try:
        with pytest.raises(client_module.BackendError) as error:
            client_module.BackendClient(server.url, timeout=2.0).health()
    finally:
        server.stop()
    assert error.value.status == 500 and "HTTP 500" in error.value.message and "<" not in error.value.message
    assert len(error.value.message) < 300


def test_field_download_must_be_a_feature_field(addon_module):
    client_module = addon_module("client")
    server = BadBackend("html200").start()
    try:
        with pytest.raises(client_module.BackendError) as error:
            client_module.BackendClient(server.url, timeout=2.0).download_field("x")
    finally:
        server.stop()
    assert error.value.code == "bad_answer" and "not a feature-field .npz: it starts with b'<!DOCTYPE html>" in str(
        error.value)


# -- Blender's main thread ------------------------------------------------------------------------
def test_stalled_backend_leaves_the_main_thread_free(clean_scene, addon_module, session, bad_backend, tmp_path):
    click = addon_module("blender.click")
    first = splat_object(tmp_path, "first", SCENE_A)
    second = splat_object(tmp_path, "second", SCENE_B)
    before = {obj.name: snapshot(obj, addon_module) for obj in (first, second)}
    (tmp_path / "saved.npz").write_bytes(b"an earlier save")
    from clickgauss_core.cameras import Camera

    camera = Camera(np.eye(4), 64, 48, 50.0, 50.0, 32.0, 24.0)

    def on(obj, call):
        def run():
            make_active(obj)
            return call()
        return run

    def cancel_then_resume(state):
        def run():
            make_active(second)
            session.STATE.jobs[second.name] = {"state": state, "job_id": "c" * 32}
            return (bpy.ops.clickgauss.cancel_training() if state == "running"
                    else bpy.ops.clickgauss.resume_training())
        return run

    steps = {
        "check backend": lambda: bpy.ops.clickgauss.check_backend(),
        "train features": on(first, lambda: bpy.ops.clickgauss.train_features()),
        "grow to segments": on(first, lambda: bpy.ops.clickgauss.grow_selection(level="fine")),
        "segment everything": on(second, lambda: bpy.ops.clickgauss.segment_everything(level="coarse")),
        "open on backend": on(second, lambda: bpy.ops.clickgauss.connect_scene()),
        "save features": on(first, lambda: bpy.ops.clickgauss.save_features(filepath=str(tmp_path / "saved.npz"))),
        "load features": on(second, lambda: bpy.ops.clickgauss.load_features(filepath=str(tmp_path / "saved.npz"))),
        "cancel training": cancel_then_resume("running"),
        "resume training": cancel_then_resume("cancelled"),
        "click": on(first, lambda: click.start_click(
            click.client_from_preferences(), first, camera, (10.0, 10.0), "coarse", None, "NEW")
            or {"FINISHED"}),
    }
    for label, step in steps.items():
        started = time.monotonic()
        result = step()
        elapsed = time.monotonic() - started
        assert result == {"FINISHED"}, (label, result)
        assert elapsed < MAIN_THREAD_BUDGET_S, f"{label} held the main thread for {elapsed * 1000:.0f} ms"

    # Every request is now hanging on the backend; Blender's timer keeps running and never waits.
    assert bpy.app.timers.is_registered(session.TASKS._timer)
    hanging_until = time.monotonic() + 0.5 * REQUEST_TIMEOUT_S
    ticks = 0
    while time.monotonic() < hanging_until:
        started = time.monotonic()
        next_interval = session.TASKS._timer()
        assert time.monotonic() - started < MAIN_THREAD_BUDGET_S
        assert next_interval == session.TIMER_INTERVAL  # stays registered while requests are out
        ticks += 1
        time.sleep(0.02)
    assert ticks >= 10 and bad_backend.requests >= 9

    # Past the deadline every request ends with a clear error; nothing is left half-done.
    deliver_until_idle(session)
    for obj in (first, second):
        assert "did not answer" in session.STATE.errors[obj.name], session.STATE.errors[obj.name]
        assert_unchanged(before[obj.name], snapshot(obj, addon_module))
    assert session.STATE.jobs.get(first.name) is None  # never stuck "opening"
    assert session.STATE.backend.state == "unreachable" and "did not answer within" in \
        session.STATE.backend.message
    assert not session.STATE.segment_requests and SCENE_A not in session.STATE.segments
    make_active(first)
    assert bpy.ops.clickgauss.train_features.poll() and bpy.ops.clickgauss.grow_selection.poll()
    assert (tmp_path / "saved.npz").read_bytes() == b"an earlier save"
    session.STATE.jobs.pop(second.name, None)


@pytest.mark.parametrize("mode, words", [
    ("garbage", "not JSON"),
    ("html500", "HTTP 500"),
    ("wrong_shape", "expected a JSON object"),
    ("wrong_fields", "gave an unusable answer"),
    ("short_segments", "only 3 Gaussians"),
])
def test_bad_answers_are_clear_errors_and_change_nothing(clean_scene, addon_module, session, bad_backend, tmp_path,
                                                         mode, words):
    click = addon_module("blender.click")
    bad_backend.mode = mode
    obj = splat_object(tmp_path, "scene", SCENE_A)
    selection = np.zeros(40, dtype=bool)
    selection[:5] = True
    addon_module("blender.selection").set_selection(obj, selection)
    before = snapshot(obj, addon_module)

    def run(call) -> str:
        session.STATE.errors.pop(obj.name, None)
        make_active(obj)
        assert call() == {"FINISHED"}
        deliver_until_idle(session)
        assert_unchanged(before, snapshot(obj, addon_module))
        return session.STATE.errors.get(obj.name, "")

    trained = run(lambda: bpy.ops.clickgauss.train_features())
    assert session.STATE.jobs.get(obj.name) is None  # not left "opening": Train Features works again
    assert bpy.ops.clickgauss.train_features.poll()
    grown = run(lambda: bpy.ops.clickgauss.grow_selection(level="coarse"))
    session.STATE.segments.pop(SCENE_A, None)
    split = run(lambda: bpy.ops.clickgauss.segment_everything(level="coarse"))
    clicked = run(lambda: click.start_click(
        click.client_from_preferences(), obj, _camera(), (3.0, 4.0), "coarse", None, "NEW")
        or {"FINISHED"})
    segment_errors = (grown, split)
    if mode == "short_segments":  # well-formed ids, but for another scene's Gaussians
        assert all("has Gaussian id" in e and words in e for e in segment_errors), segment_errors
        assert "gave an unusable answer" in trained and "gave an unusable answer" in clicked
    else:
        for error in (trained, *segment_errors, clicked):
            assert words in error, (mode, error)


def _camera():
    from clickgauss_core.cameras import Camera

    return Camera(np.eye(4), 64, 48, 50.0, 50.0, 32.0, 24.0)


def test_save_features_refuses_an_html_body(clean_scene, addon_module, session, bad_backend, tmp_path):
    bad_backend.mode = "html200"
    obj = splat_object(tmp_path, "scene", SCENE_A)
    target = tmp_path / "out" / "features.npz"
    target.parent.mkdir()
    target.write_bytes(b"the features saved last week")
    session.STATE.notices.pop(obj.name, None)
    assert bpy.ops.clickgauss.save_features(filepath=str(target)) == {"FINISHED"}
    deliver_until_idle(session)
    error = session.STATE.errors[obj.name]
    assert error.lower().startswith("saving features failed") and "not a feature-field .npz" in error, error
    assert target.read_bytes() == b"the features saved last week"  # the old file kept, nothing else written
    assert sorted(p.name for p in target.parent.iterdir()) == ["features.npz"]
    assert obj.name not in session.STATE.notices


def test_a_failing_result_callback_does_not_stop_the_others(addon, session):
    """An exception in one hand-back must not escape Blender's timer (that would unregister it and
    strand every later result, e.g. leave an object "opening" for good)."""
    delivered = []

    def broken(result, error):
        raise TypeError("a callback bug")

    session.TASKS.submit(lambda: 1, broken)
    session.TASKS.submit(lambda: 2, lambda result, error: delivered.append(result))
    deliver_until_idle(session)
    assert delivered == [2]
