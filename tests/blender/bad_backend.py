"""A fake misbehaving backend (a third party the add-on must survive), stdlib http.server only.

    server = BadBackend("hang").start()     # every request hangs until the server stops
    server.mode = "garbage"                 # switch what it does for the next requests
    server.stop()

Modes: "garbage" (200, bytes that are not JSON), "html500" (a proxy's HTML 500 page),
"html200" (an HTML page with status 200), "wrong_shape" (200, JSON but a list),
"wrong_fields" (200, a JSON object whose fields have the wrong types), "short_segments"
(200, well-formed segment ids for only 3 Gaussians), "hang" (reads the request, never
answers), "drip" (200 with a large Content-Length, then one byte every 20 ms, forever).
`requests` counts what reached it.
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

MODES = ("garbage", "html500", "html200", "wrong_shape", "wrong_fields", "short_segments", "hang", "drip")
HTML_PAGE = (b"<!DOCTYPE html><html><head><title>500 Internal Server Error</title></head><body>"
             b"<h1>Internal Server Error</h1><p>The proxy could not reach the application.</p></body></html>")


def _segments_for_three() -> bytes:
    ids = {"dtype": "int32", "shape": [3], "data": base64.b64encode(np.arange(3, dtype="<i4").tobytes()).decode()}
    return json.dumps({"scene_id": "s", "n_gaussians": 3, "coarse": ids, "fine": ids}).encode()


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def log_message(self, *args):  # quiet
        pass

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        remaining = length
        while remaining > 0:  # read the request body so the client is never blocked sending it
            chunk = self.rfile.read(min(remaining, 1 << 16))
            if not chunk:
                break
            remaining -= len(chunk)
        owner = self.server.owner
        with owner.lock:
            owner.requests += 1
        mode = owner.mode
        if mode == "hang":
            owner.released.wait(owner.max_hang_s)
            return
        if mode == "drip":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            while not owner.released.wait(0.02):
                try:
                    self.wfile.write(b" ")
                    self.wfile.flush()
                except OSError:
                    return
            return
        status, content_type, body = {
            "garbage": (200, "application/json", b"\x00\xff\xfe{{ not json at all \x89PNG"),
            "html500": (500, "text/html", HTML_PAGE),
            "html200": (200, "text/html", HTML_PAGE),
            "wrong_shape": (200, "application/json", b'["not", "an", "object"]'),
            "wrong_fields": (200, "application/json",
                             b'{"scene_id": 7, "job_id": null, "state": "exploded", "has_features": "yes", '
                             b'"status": "ok", "mask": "nope", "coarse": [1, 2]}'),
            "short_segments": (200, "application/json", _segments_for_three()),
        }[mode]
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _answer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # a burst of requests from every operator at once
    owner: "BadBackend"


class BadBackend:
    def __init__(self, mode: str, max_hang_s: float = 30.0):
        assert mode in MODES, mode
        self.mode = mode
        self.max_hang_s = max_hang_s
        self.requests = 0
        self.lock = threading.Lock()
        self.released = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "BadBackend":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.released.set()  # hanging and dripping handlers end
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
