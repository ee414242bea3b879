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
from clickgauss_core.launcher import stop_backend
from clickgauss_core.protocol import (ACTIVE_STATES, CANCELLED, DONE, FILE_NOT_FOUND, FINISHED_STATES, OUTSIDE_DATA_ROOT,
                                      RESUMABLE_STATES, TIMEOUT, UNREACHABLE)

from ..client import BackendClient, BackendError
from ..backend_installer import INSTALLED_ENV_NAME
from ..local_backend import (NO_BACKEND_FOUND, checkout_root, covering_roots, find_backend, port_of, sam_arguments,
                             start_local_backend, wait_until_ready)
from ..mask_setup import masks_problem
from ..messages import describe, sentence
from .field_storage import field_record, has_stored_field
from .local_operators import click_locally, fetch_field, show_threshold, source_path
from .mesh_io import is_splat_object
from .preferences import ADDON_PACKAGE, AUTO_PRESET, client_from_preferences, preferences
from .selection import apply_click, query_click, viewport_camera
from .session import (ACTIVE_JOB_STATES, JOB_POLL_INTERVAL, OPENING, STATE, TASKS, clear_connection_errors, clear_error, notify,
                      show_error, stop_timer)

# Answers to POST /v1/scenes meaning "the server cannot read that path": send the file instead.
UPLOAD_INSTEAD = (FILE_NOT_FOUND, OUTSIDE_DATA_ROOT)


def _active_splat(context):
    obj = context.active_object
    return obj if is_splat_object(obj) else None


# -- backend status ---------------------------------------------------------------------------
def check_backend(client: BackendClient) -> None:
    STATE.backend.state, STATE.backend.message = "checking", ""

    def done(health, error):
        if error is None:
            STATE.backend.state, STATE.backend.health, STATE.backend.message = "connected", health, ""
            clear_connection_errors()
        else:
            STATE.backend.state, STATE.backend.health, STATE.backend.message = UNREACHABLE, {}, describe(error)
            notify("WARNING", STATE.backend.message)

    TASKS.submit(client.health, done)


class CLICKGAUSS_OT_check_backend(bpy.types.Operator):
    """Ask the backend whether it is up and which device it uses"""
    bl_idname = "clickgauss.check_backend"
    bl_label = "Check Backend"

    def execute(self, context):
        try:
            check_backend(client_from_preferences(context))
        except ValueError as exc:  # malformed URL in the preferences
            self.report({"ERROR"}, describe(exc))
            return {"CANCELLED"}
        return {"FINISHED"}


class CLICKGAUSS_OT_report(bpy.types.Operator):
    """Show a ClickGauss message in the status bar (used by background work, which has no operator)"""
    bl_idname = "clickgauss.report"
    bl_label = "ClickGauss Message"
    bl_options = {"INTERNAL"}

    level: EnumProperty(items=(("INFO", "Info", ""), ("WARNING", "Warning", ""), ("ERROR", "Error", "")))
    message: StringProperty()

    def execute(self, context):
        self.report({self.level}, self.message)
        return {"FINISHED"}


def folders_of(obj) -> list[str]:
    """The folders the backend must read for a splat object: its file's, its dataset's, its masks'."""
    settings = obj.clickgauss
    folders = [os.path.dirname(source_path(obj))]
    folders.append(bpy.path.abspath(settings.dataset_path) if settings.dataset_path else settings.dataset_nearby)
    if settings.masks_source == "FOLDER" and settings.masks_path:
        folders.append(bpy.path.abspath(settings.masks_path))
    return [folder for folder in folders if folder and os.path.isdir(folder)]


def data_roots_in_use(context, extra=()) -> list[str]:
    """What a local backend may read: your home folder, the Data Root of the preferences, and the
    folders of every splat object's file, dataset and masks (and `extra`)."""
    prefs = preferences(context)
    roots = [os.path.expanduser("~")]
    if prefs.local_data_root:
        roots.append(bpy.path.abspath(prefs.local_data_root))
    for obj in bpy.data.objects:
        if is_splat_object(obj):
            roots += folders_of(obj)
    roots += list(extra)
    unique = []
    for root in roots:
        root = os.path.realpath(root)
        if os.path.isdir(root) and covering_roots([root], unique):
            unique = [kept for kept in unique if covering_roots([kept], [root])] + [root]
    return unique


