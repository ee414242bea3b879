"""Masks from the UI: the SAM checkpoint and model as add-on preferences passed to the backend that
Start Local launches, and the panel's one sentence when there are neither SAM nor a mask folder
(Train Features then sends nothing)."""

from __future__ import annotations

import re
import time

import bpy
import pytest

from bad_backend import BadBackend
from conftest import ADDON_MODULE, BACKEND_PYTHON
from splat_fixtures import make_cloud


class RecordingLayout:
    """Stands in for Blender's UILayout (which only exists while Blender draws a region): keeps
    the text of every label the panel draws."""

    def __init__(self):
        self.labels: list[str] = []

    def label(self, text="", icon="NONE"):
        self.labels.append(text)

    def box(self, **kwargs):
        return self

    row = column = box

    def prop(self, *args, **kwargs):
        pass

    def progress(self, **kwargs):
        pass

    def operator(self, *args, **kwargs):
        return type("OperatorProperties", (), {})()


@pytest.fixture
def session(addon_module):
    return addon_module("blender.session")


@pytest.fixture
def prefs(addon):
    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    saved = {name: getattr(prefs, name) for name in ("backend_url", "sam_checkpoint", "sam_model", "backend_python")}
    yield prefs
    for name, value in saved.items():
        setattr(prefs, name, value)


@pytest.fixture
def disconnected(session):
    """No backend connected (the state a fresh Blender starts in); put back after."""
    saved = session.STATE.backend.state, session.STATE.backend.health
    session.STATE.backend.state, session.STATE.backend.health = "unknown", {}
    yield
    session.STATE.backend.state, session.STATE.backend.health = saved


def _splat(tmp_path):
    from clickgauss_core.ply import write_gaussian_ply

    write_gaussian_ply(tmp_path / "s.ply", make_cloud(30, 0, False, False))
    assert bpy.ops.import_scene.clickgauss_splats(filepath=str(tmp_path / "s.ply")) == {"FINISHED"}
    return bpy.context.active_object


def test_no_sam_and_no_mask_folder_is_one_sentence_and_no_request(clean_scene, addon_module, prefs, disconnected,
                                                                  tmp_path):
    mask_setup = addon_module("mask_setup")
    panel = addon_module("blender.panel")
    obj = _splat(tmp_path)
    prefs.sam_checkpoint = ""
    server = BadBackend("garbage").start()
    try:
        prefs.backend_url = server.url
        for source in ("FOLDER", "SAM"):
            obj.clickgauss.masks_source, obj.clickgauss.masks_path = source, ""
            layout = RecordingLayout()
            panel.CLICKGAUSS_PT_sidebar.draw_training(layout, obj, 300)
            assert " ".join(layout.labels).endswith(" " + mask_setup.NO_MASKS), layout.labels
            assert mask_setup.NO_MASKS.endswith(".") and ". " not in mask_setup.NO_MASKS  # one sentence
            with pytest.raises(RuntimeError, match=re.escape(mask_setup.NO_MASKS)):  # the operator's error report
                bpy.ops.clickgauss.train_features()
        assert server.requests == 0  # refused before anything was sent
    finally:
        server.stop()

    # A mask folder chosen: nothing to say, and nothing drawn.
    obj.clickgauss.masks_source, obj.clickgauss.masks_path = "FOLDER", str(tmp_path)
    layout = RecordingLayout()
    panel.CLICKGAUSS_PT_sidebar.draw_training(layout, obj, 300)
    assert not any(word in " ".join(layout.labels) for word in ("masks", "SAM")), layout.labels


def test_the_sentence_follows_what_is_missing(addon_module, tmp_path):
    mask_setup = addon_module("mask_setup")
    checkpoint = tmp_path / "sam.pth"
    checkpoint.write_bytes(b"weights")
    with_sam, without_sam = {"sam_checkpoint_configured": True}, {"sam_checkpoint_configured": False}
    problem = mask_setup.masks_problem
    assert problem("FOLDER", str(tmp_path), None, "") is None
    assert problem("SAM", "", with_sam, "") is None
    assert problem("SAM", "", None, str(checkpoint)) is None  # Start Local will pass it on
    assert problem("FOLDER", "", None, "") == problem("SAM", "", without_sam, "") == mask_setup.NO_MASKS
    assert problem("SAM", "", None, str(tmp_path / "missing.pth")) == mask_setup.NO_MASKS
    assert problem("FOLDER", "", with_sam, "") == mask_setup.CHOOSE_FOLDER
    assert problem("SAM", str(tmp_path), without_sam, "") == mask_setup.NO_SAM
    assert problem("SAM", "", without_sam, str(checkpoint)) == mask_setup.RESTART_FOR_SAM


def test_start_local_passes_the_sam_preferences_to_the_backend(clean_scene, addon_module, session, prefs, tmp_path):
    backend_tasks = addon_module("blender.backend_tasks")
    import socket

    saved = session.STATE.local_process, session.STATE.backend.state, session.STATE.backend.health
    session.STATE.local_process = None  # the session's own backend keeps running on its port
    prefs.backend_python = BACKEND_PYTHON
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        prefs.backend_url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    try:
        prefs.sam_checkpoint, prefs.sam_model = str(tmp_path / "missing.pth"), "vit_b"
        with pytest.raises(RuntimeError, match=r"SAM checkpoint not found: .*missing\.pth"):
            bpy.ops.clickgauss.start_backend()  # named, nothing started
        assert session.STATE.local_process is None

        checkpoint = tmp_path / "sam_vit_b.pth"  # the backend reads it when a SAM training starts
        checkpoint.write_bytes(b"weights")
        prefs.sam_checkpoint = str(checkpoint)
        assert bpy.ops.clickgauss.start_backend() == {"FINISHED"}
        deadline = time.monotonic() + 300
        while session.STATE.backend.state == "starting" and time.monotonic() < deadline:
            session.TASKS.deliver_finished()
            time.sleep(0.1)
        assert session.STATE.backend.state == "connected", session.STATE.backend.message
        health = session.STATE.backend.health
        assert health["sam_checkpoint_configured"] is True and health["sam_model"] == "vit_b"
        obj = _splat(tmp_path)
        obj.clickgauss.masks_source, obj.clickgauss.masks_path = "SAM", ""
        assert backend_tasks.masks_problem_of(obj) is None
    finally:
        if session.STATE.local_process is not None:
            bpy.ops.clickgauss.stop_backend()
        session.STATE.local_process, session.STATE.backend.state, session.STATE.backend.health = saved
