"""Camera math: projection both ways, look_at, scaling/cropping, validation."""

from __future__ import annotations

import numpy as np
import pytest

from clickgauss_core.cameras import Camera


def _camera(projection="perspective"):
    fx = 500.0 if projection == "perspective" else 80.0
    return Camera.look_at(eye=[3.0, -4.0, 2.0], target=[0.0, 0.0, 0.5], width=640, height=480,
                          fx=fx, fy=fx * 1.01, cx=321.5, cy=239.0, projection=projection)


def test_look_at_puts_the_target_at_the_principal_point_and_up_up():
    camera = _camera()
    uv, depth = camera.project(np.array([[0.0, 0.0, 0.5], [0.0, 0.0, 1.5]]))
    np.testing.assert_allclose(uv[0], [321.5, 239.0], atol=1e-9)
    assert depth[0] == pytest.approx(np.linalg.norm([3.0, -4.0, 1.5]))
    assert uv[1, 1] < uv[0, 1]  # world +z (up) is image up (smaller v)
    np.testing.assert_allclose(camera.center, [3.0, -4.0, 2.0], atol=1e-12)
    camera.validate()


@pytest.mark.parametrize("projection", ["perspective", "orthographic"])
def test_unproject_inverts_project(projection):
    camera = _camera(projection)
    points = np.random.default_rng(0).normal(size=(20, 3))
    uv, depth = camera.project(points)
    np.testing.assert_allclose(camera.unproject(uv, depth), points, atol=1e-9)


def test_orthographic_projection_is_independent_of_depth():
    camera = _camera("orthographic")
    forward = camera.camera_to_world[:3, 2]
    uv, depth = camera.project(np.array([[0.0, 0.0, 0.5], forward * 3 + [0.0, 0.0, 0.5]]))
    np.testing.assert_allclose(uv[0], uv[1], atol=1e-9)
    assert depth[1] - depth[0] == pytest.approx(3.0)


def test_scaled_and_cropped_cameras_see_the_same_point():
    camera = _camera()
    point = np.array([[0.3, 0.2, 0.9]])
    uv, _ = camera.project(point)
    half = camera.scaled(0.5)
    assert (half.width, half.height) == (320, 240)
    np.testing.assert_allclose(half.project(point)[0], uv * 0.5, atol=1e-9)
    crop = camera.cropped(100, 50, 1, 1)
    np.testing.assert_allclose(crop.project(point)[0], uv - [100, 50], atol=1e-9)


@pytest.mark.parametrize("change, message", [
    (dict(width=0), "width/height must be positive"),
    (dict(fx=-1.0), "fx and fy must be positive"),
    (dict(cy=float("nan")), "cy must be a finite number"),
    (dict(projection="fisheye"), "projection must be"),
    (dict(near=5.0, far=1.0), "near/far"),
    (dict(world_to_camera=np.diag([1.0, 1.0, -1.0, 1.0])), "not a proper rotation"),
    (dict(world_to_camera=np.diag([2.0, 1.0, 1.0, 1.0])), "not a proper rotation"),
    (dict(world_to_camera=np.where(np.eye(4) > 0, np.inf, 0.0)), "NaN/inf"),
    (dict(world_to_camera=np.vstack([np.eye(4)[:3], [0.0, 0.0, 1.0, 1.0]])), "last row"),
])
def test_validate_names_the_bad_field(change, message):
    base = dict(world_to_camera=np.eye(4), width=4, height=3, fx=2.0, fy=2.0, cx=2.0, cy=1.5)
    with pytest.raises(ValueError, match=message):
        Camera(**{**base, **change}).validate()


def test_from_opengl_flips_y_and_z():
    c2w_gl = np.eye(4)
    c2w_gl[:3, 3] = [0.0, 0.0, 5.0]  # at +5 z looking down -z (OpenGL)
    camera = Camera.from_opengl(c2w_gl, width=100, height=100, fx=50, fy=50, cx=50, cy=50)
    uv, depth = camera.project(np.array([[0.0, 1.0, 0.0]]))
    assert depth[0] == pytest.approx(5.0)
    assert uv[0, 1] < 50  # world +y is up in the image