def launch_local_backend(context, extra_roots=()):
    """Find a backend (local_backend.find_backend) and start it on the Backend URL's port with the
    folders in use as data roots; the wait for it runs in the background. Returns the process."""
    prefs = preferences(context)
    installed = bpy.utils.extension_path_user(ADDON_PACKAGE, path=INSTALLED_ENV_NAME)
    found = find_backend(bpy.path.abspath(prefs.backend_python) if prefs.backend_python else "", installed,
                         checkout_root())
    if found is None:
        raise FileNotFoundError(NO_BACKEND_FOUND if not prefs.backend_python else
                                f"Backend Python {prefs.backend_python!r} is not a program that can run: set it to "
                                "the python of a backend environment, or clear it so the add-on finds one by itself")
    folder = bpy.utils.extension_path_user(ADDON_PACKAGE, path="", create=True)
    log_path = os.path.join(folder, "backend.log")
    roots = data_roots_in_use(context, extra_roots)
    client = client_from_preferences(context)
    sam = sam_arguments(bpy.path.abspath(prefs.sam_checkpoint) if prefs.sam_checkpoint else "", prefs.sam_model)
    process = start_local_backend(found, port_of(prefs.backend_url), log_path, cache_dir=os.path.join(folder, "cache"),
                                  data_roots=roots, token=prefs.token or None, extra_args=sam)
    STATE.local_process, STATE.local_log, STATE.local_roots, STATE.local_source = process, log_path, roots, found.source
    STATE.local_url = client.url
    STATE.backend.state = "starting"
    STATE.backend.message = f"Starting the backend found {SOURCE_WORDS[found.source]} (the first start takes a minute)"

    def done(health, error):
        if STATE.local_process is not process:
            return  # restarted since: the new process reports for itself
        if error is None:
            STATE.backend.state, STATE.backend.health, STATE.backend.message = "connected", health, ""
            clear_connection_errors()
            notify("INFO", f"ClickGauss backend started ({health.get('device', '?')}; "
                           f"found {SOURCE_WORDS[found.source]})")
        else:
            # The first line says what happened and where the log is; the log's tail stays in the log.
            STATE.backend.state, STATE.backend.message = UNREACHABLE, sentence(str(error).splitlines()[0])
            notify("ERROR", STATE.backend.message)

    TASKS.submit(lambda: wait_until_ready(client, process, log_path=log_path), done)
    return process


SOURCE_WORDS = {"preferences": "in the add-on's preferences", "PATH": "on PATH",
                "checkout": "in the checkout the add-on was built from", "installed": "where Install Backend put it"}


def local_backend_for(context, folders):
    """Make the backend this Blender started able to read `folders`: restarted with them as extra
    data roots when it cannot yet. Returns the new process (wait for it before using it), or None
    when nothing had to change (or the backend is not ours to restart)."""
    process = STATE.local_process
    if process is None or process.poll() is not None or client_from_preferences(context).url != STATE.local_url:
        return None  # not running, or the add-on talks to another backend now
    missing = covering_roots(folders, STATE.local_roots)
    if not missing:
        return None
    stop_backend(process)
    STATE.local_process = None
    notify("INFO", f"Restarting the local backend so it may read {', '.join(missing)}")
    return launch_local_backend(context, missing)


def wait_for(client: BackendClient, process) -> None:
    """On the worker thread: wait for a (re)started local backend before talking to it."""
    if process is not None:
        wait_until_ready(client, process, log_path=STATE.local_log)


class CLICKGAUSS_OT_start_backend(bpy.types.Operator):
    """Start a backend on this computer: the add-on finds one by itself (preferences, PATH, the checkout it
    was built from, or Install Backend's), and lets it read the folders of the scenes you open"""
    bl_idname = "clickgauss.start_backend"
    bl_label = "Start Local Backend"

    def execute(self, context):
        if STATE.local_process is not None and STATE.local_process.poll() is None:
            self.report({"INFO"}, "The local backend is already running")
            return {"CANCELLED"}
        try:
            launch_local_backend(context)
        except (FileNotFoundError, ValueError, OSError) as exc:
            STATE.backend.state, STATE.backend.message = UNREACHABLE, describe(exc)
            self.report({"ERROR"}, STATE.backend.message)
            return {"CANCELLED"}
        return {"FINISHED"}


