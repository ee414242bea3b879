"""Image sizes from PNG / JPEG headers with the standard library only (core never decodes images;
the backend opens them with Pillow)."""

from __future__ import annotations

import os
import struct

from .errors import DatasetError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic...) carry the size.
JPEG_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
# Markers that stand alone (no length field): TEM, RST0-7, SOI, EOI.
JPEG_STANDALONE_MARKERS = {0x01, *range(0xD0, 0xDA)}
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG")


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of a PNG or JPEG file from its header; DatasetError naming the file otherwise."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as stream:
            head = stream.read(32)
            if head.startswith(PNG_SIGNATURE):
                if len(head) < 24 or head[12:16] != b"IHDR":
                    raise DatasetError(path, "truncated or malformed PNG header")
                width, height = struct.unpack(">II", head[16:24])
            elif head.startswith(b"\xff\xd8"):
                stream.seek(2)
                width, height = _jpeg_size(stream, path)
            else:
                raise DatasetError(path, f"not a PNG or JPEG image (starts with {head[:8]!r})")
    except FileNotFoundError:
        raise DatasetError(path, "image file not found") from None
    except OSError as exc:
        raise DatasetError(path, f"cannot read the image ({exc})") from None
    if width <= 0 or height <= 0:
        raise DatasetError(path, f"image header gives an empty size {width}x{height}")
    return width, height


def _jpeg_size(stream, path: str) -> tuple[int, int]:
    while True:
        byte = stream.read(1)
        if not byte:
            break
        if byte != b"\xff":
            continue  # entropy-coded data or padding between segments
        marker = stream.read(1)
        while marker == b"\xff":  # fill bytes
            marker = stream.read(1)
        if not marker:
            break
        code = marker[0]
        if code in JPEG_STANDALONE_MARKERS or code == 0x00:
            continue
        length_bytes = stream.read(2)
        if len(length_bytes) < 2:
            break
        length = struct.unpack(">H", length_bytes)[0]
        if code in JPEG_SOF_MARKERS:
            frame = stream.read(5)
            if len(frame) < 5:
                break
            height, width = struct.unpack(">HH", frame[1:5])
            return width, height
        stream.seek(length - 2, os.SEEK_CUR)
    raise DatasetError(path, "JPEG without a frame header (truncated or malformed)")
