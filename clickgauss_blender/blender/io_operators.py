"""File > Import / Export > 3D Gaussian Splatting, and the functions behind them (tests and the
sidebar call the functions directly)."""

from __future__ import annotations

import os

import bpy
import numpy as np
from bpy.props import BoolProperty, FloatProperty, StringProperty
from bpy_extras.io_utils import ExportHelper, ImportHelper, axis_conversion, orientation_helper
from clickgauss_core.datasets import find_dataset_for_ply
from clickgauss_core.errors import ClickGaussInputError
from clickgauss_core.ply import read_splat_file, write_gaussian_ply
from clickgauss_core.spz import properties_spz_drops, write_spz
from clickgauss_core.transforms import bake_transform

from .display import ensure_display
from .mesh_io import cloud_from_object, create_splat_object, import_frame, is_splat_object

# 3DGS scenes come from COLMAP/OpenCV-style reconstructions: y points down, cameras look along +z.
DEFAULT_FILE_UP = "-Y"
DEFAULT_FILE_FORWARD = "Z"
IDENTITY_TOLERANCE = 1e-6


def file_to_blender_matrix(axis_forward: str = DEFAULT_FILE_FORWARD, axis_up: str = DEFAULT_FILE_UP):
    """4x4 rotation taking the file's axes to Blender's Z-up."""
    return axis_conversion(from_forward=axis_forward, from_up=axis_up).to_4x4()


def import_splats(context, filepath: str, z_up: bool = True, axis_forward: str = DEFAULT_FILE_FORWARD,
                  axis_up: str = DEFAULT_FILE_UP, point_scale: float = 1.0) -> bpy.types.Object:
    """Import a .ply (INRIA or SuperSplat compressed), .splat or .spz file as a new splat object
    (made active and selected). Z-up turns the object, never the data."""
    cloud = read_splat_file(filepath)
    matrix = np.array(file_to_blender_matrix(axis_forward, axis_up)) if z_up else np.eye(4)
    name = os.path.splitext(os.path.basename(filepath))[0] or "splats"
    cloud.source = os.path.abspath(filepath)
    obj = create_splat_object(context, cloud, name, matrix)
    ensure_display(obj, point_scale)
    obj.clickgauss.dataset_found = find_dataset_for_ply(cloud.source) or ""
    for other in context.view_layer.objects:
        if other is not None:  # entries of just-removed objects until the view layer resyncs
            other.select_set(False)
    obj.select_set(True)
    context.view_layer.objects.active = obj
    return obj


def export_matrix(obj, keep_file_axes: bool = True) -> np.ndarray:
    """The transform baked into the exported Gaussians: the object's placement relative to the
    frame it was imported in (identity for an untouched import), or its full world matrix."""
    world = np.asarray(obj.matrix_world, dtype=np.float64)
    if keep_file_axes:
        return np.linalg.inv(import_frame(obj)) @ world
    return world


def export_splats(obj, filepath: str, keep_file_axes: bool = True) -> list[str]:
    """Write the object's remaining Gaussians (edits applied, transform baked) as an INRIA-layout
    PLY with every original property, or, for a `.spz` path, as Niantic SPZ (the standard
    properties, quantised); returns warnings for the user."""
    from mathutils import Matrix

    if not is_splat_object(obj):
        raise ValueError(f"'{obj.name if obj else None}' is not a Gaussian splat object (import one first)")
    cloud = cloud_from_object(obj)
    matrix = export_matrix(obj, keep_file_axes)
    warnings: list[str] = []
    # Blender keeps matrices in float32: an untouched Z-up import comes back identity only to ~1e-7.
    if not np.allclose(matrix, np.eye(4), atol=IDENTITY_TOLERANCE):
        _, rotation, scale = Matrix([list(row) for row in matrix]).decompose()
        cloud, warnings = bake_transform(cloud, matrix, tuple(rotation), tuple(scale))
    if filepath.lower().endswith(".spz"):
        dropped = properties_spz_drops(cloud)
        if dropped:
            warnings.append(f"SPZ has no place for {len(dropped)} of the scene's properties, not written: "
                            f"{', '.join(dropped[:8])}{' ...' if len(dropped) > 8 else ''} (export as PLY to keep them)")
        write_spz(filepath, cloud)
    else:
        write_gaussian_ply(filepath, cloud)
    return warnings


