"""The Shift+click, in one place from the viewport to the selection:

1. the viewport (region, region_3d, mouse) -> a camera in the object's local (PLY) frame and a
   pixel (`viewport_click`);
2. the Gaussians it hits: computed here from the field stored on the object (no backend), else
   asked of the backend on the worker thread (`query_click`);
3. the hit combined with the selection (new / add / subtract) in ONE undoable operator,
   CLICKGAUSS_OT_apply_click, for both sources (`apply_pending_click`);
4. the live threshold: a click from the stored field keeps every Gaussian's similarity, so
   moving the Threshold slider re-thresholds that last click (no new render) and Blender makes
   the slider's release one undo step. The slider always shows the threshold the last click used
   (the click's own adaptive one unless Custom Threshold is on).
"""

from __future__ import annotations

from dataclasses import dataclass

import bpy
import numpy as np
from bpy.app.handlers import persistent
from bpy.props import EnumProperty, StringProperty
from clickgauss_core import blender_view, wire
from clickgauss_core.cameras import Camera
from clickgauss_core.protocol import COARSE

from ..client import BackendClient
from ..messages import describe
from .backend_tasks import active_splat
from .field_storage import has_stored_field, local_click
from .mesh_io import is_splat_object
from .preferences_access import client_from_preferences
from .selection import combine, ensure_object_mode, get_selection, per_vertex, set_selection
from .session import STATE, TASKS, clear_error, show_error

CLICK_FAILED = "Click failed"


@dataclass
class ClickResult:
    selected_in_scene: int   # Gaussians of the whole file the click hit
    selected_now: int        # vertices selected on the object after combining with the mode
    threshold: float


@dataclass
class PendingClick:
    """A click waiting for CLICKGAUSS_OT_apply_click: from the stored field (camera, pixel) or the
    backend's answer (mask over the file's Gaussians, response)."""
    mode: str
    level: str = COARSE
    threshold: float | None = None
    camera: Camera | None = None
    pixel_xy: tuple | None = None
    mask: np.ndarray | None = None
    response: dict | None = None


@dataclass
class LastClick:
    similarity: np.ndarray   # per vertex
    before: np.ndarray       # the selection the click was combined with
    mode: str
    level: str


LAST_CLICKS: dict[str, LastClick] = {}
# (object name, level) -> the threshold the last automatic click at that level chose for itself.
AUTO_THRESHOLDS: dict[tuple[str, str], float] = {}
_showing_threshold = False  # set while the add-on itself writes the slider (no re-threshold then)


# -- 1. the viewport ----------------------------------------------------------------------------
def viewport_camera(region, region_3d, obj) -> Camera:
    """The 3D viewport as a Camera in the object's local frame."""
    return blender_view.camera_from_blender_view(np.array(region_3d.view_matrix), np.array(region_3d.window_matrix),
                                         region.width, region.height, np.array(obj.matrix_world))


def viewport_click(region, region_3d, obj, mouse_x: float, mouse_y: float) -> tuple[Camera, tuple]:
    """(camera, pixel) of a mouse position in a 3D viewport region."""
    return viewport_camera(region, region_3d, obj), blender_view.blender_region_to_pixel(mouse_x, mouse_y, region.height)


# -- 2. what the click hits -----------------------------------------------------------------------
def query_click(client: BackendClient, scene_id: str, camera: Camera, pixel_xy, level: str = COARSE,
                threshold: float | None = None) -> tuple[np.ndarray, dict]:
    """The backend's half of a click (no bpy: runs on a worker thread): its selection over the
    file's Gaussians, decoded, and its response."""
    response = client.click(scene_id, wire.camera_to_dict(camera), pixel_xy, level, threshold)
    return wire.decode_mask(response["mask"]), response


def click_locally(obj, camera: Camera, pixel_xy, level: str, threshold: float | None, mode: str) -> ClickResult:
    """The click computed from the stored field and applied at once (one undo step). Raises ValueError."""
    name = obj.name
    clear_error(name)
    STATE.pending_clicks[name] = PendingClick(mode, level, threshold, camera=camera, pixel_xy=pixel_xy)
    _apply_as_undo_step(name)
    if name in STATE.errors:
        raise ValueError(STATE.errors[name])
    return STATE.clicks[name]


