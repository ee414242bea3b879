"""Start a backend on this machine ("Start local backend"): the interpreter from the add-on's
preferences runs `-m clickgauss_backend.cli serve`. Pure stdlib (no bpy), so tests use it too."""

from __future__ import annotations

import os
import subprocess
import time
from urllib.parse import urlsplit

from .client import BackendClient, BackendError

STARTUP_TIMEOUT = 120.0  # importing torch on a busy machine takes a while
POLL_INTERVAL = 0.25
TOKEN_ENV = "CLICKGAUSS_TOKEN"  # the backend's `serve` reads its token from here too


def port_of(url: str) -> int:
    return urlsplit(url).port or 8765


def sam_arguments(checkpoint: str, model: str) -> list[str]:
    """The `serve` options that give the backend SAM (none without a checkpoint)."""
    if not checkpoint:
        return []
    if not os.path.isfile(checkpoint):
        raise FileNotFoundError(f"SAM checkpoint not found: {checkpoint!r} (set it in the ClickGauss add-on preferences)")
    return ["--sam-checkpoint", checkpoint, "--sam-model", model]


def start_local_backend(python: str, port: int, log_path: str, cache_dir: str | None = None,
                        data_roots=(), token: str | None = None, extra_args=()) -> subprocess.Popen:
    """Spawn `python -m clickgauss_backend.cli serve` on 127.0.0.1:port, output to `log_path`."""
    if not python or not os.path.isfile(python) or not os.access(python, os.X_OK):
        raise FileNotFoundError(f"backend Python interpreter not found or not executable: {python!r} "
                                "(set it in the ClickGauss add-on preferences)")
    command = [python, "-m", "clickgauss_backend.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
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
            raise RuntimeError(f"backend exited with status {process.returncode}:\n{log_tail(log_path)}")
        try:
            return client.health()
        except BackendError as exc:
            if exc.code != "unreachable" or time.monotonic() > deadline:
                raise RuntimeError(f"backend at {client.url} not ready: {exc}\n{log_tail(log_path)}") from None
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
