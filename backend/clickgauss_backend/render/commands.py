"""`clickgauss-backend render-colors SPLAT --cameras cams.json --out DIR [--background R G B]`:
the reference picture of a splat file: its base colour (SH DC, 0.5 + SH_C0 * f_dc clamped to
[0, 1]) rasterized as 3 feature channels over a background, one 8-bit sRGB PNG per camera
(`<camera name or index>.png`). The add-on's display is compared against these."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from clickgauss_core import wire
from clickgauss_core.ply import read_splat_file

from .gaussians import GaussianTensors
from .rasterizer import rasterize


def register(subparsers) -> None:
    parser = subparsers.add_parser("render-colors", help="render a splat's base colours from given cameras (PNG)")
    parser.add_argument("splat", help="a .ply (INRIA / SuperSplat compressed) or .splat file")
    parser.add_argument("--cameras", required=True, help="JSON list of cameras (the wire format) in the file's frame")
    parser.add_argument("--out", required=True, help="output folder for the PNGs")
    parser.add_argument("--background", type=float, nargs=3, default=(0.0, 0.0, 0.0), metavar=("R", "G", "B"),
                        help="background colour in [0, 1] (default: black, as 3DGS trains)")
    parser.set_defaults(func=run_render_colors)


def render_base_colors(cloud, camera, background=(0.0, 0.0, 0.0)) -> np.ndarray:
    """(H, W, 3) float image in [0, 1]: the cloud's base colours composited over `background`."""
    gaussians = GaussianTensors.from_cloud(cloud, "cpu")
    with torch.no_grad():
        result = rasterize(gaussians, torch.from_numpy(cloud.colors.astype(np.float32)), camera,
                           background=torch.tensor(background, dtype=torch.float32))
    return np.clip(result.features.numpy(), 0.0, 1.0)


def run_render_colors(args: argparse.Namespace) -> int:
    cloud = read_splat_file(args.splat)
    cameras = [wire.camera_from_dict(entry) for entry in json.loads(Path(args.cameras).read_text())]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for index, camera in enumerate(cameras):
        image = render_base_colors(cloud, camera, tuple(args.background))
        name = camera.name or str(index)
        Image.fromarray(np.round(image * 255).astype(np.uint8)).save(out / f"{name}.png")
        print(f"{out / f'{name}.png'}: {camera.width}x{camera.height}")
    return 0
