"""SuperSplat compressed PLY and antimatter15 .splat -> GaussianCloud in the INRIA layout."""

from __future__ import annotations

import numpy as np
import pytest
from plyfile import PlyData, PlyElement

from clickgauss_core.errors import PlyFormatError
from clickgauss_core.gaussians import SH_C0
from clickgauss_core.ply import read_gaussian_ply, read_splat_file, write_gaussian_ply

GUITAR = "playcanvas-compressed/guitar.compressed.ply"
SEAL = "aframe-luma-seal-splat/luma-seal.splat"


def test_real_compressed_ply(real_data):
    cloud = read_splat_file(real_data(GUITAR))
    assert len(cloud) == 90854 and cloud.sh_degree == 0
    extent = cloud.positions.max(axis=0) - cloud.positions.min(axis=0)
    np.testing.assert_allclose(extent, [1.5, 4.3, 1.5], atol=0.2)  # SOURCE.md: ~1.5 x 4.3 x 1.5 units
    np.testing.assert_allclose(np.linalg.norm(cloud.rotations_raw, axis=1), 1.0, atol=2e-3)
    assert cloud.opacities.min() < 0.01 and cloud.opacities.max() > 0.99
    assert -20 < cloud.log_scales.min() < -15 and -1.5 < cloud.log_scales.max() < -0.5
    assert np.isfinite(cloud.opacity_logits).all()
    # Every splat lies inside its chunk's bounds.
    chunks = PlyData.read(str(real_data(GUITAR)))["chunk"].data
    chunk_of = np.arange(len(cloud)) // 256
    for axis in "xyz":
        values = cloud.properties[axis]
        assert (values >= chunks[f"min_{axis}"][chunk_of] - 1e-5).all()
        assert (values <= chunks[f"max_{axis}"][chunk_of] + 1e-5).all()


def test_compressed_ply_is_refused_by_the_inria_reader_with_a_pointer(real_data):
    with pytest.raises(PlyFormatError, match="SuperSplat compressed PLY.*read_splat_file"):
        read_gaussian_ply(real_data(GUITAR))


def test_real_antimatter_splat(real_data):
    path = real_data(SEAL)
    cloud = read_splat_file(path)
    assert len(cloud) == 101780 and cloud.sh_degree == 0
    np.testing.assert_allclose(cloud.positions.min(axis=0), [-1.52, -2.26, -1.35], atol=0.01)
    np.testing.assert_allclose(cloud.positions.max(axis=0), [1.52, 1.15, 1.64], atol=0.01)
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, 32)
    alpha = raw[:, 27]
    assert (alpha.min(), np.median(alpha), alpha.max()) == (1, 107, 255)  # SOURCE.md's sanity numbers
    # Decoding is exact up to float rounding: the activated values give the bytes back.
    np.testing.assert_allclose(cloud.opacities * 255, alpha, atol=1e-3)
    np.testing.assert_allclose(0.5 + SH_C0 * cloud.sh_dc, raw[:, 24:27] / 255, atol=1e-5)
    np.testing.assert_allclose(cloud.scales, raw[:, 12:24].copy().view("<f4"), rtol=1e-5)
    np.testing.assert_allclose(cloud.rotations_raw * 128 + 128, raw[:, 28:32], atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(cloud.rotations_raw, axis=1), 1.0, atol=0.01)


def test_converted_cloud_writes_as_inria_ply(real_data, tmp_path):
    cloud = read_splat_file(real_data(SEAL))
    write_gaussian_ply(tmp_path / "seal.ply", cloud)
    back = read_gaussian_ply(tmp_path / "seal.ply")
    assert list(back.properties)[:6] == ["x", "y", "z", "nx", "ny", "nz"]
    np.testing.assert_array_equal(back.positions, cloud.positions)


# -- a compressed PLY built from known values: checks the bit layout end to end -----------------
def _unorm(values, bits):
    return np.round(np.clip(values, 0, 1) * ((1 << bits) - 1)).astype(np.uint32)


def _pack_11_10_11(t):
    return (_unorm(t[:, 0], 11) << 21) | (_unorm(t[:, 1], 10) << 11) | _unorm(t[:, 2], 11)


