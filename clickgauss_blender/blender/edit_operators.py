"""Editing operators of the ClickGauss panel (thin wrappers around `editing`), one undo step each.

Grow and Segment Everything need the backend's segment ids, fetched once per trained field and
then served from memory. The fetch never runs on the main thread: the operator starts it on the
worker thread and returns at once; when the checked ids arrive, the main-thread timer applies
the edit through CLICKGAUSS_OT_apply_segments (its own undo step)."""

from __future__ import annotations

import bpy
from bpy.props import EnumProperty, StringProperty
from clickgauss_core.protocol import COARSE

from ..client import BackendClient
from . import editing, field_storage
from .mesh_io import is_splat_object
from .preferences_access import LEVEL_ITEMS, client_from_preferences
from .session import STATE, TASKS, clear_error, show_error

SEGMENT_ACTIONS = (("GROW", "Grow", ""), ("SPLIT", "Split", ""))


def segment_ids(client: BackendClient, scene_id: str, level: str):
    """Segment-everything ids (PLY order) of a scene at `level`, fetched once per trained field.
    Blocks on the network when not cached: worker threads, scripts and tests only."""
    cached = STATE.segments.get(scene_id)
    if cached is None:
        cached = STATE.segments[scene_id] = client.segments(scene_id)
    return cached[level]


def fetch_segments_then_apply(client: BackendClient, obj, level: str, action: str) -> None:
    """Fetch the scene's segment ids on the worker thread; the timer then applies `action`."""
    name, scene_id = obj.name, obj.clickgauss.scene_id
    STATE.segment_requests.add(scene_id)
    clear_error(name)

    def done(segments, error):
        STATE.segment_requests.discard(scene_id)
        if error is not None:
            show_error(name, error, "Fetching the segments failed")
            return
        STATE.segments[scene_id] = segments
        # undo=True: called from a timer, the operator still pushes its own undo step.
        bpy.ops.clickgauss.apply_segments("EXEC_DEFAULT", True, object_name=name, level=level, action=action)

    TASKS.submit(lambda: client.segments(scene_id), done)


def apply_stored_segment_action(context, obj, level: str, action: str) -> str:
    """Grow or split `obj` by the segments of the features stored on it (no backend)."""
    editing.ensure_object_mode(obj)  # the attributes are only readable outside Edit mode
    segments = field_storage.segment_ids(obj, level)
    if action == "GROW":
        return f"{editing.grow_to_vertex_segments(obj, segments):,} Gaussians selected"
    return f"Created {len(editing.split_by_vertex_segments(context, obj, segments))} objects"


def apply_segment_action(context, obj, level: str, action: str) -> str:
    """Grow or split `obj` by its cached segment ids; returns what happened (ValueError if the
    ids do not fit the object)."""
    ids = STATE.segments[obj.clickgauss.scene_id][level]
    if action == "GROW":
        return f"{editing.grow_to_segments(obj, ids):,} Gaussians selected"
    return f"Created {len(editing.split_by_segments(context, obj, ids))} objects"


class _SplatEditOperator(bpy.types.Operator):
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return is_splat_object(context.active_object)


class _SegmentOperator(_SplatEditOperator):
    action = "GROW"

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        if not is_splat_object(obj):
            return False
        return field_storage.has_stored_field(obj) or bool(
            obj.clickgauss.scene_id and obj.clickgauss.has_features and obj.clickgauss.scene_id not in STATE.segment_requests)

    def execute(self, context):
        obj = context.active_object
        if field_storage.has_stored_field(obj):  # the stored clusters: no backend needed
            outcome = apply_stored_segment_action(context, obj, self.level, self.action)
            self.report({"INFO"}, outcome)
            return {"FINISHED"}
        if obj.clickgauss.scene_id not in STATE.segments:
            fetch_segments_then_apply(client_from_preferences(context), obj, self.level, self.action)
            self.report({"INFO"}, "ClickGauss: fetching the segments from the backend")
            return {"FINISHED"}
        try:
            outcome = apply_segment_action(context, obj, self.level, self.action)
        except ValueError as exc:
            self.report({"ERROR"}, f"ClickGauss: {exc}")
            return {"CANCELLED"}
        self.report({"INFO"}, outcome)
        return {"FINISHED"}


class CLICKGAUSS_OT_apply_segments(bpy.types.Operator):
    """Apply fetched segment ids to a splat object (Grow to Segments / Segment Everything)"""
    bl_idname = "clickgauss.apply_segments"
    bl_label = "ClickGauss Segments"
    bl_options = {"REGISTER", "UNDO", "INTERNAL"}

    object_name: StringProperty()
    level: EnumProperty(name="Level", items=LEVEL_ITEMS, default=COARSE)
    action: EnumProperty(name="Action", items=SEGMENT_ACTIONS, default="GROW")

    def execute(self, context):
        obj = bpy.data.objects.get(self.object_name)
        if not is_splat_object(obj) or obj.clickgauss.scene_id not in STATE.segments:
            return {"CANCELLED"}  # the object went away while the ids were on their way
        try:
            outcome = apply_segment_action(context, obj, self.level, self.action)
        except ValueError as exc:
            show_error(self.object_name, str(exc))
            return {"CANCELLED"}
        STATE.notices[self.object_name] = outcome
        self.report({"INFO"}, outcome)
        return {"FINISHED"}


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

    level: EnumProperty(name="Level", items=LEVEL_ITEMS, default=COARSE)
    action = "GROW"


class CLICKGAUSS_OT_segment_everything(_SegmentOperator):
    """Split the splat object into one object per segment"""
    bl_idname = "clickgauss.segment_everything"
    bl_label = "Segment Everything"

    level: EnumProperty(name="Level", items=LEVEL_ITEMS, default=COARSE)
    action = "SPLIT"


CLASSES = (CLICKGAUSS_OT_delete_selected, CLICKGAUSS_OT_separate_selected, CLICKGAUSS_OT_hide_selected,
           CLICKGAUSS_OT_isolate_selected, CLICKGAUSS_OT_reveal, CLICKGAUSS_OT_invert_selection,
           CLICKGAUSS_OT_clear_selection, CLICKGAUSS_OT_recolor_selected, CLICKGAUSS_OT_grow_selection,
           CLICKGAUSS_OT_segment_everything, CLICKGAUSS_OT_apply_segments)


register, unregister = bpy.utils.register_classes_factory(CLASSES)
