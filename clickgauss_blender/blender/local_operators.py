"""The add-on's half that needs no backend once features are trained: fetching the trained field
onto the object (worker thread + timer hand-back, like every network call), the Shift+click
computed inside Blender from the stored field, the live threshold, and the .blend's paths.

Live threshold: a click keeps every Gaussian's similarity; moving the Threshold slider
re-thresholds that last click (no new render) and Blender makes the slider's release one undo
step. The slider always shows the threshold the last click used (the click's own adaptive one
unless Custom Threshold is on)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import bpy
import numpy as np
from bpy.app.handlers import persistent
from bpy.props import StringProperty
from clickgauss_core.cameras import Camera
from clickgauss_core.stored_field import read_field_archive

from ..client import BackendClient
from .field_storage import field_record, forget_edited, local_click, reset_cache, store_field, stored_field_bytes
from .mesh_io import SOURCE_KEY, is_splat_object
from .selection import ClickResult, combine, ensure_object_mode, get_selection, set_selection
from .session import STATE, TASKS


# -- the field onto the object ---------------------------------------------------------------
def download_field(client: BackendClient, scene_id: str):
    """(features, record) of the scene's trained field (blocks on the network: worker threads)."""
    data = client.download_field(scene_id)
    features, record = read_field_archive(data, f"the feature field of backend scene {scene_id[:12]}")
    record.trained_from.setdefault("scene_id", scene_id)
    return features, record


def stored_notice(obj) -> str:
    return (f"Features stored in the .blend ({stored_field_bytes(obj) / 1e6:.1f} MB): "
            "clicks, Grow and Segment Everything need no backend")


def fetch_field(client: BackendClient, obj) -> None:
    """Download the object's trained field on the worker thread; the timer stores it on the object."""
    name, scene_id = obj.name, obj.clickgauss.scene_id
    STATE.errors.pop(name, None)
    STATE.notices[name] = "Downloading the features…"

    def done(result, error):
        obj_now = bpy.data.objects.get(name)
        if error is not None:
            STATE.notices.pop(name, None)
            STATE.errors[name] = f"downloading the features failed: {error}"
            return
        if obj_now is None:
            return
        try:
            store_field(obj_now, *result)
        except ValueError as exc:
            STATE.notices.pop(name, None)
            STATE.errors[name] = str(exc)
            return
        STATE.notices[name] = stored_notice(obj_now)

    TASKS.submit(lambda: download_field(client, scene_id), done)


class CLICKGAUSS_OT_fetch_field(bpy.types.Operator):
    """Store the backend's trained features in the .blend (on the object), so that clicks need no backend"""
    bl_idname = "clickgauss.fetch_field"
    bl_label = "Store Features in .blend"

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        return is_splat_object(obj) and obj.clickgauss.scene_id and obj.clickgauss.has_features

    def execute(self, context):
        from .preferences import client_from_preferences

        fetch_field(client_from_preferences(context), context.active_object)
        return {"FINISHED"}


# -- the click from the stored field -------------------------------------------------------
@dataclass
class LastClick:
    similarity: np.ndarray   # per vertex
    before: np.ndarray       # the selection the click was combined with
    mode: str
    level: str


LAST_CLICKS: dict[str, LastClick] = {}
_PENDING: dict[str, tuple] = {}  # object name -> (camera, pixel, level, threshold, mode)
_showing_threshold = False  # set while the add-on itself writes the slider (no re-threshold then)


def click_locally(obj, camera: Camera, pixel_xy, level: str, threshold: float | None, mode: str) -> ClickResult:
    """Compute the click from the stored field and apply it, both in the undoable operator
    (which leaves Edit mode first: the attributes are only readable outside it)."""
    name = obj.name
    STATE.errors.pop(name, None)
    _PENDING[name] = (camera, pixel_xy, level, threshold, mode)
    # undo=True: even when called from another operator, this one pushes its own undo step.
    bpy.ops.clickgauss.apply_local_click("EXEC_DEFAULT", True, object_name=name)
    if name in STATE.errors:
        raise ValueError(STATE.errors[name])
    return STATE.clicks[name]


