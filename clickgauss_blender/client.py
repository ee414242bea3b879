"""HTTP client for the ClickGauss backend (docs/protocol.md, API v1). Pure stdlib, no bpy.

Every request has a total deadline: connecting within `connect_timeout` seconds, and the whole
exchange (sending, waiting, every byte of the answer) within `timeout` seconds, plus the time a
large upload or download needs at `MIN_TRANSFER_RATE`. A watchdog closes the socket when the
deadline passes, so a server that stalls or drips its answer byte by byte cannot hold a caller.
Answers are checked against the protocol's shapes (`answers`) before they are returned.
Every failure is a `BackendError` with the protocol's stable `code` (UNREACHABLE when there is
no answer at all, TIMEOUT past the deadline, BAD_ANSWER for an answer of the wrong shape).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
import time
import uuid
from typing import Any, BinaryIO, Callable
from urllib.parse import quote, urlsplit

from clickgauss_core.protocol import (API_PREFIX, BAD_ANSWER, DEFAULT_PORT, HTTP_ERROR, TIMEOUT, TOKEN_HEADER,
                                      UNREACHABLE)

from .answers import AnswerError, check_click, check_feature_field, check_health, check_job, check_scene, decode_segments

DEFAULT_URL = f"http://127.0.0.1:{DEFAULT_PORT}"
DEFAULT_CONNECT_TIMEOUT = 2.0
DEFAULT_TIMEOUT = 60.0
MIN_TRANSFER_RATE = 256 * 1024      # bytes/s: uploads and downloads get their size at this rate on top
MAX_ANSWER_BYTES = 8 << 30          # no answer of the protocol is near this (a 1M-Gaussian field: ~0.1 GB)
UPLOAD_CHUNK = 1 << 20
READ_CHUNK = 1 << 16


class BackendError(Exception):
    """An error answer of the backend (`code`, `message`, HTTP `status`), or no answer at all
    (`client_error`). `request` ("GET /v1/...") is for the log's sake, never in the text people read."""

    def __init__(self, code: str, message: str, status: int | None = None, request: str = ""):
        self.code, self.message, self.status, self.request = code, message, status, request
        super().__init__(f"{message} [{code}]")


# The client's own errors (no usable answer came back): what happened and what to do, by code.
CLIENT_ERROR_TEXTS = {
    UNREACHABLE: ("the ClickGauss backend at {url} is not reachable ({detail}): press Start Local in the ClickGauss "
                  "panel, or start your backend and check the Backend URL in the add-on's preferences"),
    TIMEOUT: ("the ClickGauss backend at {url} did not answer within {detail} s: it may be overloaded or stuck; check "
              "its log, or raise Request Timeout in the add-on's preferences for very large scenes"),
    BAD_ANSWER: ("what answers at {url} gave an unusable answer ({detail}): check that the Backend URL points at a "
                 "ClickGauss backend of the same version as the add-on"),
}


def client_error(code: str, url: str, detail: str, request: str = "") -> BackendError:
    """A BackendError of the client's own: `code` is one of CLIENT_ERROR_TEXTS."""
    return BackendError(code, CLIENT_ERROR_TEXTS[code].format(url=url, detail=detail), request=request)


