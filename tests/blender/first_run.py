"""A first run as a new user has it, in a fresh Blender process (run by test_first_run.py): a new
user folder, the add-on zip installed, no preferences set. Start Local finds the backend by itself,
a splat from a folder outside every default data root is imported, trained (tiny preset) and clicked.

    python first_run.py ADDON_ZIP SCENE_FOLDER RESULT_JSON

The caller sets BLENDER_USER_* (a fresh user folder), HOME and PATH (with clickgauss-backend on it).
Writes what it saw to RESULT_JSON.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time

import bpy
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from viewport import viewport_matrices, visible_pixel  # noqa: E402

ADDON_MODULE = "bl_ext.user_default.clickgauss"
TIMEOUT_S = 600.0


def deliver_until(session, condition, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: no answer in {TIMEOUT_S} s; errors {session.STATE.errors}, "
                               f"backend {session.STATE.backend}")
        session.TASKS.deliver_finished()  # what the bpy.app.timers callback does in the UI
        time.sleep(0.05)


def main(addon_zip: str, scene: str, result_path: str) -> None:
    result: dict = {}
    assert bpy.ops.extensions.package_install_files(repo="user_default", filepath=addon_zip,
                                                    enable_on_install=True) == {"FINISHED"}
    session = importlib.import_module(f"{ADDON_MODULE}.blender.session")
    click = importlib.import_module(f"{ADDON_MODULE}.blender.click")
    selection = importlib.import_module(f"{ADDON_MODULE}.blender.selection")
    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    result["preferences"] = {"backend_python": prefs.backend_python, "local_data_root": prefs.local_data_root,
                             "backend_url": prefs.backend_url}
    prefs.backend_url = f"http://127.0.0.1:{int(os.environ['CLICKGAUSS_TEST_PORT'])}"  # a free port for the test
    try:
        assert bpy.ops.clickgauss.start_backend() == {"FINISHED"}, session.STATE.backend.message
        deliver_until(session, lambda: session.STATE.backend.state != "starting", "Start Local")
        result["started"] = {"state": session.STATE.backend.state, "source": session.STATE.local_source,
                             "roots": list(session.STATE.local_roots), "message": session.STATE.backend.message}
        first_process = session.STATE.local_process

        assert bpy.ops.import_scene.clickgauss_splats(filepath=os.path.join(scene, "point_cloud.ply"),
                                                      orientation="KEEP") == {"FINISHED"}
        obj = bpy.context.active_object
        result["dataset_nearby"] = obj.clickgauss.dataset_nearby
        obj.clickgauss.masks_source, obj.clickgauss.masks_path = "FOLDER", os.path.join(scene, "masks")
        obj.clickgauss.preset = "tiny"
        assert bpy.ops.clickgauss.train_features() == {"FINISHED"}
        result["restarted"] = session.STATE.local_process is not first_process
        deliver_until(session, lambda: obj.name in session.STATE.errors or session.STATE.jobs.get(obj.name, {})
                      .get("state") in session.FINISHED_STATES, "Train Features")
        result["training"] = {"state": session.STATE.jobs.get(obj.name, {}).get("state"),
                              "error": session.STATE.errors.get(obj.name), "roots": list(session.STATE.local_roots),
                              "has_features": obj.clickgauss.has_features,
                              "dataset_found": obj.clickgauss.dataset_found}
        result["reports"] = session.STATE.reports[-10:]

        # Shift+click's path after the viewport: the middle of the table (object 1) from a view's eye.
        with np.load(os.path.join(scene, "labels.npz")) as labels:
            truth = labels["gaussian_objects"] == 1
        from clickgauss_core import blender_view
        from clickgauss_core.datasets import load_dataset
        from clickgauss_core.ply import read_gaussian_ply

        points = read_gaussian_ply(os.path.join(scene, "point_cloud.ply"))
        radii = np.exp(points.log_scales.max(axis=1))
        eye = load_dataset(scene).views[0].camera.center
        view, window = viewport_matrices(eye, points.positions[truth].mean(axis=0), 320, 240, fov_deg=55)
        region_xy = visible_pixel(points.positions, radii, truth, view, window, 320, 240)
        camera = blender_view.camera_from_blender_view(view, window, 320, 240, np.eye(4))
        client = click.client_from_preferences(bpy.context)
        click.start_click(client, obj, camera, blender_view.blender_region_to_pixel(*region_xy, 240), "coarse", None, "NEW")
        deliver_until(session, lambda: obj.name in session.STATE.clicks or obj.name in session.STATE.errors, "click")
        selected = selection.get_selection(obj)
        result["click"] = {"error": session.STATE.errors.get(obj.name), "selected": int(selected.sum()),
                           "iou": float((selected & truth).sum() / max(1, (selected | truth).sum()))}
    finally:
        if session.STATE.local_process is not None:
            bpy.ops.clickgauss.stop_backend()
        with open(result_path, "w", encoding="utf-8") as stream:
            json.dump(result, stream, indent=1, default=str)


if __name__ == "__main__":
    main(*sys.argv[1:4])
