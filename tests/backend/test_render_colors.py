"""`clickgauss-backend render-colors`: the base-colour reference pictures the add-on's display is
compared against (one PNG per camera, SH-DC colour over the background)."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from clickgauss_backend.cli import main
from clickgauss_core import wire
from clickgauss_core.cameras import Camera
from clickgauss_core.gaussians import SH_C0, GaussianCloud
from clickgauss_core.ply import write_gaussian_ply


def test_render_colors_writes_the_base_colour_over_the_background(tmp_path):
    # Two opaque, large Gaussians: red at the left, green at the right of the view.
    cloud = GaussianCloud.from_arrays(
        positions=np.array([[-0.5, 0.0, 0.0], [0.5, 0.0, 0.0]]), log_scales=np.full((2, 3), np.log(0.15)),
        rotations=np.tile([1.0, 0.0, 0.0, 0.0], (2, 1)), opacity_logits=np.full(2, 8.0),
        sh_dc=(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]) - 0.5) / SH_C0)
    write_gaussian_ply(tmp_path / "two.ply", cloud)
    camera = Camera.look_at([0.0, 0.0, -3.0], [0.0, 0.0, 0.0], up=(0.0, -1.0, 0.0), width=64, height=32,
                            fx=60.0, fy=60.0, cx=32.0, cy=16.0, name="front")
    (tmp_path / "cams.json").write_text(json.dumps([wire.camera_to_dict(camera)]))
    assert main(["render-colors", str(tmp_path / "two.ply"), "--cameras", str(tmp_path / "cams.json"),
                 "--out", str(tmp_path / "out"), "--background", "0", "0", "1"]) == 0
    image = np.asarray(Image.open(tmp_path / "out" / "front.png"))
    assert image.shape == (32, 64, 3)
    pixels = camera.project(cloud.positions)[0].astype(int)
    # (a few levels of the background show through: alpha peaks just under 1, as in 3DGS)
    np.testing.assert_allclose(image[pixels[0][1], pixels[0][0]], [255, 0, 0], atol=10)
    np.testing.assert_allclose(image[pixels[1][1], pixels[1][0]], [0, 255, 0], atol=10)
    np.testing.assert_array_equal(image[0, 0], [0, 0, 255])  # the background where nothing is
