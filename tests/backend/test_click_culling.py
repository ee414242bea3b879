"""The culled one-pixel click (clickgauss_core.click, used by the add-on and the backend) against
the reference: the torch rasterizer's render of the same pixel, over random clicks in perspective
and orthographic views, on the synthetic scene and on a real splat with large, anisotropic Gaussians."""

from pathlib import Path

import numpy as np
import pytest
import torch

from clickgauss_core.cameras import Camera
from clickgauss_core.click import ClickIndex, select, unit_rows
from clickgauss_core.ply import read_gaussian_ply

from clickgauss_backend.render import GaussianTensors, rasterize

CLICKS = 200
REAL_DATA = Path(__file__).resolve().parents[1] / "data" / "real"  # the real fixtures kept in the repository


def _look_at(eye, target, width, height, focal, projection="perspective"):
    forward = target - eye
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, [0.0, -1.0, 0.0])
    if np.linalg.norm(right) < 1e-6:
        right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward])
    w2c = np.eye(4)
    w2c[:3, :3], w2c[:3, 3] = rotation, -rotation @ eye
    return Camera(world_to_camera=w2c, width=width, height=height, fx=focal, fy=focal * 1.1,
                  cx=width / 2 + 3, cy=height / 2 - 2, projection=projection)


def _random_cameras(means, rng, count):
    centre = np.median(means, axis=0)
    radius = float(np.percentile(np.linalg.norm(means - centre, axis=1), 90))
    cameras = []
    for k in range(count):
        direction = rng.standard_normal(3)
        direction /= np.linalg.norm(direction)
        eye = centre + direction * radius * rng.uniform(1.2, 3.0)
        target = centre + rng.standard_normal(3) * 0.2 * radius
        if k % 2 == 0:
            cameras.append(_look_at(eye, target, 120, 90, rng.uniform(60, 200)))
        else:  # orthographic: fx = pixels per world unit
            cameras.append(_look_at(eye, target, 120, 90, 120 / (2.5 * radius), "orthographic"))
    return cameras


def _compare(cloud, features, rng, threshold=0.6):
    gaussians = GaussianTensors.from_cloud(cloud)
    index = ClickIndex(cloud.positions, cloud.scales, cloud.rotations, cloud.opacities)
    unit = unit_rows(features[:, :12])
    features_t = torch.from_numpy(features)
    cameras = _random_cameras(cloud.positions, rng, CLICKS)
    worst_cosine, worst_iou, hit = 1.0, 1.0, 0
    for camera in cameras:
        x, y = int(rng.integers(0, camera.width)), int(rng.integers(0, camera.height))
        with torch.no_grad():
            reference = rasterize(gaussians, features_t, camera, rasterizer="torch",
                                  pixels=torch.tensor([[x, y]])).features[0].double().numpy()
        composite = index.composite(camera, (x + 0.25, y + 0.75))
        ours = composite.feature(features)
        # The culling really culls: far fewer Gaussians projected than there are.
        assert composite.candidates < len(cloud)
        if np.linalg.norm(reference) < 1e-9:
            assert np.linalg.norm(ours) < 1e-6
            continue
        hit += 1
        worst_cosine = min(worst_cosine, float(reference @ ours / (np.linalg.norm(reference) * np.linalg.norm(ours))))
        ours_selected, _, _ = select(unit, ours[:12], threshold)
        reference_selected, _, _ = select(unit, reference[:12], threshold)
        union = (ours_selected | reference_selected).sum()
        if union:
            worst_iou = min(worst_iou, (ours_selected & reference_selected).sum() / union)
    assert hit > CLICKS // 4  # most clicks land on the scene
    assert worst_cosine >= 0.9999, worst_cosine
    assert worst_iou >= 0.999, worst_iou


def _clustered_features(cloud, rng):
    """Features that vary smoothly over space (as trained ones do): a few random directions, one per region."""
    centres = cloud.positions[rng.choice(len(cloud), 8, replace=False)]
    region = np.argmin(np.linalg.norm(cloud.positions[:, None] - centres[None], axis=2), axis=1)
    directions = rng.standard_normal((8, 24))
    return (directions[region] + 0.2 * rng.standard_normal((len(cloud), 24))).astype(np.float32)


def test_culled_click_equals_the_rasterized_pixel_on_the_synthetic_scene(tiny_synthetic_scene):
    torch.set_num_threads(1)
    cloud = read_gaussian_ply(tiny_synthetic_scene.ply_path)
    rng = np.random.default_rng(1)
    _compare(cloud, _clustered_features(cloud, rng), rng)


def test_culled_click_equals_the_rasterized_pixel_on_a_real_splat():
    torch.set_num_threads(1)
    path = REAL_DATA / "supersplat-fruit-labels" / "fruit_drops_minimal.ply"
    assert path.exists(), f"real test data missing: {path}"
    cloud = read_gaussian_ply(path)
    rng = np.random.default_rng(2)
    _compare(cloud, _clustered_features(cloud, rng), rng)


def test_the_click_index_skips_transparent_and_broken_gaussians():
    rng = np.random.default_rng(3)
    means = rng.standard_normal((500, 3)).astype(np.float32)
    means[0] = np.nan
    opacities = np.full(500, 0.9, dtype=np.float32)
    opacities[1] = 1e-4
    index = ClickIndex(means, np.full((500, 3), 0.05), np.tile([1.0, 0, 0, 0], (500, 1)), opacities)
    camera = _look_at(np.array([0.0, 0.0, -6.0]), np.zeros(3), 64, 48, 60.0)
    candidates = np.concatenate([index.candidates(camera, (x, y)) for x in range(0, 64, 4) for y in range(0, 48, 4)])
    assert 0 not in candidates and 1 not in candidates and len(candidates) > 0
    with pytest.raises(ValueError, match="outside"):
        index.composite(camera, (64, 0))
