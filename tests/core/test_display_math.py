"""The pure math behind the add-on's Gaussian display and its picture test: quad frames from
rotations and scales, the visible extent, framing cameras, PSNR / SSIM."""

from __future__ import annotations

import numpy as np
import pytest

from clickgauss_core.framing import framing_cameras
from clickgauss_core.gaussian_quads import MIN_ALPHA, quad_frames, quaternion_matrices, visible_extent
from clickgauss_core.image_metrics import psnr, ssim


def _unit_quaternions(n, seed=0):
    q = np.random.default_rng(seed).normal(size=(n, 4))
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def test_quad_spans_the_two_largest_axes_to_the_visible_extent():
    rotations = _unit_quaternions(200, seed=1)
    scales = np.exp(np.random.default_rng(2).uniform(-5, 0, size=(200, 3)))
    opacities = np.random.default_rng(3).uniform(0.01, 1.0, 200)
    u, v, extent = quad_frames(rotations, scales, opacities)
    gaussian_axes = quaternion_matrices(rotations)
    for i in range(200):
        largest, second, _ = np.argsort(-scales[i])
        for vector, axis in ((u[i], largest), (v[i], second)):
            # along the Gaussian's own axis (either sign), `extent` standard deviations long
            assert abs(vector @ gaussian_axes[i][:, axis]) == pytest.approx(np.linalg.norm(vector), rel=1e-5)
            assert np.linalg.norm(vector) == pytest.approx(scales[i, axis] * extent[i], rel=1e-5)
    # at the rim the Gaussian's alpha is exactly the 3DGS cut-off
    np.testing.assert_allclose(np.minimum(opacities, 0.999) * np.exp(-0.5 * extent.astype(np.float64) ** 2),
                               MIN_ALPHA, rtol=1e-4)
    # quaternion_matrices: proper rotations
    np.testing.assert_allclose(np.linalg.det(gaussian_axes), 1.0, atol=1e-9)
    np.testing.assert_allclose(gaussian_axes @ gaussian_axes.transpose(0, 2, 1), np.tile(np.eye(3), (200, 1, 1)),
                               atol=1e-9)


def test_visible_extent_is_zero_below_the_cut_off():
    np.testing.assert_array_equal(visible_extent(np.array([0.0, MIN_ALPHA / 2, MIN_ALPHA])), 0.0)
    assert visible_extent(np.array([1.0]))[0] == pytest.approx(np.sqrt(2 * np.log(0.999 * 255)))


def test_framing_cameras_see_the_cloud():
    rng = np.random.default_rng(0)
    positions = rng.normal(size=(2000, 3)) * [3.0, 1.0, 0.2] + [5.0, -2.0, 1.0]
    for camera in framing_cameras(positions, np.ones(2000), 160, 120):
        pixels, depth = camera.project(positions)
        inside = (depth > 0) & (pixels[:, 0] >= 0) & (pixels[:, 0] < 160) & (pixels[:, 1] >= 0) & (pixels[:, 1] < 120)
        assert inside.mean() > 0.75
        centre_pixel, _ = camera.project(np.array([[5.0, -2.0, 1.0]]))
        np.testing.assert_allclose(centre_pixel[0], [80, 60], atol=2.0)


def test_psnr_and_ssim():
    rng = np.random.default_rng(0)
    image = rng.uniform(size=(40, 50, 3))
    assert psnr(image, image) == float("inf") and ssim(image, image) == pytest.approx(1.0)
    noisy = np.clip(image + rng.normal(scale=0.1, size=image.shape), 0, 1)
    mse = np.mean((image - noisy) ** 2)
    assert psnr(image, noisy) == pytest.approx(10 * np.log10(1 / mse))
    noisier = np.clip(image + rng.normal(scale=0.3, size=image.shape), 0, 1)
    assert 0 < ssim(image, noisier) < ssim(image, noisy) < 1
    assert ssim(image, noisy) == pytest.approx(ssim(noisy, image))
    # a constant offset leaves structure and contrast alone: only the luminance term drops
    assert ssim(image, np.clip(image * 0.5 + 0.25, 0, 1)) > ssim(image, noisier)
    with pytest.raises(ValueError, match="shape"):
        psnr(image, image[:, :10])
