"""One selection: Edit mode's vertex selection and the click's selection are one state, both
ways; the editing operators act on what Edit mode selected; one undo step per click and per edit."""

from __future__ import annotations

import bmesh
import bpy
import numpy as np
import pytest

from splat_fixtures import make_cloud

N = 60


@pytest.fixture
def splats(clean_scene, addon_module, tmp_path):
    from clickgauss_core.ply import write_gaussian_ply

    write_gaussian_ply(tmp_path / "s.ply", make_cloud(N, 1, True, False))
    obj = addon_module("blender.io_operators").import_splats(bpy.context, str(tmp_path / "s.ply"), z_up=False)
    clicked = np.zeros(N, dtype=bool)
    clicked[10:40] = True
    addon_module("blender.selection").apply_mask(obj, clicked)  # the Blender half of a click
    return obj


def _select_in_edit_mode(obj, indices) -> np.ndarray:
    """Enter Edit mode, check it shows the current selection, then select exactly `indices`."""
    bpy.ops.object.mode_set(mode="EDIT")
    mesh = bmesh.from_edit_mesh(obj.data)
    shown = np.array([v.select for v in mesh.verts])
    for vertex in mesh.verts:
        vertex.select_set(vertex.index in indices)
    mesh.select_flush_mode()
    bmesh.update_edit_mesh(obj.data)
    return shown


def _ids(addon_module, obj):
    return addon_module("blender.mesh_io").read_attribute(obj.data, "cg_id")


def test_click_selection_is_edit_mode_selection_and_back(splats, addon_module):
    obj, selection = splats, addon_module("blender.selection")
    shown = _select_in_edit_mode(obj, {1, 2, 3})
    np.testing.assert_array_equal(np.flatnonzero(shown), np.arange(10, 40))  # the click, seen in Edit mode
    bpy.ops.object.mode_set(mode="OBJECT")
    np.testing.assert_array_equal(np.flatnonzero(selection.get_selection(obj)), [1, 2, 3])
    bpy.context.view_layer.update()  # the display's mirror follows (depsgraph handler)
    displayed = addon_module("blender.mesh_io").read_attribute(obj.data, "cg_selected")
    np.testing.assert_array_equal(np.flatnonzero(displayed), [1, 2, 3])


@pytest.mark.parametrize("operator", ["delete_selected", "separate_selected", "recolor_selected"])
def test_edit_operators_act_on_the_edit_mode_selection(splats, addon_module, operator):
    obj = splats
    colours_before = addon_module("blender.mesh_io").read_attribute(obj.data, "f_dc_0")
    _select_in_edit_mode(obj, {0, 5, 50})
    assert getattr(bpy.ops.clickgauss, operator)() == {"FINISHED"}  # straight from Edit mode
    assert obj.mode == "OBJECT"
    if operator == "recolor_selected":
        after = addon_module("blender.mesh_io").read_attribute(obj.data, "f_dc_0")
        np.testing.assert_array_equal(np.flatnonzero(after != colours_before), [0, 5, 50])
        return
    np.testing.assert_array_equal(_ids(addon_module, obj), np.setdiff1d(np.arange(N), [0, 5, 50]))
    if operator == "separate_selected":
        np.testing.assert_array_equal(_ids(addon_module, bpy.data.objects[f"{obj.name}.part"]), [0, 5, 50])


def test_one_undo_step_per_click_and_per_edit(splats, addon_module):
    from importlib import import_module

    obj, selection = splats, addon_module("blender.selection")
    name = obj.name  # undo replaces the Python objects: look them up by name afterwards
    state = import_module("bl_ext.user_default.clickgauss.blender.session").STATE
    bpy.ops.ed.undo_push(message="before the click")
    mask = np.zeros(N, dtype=bool)
    mask[:5] = True
    pending = addon_module("blender.click").PendingClick("NEW", mask=mask, response={"threshold": 0.8, "selected": 5})
    state.pending_clicks[obj.name] = pending
    assert bpy.ops.clickgauss.apply_click("EXEC_DEFAULT", True, object_name=obj.name) == {"FINISHED"}
    # undo=True: as when the user runs it (a script's operator call pushes no undo step otherwise)
    assert bpy.ops.clickgauss.delete_selected("EXEC_DEFAULT", True) == {"FINISHED"}
    assert len(bpy.data.objects[name].data.vertices) == N - 5

    bpy.ops.ed.undo()  # the delete only
    obj = bpy.data.objects[name]
    assert len(obj.data.vertices) == N
    np.testing.assert_array_equal(np.flatnonzero(selection.get_selection(obj)), np.arange(5))
    bpy.ops.ed.undo()  # the click
    obj = bpy.data.objects[name]
    np.testing.assert_array_equal(np.flatnonzero(selection.get_selection(obj)), np.arange(10, 40))
