"""The torch rasterizer against cases computed by hand and against gsplat's own reference code."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from clickgauss_core.cameras import Camera
from clickgauss_core.gaussians import GaussianCloud
from clickgauss_backend.render import GaussianTensors, RenderResult, rasterize

ALPHA_THRESHOLD = 1.0 / 255.0
# torch's one-time notice that sparse CSR tensors (the rasterizer's weights) are a beta API.
pytestmark = pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta state")


def look_down_z(distance: float = 0.0) -> np.ndarray:
    """World-to-camera: the camera sits at z = -distance looking along +z (OpenCV axes)."""
    w2c = np.eye(4)
    w2c[2, 3] = distance
    return w2c


def camera(width=32, height=32, f=100.0, cx=None, cy=None, projection="perspective", w2c=None) -> Camera:
    # Default principal point on the centre of pixel (width/2, height/2): a Gaussian on the axis
    # then peaks exactly on a pixel centre.
    return Camera(look_down_z() if w2c is None else w2c, width, height, f, f,
                  width / 2 + 0.5 if cx is None else cx, height / 2 + 0.5 if cy is None else cy,
                  projection=projection)


def gaussians(means, scales, opacities, quats=None) -> GaussianTensors:
    means = torch.tensor(means, dtype=torch.float32).reshape(-1, 3)
    n = len(means)
    if quats is None:
        quats = torch.tensor([[1.0, 0.0, 0.0, 0.0]]).repeat(n, 1)
    return GaussianTensors(means=means, quats=torch.as_tensor(quats, dtype=torch.float32).reshape(n, 4),
                           scales=torch.tensor(scales, dtype=torch.float32).reshape(n, 3),
                           opacities=torch.tensor(opacities, dtype=torch.float32).reshape(n))


def random_scene(n=300, seed=0, spread=1.0, depth=4.0) -> GaussianTensors:
    gen = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=gen) * spread
    means[:, 2] += depth
    return GaussianTensors(means=means,
                           quats=torch.nn.functional.normalize(torch.randn(n, 4, generator=gen), dim=-1),
                           scales=torch.rand(n, 3, generator=gen) * 0.15 + 0.01,
                           opacities=torch.rand(n, generator=gen) * 0.98 + 0.02)


def gaussian_image(width, height, centre, covariance, opacity):
    """alpha of one 2D Gaussian at every pixel centre, zero below the 1/255 threshold."""
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    d = np.stack([xs - centre[0], ys - centre[1]], axis=-1)
    inverse = np.linalg.inv(np.asarray(covariance, dtype=np.float64))
    mahalanobis = np.einsum("...i,ij,...j->...", d, inverse, d)
    alpha = np.minimum(0.999, opacity * np.exp(-0.5 * mahalanobis))
    return np.where(alpha >= ALPHA_THRESHOLD, alpha, 0.0)


# -- one Gaussian ---------------------------------------------------------------------------

def test_isotropic_gaussian_peaks_at_opacity_times_feature_and_falls_off_as_computed():
    g = gaussians([0.0, 0.0, 5.0], [0.1, 0.1, 0.1], [0.8])
    feature = torch.tensor([[2.0, -1.0, 0.5]])
    out = rasterize(g, feature, camera(), rasterizer="torch")
    assert isinstance(out, RenderResult)
    assert out.features.shape == (32, 32, 3) and out.alpha.shape == (32, 32) and out.depth.shape == (32, 32)
    torch.testing.assert_close(out.features[16, 16], 0.8 * feature[0])
    # 2D variance: (f / z)^2 sigma^2 + the 0.3 px^2 low-pass = 400 * 0.01 + 0.3 = 4.3
    expected = gaussian_image(32, 32, (16.5, 16.5), [[4.3, 0.0], [0.0, 4.3]], 0.8)
    np.testing.assert_allclose(out.alpha.numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(out.features[..., 1].numpy(), -expected, atol=1e-6)
    assert out.alpha[16, 18].item() == pytest.approx(0.8 * math.exp(-0.5 * 4 / 4.3), rel=1e-6)
    np.testing.assert_allclose(out.depth.numpy()[expected > 0], 5.0, rtol=1e-6)
    assert (out.depth.numpy()[expected == 0] == 0).all()


def test_rotated_anisotropic_gaussian_matches_the_projected_covariance():
    angle = math.radians(30)
    quat = [math.cos(angle / 2), 0.0, 0.0, math.sin(angle / 2)]  # rotation about the view axis
    g = gaussians([0.0, 0.0, 5.0], [0.2, 0.05, 0.1], [0.6], quats=[quat])
    out = rasterize(g, torch.ones(1, 1), camera(48, 48), rasterizer="torch")
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    covariance = 400 * rotation @ np.diag([0.2 ** 2, 0.05 ** 2]) @ rotation.T + 0.3 * np.eye(2)
    expected = gaussian_image(48, 48, (24.5, 24.5), covariance, 0.6)
    np.testing.assert_allclose(out.features[..., 0].numpy(), expected, atol=2e-6)


def test_off_axis_gaussian_uses_the_perspective_jacobian():
    # Centre at x = 1, z = 5: u = 100 * 1/5 + cx. The Jacobian's third column -f x / z^2 = -4
    # carries the depth extent (sigma_z = 0.3) into the image: var_u = 20^2 0.05^2 + 4^2 0.3^2 + 0.3.
    g = gaussians([1.0, 0.0, 5.0], [0.05, 0.05, 0.3], [0.9])
    cam = camera(64, 32, cx=12.5)
    out = rasterize(g, torch.ones(1, 1), cam, rasterizer="torch")
    covariance = np.diag([400 * 0.05 ** 2 + 16 * 0.3 ** 2 + 0.3, 400 * 0.05 ** 2 + 0.3])
    expected = gaussian_image(64, 32, (32.5, 16.5), covariance, 0.9)
    np.testing.assert_allclose(out.features[..., 0].numpy(), expected, atol=2e-6)


# -- compositing ----------------------------------------------------------------------------

def test_two_overlapping_gaussians_composite_front_to_back():
    # Listed back first: the rasterizer must sort by depth.
    g = gaussians([[0.0, 0.0, 6.0], [0.0, 0.0, 3.0]], [[0.3] * 3, [0.1] * 3], [0.7, 0.4])
    f_back, f_front = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    out = rasterize(g, torch.stack([f_back, f_front]), camera(), rasterizer="torch")
    a_front, a_back = 0.4, 0.7  # both peak on the centre pixel
    torch.testing.assert_close(out.features[16, 16], a_front * f_front + (1 - a_front) * a_back * f_back)
    assert out.alpha[16, 16].item() == pytest.approx(1 - (1 - a_front) * (1 - a_back), rel=1e-6)
    expected_depth = (a_front * 3.0 + (1 - a_front) * a_back * 6.0) / (1 - (1 - a_front) * (1 - a_back))
    assert out.depth[16, 16].item() == pytest.approx(expected_depth, rel=1e-6)


def test_opaque_layers_saturate_and_hide_what_is_behind():
    # Opacity 1 is clamped to alpha 0.999; the next layer would take T to 1e-6 < 1e-4, so the pixel
    # stops there (the stopping layer itself is excluded, as in gsplat) and nothing behind shows.
    depths = [2.0, 3.0, 4.0, 5.0, 6.0]
    g = gaussians([[0.0, 0.0, z] for z in depths], [[0.5] * 3] * 5, [1.0] * 5)
    features = torch.eye(5)
    out = rasterize(g, features, camera(), rasterizer="torch")
    torch.testing.assert_close(out.features[16, 16], torch.tensor([0.999, 0, 0, 0, 0]))
    assert out.alpha[16, 16].item() == pytest.approx(0.999, rel=1e-6)


def test_compositing_stops_once_transmittance_would_fall_below_1e4():
    # alpha 0.8 per layer: T = 0.2^k; 0.2^5 = 3.2e-4 still counts, 0.2^6 = 6.4e-5 does not, so
    # layers 0..4 contribute 0.8 * 0.2^k and layers 5, 6 nothing.
    g = gaussians([[0.0, 0.0, 2.0 + k] for k in range(7)], [[1.0] * 3] * 7, [0.8] * 7)
    out = rasterize(g, torch.eye(7), camera(), rasterizer="torch")
    expected = torch.tensor([0.8 * 0.2 ** k if k < 5 else 0.0 for k in range(7)])
    torch.testing.assert_close(out.features[16, 16], expected)
    assert out.alpha[16, 16].item() == pytest.approx(1 - 0.2 ** 5, rel=1e-5)


def test_background_fills_the_remaining_transmittance():
    g = gaussians([0.0, 0.0, 5.0], [0.1, 0.1, 0.1], [0.8])
    background = torch.tensor([0.25, -1.0])
    out = rasterize(g, torch.tensor([[1.0, 1.0]]), camera(), rasterizer="torch", background=background)
    torch.testing.assert_close(out.features[16, 16], 0.8 + 0.2 * background)
    torch.testing.assert_close(out.features[0, 0], background)


# -- culling --------------------------------------------------------------------------------

def test_gaussians_behind_the_camera_or_before_the_near_plane_contribute_nothing():
    visible = gaussians([0.0, 0.0, 5.0], [0.1] * 3, [0.8])
    hidden = gaussians([[0.0, 0.0, -5.0], [0.0, 0.0, 0.005], [0.0, 0.0, -0.5]],
                       [[1.0] * 3, [0.05] * 3, [3.0] * 3], [1.0, 1.0, 1.0])
    both = GaussianTensors(*(torch.cat([getattr(visible, k), getattr(hidden, k)])
                             for k in ("means", "quats", "scales", "opacities")))
    features = torch.tensor([[1.0], [100.0], [100.0], [100.0]])
    alone = rasterize(visible, features[:1], camera(), rasterizer="torch")
    together = rasterize(both, features, camera(), rasterizer="torch")
    torch.testing.assert_close(together.features, alone.features)
    torch.testing.assert_close(together.alpha, alone.alpha)


def test_empty_scene_and_fully_culled_scene_render_zeros():
    empty = gaussians(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0))
    out = rasterize(empty, torch.zeros(0, 5), camera(), rasterizer="torch")
    assert out.features.shape == (32, 32, 5)
    assert not out.features.any() and not out.alpha.any() and not out.depth.any()
    behind = gaussians([[0.0, 0.0, -3.0], [100.0, 0.0, 5.0]], [[0.5] * 3] * 2, [0.9, 0.9])
    features = torch.ones(2, 4, requires_grad=True)
    out = rasterize(behind, features, camera(), rasterizer="torch", background=torch.full((4,), 0.5))
    torch.testing.assert_close(out.features, torch.full((32, 32, 4), 0.5))
    assert not out.alpha.any()
    out.features.sum().backward()
    torch.testing.assert_close(features.grad, torch.zeros(2, 4))


# -- projections ----------------------------------------------------------------------------

def test_orthographic_footprint_does_not_depend_on_depth_but_perspective_does():
    near_and_far = [[[0.0, 0.0, 2.0]], [[0.0, 0.0, 8.0]]]
    ortho = camera(projection="orthographic", f=20.0)
    persp = camera(f=40.0)
    ortho_images = [rasterize(gaussians(m, [0.1] * 3, [0.9]), torch.ones(1, 1), ortho, rasterizer="torch")
                    .features[..., 0] for m in near_and_far]
    torch.testing.assert_close(ortho_images[0], ortho_images[1])
    # orthographic: variance = (20 px/unit * 0.1)^2 + 0.3 = 4.3, at any depth
    expected = gaussian_image(32, 32, (16.5, 16.5), 4.3 * np.eye(2), 0.9)
    np.testing.assert_allclose(ortho_images[0].numpy(), expected, atol=1e-6)
    persp_images = [rasterize(gaussians(m, [0.1] * 3, [0.9]), torch.ones(1, 1), persp, rasterizer="torch")
                    .features[..., 0] for m in near_and_far]
    for image, z in zip(persp_images, (2.0, 8.0)):
        variance = (40.0 / z * 0.1) ** 2 + 0.3
        np.testing.assert_allclose(image.numpy(), gaussian_image(32, 32, (16.5, 16.5), variance * np.eye(2), 0.9),
                                   atol=1e-6)


def test_orthographic_offsets_move_the_centre_by_fx_pixels_per_unit():
    ortho = camera(projection="orthographic", f=10.0)
    g = gaussians([0.5, -0.3, 50.0], [0.1] * 3, [0.9])
    out = rasterize(g, torch.ones(1, 1), ortho, rasterizer="torch")
    expected = gaussian_image(32, 32, (16.5 + 5.0, 16.5 - 3.0), (1.0 + 0.3) * np.eye(2), 0.9)
    np.testing.assert_allclose(out.features[..., 0].numpy(), expected, atol=1e-6)


# -- against gsplat's own reference code ----------------------------------------------------

def sequential_reference(g: GaussianTensors, features: torch.Tensor, cam: Camera):
    """gsplat's pure-torch projection + a literal port of its per-pixel CUDA compositing loop."""
    from gsplat.cuda._torch_impl import _fully_fused_projection, _quat_scale_to_covar_preci

    covars, _ = _quat_scale_to_covar_preci(g.quats, g.scales, compute_preci=False)
    radii, means2d, depths, conics, _ = _fully_fused_projection(
        g.means, covars, torch.tensor(cam.world_to_camera, dtype=torch.float32)[None],
        torch.tensor(cam.intrinsics, dtype=torch.float32)[None], cam.width, cam.height,
        near_plane=cam.near, far_plane=cam.far,
        camera_model="ortho" if cam.projection == "orthographic" else "pinhole")
    radii, means2d, depths, conics = radii[0], means2d[0], depths[0], conics[0]
    order = [int(i) for i in torch.argsort(depths, stable=True) if (radii[i] > 0).all()]
    image = torch.zeros(cam.height, cam.width, features.shape[1])
    alpha_image = torch.zeros(cam.height, cam.width)
    for py in range(cam.height):
        for px in range(cam.width):
            transmittance = 1.0
            for i in order:
                dx, dy = means2d[i, 0] - (px + 0.5), means2d[i, 1] - (py + 0.5)
                a, b, c = conics[i]
                sigma = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
                alpha = min(0.999, float(g.opacities[i] * torch.exp(-sigma)))
                if sigma < 0 or alpha < ALPHA_THRESHOLD:
                    continue
                if transmittance * (1 - alpha) <= 1e-4:
                    break
                image[py, px] += features[i] * alpha * transmittance
                transmittance *= 1 - alpha
            alpha_image[py, px] = 1 - transmittance
    return image, alpha_image


