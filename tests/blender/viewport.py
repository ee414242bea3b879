"""Viewports built from known matrices for the click tests: a Blender camera object gives the
projection (Blender's own `calc_matrix_camera`), its inverse world matrix the view matrix, as
region_3d.window_matrix / view_matrix would be. `visible_pixel` finds, independently of the
backend's renderer, a region pixel where a given set of Gaussians is in front (a coarse z-buffer
of the Gaussian centres)."""

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


def visible_pixel(points_world, is_target, view, window, width, height, cell: int = 8) -> tuple[int, int]:
    """A region pixel (bottom-left origin) at the centre of a cell whose nearest Gaussian centres
    belong to the target, surrounded by target cells, nearest the target's projected centre."""
    region, depth = project_to_region(points_world, view, window, width, height)
    cols, rows = width // cell, height // cell
    cx, cy = (region[:, 0] // cell).astype(int), (region[:, 1] // cell).astype(int)
    inside = (depth > 0) & (cx >= 0) & (cx < cols) & (cy >= 0) & (cy < rows)
    owner = np.full((rows, cols), -1)
    nearest = np.full((rows, cols), np.inf)
    for i in np.flatnonzero(inside)[np.argsort(-depth[inside])]:  # far to near: the nearest wins
        owner[cy[i], cx[i]], nearest[cy[i], cx[i]] = i, depth[i]
    target_cell = np.zeros((rows, cols), dtype=bool)
    target_cell[owner >= 0] = is_target[owner[owner >= 0]]
    interior = target_cell.copy()
    interior[1:-1, 1:-1] &= (target_cell[:-2, 1:-1] & target_cell[2:, 1:-1] & target_cell[1:-1, :-2]
                             & target_cell[1:-1, 2:])
    interior[[0, -1], :] = False
    interior[:, [0, -1]] = False
    candidates = np.argwhere(interior)
    assert len(candidates), "the target is not visible from this viewport"
    centre = region[is_target & inside].mean(axis=0) / cell
    row, col = candidates[np.argmin(((candidates[:, ::-1] + 0.5 - centre) ** 2).sum(axis=1))]
    return int(col * cell + cell // 2), int(row * cell + cell // 2)
