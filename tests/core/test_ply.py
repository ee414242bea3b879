"""The INRIA PLY reader/writer: real files, every variant, round trips, every malformed case."""

from __future__ import annotations

import numpy as np
import pytest
from plyfile import PlyData, PlyElement

from clickgauss_core.errors import PlyFormatError
from clickgauss_core.gaussians import REQUIRED_PROPERTIES, SH_C0
from clickgauss_core.ply import read_gaussian_ply, read_splat_file, write_gaussian_ply
from conftest import make_cloud

FRUIT = "supersplat-fruit-labels/fruit_drops_minimal.ply"
DONUT = "v3dg-donut-sh0/fused.ply"


# -- real files ----------------------------------------------------------------------------------
def test_real_sh3_ply_with_normals_and_extra_property(real_data):
    cloud = read_gaussian_ply(real_data(FRUIT))
    assert len(cloud) == 4721
    assert cloud.sh_degree == 3
    names = list(cloud.properties)
    assert names[:6] == ["x", "y", "z", "nx", "ny", "nz"] and names[-1] == "transform"
    assert len(names) == 63
    assert not cloud.properties["transform"].any()
    # channel-major f_rest: coefficient k of channel c is f_rest_{c * 15 + k}
    rest = cloud.sh_rest
    assert rest.shape == (4721, 15, 3)
    assert rest[7, 4, 2] == cloud.properties["f_rest_34"][7]
    assert rest[11, 0, 1] == cloud.properties["f_rest_15"][11]
    assert 0.0 < np.count_nonzero(rest) / rest.size > 0.9


def test_real_sh0_ply_without_normals(real_data):
    cloud = read_gaussian_ply(real_data(DONUT))
    assert len(cloud) == 45624
    assert cloud.sh_degree == 0 and cloud.sh_rest.shape == (45624, 0, 3)
    assert "nx" not in cloud.properties
    norms = np.linalg.norm(cloud.rotations_raw, axis=1)
    assert 0.6 < norms.min() < 0.62 and 2.7 < norms.max() < 2.73  # raw optimiser values kept
    assert np.allclose(np.linalg.norm(cloud.rotations, axis=1), 1.0, atol=1e-6)
    assert np.abs(cloud.positions).max() < 0.12


@pytest.mark.parametrize("relative", [FRUIT, DONUT])
def test_real_ply_rewrites_byte_identical(real_data, tmp_path, relative):
    source = real_data(relative)
    out = tmp_path / "out.ply"
    write_gaussian_ply(out, read_gaussian_ply(source))
    assert out.read_bytes() == source.read_bytes()


def test_real_point_cloud_ply_is_rejected_as_not_a_splat(real_data):
    with pytest.raises(PlyFormatError, match="point cloud/mesh PLY, not a Gaussian splat: missing f_dc_0"):
        read_gaussian_ply(real_data("v3dg-donut-sh0/color.ply"))


# -- variants and round trips --------------------------------------------------------------------
@pytest.mark.parametrize("sh_degree", [0, 1, 2, 3])
@pytest.mark.parametrize("normals", [True, False])
def test_round_trip_every_sh_degree(tmp_path, sh_degree, normals):
    cloud = make_cloud(n=40, sh_degree=sh_degree, normals=normals)
    write_gaussian_ply(tmp_path / "c.ply", cloud)
    back = read_gaussian_ply(tmp_path / "c.ply")
    assert back.sh_degree == sh_degree
    assert list(back.properties) == list(cloud.properties)
    for name, values in cloud.properties.items():
        np.testing.assert_array_equal(back.properties[name], values)
    np.testing.assert_array_equal(back.sh_rest, cloud.sh_rest)


def _write_with_plyfile(path, cloud, **kwargs):
    data = np.empty(len(cloud), dtype=[(n, v.dtype) for n, v in cloud.properties.items()])
    for name, values in cloud.properties.items():
        data[name] = values
    PlyData([PlyElement.describe(data, "vertex")], **kwargs).write(str(path))


@pytest.mark.parametrize("layout", [dict(text=True), dict(byte_order=">"), dict(byte_order="<")])
def test_ascii_and_big_endian_read_the_same_values(tmp_path, layout):
    cloud = make_cloud(n=30, sh_degree=2, extra={"label": np.arange(30, dtype=np.uint8)})
    _write_with_plyfile(tmp_path / "c.ply", cloud, **layout)
    back = read_gaussian_ply(tmp_path / "c.ply")
    for name, values in cloud.properties.items():
        np.testing.assert_allclose(back.properties[name], values, rtol=1e-6)
        assert back.properties[name].dtype.isnative
    assert back.properties["label"].dtype == np.uint8


