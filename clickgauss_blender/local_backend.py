"""Find and start a backend on this machine ("Start Local"). Pure stdlib (no bpy), so tests use it too.

A backend is either a Python interpreter of an environment with `clickgauss_backend` installed (run
as `python -m clickgauss_backend.cli serve`) or the `clickgauss-backend` command itself. The add-on
looks for one in this order (`find_backend`): the Backend Python set in its preferences, a
`clickgauss-backend` on PATH, the checkout's `backend/.venv` when the add-on was built from a
checkout (scripts/build-addon records where in BUILD_INFO), the environment "Install Backend" made
in the add-on's user folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from .backend_installer import INSTALLED_ENV_NAME, environment_python
from .client import BackendClient, BackendError

STARTUP_TIMEOUT = 120.0  # importing torch on a busy machine takes a while
POLL_INTERVAL = 0.25
TOKEN_ENV = "CLICKGAUSS_TOKEN"  # the backend's `serve` reads its token from here too
BACKEND_COMMAND = "clickgauss-backend"
BUILD_INFO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "build_info.json")
NO_BACKEND_FOUND = ("No ClickGauss backend was found on this computer: install one (Install Backend in the add-on's "
                    "preferences), put clickgauss-backend on PATH, or set Backend Python in the add-on's preferences "
                    "to the python of a backend environment")


@dataclass(frozen=True)
class FoundBackend:
    program: str   # a Python interpreter or the clickgauss-backend command
    source: str    # "preferences" | "PATH" | "checkout" | "installed": where it was found, for the panel

    def command(self) -> list[str]:
        """The command line prefix of the backend's CLI."""
        if os.path.basename(self.program).lower().startswith(BACKEND_COMMAND):
            return [self.program]
        return [self.program, "-m", "clickgauss_backend.cli"]


def checkout_root(build_info_path: str = BUILD_INFO) -> str | None:
    """The repository the add-on was built from, if it was built from one (scripts/build-addon)."""
    try:
        with open(build_info_path, encoding="utf-8") as stream:
            return json.load(stream).get("checkout") or None
    except (OSError, ValueError, AttributeError):
        return None


def _runnable(path: str | None) -> bool:
    return bool(path) and os.path.isfile(path) and os.access(path, os.X_OK)


def find_backend(configured: str = "", installed_env: str | None = None, checkout: str | None = None,
                 search_path: str | None = None) -> FoundBackend | None:
    """The first backend of: `configured` (the preferences), PATH, the checkout's backend/.venv,
    the installed environment; None when there is none."""
    if configured:
        return FoundBackend(configured, "preferences") if _runnable(configured) else None
    on_path = shutil.which(BACKEND_COMMAND, path=search_path)
    if on_path:
        return FoundBackend(on_path, "PATH")
    if checkout and _runnable(environment_python(os.path.join(checkout, "backend", ".venv"))):
        return FoundBackend(environment_python(os.path.join(checkout, "backend", ".venv")), "checkout")
    if installed_env and _runnable(environment_python(installed_env)):
        return FoundBackend(environment_python(installed_env), "installed")
    return None


def covering_roots(folders, roots) -> list[str]:
    """`folders` that no folder of `roots` contains (the ones a running backend cannot read)."""
    def inside(folder: str, root: str) -> bool:
        folder, root = os.path.realpath(folder), os.path.realpath(root)
        return folder == root or folder.startswith(root.rstrip(os.sep) + os.sep)

    return [folder for folder in folders if not any(inside(folder, root) for root in roots)]


def port_of(url: str) -> int:
    return urlsplit(url).port or 8765


def sam_arguments(checkpoint: str, model: str) -> list[str]:
    """The `serve` options that give the backend SAM (none without a checkpoint)."""
    if not checkpoint:
        return []
    if not os.path.isfile(checkpoint):
        raise FileNotFoundError(f"SAM checkpoint not found: {checkpoint!r} (set it in the ClickGauss add-on preferences)")
    return ["--sam-checkpoint", checkpoint, "--sam-model", model]


def start_local_backend(backend: str | FoundBackend, port: int, log_path: str, cache_dir: str | None = None,
                        data_roots=(), token: str | None = None, extra_args=()) -> subprocess.Popen:
    """Spawn the backend's `serve` on 127.0.0.1:port, output to `log_path`. `backend` is a found
    backend or the path of an interpreter / the clickgauss-backend command."""
    if not isinstance(backend, FoundBackend):
        backend = FoundBackend(backend, "preferences")
    if not _runnable(backend.program):
        raise FileNotFoundError(f"The backend {backend.program!r} (from {backend.source}) is not a program that can "
                                "run: set Backend Python in the add-on's preferences to the python of a backend "
                                "environment, or clear it so the add-on finds one by itself")
    command = [*backend.command(), "serve", "--host", "127.0.0.1", "--port", str(port)]
    if cache_dir:
        command += ["--cache-dir", cache_dir]
    for root in data_roots:
        command += ["--data-root", str(root)]
    command += list(extra_args)
    env = dict(os.environ)
    if token:  # through the environment: a command line is visible to every user of the machine
        env[TOKEN_ENV] = token
    os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)


def wait_until_ready(client: BackendClient, process: subprocess.Popen | None = None,
                     timeout: float = STARTUP_TIMEOUT, log_path: str | None = None) -> dict:
    """Poll /v1/health until the backend answers; returns the health body. Raises RuntimeError if
    the process exits or the time runs out (with the end of its log)."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the local backend stopped while starting (exit status {process.returncode}): its "
                               f"log says why ({log_path}); the end of it:\n{log_tail(log_path)}")
        try:
            return client.health()
        except BackendError as exc:
            if exc.code != "unreachable" or time.monotonic() > deadline:
                raise RuntimeError(f"the local backend did not start within {timeout:.0f} s ({exc.message}): its log "
                                   f"says why ({log_path}); the end of it:\n{log_tail(log_path)}") from None
        time.sleep(POLL_INTERVAL)


def stop_local_backend(process: subprocess.Popen, timeout: float = 10.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)


def log_tail(log_path: str | None, characters: int = 3000) -> str:
    if not log_path or not os.path.isfile(log_path):
        return ""
    with open(log_path, "rb") as log:
        log.seek(max(0, os.path.getsize(log_path) - characters))
        return log.read().decode("utf-8", errors="replace")
