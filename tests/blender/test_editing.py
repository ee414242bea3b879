"""Editing operators on a splat object without a backend: hide / isolate / reveal / invert /
clear, delete, separate, recolour (through bpy.ops, one undo step each), and what the display
shows afterwards."""

from __future__ import annotations

import bpy
import numpy as np
import pytest

from splat_fixtures import make_cloud


@pytest.fixture
def splats(clean_scene, addon_module, tmp_path):
    from clickgauss_core.ply import write_gaussian_ply

    write_gaussian_ply(tmp_path / "s.ply", make_cloud(100, 1, True, False))
    obj = addon_module("blender.io_operators").import_splats(bpy.context, str(tmp_path / "s.ply"), z_up=False)
    selected = np.zeros(100, dtype=bool)
    selected[20:30] = True
    addon_module("blender.selection").set_selection(obj, selected)
    return obj


def _displayed_points(obj) -> int:
    """Gaussians the display shows: one quad each (Gaussians mode, the default)."""
    obj.data.update()
    return len(obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).data.polygons)


def _vertex_flags(obj, name):
    values = np.empty(len(obj.data.vertices), dtype=bool)
    obj.data.vertices.foreach_get(name, values)
    return values


def test_hide_isolate_reveal_invert_clear(splats, addon_module):
    selection, mesh_io = addon_module("blender.selection"), addon_module("blender.mesh_io")
    obj = splats
    assert bpy.ops.clickgauss.hide_selected() == {"FINISHED"}
    hidden = mesh_io.read_attribute(obj.data, "cg_hidden")
    assert hidden.sum() == 10 and hidden[20:30].all()
    np.testing.assert_array_equal(_vertex_flags(obj, "hide"), hidden)  # Edit mode hides them too
    assert not selection.get_selection(obj).any()  # hidden Gaussians are never selected
    assert _displayed_points(obj) == 90

    assert bpy.ops.clickgauss.invert_selection() == {"FINISHED"}
    np.testing.assert_array_equal(selection.get_selection(obj), ~hidden)  # hidden ones stay unselected
    np.testing.assert_array_equal(_vertex_flags(obj, "select"), ~hidden)

    assert bpy.ops.clickgauss.reveal() == {"FINISHED"}
    assert _displayed_points(obj) == 100
    selection.set_selection(obj, np.arange(100) < 5)
    assert bpy.ops.clickgauss.isolate_selected() == {"FINISHED"}
    assert _displayed_points(obj) == 5
    assert bpy.ops.clickgauss.clear_selection() == {"FINISHED"}
    assert not _vertex_flags(obj, "select").any()


def test_delete_and_separate_operators_keep_ids(splats, addon_module):
    mesh_io, selection = addon_module("blender.mesh_io"), addon_module("blender.selection")
    obj = splats
    assert bpy.ops.clickgauss.separate_selected() == {"FINISHED"}
    part = bpy.data.objects[f"{obj.name}.part"]
    np.testing.assert_array_equal(mesh_io.read_attribute(part.data, "cg_id"), np.arange(20, 30))
    assert part["clickgauss_layout"] == obj["clickgauss_layout"]
    assert _displayed_points(part) == 10
    selection.set_selection(obj, np.arange(90) < 15)
    assert bpy.ops.clickgauss.delete_selected() == {"FINISHED"}
    np.testing.assert_array_equal(mesh_io.read_attribute(obj.data, "cg_id"),
                                  np.concatenate([np.arange(15, 20), np.arange(30, 100)]))
    assert bpy.ops.clickgauss.separate_selected() == {"CANCELLED"}  # nothing selected any more


def test_recolour_operator_writes_sh_dc(splats, addon_module, tmp_path):
    from clickgauss_core.ply import read_gaussian_ply

    mesh_io = addon_module("blender.mesh_io")
    obj = splats
    before = {name: mesh_io.read_attribute(obj.data, name) for name in ("f_dc_0", "f_rest_0", "f_rest_8")}
    settings = bpy.context.scene.clickgauss
    settings.recolor = (1.0, 0.5, 0.0)
    settings.recolor_zero_rest = False
    assert bpy.ops.clickgauss.recolor_selected() == {"FINISHED"}
    io_operators = addon_module("blender.io_operators")
    io_operators.export_splats(obj, str(tmp_path / "r.ply"))
    cloud = read_gaussian_ply(tmp_path / "r.ply")
    np.testing.assert_allclose(cloud.colors[20:30], np.tile([1.0, 0.5, 0.0], (10, 1)), atol=1e-6)
    np.testing.assert_array_equal(cloud.properties["f_dc_0"][:20], before["f_dc_0"][:20])
    np.testing.assert_array_equal(cloud.properties["f_rest_0"], before["f_rest_0"])  # view-dependent colour kept
    rgba = mesh_io.read_attribute(obj.data, "cg_color")
    np.testing.assert_allclose(rgba[20:30, :3], np.tile([1.0, 0.214041, 0.0], (10, 1)), atol=1e-5)  # linear


def test_mirrored_object_export_warns(splats, addon_module, tmp_path):
    obj = splats
    obj.scale = (-1.0, 1.0, 1.0)
    bpy.context.view_layer.update()
    warnings = addon_module("blender.io_operators").export_splats(obj, str(tmp_path / "m.ply"))
    assert any("mirrored" in w for w in warnings)