class _Deadline:
    """The total deadline of one request: a watchdog shuts the connection's socket down when it
    passes, which ends any blocking send or receive at once."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expires = time.monotonic() + seconds
        self.expired = False
        self._socket: socket.socket | None = None
        self._timer: threading.Timer | None = None

    def remaining(self) -> float:
        return max(0.0, self.expires - time.monotonic())

    def watch(self, sock: socket.socket) -> None:
        self._socket = sock
        self._arm()

    def extend(self, seconds: float) -> None:
        """More time for a large body (announced by its Content-Length)."""
        self.seconds += seconds
        self.expires += seconds
        self._arm()

    def _arm(self) -> None:
        self.cancel()
        self._timer = threading.Timer(self.remaining(), self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        self.expired = True
        try:
            self._socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


class BackendClient:
    def __init__(self, url: str = DEFAULT_URL, token: str | None = None,
                 connect_timeout: float = DEFAULT_CONNECT_TIMEOUT, timeout: float = DEFAULT_TIMEOUT):
        parts = urlsplit(url.strip() or DEFAULT_URL)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"backend URL must look like http://host:port, got {url!r}")
        self.url = f"{parts.scheme}://{parts.netloc}"
        self._scheme, self._host = parts.scheme, parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self.token = token or None
        self.connect_timeout, self.timeout = connect_timeout, timeout

    # -- transport ----------------------------------------------------------------------------
    def _connect(self, deadline: _Deadline) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        connection = cls(self._host, self._port, timeout=min(self.connect_timeout, deadline.remaining()))
        try:
            connection.connect()
        except (OSError, socket.timeout) as exc:
            connection.close()
            raise client_error(UNREACHABLE, self.url, str(exc) or type(exc).__name__) from None
        connection.sock.settimeout(deadline.remaining())
        deadline.watch(connection.sock)
        return connection

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.token:
            headers[TOKEN_HEADER] = f"Bearer {self.token}"
        headers.update(extra or {})
        return headers

    def _exchange(self, method: str, path: str, send: Callable[[http.client.HTTPConnection], None],
                  raw: bool = False, extra_seconds: float = 0.0):
        """Connect, `send` the request, read the whole answer, all before the deadline."""
        deadline = _Deadline(self.timeout + extra_seconds)
        request = f"{method} {path}"
        connection = self._connect(deadline)
        try:
            send(connection)
            return self._read(connection.getresponse(), raw, deadline, request)
        except (OSError, http.client.HTTPException) as exc:
            if deadline.expired or isinstance(exc, TimeoutError):  # the watchdog, or the socket's own timeout
                raise client_error(TIMEOUT, self.url, f"{deadline.seconds:.3g}", request) from None
            raise client_error(UNREACHABLE, self.url, f"the connection broke: {exc}", request) from None
        finally:
            deadline.cancel()
            connection.close()

    def _request(self, method: str, path: str, body: Any = None, raw: bool = False):
        payload = None if body is None else json.dumps(body).encode("utf-8")
        headers = self._headers({"Content-Type": "application/json"} if payload is not None else None)
        return self._exchange(method, path, lambda c: c.request(method, path, body=payload, headers=headers), raw)

    def _upload(self, path: str, file_path: str, fields: dict[str, Any], method: str = "POST") -> dict:
        """multipart/form-data with the file streamed from disk (PLYs can be gigabytes)."""
        boundary = uuid.uuid4().hex
        head = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode("utf-8")
            for name, value in fields.items() if value is not None)
        filename = os.path.basename(file_path).replace('"', "_")
        head += (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                 "Content-Type: application/octet-stream\r\n\r\n").encode("utf-8")
        tail = f"\r\n--{boundary}--\r\n".encode("ascii")
        size = len(head) + os.path.getsize(file_path) + len(tail)

        def send(connection: http.client.HTTPConnection) -> None:
            connection.putrequest(method, path)
            for name, value in self._headers({"Content-Type": f"multipart/form-data; boundary={boundary}",
                                              "Content-Length": str(size)}).items():
                connection.putheader(name, value)
            connection.endheaders()
            with open(file_path, "rb") as stream:
                try:
                    connection.send(head)
                    _send_file(connection, stream)
                    connection.send(tail)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the server answered early (e.g. 413 upload_too_large) and closed: read that answer

        return self._exchange(method, path, send, extra_seconds=size / MIN_TRANSFER_RATE)

    def _read(self, response: http.client.HTTPResponse, raw: bool, deadline: _Deadline, request: str):
        data = self._read_body(response, deadline, request)
        if deadline.expired:  # the watchdog cut the body short
            raise client_error(TIMEOUT, self.url, f"{deadline.seconds:.3g}", request)
        if 200 <= response.status < 300:
            if raw:
                return data
            try:
                return json.loads(data or b"null")
            except ValueError:
                raise client_error(BAD_ANSWER, self.url, f"not JSON: {_excerpt(data)}", request) from None
        try:
            error = json.loads(data)["error"]
            code, message = str(error["code"]), str(error["message"])
        except (ValueError, KeyError, TypeError):
            code, message = HTTP_ERROR, (f"the Backend URL answered HTTP {response.status} but not as a ClickGauss "
                                           "backend: check the Backend URL in the add-on's preferences (and any proxy "
                                           "in between)")
        raise BackendError(code, message, response.status, request)

    def _read_body(self, response: http.client.HTTPResponse, deadline: _Deadline, request: str) -> bytes:
        """The body in chunks (each read returns what has arrived), never more than MAX_ANSWER_BYTES."""
        announced = response.getheader("Content-Length")
        if announced is not None and announced.isdigit():
            if int(announced) > MAX_ANSWER_BYTES:
                raise client_error(BAD_ANSWER, self.url, f"it announces {announced} bytes", request)
            deadline.extend(int(announced) / MIN_TRANSFER_RATE)
        chunks, received = [], 0
        while chunk := response.read1(READ_CHUNK):
            received += len(chunk)
            if received > MAX_ANSWER_BYTES:
                raise client_error(BAD_ANSWER, self.url, f"it is larger than {MAX_ANSWER_BYTES} bytes", request)
            chunks.append(chunk)
        return b"".join(chunks)

    def _checked(self, answer, check: Callable, request: str):
        try:
            return check(answer)
        except AnswerError as exc:
            raise client_error(BAD_ANSWER, self.url, str(exc), request) from None

    def _call(self, method: str, path: str, check: Callable, body: Any = None):
        """One JSON request and its answer, checked."""
        return self._checked(self._request(method, path, body), check, f"{method} {path}")

    # -- endpoints (docs/protocol.md); every answer checked before it is returned -----------------
    def health(self) -> dict:
        return self._call("GET", f"{API_PREFIX}/health", check_health)

    def open_scene(self, ply_path: str, dataset_path: str | None = None, images: str | None = None,
                   resolution: int | None = None) -> dict:
        return self._call("POST", f"{API_PREFIX}/scenes", check_scene, {
            "ply_path": ply_path, "dataset_path": dataset_path, "images": images, "resolution": resolution})

    def upload_scene(self, ply_path: str, dataset_path: str | None = None, images: str | None = None,
                     resolution: int | None = None) -> dict:
        path = f"{API_PREFIX}/scenes/upload"
        answer = self._upload(path, ply_path, {"dataset_path": dataset_path, "images": images, "resolution": resolution})
        return self._checked(answer, check_scene, f"POST {path}")

    def scene(self, scene_id: str) -> dict:
        return self._call("GET", f"{API_PREFIX}/scenes/{quote(scene_id)}", check_scene)

    def start_training(self, scene_id: str, masks: dict, preset: str | None = None,
                       settings: dict | None = None, seed: int = 0, views: dict | None = None) -> dict:
        body = {"scene_id": scene_id, "masks": masks, "preset": preset, "settings": settings or {}, "seed": seed}
        if views is not None:  # where the views come from (no photos: rendered from the splat)
            body["views"] = views
        return self._call("POST", f"{API_PREFIX}/jobs", check_job, body)

    def job(self, job_id: str) -> dict:
        return self._call("GET", f"{API_PREFIX}/jobs/{quote(job_id)}", check_job)

    def cancel_job(self, job_id: str) -> dict:
        return self._call("POST", f"{API_PREFIX}/jobs/{quote(job_id)}/cancel", check_job)

    def resume_job(self, job_id: str) -> dict:
        return self._call("POST", f"{API_PREFIX}/jobs/{quote(job_id)}/resume", check_job)

    def click(self, scene_id: str, camera: dict, pixel: tuple[float, float], level: str,
              threshold: float | None = None) -> dict:
        return self._call("POST", f"{API_PREFIX}/scenes/{quote(scene_id)}/click", check_click, {
            "camera": camera, "pixel": [float(pixel[0]), float(pixel[1])], "level": level, "threshold": threshold})

    def segments(self, scene_id: str) -> dict:
        """Segment ids per Gaussian (PLY order), decoded: {"coarse": (N,) int32, "fine": (N,) int32}."""
        return self._call("GET", f"{API_PREFIX}/scenes/{quote(scene_id)}/segments", decode_segments)

    def download_field(self, scene_id: str) -> bytes:
        """The scene's feature-field .npz, checked to be one."""
        path = f"{API_PREFIX}/scenes/{quote(scene_id)}/field"
        data = self._request("GET", path, raw=True)
        self._checked(data, check_feature_field, f"GET {path}")
        return data

    def upload_field(self, scene_id: str, field_path: str) -> dict:
        path = f"{API_PREFIX}/scenes/{quote(scene_id)}/field"
        return self._checked(self._upload(path, field_path, {}, method="PUT"), check_scene, f"PUT {path}")


def _send_file(connection: http.client.HTTPConnection, stream: BinaryIO) -> None:
    while chunk := stream.read(UPLOAD_CHUNK):
        connection.send(chunk)


def _excerpt(data: bytes, limit: int = 160) -> str:
    """The start of an answer as readable text (an HTML error page, garbage) for a message."""
    text = " ".join(data[:limit * 4].decode("utf-8", errors="replace").split())
    return repr(text[:limit] + ("…" if len(text) > limit else "")) if text else "an empty body"
