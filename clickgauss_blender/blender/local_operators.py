"""What makes the add-on work without a backend once features are trained: fetching the trained
field onto the object (worker thread + timer hand-back, like every network call), and the
.blend's paths kept relative to it. (The click from the stored field is click.py.)"""

from __future__ import annotations

import os

import bpy
from bpy.app.handlers import persistent
from clickgauss_core.stored_field import read_field_archive

from ..client import BackendClient
from .field_storage import forget_edited, reset_cache, store_field, stored_field_bytes
from .mesh_io import SOURCE_KEY, is_splat_object
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
        from .preferences_access import client_from_preferences

        fetch_field(client_from_preferences(context), context.active_object)
        return {"FINISHED"}


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
    flags are stale (the stored field is what clicks use)."""
    reset_cache()
    for obj in bpy.data.objects:
        if is_splat_object(obj):
            obj.clickgauss.has_features = False


@persistent
def _edited(scene, depsgraph) -> None:
    forget_edited(scene, depsgraph)


CLASSES = (CLICKGAUSS_OT_fetch_field,)
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
