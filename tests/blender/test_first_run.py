"""A new user's first run: a fresh Blender user folder, the add-on zip installed, no preferences
set, `clickgauss-backend` on PATH the way a user's installed one would be. Start Local finds it by
itself; a splat from a folder outside every default data root is imported, trained and clicked
(tests/blender/first_run.py runs it in its own Blender process)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from conftest import BACKEND_PYTHON

HERE = Path(__file__).resolve().parent


def test_first_run_finds_starts_trains_and_clicks(addon_zip, synthetic_scene, tmp_path):
    # The user's own backend command on a PATH folder of its own (like a pipx or uv tool install).
    bin_dir = tmp_path / "user-bin"
    bin_dir.mkdir()
    (bin_dir / "clickgauss-backend").symlink_to(Path(BACKEND_PYTHON).parent / "clickgauss-backend")
    home, user = tmp_path / "home", tmp_path / "blender-user"
    home.mkdir()
    elsewhere = tmp_path / "elsewhere" / "capture"  # outside the home folder: no default data root has it
    shutil.copytree(synthetic_scene, elsewhere)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("CLICKGAUSS_", "BLENDER_USER_", "VIRTUAL_ENV"))}
    env.update(HOME=str(home), PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", CLICKGAUSS_TEST_PORT=str(port),
               OMP_NUM_THREADS="1",
               **{name: str(user / name.lower()) for name in ("BLENDER_USER_RESOURCES", "BLENDER_USER_CONFIG",
                                                              "BLENDER_USER_SCRIPTS", "BLENDER_USER_DATAFILES",
                                                              "BLENDER_USER_EXTENSIONS")})
    result_path = tmp_path / "result.json"
    run = subprocess.run([sys.executable, str(HERE / "first_run.py"), str(addon_zip), str(elsewhere), str(result_path)],
                         env=env, capture_output=True, text=True, timeout=1500)
    assert result_path.is_file(), f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    result = json.loads(result_path.read_text())
    assert run.returncode == 0, f"{result}\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"

    assert result["preferences"]["backend_python"] == "" and result["preferences"]["local_data_root"] == ""
    started = result["started"]
    assert started["state"] == "connected" and started["source"] == "PATH", started
    assert not any(str(elsewhere).startswith(root) for root in started["roots"]), started["roots"]
    # The splat's folder was not readable: the add-on restarted its backend with it, then trained.
    assert result["restarted"] is True
    assert any(str(elsewhere) == root or str(elsewhere).startswith(root + os.sep) for root in result["training"]["roots"])
    training = result["training"]
    assert training["state"] == "done" and training["has_features"] and training["error"] is None, training
    assert result["dataset_nearby"] == str(elsewhere) and training["dataset_found"] == str(elsewhere)
    assert any(level == "INFO" and text.startswith("Training finished") for level, text in result["reports"])
    click = result["click"]
    assert click["error"] is None and click["selected"] > 0 and click["iou"] >= 0.3, click
