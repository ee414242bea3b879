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
import sys
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
def clean_scene(addon):
    """An empty scene (objects, meshes, materials and node groups removed) for one test."""
    for collection in (bpy.data.objects, bpy.data.meshes, bpy.data.materials, bpy.data.node_groups):
        bpy.data.batch_remove(list(collection))
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
    """A real backend process started with the add-on's own launcher; the add-on's preferences
    point at it. Yields a BackendClient."""
    local_backend = importlib.import_module(f"{ADDON_MODULE}.local_backend")
    client_module = importlib.import_module(f"{ADDON_MODULE}.client")
    work = tmp_path_factory.mktemp("backend")
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log_path = str(work / "backend.log")
    process = local_backend.start_local_backend(BACKEND_PYTHON, port, log_path, cache_dir=str(work / "cache"),
                                                data_roots=[synthetic_scene.parent, work],
                                                extra_args=["--device", "cpu", "--log-level", "warning"])
    client = client_module.BackendClient(f"http://127.0.0.1:{port}")
    try:
        local_backend.wait_until_ready(client, process, log_path=log_path)
        prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
        prefs.backend_url = client.url
        yield client
    finally:
        local_backend.stop_local_backend(process)
