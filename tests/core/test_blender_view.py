"""Camera <-> Blender viewport matrices: `blender_view_from_camera` inverts `camera_from_blender_view`."""

import numpy as np
import pytest

from clickgauss_core.cameras import Camera
from clickgauss_core.blender_view import blender_view_from_camera, camera_from_blender_view


def _object_matrix(angle: float, translation, scale: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    matrix = np.eye(4)
    matrix[:3, :3] = scale * np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    matrix[:3, 3] = translation
    return matrix


@pytest.mark.parametrize("projection", ["perspective", "orthographic"])
@pytest.mark.parametrize("placed", [False, True])
def test_round_trip_keeps_every_pixel_of_the_camera(projection, placed):
    camera = Camera.look_at((2.0, -3.0, 1.5), (0.1, 0.2, 0.3), width=160, height=120, fx=140.0, fy=141.0,
                            cx=81.0, cy=58.5, projection=projection, near=0.1, far=50.0)
    model = _object_matrix(0.7, (1.0, -2.0, 0.5), 1.5) if placed else None
    view, window = blender_view_from_camera(camera, model)
    again = camera_from_blender_view(view, window, camera.width, camera.height, model)
    points = np.random.default_rng(0).uniform(-0.5, 0.5, size=(50, 3))
    uv, depth = camera.project(points)
    uv_again, depth_again = again.project(points)
    np.testing.assert_allclose(uv_again, uv, atol=1e-6)
    assert again.projection == projection
    np.testing.assert_allclose([again.fx, again.fy, again.cx, again.cy],
                               [camera.fx, camera.fy, camera.cx, camera.cy], rtol=1e-9)
    np.testing.assert_allclose(depth_again, depth, atol=1e-9)


def test_the_view_matrix_projects_object_points_like_blender_would():
    camera = Camera.look_at((0.0, -4.0, 1.0), (0.0, 0.0, 0.5), width=100, height=80, fx=90.0, fy=90.0,
                            cx=50.0, cy=40.0, near=0.1, far=20.0)
    model = _object_matrix(-0.4, (3.0, 1.0, 0.0), 2.0)
    view, window = blender_view_from_camera(camera, model)
    local = np.array([[0.1, 0.2, 0.4], [-0.2, 0.1, 0.7]])
    world = local @ model[:3, :3].T + model[:3, 3]
    clip = np.c_[world, np.ones(2)] @ view.T @ window.T
    ndc = clip[:, :2] / clip[:, 3:4]
    region = np.stack([(ndc[:, 0] + 1) / 2 * 100, (ndc[:, 1] + 1) / 2 * 80], axis=1)  # bottom-left origin
    uv, _ = camera.project(local)
    np.testing.assert_allclose(region[:, 0], uv[:, 0], atol=1e-6)
    np.testing.assert_allclose(80 - region[:, 1], uv[:, 1], atol=1e-6)
