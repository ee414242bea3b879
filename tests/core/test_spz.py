"""Niantic SPZ: real files written by another tool (spz-js), our writer, every container version.

The real files (tests/data/real/spzjs-converted, see its SOURCE.md) were converted by spz-js from
two real PLYs that are here too: every value must match its source PLY within SPZ's
quantisation, Gaussian by Gaussian. Versions 3 (smallest-three rotations) and 4 (unwrapped,
zstd streams) are built in the test from the same Gaussians, laid out as the SPZ spec says.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import zstandard

from clickgauss_core.errors import PlyFormatError
from clickgauss_core.ply import read_splat_file
from clickgauss_core.spz import read_spz, write_spz
from conftest import make_cloud

REAL_DATA = Path(__file__).resolve().parents[1] / "data" / "real"
FRUIT_SPZ = REAL_DATA / "spzjs-converted" / "fruit_drops_minimal.spz"   # SH 3, from the fruit PLY
DONUT_SPZ = REAL_DATA / "spzjs-converted" / "donut_sh0.spz"             # SH 0, from the donut PLY
FRUIT_PLY = REAL_DATA / "supersplat-fruit-labels" / "fruit_drops_minimal.ply"
DONUT_PLY = REAL_DATA / "v3dg-donut-sh0" / "fused.ply"

# Half a quantisation step of each SPZ attribute (+ float32 rounding).
POSITION_STEP = 1.0 / 4096          # 12 fractional bits in both files
LOG_SCALE_STEP = 1.0 / 16
SH_DC_STEP = 1.0 / (0.15 * 255)
ALPHA_STEP = 1.0 / 255
SH_STEP = 1.0 / 128
SLACK = 1e-5


def assert_matches_source(spz, ply, sh_bucket_bits: tuple[int, int] | None):
    """spz (read from SPZ) equals ply (its source) within SPZ's quantisation, value by value."""
    assert len(spz) == len(ply) and spz.sh_degree == ply.sh_degree
    np.testing.assert_array_less(np.abs(spz.positions - ply.positions), POSITION_STEP / 2 + SLACK)
    # Scales and colours are stored in a fixed range; values outside it are clamped to its ends.
    log_scales = ply.log_scales
    representable = (log_scales >= -10) & (log_scales <= 255 / 16 - 10)
    error = np.abs(spz.log_scales - log_scales)
    assert (error[representable] <= LOG_SCALE_STEP / 2 + SLACK).all()
    np.testing.assert_allclose(spz.log_scales[~representable], np.clip(log_scales[~representable], -10, 255 / 16 - 10),
                               atol=LOG_SCALE_STEP / 2 + SLACK)
    sh_dc = ply.sh_dc
    in_range = np.abs(sh_dc) <= 0.5 / 0.15
    assert (np.abs(spz.sh_dc - sh_dc)[in_range] <= SH_DC_STEP / 2 + SLACK).all()
    assert (np.abs(spz.opacities - ply.opacities) <= ALPHA_STEP / 2 + SLACK).all()
    # Version 2 stores x y z of the unit quaternion with w >= 0 as 8 bits each (w is derived).
    source = ply.rotations
    source = np.where(source[:, :1] < 0, -source, source)
    assert np.abs(spz.rotations_raw[:, 1:] - source[:, 1:]).max() <= 0.5 / 127.5 + SLACK
    if sh_bucket_bits is not None and ply.sh_degree > 0:
        band1_bits, rest_bits = sh_bucket_bits  # the writer rounds SH to these many bits
        error = np.abs(spz.sh_rest - np.clip(ply.sh_rest, -1, 127 / 128))
        assert error[:, :3].max() <= (2 ** (8 - band1_bits) / 2 + 0.5) * SH_STEP + SLACK
        if ply.sh_degree > 1:
            assert error[:, 3:].max() <= (2 ** (8 - rest_bits) / 2 + 0.5) * SH_STEP + SLACK


def gunzip(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes())


# -- real files written by another tool -------------------------------------------------------

def test_spz_written_by_spz_js_matches_its_source_ply_sh3():
    spz = read_splat_file(FRUIT_SPZ)
    assert "Niantic SPZ version 2" in spz.comments[0]
    # spz-js rounds SH band 1 to 5 bits and bands 2-3 to 4 bits (Niantic's defaults).
    assert_matches_source(spz, read_splat_file(FRUIT_PLY), sh_bucket_bits=(5, 4))


def test_spz_written_by_spz_js_matches_its_source_ply_sh0():
    spz = read_splat_file(DONUT_SPZ)
    assert spz.rest_names == [] and len(spz) == 45624
    assert_matches_source(spz, read_splat_file(DONUT_PLY), sh_bucket_bits=None)


