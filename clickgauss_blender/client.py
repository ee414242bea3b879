"""HTTP client for the ClickGauss backend (docs/protocol.md, API v1). Pure stdlib, no bpy.

Connecting uses a short timeout (a dead or unreachable backend is reported within
`connect_timeout` seconds); reading a response may take longer (`read_timeout`). Every failure
is a `BackendError` with the protocol's stable `code` ("unreachable" when there is no answer at all).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import uuid
from typing import Any, BinaryIO
from urllib.parse import quote, urlsplit

DEFAULT_URL = "http://127.0.0.1:8765"
DEFAULT_CONNECT_TIMEOUT = 2.0
DEFAULT_READ_TIMEOUT = 60.0
UPLOAD_CHUNK = 1 << 20


class BackendError(Exception):
    """An error answer of the backend (`code`, `message`, HTTP `status`), or no answer at all."""

    def __init__(self, code: str, message: str, status: int | None = None):
        self.code, self.message, self.status = code, message, status
        super().__init__(f"{message} [{code}]")


class BackendUnreachable(BackendError):
    def __init__(self, url: str, reason: str):
        super().__init__("unreachable", f"the ClickGauss backend at {url} is not reachable ({reason}): press Start "
                                        "Local in the ClickGauss panel, or start your backend and check the Backend "
                                        "URL in the add-on's preferences")


class BackendClient:
    def __init__(self, url: str = DEFAULT_URL, token: str | None = None,
                 connect_timeout: float = DEFAULT_CONNECT_TIMEOUT, read_timeout: float = DEFAULT_READ_TIMEOUT):
        parts = urlsplit(url.strip() or DEFAULT_URL)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"backend URL must look like http://host:port, got {url!r}")
        self.url = f"{parts.scheme}://{parts.netloc}"
        self._scheme, self._host = parts.scheme, parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self.token = token or None
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout

    # -- transport ----------------------------------------------------------------------------
    def _connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        connection = cls(self._host, self._port, timeout=self.connect_timeout)
        try:
            connection.connect()
        except (OSError, socket.timeout) as exc:
            connection.close()
            raise BackendUnreachable(self.url, str(exc) or type(exc).__name__) from None
        connection.sock.settimeout(self.read_timeout)
        return connection

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        headers.update(extra or {})
        return headers

    def _request(self, method: str, path: str, body: Any = None, raw: bool = False):
        payload = None if body is None else json.dumps(body).encode("utf-8")
        headers = self._headers({"Content-Type": "application/json"} if payload is not None else None)
        connection = self._connect()
        try:
            connection.request(method, path, body=payload, headers=headers)
            return self._read(connection.getresponse(), raw)
        except (OSError, http.client.HTTPException) as exc:
            raise BackendUnreachable(self.url, f"the connection broke: {exc}") from None
        finally:
            connection.close()

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
        connection = self._connect()
        try:
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
            return self._read(connection.getresponse(), raw=False)
        except (OSError, http.client.HTTPException) as exc:
            raise BackendUnreachable(self.url, f"the connection broke while sending {os.path.basename(file_path)}: "
                                               f"{exc}") from None
        finally:
            connection.close()

    @staticmethod
    def _read(response: http.client.HTTPResponse, raw: bool):
        data = response.read()
        if 200 <= response.status < 300:
            return data if raw else json.loads(data or b"null")
        try:
            error = json.loads(data)["error"]
            code, message = str(error["code"]), str(error["message"])
        except (ValueError, KeyError, TypeError):
            code, message = "http_error", (f"the Backend URL answered HTTP {response.status} but not as a ClickGauss "
                                           "backend: check the Backend URL in the add-on's preferences (and any proxy "
                                           "in between)")
        raise BackendError(code, message, response.status)

    # -- endpoints (docs/protocol.md) ---------------------------------------------------------
    def health(self) -> dict:
        return self._request("GET", "/v1/health")

    def open_scene(self, ply_path: str, dataset_path: str | None = None, images: str | None = None,
                   resolution: int | None = None) -> dict:
        return self._request("POST", "/v1/scenes", {"ply_path": ply_path, "dataset_path": dataset_path,
                                                    "images": images, "resolution": resolution})

    def upload_scene(self, ply_path: str, dataset_path: str | None = None, images: str | None = None,
                     resolution: int | None = None) -> dict:
        return self._upload("/v1/scenes/upload", ply_path,
                            {"dataset_path": dataset_path, "images": images, "resolution": resolution})

    def scene(self, scene_id: str) -> dict:
        return self._request("GET", f"/v1/scenes/{quote(scene_id)}")

    def start_training(self, scene_id: str, masks: dict, preset: str | None = None,
                       settings: dict | None = None, seed: int = 0) -> dict:
        return self._request("POST", "/v1/jobs", {"scene_id": scene_id, "masks": masks, "preset": preset,
                                                  "settings": settings or {}, "seed": seed})

    def job(self, job_id: str) -> dict:
        return self._request("GET", f"/v1/jobs/{quote(job_id)}")

    def cancel_job(self, job_id: str) -> dict:
        return self._request("POST", f"/v1/jobs/{quote(job_id)}/cancel")

    def resume_job(self, job_id: str) -> dict:
        return self._request("POST", f"/v1/jobs/{quote(job_id)}/resume")

    def click(self, scene_id: str, camera: dict, pixel: tuple[float, float], level: str,
              threshold: float | None = None) -> dict:
        return self._request("POST", f"/v1/scenes/{quote(scene_id)}/click",
                             {"camera": camera, "pixel": [float(pixel[0]), float(pixel[1])],
                              "level": level, "threshold": threshold})

    def segments(self, scene_id: str) -> dict:
        return self._request("GET", f"/v1/scenes/{quote(scene_id)}/segments")

    def download_field(self, scene_id: str) -> bytes:
        return self._request("GET", f"/v1/scenes/{quote(scene_id)}/field", raw=True)

    def upload_field(self, scene_id: str, field_path: str) -> dict:
        return self._upload(f"/v1/scenes/{quote(scene_id)}/field", field_path, {}, method="PUT")


def _send_file(connection: http.client.HTTPConnection, stream: BinaryIO) -> None:
    while chunk := stream.read(UPLOAD_CHUNK):
        connection.send(chunk)
