"""The "ClickGauss" tab of the 3D viewport's sidebar."""

from __future__ import annotations

import bpy
from clickgauss_core.protocol import COARSE, RESUMABLE_STATES, UNREACHABLE

from ..messages import wrap
from .backend_tasks import masks_problem_of
from .field_storage import has_stored_field
from .mesh_io import is_splat_object
from .planned_views import no_photos_sentence
from .session import ACTIVE_JOB_STATES, STATE

LABEL_CHARACTER_PIXELS = 7  # about one character of the UI font at scale 1


def draw_message(layout, text: str, width_pixels: float, icon: str = "NONE") -> None:
    """All of `text`, wrapped to the sidebar's width (a label shows one line and cuts the rest)."""
    scale = bpy.context.preferences.view.ui_scale if bpy.context.preferences else 1.0
    column = layout.column(align=True)
    for index, line in enumerate(wrap(text, int(width_pixels / (LABEL_CHARACTER_PIXELS * scale)) - 4)):
        column.label(text=line, icon=icon if index == 0 else "BLANK1" if icon != "NONE" else "NONE")


def _format_seconds(seconds) -> str:
    if seconds is None:
        return "time left unknown"
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d} left"


def draw_notice(box, object_name: str, width_pixels: float) -> None:
    """The outcome of the object's last background action (features saved, segments applied)."""
    notice = STATE.notices.get(object_name)
    if notice and not STATE.errors.get(object_name):
        draw_message(box, notice, width_pixels, icon="INFO")


