"""Viewports built from known matrices for the click tests: a Blender camera object gives the
projection (Blender's own `calc_matrix_camera`), its inverse world matrix the view matrix, as
region_3d.window_matrix / view_matrix would be. `visible_pixel` finds, independently of the
backend's renderer, a region pixel where a given set of Gaussians is in front (a z-buffer of the
Gaussians drawn as discs)."""

from __future__ import annotations

import bpy
import numpy as np
from mathutils import Vector


def viewport_matrices(eye, target, width: int, height: int, orthographic: bool = False,
                      fov_deg: float = 50.0, ortho_scale: float = 2.0):
    """(view_matrix, window_matrix) of a viewport at `eye` looking at `target` (world frame)."""
    data = bpy.data.cameras.new("test-view")
    data.type = "ORTHO" if orthographic else "PERSP"
    data.lens_unit = "FOV"
    data.angle = np.radians(fov_deg)
    data.ortho_scale = ortho_scale
    data.clip_start, data.clip_end = 0.05, 100.0
    camera = bpy.data.objects.new("test-view", data)
    direction = Vector(target) - Vector(eye)
    camera.matrix_world = direction.to_track_quat("-Z", "Y").to_matrix().to_4x4()
    camera.matrix_world.translation = Vector(eye)
    bpy.context.scene.collection.objects.link(camera)
    bpy.context.view_layer.update()
    window = np.array(camera.calc_matrix_camera(bpy.context.evaluated_depsgraph_get(), x=width, y=height))
    view = np.array(camera.matrix_world.inverted())
    bpy.data.objects.remove(camera)
    bpy.data.cameras.remove(data)
    return view, window


def project_to_region(points_world: np.ndarray, view: np.ndarray, window: np.ndarray, width: int, height: int):
    """World points -> Blender region coordinates (origin bottom-left) and view depth."""
    homogeneous = np.concatenate([points_world, np.ones((len(points_world), 1))], axis=1)
    in_view = homogeneous @ view.T
    clip = in_view @ window.T
    ndc = clip[:, :3] / clip[:, 3:4]
    region = np.stack([(ndc[:, 0] + 1) / 2 * width, (ndc[:, 1] + 1) / 2 * height], axis=1)
    return region, -in_view[:, 2]


def visible_pixel(points_world, radii_world, is_target, view, window, width, height) -> tuple[int, int]:
    """A region pixel (bottom-left origin) deep inside the part of the image where the target's
    Gaussians are in front: a z-buffer of the Gaussians drawn as discs of their largest axis
    (`radii_world`), then the target's area eroded until one more step would empty it."""
    region, depth = project_to_region(points_world, view, window, width, height)
    perspective = window[3, 3] == 0.0
    pixels_per_unit = window[0, 0] * width / 2 / (depth if perspective else 1.0)
    radii = np.maximum(1.0, radii_world * pixels_per_unit)
    owner_depth = np.full((height, width), np.inf)
    owner_target = np.zeros((height, width), dtype=bool)
    for i in np.flatnonzero(depth > 0):
        x0, x1 = int(max(0, region[i, 0] - radii[i])), int(min(width, region[i, 0] + radii[i] + 1))
        y0, y1 = int(max(0, region[i, 1] - radii[i])), int(min(height, region[i, 1] + radii[i] + 1))
        if x0 >= x1 or y0 >= y1:
            continue
        ys, xs = np.mgrid[y0:y1, x0:x1]
        inside = (xs + 0.5 - region[i, 0]) ** 2 + (ys + 0.5 - region[i, 1]) ** 2 <= radii[i] ** 2
        nearer = inside & (depth[i] < owner_depth[y0:y1, x0:x1])
        owner_depth[y0:y1, x0:x1][nearer] = depth[i]
        owner_target[y0:y1, x0:x1][nearer] = is_target[i]
    area = owner_target
    assert area.any(), "the target is not visible from this viewport"
    while True:
        eroded = area.copy()
        eroded[1:, :] &= area[:-1, :]
        eroded[:-1, :] &= area[1:, :]
        eroded[:, 1:] &= area[:, :-1]
        eroded[:, :-1] &= area[:, 1:]
        eroded[[0, -1], :] = False
        eroded[:, [0, -1]] = False
        if not eroded.any():
            break
        area = eroded
    deepest = np.argwhere(area)
    row, col = deepest[np.argmin(((deepest - deepest.mean(axis=0)) ** 2).sum(axis=1))]
    return int(col), int(row)
