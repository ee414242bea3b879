"""Operators that talk to the backend: status, start/stop a local backend, Train Features
(open the scene, start the job, follow its progress), cancel / resume, feature files, and the
Shift+click selection.

Every network call runs on a worker thread (session.TASKS); results come back on the main thread
through a bpy.app.timers callback, so the UI never waits for the backend."""

from __future__ import annotations

import os
import time

import bpy
from bpy.props import EnumProperty, StringProperty
from bpy_extras.io_utils import ExportHelper, ImportHelper
from clickgauss_core import wire
from clickgauss_core.files import atomic_write

from ..client import BackendClient, BackendError
from ..local_backend import port_of, start_local_backend, stop_local_backend, wait_until_ready
from .mesh_io import SOURCE_KEY, is_splat_object
from .preferences import ADDON_PACKAGE, client_from_preferences, preferences
from .selection import apply_click, query_click, viewport_camera
from .session import FINAL_JOB_STATES, JOB_POLL_INTERVAL, STATE, TASKS, stop_timer

# Answers to POST /v1/scenes meaning "the server cannot read that path": send the file instead.
UPLOAD_INSTEAD = ("file_not_found", "outside_data_root")
RESUMABLE_JOB_STATES = ("cancelled", "failed", "interrupted")


def _active_splat(context):
    obj = context.active_object
    return obj if is_splat_object(obj) else None


# -- backend status ---------------------------------------------------------------------------
def check_backend(client: BackendClient) -> None:
    STATE.backend.state, STATE.backend.message = "checking", ""

    def done(health, error):
        if error is None:
            STATE.backend.state, STATE.backend.health, STATE.backend.message = "connected", health, ""
        else:
            STATE.backend.state, STATE.backend.health, STATE.backend.message = "unreachable", {}, str(error)

    TASKS.submit(client.health, done)


class CLICKGAUSS_OT_check_backend(bpy.types.Operator):
    """Ask the backend whether it is up and which device it uses"""
    bl_idname = "clickgauss.check_backend"
    bl_label = "Check Backend"

    def execute(self, context):
        try:
            check_backend(client_from_preferences(context))
        except ValueError as exc:  # malformed URL in the preferences
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return {"FINISHED"}