class CLICKGAUSS_OT_stop_backend(bpy.types.Operator):
    """Stop the backend this Blender session started"""
    bl_idname = "clickgauss.stop_backend"
    bl_label = "Stop Local Backend"

    @classmethod
    def poll(cls, context):
        return STATE.local_process is not None and STATE.local_process.poll() is None

    def execute(self, context):
        stop_backend(STATE.local_process)
        STATE.local_process = None
        STATE.backend.state, STATE.backend.health, STATE.backend.message = "unknown", {}, ""
        return {"FINISHED"}


# -- scenes and training ----------------------------------------------------------------------
def open_scene(client: BackendClient, ply_path: str, dataset_path: str | None) -> dict:
    """The backend scene of a PLY: by path when the server can read it, else uploaded. A dataset
    cannot be uploaded: when the backend cannot read it either, say so plainly."""
    try:
        return client.open_scene(ply_path, dataset_path)
    except BackendError as exc:
        if exc.code not in UPLOAD_INSTEAD:
            raise
    try:
        return client.upload_scene(ply_path, dataset_path)
    except BackendError as exc:
        if not dataset_path or exc.code not in UPLOAD_INSTEAD:
            raise
        why = ("it is not on the backend's computer" if exc.code == FILE_NOT_FOUND
               else "the backend may only read other folders")
        raise BackendError(exc.code, (
            f"The backend at {client.url} cannot read the dataset folder {dataset_path} ({why}). The add-on sends the "
            "scene's file to a backend that cannot read it, but not its dataset: press Start Local to train on this "
            "computer, or copy the dataset to the backend's computer and set Dataset to its path there (starting the "
            "backend with --data-root for that folder)"), exc.status) from None


def masks_problem_of(obj, context=None) -> str | None:
    """What is missing for the object's masks, in one sentence (None: nothing): from its Masks
    settings, the connected backend's health and the SAM checkpoint in the preferences."""
    prefs = preferences(context)
    health = STATE.backend.health if STATE.backend.state == "connected" else None
    checkpoint = bpy.path.abspath(prefs.sam_checkpoint) if prefs.sam_checkpoint else ""
    return masks_problem(obj.clickgauss.masks_source, obj.clickgauss.masks_path, health, checkpoint)


def training_request(obj, context=None) -> dict:
    """masks / preset / views of the object's settings as the POST /v1/jobs fields."""
    settings = obj.clickgauss
    problem = masks_problem_of(obj)
    if problem:
        raise ValueError(problem)
    if settings.masks_source == "SAM":
        masks = {"source": "sam"}
    else:
        masks = {"source": "folder", "path": bpy.path.abspath(settings.masks_path)}
    from .planned_views import views_request

    return {"masks": masks, "preset": None if settings.preset == AUTO_PRESET else settings.preset,
            "views": views_request(context or bpy.context, obj)}


def record_scene(obj, scene: dict) -> None:
    settings = obj.clickgauss
    if settings.scene_id != scene["scene_id"]:
        STATE.segments.pop(settings.scene_id, None)
    settings.scene_id = scene["scene_id"]
    settings.has_features = bool(scene["has_features"])
    settings.dataset_found = scene.get("dataset_path") or ""  # what the backend itself uses, never a guess


def fetch_field_if_new(client: BackendClient, obj) -> None:
    """Store the backend scene's field on the object unless it already holds that scene's."""
    record = field_record(obj)
    if obj.clickgauss.has_features and (record is None or record.trained_from.get("scene_id") != obj.clickgauss.scene_id):
        fetch_field(client, obj)