class CLICKGAUSS_PT_sidebar(bpy.types.Panel):
    bl_label = "ClickGauss"
    bl_idname = "CLICKGAUSS_PT_sidebar"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "ClickGauss"

    def draw(self, context):
        layout = self.layout
        width = context.region.width if context.region is not None else 300
        self.draw_backend(layout, width)
        layout.operator("import_scene.clickgauss_splats", text="Import Splats", icon="IMPORT")
        obj = context.active_object
        if not is_splat_object(obj):
            layout.label(text="Select a splat object", icon="INFO")
            return
        self.draw_training(layout, obj, width)
        self.draw_click(layout, context.scene.clickgauss)
        self.draw_editing(layout, context.scene.clickgauss)
        layout.operator("export_scene.clickgauss_splats", text="Export Splats", icon="EXPORT")

    @staticmethod
    def draw_backend(layout, width):
        box = layout.box()
        status = STATE.backend
        if status.state == "connected":
            device = status.health.get("device", "?")
            local = STATE.local_process is not None and STATE.local_process.poll() is None
            box.label(text=f"Backend connected ({device}{', started here' if local else ''})", icon="CHECKMARK")
        elif status.state in ("checking", "starting"):
            box.label(text=f"Backend {status.state}…", icon="SORTTIME")
        elif status.state == UNREACHABLE:
            box.label(text="Backend not reachable", icon="ERROR")
        else:
            box.label(text="Backend status unknown", icon="QUESTION")
        if status.message:
            draw_message(box, status.message, width)
        row = box.row(align=True)
        row.operator("clickgauss.check_backend", text="Check", icon="FILE_REFRESH")
        row.operator("clickgauss.start_backend", text="Start Local", icon="PLAY")
        row.operator("clickgauss.stop_backend", text="", icon="X")

    @staticmethod
    def draw_training(layout, obj, width):
        settings = obj.clickgauss
        box = layout.box()
        box.label(text=f"{obj.name}: {len(obj.data.vertices):,} Gaussians")
        box.prop(settings, "display_mode")
        box.prop(bpy.context.scene.clickgauss, "blending")
        box.prop(bpy.context.scene.clickgauss, "transparency")
        box.prop(settings, "dataset_path")
        if not settings.dataset_path:
            # Only the backend's answer says a dataset is in use; before that it is what was found on import.
            no_photos = no_photos_sentence(bpy.context, obj)
            if settings.dataset_found:
                draw_message(box, f"Dataset in use: {settings.dataset_found}", width)
            elif settings.dataset_nearby:
                draw_message(box, f"Dataset next to the file: {settings.dataset_nearby} (used when you train)", width)
            elif no_photos is not None:
                # No dataset: training renders views from the splat itself (or from the scene's cameras).
                draw_message(box, no_photos, width, icon="INFO")
                row = box.row(align=True)
                row.prop(settings, "view_count")
                row.prop(settings, "use_scene_cameras")
                box.operator("clickgauss.add_planned_views", icon="OUTLINER_OB_CAMERA")
        box.prop(settings, "masks_source")
        if settings.masks_source == "FOLDER":
            box.prop(settings, "masks_path")
        problem = masks_problem_of(obj)
        if problem:
            draw_message(box, problem, width, icon="ERROR")
        box.prop(settings, "preset")
        job = STATE.jobs.get(obj.name)
        if job is not None and job.get("state") in ACTIVE_JOB_STATES:
            total = job.get("total") or 0
            factor = (job.get("iteration") or 0) / total if total else 0.0
            stage = job.get("stage") or job.get("state")
            box.progress(factor=factor, type="BAR",
                         text=f"{stage} {job.get('iteration') or 0}/{total} · {_format_seconds(job.get('eta_seconds'))}")
            box.operator("clickgauss.cancel_training", icon="CANCEL")
        else:
            row = box.row(align=True)
            row.operator("clickgauss.train_features", icon="PLAY")
            row.operator("clickgauss.connect_scene", text="", icon="LINKED")
            row = box.row(align=True)
            row.operator("clickgauss.save_features", icon="FILE_TICK")
            row.operator("clickgauss.load_features", icon="FILE_FOLDER")
            if has_stored_field(obj):
                box.label(text="Features stored in the .blend: Shift+click to select", icon="CHECKMARK")
            elif settings.has_features:
                box.label(text="Features on the backend, not yet in the .blend", icon="INFO")
                box.operator("clickgauss.fetch_field", icon="IMPORT")
            elif job is not None:
                box.label(text=f"Training {job.get('state')}", icon="INFO")
            if job is not None and job.get("state") in RESUMABLE_STATES:
                box.operator("clickgauss.resume_training", icon="RECOVER_LAST")
        error = STATE.errors.get(obj.name)
        if error:
            draw_message(box, error, width, icon="ERROR")
        draw_notice(box, obj.name, width)

    @staticmethod
    def draw_click(layout, scene_settings):
        box = layout.box()
        box.row().prop(scene_settings, "level", expand=True)
        box.row().prop(scene_settings, "click_mode", expand=True)
        row = box.row(align=True)
        row.prop(scene_settings, "use_threshold", text="")
        # Always live: it shows the threshold the last click used, and moving it re-thresholds that click.
        row.prop(scene_settings, "threshold", text="Threshold" if scene_settings.use_threshold else "Threshold (auto)")

    @staticmethod
    def draw_editing(layout, scene_settings):
        box = layout.box()
        column = box.column(align=True)
        row = column.row(align=True)
        row.operator("clickgauss.invert_selection", text="Invert")
        row.operator("clickgauss.clear_selection", text="None")
        row = column.row(align=True)
        row.operator("clickgauss.grow_selection", text="Grow to Coarse").level = COARSE
        row = column.row(align=True)
        row.operator("clickgauss.hide_selected", text="Hide")
        row.operator("clickgauss.isolate_selected", text="Isolate")
        row.operator("clickgauss.reveal", text="Reveal")
        row = column.row(align=True)
        row.operator("clickgauss.delete_selected", text="Delete", icon="TRASH")
        row.operator("clickgauss.separate_selected", text="Separate")
        row = box.row(align=True)
        row.prop(scene_settings, "recolor", text="")
        row.prop(scene_settings, "recolor_zero_rest")
        box.operator("clickgauss.recolor_selected", icon="BRUSH_DATA")
        box.operator("clickgauss.segment_everything", icon="OUTLINER_OB_POINTCLOUD")


CLASSES = (CLICKGAUSS_PT_sidebar,)


register, unregister = bpy.utils.register_classes_factory(CLASSES)
