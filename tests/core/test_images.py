"""Image sizes from file headers (core reads no pixels)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from clickgauss_core.errors import DatasetError
from clickgauss_core.images import image_size


def _save(tmp_path, name, size, fmt, **options):
    path = tmp_path / name
    Image.new("RGB", size, (10, 200, 30)).save(path, fmt, **options)
    return path


@pytest.mark.parametrize("fmt, options", [
    ("PNG", {}),
    ("JPEG", {}),
    ("JPEG", {"progressive": True}),
    ("JPEG", {"exif": Image.Exif()}),
])
def test_sizes_of_png_and_jpeg(tmp_path, fmt, options):
    path = _save(tmp_path, f"a.{fmt.lower()}", (321, 123), fmt, **options)
    assert image_size(path) == (321, 123)


def test_jpeg_with_a_large_exif_block(tmp_path):
    exif = Image.Exif()
    exif[0x010E] = "x" * 30000  # ImageDescription: pushes the frame header far into the file
    path = _save(tmp_path, "big_exif.jpg", (40, 30), "JPEG", exif=exif)
    assert image_size(path) == (40, 30)


def test_real_capture_jpeg(real_data):
    assert image_size(real_data("snowmiku-plush-colmap/images/20240212_003919.jpg")) == (989, 742)


def test_bad_images(tmp_path):
    (tmp_path / "text.png").write_text("not an image at all")
    with pytest.raises(DatasetError, match="text.png: not a PNG or JPEG image"):
        image_size(tmp_path / "text.png")
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "JPEG")
    (tmp_path / "cut.jpg").write_bytes(buffer.getvalue()[:20])
    with pytest.raises(DatasetError, match="cut.jpg: JPEG without a frame header"):
        image_size(tmp_path / "cut.jpg")
    (tmp_path / "cut.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0")
    with pytest.raises(DatasetError, match="cut.png: truncated or malformed PNG header"):
        image_size(tmp_path / "cut.png")
    with pytest.raises(DatasetError, match="missing.png: image file not found"):
        image_size(tmp_path / "missing.png")
