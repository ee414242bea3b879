"""What a Blender user reads when something goes wrong, provoked through the add-on's operators
against the real backend process: the backend's errors a user can reach from the panel (the rest
of docs/protocol.md's codes are walked over HTTP in tests/backend/test_server_messages.py). Each
text must say what happened and what to do, without routes, Python names, hex ids or cache paths;
it reaches the status bar (the add-on's report operator) and the panel in full; a connection error
goes away once the backend answers; long operations say when they succeed."""

from __future__ import annotations

import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

import bpy
import pytest

from conftest import ADDON_MODULE

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "shared"))
from message_rules import problems_for_people  # noqa: E402

TIMEOUT_S = 300.0


@pytest.fixture
def session(addon_module):
    return addon_module("blender.session")


def _deliver_until(session, condition, timeout=TIMEOUT_S):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the add-on"
        session.TASKS.deliver_finished()  # what the bpy.app.timers callback does in the UI
        time.sleep(0.05)


def _import(path: Path):
    assert bpy.ops.import_scene.clickgauss_splats(filepath=str(path), orientation="KEEP") == {"FINISHED"}
    return bpy.context.active_object


def _shown(session, obj, cache_dir, scene_id="") -> str:
    """The error the panel shows for `obj`; it must also have reached the status bar."""
    text = session.STATE.errors[obj.name]
    assert ("ERROR", text) in session.STATE.reports, (text, session.STATE.reports[-5:])
    problems = problems_for_people(text, (cache_dir, scene_id) if scene_id else (cache_dir,))
    assert not problems, (text, problems)
    return text


@pytest.fixture
def scene_copy(clean_scene, synthetic_scene, tmp_path):
    """The synthetic scene's PLY alone in a folder (no dataset next to it), inside the data root."""
    folder = tmp_path / "bare"
    folder.mkdir()
    shutil.copy(synthetic_scene / "point_cloud.ply", folder / "bare_scene.ply")
    return folder / "bare_scene.ply"


def _train(session, obj):
    session.STATE.jobs.pop(obj.name, None)
    session.STATE.errors.pop(obj.name, None)
    assert bpy.ops.clickgauss.train_features() == {"FINISHED"}
    _deliver_until(session, lambda: obj.name in session.STATE.errors
                   or session.STATE.jobs.get(obj.name, {}).get("state") in session.FINISHED_STATES)


def test_training_errors_say_what_to_do(backend, session, scene_copy, synthetic_scene, tmp_path):
    cache_dir = bpy.utils.extension_path_user(ADDON_MODULE, path="cache")
    obj = _import(scene_copy)
    settings = obj.clickgauss
    settings.preset = "tiny"

    # No dataset next to the PLY: training renders views planned around the splat, and the mask
    # folder (made for the dataset's photos) has no masks for them: said with what to do.
    settings.masks_source = "FOLDER"
    settings.masks_path = str(synthetic_scene / "masks")
    _train(session, obj)
    text = _shown(session, obj, cache_dir)
    assert "virtual_000" in text and "mask" in text

    settings.dataset_path = str(synthetic_scene)  # SAM asked for, the backend has none: said before any request
    settings.masks_source = "SAM"
    with pytest.raises(RuntimeError, match="SAM") as refused:
        bpy.ops.clickgauss.train_features()
    refusal = str(refused.value).removeprefix("Error: ").strip()
    assert not problems_for_people(refusal, (cache_dir,)), refusal
    settings.masks_source = "FOLDER"

    empty = tmp_path / "empty"  # a dataset folder that is no dataset
    empty.mkdir()
    settings.dataset_path = str(empty)
    _train(session, obj)
    assert "dataset" in _shown(session, obj, cache_dir)

    # A dataset outside the data roots of a backend this Blender did not start (a remote one): the
    # PLY can be sent, the dataset cannot, and the message says so plainly. (A backend the add-on
    # started is restarted with the folder instead: tests/blender/test_first_run.py.)
    outside = Path(tempfile.mkdtemp(prefix="clickgauss-outside-"))
    ours = session.STATE.local_process
    try:
        session.STATE.local_process = None
        settings.dataset_path = str(outside)
        _train(session, obj)
        text = _shown(session, obj, cache_dir)
        assert "cannot read the dataset folder" in text and "--data-root" in text and "Start Local" in text
    finally:
        session.STATE.local_process = ours
        shutil.rmtree(outside)

    settings.dataset_path = str(synthetic_scene)  # masks that are not there: the job fails (invalid_masks)
    settings.masks_path = str(empty)
    _train(session, obj)
    text = _shown(session, obj, cache_dir, settings.scene_id)
    assert text.startswith("Training failed") and "mask" in text


