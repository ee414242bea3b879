"""clickgauss_core.launcher when the backend does not come up: a process that dies, nothing that
answers, and misbehaving third parties on the port (a real backend starting is exercised by every
server test through tests/backend/conftest.py, and by the add-on's Start Local in tests/blender)."""

from __future__ import annotations

import http.server
import json
import sys
import threading

import pytest

from clickgauss_core.launcher import BackendStartError, free_port, spawn_backend, stop_backend, wait_until_healthy
from clickgauss_core.protocol import BAD_TOKEN, TOKEN_ENV


def test_a_backend_that_exits_is_reported_with_its_log(tmp_path):
    log = tmp_path / "logs" / "backend.log"
    # Stands in for a backend whose `serve` fails at once; it also shows what it was given.
    dying = [sys.executable, "-c", f"import os, sys; print('cannot start', sys.argv[1:], os.environ.get('{TOKEN_ENV}'));"
                                   " sys.exit(3)"]
    process = spawn_backend(dying, 8123, log, cache_dir=tmp_path / "cache", data_roots=[tmp_path], token="secret",
                            extra_args=["--device", "cpu"])
    with pytest.raises(BackendStartError) as error:
        wait_until_healthy("http://127.0.0.1:8123", process, timeout=30, log_path=log)
    message = str(error.value)
    assert "exit status 3" in message and str(log) in message
    assert "cannot start" in message and "secret" in message  # the token went through the environment ...
    assert "'serve', '--host', '127.0.0.1', '--port', '8123', '--cache-dir'" in message
    assert "secret" not in " ".join(process.args)  # ... never on the command line


def test_nothing_answering_times_out(tmp_path):
    port = free_port()
    with pytest.raises(BackendStartError, match=r"did not start within 1 s"):
        wait_until_healthy(f"http://127.0.0.1:{port}", timeout=1.0, log_path=tmp_path / "none.log")


class _FakeServer(http.server.BaseHTTPRequestHandler):
    """A misbehaving third party on the backend's port: `status` and `body` for every GET."""
    status, body, content_type = 200, b"", "text/html"

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(self.status)
        self.send_header("Content-Type", self.content_type)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *_args):
        pass


@pytest.fixture
def fake_server():
    servers = []

    def start(status: int, body: bytes, content_type: str = "text/html") -> str:
        handler = type("Handler", (_FakeServer,), {"status": status, "body": body, "content_type": content_type})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_another_program_on_the_port_is_named(fake_server):
    url = fake_server(200, b"<!DOCTYPE html><html>a router</html>")
    with pytest.raises(BackendStartError, match=r"not a ClickGauss backend .*another program using that port"):
        wait_until_healthy(url, timeout=5)


def test_an_error_answer_gives_its_message_at_once(fake_server):
    body = json.dumps({"error": {"code": BAD_TOKEN, "message": "the token is wrong"}}).encode()
    url = fake_server(401, body, "application/json")
    with pytest.raises(BackendStartError, match=r"HTTP 401 \(the token is wrong\)"):
        wait_until_healthy(url, timeout=60)


def test_a_healthy_answer_is_returned_and_stop_ends_the_process(fake_server, tmp_path):
    url = fake_server(200, json.dumps({"status": "ok"}).encode(), "application/json")
    assert wait_until_healthy(url, timeout=5) == {"status": "ok"}
    sleeper = spawn_backend([sys.executable, "-c", "import time; time.sleep(60)"], 1, tmp_path / "sleep.log")
    stop_backend(sleeper, timeout=5)
    assert sleeper.poll() is not None


def test_a_proxy_in_the_environment_does_not_stand_between(fake_server, monkeypatch):
    """Artists behind a company proxy have HTTP_PROXY set; the backend they start is local."""
    url = fake_server(200, json.dumps({"status": "ok"}).encode(), "application/json")
    dead_proxy = f"http://127.0.0.1:{free_port()}"
    for variable in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(variable, dead_proxy)
    for variable in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(variable, raising=False)
    assert wait_until_healthy(url, timeout=5) == {"status": "ok"}
