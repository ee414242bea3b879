"""Export of a rotated splat object rotates its view-dependent colour: the exported PLY, rendered
by our rasterizer with SH colour on, equals the original seen through the correspondingly moved
camera (the object transform baked by `clickgauss_core.transforms`, as the add-on's export does)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clickgauss_core.cameras import Camera
from clickgauss_core.colmap import matrix_to_quaternion
from clickgauss_core.gaussians import GaussianCloud
from clickgauss_core.ply import read_gaussian_ply, write_gaussian_ply
from clickgauss_core.transforms import bake_transform
from clickgauss_backend.render import GaussianTensors, rasterize
from clickgauss_backend.render.sh import sh_to_rgb, view_colors

pytestmark = pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta state")


def sh_cloud(n: int = 150, seed: int = 0) -> GaussianCloud:
    """Gaussians around the origin with strong degree-3 view dependence."""
    rng = np.random.default_rng(seed)
    quats = rng.standard_normal((n, 4))
    return GaussianCloud.from_arrays(
        positions=rng.uniform(-0.6, 0.6, (n, 3)), log_scales=np.log(rng.uniform(0.04, 0.12, (n, 3))),
        rotations=quats / np.linalg.norm(quats, axis=1, keepdims=True), opacity_logits=rng.uniform(0.0, 3.0, n),
        sh_dc=rng.normal(0.0, 0.6, (n, 3)), sh_rest=rng.normal(0.0, 0.25, (n, 15, 3)))


def look_at(eye, target) -> np.ndarray:
    """World-to-camera (OpenCV axes) of a camera at `eye` looking at `target`."""
    forward = np.asarray(target, float) - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    w2c = np.eye(4)
    w2c[:3, :3] = np.stack([right, down, forward])
    w2c[:3, 3] = -w2c[:3, :3] @ eye
    return w2c


def render(cloud: GaussianCloud, world_to_camera: np.ndarray) -> np.ndarray:
    camera = Camera(world_to_camera, 64, 48, 70.0, 70.0, 32.0, 24.0)
    with torch.no_grad():
        result = rasterize(GaussianTensors.from_cloud(cloud), view_colors(cloud, camera), camera, rasterizer="torch")
    return result.features.numpy()


def relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_sh_to_rgb_is_the_inria_evaluation():
    # Degree 1 by hand: 0.5 + C0 c0 - C1 y c1 + C1 z c2 - C1 x c3, clamped at 0.
    sh = torch.tensor([[[0.2] * 3, [1.0, 0.0, -1.0], [0.5] * 3, [0.0, 2.0, 0.0]]], dtype=torch.float64)
    direction = torch.tensor([[0.6, 0.0, 0.8]], dtype=torch.float64)
    c0, c1 = 0.28209479177387814, 0.4886025119029199
    expected = [0.5 + 0.2 * c0 + 0.8 * c1 * 0.5 - 0.6 * c1 * 0.0,
                0.5 + 0.2 * c0 + 0.8 * c1 * 0.5 - 0.6 * c1 * 2.0,
                0.5 + 0.2 * c0 + 0.8 * c1 * 0.5]
    np.testing.assert_allclose(sh_to_rgb(sh, direction, 1).numpy()[0], np.maximum(expected, 0.0), atol=1e-12)


def test_exported_rotated_splat_renders_like_the_original_through_the_rotated_camera(tmp_path):
    cloud = sh_cloud()
    rotation = np.array(look_at(np.array([0.3, -1.0, 0.5]), np.zeros(3))[:3, :3]).T  # an arbitrary turn
    object_matrix = np.eye(4)
    object_matrix[:3, :3], object_matrix[:3, 3] = rotation, [0.4, -0.2, 0.3]
    baked, warnings = bake_transform(cloud, object_matrix, matrix_to_quaternion(rotation), (1.0, 1.0, 1.0))
    assert warnings == []
    write_gaussian_ply(tmp_path / "rotated.ply", baked)
    exported = read_gaussian_ply(tmp_path / "rotated.ply")

    camera_for_exported = look_at(np.array([2.5, 1.2, 1.0]), object_matrix[:3, 3])
    seen_exported = render(exported, camera_for_exported)
    seen_original = render(cloud, camera_for_exported @ object_matrix)  # the same camera in the object's frame
    assert relative_difference(seen_exported, seen_original) < 1e-3

    # The check can fail: without rotating f_rest the view-dependent colour is visibly off.
    unrotated_rest = GaussianCloud({**exported.properties, **{n: cloud.properties[n] for n in cloud.rest_names}})
    assert relative_difference(render(unrotated_rest, camera_for_exported), seen_original) > 1e-2