def watch_job(client: BackendClient, object_name: str, job_id: str) -> None:
    """Poll the job on the worker thread until it ends; progress lands in STATE.jobs[object_name]."""
    def poll():
        time.sleep(JOB_POLL_INTERVAL)
        return client.job(job_id)

    def done(job, error):
        if error is not None:
            show_error(object_name, error, "Following the training")
            if isinstance(error, BackendError) and error.code in (UNREACHABLE, TIMEOUT):
                TASKS.submit(poll, done)  # keep following the job: the backend may come back
            return
        clear_error(object_name)
        STATE.jobs[object_name] = job
        if job["state"] not in FINISHED_STATES:
            TASKS.submit(poll, done)
            return
        obj = bpy.data.objects.get(object_name)
        if job["state"] == DONE and obj is not None:
            obj.clickgauss.has_features = True
            STATE.segments.pop(job["scene_id"], None)
            notify("INFO", f"Training finished for {object_name}: Shift+click in the viewport to select")
            fetch_field(client, obj)  # the trained field goes into the .blend, on the object
        elif job["state"] != DONE:
            if job["state"] == CANCELLED:
                notify("INFO", f"Training of {object_name} cancelled: Resume continues from its last checkpoint")
            else:
                show_error(object_name, (job.get("error") or {}).get("message")
                           or f"the training was {job['state']}: press Resume to continue it", "Training failed")
            # A field trained earlier may still be there: ask the backend rather than assume.
            TASKS.submit(lambda: client.scene(job["scene_id"]), refresh_scene)

    def refresh_scene(scene, error):
        obj = bpy.data.objects.get(object_name)
        if error is None and obj is not None:
            record_scene(obj, scene)

    TASKS.submit(poll, done)


def start_training(client: BackendClient, obj) -> None:
    """Open the object's PLY on the backend and start a training job (all on the worker thread)."""
    ply_path = source_path(obj)
    if not ply_path or not os.path.isfile(ply_path):
        raise ValueError(f"The file {obj.name} was imported from is gone ({ply_path or 'no path recorded'}): "
                         "features are trained on the original file, so import the scene again from where it is now")
    dataset = dataset_of(obj)
    request = training_request(obj)
    restarted = local_backend_for(bpy.context, folders_of(obj))
    name = obj.name
    clear_error(name)
    STATE.jobs[name] = {"state": OPENING, "stage": None, "iteration": 0, "total": 0, "eta_seconds": None}

    def work():
        wait_for(client, restarted)
        scene = open_scene(client, ply_path, dataset)
        job = client.start_training(scene["scene_id"], request["masks"], request["preset"], views=request["views"])
        return scene, job

    def done(result, error):
        if error is not None:
            show_error(name, error, "Training could not start")
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
    """Open the object's PLY on the backend without training (uses features trained earlier, and
    stores them on the object when it has none of that scene yet)."""
    ply_path = source_path(obj)
    if not os.path.isfile(ply_path):
        raise ValueError(f"The file {obj.name} was imported from is gone ({ply_path or 'no path recorded'}): the "
                         "backend needs it to connect, so import the scene again from where it is now; features "
                         "stored in the .blend still click without it")
    dataset = dataset_of(obj)
    restarted = local_backend_for(bpy.context, folders_of(obj))
    name = obj.name

    def work():
        wait_for(client, restarted)
        return open_scene(client, ply_path, dataset)

    def done(scene, error):
        obj_now = bpy.data.objects.get(name)
        if error is not None:
            show_error(name, error, "Opening the scene on the backend failed")
        elif obj_now is not None:
            clear_error(name)
            record_scene(obj_now, scene)
            fetch_field_if_new(client, obj_now)

    TASKS.submit(work, done)


def dataset_of(obj) -> str | None:
    """The dataset to train with: the one chosen, else the one found next to the file on import."""
    settings = obj.clickgauss
    return bpy.path.abspath(settings.dataset_path) if settings.dataset_path else (settings.dataset_nearby or None)


class CLICKGAUSS_OT_connect_scene(bpy.types.Operator):
    """Open this scene on the backend (features trained before are used right away)"""
    bl_idname = "clickgauss.connect_scene"
    bl_label = "Open on Backend"

    @classmethod
    def poll(cls, context):
        return _active_splat(context) is not None

    def execute(self, context):
        try:
            connect_scene(client_from_preferences(context), context.active_object)
        except ValueError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return {"FINISHED"}


class CLICKGAUSS_OT_train_features(bpy.types.Operator):
    """Train Click-Gaussian features for the active splat object on the backend"""
    bl_idname = "clickgauss.train_features"
    bl_label = "Train Features"

    @classmethod
    def poll(cls, context):
        obj = _active_splat(context)
        return obj is not None and STATE.jobs.get(obj.name, {}).get("state") not in ACTIVE_JOB_STATES

    def execute(self, context):
        try:
            start_training(client_from_preferences(context), context.active_object)
        except ValueError as exc:
            obj = context.active_object
            if str(exc) != masks_problem_of(obj):  # the panel shows the masks' problem live, while it lasts
                show_error(obj.name, exc)
            self.report({"ERROR"}, describe(exc))
            return {"CANCELLED"}
        return {"FINISHED"}


