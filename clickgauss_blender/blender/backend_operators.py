"""Operators that talk to the backend, each a few lines over backend_tasks.py: status, start/stop
a local backend, open a scene, Train Features / cancel / resume, feature files. (The click's
operators are in click.py.)"""

from __future__ import annotations

import bpy
from bpy.props import EnumProperty, StringProperty
from bpy_extras.io_utils import ExportHelper, ImportHelper
from clickgauss_core.protocol import ACTIVE_STATES, RESUMABLE_STATES

from ..messages import describe
from . import backend_tasks as tasks
from .preferences_access import client_from_preferences
from .session import ACTIVE_JOB_STATES, STATE, show_error


def _job_state(context) -> str | None:
    """The state of the active splat object's job as the add-on last saw it (None: none)."""
    obj = tasks.active_splat(context)
    return None if obj is None else STATE.jobs.get(obj.name, {}).get("state")


class CLICKGAUSS_OT_check_backend(bpy.types.Operator):
    """Ask the backend whether it is up and which device it uses"""
    bl_idname = "clickgauss.check_backend"
    bl_label = "Check Backend"

    def execute(self, context):
        try:
            tasks.check_backend(client_from_preferences(context))
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


class CLICKGAUSS_OT_start_backend(bpy.types.Operator):
    """Start a backend on this computer: the add-on finds one by itself (preferences, PATH, the checkout it
    was built from, or Install Backend's), and lets it read the folders of the scenes you open"""
    bl_idname = "clickgauss.start_backend"
    bl_label = "Start Local Backend"

    def execute(self, context):
        if tasks.local_backend_running():
            self.report({"INFO"}, "The local backend is already running")
            return {"CANCELLED"}
        try:
            tasks.start_local(context)
        except (FileNotFoundError, ValueError, OSError):
            self.report({"ERROR"}, STATE.backend.message)
            return {"CANCELLED"}
        return {"FINISHED"}


class CLICKGAUSS_OT_stop_backend(bpy.types.Operator):
    """Stop the backend this Blender session started"""
    bl_idname = "clickgauss.stop_backend"
    bl_label = "Stop Local Backend"

    @classmethod
    def poll(cls, context):
        return tasks.local_backend_running()

    def execute(self, context):
        tasks.stop_local()
        return {"FINISHED"}


class _SplatTaskOperator(bpy.types.Operator):
    """Runs `task(client, active splat object)` of backend_tasks; a refusal (ValueError) is reported."""
    task = None

    @classmethod
    def poll(cls, context):
        return tasks.active_splat(context) is not None

    def execute(self, context):
        obj = context.active_object
        try:
            self.run(client_from_preferences(context), obj)
        except ValueError as exc:
            self.refused(obj, exc)
            self.report({"ERROR"}, describe(exc))
            return {"CANCELLED"}
        return {"FINISHED"}

    def run(self, client, obj) -> None:
        type(self).task(client, obj)

    def refused(self, obj, error: ValueError) -> None:
        """Beyond the status bar: where else the refusal shows (nowhere by default)."""


class CLICKGAUSS_OT_connect_scene(_SplatTaskOperator):
    """Open this scene on the backend (features trained before are used right away)"""
    bl_idname = "clickgauss.connect_scene"
    bl_label = "Open on Backend"
    task = tasks.connect_scene


class CLICKGAUSS_OT_train_features(_SplatTaskOperator):
    """Train Click-Gaussian features for the active splat object on the backend"""
    bl_idname = "clickgauss.train_features"
    bl_label = "Train Features"
    task = tasks.start_training

    @classmethod
    def poll(cls, context):
        return tasks.active_splat(context) is not None and _job_state(context) not in ACTIVE_JOB_STATES

    def refused(self, obj, error):
        if str(error) != tasks.masks_problem_of(obj):  # the panel shows the masks' problem live, while it lasts
            show_error(obj.name, error)


class CLICKGAUSS_OT_cancel_training(_SplatTaskOperator):
    """Stop the running training of the active splat object"""
    bl_idname = "clickgauss.cancel_training"
    bl_label = "Cancel Training"
    task = tasks.cancel_training

    @classmethod
    def poll(cls, context):
        return _job_state(context) in ACTIVE_STATES


class CLICKGAUSS_OT_resume_training(_SplatTaskOperator):
    """Continue the active splat object's cancelled, failed or interrupted training from its last checkpoint"""
    bl_idname = "clickgauss.resume_training"
    bl_label = "Resume Training"
    task = tasks.resume_training

    @classmethod
    def poll(cls, context):
        return bool(_job_state(context) in RESUMABLE_STATES and context.active_object.clickgauss.job_id)


class _FeatureFile:
    """The file browser of a feature field file (the backend's .npz)."""
    filename_ext = ".npz"
    filter_glob: StringProperty(default="*.npz", options={"HIDDEN"})


class CLICKGAUSS_OT_save_features(_SplatTaskOperator, _FeatureFile, ExportHelper):
    """Save the trained features of the active splat object to a file (to use them on another backend)"""
    bl_idname = "clickgauss.save_features"
    bl_label = "Save Features"

    @classmethod
    def poll(cls, context):
        obj = tasks.active_splat(context)
        return obj is not None and obj.clickgauss.scene_id and obj.clickgauss.has_features

    def run(self, client, obj):
        tasks.save_features_of(client, obj, self.filepath)


class CLICKGAUSS_OT_load_features(_SplatTaskOperator, _FeatureFile, ImportHelper):
    """Give the active splat object's scene features saved earlier (no training needed)"""
    bl_idname = "clickgauss.load_features"
    bl_label = "Load Features"

    def run(self, client, obj):
        tasks.load_features_into(client, obj, self.filepath)


CLASSES = (CLICKGAUSS_OT_check_backend, CLICKGAUSS_OT_report, CLICKGAUSS_OT_start_backend, CLICKGAUSS_OT_stop_backend,
           CLICKGAUSS_OT_connect_scene, CLICKGAUSS_OT_train_features, CLICKGAUSS_OT_cancel_training,
           CLICKGAUSS_OT_resume_training, CLICKGAUSS_OT_save_features, CLICKGAUSS_OT_load_features)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister():
    tasks.shutdown()
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