def test_feature_file_and_click_errors_and_successes(backend, session, addon_module, clean_scene, synthetic_scene,
                                                    tmp_path):
    click = addon_module("blender.click")
    cache_dir = bpy.utils.extension_path_user(ADDON_MODULE, path="cache")
    obj = _import(synthetic_scene / "point_cloud.ply")
    assert bpy.ops.clickgauss.connect_scene() == {"FINISHED"}
    _deliver_until(session, lambda: bool(obj.clickgauss.scene_id) or obj.name in session.STATE.errors)
    scene_id = obj.clickgauss.scene_id

    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a features file")
    assert bpy.ops.clickgauss.load_features(filepath=str(junk)) == {"FINISHED"}
    _deliver_until(session, lambda: obj.name in session.STATE.errors)
    assert _shown(session, obj, cache_dir, scene_id).startswith("Loading features failed")

    # A scene id the backend does not know (its cache was cleared): the click says to open it again.
    session.STATE.errors.pop(obj.name, None)
    obj.clickgauss.scene_id, obj.clickgauss.has_features = "0" * 64, True
    from clickgauss_core.datasets import load_dataset

    camera = load_dataset(synthetic_scene).views[0].camera
    click.start_click(backend, obj, camera, (10.0, 10.0), "coarse", None, "NEW")
    _deliver_until(session, lambda: obj.name in session.STATE.errors)
    text = _shown(session, obj, cache_dir, "0" * 64)
    assert text.startswith("Click failed") and "open the scene again" in text

    # Saving features the scene does not have yet (this test's scene may have been trained by an
    # earlier test: then saving succeeds, and says so).
    obj.clickgauss.scene_id = scene_id
    session.STATE.errors.pop(obj.name, None)
    reports = len(session.STATE.reports)
    target = tmp_path / "features.npz"
    assert bpy.ops.clickgauss.save_features(filepath=str(target)) == {"FINISHED"}
    _deliver_until(session, lambda: len(session.STATE.reports) > reports)
    level, text = session.STATE.reports[-1]
    if level == "ERROR":
        assert "no trained features" in _shown(session, obj, cache_dir, scene_id)
    else:
        assert level == "INFO" and text.startswith("Saved the features") and target.is_file()


def test_connection_errors_are_said_and_cleared_when_the_backend_answers(backend, session, scene_copy,
                                                                         synthetic_scene):
    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    cache_dir = bpy.utils.extension_path_user(ADDON_MODULE, path="cache")
    obj = _import(scene_copy)
    obj.clickgauss.masks_path = str(synthetic_scene / "masks")
    url = prefs.backend_url
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        prefs.backend_url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    try:
        _train(session, obj)
        text = _shown(session, obj, cache_dir)
        assert "not reachable" in text and "Start Local" in text
    finally:
        prefs.backend_url = url
    assert bpy.ops.clickgauss.check_backend() == {"FINISHED"}
    _deliver_until(session, lambda: session.STATE.backend.state != "checking")
    assert session.STATE.backend.state == "connected"
    assert obj.name not in session.STATE.errors  # no stale "not reachable" once connected


def test_long_messages_are_wrapped_whole_for_the_panel(addon_module):
    messages = addon_module("messages")
    text = ("The backend may not read the dataset folder /a/very/long/path/that/goes/on/and/on/for/a/while: it only "
            "reads files inside /data/captures. Start the backend with --data-root and the folder it is in")
    lines = messages.wrap(text, 40)
    assert len(lines) > 3 and all(len(line) <= 40 for line in lines)
    assert " ".join(lines).replace(" ", "") == text.replace(" ", "")  # nothing cut


def test_a_finished_training_says_what_happened_and_what_next(addon_module, protocol):
    """The status bar's words when a job ends (backend_requests.training_outcome, no bpy)."""
    outcome = addon_module("backend_requests").training_outcome
    assert outcome("Tree", {"state": protocol.DONE}) == (
        "INFO", "Training finished for Tree: Shift+click in the viewport to select")
    assert outcome("Tree", {"state": protocol.CANCELLED}) == (
        "INFO", "Training of Tree cancelled: Resume continues from its last checkpoint")
    failed = {"state": protocol.FAILED, "error": {"code": protocol.INVALID_MASKS, "message": "The masks are empty"}}
    assert outcome("Tree", failed) == ("ERROR", "The masks are empty")  # the backend's own words
    level, text = outcome("Tree", {"state": protocol.INTERRUPTED, "error": None})
    assert level == "ERROR" and text == "the training was interrupted: press Resume to continue it"
    for _level, text in (outcome("Tree", {"state": state}) for state in protocol.FINISHED_STATES):
        assert not problems_for_people(text), text