class CLICKGAUSS_OT_cancel_training(bpy.types.Operator):
    """Stop the running training of the active splat object"""
    bl_idname = "clickgauss.cancel_training"
    bl_label = "Cancel Training"

    @classmethod
    def poll(cls, context):
        obj = _active_splat(context)
        return obj is not None and STATE.jobs.get(obj.name, {}).get("state") in ACTIVE_STATES

    def execute(self, context):
        name, job_id = context.active_object.name, context.active_object.clickgauss.job_id
        client = client_from_preferences(context)

        def done(job, error):
            if error is not None:
                show_error(name, error, "Cancelling failed")
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
                and STATE.jobs.get(obj.name, {}).get("state") in RESUMABLE_STATES)

    def execute(self, context):
        name, job_id = context.active_object.name, context.active_object.clickgauss.job_id
        client = client_from_preferences(context)

        def done(job, error):
            if error is not None:
                show_error(name, error, "Resuming failed")
                return
            clear_error(name)
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
    return f"Saved the features to {path} ({size / 1e6:.1f} MB)"


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
                show_error(name, error, "Saving features failed")
            else:
                clear_error(name)
                STATE.notices[name] = saved_features_notice(path, size)
                notify("INFO", STATE.notices[name])

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
        ply_path = source_path(obj)
        dataset = dataset_of(obj)
        restarted = local_backend_for(context, folders_of(obj))

        def done(scene, error):
            obj_now = bpy.data.objects.get(name)
            if error is not None:
                show_error(name, error, "Loading features failed")
            elif obj_now is not None:
                clear_error(name)
                record_scene(obj_now, scene)
                notify("INFO", f"Loaded the features of {name} from {os.path.basename(field_path)}: Shift+click to select")
                fetch_field_if_new(client, obj_now)

        def work():
            wait_for(client, restarted)
            return load_features(client, ply_path, dataset, field_path)

        TASKS.submit(work, done)
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
            show_error(name, error, "Click failed")
            return
        STATE.pending_clicks[name] = (*result, mode)
        # undo=True: called from a timer, the operator still pushes its own undo step.
        bpy.ops.clickgauss.apply_click("EXEC_DEFAULT", True, object_name=name)

    clear_error(name)
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
            show_error(self.object_name, exc, "Click failed")
            return {"CANCELLED"}
        STATE.clicks[self.object_name] = result
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
        obj = _active_splat(context)
        region, region_3d = context.region, context.region_data
        if (obj is None or context.area is None or context.area.type != "VIEW_3D" or region is None
                or region.type != "WINDOW" or region_3d is None):
            return {"PASS_THROUGH"}  # not ours: Blender's own Shift+click selection happens
        settings = obj.clickgauss
        stored = has_stored_field(obj)
        if not (stored or (settings.scene_id and settings.has_features)):
            self.report({"INFO"}, "ClickGauss: train features (or open the scene on the backend) before clicking")
            return {"PASS_THROUGH"}
        scene_settings = context.scene.clickgauss
        try:
            camera = viewport_camera(region, region_3d, obj)
            pixel = wire.blender_region_to_pixel(event.mouse_region_x, event.mouse_region_y, region.height)
            mode = scene_settings.click_mode if self.mode == "SCENE" else self.mode
            threshold = scene_settings.threshold if scene_settings.use_threshold else None
            if stored:  # computed here from the features stored on the object: no backend
                click_locally(obj, camera, pixel, scene_settings.level, threshold, mode)
                return {"FINISHED"}
            client = client_from_preferences(context)
        except ValueError as exc:
            self.report({"ERROR"}, describe(exc))
            return {"CANCELLED"}
        start_click(client, obj, camera, pixel, scene_settings.level, threshold, mode)
        return {"FINISHED"}


CLASSES = (CLICKGAUSS_OT_check_backend, CLICKGAUSS_OT_report, CLICKGAUSS_OT_start_backend, CLICKGAUSS_OT_stop_backend,
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
        stop_backend(STATE.local_process)
        STATE.local_process = None
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