@pytest.mark.parametrize("path", [FRUIT_SPZ, DONUT_SPZ], ids=["sh3", "sh0"])
def test_theirs_read_ours_written_is_their_file_again(path, tmp_path):
    """Decoding then encoding a quantised file gives back its bytes: every value sits on the grid."""
    ours = tmp_path / "again.spz"
    write_spz(ours, read_spz(path))
    theirs_payload, our_payload = gunzip(path), gunzip(ours)
    assert len(our_payload) == len(theirs_payload)
    count = len(read_spz(path))
    rotations_at = 16 + count * (9 + 1 + 3 + 3)
    # Everything but the rotations is byte for byte the same...
    assert our_payload[:rotations_at] == theirs_payload[:rotations_at]
    assert our_payload[rotations_at + 3 * count:] == theirs_payload[rotations_at + 3 * count:]
    # ...and the rotations (w rebuilt from x y z, normalised, re-rounded) at most one code apart.
    ours_rot = np.frombuffer(our_payload[rotations_at:rotations_at + 3 * count], np.uint8).astype(int)
    theirs_rot = np.frombuffer(theirs_payload[rotations_at:rotations_at + 3 * count], np.uint8).astype(int)
    assert np.abs(ours_rot - theirs_rot).max() <= 1
    again = read_spz(ours)
    np.testing.assert_array_equal(again.positions, read_spz(path).positions)


# -- our writer ---------------------------------------------------------------------------------

@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_ours_written_ours_read_within_the_quantisation(degree, tmp_path):
    cloud = make_cloud(n=300, sh_degree=degree, seed=degree)
    # Keep the random values inside SPZ's ranges (others are clamped, as tested above).
    for name in cloud.rest_names:
        cloud.properties[name] = np.clip(cloud.properties[name], -0.99, 0.99)
    path = tmp_path / f"sh{degree}.spz"
    write_spz(path, cloud)
    assert path.read_bytes()[:2] == b"\x1f\x8b" and gzip.decompress(path.read_bytes())[:8] == b"NGSP\x02\x00\x00\x00"
    back = read_splat_file(path)
    assert back.sh_degree == degree
    assert_matches_source(back, cloud, sh_bucket_bits=(8, 8))


def test_writing_is_deterministic_and_keeps_far_positions(tmp_path):
    cloud = make_cloud(n=20, sh_degree=0)
    cloud.properties["x"] = cloud.properties["x"] * 5000  # beyond 12 fractional bits' +-2048
    write_spz(tmp_path / "a.spz", cloud)
    write_spz(tmp_path / "b.spz", cloud)
    assert (tmp_path / "a.spz").read_bytes() == (tmp_path / "b.spz").read_bytes()
    back = read_spz(tmp_path / "a.spz")
    fractional_bits = gzip.decompress((tmp_path / "a.spz").read_bytes())[13]
    assert fractional_bits < 12
    np.testing.assert_allclose(back.positions, cloud.positions, atol=0.5 / (1 << fractional_bits) + 1e-3)


def test_writer_refuses_what_spz_cannot_hold(tmp_path):
    with pytest.raises(ValueError, match="empty cloud"):
        write_spz(tmp_path / "e.spz", make_cloud(n=4).subset(np.zeros(4, bool)))
    far = make_cloud(n=3, sh_degree=0)
    far.properties["y"][0] = 1e9
    with pytest.raises(ValueError, match="24-bit fixed point"):
        write_spz(tmp_path / "far.spz", far)
    assert not (tmp_path / "far.spz").exists()


# -- versions 1-4 ------------------------------------------------------------------------------

def smallest_three(wxyz: np.ndarray) -> np.ndarray:
    """Encode unit quaternions as SPZ v3's uint32 "smallest three" (spec: nianticlabs/spz README)."""
    q = wxyz[:, [1, 2, 3, 0]] / np.linalg.norm(wxyz, axis=1, keepdims=True)
    codes = np.zeros(len(q), dtype=np.uint32)
    for row, quat in enumerate(q):
        largest = int(np.argmax(np.abs(quat)))
        sign = quat[largest] < 0
        code = largest
        for index in range(4):
            if index != largest:
                negative = (quat[index] < 0) ^ sign
                magnitude = int(511 * abs(quat[index]) / np.sqrt(0.5) + 0.5)
                code = (code << 10) | (int(negative) << 9) | magnitude
        codes[row] = code
    return codes


