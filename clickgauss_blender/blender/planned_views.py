"""Training views of a splat without photos, on the Blender side: the scene's cameras as known
poses, the up direction from the object, and the planned views added as cameras to look through.

Planning itself is `clickgauss_core.view_planning` (pure numpy), the same planner the backend
uses; the backend may still move a camera forward past a surface that hides the content's centre
(it checks small renders), which Blender cannot render here.
"""

from __future__ import annotations

import bpy
from mathutils import Matrix
import numpy as np

from clickgauss_core import blender_view, wire
from clickgauss_core.cameras import OPENGL_TO_OPENCV
from clickgauss_core.view_planning import plan_views, views_sentence

from .mesh_io import cloud_from_object

VIEWS_COLLECTION = "ClickGauss Views"
CAMERA_RESOLUTION = 256  # longer side, for the wire cameras of scene cameras


def local_up(obj) -> list[float]:
    """World +Z in the object's own (PLY) frame: the up direction of the planned views."""
    rotation = np.array(obj.matrix_world.to_3x3().normalized())
    up = np.linalg.inv(rotation) @ np.array([0.0, 0.0, 1.0])
    return (up / np.linalg.norm(up)).tolist()


def scene_camera_dicts(context, obj) -> list[dict]:
    """Every camera object of the scene as a wire camera in the splat's frame."""
    depsgraph = context.evaluated_depsgraph_get()
    render = context.scene.render
    scale = CAMERA_RESOLUTION / max(render.resolution_x, render.resolution_y)
    width = max(8, round(render.resolution_x * scale))
    height = max(8, round(render.resolution_y * scale))
    cameras = []
    for camera_object in sorted((o for o in context.scene.objects if o.type == "CAMERA"), key=lambda o: o.name):
        projection = camera_object.calc_matrix_camera(depsgraph, x=width, y=height,
                                                      scale_x=render.pixel_aspect_x, scale_y=render.pixel_aspect_y)
        camera = blender_view.camera_from_blender_view(np.array(camera_object.matrix_world.inverted()), np.array(projection),
                                               width, height, np.array(obj.matrix_world))
        camera.name = f"{bpy.path.clean_name(camera_object.name)}.png"
        cameras.append(wire.camera_to_dict(camera))
    return cameras


def views_request(context, obj) -> dict:
    """The `views` field of the training request for the object's settings."""
    settings = obj.clickgauss
    views = {"count": settings.view_count, "up": local_up(obj)}
    if settings.use_scene_cameras:
        cameras = scene_camera_dicts(context, obj)
        if not cameras:
            raise ValueError("Use Scene Cameras is on, but the scene has no camera: add a camera, or turn "
                             "Use Scene Cameras off")
        views.update(source="poses", cameras=cameras)
    return views


def no_photos_sentence(context, obj) -> str | None:
    """What the panel says when the object's splat has no photos (None when it has a dataset)."""
    settings = obj.clickgauss
    if settings.dataset_path or settings.dataset_found or settings.dataset_nearby:
        return None
    if settings.use_scene_cameras:
        count = sum(1 for o in context.scene.objects if o.type == "CAMERA")
        return views_sentence("poses", count)
    return views_sentence("planned", settings.view_count)


def add_planned_cameras(context, obj) -> bpy.types.Collection:
    """The planned views as camera objects in the "ClickGauss Views" collection (replaced each time)."""
    cloud = cloud_from_object(obj)
    cameras, _ = plan_views(cloud.positions, cloud.opacities, count=obj.clickgauss.view_count, up=local_up(obj))
    collection = bpy.data.collections.get(VIEWS_COLLECTION)
    if collection is None:
        collection = bpy.data.collections.new(VIEWS_COLLECTION)
        context.scene.collection.children.link(collection)
    for old in list(collection.objects):
        data = old.data
        bpy.data.objects.remove(old)
        if data is not None and data.users == 0:
            bpy.data.cameras.remove(data)
    object_matrix = np.array(obj.matrix_world)
    for camera in cameras:
        data = bpy.data.cameras.new(camera.name)
        data.sensor_fit = "HORIZONTAL"
        data.angle_x = 2.0 * np.arctan(camera.width / 2.0 / camera.fx)
        camera_object = bpy.data.objects.new(camera.name.rsplit(".", 1)[0], data)
        # OpenCV camera -> Blender camera (x right, y up, looking down -z), then into the world.
        camera_object.matrix_world = Matrix((object_matrix @ camera.camera_to_world @ OPENGL_TO_OPENCV).tolist())
        collection.objects.link(camera_object)
    return collection


class CLICKGAUSS_OT_add_planned_views(bpy.types.Operator):
    """Add the views training would render (no photos) as cameras in the "ClickGauss Views" collection"""
    bl_idname = "clickgauss.add_planned_views"
    bl_label = "Add Planned Views as Cameras"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        from .mesh_io import is_splat_object
        return context.active_object is not None and is_splat_object(context.active_object)

    def execute(self, context):
        obj = context.active_object
        collection = add_planned_cameras(context, obj)
        self.report({"INFO"}, f"{len(collection.objects)} cameras in '{collection.name}'")
        return {"FINISHED"}


CLASSES = (CLICKGAUSS_OT_add_planned_views,)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister():
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
