"""Install Backend's logic (clickgauss_blender/backend_installer.py, no bpy): which command lines for
which torch, and a real install with uv from its cache only (`--offline`: no network beyond what
made backend/.venv), then a cancelled one. The add-on's side (Blender's online-access setting) is
tested in tests/blender/test_install_backend.py."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("backend_installer",
                                               REPO_ROOT / "clickgauss_blender" / "backend_installer.py")
installer = importlib.util.module_from_spec(_spec)
sys.modules["backend_installer"] = installer  # dataclasses look their module up while the class is made
_spec.loader.exec_module(installer)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle")
    result = subprocess.run([str(REPO_ROOT / "scripts" / "build-backend-bundle"), str(out)], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    return out


def _uv() -> str:
    uv = installer.find_uv([os.path.expanduser("~/.local/bin")])
    assert uv, "uv is installed by scripts/lib/envs.sh before the tests run"
    return uv


def test_bundle_is_the_locked_project(bundle):
    assert (bundle / "backend" / "uv.lock").read_bytes() == (REPO_ROOT / "backend" / "uv.lock").read_bytes()
    assert (bundle / "backend" / "clickgauss_backend" / "cli.py").is_file()
    assert (bundle / "core" / "clickgauss_core" / "ply.py").is_file()
    assert not list(bundle.rglob("__pycache__"))
    pins = installer.pinned(str(bundle / "backend" / "uv.lock"))
    assert [pin.split("==")[0] for pin in pins] == ["torch", "torchvision"]


@pytest.mark.parametrize("platform, variant, index", [
    ("linux", "cpu", "https://download.pytorch.org/whl/cpu"), ("linux", "cuda", None),
    ("win32", "cpu", None), ("win32", "cuda", "https://download.pytorch.org/whl/cu126"),
    ("darwin", "cpu", None)])
def test_which_torch_index(bundle, tmp_path, platform, variant, index):
    steps = installer.install_steps("uv", str(tmp_path / "env"), str(bundle), variant, platform=platform)
    sync = steps[0]
    assert sync.command[:2] == ["uv", "sync"] and "--locked" in sync.command and "--no-editable" in sync.command
    assert sync.env == {"UV_PROJECT_ENVIRONMENT": str(tmp_path / "env") + ".partial"}
    torch_steps = [step.command for step in steps if "--index-url" in step.command]
    if index is None:
        assert not torch_steps
    else:
        assert torch_steps[0][torch_steps[0].index("--index-url") + 1] == index
        assert [arg.split("==")[0] for arg in torch_steps[0] if "==" in arg] == ["torch", "torchvision"]
    # A CPU torch replacing PyPI's CUDA one on Linux goes without PyPI's CUDA libraries.
    skipped = [sync.command[i + 1] for i, arg in enumerate(sync.command) if arg == "--no-install-package"]
    assert bool(skipped) == (platform == "linux" and variant == "cpu")
    assert all(name.startswith(("nvidia-", "cuda-", "triton")) for name in skipped)


def test_refusals_say_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="choose the CPU variant"):
        installer.torch_index("cuda", "darwin")
    with pytest.raises(FileNotFoundError, match="scripts/build-addon"):
        installer.install_steps("uv", str(tmp_path / "env"), str(tmp_path), "cpu")


def test_offline_install_from_the_uv_cache_then_runs(bundle, tmp_path):
    """The same steps as the add-on's button (CUDA variant on Linux = the lock's own torch, which
    the uv cache holds since backend/.venv was made), from the cache only."""
    env_dir = tmp_path / "backend-env"
    run = installer.InstallRun(installer.install_steps(_uv(), str(env_dir), str(bundle), "cuda", offline=True),
                               str(env_dir), str(tmp_path / "install.log"))
    messages = [run.message]
    while run.poll() == "running":
        if run.message != messages[-1]:
            messages.append(run.message)
        time.sleep(0.2)
    assert run.state == "done", (run.message, (tmp_path / "install.log").read_text()[-3000:])
    assert "step 1 of" in messages[0] and run.message.startswith("Backend installed")
    assert not (tmp_path / "backend-env.partial").exists()
    python = installer.environment_python(str(env_dir))
    result = subprocess.run([python, "-m", "clickgauss_backend.cli", "serve", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--data-root" in result.stdout, result.stderr
    assert (env_dir / "bin" / "clickgauss-backend").is_file()  # what the add-on and PATH users run


def test_cancel_keeps_nothing(bundle, tmp_path):
    env_dir = tmp_path / "backend-env"
    slow = [installer.Step("Waiting", [sys.executable, "-c", "import time; time.sleep(60)"])]
    run = installer.InstallRun(installer.install_steps(_uv(), str(env_dir), str(bundle), "cuda", offline=True)[:1]
                               + slow, str(env_dir), str(tmp_path / "install.log"))
    while run.poll() == "running" and run.index < 1:
        time.sleep(0.1)
    assert run.state == "running" and (tmp_path / "backend-env.partial").is_dir()
    run.cancel()
    assert run.state == "cancelled" and "install again" in run.message
    assert not env_dir.exists() and not (tmp_path / "backend-env.partial").exists()


def test_a_failing_step_says_why_and_keeps_nothing(bundle, tmp_path):
    env_dir = tmp_path / "backend-env"
    failing = [installer.Step("Installing the backend's packages", [sys.executable, "-c",
                                                                     "import sys; print('no space left'); sys.exit(3)"])]
    run = installer.InstallRun(failing, str(env_dir), str(tmp_path / "install.log"))
    assert run.wait(0.05) == "failed"
    assert "exit status 3" in run.message and "no space left" in run.message and "install again" in run.message
    assert not env_dir.exists()
