"""Multipart uploads streamed straight to disk, hashed on the way, cut off at the size limit.

Starlette's own form parsing spools the whole body before the route runs, so it cannot stop a
too-large upload early; here the request stream is fed chunk by chunk to python-multipart's
push parser and reading stops as soon as the file part passes the limit.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request
from python_multipart.multipart import MultipartParseError, MultipartParser, parse_options_header

from .errors import ApiError
from clickgauss_core.protocol import BAD_REQUEST, UNSUPPORTED_MEDIA_TYPE, UPLOAD_TOO_LARGE

FILE_PART = "file"
MAX_TEXT_FIELD_BYTES = 64 * 1024
# Room for the multipart boundaries, part headers and the small text fields around the file.
ENVELOPE_BYTES = 256 * 1024
HEAD_BYTES = 16  # enough for every splat format's magic


@dataclass
class ReceivedUpload:
    path: Path                   # the file part, on disk (caller moves or deletes it)
    size: int
    sha256: str
    fields: dict[str, str] = field(default_factory=dict)  # the text parts
    filename: str = ""           # the file part's own name (how the sender knows the file)
    head: bytes = b""            # the file's first bytes (for sniffing its format)


def _part_name(content_disposition: bytes) -> str | None:
    _, options = parse_options_header(content_disposition)
    name = options.get(b"name")
    return None if name is None else name.decode("utf-8", "replace")


def _part_filename(content_disposition: bytes) -> str:
    """The part's file name without any folders (a sender's path says nothing the backend may use)."""
    _, options = parse_options_header(content_disposition)
    raw = options.get(b"filename", b"").decode("utf-8", "replace")
    return raw.replace("\\", "/").rsplit("/", 1)[-1]


class _PartCollector:
    """python-multipart callbacks: the `file` part goes to `handle`, text parts to `fields`."""

    def __init__(self, handle, max_file_bytes: int, text_fields: tuple[str, ...], upload_name: str):
        self.handle = handle
        self.max_file_bytes = max_file_bytes
        self.text_fields = text_fields
        self.upload_name = upload_name
        self.digest = hashlib.sha256()
        self.file_size = 0
        self.saw_file = False
        self.filename = ""
        self.head = b""
        self.fields: dict[str, bytearray] = {}
        self._headers: dict[bytes, bytes] = {}
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._current: str | None = None

    def callbacks(self) -> dict:
        return {"on_part_begin": self.on_part_begin, "on_header_field": self.on_header_field,
                "on_header_value": self.on_header_value, "on_header_end": self.on_header_end,
                "on_headers_finished": self.on_headers_finished, "on_part_data": self.on_part_data}

    def on_part_begin(self):
        self._headers = {}
        self._current = None

    def on_header_field(self, data: bytes, start: int, end: int):
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int):
        self._header_value += data[start:end]

    def on_header_end(self):
        self._headers[bytes(self._header_field).lower()] = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def on_headers_finished(self):
        disposition = self._headers.get(b"content-disposition", b"")
        name = _part_name(disposition)
        if name == FILE_PART:
            if self.saw_file:
                raise ApiError(422, BAD_REQUEST, f"{self.upload_name}: more than one '{FILE_PART}' part")
            self.saw_file = True
            self._current = FILE_PART
            self.filename = _part_filename(self._headers.get(b"content-disposition", b""))
        elif name in self.text_fields:
            self.fields[name] = bytearray()
            self._current = name
        else:
            self._current = None  # unknown parts are read past, not stored

    def on_part_data(self, data: bytes, start: int, end: int):
        chunk = data[start:end]
        if self._current == FILE_PART:
            self.file_size += len(chunk)
            if self.file_size > self.max_file_bytes:
                raise ApiError(413, UPLOAD_TOO_LARGE, too_large_message(self.upload_name, self.max_file_bytes))
            self.handle.write(chunk)
            self.digest.update(chunk)
            if len(self.head) < HEAD_BYTES:
                self.head += chunk[:HEAD_BYTES - len(self.head)]
        elif self._current is not None:
            buffer = self.fields[self._current]
            if len(buffer) + len(chunk) > MAX_TEXT_FIELD_BYTES:
                raise ApiError(422, BAD_REQUEST, f"{self.upload_name}: form field {self._current!r} is too long")
            buffer += chunk


def too_large_message(upload_name: str, max_bytes: int, size: int | None = None) -> str:
    size_text = f" ({size / 2**20:.1f} MB)" if size is not None else ""
    return (f"{upload_name}{size_text} is larger than this backend accepts ({max_bytes / 2**20:g} MB): start the "
            "backend with a larger --max-upload-mb, or with --data-root and the file's folder so it reads the "
            "file where it is")


async def receive_file_upload(request: Request, dest_dir: Path, max_bytes: int, upload_name: str,
                              text_fields: tuple[str, ...] = ()) -> ReceivedUpload:
    """Stream a multipart body with one `file` part into a new file under `dest_dir`."""
    mime, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if mime != b"multipart/form-data" or not boundary:
        raise ApiError(415, UNSUPPORTED_MEDIA_TYPE,
                       f"{upload_name} was not sent as a file upload: send it as multipart/form-data with a "
                       f"'{FILE_PART}' part")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes + ENVELOPE_BYTES:
        raise ApiError(413, UPLOAD_TOO_LARGE, too_large_message(upload_name, max_bytes, int(declared)))
    dest_dir.mkdir(parents=True, exist_ok=True)
    descriptor, temp_name = tempfile.mkstemp(dir=dest_dir, prefix="upload-", suffix=".part")
    temp_path = Path(temp_name)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            collector = _PartCollector(handle, max_bytes, text_fields, upload_name)
            parser = MultipartParser(boundary, collector.callbacks())
            received = 0
            async for chunk in request.stream():
                received += len(chunk)
                if received > max_bytes + ENVELOPE_BYTES:
                    raise ApiError(413, UPLOAD_TOO_LARGE, too_large_message(upload_name, max_bytes))
                parser.write(chunk)
            parser.finalize()
        if not collector.saw_file:
            raise ApiError(422, BAD_REQUEST, f"{upload_name} is missing from the upload: send it as the "
                                               f"'{FILE_PART}' part")
        fields = {}
        for name, value in collector.fields.items():
            try:
                fields[name] = value.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ApiError(422, BAD_REQUEST, f"{upload_name}: form field {name!r} is not UTF-8") from exc
        return ReceivedUpload(temp_path, collector.file_size, collector.digest.hexdigest(), fields,
                              collector.filename, collector.head)
    except MultipartParseError as exc:
        temp_path.unlink(missing_ok=True)
        raise ApiError(400, BAD_REQUEST, f"{upload_name} could not be read from the upload ({exc}): "
                                           "send it again as multipart/form-data") from exc
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise
