"""Train Features on real splats that have no photos (the PlayCanvas guitar, a SuperSplat compressed
PLY, and the Luma seal, an antimatter15 .splat) against a REAL backend: the panel's message, the
planned views as cameras, the scene's cameras as poses, training on views rendered from the splat,
a click that selects something.

Masks: a real splat has no labels, so the test writes a precomputed mask folder for the views the
backend will render (the same planner through `clickgauss-backend views`): the splat's silhouette
against the background as the coarse mask, split left / right as the fine one."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import bpy
import numpy as np
import pytest
from PIL import Image

from conftest import BACKEND_PYTHON, REPO_ROOT

REAL = REPO_ROOT / "tests" / "data" / "real"
SPLATS = {"guitar": REAL / "playcanvas-compressed" / "guitar.compressed.ply",
          "seal": REAL / "aframe-luma-seal-splat" / "luma-seal.splat"}
VIEW_COUNT = 6
TRAINING_TIMEOUT_S = 900.0


def _import(path: Path):
    assert bpy.ops.import_scene.clickgauss_splats(filepath=str(path), orientation="KEEP") == {"FINISHED"}
    return bpy.context.active_object


def _masks_for_planned_views(splat: Path, out: Path) -> tuple[Path, Path]:
    """Render the planned views with the backend CLI (the add-on sends up = +Z for an unrotated
    object) and write a silhouette mask folder named after them."""
    views = out / "views"
    result = subprocess.run([BACKEND_PYTHON, "-m", "clickgauss_backend.cli", "views", str(splat), "--out", str(views),
                             "--count", str(VIEW_COUNT), "--up", "0", "0", "1"],
                            capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    assert result.returncode == 0, result.stderr
    masks = out / "masks"
    masks.mkdir()
    for image_path in sorted((views / "images").glob("*.png")):
        rgb = np.asarray(Image.open(image_path).convert("RGB"), dtype=np.int32)
        foreground = np.abs(rgb - 128).max(axis=2) > 6  # the renders' background is neutral grey
        coarse = foreground.astype(np.uint16)
        fine = coarse.copy()
        fine[:, rgb.shape[1] // 2:] *= 2
        Image.fromarray(coarse).save(masks / f"{image_path.stem}_coarse.png")
        Image.fromarray(fine).save(masks / f"{image_path.stem}_fine.png")
    return views, masks


@pytest.mark.parametrize("name", sorted(SPLATS))
def test_train_features_without_photos_then_click(name, clean_scene, addon_module, backend, tmp_path_factory):
    from clickgauss_core.datasets import load_poses

    session, click, views_module = (addon_module("blender.session"), addon_module("blender.click"),
                                                addon_module("blender.planned_views"))
    work = tmp_path_factory.mktemp(f"no_photos_{name}")  # inside the backend's data root
    splat = work / SPLATS[name].name
    shutil.copy(SPLATS[name], splat)
    views, masks = _masks_for_planned_views(splat, work)

    obj = _import(splat)
    obj.clickgauss.view_count = VIEW_COUNT
    assert obj.clickgauss.dataset_found == ""
    assert views_module.no_photos_sentence(bpy.context, obj) == \
        f"No photos found: training on {VIEW_COUNT} views rendered from the splat"

    # the planned views as cameras to look through
    assert bpy.ops.clickgauss.add_planned_views() == {"FINISHED"}
    cameras = bpy.data.collections[views_module.VIEWS_COLLECTION].objects
    assert len(cameras) == VIEW_COUNT
    centre = np.array([list(v.co) for v in obj.data.vertices]).mean(axis=0)
    for camera in cameras:
        forward = -np.array(camera.matrix_world.to_3x3().col[2])
        to_centre = centre - np.array(camera.matrix_world.translation)
        assert forward @ to_centre / np.linalg.norm(to_centre) > 0.8  # looks at the splat

    # the scene's cameras as known poses (the request only: training below uses planned views)
    obj.clickgauss.use_scene_cameras = True
    assert views_module.no_photos_sentence(bpy.context, obj).startswith(f"No photos found: training on {VIEW_COUNT} ")
    request = views_module.views_request(bpy.context, obj)
    assert request["source"] == "poses" and len(request["cameras"]) == VIEW_COUNT
    obj.clickgauss.use_scene_cameras = False

    obj.clickgauss.masks_source = "FOLDER"
    obj.clickgauss.masks_path = str(masks)
    obj.clickgauss.preset = "tiny"
    assert bpy.ops.clickgauss.train_features() == {"FINISHED"}
    deadline = time.monotonic() + TRAINING_TIMEOUT_S
    job = None
    while time.monotonic() < deadline:
        session.TASKS.deliver_finished()
        assert obj.name not in session.STATE.errors, session.STATE.errors[obj.name]
        job = session.STATE.jobs.get(obj.name)
        if job is not None and job["state"] in session.FINISHED_STATES:
            break
        time.sleep(0.1)
    assert job is not None and job["state"] == "done", job
    assert obj.clickgauss.has_features
    scene = backend.scene(obj.clickgauss.scene_id)
    assert scene["n_views"] == 0 and scene["view_source"] == "planned"

    # click the middle of the splat in the first planned view
    camera = load_poses(views / "cameras.json")[0]
    silhouette = np.asarray(Image.open(masks / "virtual_000_coarse.png")) > 0
    ys, xs = np.nonzero(silhouette)
    pixel = (float(xs[len(xs) // 2]) + 0.5, float(ys[len(ys) // 2]) + 0.5)
    session.STATE.clicks.pop(obj.name, None)
    click.start_click(backend, obj, camera, pixel, "coarse", None, "NEW")
    deadline = time.monotonic() + 120
    while obj.name not in session.STATE.clicks and time.monotonic() < deadline:
        assert obj.name not in session.STATE.errors, session.STATE.errors[obj.name]
        session.TASKS.deliver_finished()
        time.sleep(0.02)
    selected = addon_module("blender.selection").get_selection(obj)
    assert 0 < selected.sum() < len(selected)
