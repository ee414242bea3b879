"""Find and start a backend on this machine ("Start Local"). No bpy, so tests use it too; the
process itself is started, awaited and stopped by clickgauss_core.launcher.

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
from dataclasses import dataclass
from urllib.parse import urlsplit

from clickgauss_core.launcher import (MODULE_CLI, STARTUP_TIMEOUT, BackendStartError, spawn_backend,
                                      wait_until_healthy)
from clickgauss_core.protocol import DEFAULT_PORT

from .answers import AnswerError, check_health
from .backend_installer import environment_python
from .client import BackendClient

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
        return [self.program, *MODULE_CLI]


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
    return urlsplit(url).port or DEFAULT_PORT


def sam_arguments(checkpoint: str, model: str) -> list[str]:
    """The `serve` options that give the backend SAM (none without a checkpoint)."""
    if not checkpoint:
        return []
    if not os.path.isfile(checkpoint):
        raise FileNotFoundError(f"SAM checkpoint not found: {checkpoint!r} (set it in the ClickGauss add-on preferences)")
    return ["--sam-checkpoint", checkpoint, "--sam-model", model]


def start_local_backend(backend: str | FoundBackend, port: int, log_path: str, cache_dir: str | None = None,
                        data_roots=(), token: str | None = None, extra_args=()) -> subprocess.Popen:
    """Spawn the backend's `serve` on 127.0.0.1:port (clickgauss_core.launcher), output to
    `log_path`. `backend` is a found backend or the path of an interpreter / the clickgauss-backend
    command."""
    if not isinstance(backend, FoundBackend):
        backend = FoundBackend(backend, "preferences")
    if not _runnable(backend.program):
        raise FileNotFoundError(f"The backend {backend.program!r} (from {backend.source}) is not a program that can "
                                "run: set Backend Python in the add-on's preferences to the python of a backend "
                                "environment, or clear it so the add-on finds one by itself")
    return spawn_backend(backend.command(), port, log_path, cache_dir=cache_dir, data_roots=data_roots, token=token,
                         extra_args=extra_args)


def wait_until_ready(client: BackendClient, process: subprocess.Popen | None = None,
                     timeout: float = STARTUP_TIMEOUT, log_path: str | None = None) -> dict:
    """Wait until the backend `client` talks to answers /v1/health; returns the health body, checked.
    Raises BackendStartError (with the end of its log) if the process exits or the time runs out."""
    health = wait_until_healthy(client.url, process, client.token, timeout, log_path)
    try:
        return check_health(health)
    except AnswerError as exc:
        raise BackendStartError(f"what answers at {client.url} is not a ClickGauss backend of this version ({exc})") \
            from None