@orientation_helper(axis_forward=DEFAULT_FILE_FORWARD, axis_up=DEFAULT_FILE_UP)
class CLICKGAUSS_OT_import_splats(bpy.types.Operator, ImportHelper):
    """Import a 3D Gaussian Splatting scene (.ply, compressed .ply, .splat, .spz) as a point mesh"""
    bl_idname = "import_scene.clickgauss_splats"
    bl_label = "Import 3D Gaussian Splatting"
    bl_options = {"REGISTER", "UNDO", "PRESET"}

    filename_ext = ".ply"
    filter_glob: StringProperty(default="*.ply;*.splat;*.spz", options={"HIDDEN"})
    z_up: BoolProperty(name="Convert to Z-up", default=True,
                       description="Turn the object (not the data) so the scene's up axis becomes Blender's Z")
    point_scale: FloatProperty(name="Point Scale", default=1.0, min=0.0,
                               description="Display size of a splat relative to its largest Gaussian axis")

    def execute(self, context):
        try:
            obj = import_splats(context, self.filepath, self.z_up, self.axis_forward, self.axis_up, self.point_scale)
        except ClickGaussInputError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Imported {len(obj.data.vertices):,} Gaussians from {os.path.basename(self.filepath)}")
        return {"FINISHED"}


class _ExportSplats(ExportHelper):
    """What the PLY and the SPZ export share; the writer follows the file's extension."""
    keep_file_axes: BoolProperty(
        name="Keep Original Axes", default=True,
        description="Write in the frame the scene was imported in (undo the Z-up turn); "
                    "off: write in Blender's world frame")

    @classmethod
    def poll(cls, context):
        return is_splat_object(context.active_object)

    def execute(self, context):
        try:
            warnings = export_splats(context.active_object, self.filepath, self.keep_file_axes)
        except (ValueError, OSError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        for warning in warnings:
            self.report({"WARNING"}, warning)
        self.report({"INFO"}, f"Exported {len(context.active_object.data.vertices):,} Gaussians to {self.filepath}")
        return {"FINISHED"}


def _export_operator(class_name: str, idname: str, label: str, extension: str, doc: str):
    """File > Export operator writing `extension` (export_splats picks the writer by it)."""
    namespace = {"__doc__": doc, "bl_idname": idname, "bl_label": label, "filename_ext": extension,
                 "__annotations__": {"filter_glob": StringProperty(default="*" + extension, options={"HIDDEN"})}}
    operator = type(class_name, (bpy.types.Operator, _ExportSplats), namespace)
    return orientation_helper(axis_forward=DEFAULT_FILE_FORWARD, axis_up=DEFAULT_FILE_UP)(operator)


CLICKGAUSS_OT_export_splats = _export_operator(
    "CLICKGAUSS_OT_export_splats", "export_scene.clickgauss_splats", "Export 3D Gaussian Splatting", ".ply",
    "Export the active splat object as a 3D Gaussian Splatting PLY (INRIA layout)")
CLICKGAUSS_OT_export_spz = _export_operator(
    "CLICKGAUSS_OT_export_spz", "export_scene.clickgauss_spz", "Export 3D Gaussian Splatting (SPZ)", ".spz",
    "Export the active splat object as Niantic SPZ (compressed: about a tenth of the PLY's size)")


def _menu_import(self, context):
    self.layout.operator(CLICKGAUSS_OT_import_splats.bl_idname, text="3D Gaussian Splatting (.ply, .splat, .spz)")


def _menu_export(self, context):
    self.layout.operator(CLICKGAUSS_OT_export_splats.bl_idname, text="3D Gaussian Splatting (.ply)")
    self.layout.operator(CLICKGAUSS_OT_export_spz.bl_idname, text="3D Gaussian Splatting (.spz)")


CLASSES = (CLICKGAUSS_OT_import_splats, CLICKGAUSS_OT_export_splats, CLICKGAUSS_OT_export_spz)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.TOPBAR_MT_file_import.append(_menu_import)
    bpy.types.TOPBAR_MT_file_export.append(_menu_export)


def unregister():
    bpy.types.TOPBAR_MT_file_export.remove(_menu_export)
    bpy.types.TOPBAR_MT_file_import.remove(_menu_import)
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