def split_v2(payload: bytes, count: int, degree: int) -> dict[str, bytes]:
    sizes = [("positions", 9), ("alphas", 1), ("colors", 3), ("scales", 3), ("rotations", 3),
             ("sh", 3 * ((degree + 1) ** 2 - 1))]
    parts, offset = {}, 16
    for name, width in sizes:
        parts[name] = payload[offset:offset + count * width]
        offset += count * width
    return parts


def v3_parts(payload: bytes, cloud) -> dict[str, bytes]:
    parts = split_v2(payload, len(cloud), cloud.sh_degree)
    parts["rotations"] = smallest_three(cloud.rotations.astype(np.float64)).astype("<u4").tobytes()
    return parts


def v3_payload(payload: bytes, cloud) -> bytes:
    header = bytearray(payload[:16])
    header[4:8] = struct.pack("<I", 3)
    return bytes(header) + b"".join(v3_parts(payload, cloud).values())


def v4_file(payload: bytes, cloud) -> bytes:
    streams = [data for data in v3_parts(payload, cloud).values() if data]  # empty ones left out
    frames = [zstandard.ZstdCompressor().compress(data) for data in streams]
    count, degree, fractional_bits = struct.unpack_from("<IBB", payload, 8)
    header = struct.pack("<4sIIBBBBI12x", b"NGSP", 4, count, degree, fractional_bits, 0, len(streams), 32)
    toc = b"".join(struct.pack("<QQ", len(frame), len(data)) for frame, data in zip(frames, streams))
    return header + toc + b"".join(frames)


@pytest.mark.parametrize("degree", [0, 3])
def test_versions_2_3_4_wrapped_or_not_read_as_the_same_gaussians(degree, tmp_path):
    cloud = read_spz(FRUIT_SPZ if degree else DONUT_SPZ)
    reference = tmp_path / "v2.spz"
    write_spz(reference, cloud)
    payload = gzip.decompress(reference.read_bytes())
    v2 = read_spz(reference)
    files = {
        "v2-unwrapped": payload,
        "v3-gzip": gzip.compress(v3_payload(payload, cloud)),
        "v3-unwrapped": v3_payload(payload, cloud),
        "v4": v4_file(payload, cloud),
    }
    for name, content in files.items():
        path = tmp_path / f"{name}.spz"
        path.write_bytes(content)
        back = read_splat_file(path)
        assert f"version {name[1]}" in back.comments[0], name
        for attribute in ("positions", "log_scales", "opacity_logits", "sh_dc", "sh_rest"):
            np.testing.assert_array_equal(getattr(back, attribute), getattr(v2, attribute), err_msg=name)
        if name.startswith("v2"):
            np.testing.assert_array_equal(back.rotations_raw, v2.rotations_raw)
        else:  # smallest three: 9 bits + sign per component, far finer than version 2's 8 bits
            alignment = np.abs((back.rotations * cloud.rotations).sum(axis=1))
            assert alignment.min() > 0.99999, name


def test_bad_spz_files_name_the_file_and_the_problem(tmp_path):
    cloud = make_cloud(n=10, sh_degree=1)
    good = tmp_path / "good.spz"
    write_spz(good, cloud)
    payload = gzip.decompress(good.read_bytes())
    cases = {
        "truncated-gzip.spz": (good.read_bytes()[:-20], "corrupt or truncated gzip stream"),
        "truncated-data.spz": (gzip.compress(payload[:-5]), "truncated SPZ"),
        "other-magic.spz": (gzip.compress(b"XXXX" + payload[4:]), "not an SPZ file"),
        "version-9.spz": (gzip.compress(payload[:4] + struct.pack("<I", 9) + payload[8:]), "SPZ version 9 is not supported"),
        "degree-4.spz": (gzip.compress(payload[:12] + b"\x04" + payload[13:]), "SH degree 4"),
        "no-gaussians.spz": (gzip.compress(payload[:8] + struct.pack("<I", 0) + payload[12:]), "declares 0 Gaussians"),
        "huge-count.spz": (gzip.compress(payload[:8] + struct.pack("<I", 2**31) + payload[12:]), "corrupt or not an SPZ"),
        "short.spz": (b"NGSP\x04\x00", "truncated SPZ"),
        "empty.spz": (b"", "empty file"),
        "text.spz": (b"hello world", "not an SPZ file"),
    }
    v4 = v4_file(payload, cloud)
    cases["v4-missing-stream.spz"] = (v4[:15] + b"\x05" + v4[16:], "5 attribute streams, expected 6")
    cases["v4-truncated.spz"] = (v4[:-3], "corrupt or truncated")
    for name, (content, problem) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(PlyFormatError, match=problem) as error:
            read_splat_file(path)
        assert str(path) in str(error.value), name