def test_properties_are_read_by_name_in_any_order_and_written_in_inria_order(tmp_path):
    cloud = make_cloud(n=10, sh_degree=1, extra={"segment": np.arange(10, dtype=np.int32)})
    shuffled = dict(reversed(list(cloud.properties.items())))
    _write_with_plyfile(tmp_path / "shuffled.ply", type(cloud)(shuffled))
    back = read_gaussian_ply(tmp_path / "shuffled.ply")
    np.testing.assert_array_equal(back.positions, cloud.positions)
    np.testing.assert_array_equal(back.sh_rest, cloud.sh_rest)
    write_gaussian_ply(tmp_path / "ordered.ply", back)
    names = [p.name for p in PlyData.read(str(tmp_path / "ordered.ply"))["vertex"].properties]
    assert names == list(cloud.properties)  # INRIA order, extras last


def test_double_precision_standard_properties_stay_float64(tmp_path):
    cloud = make_cloud(n=5, sh_degree=0)
    doubled = type(cloud)({k: v.astype(np.float64) + 1e-12 for k, v in cloud.properties.items()})
    _write_with_plyfile(tmp_path / "d.ply", doubled)
    back = read_gaussian_ply(tmp_path / "d.ply")
    for name, values in doubled.properties.items():
        assert back.properties[name].dtype == np.float64, name
        np.testing.assert_array_equal(back.properties[name], values, err_msg=name)  # not rounded to float32
    write_gaussian_ply(tmp_path / "again.ply", back)
    np.testing.assert_array_equal(read_gaussian_ply(tmp_path / "again.ply").properties["x"], doubled.properties["x"])


def test_writing_into_a_missing_folder_names_the_target(tmp_path):
    target = tmp_path / "not-there" / "out.ply"
    with pytest.raises(FileNotFoundError, match=f"cannot write {target}: the folder {target.parent} does not exist"):
        write_gaussian_ply(target, make_cloud(n=5, sh_degree=0))


def test_subset_and_comments_survive_writing(tmp_path):
    cloud = make_cloud(n=20, sh_degree=1)
    cloud.comments = ["exported by ClickGauss"]
    part = cloud.subset(np.arange(20) % 3 == 0)
    write_gaussian_ply(tmp_path / "p.ply", part)
    back = read_gaussian_ply(tmp_path / "p.ply")
    assert len(back) == 7 and back.comments == ["exported by ClickGauss"]
    np.testing.assert_array_equal(back.positions, cloud.positions[::3])


def test_a_cloud_without_gaussians_is_written_but_reading_it_is_a_clear_error(tmp_path):
    write_gaussian_ply(tmp_path / "e.ply", make_cloud(n=0, sh_degree=0))
    for reader in (read_gaussian_ply, read_splat_file):
        with pytest.raises(PlyFormatError, match="no Gaussians: the header declares 0 vertices"):
            reader(tmp_path / "e.ply")


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
def test_header_comments_in_any_encoding_are_read_and_written_back(tmp_path, encoding):
    comment = "trained by Jürgen in Säo Paulo, 30 €" if encoding == "utf-8" else "façade scanned by Gaël"
    content = _binary_ply(3, 3).replace(b"format binary_little_endian 1.0\n",
                                        b"format binary_little_endian 1.0\ncomment " + comment.encode(encoding) + b"\n")
    with_obj_info = content.replace(b"element vertex", b"obj_info " + comment.encode(encoding) + b"\nelement vertex")
    (tmp_path / "o.ply").write_bytes(with_obj_info)
    assert read_gaussian_ply(tmp_path / "o.ply").comments == [comment]
    (tmp_path / "c.ply").write_bytes(content)
    for reader in (read_gaussian_ply, read_splat_file):
        cloud = reader(tmp_path / "c.ply")
        assert cloud.comments == [comment]
        np.testing.assert_array_equal(cloud.properties["x"], [0.0, 14.0, 28.0])
    write_gaussian_ply(tmp_path / "out.ply", cloud)
    assert read_gaussian_ply(tmp_path / "out.ply").comments == [comment]
    if encoding == "utf-8":  # a UTF-8 file is written back byte for byte
        assert (tmp_path / "out.ply").read_bytes() == content


