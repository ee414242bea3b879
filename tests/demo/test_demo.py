"""The README's first command, end to end, with its own scene and CPU preset: runs demo/run_demo.py (headless
Blender with the installed add-on, a real backend process) and checks what it leaves behind.

Runs under a Blender environment's Python (run-tests runs it once, with Blender 4.2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[2]
# Reading the outputs back: our pure core, and plyfile straight from the add-on's wheel (a zip import).
sys.path[:0] = [str(REPO_ROOT / "core"), str(next((REPO_ROOT / "wheels").glob("plyfile-*.whl")))]
from clickgauss_core.ply import read_gaussian_ply  # noqa: E402

BACKEND_PYTHON = os.environ.get("CLICKGAUSS_BACKEND_PYTHON", str(REPO_ROOT / "backend" / ".venv" / "bin" / "python"))
# What the cpu-fast preset holds on this scene through the add-on, less its run-to-run spread (torch's
# two threads: ~0.02-0.03; benchmarks/RESULTS.md, the demo): session 12's colour-weighted spatial
# term measured coarse 0.976-0.977 / 0.985-0.986, fine 0.974-0.977 / 0.964-0.965 (3D / 2D, two runs;
# session 11: fine 0.934-0.937 / 0.940-0.942). Earlier fine bars: 0.91 / 0.91 (session 8), 0.93 / 0.88 (session 6), the training
# issue's 0.90 / 0.85.
MIN_COARSE_IOU_3D, MIN_COARSE_IOU_2D = 0.95, 0.95
MIN_FINE_IOU_3D, MIN_FINE_IOU_2D = 0.94, 0.93
# How well the edits must land (they are made by clicks of the same quality).
MIN_EDIT_RECALL = 0.85
SCENE_PRESET, TRAIN_PRESET = "demo", "cpu-fast"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    result = subprocess.run([sys.executable, str(REPO_ROOT / "demo" / "run_demo.py"), "--out", str(out),
                             "--scene-preset", SCENE_PRESET, "--train-preset", TRAIN_PRESET, "--device", "cpu",
                             "--backend-python", BACKEND_PYTHON], capture_output=True, text=True)
    assert result.returncode == 0, f"demo failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return out, result.stdout, json.loads((out / "summary.json").read_text())


def test_the_demo_leaves_every_promised_file(demo):
    out, stdout, summary = demo
    for name in ("edited.ply", "clickgauss_demo.blend", "summary.json", "summary.md", "scene.png",
                 "clicks_coarse.png", "clicks_fine.png", "clickgauss-addon.zip"):
        assert (out / name).is_file(), name
    segments = sorted((out / "segments").glob("*.ply"))
    assert len(segments) == summary["segments"] >= 2
    assert sum(len(read_gaussian_ply(p)) for p in segments) == summary["gaussians"]  # a partition of the scene
    header = (out / "clickgauss_demo.blend").read_bytes()[:7]
    assert header == b"BLENDER" or header[:4] == b"\x28\xb5\x2f\xfd"  # plain or zstd-compressed .blend
    assert str(out) in stdout and "Next:" in stdout  # tells the user where things are and what to do


def test_the_pictures_are_images_of_the_expected_size(demo):
    out, _, summary = demo
    scene = json.loads((out / "scene" / "scene.json").read_text())
    width, height = scene["config"]["width"], scene["config"]["height"]
    for level in ("coarse", "fine"):
        with Image.open(out / f"clicks_{level}.png") as picture:
            picture.verify()
        with Image.open(out / f"clicks_{level}.png") as picture:
            rows = len(summary["levels"][level]["clicks"])
            assert picture.size[0] == 4 * 2 * width  # view, selection, GT Gaussians, GT pixels at 2x
            assert picture.size[1] > rows * 2 * height
    with Image.open(out / "scene.png") as picture:
        assert picture.size[0] == min(4, scene["config"]["n_test"]) * 2 * width


def test_the_edited_ply_has_the_deletion_and_the_recolour(demo):
    out, _, summary = demo
    edits = summary["edits"]
    original = read_gaussian_ply(out / "scene" / "point_cloud.ply")
    edited = read_gaussian_ply(out / "edited.ply")
    assert len(edited) == edits["gaussians_after_edit"] < len(original)
    with np.load(out / "scene" / "labels.npz") as labels:
        objects = labels["gaussian_objects"]
    # Match the Gaussians by position (the demo's object sits at the identity transform).
    index_of = {tuple(p): i for i, p in enumerate(np.round(original.positions, 4))}
    kept = np.array([index_of[tuple(p)] for p in np.round(edited.positions, 4)])
    deleted_object = objects == edits["deleted_label"]
    assert np.isin(np.flatnonzero(deleted_object), kept).mean() < 1 - MIN_EDIT_RECALL
    recoloured_rows = objects[kept] == edits["recoloured_label"]
    expected_dc = (np.asarray(edits["recolour_rgb"]) - 0.5) / 0.28209479177387814
    close = np.abs(edited.sh_dc[recoloured_rows] - expected_dc).max(axis=1) < 0.05
    assert close.mean() > MIN_EDIT_RECALL
    others = ~recoloured_rows
    unchanged = np.all(edited.sh_dc[others] == original.sh_dc[kept][others], axis=1)
    assert unchanged.mean() > 0.97  # the recolour stayed (almost entirely) on its object


def test_the_summary_reports_real_iou_per_object_and_level(demo):
    _, _, summary = demo
    coarse, fine = summary["levels"]["coarse"], summary["levels"]["fine"]
    assert len(coarse["clicks"]) >= 4 and len(fine["clicks"]) >= 8
    assert coarse["mean_iou_3d"] >= MIN_COARSE_IOU_3D and coarse["mean_iou_2d"] >= MIN_COARSE_IOU_2D
    assert fine["mean_iou_3d"] >= MIN_FINE_IOU_3D and fine["mean_iou_2d"] >= MIN_FINE_IOU_2D
    assert summary["training_seconds"] > 0 and summary["click_latency_ms"]["median"] > 0


def test_the_second_part_trains_a_real_splat_without_photos_and_clicks_it(demo):
    """The fruit crop (tests/data/real, no photos): the views rendered from it, a non-empty selection
    for every click, the pictures."""
    out, stdout, summary = demo
    real = out / "real"
    views = sorted((real / "views" / "images").glob("*.png"))
    assert len(views) == 16 and (real / "views" / "cameras.json").is_file()
    assert sorted(p.name for p in (real / "masks").glob("*_coarse.png")) == [f"{p.stem}_coarse.png" for p in views]
    for picture in ("views.png", "real_clicks.png"):
        with Image.open(real / picture) as image:
            image.verify()
    result = summary["real_splat"]
    assert result["no_photos_sentence"] == "No photos found: training on 16 views rendered from the splat"
    assert result["training_seconds"] > 0 and len(result["clicks"]) >= 4
    assert all(0 < click["selected"] < result["gaussians"] for click in result["clicks"])
    assert "real/real_clicks.png" in stdout


BLEND_CHECK = """
import json, sys, bpy, numpy as np
bpy.ops.wm.open_mainfile(filepath=sys.argv[-1])
scene = bpy.context.scene
collections = [c for c in bpy.data.collections if c.name.endswith(" segments")]
splats = [o for o in bpy.data.objects if "clickgauss_layout" in o and o.name in bpy.context.view_layer.objects
          and not o.hide_get() and not any(c in collections for c in o.users_collection)]
