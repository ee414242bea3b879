"""The "ClickGauss" tab of the 3D viewport's sidebar."""

from __future__ import annotations

import bpy

from .mesh_io import is_splat_object
from .views import no_photos_sentence
from .session import STATE

ACTIVE_JOB_STATES = ("opening", "queued", "running")


def _format_seconds(seconds) -> str:
    if seconds is None:
        return "time left unknown"
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d} left"


def draw_notice(box, object_name: str) -> None:
    """The outcome of the object's last background action (features saved, segments applied)."""
    notice = STATE.notices.get(object_name)
    if notice and not STATE.errors.get(object_name):
        box.label(text=notice[:160], icon="INFO")


class CLICKGAUSS_PT_sidebar(bpy.types.Panel):
    bl_label = "ClickGauss"
    bl_idname = "CLICKGAUSS_PT_sidebar"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "ClickGauss"

    def draw(self, context):
        layout = self.layout
        self.draw_backend(layout)
        layout.operator("import_scene.clickgauss_splats", text="Import Splats", icon="IMPORT")
        obj = context.active_object
        if not is_splat_object(obj):
            layout.label(text="Select a splat object", icon="INFO")
            return
        self.draw_training(layout, obj)
        self.draw_click(layout, context.scene.clickgauss)
        self.draw_editing(layout, context.scene.clickgauss)
        layout.operator("export_scene.clickgauss_splats", text="Export Splats", icon="EXPORT")

    @staticmethod
    def draw_backend(layout):
        box = layout.box()
        status = STATE.backend
        if status.state == "connected":
            device = status.health.get("device", "?")
            box.label(text=f"Backend connected ({device})", icon="CHECKMARK")
        elif status.state in ("checking", "starting"):
            box.label(text=f"Backend {status.state}…", icon="SORTTIME")
        elif status.state == "unreachable":
            box.label(text="Backend not reachable", icon="ERROR")
        else:
            box.label(text="Backend status unknown", icon="QUESTION")
        if status.message:
            box.label(text=status.message[:120])
        row = box.row(align=True)
        row.operator("clickgauss.check_backend", text="Check", icon="FILE_REFRESH")
        row.operator("clickgauss.start_backend", text="Start Local", icon="PLAY")
        row.operator("clickgauss.stop_backend", text="", icon="X")

    @staticmethod
    def draw_training(layout, obj):
        settings = obj.clickgauss
        box = layout.box()
        box.label(text=f"{obj.name}: {len(obj.data.vertices):,} Gaussians")
        box.prop(settings, "dataset_path")
        if settings.dataset_found and not settings.dataset_path:
            box.label(text=f"Dataset found: {settings.dataset_found}")
        no_photos = no_photos_sentence(bpy.context, obj)
        if no_photos is not None:
            box.label(text=no_photos, icon="INFO")
            row = box.row(align=True)
            row.prop(settings, "view_count")
            row.prop(settings, "use_scene_cameras")
            box.operator("clickgauss.add_planned_views", icon="OUTLINER_OB_CAMERA")
        box.prop(settings, "masks_source")
        if settings.masks_source == "FOLDER":
            box.prop(settings, "masks_path")
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
            if settings.has_features:
                box.label(text="Features ready: Shift+click to select", icon="CHECKMARK")
            elif job is not None:
                box.label(text=f"Training {job.get('state')}", icon="INFO")
            if job is not None and job.get("state") in ("cancelled", "failed", "interrupted"):
                box.operator("clickgauss.resume_training", icon="RECOVER_LAST")
        error = STATE.errors.get(obj.name)
        if error:
            box.label(text=error[:160], icon="ERROR")
        draw_notice(box, obj.name)

    @staticmethod
    def draw_click(layout, scene_settings):
        box = layout.box()
        box.row().prop(scene_settings, "level", expand=True)
        box.row().prop(scene_settings, "click_mode", expand=True)
        row = box.row(align=True)
        row.prop(scene_settings, "use_threshold", text="")
        sub = row.row()
        sub.enabled = scene_settings.use_threshold
        sub.prop(scene_settings, "threshold")

    @staticmethod
    def draw_editing(layout, scene_settings):
        box = layout.box()
        column = box.column(align=True)
        row = column.row(align=True)
        row.operator("clickgauss.invert_selection", text="Invert")
        row.operator("clickgauss.clear_selection", text="None")
        row = column.row(align=True)
        row.operator("clickgauss.grow_selection", text="Grow to Coarse").level = "coarse"
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