class CLICKGAUSS_OT_start_backend(bpy.types.Operator):
    """Start a backend on this machine with the Python interpreter set in the preferences"""
    bl_idname = "clickgauss.start_backend"
    bl_label = "Start Local Backend"

    def execute(self, context):
        prefs = preferences(context)
        if STATE.local_process is not None and STATE.local_process.poll() is None:
            self.report({"INFO"}, "The local backend is already running")
            return {"CANCELLED"}
        folder = bpy.utils.extension_path_user(ADDON_PACKAGE, path="", create=True)
        log_path = os.path.join(folder, "backend.log")
        roots = [bpy.path.abspath(prefs.local_data_root)] if prefs.local_data_root else []
        try:
            client = client_from_preferences(context)
            process = start_local_backend(prefs.backend_python, port_of(prefs.backend_url), log_path,
                                          cache_dir=os.path.join(folder, "cache"), data_roots=roots,
                                          token=prefs.token or None)
        except (FileNotFoundError, ValueError, OSError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        STATE.local_process, STATE.local_log = process, log_path
        STATE.backend.state, STATE.backend.message = "starting", f"log: {log_path}"

        def done(health, error):
            if error is None:
                STATE.backend.state, STATE.backend.health, STATE.backend.message = "connected", health, ""
            else:
                STATE.backend.state, STATE.backend.message = "unreachable", str(error).splitlines()[0]

        TASKS.submit(lambda: wait_until_ready(client, process, log_path=log_path), done)
        return {"FINISHED"}


class CLICKGAUSS_OT_stop_backend(bpy.types.Operator):
    """Stop the backend this Blender session started"""
    bl_idname = "clickgauss.stop_backend"
    bl_label = "Stop Local Backend"

    @classmethod
    def poll(cls, context):
        return STATE.local_process is not None and STATE.local_process.poll() is None

    def execute(self, context):
        stop_local_backend(STATE.local_process)
        STATE.local_process = None
        STATE.backend.state, STATE.backend.health, STATE.backend.message = "unknown", {}, ""
        return {"FINISHED"}


# -- scenes and training ----------------------------------------------------------------------
def open_scene(client: BackendClient, ply_path: str, dataset_path: str | None) -> dict:
    """The backend scene of a PLY: by path when the server can read it, else uploaded."""
    try:
        return client.open_scene(ply_path, dataset_path)
    except BackendError as exc:
        if exc.code not in UPLOAD_INSTEAD:
            raise
    return client.upload_scene(ply_path, dataset_path)


def training_request(obj, context=None) -> dict:
    """masks / preset / views of the object's settings as the POST /v1/jobs fields."""
    settings = obj.clickgauss
    if settings.masks_source == "SAM":
        masks = {"source": "sam"}
    else:
        if not settings.masks_path:
            raise ValueError("choose the mask folder (or switch the mask source to SAM)")
        masks = {"source": "folder", "path": bpy.path.abspath(settings.masks_path)}
    from .views import views_request

    return {"masks": masks, "preset": None if settings.preset == "AUTO" else settings.preset,
            "views": views_request(context or bpy.context, obj)}


def record_scene(obj, scene: dict) -> None:
    settings = obj.clickgauss
    if settings.scene_id != scene["scene_id"]:
        STATE.segments.pop(settings.scene_id, None)
    settings.scene_id = scene["scene_id"]
    settings.has_features = bool(scene["has_features"])
    settings.dataset_found = scene.get("dataset_path") or ""


def watch_job(client: BackendClient, object_name: str, job_id: str) -> None:
    """Poll the job on the worker thread until it ends; progress lands in STATE.jobs[object_name]."""
    def poll():
        time.sleep(JOB_POLL_INTERVAL)
        return client.job(job_id)

    def done(job, error):
        if error is not None:
            STATE.errors[object_name] = str(error)
            if isinstance(error, BackendError) and error.code in ("unreachable", "timeout"):
                TASKS.submit(poll, done)  # keep following the job: the backend may come back
            return
        STATE.errors.pop(object_name, None)
        STATE.jobs[object_name] = job
        if job["state"] not in FINAL_JOB_STATES:
            TASKS.submit(poll, done)
            return
        obj = bpy.data.objects.get(object_name)
        if job["state"] == "done" and obj is not None:
            obj.clickgauss.has_features = True
            STATE.segments.pop(job["scene_id"], None)
        elif job["state"] != "done":
            if job["state"] != "cancelled":
                STATE.errors[object_name] = (job.get("error") or {}).get("message") or f"training {job['state']}"
            # A field trained earlier may still be there: ask the backend rather than assume.
            TASKS.submit(lambda: client.scene(job["scene_id"]), refresh_scene)

    def refresh_scene(scene, error):
        obj = bpy.data.objects.get(object_name)
        if error is None and obj is not None:
            record_scene(obj, scene)

    TASKS.submit(poll, done)


def start_training(client: BackendClient, obj) -> None:
    """Open the object's PLY on the backend and start a training job (all on the worker thread)."""
    ply_path = obj.get(SOURCE_KEY) or ""
    if not ply_path or not os.path.isfile(ply_path):
        raise ValueError(f"the scene's file {ply_path!r} is gone: features are trained on the original file")
    dataset = bpy.path.abspath(obj.clickgauss.dataset_path) if obj.clickgauss.dataset_path else None
    request = training_request(obj)
    name = obj.name
    STATE.errors.pop(name, None)
    STATE.jobs[name] = {"state": "opening", "stage": None, "iteration": 0, "total": 0, "eta_seconds": None}

    def work():
        scene = open_scene(client, ply_path, dataset)
        job = client.start_training(scene["scene_id"], request["masks"], request["preset"], views=request["views"])
        return scene, job

    def done(result, error):
        if error is not None:
            STATE.errors[name] = str(error)
            STATE.jobs.pop(name, None)
            return
        scene, job = result
        obj_now = bpy.data.objects.get(name)
        if obj_now is not None:
            record_scene(obj_now, scene)
            obj_now.clickgauss.has_features = False
            obj_now.clickgauss.job_id = job["job_id"]
        STATE.jobs[name] = job
        watch_job(client, name, job["job_id"])

    TASKS.submit(work, done)


def connect_scene(client: BackendClient, obj) -> None:
    """Open the object's PLY on the backend without training (uses features trained earlier)."""
    ply_path = obj.get(SOURCE_KEY) or ""
    dataset = bpy.path.abspath(obj.clickgauss.dataset_path) if obj.clickgauss.dataset_path else None
    name = obj.name

    def done(scene, error):
        obj_now = bpy.data.objects.get(name)
        if error is not None:
            STATE.errors[name] = str(error)
        elif obj_now is not None:
            STATE.errors.pop(name, None)
            record_scene(obj_now, scene)

    TASKS.submit(lambda: open_scene(client, ply_path, dataset), done)


class CLICKGAUSS_OT_connect_scene(bpy.types.Operator):
    """Open this scene on the backend (features trained before are used right away)"""
    bl_idname = "clickgauss.connect_scene"
    bl_label = "Open on Backend"

    @classmethod
    def poll(cls, context):
        return _active_splat(context) is not None

    def execute(self, context):
        connect_scene(client_from_preferences(context), context.active_object)
        return {"FINISHED"}


class CLICKGAUSS_OT_train_features(bpy.types.Operator):
    """Train Click-Gaussian features for the active splat object on the backend"""
    bl_idname = "clickgauss.train_features"
    bl_label = "Train Features"

    @classmethod
    def poll(cls, context):
        obj = _active_splat(context)
        return obj is not None and STATE.jobs.get(obj.name, {}).get("state") not in ("opening", "queued", "running")

    def execute(self, context):
        try:
            start_training(client_from_preferences(context), context.active_object)
        except ValueError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return {"FINISHED"}


class CLICKGAUSS_OT_cancel_training(bpy.types.Operator):
    """Stop the running training of the active splat object"""
    bl_idname = "clickgauss.cancel_training"
    bl_label = "Cancel Training"

    @classmethod
    def poll(cls, context):
        obj = _active_splat(context)
        return obj is not None and STATE.jobs.get(obj.name, {}).get("state") in ("queued", "running")

    def execute(self, context):
        name, job_id = context.active_object.name, context.active_object.clickgauss.job_id
        client = client_from_preferences(context)

        def done(job, error):
            if error is not None:
                STATE.errors[name] = str(error)
            else:
                STATE.jobs[name] = job

        TASKS.submit(lambda: client.cancel_job(job_id), done)
        return {"FINISHED"}


class CLICKGAUSS_OT_resume_training(bpy.types.Operator):
    """Continue the active splat object's cancelled, failed or interrupted training from its last checkpoint"""
    bl_idname = "clickgauss.resume_training"
    bl_label = "Resume Training"

    @classmethod
    def poll(cls, context):
        obj = _active_splat(context)
        return (obj is not None and obj.clickgauss.job_id
                and STATE.jobs.get(obj.name, {}).get("state") in RESUMABLE_JOB_STATES)

    def execute(self, context):
        name, job_id = context.active_object.name, context.active_object.clickgauss.job_id
        client = client_from_preferences(context)

        def done(job, error):
            if error is not None:
                STATE.errors[name] = str(error)
                return
            STATE.errors.pop(name, None)
            STATE.jobs[name] = job
            obj = bpy.data.objects.get(name)
            if obj is not None:
                obj.clickgauss.has_features = False
            watch_job(client, name, job_id)

        TASKS.submit(lambda: client.resume_job(job_id), done)
        return {"FINISHED"}


# -- the trained feature field as a file ------------------------------------------------------
def save_features(client: BackendClient, scene_id: str, path: str) -> int:
    """Download the scene's feature field (the backend's .npz, checked to be one) to `path`,
    atomically (an existing file is replaced only by a complete one); returns its size."""
    data = client.download_field(scene_id)
    with atomic_write(path) as stream:
        stream.write(data)
    return len(data)


def saved_features_notice(path: str, size: int) -> str:
    return f"Features saved to {path} ({size / 1e6:.1f} MB)"


def load_features(client: BackendClient, ply_path: str, dataset_path: str | None, field_path: str) -> dict:
    """Open the scene on the backend and give it the feature field saved in `field_path`."""
    scene = open_scene(client, ply_path, dataset_path)
    return client.upload_field(scene["scene_id"], field_path)


class CLICKGAUSS_OT_save_features(bpy.types.Operator, ExportHelper):
    """Save the trained features of the active splat object to a file (to use them on another backend)"""
    bl_idname = "clickgauss.save_features"
    bl_label = "Save Features"

    filename_ext = ".npz"
    filter_glob: StringProperty(default="*.npz", options={"HIDDEN"})

    @classmethod
    def poll(cls, context):
        obj = _active_splat(context)
        return obj is not None and obj.clickgauss.scene_id and obj.clickgauss.has_features

    def execute(self, context):
        client, name = client_from_preferences(context), context.active_object.name
        scene_id, path = context.active_object.clickgauss.scene_id, self.filepath

        def done(size, error):
            if error is not None:
                STATE.errors[name] = f"saving features failed: {error}"
            else:
                STATE.errors.pop(name, None)
                STATE.notices[name] = saved_features_notice(path, size)

        TASKS.submit(lambda: save_features(client, scene_id, path), done)
        return {"FINISHED"}


class CLICKGAUSS_OT_load_features(bpy.types.Operator, ImportHelper):
    """Give the active splat object's scene features saved earlier (no training needed)"""
    bl_idname = "clickgauss.load_features"
    bl_label = "Load Features"

    filename_ext = ".npz"
    filter_glob: StringProperty(default="*.npz", options={"HIDDEN"})

    @classmethod
    def poll(cls, context):
        return _active_splat(context) is not None

    def execute(self, context):
        obj = context.active_object
        client, name, field_path = client_from_preferences(context), obj.name, self.filepath
        ply_path = obj.get(SOURCE_KEY) or ""
        dataset = bpy.path.abspath(obj.clickgauss.dataset_path) if obj.clickgauss.dataset_path else None

        def done(scene, error):
            obj_now = bpy.data.objects.get(name)
            if error is not None:
                STATE.errors[name] = f"loading features failed: {error}"
            elif obj_now is not None:
                STATE.errors.pop(name, None)
                record_scene(obj_now, scene)

        TASKS.submit(lambda: load_features(client, ply_path, dataset, field_path), done)
        return {"FINISHED"}


# -- click ------------------------------------------------------------------------------------
def start_click(client: BackendClient, obj, camera, pixel_xy, level: str, threshold: float | None,
                mode: str) -> None:
    """The click after the viewport: the query runs on the worker thread; its answer is applied
    by CLICKGAUSS_OT_apply_click on the main thread, which makes it one undo step. The outcome
    lands in STATE.clicks[object name] (a ClickResult, or an error message in STATE.errors)."""
    name, scene_id = obj.name, obj.clickgauss.scene_id

    def done(result, error):
        if error is not None:
            STATE.errors[name] = f"click failed: {error}"
            return
        STATE.pending_clicks[name] = (*result, mode)
        # undo=True: called from a timer, the operator still pushes its own undo step.
        bpy.ops.clickgauss.apply_click("EXEC_DEFAULT", True, object_name=name)

    STATE.errors.pop(name, None)
    TASKS.submit(lambda: query_click(client, scene_id, camera, pixel_xy, level, threshold), done)


class CLICKGAUSS_OT_apply_click(bpy.types.Operator):
    """Apply the answer of a ClickGauss click to the object's selection"""
    bl_idname = "clickgauss.apply_click"
    bl_label = "ClickGauss Click"
    bl_options = {"REGISTER", "UNDO", "INTERNAL"}

    object_name: StringProperty()

    def execute(self, context):
        obj = bpy.data.objects.get(self.object_name)
        pending = STATE.pending_clicks.pop(self.object_name, None)
        if obj is None or pending is None:
            return {"CANCELLED"}
        mask, response, mode = pending
        if obj.mode == "EDIT":
            with context.temp_override(active_object=obj, object=obj):
                bpy.ops.object.mode_set(mode="OBJECT")
        try:
            result = apply_click(obj, mask, response, mode)
        except ValueError as exc:
            STATE.errors[self.object_name] = str(exc)
            return {"CANCELLED"}
        STATE.clicks[self.object_name] = result
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
        obj = _active_splat(context)
        region, region_3d = context.region, context.region_data
        if (obj is None or context.area is None or context.area.type != "VIEW_3D" or region is None
                or region.type != "WINDOW" or region_3d is None):
            return {"PASS_THROUGH"}  # not ours: Blender's own Shift+click selection happens
        settings = obj.clickgauss
        if not (settings.scene_id and settings.has_features):
            self.report({"INFO"}, "ClickGauss: train features (or open the scene on the backend) before clicking")
            return {"PASS_THROUGH"}
        scene_settings = context.scene.clickgauss
        try:
            camera = viewport_camera(region, region_3d, obj)
            client = client_from_preferences(context)
        except ValueError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        pixel = wire.blender_region_to_pixel(event.mouse_region_x, event.mouse_region_y, region.height)
        mode = scene_settings.click_mode if self.mode == "SCENE" else self.mode
        threshold = scene_settings.threshold if scene_settings.use_threshold else None
        start_click(client, obj, camera, pixel, scene_settings.level, threshold, mode)
        return {"FINISHED"}


CLASSES = (CLICKGAUSS_OT_check_backend, CLICKGAUSS_OT_start_backend, CLICKGAUSS_OT_stop_backend,
           CLICKGAUSS_OT_connect_scene, CLICKGAUSS_OT_train_features, CLICKGAUSS_OT_cancel_training,
           CLICKGAUSS_OT_resume_training,
           CLICKGAUSS_OT_save_features, CLICKGAUSS_OT_load_features, CLICKGAUSS_OT_apply_click,
           CLICKGAUSS_OT_click_select)
_keymap_items: list = []


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    keyconfig = bpy.context.window_manager.keyconfigs.addon
    if keyconfig is not None:  # None in background mode without a window manager
        keymap = keyconfig.keymaps.new(name="3D View", space_type="VIEW_3D")
        item = keymap.keymap_items.new(CLICKGAUSS_OT_click_select.bl_idname, "LEFTMOUSE", "CLICK", shift=True)
        _keymap_items.append((keymap, item))


def unregister():
    for keymap, item in _keymap_items:
        keymap.keymap_items.remove(item)
    _keymap_items.clear()
    stop_timer()
    if STATE.local_process is not None:
        stop_local_backend(STATE.local_process)
        STATE.local_process = None
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
