"""Blender cameras and headless renders of splat objects: a `clickgauss_core` Camera (OpenCV
axes, in a splat object's own frame) as a Blender camera object, and the render settings under
which the add-on's display shows base colours as they are (Standard view transform, unlit,
a plain background, a 1.5-pixel filter)."""

from __future__ import annotations

import bpy
import numpy as np
from mathutils import Matrix
from clickgauss_core.cameras import OPENGL_TO_OPENCV, Camera

SENSOR_WIDTH_MM = 36.0


def camera_object(name: str, camera: Camera, frame_to_world=None, collection=None) -> bpy.types.Object:
    """A new Blender camera showing what `camera` shows. `frame_to_world`: the matrix_world of the
    splat object whose frame `camera` is in (identity: world). Perspective, square pixels."""
    if camera.projection != "perspective":
        raise ValueError(f"camera '{camera.name}': only perspective cameras become Blender cameras")
    data = bpy.data.cameras.new(name)
    data.sensor_fit = "HORIZONTAL"
    data.sensor_width = SENSOR_WIDTH_MM
    data.lens = camera.fx * SENSOR_WIDTH_MM / camera.width
    longest = max(camera.width, camera.height)
    data.shift_x = (camera.width / 2 - camera.cx) / longest
    data.shift_y = (camera.cy - camera.height / 2) / longest
    data.clip_start, data.clip_end = camera.near, camera.far
    obj = bpy.data.objects.new(name, data)
    frame = np.eye(4) if frame_to_world is None else np.asarray(frame_to_world, dtype=np.float64)
    # OpenCV camera -> frame, then Blender's camera axes (y up, looking down -z).
    obj.matrix_world = Matrix((frame @ camera.camera_to_world @ OPENGL_TO_OPENCV).tolist())
    (collection or bpy.context.scene.collection).objects.link(obj)
    return obj


def set_render_size(scene, camera: Camera) -> None:
    scene.render.resolution_x, scene.render.resolution_y = camera.width, camera.height
    scene.render.resolution_percentage = 100
    scene.render.pixel_aspect_x = scene.render.pixel_aspect_y = 1.0


def faithful_color_settings(scene, background=(0.0, 0.0, 0.0)) -> None:
    """Render settings under which displayed colours come out as the splat's own: splats blended
    as trained (`display.apply_blending`: sRGB values under the Raw view transform, as 3DGS
    composites) and sorted from the camera (`display.apply_transparency`), no look, exposure 0; a world of the given plain colour; Blender's 1.5-pixel
    pixel filter (a narrower one measured worse; the display widens quads like the rasterizers'
    low-pass itself)."""
    scene.clickgauss.blending = "TRAINED"
    scene.clickgauss.transparency = "SORTED"  # through the camera: exact, noise-free
    from .display import apply_blending, apply_transparency
    apply_blending(scene)  # also when they already were (objects imported since)
    apply_transparency(scene)
    scene.view_settings.look = "None"
    scene.view_settings.exposure = 0.0
    scene.view_settings.gamma = 1.0
    scene.display_settings.display_device = "sRGB"
    scene.render.filter_size = 1.5
    # Cycles stops at 8 transparent surfaces by default: splats overlap far more (then they
    # would turn opaque); EEVEE's dithered transparency has no such limit.
    scene.cycles.transparent_max_bounces = 256
    world = scene.world or bpy.data.worlds.new("ClickGauss Background")
    scene.world = world
    if bpy.app.version < (5, 0):
        world.use_nodes = True
    background_node = next(node for node in world.node_tree.nodes if node.type == "BACKGROUND")
    # The Raw view shows the world's colour as it is: the sRGB background colour itself.
    background_node.inputs["Color"].default_value = (*background, 1.0)
    background_node.inputs["Strength"].default_value = 1.0


def render_to_file(scene, path: str, engine: str = "BLENDER_EEVEE_NEXT", samples: int = 16) -> None:
    """Render the scene's active camera headless into an 8-bit RGB PNG."""
    scene.render.engine = engine_name(engine)
    if scene.render.engine.startswith("BLENDER_EEVEE"):
        scene.eevee.taa_render_samples = samples
    elif scene.render.engine == "CYCLES":
        scene.cycles.samples = samples
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGB"
    scene.render.image_settings.color_depth = "8"
    scene.render.film_transparent = False
    scene.render.filepath = path
    bpy.ops.render.render(write_still=True)


def engine_name(engine: str) -> str:
    """EEVEE is BLENDER_EEVEE_NEXT in 4.2-4.4 and BLENDER_EEVEE again from 5.0."""
    available = bpy.types.RenderSettings.bl_rna.properties["engine"].enum_items.keys()
    if engine.startswith("BLENDER_EEVEE"):
        return next(name for name in ("BLENDER_EEVEE_NEXT", "BLENDER_EEVEE") if name in available)
    return engine
