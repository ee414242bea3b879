"""Niantic SPZ in real Blender: File > Import of a real SPZ written by another tool (spz-js), and
File > Export > 3D Gaussian Splatting (.spz) of what was imported, edited and moved."""

from __future__ import annotations

import gzip
from pathlib import Path

import bpy
import numpy as np
import pytest

from splat_fixtures import make_cloud

REAL_DATA = Path(__file__).resolve().parents[1] / "data" / "real"
FRUIT_SPZ = REAL_DATA / "spzjs-converted" / "fruit_drops_minimal.spz"  # SH 3, 4,721 Gaussians
FRUIT_PLY = REAL_DATA / "supersplat-fruit-labels" / "fruit_drops_minimal.ply"


def _import(path, **options):
    assert bpy.ops.import_scene.clickgauss_splats(filepath=str(path), **options) == {"FINISHED"}
    return bpy.context.active_object


def test_spz_import_and_spz_export_give_back_the_same_gaussians(clean_scene, tmp_path):
    from clickgauss_core.ply import read_gaussian_ply
    from clickgauss_core.spz import read_spz

    theirs = read_spz(FRUIT_SPZ)
    obj = _import(FRUIT_SPZ)  # Z-up: the object turns, the data does not
    assert len(obj.data.vertices) == 4721
    assert "f_rest_44" in obj.data.attributes

    assert bpy.ops.export_scene.clickgauss_spz(filepath=str(tmp_path / "again.spz")) == {"FINISHED"}
    ours = read_spz(tmp_path / "again.spz")
    assert gzip.decompress((tmp_path / "again.spz").read_bytes())[:8] == b"NGSP\x02\x00\x00\x00"
    for attribute in ("positions", "log_scales", "opacity_logits", "sh_dc", "sh_rest"):
        np.testing.assert_array_equal(getattr(ours, attribute), getattr(theirs, attribute), err_msg=attribute)
    assert np.abs(ours.rotations_raw - theirs.rotations_raw).max() <= 1.5 / 127.5  # re-rounded w: one code

    # The same import exported as PLY is the decoded SPZ, bit for bit.
    assert bpy.ops.export_scene.clickgauss_splats(filepath=str(tmp_path / "again.ply")) == {"FINISHED"}
    as_ply = read_gaussian_ply(tmp_path / "again.ply")
    for name, values in theirs.properties.items():
        np.testing.assert_array_equal(as_ply.properties[name], values, err_msg=name)


def test_spz_export_of_an_edited_moved_ply_bakes_the_transform_and_names_what_it_drops(clean_scene, addon_module,
                                                                                     tmp_path):
    from clickgauss_core.ply import read_gaussian_ply, write_gaussian_ply
    from clickgauss_core.spz import read_spz

    io_operators = addon_module("blender.io_operators")
    editing = addon_module("blender.editing")
    selection = addon_module("blender.selection")
    source = tmp_path / "in.ply"
    write_gaussian_ply(source, make_cloud(200, 2, True, True))  # with extra properties
    obj = _import(source, z_up=False)
    doomed = np.zeros(200, dtype=bool)
    doomed[:50] = True
    selection.set_selection(obj, doomed)
    assert editing.delete_selected(obj) == 50
    obj.location = (0.5, -1.0, 2.0)
    obj.rotation_euler = (0.2, 0.4, -0.9)
    bpy.context.view_layer.update()

    warnings = io_operators.export_splats(obj, str(tmp_path / "moved.spz"))
    assert any("SPZ has no place for" in warning and "packed" in warning for warning in warnings)
    io_operators.export_splats(obj, str(tmp_path / "moved.ply"))
    as_spz, as_ply = read_spz(tmp_path / "moved.spz"), read_gaussian_ply(tmp_path / "moved.ply")
    assert len(as_spz) == len(as_ply) == 150 and as_spz.sh_degree == 2
    # The SPZ holds what the PLY export holds (transform baked, SH rotated), quantised.
    np.testing.assert_allclose(as_spz.positions, as_ply.positions, atol=0.5 / 4096 + 1e-5)
    np.testing.assert_allclose(as_spz.log_scales, np.clip(as_ply.log_scales, -10, 255 / 16 - 10), atol=1 / 32 + 1e-5)
    np.testing.assert_allclose(as_spz.opacities, as_ply.opacities, atol=0.5 / 255 + 1e-5)
    np.testing.assert_allclose(as_spz.sh_rest, np.clip(as_ply.sh_rest, -1, 127 / 128), atol=0.5 / 128 + 1e-5)
    alignment = np.abs((as_spz.rotations * as_ply.rotations).sum(axis=1))
    assert np.median(alignment) > 0.9999


def test_spz_import_of_a_bad_file_names_it(clean_scene, addon_module, tmp_path):
    from clickgauss_core.errors import PlyFormatError

    io_operators = addon_module("blender.io_operators")
    bad = tmp_path / "broken.spz"
    bad.write_bytes(FRUIT_SPZ.read_bytes()[:5000])
    with pytest.raises(PlyFormatError) as error:
        io_operators.import_splats(bpy.context, str(bad))
    assert str(bad) in str(error.value) and "truncated" in str(error.value)
    assert len(bpy.data.objects) == 0
