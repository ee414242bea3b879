"""Start a ClickGauss backend (`serve`) as a child process, wait until it answers, stop it.

The one launcher of the add-on's Start Local (`clickgauss_blender/local_backend.py`), the tests
and the benchmarks. Pure stdlib: it runs inside Blender too.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from typing import Sequence

from .protocol import API_PREFIX, TOKEN_ENV, TOKEN_HEADER

STARTUP_TIMEOUT = 120.0  # importing torch on a busy machine takes a while
POLL_INTERVAL = 0.25
STOP_TIMEOUT = 10.0
LOG_TAIL_CHARACTERS = 3000
LOCALHOST = "127.0.0.1"
MODULE_CLI = ("-m", "clickgauss_backend.cli")  # after a Python interpreter of a backend environment


class BackendStartError(RuntimeError):
    """The backend did not come up; the message says why and ends with the tail of its log."""


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def spawn_backend(cli: Sequence[str], port: int, log_path, *, host: str = LOCALHOST, cache_dir=None,
                  data_roots=(), token: str | None = None, extra_args=(), env: dict | None = None,
                  cwd=None) -> subprocess.Popen:
    """Run `<cli> serve --host host --port port ...` with its output appended to `log_path`.
    `cli` is the backend's command prefix ([python, *MODULE_CLI] or [clickgauss-backend]); `env`
    defaults to this process's environment."""
    command = [*cli, "serve", "--host", host, "--port", str(port)]
    if cache_dir:
        command += ["--cache-dir", str(cache_dir)]
    for root in data_roots:
        command += ["--data-root", str(root)]
    command += [str(argument) for argument in extra_args]
    env = dict(os.environ if env is None else env)
    if token:  # through the environment: a command line is visible to every user of the machine
        env[TOKEN_ENV] = token
    os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                cwd=cwd)


def wait_until_healthy(url: str, process: subprocess.Popen | None = None, token: str | None = None,
                       timeout: float = STARTUP_TIMEOUT, log_path=None) -> dict:
    """Poll `GET url/v1/health` until it answers; returns its JSON body. Raises BackendStartError
    when the process exits, the time runs out or something answers with an error (e.g. a wrong
    token) or with what is not JSON (another program on that port)."""
    request = urllib.request.Request(f"{url.rstrip('/')}{API_PREFIX}/health")
    if token:
        request.add_header(TOKEN_HEADER, f"Bearer {token}")
    # The backend we started is on this machine: no HTTP(S)_PROXY or system proxy may stand between.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise BackendStartError(f"the backend stopped while starting (exit status {process.returncode}): "
                                    f"{_log_says_why(log_path)}")
        try:
            with opener.open(request, timeout=max(POLL_INTERVAL, min(5.0, timeout))) as response:
                body = response.read()
            return _json_object(body, url, log_path)
        except urllib.error.HTTPError as exc:
            raise BackendStartError(f"the backend at {url} answered HTTP {exc.code} ({_error_message(exc)}): "
                                    f"{_log_says_why(log_path)}") from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            if time.monotonic() > deadline:
                reason = getattr(exc, "reason", exc)
                raise BackendStartError(f"the backend at {url} did not start within {timeout:.0f} s ({reason}): "
                                        f"{_log_says_why(log_path)}") from None
        time.sleep(POLL_INTERVAL)


def stop_backend(process: subprocess.Popen, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM (the server finishes its requests and marks running jobs interrupted), then SIGKILL."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)


def log_tail(log_path, characters: int = LOG_TAIL_CHARACTERS) -> str:
    """The last `characters` of a log file ('' when there is none)."""
    if not log_path or not os.path.isfile(log_path):
        return ""
    with open(log_path, "rb") as log:
        log.seek(max(0, os.path.getsize(log_path) - characters))
        return log.read().decode("utf-8", errors="replace")


def _log_says_why(log_path) -> str:
    if not log_path:
        return "no log was kept"
    return f"its log says why ({log_path}); the end of it:\n{log_tail(log_path)}"


def _json_object(body: bytes, url: str, log_path) -> dict:
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise BackendStartError(f"what answers at {url} is not a ClickGauss backend (its health answer is not a JSON "
                                f"object: {body[:80]!r}); is another program using that port? "
                                f"{_log_says_why(log_path)}")
    return answer


def _error_message(error: urllib.error.HTTPError) -> str:
    """The ClickGauss error body's message ({"error": {"code", "message"}}), else the HTTP reason."""
    try:
        return str(json.loads(error.read())["error"]["message"])
    except (ValueError, KeyError, TypeError, OSError):
        return str(error.reason)