class CLICKGAUSS_OT_apply_local_click(bpy.types.Operator):
    """Apply a click computed from the stored features to the object's selection"""
    bl_idname = "clickgauss.apply_local_click"
    bl_label = "ClickGauss Click"
    bl_options = {"REGISTER", "UNDO", "INTERNAL"}

    object_name: StringProperty()

    def execute(self, context):
        obj = bpy.data.objects.get(self.object_name)
        pending = _PENDING.pop(self.object_name, None)
        if obj is None or pending is None:
            return {"CANCELLED"}
        camera, pixel_xy, level, threshold, mode = pending
        if obj.mode == "EDIT":
            with context.temp_override(active_object=obj, object=obj):
                ensure_object_mode(obj)
        try:
            click = local_click(obj, camera, pixel_xy, level, threshold)
        except ValueError as exc:
            STATE.errors[self.object_name] = str(exc)
            return {"CANCELLED"}
        before = get_selection(obj)
        count = set_selection(obj, combine(before, click.selected, mode))
        LAST_CLICKS[self.object_name] = LastClick(click.similarity, before, mode, click.level)
        result = ClickResult(int(click.selected.sum()), count, click.threshold)
        STATE.clicks[self.object_name] = result
        show_threshold(context.scene, click.threshold)
        self.report({"INFO"}, f"{count:,} Gaussians selected (threshold {click.threshold:.2f})")
        return {"FINISHED"}


# -- the live threshold --------------------------------------------------------------------
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


def calibrated_threshold_shown(settings, context) -> None:
    """Level or Custom Threshold changed: without a custom one, show the calibrated one of the level."""
    record = field_record(context.active_object) if is_splat_object(context.active_object) else None
    if not settings.use_threshold and record is not None:
        show_threshold(context.scene, record.thresholds[settings.level])


# -- paths relative to the .blend ------------------------------------------------------------
def source_path(obj) -> str:
    """The absolute path of the file the object was imported from ('' if unknown)."""
    path = obj.get(SOURCE_KEY) or ""
    return bpy.path.abspath(path) if path else ""


def _saved_folder(filepath) -> str:
    # Save handlers get the file's path as their first argument (Blender 4.2+); else the current one.
    return os.path.dirname(filepath if isinstance(filepath, str) and filepath else bpy.data.filepath)


PATH_SETTINGS = ("dataset_path", "masks_path")  # the object's folders, read through bpy.path.abspath


def _relative(path: str, folder: str) -> str:
    absolute = bpy.path.abspath(path)
    try:
        return bpy.path.relpath(absolute, start=folder)
    except ValueError:  # another drive (Windows): stays absolute
        return absolute


@persistent
def _paths_relative_to_blend(filepath=None, *_args) -> None:
    """Before a save: the splat objects' source file, dataset and mask folders become relative to
    the saved .blend where possible (`//...`), so that moving the folder keeps retraining working."""
    folder = _saved_folder(filepath)
    if not folder:
        return
    for obj in bpy.data.objects:
        if not is_splat_object(obj):
            continue
        if obj.get(SOURCE_KEY):
            obj[SOURCE_KEY] = _relative(obj[SOURCE_KEY], folder)
        for setting in PATH_SETTINGS:
            if getattr(obj.clickgauss, setting):
                setattr(obj.clickgauss, setting, _relative(getattr(obj.clickgauss, setting), folder))


@persistent
def _paths_absolute_again(filepath=None, *_args) -> None:
    """After a save: back to absolute paths in this session (a "Save Copy" elsewhere leaves the
    session's own .blend where it was, and its relative paths would point wrong)."""
    folder = _saved_folder(filepath)

    def absolute(path):
        return os.path.normpath(bpy.path.abspath(path, start=folder)) if str(path).startswith("//") else path

    for obj in bpy.data.objects:
        if not is_splat_object(obj):
            continue
        if obj.get(SOURCE_KEY):
            obj[SOURCE_KEY] = absolute(obj[SOURCE_KEY])
        for setting in PATH_SETTINGS:
            setattr(obj.clickgauss, setting, absolute(getattr(obj.clickgauss, setting)))


@persistent
def _after_load(_filepath, *_args) -> None:
    """A reopened .blend knows nothing of any backend yet: its objects' "trained on the backend"
    flags are stale (the stored field is what clicks use); the last clicks were another file's."""
    LAST_CLICKS.clear()
    _PENDING.clear()
    reset_cache()
    for obj in bpy.data.objects:
        if is_splat_object(obj):
            obj.clickgauss.has_features = False


@persistent
def _edited(scene, depsgraph) -> None:
    forget_edited(scene, depsgraph)


CLASSES = (CLICKGAUSS_OT_fetch_field, CLICKGAUSS_OT_apply_local_click)
_HANDLERS = ((bpy.app.handlers.save_pre, _paths_relative_to_blend), (bpy.app.handlers.save_post, _paths_absolute_again),
             (bpy.app.handlers.load_post, _after_load), (bpy.app.handlers.depsgraph_update_post, _edited))


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    for handlers, handler in _HANDLERS:
        handlers.append(handler)


def unregister():
    for handlers, handler in _HANDLERS:
        if handler in handlers:
            handlers.remove(handler)
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