def test_a_comment_with_a_line_break_is_refused_on_writing(tmp_path):
    cloud = make_cloud(n=2, sh_degree=0)
    cloud.comments = ["two\nlines"]
    with pytest.raises(ValueError, match="line break"):
        write_gaussian_ply(tmp_path / "c.ply", cloud)


# -- malformed files -----------------------------------------------------------------------------
VERTEX_HEADER = "".join(f"property float {n}\n" for n in REQUIRED_PROPERTIES)


def _binary_ply(count_in_header: int, rows: int, header_extra: str = "", properties: str = VERTEX_HEADER) -> bytes:
    header = f"ply\nformat binary_little_endian 1.0\nelement vertex {count_in_header}\n{properties}{header_extra}end_header\n"
    n_props = properties.count("property")
    return header.encode() + np.arange(rows * n_props, dtype="<f4").tobytes()


def _ascii_ply(rows: list[str], properties: str = VERTEX_HEADER) -> bytes:
    header = f"ply\nformat ascii 1.0\nelement vertex {len(rows)}\n{properties}end_header\n"
    return (header + "".join(r + "\n" for r in rows)).encode()


ROW = " ".join(["0.5"] * len(REQUIRED_PROPERTIES))
MALFORMED = {
    "empty": (b"", "empty file"),
    "not_ply": (b"\x89PNG\r\n\x1a\n" + bytes(100), "not a PLY file"),
    "text_not_ply": (b"solid cube\nfacet normal 0 0 1\n", "not a PLY file"),
    "truncated_header": (b"ply\nformat binary_little_endian 1.0\nelement vertex 3\nproperty float x\n",
                         "no 'end_header'"),
    "bad_header_line": (b"ply\nformat binary_little_endian 1.0\nelement vertex 1\nproperty half x\nend_header\n",
                        "malformed PLY header, line 4"),
    "bad_format": (b"ply\nformat binary_middle_endian 1.0\nelement vertex 0\nend_header\n", "unknown or missing format"),
    "truncated_data": (_binary_ply(10, 10)[:-9], r"file is truncated: the header declares 10 vertex \(560 bytes of "
                                                 r"data\) but only 551 bytes follow the header \(9 vertex and 47 bytes\)"),
    # A header count smaller than the body: the rest of the file would be dropped silently.
    "count_smaller_than_body": (_binary_ply(2, 3), r"header declares 2 vertex \(112 bytes of data\) but 168 bytes "
                                                   r"follow the header \(3 vertex\)"),
    "body_longer_by_a_partial_row": (_binary_ply(3, 3) + b"\0" * 7, r"declares 3 vertex \(168 bytes of data\) but "
                                                                     r"175 bytes follow the header \(3 vertex and 7 bytes\)"),
    "ascii_count_smaller_than_body": (_ascii_ply([ROW, ROW, ROW]).replace(b"vertex 3", b"vertex 2"),
                                      r"header declares 2 vertex rows but the data has 3 rows"),
    "zero_gaussians": (_binary_ply(0, 0), "no Gaussians: the header declares 0 vertices"),
    "zero_gaussians_ascii": (_ascii_ply([]), "no Gaussians: the header declares 0 vertices"),
    "count_larger_than_file": (_binary_ply(1_000_000, 4), "declares 1000000 vertex"),
    "ascii_count_larger_than_file": (_ascii_ply([ROW]).replace(b"vertex 1", b"vertex 999999999999"),
                                     "declares 999999999999 vertex \\(at least"),
    "duplicate_property": (_binary_ply(1, 1, properties=VERTEX_HEADER + "property float x\n"),
                           "property 'x' appears twice in element 'vertex'"),
    "no_vertex": (b"ply\nformat ascii 1.0\nelement face 0\nproperty list uchar int vertex_indices\nend_header\n",
                  "no 'vertex' element"),
    "mesh": (b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
             b"property uchar red\nproperty uchar green\nproperty uchar blue\nelement face 1\n"
             b"property list uchar int vertex_indices\nend_header\n0 0 0 255 0 0\n1 0 0 0 255 0\n0 1 0 0 0 255\n3 0 1 2\n",
             "this is a mesh PLY, not a Gaussian splat: missing f_dc_0"),
    "missing_rotation": (_binary_ply(2, 2, properties=VERTEX_HEADER.replace("property float rot_3\n", "")),
                         "missing required Gaussian properties: rot_3"),
    "list_property": (_binary_ply(1, 1, properties=VERTEX_HEADER + "property list uchar float extra\n"),
                      "'extra' is a list property"),
    "integer_opacity": (_binary_ply(1, 1, properties=VERTEX_HEADER.replace("float opacity", "uchar opacity")),
                        "'opacity' has type uchar"),
    "non_numeric": (_ascii_ply([ROW, ROW.replace("0.5", "abc", 1)]), "malformed input"),
    "ascii_short_row": (_ascii_ply([ROW, "0.5 0.5"]), "early end-of-line"),
    "ascii_missing_rows": (_ascii_ply([ROW, ROW])[:-len(ROW) - 1], "header declares 2 vertex rows but the data has 1 row"),
    "nan": (_ascii_ply([ROW, ROW.replace("0.5", "nan", 1)]), r"property 'x' has 1 NaN/inf value\(s\) \(first at vertex 1\)"),
    "inf": (_ascii_ply([ROW.rsplit(" ", 1)[0] + " inf"]), "property 'rot_3' has 1 NaN/inf"),
    "sh_count": (_binary_ply(1, 1, properties=VERTEX_HEADER + "".join(f"property float f_rest_{i}\n" for i in range(5))),
                 "5 f_rest_\\* properties: expected 0, 9, 24 or 45"),
    "sh_numbering": (_binary_ply(1, 1, properties=VERTEX_HEADER + "".join(
        f"property float f_rest_{i}\n" for i in list(range(8)) + [12])), "not numbered 0..8: f_rest_12"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_file_gives_a_clear_error(tmp_path, case):
    content, expected = MALFORMED[case]
    path = tmp_path / f"{case}.ply"
    path.write_bytes(content)
    for reader in (read_gaussian_ply, read_splat_file):
        with pytest.raises(PlyFormatError, match=expected) as info:
            reader(path)
        assert str(path) in str(info.value) and info.value.path == str(path)


def test_missing_file(tmp_path):
    with pytest.raises(PlyFormatError, match="file not found"):
        read_gaussian_ply(tmp_path / "nope.ply")


def test_nan_in_an_sh_coefficient_is_reported(tmp_path):
    cloud = make_cloud(n=4, sh_degree=1)
    cloud.properties["f_rest_3"][2] = np.inf
    write_gaussian_ply(tmp_path / "c.ply", cloud)
    with pytest.raises(PlyFormatError, match="'f_rest_3' has 1 NaN/inf value.*vertex 2"):
        read_gaussian_ply(tmp_path / "c.ply")


def test_an_error_never_quotes_the_content_of_a_file_that_is_not_a_ply(tmp_path):
    (tmp_path / "secret.ply").write_bytes(b"password=hunter2\nmore secrets\n")
    (tmp_path / "secret.splat").write_bytes(b"pass")
    for reader in (read_gaussian_ply, read_splat_file):
        with pytest.raises(PlyFormatError, match="not a PLY file") as info:
            reader(tmp_path / "secret.ply")
        assert "hunter2" not in str(info.value) and "password" not in str(info.value)


def test_crlf_header_is_accepted(tmp_path):
    content = _ascii_ply([ROW]).replace(b"\n", b"\r\n")
    (tmp_path / "crlf.ply").write_bytes(content)
    assert read_gaussian_ply(tmp_path / "crlf.ply").properties["opacity"][0] == np.float32(0.5)


def test_colour_activation_uses_sh_c0(tmp_path):
    cloud = make_cloud(n=3, sh_degree=0)
    cloud.properties["f_dc_0"][:] = [0.0, 1.0, -10.0]
    np.testing.assert_allclose(cloud.colors[:, 0], [0.5, 0.5 + SH_C0, 0.0], rtol=1e-6)


def test_writing_over_the_file_that_was_read(tmp_path, real_data):
    path = tmp_path / "scene.ply"
    path.write_bytes(real_data(DONUT).read_bytes())
    cloud = read_gaussian_ply(path)
    write_gaussian_ply(path, cloud.subset(np.arange(len(cloud)) < 100))
    assert len(read_gaussian_ply(path)) == 100
    assert [p.name for p in tmp_path.iterdir()] == ["scene.ply"]  # no temporary left behind


def test_writing_a_cloud_without_gaussian_properties_is_refused(tmp_path):
    cloud = make_cloud(n=3, sh_degree=0)
    del cloud.properties["opacity"]
    with pytest.raises(ValueError, match="lacks opacity"):
        write_gaussian_ply(tmp_path / "c.ply", cloud)
    assert not list(tmp_path.iterdir())


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(PlyFormatError, match="is a folder"):
        read_gaussian_ply(tmp_path)
