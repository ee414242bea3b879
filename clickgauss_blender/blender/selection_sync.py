"""One selection: Blender's own vertex selection (`.select_vert`) is the selection, in Edit mode
and for the click alike (`selection.get_selection` reads it, `set_selection` writes it). The
display cannot read Blender's internal attribute (Geometry Nodes hide '.'-names), so it shows a
mirror, `cg_selected`, which this handler brings up to date whenever a splat object's geometry
changes outside Edit mode (leaving Edit mode after selecting there, undo, ...)."""

from __future__ import annotations

import bpy
import numpy as np
from bpy.app.handlers import persistent

from .mesh_io import SELECTED_ATTRIBUTE, is_splat_object, read_attribute, write_attribute
from .selection import get_selection


def sync_display_selection(obj) -> bool:
    """Copy the vertex selection into the displayed `cg_selected` if they differ (Object mode
    only: in Edit mode the mesh data is stale). Returns whether anything changed."""
    if obj.mode == "EDIT":
        return False
    mesh = obj.data
    selected = get_selection(obj)
    shown = read_attribute(mesh, SELECTED_ATTRIBUTE) if SELECTED_ATTRIBUTE in mesh.attributes else None
    if shown is not None and np.array_equal(shown, selected):
        return False
    write_attribute(mesh, SELECTED_ATTRIBUTE, selected, "BOOLEAN")
    mesh.update()
    return True


@persistent
def _after_depsgraph_update(scene, depsgraph):
    changed = set()
    for update in depsgraph.updates:
        if isinstance(update.id, bpy.types.Object) and update.is_updated_geometry:
            changed.add(update.id.original.name)
    for name in changed:
        obj = bpy.data.objects.get(name)
        if is_splat_object(obj):
            sync_display_selection(obj)  # writing it updates the depsgraph once more; then they agree


def register():
    bpy.app.handlers.depsgraph_update_post.append(_after_depsgraph_update)


def unregister():
    if _after_depsgraph_update in bpy.app.handlers.depsgraph_update_post:
        bpy.app.handlers.depsgraph_update_post.remove(_after_depsgraph_update)
