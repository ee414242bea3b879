"""Start `clickgauss-backend serve` as a child process and wait until it answers (tests, benchmarks)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def spawn_server(serve_args: list[str], log_path: Path, env: dict | None = None, python: str | None = None,
                 cwd: Path | None = None) -> subprocess.Popen:
    """`python -m clickgauss_backend.cli serve <serve_args>`, output appended to `log_path`."""
    command = [python or sys.executable, "-m", "clickgauss_backend.cli", "serve", *serve_args]
    with open(log_path, "ab") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd)


def wait_until_healthy(url: str, process: subprocess.Popen, token: str | None = None,
                       timeout: float = 120.0, log_path: Path | None = None) -> dict:
    """Poll `GET url/v1/health` until it answers 200; returns its body. Raises if the process exits."""
    request = urllib.request.Request(f"{url}/v1/health")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with status {process.returncode}:\n{_tail(log_path)}")
        try:
            with urllib.request.urlopen(request, timeout=2.0) as response:
                return json.loads(response.read())
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise RuntimeError(f"server at {url} did not answer /v1/health within {timeout} s:\n{_tail(log_path)}")


def _tail(log_path: Path | None, characters: int = 4000) -> str:
    if log_path is None or not Path(log_path).exists():
        return ""
    return Path(log_path).read_text(errors="replace")[-characters:]