@pytest.mark.parametrize("projection", ["perspective", "orthographic"])
def test_random_scene_matches_gsplats_projection_and_compositing_loop(projection):
    g = random_scene(n=60, seed=3, spread=0.8)
    # Off-centre principal point and a non-square image exercise the Jacobian clamp and the tiling.
    cam = Camera(look_down_z(), 37, 21, 9.0 if projection == "orthographic" else 40.0,
                 9.0 if projection == "orthographic" else 40.0, 15.0, 12.0, projection=projection)
    features = torch.randn(60, 3, generator=torch.Generator().manual_seed(1))
    expected, expected_alpha = sequential_reference(g, features, cam)
    out = rasterize(g, features, cam, rasterizer="torch")
    assert expected_alpha.max() > 0.9  # the scene really covers the image
    torch.testing.assert_close(out.features, expected, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(out.alpha, expected_alpha, atol=2e-5, rtol=1e-4)


# -- pixel subsets, crops, channels, gradients ----------------------------------------------

def test_pixel_subset_equals_the_same_pixels_of_the_full_image():
    g = random_scene(n=400, seed=5)
    cam = camera(70, 45, f=60.0)
    features = torch.randn(400, 6)
    full = rasterize(g, features, cam, rasterizer="torch")
    gen = torch.Generator().manual_seed(2)
    pixels = torch.stack([torch.randint(0, 70, (500,), generator=gen),
                          torch.randint(0, 45, (500,), generator=gen)], dim=1)
    pixels = torch.cat([pixels, pixels[:7]])  # repeats are allowed and answered in request order
    subset = rasterize(g, features, cam, rasterizer="torch", pixels=pixels)
    assert subset.features.shape == (507, 6) and subset.alpha.shape == (507,)
    torch.testing.assert_close(subset.features, full.features[pixels[:, 1], pixels[:, 0]])
    torch.testing.assert_close(subset.alpha, full.alpha[pixels[:, 1], pixels[:, 0]])
    torch.testing.assert_close(subset.depth, full.depth[pixels[:, 1], pixels[:, 0]])


def test_cropped_orthographic_camera_renders_the_crop_of_the_full_image():
    # Orthographic projection is the same affine map everywhere, so any crop, down to the single
    # pixel a click renders, must reproduce the full image exactly.
    g = random_scene(n=400, seed=6, spread=0.6)
    cam = camera(64, 48, f=25.0, projection="orthographic")
    features = torch.randn(400, 3)
    full = rasterize(g, features, cam, rasterizer="torch")
    crop = rasterize(g, features, cam.cropped(20, 10, 30, 25), rasterizer="torch")
    torch.testing.assert_close(crop.features, full.features[10:35, 20:50])
    torch.testing.assert_close(crop.alpha, full.alpha[10:35, 20:50])
    single = rasterize(g, features, cam.cropped(33, 21, 1, 1), rasterizer="torch")
    torch.testing.assert_close(single.features[0, 0], full.features[21, 33])


def test_cropped_perspective_camera_renders_the_crop_of_the_full_image():
    # Perspective footprints depend on the image window only through gsplat's Jacobian clamp of
    # centres beyond 1.3x the half field of view; with every centre inside the crop (footprints
    # straddling its border) the crop must equal the full image's pixels.
    cam = camera(64, 48, f=60.0, cx=30.0, cy=20.0)
    crop_camera = cam.cropped(16, 8, 30, 25)
    g = random_scene(n=300, seed=6)
    gen = torch.Generator().manual_seed(4)
    u = torch.rand(300, generator=gen) * 30 + 16  # centres anywhere inside the crop
    v = torch.rand(300, generator=gen) * 25 + 8
    z = g.means[:, 2]
    g.means[:, 0], g.means[:, 1] = (u - cam.cx) * z / cam.fx, (v - cam.cy) * z / cam.fy
    features = torch.randn(300, 3)
    full = rasterize(g, features, cam, rasterizer="torch")
    assert full.alpha[:8].max() > 0.1 and full.alpha[:, 46:].max() > 0.1  # footprints cross the border
    crop = rasterize(g, features, crop_camera, rasterizer="torch")
    torch.testing.assert_close(crop.features, full.features[8:33, 16:46])
    torch.testing.assert_close(crop.depth, full.depth[8:33, 16:46])


@pytest.mark.parametrize("channels", [1, 3, 24, 37])
def test_any_channel_count_renders_each_channel_independently(channels):
    g = random_scene(n=200, seed=7)
    cam = camera(40, 30, f=50.0)
    features = torch.randn(200, channels, generator=torch.Generator().manual_seed(channels))
    out = rasterize(g, features, cam, rasterizer="torch")
    assert out.features.shape == (30, 40, channels)
    last = rasterize(g, features[:, -1:].contiguous(), cam, rasterizer="torch")
    torch.testing.assert_close(out.features[..., -1:], last.features)
    torch.testing.assert_close(out.alpha, last.alpha)


def test_feature_gradients_pass_gradcheck_in_double_precision():
    g = random_scene(n=12, seed=8, spread=0.3)
    cam = camera(6, 5, f=15.0)
    features = torch.randn(12, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda f: rasterize(g, f, cam, rasterizer="torch").features, (features,))
    pixels = torch.tensor([[0, 0], [3, 2], [5, 4], [3, 2]])
    assert torch.autograd.gradcheck(lambda f: rasterize(g, f, cam, rasterizer="torch", pixels=pixels).features,
                                    (features,))


def test_feature_gradient_is_the_compositing_weight():
    g = gaussians([[0.0, 0.0, 6.0], [0.0, 0.0, 3.0]], [[0.3] * 3, [0.1] * 3], [0.7, 0.4])
    features = torch.zeros(2, 2, requires_grad=True)
    out = rasterize(g, features, camera(), rasterizer="torch", pixels=torch.tensor([[16, 16]]))
    out.features[0, 1].backward()
    torch.testing.assert_close(features.grad, torch.tensor([[0.0, (1 - 0.4) * 0.7], [0.0, 0.4]]))


def test_gradient_min_transmittance_cuts_only_the_gradient_of_what_lies_behind():
    # Three layers on the centre pixel: front alpha 0.6 (T 1), middle 0.5 (T 0.4), back 0.9 (T 0.2).
    g = gaussians([[0.0, 0.0, 3.0], [0.0, 0.0, 4.0], [0.0, 0.0, 5.0]], [[0.3] * 3] * 3, [0.6, 0.5, 0.9])
    pixel = torch.tensor([[16, 16]])
    weights = torch.tensor([0.6, 0.4 * 0.5, 0.2 * 0.9])

    def grad_and_value(min_transmittance):
        features = torch.ones(3, 1, requires_grad=True)
        out = rasterize(g, features, camera(), pixels=pixel, gradient_min_transmittance=min_transmittance)
        out.features.sum().backward()
        return features.grad[:, 0], out.features.detach()

    plain, value = grad_and_value(0.0)
    torch.testing.assert_close(plain, weights)
    for cut, reached in ((0.3, [1, 1, 0]), (0.5, [1, 0, 0]), (0.15, [1, 1, 1])):
        grad, cut_value = grad_and_value(cut)
        torch.testing.assert_close(grad, weights * torch.tensor(reached, dtype=torch.float32), msg=str(cut))
        torch.testing.assert_close(cut_value, value)  # the render itself is the same
    with pytest.raises(ValueError, match="needs the torch rasterizer"):
        rasterize(g, torch.ones(3, 1, requires_grad=True), camera(), rasterizer="gsplat", gradient_min_transmittance=0.5)


# -- interface ------------------------------------------------------------------------------

def test_from_cloud_activates_the_stored_values():
    cloud = GaussianCloud.from_arrays(
        positions=[[1.0, 2.0, 3.0]], log_scales=[[0.0, math.log(2.0), math.log(0.5)]],
        rotations=[[2.0, 0.0, 0.0, 0.0]], opacity_logits=[0.0], sh_dc=[[0.0, 0.0, 0.0]])
    g = GaussianTensors.from_cloud(cloud)
    assert len(g) == 1 and g.means.dtype == torch.float32
    torch.testing.assert_close(g.scales, torch.tensor([[1.0, 2.0, 0.5]]))
    torch.testing.assert_close(g.quats, torch.tensor([[1.0, 0.0, 0.0, 0.0]]))
    torch.testing.assert_close(g.opacities, torch.tensor([0.5]))
    assert len(g.subset(torch.tensor([False]))) == 0


def test_bad_arguments_are_rejected_with_a_clear_message():
    g = gaussians([0.0, 0.0, 5.0], [0.1] * 3, [0.8])
    cam = camera()
    with pytest.raises(ValueError, match=r"features must have shape \(N=1"):
        rasterize(g, torch.ones(2, 3), cam, rasterizer="torch")
    with pytest.raises(ValueError, match="outside the 32x32 image"):
        rasterize(g, torch.ones(1, 3), cam, rasterizer="torch", pixels=torch.tensor([[0, 0], [32, 5]]))
    with pytest.raises(ValueError, match="integer"):
        rasterize(g, torch.ones(1, 3), cam, rasterizer="torch", pixels=torch.tensor([[0.5, 0.5]]))
    with pytest.raises(ValueError, match="unknown rasterizer"):
        rasterize(g, torch.ones(1, 3), cam, rasterizer="vulkan")
    with pytest.raises(ValueError, match="CUDA"):
        rasterize(g, torch.ones(1, 3), cam, rasterizer="gsplat")


def test_auto_rasterizer_on_cpu_tensors_is_the_torch_one():
    g = random_scene(n=50, seed=9)
    features = torch.randn(50, 2)
    cam = camera(20, 20, f=30.0)
    torch.testing.assert_close(rasterize(g, features, cam).features,
                               rasterize(g, features, cam, rasterizer="torch").features)


def test_no_requested_pixels_gives_empty_results():
    g = random_scene(n=20, seed=10)
    out = rasterize(g, torch.ones(20, 4), camera(), rasterizer="torch", pixels=torch.zeros(0, 2, dtype=torch.int64))
    assert out.features.shape == (0, 4) and out.alpha.shape == (0,) and out.depth.shape == (0,)


def test_gaussian_tensors_reject_mismatched_shapes():
    with pytest.raises(ValueError, match=r"GaussianTensors.scales has shape \(2, 2\), expected \(2, 3\)"):
        GaussianTensors(means=torch.zeros(2, 3), quats=torch.zeros(2, 4), scales=torch.zeros(2, 2),
                        opacities=torch.zeros(2))


def test_orthographic_camera_with_negative_near_plane_sorts_negative_depths_front_to_back():
    cam = Camera(look_down_z(), 32, 32, 20.0, 20.0, 16.5, 16.5, projection="orthographic", near=-100.0)
    g = gaussians([[0.0, 0.0, -1.0], [0.0, 0.0, -2.0]], [[0.2] * 3] * 2, [0.5, 0.6])
    out = rasterize(g, torch.eye(2), cam, rasterizer="torch")
    # z = -2 is in front of z = -1: F = 0.6 f_front + 0.4 * 0.5 f_back
    torch.testing.assert_close(out.features[16, 16], torch.tensor([0.4 * 0.5, 0.6]))


def test_renders_without_autograd_go_in_bands_with_the_same_result(monkeypatch):
    from clickgauss_backend.render import rasterizer as rasterizer_module

    g = random_scene(n=300, seed=11)
    cam = camera(48, 40, f=50.0)
    features = torch.randn(300, 5, requires_grad=True)
    with_grad = rasterize(g, features, cam, rasterizer="torch", background=torch.ones(5))
    monkeypatch.setattr(rasterizer_module, "NO_GRAD_PIXELS_PER_BAND", 100)  # 20 bands
    with torch.no_grad():
        banded = rasterize(g, features, cam, rasterizer="torch", background=torch.ones(5))
    torch.testing.assert_close(banded.features, with_grad.features.detach())
    torch.testing.assert_close(banded.alpha, with_grad.alpha)
    torch.testing.assert_close(banded.depth, with_grad.depth)
