"""Image similarity in pure numpy (the add-on's Python has no scipy / scikit-image):
PSNR and SSIM (Wang et al. 2004: Gaussian window 11 x 11, sigma 1.5, K1 = 0.01, K2 = 0.03,
mean over the valid windows and the channels, as scikit-image's `structural_similarity` with
`gaussian_weights=True, use_sample_covariance=False` computes it)."""

from __future__ import annotations

import numpy as np

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


def _as_float_images(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    return a, b


def psnr(a, b, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB of two images in [0, data_range] (inf when identical)."""
    a, b = _as_float_images(a, b)
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0.0 else float(10.0 * np.log10(data_range ** 2 / mse))


def _gaussian_kernel() -> np.ndarray:
    offsets = np.arange(SSIM_WINDOW) - SSIM_WINDOW // 2
    kernel = np.exp(-0.5 * (offsets / SSIM_SIGMA) ** 2)
    return kernel / kernel.sum()


def _filter_valid(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation of (H, W, C) with the 1-D kernel along H then W."""
    k = len(kernel)
    rows = sum(kernel[i] * image[i:image.shape[0] - k + 1 + i] for i in range(k))
    return sum(kernel[i] * rows[:, i:rows.shape[1] - k + 1 + i] for i in range(k))


def ssim(a, b, data_range: float = 1.0) -> float:
    """Mean structural similarity of two (H, W) or (H, W, C) images (both sides >= 11 pixels)."""
    a, b = _as_float_images(a, b)
    if min(a.shape[:2]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW} x {SSIM_WINDOW} pixels, got {a.shape[:2]}")
    kernel = _gaussian_kernel()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = _filter_valid(a, kernel), _filter_valid(b, kernel)
    var_a = _filter_valid(a * a, kernel) - mu_a ** 2
    var_b = _filter_valid(b * b, kernel) - mu_b ** 2
    cov = _filter_valid(a * b, kernel) - mu_a * mu_b
    index = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return float(index.mean())
