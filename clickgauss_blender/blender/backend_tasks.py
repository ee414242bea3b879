"""The add-on's work with the backend as plain functions (no operator classes): the backend's
status, the local backend (start, restart to read more folders, stop), opening scenes, training
(start, follow, cancel, resume) and feature files. The operators in backend_operators.py are a
few lines over these; the click is click.py.

Every network call runs on a worker thread (session.TASKS); its result comes back on the main
thread through a bpy.app.timers callback, so the UI never waits for the backend. What these keep
between calls lives in session.STATE."""

from __future__ import annotations

import os
import time

import bpy
from clickgauss_core.launcher import stop_backend
from clickgauss_core.protocol import DONE, FINISHED_STATES, TIMEOUT, UNREACHABLE

from ..backend_installer import INSTALLED_ENV_NAME
from ..backend_requests import load_features, open_and_train, open_scene, save_features, saved_features_notice, \
    training_outcome
from ..client import BackendClient, BackendError
from ..local_backend import (NO_BACKEND_FOUND, checkout_root, covering_roots, find_backend, port_of, sam_arguments,
                             start_local_backend, wait_until_ready)
from ..mask_setup import masks_problem
from ..messages import describe, sentence
from .field_storage import field_record
from .local_operators import fetch_field, source_path
from .mesh_io import is_splat_object
from .preferences_access import ADDON_PACKAGE, AUTO_PRESET, client_from_preferences, preferences
from .session import (JOB_POLL_INTERVAL, OPENING, STATE, TASKS, clear_connection_errors, clear_error, notify, show_error,
                      stop_timer)


def active_splat(context):
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


def local_backend_running() -> bool:
    return STATE.local_process is not None and STATE.local_process.poll() is None


def start_local(context) -> None:
    """Start Local: a found backend launched (see launch_local_backend); the panel shows why not."""
    try:
        launch_local_backend(context)
    except (FileNotFoundError, ValueError, OSError) as exc:
        STATE.backend.state, STATE.backend.message = UNREACHABLE, describe(exc)
        raise


def stop_local() -> None:
    """Stop the backend this Blender session started."""
    if STATE.local_process is not None:
        stop_backend(STATE.local_process)
        STATE.local_process = None
    STATE.backend.state, STATE.backend.health, STATE.backend.message = "unknown", {}, ""


# -- scenes and training ----------------------------------------------------------------------
def dataset_of(obj) -> str | None:
    """The dataset to train with: the one chosen, else the one found next to the file on import."""
    settings = obj.clickgauss
    return bpy.path.abspath(settings.dataset_path) if settings.dataset_path else (settings.dataset_nearby or None)


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
        level, text = training_outcome(object_name, job)
        if job["state"] == DONE:
            if obj is not None:
                obj.clickgauss.has_features = True
                STATE.segments.pop(job["scene_id"], None)
                notify(level, text)
                fetch_field(client, obj)  # the trained field goes into the .blend, on the object
            return
        if level == "ERROR":
            show_error(object_name, text, "Training failed")
        else:
            notify(level, text)
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
        return open_and_train(client, ply_path, dataset, request)

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
    _open_then_record(client, obj, lambda ply, dataset: open_scene(client, ply, dataset),
                      "Opening the scene on the backend failed")


def _open_then_record(client: BackendClient, obj, request, doing: str, notice: str = "") -> None:
    """`request(ply_path, dataset)` (a request that opens the object's scene) on the worker thread,
    after restarting the local backend when it cannot read the object's folders; then the scene
    answered is recorded on the object and its field fetched when new."""
    name, ply_path, dataset = obj.name, source_path(obj), dataset_of(obj)
    restarted = local_backend_for(bpy.context, folders_of(obj))

    def work():
        wait_for(client, restarted)
        return request(ply_path, dataset)

    def done(scene, error):
        obj_now = bpy.data.objects.get(name)
        if error is not None:
            show_error(name, error, doing)
        elif obj_now is not None:
            clear_error(name)
            record_scene(obj_now, scene)
            if notice:
                notify("INFO", notice)
            fetch_field_if_new(client, obj_now)

    TASKS.submit(work, done)


def cancel_training(client: BackendClient, obj) -> None:
    name, job_id = obj.name, obj.clickgauss.job_id

    def done(job, error):
        if error is not None:
            show_error(name, error, "Cancelling failed")
        else:
            STATE.jobs[name] = job

    TASKS.submit(lambda: client.cancel_job(job_id), done)


def resume_training(client: BackendClient, obj) -> None:
    """Continue a cancelled, failed or interrupted job from its last checkpoint, and follow it."""
    name, job_id = obj.name, obj.clickgauss.job_id

    def done(job, error):
        if error is not None:
            show_error(name, error, "Resuming failed")
            return
        clear_error(name)
        STATE.jobs[name] = job
        obj_now = bpy.data.objects.get(name)
        if obj_now is not None:
            obj_now.clickgauss.has_features = False
        watch_job(client, name, job_id)

    TASKS.submit(lambda: client.resume_job(job_id), done)


# -- the trained feature field as a file ------------------------------------------------------
def save_features_of(client: BackendClient, obj, path: str) -> None:
    """Save the object's trained feature field (on the backend) to `path`."""
    name, scene_id = obj.name, obj.clickgauss.scene_id

    def done(size, error):
        if error is not None:
            show_error(name, error, "Saving features failed")
        else:
            clear_error(name)
            STATE.notices[name] = saved_features_notice(path, size)
            notify("INFO", STATE.notices[name])

    TASKS.submit(lambda: save_features(client, scene_id, path), done)


def load_features_into(client: BackendClient, obj, field_path: str) -> None:
    """Give the object's scene on the backend the feature field saved in `field_path`."""
    notice = f"Loaded the features of {obj.name} from {os.path.basename(field_path)}: Shift+click to select"
    _open_then_record(client, obj, lambda ply, dataset: load_features(client, ply, dataset, field_path),
                      "Loading features failed", notice)


def shutdown() -> None:
    """The add-on is unregistered: no timer left behind, no backend left running."""
    stop_timer()
    if STATE.local_process is not None:
        stop_backend(STATE.local_process)
        STATE.local_process = None
