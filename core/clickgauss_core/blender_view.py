"""Blender's viewport as a `Camera` and back (pure numpy, no bpy): the math of a click in Blender.

`camera_from_blender_view(view_matrix, window_matrix, width, height, object_matrix_world)` is the
camera, in the splat object's local frame (= the PLY's), that a 3D viewport region shows;
`blender_region_to_pixel` turns a region pixel (origin bottom-left) into that camera's pixel
(origin top-left, centres at +0.5); `blender_view_from_camera` is the inverse, to drive the click
path from a known camera (demo, tests).
"""

from __future__ import annotations

import numpy as np

from .cameras import OPENGL_TO_OPENCV, Camera


def camera_from_blender_view(view_matrix, projection_matrix, width: int, height: int,
                             object_matrix_world=None) -> Camera:
    """A `Camera` in an object's local frame from a Blender viewport (pure numpy, no bpy).

    view_matrix:       region_3d.view_matrix, world -> view, OpenGL axes (x right, y up, -z forward).
    projection_matrix: region_3d.window_matrix (OpenGL clip matrix); perspective or orthographic
                       is read from its last row. Off-centre (shifted) frusta are kept as cx, cy.
    width, height:     the region size in pixels.
    object_matrix_world: the splat object's matrix_world (local -> world); the returned camera
                       maps the object's local coordinates (= the PLY's) to pixels. A uniform
                       scale is folded into the camera; a non-uniform or mirroring one cannot
                       be (ValueError: apply the scale to the object first).
    Pixels of the result have their origin top-left; Blender's region y runs bottom-up, see
    `blender_region_to_pixel`.
    """
    view = np.asarray(view_matrix, dtype=np.float64).reshape(4, 4)
    proj = np.asarray(projection_matrix, dtype=np.float64).reshape(4, 4)
    model = np.eye(4) if object_matrix_world is None else np.asarray(object_matrix_world, dtype=np.float64).reshape(4, 4)
    if not (np.isfinite(view).all() and np.isfinite(proj).all() and np.isfinite(model).all()):
        raise ValueError("camera_from_blender_view: matrices contain NaN/inf")
    if width <= 0 or height <= 0:
        raise ValueError(f"camera_from_blender_view: region size must be positive, got {width}x{height}")
    local_to_view = view @ model
    linear = local_to_view[:3, :3]
    column_norms = np.linalg.norm(linear, axis=0)
    scale = float(column_norms.mean())
    rotation = linear / scale
    if (not np.allclose(column_norms, scale, rtol=1e-4) or not np.allclose(rotation.T @ rotation, np.eye(3), atol=1e-4)
            or np.linalg.det(rotation) < 0):
        raise ValueError("the object's transform has a non-uniform, sheared or mirroring scale: "
                         "apply the scale (Ctrl+A) before selecting")
    rigid = np.eye(4)
    rigid[:3, :3], rigid[:3, 3] = rotation, local_to_view[:3, 3] / scale
    world_to_camera = OPENGL_TO_OPENCV @ rigid
    if np.allclose(proj[3], [0.0, 0.0, -1.0, 0.0]):
        projection = "perspective"
        fx, fy = width / 2 * proj[0, 0], height / 2 * proj[1, 1]
        cx, cy = width / 2 * (1 - proj[0, 2]), height / 2 * (1 + proj[1, 2])
        near, far = proj[2, 3] / (proj[2, 2] - 1), proj[2, 3] / (proj[2, 2] + 1)
    elif np.allclose(proj[3], [0.0, 0.0, 0.0, 1.0]):
        projection = "orthographic"
        # Camera-space units shrink by `scale`, so pixels per unit grow by it.
        fx, fy = width / 2 * proj[0, 0] * scale, height / 2 * proj[1, 1] * scale
        cx, cy = width / 2 * (1 + proj[0, 3]), height / 2 * (1 - proj[1, 3])
        near, far = (proj[2, 3] + 1) / proj[2, 2], (proj[2, 3] - 1) / proj[2, 2]
    else:
        raise ValueError(f"projection matrix is neither perspective nor orthographic (last row {proj[3].tolist()})")
    return Camera(world_to_camera=world_to_camera, width=width, height=height, fx=fx, fy=fy, cx=cx, cy=cy,
                  projection=projection, near=near / scale, far=far / scale, name="blender-view")


def blender_region_to_pixel(x: float, y: float, height: int) -> tuple[float, float]:
    """Blender region coordinates of a pixel (origin bottom-left, integer pixel) -> Camera pixel
    coordinates of its centre (origin top-left, centres at +0.5)."""
    return float(x) + 0.5, float(height) - float(y) - 0.5


def blender_view_from_camera(camera: Camera, object_matrix_world=None) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of `camera_from_blender_view`: (view_matrix, window_matrix) of a Blender viewport
    that shows what `camera` (in the object's local frame) sees, for an object placed at
    `object_matrix_world`. Used to drive the add-on's click path from a known camera (demo, tests)."""
    model = np.eye(4) if object_matrix_world is None else np.asarray(object_matrix_world, dtype=np.float64).reshape(4, 4)
    view = OPENGL_TO_OPENCV @ camera.world_to_camera @ np.linalg.inv(model)
    width, height, near, far = camera.width, camera.height, camera.near, camera.far
    window = np.zeros((4, 4))
    window[0, 0], window[1, 1] = 2 * camera.fx / width, 2 * camera.fy / height
    if camera.projection == "perspective":
        window[0, 2], window[1, 2] = 1 - 2 * camera.cx / width, 2 * camera.cy / height - 1
        window[2, 2], window[2, 3] = -(far + near) / (far - near), -2 * far * near / (far - near)
        window[3, 2] = -1.0
    else:
        window[0, 3], window[1, 3] = 2 * camera.cx / width - 1, 1 - 2 * camera.cy / height
        window[2, 2], window[2, 3] = -2 / (far - near), -(far + near) / (far - near)
        window[3, 3] = 1.0
    return view, window