selected = []
for o in splats:
    values = np.zeros(len(o.data.vertices), dtype=bool)
    o.data.attributes["cg_selected"].data.foreach_get("value", values)
    selected.append(int(values.sum()))
print(json.dumps({"objects": [o.name for o in bpy.data.objects], "types": [o.type for o in bpy.data.objects],
                  "camera": scene.camera.name if scene.camera else None, "view_transform": scene.view_settings.view_transform,
                  "segments_hidden": [(c.hide_viewport, c.hide_render) for c in collections],
                  "splats": [o.name for o in splats], "selected": selected}))
"""


def test_the_blend_is_what_an_artist_would_open(demo):
    """No default Cube / Light, segments hidden from viewport and render, a camera on a held-out
    view (F12 shows the edited scene), the selection visible."""
    out, _, _ = demo
    result = subprocess.run([sys.executable, "-c", BLEND_CHECK, str(out / "clickgauss_demo.blend")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    blend = json.loads(result.stdout.strip().splitlines()[-1])
    assert "Cube" not in blend["objects"] and "Light" not in blend["objects"]
    assert blend["types"].count("CAMERA") == 1 and blend["camera"] == "ClickGauss held-out view"
    assert blend["view_transform"] == "Raw"  # As Trained blending: the splat looks as trained (README)
    assert blend["segments_hidden"] and all(flags == [True, True] for flags in blend["segments_hidden"])
    assert len(blend["splats"]) == 1 and blend["selected"][0] > 0