def start_click(client: BackendClient, obj, camera: Camera, pixel_xy, level: str, threshold: float | None,
                mode: str) -> None:
    """The click asked of the backend: the query runs on the worker thread, its answer is applied
    on the main thread. The outcome lands in STATE.clicks[object name] (or STATE.errors)."""
    name, scene_id = obj.name, obj.clickgauss.scene_id

    def done(result, error):
        if error is not None:
            show_error(name, error, CLICK_FAILED)
            return
        mask, response = result
        STATE.pending_clicks[name] = PendingClick(mode, level, threshold, mask=mask, response=response)
        _apply_as_undo_step(name)

    clear_error(name)
    TASKS.submit(lambda: query_click(client, scene_id, camera, pixel_xy, level, threshold), done)


def click_select(client: BackendClient, obj, scene_id: str, camera: Camera, pixel_xy, level: str = COARSE,
                 threshold: float | None = None, mode: str = "NEW") -> ClickResult:
    """A backend click in one blocking call (scripts, tests). Raises BackendError / WireFormatError / ValueError."""
    mask, response = query_click(client, scene_id, camera, pixel_xy, level, threshold)
    return apply_pending_click(obj, PendingClick(mode, level, threshold, mask=mask, response=response))


def click_from_viewport(context, obj, region, region_3d, mouse_x: float, mouse_y: float, mode: str) -> None:
    """A click at the mouse in the viewport with the panel's level and threshold: from the stored
    field when the object has one, else asked of the backend. Raises ValueError (a failed click
    from the stored field is already in the panel and the status bar then)."""
    clear_error(obj.name)
    scene_settings = context.scene.clickgauss
    camera, pixel = viewport_click(region, region_3d, obj, mouse_x, mouse_y)
    threshold = scene_settings.threshold if scene_settings.use_threshold else None
    if has_stored_field(obj):
        click_locally(obj, camera, pixel, scene_settings.level, threshold, mode)
    else:
        start_click(client_from_preferences(context), obj, camera, pixel, scene_settings.level, threshold, mode)


def can_click(obj) -> bool:
    """Features to click with: stored on the object, or trained on the backend's scene."""
    return has_stored_field(obj) or bool(obj.clickgauss.scene_id and obj.clickgauss.has_features)


# -- 3. onto the selection ------------------------------------------------------------------------
def apply_pending_click(obj, pending: PendingClick) -> ClickResult:
    """Combine what the click hits with the object's selection (main thread, Object mode).
    A click from the stored field is remembered for the live threshold."""
    ensure_object_mode(obj)
    if pending.mask is not None:
        hit = per_vertex(obj, np.asarray(pending.mask, dtype=bool))
        in_scene = int(pending.response.get("selected", pending.mask.sum()))
        threshold, similarity = float(pending.response["threshold"]), None
    else:
        computed = local_click(obj, pending.camera, pending.pixel_xy, pending.level, pending.threshold)
        hit, in_scene = computed.selected, int(computed.selected.sum())
        threshold, similarity = computed.threshold, computed.similarity
    before = get_selection(obj)
    result = ClickResult(in_scene, set_selection(obj, combine(before, hit, pending.mode)), threshold)
    if similarity is not None:
        LAST_CLICKS[obj.name] = LastClick(similarity, before, pending.mode, pending.level)
    if pending.threshold is None:
        AUTO_THRESHOLDS[obj.name, pending.level] = threshold
    STATE.clicks[obj.name] = result
    return result


def _apply_as_undo_step(object_name: str) -> None:
    # undo=True: called from a timer or another operator, this one still pushes its own undo step.
    bpy.ops.clickgauss.apply_click("EXEC_DEFAULT", True, object_name=object_name)


@persistent
def _forget_clicks(_filepath=None, *_args) -> None:
    """Another .blend was opened: the last clicks were another file's."""
    STATE.pending_clicks.clear()
    LAST_CLICKS.clear()
    AUTO_THRESHOLDS.clear()


# -- 4. the live threshold ------------------------------------------------------------------------
def show_threshold(scene, value: float) -> None:
    """Put the threshold a click used on the slider (without re-thresholding)."""
    global _showing_threshold
    _showing_threshold = True
    try:
        scene.clickgauss.threshold = float(value)
    finally:
        _showing_threshold = False


def rethreshold(obj, threshold: float) -> int | None:
    """Re-threshold the object's last click at `threshold`; the new count, or None without one."""
    last = LAST_CLICKS.get(obj.name)
    if last is None or len(last.similarity) != len(obj.data.vertices):
        return None
    ensure_object_mode(obj)
    count = set_selection(obj, combine(last.before, last.similarity >= threshold, last.mode))
    STATE.clicks[obj.name] = ClickResult(int((last.similarity >= threshold).sum()), count, float(threshold))
    return count