def _write_compressed(path, positions, log_scales, quats_wxyz, colors, alpha, sh_codes=None, chunk_colors=True):
    n = len(positions)
    chunks = -(-n // 256)
    chunk_of = np.arange(n) // 256
    rows = []
    for c in range(chunks):
        sel = chunk_of == c
        row = list(positions[sel].min(0)) + list(positions[sel].max(0))
        row += list(log_scales[sel].min(0)) + list(log_scales[sel].max(0))
        if chunk_colors:
            row += list(colors[sel].min(0)) + list(colors[sel].max(0))
        rows.append(tuple(row))
    names = ["min_x", "min_y", "min_z", "max_x", "max_y", "max_z", "min_scale_x", "min_scale_y", "min_scale_z",
             "max_scale_x", "max_scale_y", "max_scale_z"]
    if chunk_colors:
        names += ["min_r", "min_g", "min_b", "max_r", "max_g", "max_b"]
    chunk_data = np.array(rows, dtype=[(name, "<f4") for name in names])

    def column(keys):
        return np.stack([chunk_data[k][chunk_of] for k in keys], 1)

    def frac(values, lo_keys, hi_keys):
        lo, hi = column(lo_keys), column(hi_keys)
        return (values - lo) / np.where(hi > lo, hi - lo, 1.0)

    pos_t = frac(positions, names[0:3], names[3:6])
    scale_t = frac(log_scales, names[6:9], names[9:12])
    col_t = frac(colors, names[12:15], names[15:18]) if chunk_colors else colors
    q = quats_wxyz / np.linalg.norm(quats_wxyz, axis=1, keepdims=True)
    largest = np.argmax(np.abs(q), axis=1)
    q = q * np.sign(q[np.arange(n), largest])[:, None]
    packed_rot = largest.astype(np.uint32)
    others = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])[largest]
    for k in range(3):
        comp = q[np.arange(n), others[:, k]]
        packed_rot = (packed_rot << 10) | _unorm(comp / np.sqrt(2) + 0.5, 10)
    packed_color = (_unorm(col_t[:, 0], 8) << 24) | (_unorm(col_t[:, 1], 8) << 16) | (_unorm(col_t[:, 2], 8) << 8) | _unorm(alpha, 8)
    vertex = np.empty(n, dtype=[("packed_position", "<u4"), ("packed_rotation", "<u4"), ("packed_scale", "<u4"),
                                ("packed_color", "<u4")])
    vertex["packed_position"], vertex["packed_rotation"] = _pack_11_10_11(pos_t), packed_rot
    vertex["packed_scale"], vertex["packed_color"] = _pack_11_10_11(scale_t), packed_color
    elements = [PlyElement.describe(chunk_data, "chunk"), PlyElement.describe(vertex, "vertex")]
    if sh_codes is not None:
        sh = np.empty(n, dtype=[(f"f_rest_{i}", "u1") for i in range(sh_codes.shape[1])])
        for i in range(sh_codes.shape[1]):
            sh[f"f_rest_{i}"] = sh_codes[:, i]
        elements.append(PlyElement.describe(sh, "sh"))
    PlyData(elements, byte_order="<").write(str(path))


@pytest.mark.parametrize("chunk_colors", [True, False])
def test_compressed_ply_decodes_known_values(tmp_path, chunk_colors):
    rng = np.random.default_rng(3)
    n = 600  # three chunks, the last one partial
    positions = rng.uniform(-2, 2, size=(n, 3))
    log_scales = rng.uniform(-6, -1, size=(n, 3))
    quats = rng.normal(size=(n, 4))
    colors = rng.uniform(0.1, 0.9, size=(n, 3))
    alpha = rng.uniform(0.05, 0.95, size=n)
    sh_codes = rng.integers(0, 256, size=(n, 9)).astype(np.uint8)
    path = tmp_path / "known.compressed.ply"
    _write_compressed(path, positions, log_scales, quats, colors, alpha, sh_codes, chunk_colors=chunk_colors)
    cloud = read_splat_file(path)
    assert len(cloud) == n and cloud.sh_degree == 1
    span = positions.max(0) - positions.min(0)
    np.testing.assert_allclose(cloud.positions, positions, atol=float(span.max()) / 1023)
    np.testing.assert_allclose(cloud.log_scales, log_scales, atol=5.0 / 1023)
    unit = quats / np.linalg.norm(quats, axis=1, keepdims=True)
    same_rotation = np.abs((cloud.rotations * unit).sum(axis=1))  # q and -q are one rotation
    assert same_rotation.min() > 0.999
    np.testing.assert_allclose(cloud.colors, colors, atol=1 / 255 if not chunk_colors else 1 / 300)
    np.testing.assert_allclose(cloud.opacities, alpha, atol=1 / 500)
    expected_rest = np.where(sh_codes == 0, 0.0, np.where(sh_codes == 255, 1.0, (sh_codes + 0.5) / 256)) * 8 - 4
    # sh element is channel-major, like f_rest in the INRIA layout: f_rest_{c * 3 + k}
    np.testing.assert_allclose(cloud.sh_rest[:, 2, 1], expected_rest[:, 5], rtol=1e-6)
    np.testing.assert_allclose(cloud.properties["f_rest_7"], expected_rest[:, 7], rtol=1e-6)


def test_compressed_ply_with_wrong_chunk_count(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "bad.compressed.ply"
    _write_compressed(path, rng.normal(size=(300, 3)), rng.normal(size=(300, 3)), rng.normal(size=(300, 4)),
                      rng.uniform(size=(300, 3)), rng.uniform(size=300))
    ply = PlyData.read(str(path))
    bad = tmp_path / "one-chunk.compressed.ply"
    PlyData([PlyElement.describe(ply["chunk"].data[:1], "chunk"), ply["vertex"]], byte_order="<").write(str(bad))
    with pytest.raises(PlyFormatError, match="1 chunks for 300 splats: expected 2"):
        read_splat_file(bad)


def test_bad_splat_files(tmp_path):
    odd = tmp_path / "odd.splat"
    odd.write_bytes(bytes(33))
    with pytest.raises(PlyFormatError, match="not a multiple of 32"):
        read_splat_file(odd)
    empty = tmp_path / "empty.splat"
    empty.write_bytes(b"")
    with pytest.raises(PlyFormatError, match="empty file"):
        read_splat_file(empty)
    nan = tmp_path / "nan.splat"
    record = np.zeros(2, dtype=[("p", "<f4", 3), ("s", "<f4", 3), ("c", "u1", 8)])
    record["p"][1, 2] = np.nan
    nan.write_bytes(record.tobytes())
    with pytest.raises(PlyFormatError, match="1 splat\\(s\\) have a NaN/inf position \\(first at splat 1\\)"):
        read_splat_file(nan)
    unknown = tmp_path / "scene.bin"
    unknown.write_bytes(b"glTF" + bytes(60))
    with pytest.raises(PlyFormatError, match="unknown splat file format"):
        read_splat_file(unknown)
    unknown.write_bytes(b"NGSP" + bytes(60))  # the SPZ magic: read as SPZ, whatever the extension
    with pytest.raises(PlyFormatError, match="SPZ version 0 is not supported"):
        read_splat_file(unknown)
