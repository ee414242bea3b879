"""Install Backend in the add-on's preferences, the Blender side: it honours Blender's "Allow Online
Access" setting, and the installed add-on carries the backend's locked project it installs from.
(The install itself, from uv's cache, is tested in tests/backend/test_backend_installer.py.)"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import bpy
import pytest

from conftest import ADDON_MODULE

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "shared"))
from message_rules import problems_for_people  # noqa: E402


def test_refused_with_a_clear_message_when_online_access_is_off(addon):
    session = importlib.import_module(f"{ADDON_MODULE}.blender.session")
    system = bpy.context.preferences.system
    before = system.use_online_access
    system.use_online_access = False
    try:
        assert not bpy.app.online_access
        with pytest.raises(RuntimeError, match="online access is off"):
            bpy.ops.clickgauss.install_backend(variant="cpu")
    finally:
        system.use_online_access = before
    assert session.STATE.install is None  # nothing started
    message = session.STATE.install_message
    assert "Allow Online Access" in message and "scripts/install-backend" in message
    assert not problems_for_people(message), problems_for_people(message)


def test_the_add_on_carries_the_locked_backend_project(addon):
    installer = importlib.import_module(f"{ADDON_MODULE}.backend_installer")
    bundle = os.path.join(os.path.dirname(addon.__file__), installer.BUNDLE_DIR_NAME)
    repo = Path(__file__).resolve().parents[2]
    with open(os.path.join(bundle, "backend", "uv.lock"), "rb") as stream:
        assert stream.read() == (repo / "backend" / "uv.lock").read_bytes()
    steps = installer.install_steps("uv", os.path.join(bundle, "env"), bundle, "cpu", platform="linux")
    assert steps[0].command[1] == "sync" and steps[-1].title == "Checking the backend"
