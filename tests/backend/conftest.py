"""Shared fixtures: start the REAL backend server as a separate process and talk to it over HTTP.

    def test_something(start_server, tmp_path):
        server = start_server(data_roots=[tmp_path], cache_dir=tmp_path / "cache")
        assert server.get("/v1/health").status_code == 200

`start_server(...)` runs `python -m clickgauss_backend.cli serve --port <free port> ...`, waits
until `/v1/health` answers, and stops the process when the test ends (SIGTERM, then SIGKILL), all
with clickgauss_core.launcher (the add-on's Start Local uses it too).
`server.kill()` sends SIGKILL on purpose (crash tests); `server.restart()` starts a new process
with the same arguments (same cache dir) on a new port.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from clickgauss_core.launcher import MODULE_CLI, free_port, spawn_backend, stop_backend, wait_until_healthy
from clickgauss_core.protocol import CANCELLED, DONE, FAILED, INTERRUPTED, TOKEN_ENV, TOKEN_HEADER

REPO_ROOT = Path(__file__).resolve().parents[2]
BACKEND_PYTHON = os.environ.get("CLICKGAUSS_BACKEND_PYTHON", sys.executable)
STARTUP_TIMEOUT_S = 120.0  # torch import on a busy 2-core CI box


class ServerProcess:
    """One running `clickgauss-backend serve` process and an httpx client bound to it."""

    def __init__(self, extra_args: list[str], token: str | None, env: dict, log_path: Path):
        self.extra_args = list(extra_args)
        self.token = token
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.port = 0
        self.client: httpx.Client | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "ServerProcess":
        self.port = free_port()
        self.process = spawn_backend([BACKEND_PYTHON, *MODULE_CLI], self.port, self.log_path,
                                     extra_args=["--log-level", "warning", *self.extra_args], env=self.env, cwd=REPO_ROOT)
        wait_until_healthy(self.url, self.process, self.token, STARTUP_TIMEOUT_S, self.log_path)
        headers = {TOKEN_HEADER: f"Bearer {self.token}"} if self.token else {}
        self.client = httpx.Client(base_url=self.url, headers=headers, timeout=60.0)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def get(self, path: str, **kwargs) -> httpx.Response:
        return self.client.get(path, **kwargs)

    def post(self, path: str, **kwargs) -> httpx.Response:
        return self.client.post(path, **kwargs)

    def put(self, path: str, **kwargs) -> httpx.Response:
        return self.client.put(path, **kwargs)

    def wait_until(self, job_id: str, condition, timeout: float = 300.0) -> dict:
        """Poll `GET /v1/jobs/{job_id}` until `condition(job)` holds; returns that snapshot."""
        deadline = time.monotonic() + timeout
        job = None
        while time.monotonic() < deadline:
            response = self.get(f"/v1/jobs/{job_id}")
            assert response.status_code == 200, response.text
            job = response.json()
            if condition(job):
                return job
            time.sleep(0.1)
        raise AssertionError(f"job {job_id}: condition not met in {timeout} s; last: {job}\n{self.log()[-3000:]}")

    def wait_for_job(self, job_id: str, states=(DONE, FAILED, CANCELLED, INTERRUPTED),
                     timeout: float = 300.0, on_poll=None) -> dict:
        """Poll the job until its state is one of `states`; `on_poll(job)` sees every snapshot."""
        def reached(job: dict) -> bool:
            if on_poll is not None:
                on_poll(job)
            return job["state"] in states

        return self.wait_until(job_id, reached, timeout)

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.process is not None:
            stop_backend(self.process, timeout=30)

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up (a crash, a killed terminal)."""
        if self.client is not None:
            self.client.close()
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def restart(self) -> "ServerProcess":
        self.stop()
        return self.start()


class ServerLauncher:
    """start(data_roots=[...], cache_dir=..., token=None, token_env=None, args=[...]) -> ServerProcess."""

    def __init__(self, tmp_path_factory):
        self.tmp_path_factory = tmp_path_factory
        self.started: list[ServerProcess] = []

    def __call__(self, data_roots=(), cache_dir=None, token=None, token_env=None, args=(),
                 device="cpu") -> ServerProcess:
        work = self.tmp_path_factory.mktemp("server")
        cli_args = ["--cache-dir", str(cache_dir or work / "cache"), "--device", device, *args]
        for root in data_roots:
            cli_args += ["--data-root", str(root)]
        if token:
            cli_args += ["--token", token]
        env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
        env.pop(TOKEN_ENV, None)
        if token_env:
            env[TOKEN_ENV] = token_env
        server = ServerProcess(cli_args, token or token_env, env, work / "server.log")
        self.started.append(server)
        return server.start()

    def stop_all(self) -> None:
        for server in self.started:
            server.stop()


@pytest.fixture
def start_server(tmp_path_factory):
    """Start servers for one test; all are stopped when it ends."""
    launcher = ServerLauncher(tmp_path_factory)
    yield launcher
    launcher.stop_all()


@pytest.fixture(scope="module")
def start_module_server(tmp_path_factory):
    """Start servers shared by the tests of one module (e.g. one trained scene for many checks)."""
    launcher = ServerLauncher(tmp_path_factory)
    yield launcher
    launcher.stop_all()


@pytest.fixture(scope="session")
def backend_cli() -> list[str]:
    """The command prefix of the backend CLI in the backend environment: [python, -m, module]."""
    return [BACKEND_PYTHON, *MODULE_CLI]


@pytest.fixture(scope="session")
def tiny_synthetic_scene(tmp_path_factory):
    """The synthetic "tiny" scene (PLY + COLMAP dataset + masks + GT labels), generated once."""
    from clickgauss_backend.synthetic import generate_scene

    return generate_scene(tmp_path_factory.mktemp("tiny_scene"), preset="tiny")