def threshold_changed(settings, context) -> None:
    """The slider moved (the user): it is now the threshold in use, and the last click follows it."""
    if _showing_threshold:
        return
    if not settings.use_threshold:
        settings.use_threshold = True
    obj = context.active_object
    if is_splat_object(obj):
        rethreshold(obj, settings.threshold)


def auto_threshold_shown(settings, context) -> None:
    """Level or Custom Threshold changed: without a custom one, show the threshold the last click at
    that level chose for itself (a click without one yet chooses its own when it comes)."""
    obj = context.active_object
    chosen = AUTO_THRESHOLDS.get((obj.name, settings.level)) if is_splat_object(obj) else None
    if not settings.use_threshold and chosen is not None:
        show_threshold(context.scene, chosen)


# -- the operators ----------------------------------------------------------------------------------
class CLICKGAUSS_OT_apply_click(bpy.types.Operator):
    """Apply a ClickGauss click to the object's selection"""
    bl_idname = "clickgauss.apply_click"
    bl_label = "ClickGauss Click"
    bl_options = {"REGISTER", "UNDO", "INTERNAL"}

    object_name: StringProperty()

    def execute(self, context):
        obj = bpy.data.objects.get(self.object_name)
        pending = STATE.pending_clicks.pop(self.object_name, None)
        if obj is None or pending is None:
            return {"CANCELLED"}
        if obj.mode == "EDIT":  # the attributes are only current outside Edit mode
            with context.temp_override(active_object=obj, object=obj):
                ensure_object_mode(obj)
        try:
            result = apply_pending_click(obj, pending)
        except ValueError as exc:
            show_error(self.object_name, exc, CLICK_FAILED)
            return {"CANCELLED"}
        show_threshold(context.scene, result.threshold)
        self.report({"INFO"}, f"{result.selected_now:,} Gaussians selected "
                              f"({result.selected_in_scene:,} hit, threshold {result.threshold:.2f})")
        return {"FINISHED"}


class CLICKGAUSS_OT_click_select(bpy.types.Operator):
    """Select the object under the mouse in the active splat object (Click-Gaussian)"""
    bl_idname = "clickgauss.click_select"
    bl_label = "Click Select Gaussians"
    # No UNDO here: nothing changes until the answer arrives; CLICKGAUSS_OT_apply_click is the
    # click's single undo step.
    bl_options = {"REGISTER"}

    mode: EnumProperty(name="Mode", default="SCENE", items=(
        ("SCENE", "From Panel", "Use the click mode of the ClickGauss panel"),
        ("NEW", "New", ""), ("ADD", "Add", ""), ("SUBTRACT", "Subtract", "")))

    def invoke(self, context, event):
        obj, region, region_3d = active_splat(context), context.region, context.region_data
        if (obj is None or context.area is None or context.area.type != "VIEW_3D" or region is None
                or region.type != "WINDOW" or region_3d is None):
            return {"PASS_THROUGH"}  # not ours: Blender's own Shift+click selection happens
        if not can_click(obj):
            self.report({"INFO"}, "ClickGauss: train features (or open the scene on the backend) before clicking")
            return {"PASS_THROUGH"}
        mode = context.scene.clickgauss.click_mode if self.mode == "SCENE" else self.mode
        try:
            click_from_viewport(context, obj, region, region_3d, event.mouse_region_x, event.mouse_region_y, mode)
        except ValueError as exc:
            if obj.name not in STATE.errors:  # else shown already, in the panel and the status bar
                self.report({"ERROR"}, describe(exc))
            return {"CANCELLED"}
        return {"FINISHED"}


CLASSES = (CLICKGAUSS_OT_apply_click, CLICKGAUSS_OT_click_select)
_keymap_items: list = []


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    keyconfig = bpy.context.window_manager.keyconfigs.addon
    if keyconfig is not None:  # None in background mode without a window manager
        keymap = keyconfig.keymaps.new(name="3D View", space_type="VIEW_3D")
        item = keymap.keymap_items.new(CLICKGAUSS_OT_click_select.bl_idname, "LEFTMOUSE", "CLICK", shift=True)
        _keymap_items.append((keymap, item))
    bpy.app.handlers.load_post.append(_forget_clicks)


def unregister():
    if _forget_clicks in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.remove(_forget_clicks)
    for keymap, item in _keymap_items:
        keymap.keymap_items.remove(item)
    _keymap_items.clear()
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
