"""What the Blender display's two old departures from 3DGS cost, measured on the rasterizer alone.

    OMP_NUM_THREADS=1 backend/.venv/bin/python benchmarks/display_gap.py SPLAT [SPLAT ...] [--size 160 120]

For each splat and each of its two framing cameras (`clickgauss_core.framing`, as
benchmarks/bench_display.py) the backend rasterizer renders the base colours as 3DGS does (sRGB
values composited, 0.3 px^2 low-pass) and three variants: composited in linear light (what
Blender does under a colour-managed view), without the low-pass (what a world-space quad does),
and both. Prints PSNR / SSIM of each variant against the 3DGS picture (8-bit, as the pictures).
The low-pass is switched off through the projection module's constant (this script only).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

import clickgauss_backend.render.projection as projection
from clickgauss_backend.render.gaussians import GaussianTensors
from clickgauss_backend.render.rasterizer import rasterize
from clickgauss_core.click import LOW_PASS_VARIANCE
from clickgauss_core.framing import framing_cameras
from clickgauss_core.image_metrics import psnr, ssim
from clickgauss_core.ply import read_splat_file


def decode(srgb):
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def encode(linear):
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


def render(cloud, camera, colors, low_pass: float) -> np.ndarray:
    projection.LOW_PASS_VARIANCE = low_pass
    gaussians = GaussianTensors.from_cloud(cloud, "cpu")
    with torch.no_grad():
        result = rasterize(gaussians, torch.from_numpy(colors.astype(np.float32)), camera, background=torch.zeros(3))
    projection.LOW_PASS_VARIANCE = LOW_PASS_VARIANCE
    return np.clip(result.features.numpy().astype(np.float64), 0.0, 1.0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("splats", nargs="+", type=Path)
    parser.add_argument("--size", type=int, nargs=2, default=(160, 120))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    eight_bit = lambda image: np.round(image * 255) / 255  # noqa: E731
    print("splat | camera | linear blending PSNR / SSIM | no low-pass | both")
    for path in args.splats:
        cloud = read_splat_file(path)
        for camera in framing_cameras(cloud.positions, cloud.opacities, *args.size):
            reference = eight_bit(render(cloud, camera, cloud.colors, LOW_PASS_VARIANCE))
            variants = (encode(render(cloud, camera, decode(cloud.colors), LOW_PASS_VARIANCE)),
                        render(cloud, camera, cloud.colors, 1e-4),
                        encode(render(cloud, camera, decode(cloud.colors), 1e-4)))
            print(f"{path.parent.name} | {camera.name} | " + " | ".join(
                f"{psnr(eight_bit(v), reference):.2f} / {ssim(eight_bit(v), reference):.3f}" for v in variants), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
