"""Blender add-on tests: run under a Blender env's Python (`bpy` as a module).

The extension is built with scripts/build-addon and installed from its zip into a throw-away user
folder (Blender's BLENDER_USER_* variables must be set before `import bpy`), so every test
exercises the installed package and the wheels Blender itself unpacked, never the source tree.
"""

from __future__ import annotations

import atexit
import importlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
USER_DIR = Path(tempfile.mkdtemp(prefix="clickgauss-blender-user-"))
atexit.register(shutil.rmtree, USER_DIR, ignore_errors=True)
for _variable in ("BLENDER_USER_RESOURCES", "BLENDER_USER_CONFIG", "BLENDER_USER_SCRIPTS",
                  "BLENDER_USER_DATAFILES", "BLENDER_USER_EXTENSIONS"):
    os.environ[_variable] = str(USER_DIR / _variable.lower())

import bpy  # noqa: E402  (must come after the BLENDER_USER_* variables)

ADDON_MODULE = "bl_ext.user_default.clickgauss"
EXTENSIONS_DIR = USER_DIR / "blender_user_extensions"


@pytest.fixture(scope="session")
def addon_zip(tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("addon") / "clickgauss.zip"
    result = subprocess.run([str(REPO_ROOT / "scripts" / "build-addon"), str(output)],
                            capture_output=True, text=True)
    assert result.returncode == 0, f"build-addon failed:\n{result.stdout}\n{result.stderr}"
    assert output.is_file()
    return output


@pytest.fixture(scope="session")
def addon(addon_zip):
    """The installed and enabled extension's package."""
    result = bpy.ops.extensions.package_install_files(repo="user_default", filepath=str(addon_zip),
                                                      enable_on_install=True)
    assert result == {"FINISHED"}
    return importlib.import_module(ADDON_MODULE)


@pytest.fixture
def addon_module(addon):
    """Import one of the installed extension's submodules: addon_module("client")."""
    return lambda name: importlib.import_module(f"{ADDON_MODULE}.{name}")


@pytest.fixture
def protocol(addon):
    """The protocol's vocabulary (clickgauss_core.protocol from the wheel the add-on installed)."""
    return importlib.import_module("clickgauss_core.protocol")


@pytest.fixture
def clean_scene(addon):
    """An empty scene (objects, meshes, materials and node groups removed) for one test."""
    for collection in (bpy.data.objects, bpy.data.meshes, bpy.data.materials, bpy.data.node_groups):
        bpy.data.batch_remove(list(collection))
    # Transparency back to its default: Sorted reorders the quads (tests of quad order read them); a
    # test that wants Sorted sets it itself.
    bpy.context.scene.clickgauss.transparency = "DITHERED"
    bpy.context.view_layer.update()
    yield bpy.context.scene
    for collection in (bpy.data.objects, bpy.data.meshes, bpy.data.materials, bpy.data.node_groups):
        bpy.data.batch_remove(list(collection))


# -- the real backend ------------------------------------------------------------------------------
BACKEND_PYTHON = os.environ.get("CLICKGAUSS_BACKEND_PYTHON", str(REPO_ROOT / "backend" / ".venv" / "bin" / "python"))


@pytest.fixture(scope="session")
def synthetic_scene(tmp_path_factory) -> Path:
    """The backend's synthetic "tiny" scene (PLY + COLMAP views + masks + GT labels)."""
    root = tmp_path_factory.mktemp("synthetic") / "tiny"
    result = subprocess.run([BACKEND_PYTHON, "-m", "clickgauss_backend.cli", "synth", str(root), "--preset", "tiny"],
                            capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    return root


@pytest.fixture(scope="session")
def backend(addon, tmp_path_factory, synthetic_scene):
    """A real backend process started by the add-on's own "Start Local Backend" operator (the
    interpreter, URL and data root set in its preferences). Yields a BackendClient for it."""
    import socket
    import time

    session = importlib.import_module(f"{ADDON_MODULE}.blender.session")
    client_module = importlib.import_module(f"{ADDON_MODULE}.client")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    prefs.backend_python = BACKEND_PYTHON
    prefs.backend_url = f"http://127.0.0.1:{port}"
    prefs.local_data_root = str(tmp_path_factory.getbasetemp())
    assert bpy.ops.clickgauss.start_backend() == {"FINISHED"}
    try:
        deadline = time.monotonic() + 300
        while session.STATE.backend.state == "starting" and time.monotonic() < deadline:
            session.TASKS.deliver_finished()  # what the bpy.app.timers callback does in the UI
            time.sleep(0.1)
        assert session.STATE.backend.state == "connected", session.STATE.backend.message
        assert session.STATE.backend.health["device"] in ("cpu", "cuda")
        yield client_module.BackendClient(prefs.backend_url)
    finally:
        if session.STATE.local_process is not None:
            bpy.ops.clickgauss.stop_backend()
