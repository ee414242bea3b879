"""Editing operators of the ClickGauss panel (thin wrappers around `editing`), one undo step each.

Grow and Segment Everything need the backend's segment ids: fetched once per trained field (one
GET, 2 s connect timeout) inside the operator so the edit stays a single undoable step, then
served from memory."""

from __future__ import annotations

import bpy
from bpy.props import EnumProperty
from clickgauss_core import wire

from ..client import BackendClient, BackendError
from . import editing
from .mesh_io import is_splat_object
from .preferences import client_from_preferences
from .session import STATE

LEVEL_ITEMS = (("coarse", "Coarse", "Whole objects"), ("fine", "Fine", "Parts of objects"))


def segment_ids(client: BackendClient, scene_id: str, level: str):
    """Segment-everything ids (PLY order) of a scene at `level`, fetched once per trained field."""
    cached = STATE.segments.get(scene_id)
    if cached is None:
        response = client.segments(scene_id)
        cached = {name: wire.decode_array(response[name]) for name in ("coarse", "fine")}
        STATE.segments[scene_id] = cached
    return cached[level]


class _SplatEditOperator(bpy.types.Operator):
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return is_splat_object(context.active_object)


class _SegmentOperator(_SplatEditOperator):
    @classmethod
    def poll(cls, context):
        obj = context.active_object
        return is_splat_object(obj) and obj.clickgauss.scene_id and obj.clickgauss.has_features

    def segments(self, context, level):
        obj = context.active_object
        try:
            return segment_ids(client_from_preferences(context), obj.clickgauss.scene_id, level)
        except BackendError as exc:
            self.report({"ERROR"}, f"ClickGauss: {exc}")
            return None


class CLICKGAUSS_OT_delete_selected(_SplatEditOperator):
    """Delete the selected Gaussians"""
    bl_idname = "clickgauss.delete_selected"
    bl_label = "Delete Selected"

    def execute(self, context):
        removed = editing.delete_selected(context.active_object)
        self.report({"INFO"}, f"Deleted {removed:,} Gaussians")
        return {"FINISHED"}


class CLICKGAUSS_OT_separate_selected(_SplatEditOperator):
    """Move the selected Gaussians into a new object"""
    bl_idname = "clickgauss.separate_selected"
    bl_label = "Separate Selected"

    def execute(self, context):
        part = editing.separate_selected(context, context.active_object)
        if part is None:
            self.report({"WARNING"}, "Nothing selected")
            return {"CANCELLED"}
        return {"FINISHED"}


class CLICKGAUSS_OT_hide_selected(_SplatEditOperator):
    """Hide the selected Gaussians"""
    bl_idname = "clickgauss.hide_selected"
    bl_label = "Hide Selected"

    def execute(self, context):
        editing.hide_selected(context.active_object)
        return {"FINISHED"}


class CLICKGAUSS_OT_isolate_selected(_SplatEditOperator):
    """Hide every Gaussian that is not selected"""
    bl_idname = "clickgauss.isolate_selected"
    bl_label = "Isolate Selected"

    def execute(self, context):
        editing.isolate_selected(context.active_object)
        return {"FINISHED"}


class CLICKGAUSS_OT_reveal(_SplatEditOperator):
    """Show all hidden Gaussians again"""
    bl_idname = "clickgauss.reveal"
    bl_label = "Reveal All"

    def execute(self, context):
        editing.reveal_all(context.active_object)
        return {"FINISHED"}


class CLICKGAUSS_OT_invert_selection(_SplatEditOperator):
    """Select the visible Gaussians that are not selected, and deselect the others"""
    bl_idname = "clickgauss.invert_selection"
    bl_label = "Invert Selection"

    def execute(self, context):
        editing.invert_selection(context.active_object)
        return {"FINISHED"}


class CLICKGAUSS_OT_clear_selection(_SplatEditOperator):
    """Deselect all Gaussians"""
    bl_idname = "clickgauss.clear_selection"
    bl_label = "Clear Selection"

    def execute(self, context):
        editing.clear_selection(context.active_object)
        return {"FINISHED"}


class CLICKGAUSS_OT_recolor_selected(_SplatEditOperator):
    """Give the selected Gaussians the panel's colour (written to f_dc on export)"""
    bl_idname = "clickgauss.recolor_selected"
    bl_label = "Recolour Selected"

    def execute(self, context):
        settings = context.scene.clickgauss
        count = editing.recolor_selected(context.active_object, tuple(settings.recolor), settings.recolor_zero_rest)
        self.report({"INFO"}, f"Recoloured {count:,} Gaussians")
        return {"FINISHED"}


class CLICKGAUSS_OT_grow_selection(_SegmentOperator):
    """Grow the selection to the whole segments it touches (a fine part grows to its object)"""
    bl_idname = "clickgauss.grow_selection"
    bl_label = "Grow to Segments"

    level: EnumProperty(name="Level", items=LEVEL_ITEMS, default="coarse")

    def execute(self, context):
        ids = self.segments(context, self.level)
        if ids is None:
            return {"CANCELLED"}
        count = editing.grow_to_segments(context.active_object, ids)
        self.report({"INFO"}, f"{count:,} Gaussians selected")
        return {"FINISHED"}


class CLICKGAUSS_OT_segment_everything(_SegmentOperator):
    """Split the splat object into one object per segment"""
    bl_idname = "clickgauss.segment_everything"
    bl_label = "Segment Everything"

    level: EnumProperty(name="Level", items=LEVEL_ITEMS, default="coarse")

    def execute(self, context):
        ids = self.segments(context, self.level)
        if ids is None:
            return {"CANCELLED"}
        created = editing.split_by_segments(context, context.active_object, ids)
        self.report({"INFO"}, f"Created {len(created)} objects")
        return {"FINISHED"}


CLASSES = (CLICKGAUSS_OT_delete_selected, CLICKGAUSS_OT_separate_selected, CLICKGAUSS_OT_hide_selected,
           CLICKGAUSS_OT_isolate_selected, CLICKGAUSS_OT_reveal, CLICKGAUSS_OT_invert_selection,
           CLICKGAUSS_OT_clear_selection, CLICKGAUSS_OT_recolor_selected, CLICKGAUSS_OT_grow_selection,
           CLICKGAUSS_OT_segment_everything)


register, unregister = bpy.utils.register_classes_factory(CLASSES)
