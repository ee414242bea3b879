"""The feature field stored on the splat object and the click computed inside Blender from it,
against a REAL backend process on the synthetic "tiny" scene:
- parity: 200 random clicks (perspective and orthographic, coarse and fine, the object moved,
  rotated and uniformly scaled): the in-Blender click (features from the object's point
  attributes) and the backend's click (its field file, its own process) render the same pixel
  feature and select the same Gaussians;
- round trip: clicks, grow, segment everything, separate and export; the .blend saved and reopened
  in a fresh Blender process with no backend at all gives the same selections;
- live threshold; paths relative to the .blend; delete / separate keep each Gaussian's feature."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import bpy
import numpy as np
import pytest

from conftest import ADDON_MODULE
from viewport import viewport_matrices

CLICKS = 200
TRAINING_TIMEOUT_S = 600.0
MIN_COSINE = 0.9999
MIN_IOU = 0.999
HERE = Path(__file__).resolve().parent


def _module(name):
    import importlib

    return importlib.import_module(f"{ADDON_MODULE}.{name}")


def _deliver_until(condition, timeout=TRAINING_TIMEOUT_S, name=None):
    session = _module("blender.session")
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        if name is not None:
            assert name not in session.STATE.errors, session.STATE.errors[name]
        session.TASKS.deliver_finished()  # what the bpy.app.timers callback does in the UI
        time.sleep(0.02)


@pytest.fixture(scope="module")
def stored_object(addon, backend, synthetic_scene):
    """The tiny scene imported, trained (or found trained) on the backend, and its field stored on
    the object by the add-on's own code path (watch_job -> fetch_field on the worker thread)."""
    tasks, storage = _module("blender.backend_tasks"), _module("blender.field_storage")
    for collection in (bpy.data.objects, bpy.data.meshes):
        bpy.data.batch_remove(list(collection))
    assert bpy.ops.import_scene.clickgauss_splats(filepath=str(synthetic_scene / "point_cloud.ply"),
                                                  orientation="KEEP") == {"FINISHED"}
    obj = bpy.context.active_object
    obj.clickgauss.masks_source, obj.clickgauss.preset = "FOLDER", "tiny"
    obj.clickgauss.masks_path = str(synthetic_scene / "masks")
    tasks.record_scene(obj, _module("backend_requests").open_scene(backend, str(synthetic_scene / "point_cloud.ply"),
                                                                      None))
    if obj.clickgauss.has_features:  # trained by another test module of this session
        tasks.fetch_field_if_new(backend, obj)
    else:
        assert bpy.ops.clickgauss.train_features() == {"FINISHED"}
    _deliver_until(lambda: storage.has_stored_field(obj), name=obj.name)
    obj.location = (3.0, -1.0, 0.5)
    obj.rotation_euler = (0.2, -0.1, 0.9)
    obj.scale = (1.5, 1.5, 1.5)
    bpy.context.view_layer.update()
    yield obj


def _random_view(rng, obj, orthographic, width=160, height=120):
    """A viewport looking at a random Gaussian of the object from a random direction, and the
    region pixel (bottom-left origin) near that Gaussian."""
    from viewport import project_to_region

    mesh_io = _module("blender.mesh_io")
    world = np.array(obj.matrix_world)
    local = mesh_io.read_positions(obj.data).astype(np.float64)
    points = local @ world[:3, :3].T + world[:3, 3]
    centre = np.median(points, axis=0)
    target = points[rng.integers(len(points))]
    direction = rng.standard_normal(3)
    direction /= np.linalg.norm(direction)
    eye = centre + direction * rng.uniform(4.0, 9.0)
    view, window = viewport_matrices(eye, target, width, height, orthographic=orthographic,
                                     fov_deg=rng.uniform(35, 70), ortho_scale=rng.uniform(3.0, 8.0))
    region, _ = project_to_region(target[None], view, window, width, height)
    x = int(np.clip(region[0, 0] + rng.integers(-3, 4), 0, width - 1))
    y = int(np.clip(region[0, 1] + rng.integers(-3, 4), 0, height - 1))
    return view, window, (x, y)


@pytest.mark.parametrize("orthographic", [False, True], ids=["perspective", "orthographic"])
def test_in_blender_click_equals_the_backend_click(stored_object, backend, orthographic):
    from clickgauss_core import blender_view, wire

    storage, selection = _module("blender.field_storage"), _module("blender.selection")
    obj = stored_object
    rng = np.random.default_rng(7 if orthographic else 3)
    scene_id = obj.clickgauss.scene_id
    worst_cosine, worst_iou, selections = 1.0, 1.0, 0
    for k in range(CLICKS // 2):
        level = ("coarse", "fine")[k % 2]
        view, window, region_xy = _random_view(rng, obj, orthographic)
        camera = blender_view.camera_from_blender_view(view, window, 160, 120, np.array(obj.matrix_world))
        pixel = blender_view.blender_region_to_pixel(*region_xy, 120)
        ours = storage.local_click(obj, camera, pixel, level)
        answer = backend.click(scene_id, wire.camera_to_dict(camera), pixel, level)
        theirs = selection.per_vertex(obj, wire.decode_mask(answer["mask"]))
        reference = np.asarray(answer["pixel_feature"], dtype=np.float64)
        assert ours.threshold == answer["threshold"]
        if np.linalg.norm(reference) < 1e-6:  # nothing there: both see nothing
            assert np.linalg.norm(ours.pixel_feature) < 1e-6
            continue
        cosine = reference @ ours.pixel_feature / (np.linalg.norm(reference) * np.linalg.norm(ours.pixel_feature))
        worst_cosine = min(worst_cosine, float(cosine))
        union = (ours.selected | theirs).sum()
        if union:
            selections += 1
            worst_iou = min(worst_iou, float((ours.selected & theirs).sum() / union))
    assert selections >= CLICKS // 4, selections  # the clicks really select things
    assert worst_cosine >= MIN_COSINE, worst_cosine
    assert worst_iou >= MIN_IOU, worst_iou


def test_features_are_stored_as_point_attributes_and_not_exported(stored_object, tmp_path):
    from clickgauss_core.ply import read_gaussian_ply

    storage = _module("blender.field_storage")
    obj = stored_object
    record = storage.field_record(obj)
    assert record.feature_dim == 24 and set(record.clusters) == {"coarse", "fine"}
    assert record.trained_from["scene_id"] == obj.clickgauss.scene_id
    assert record.thresholds == {"coarse": 0.6, "fine": 0.9}
    names = storage.feature_attribute_names(24)
    assert all(obj.data.attributes[name].domain == "POINT" for name in names)
    # 24 float32 attributes = 96 bytes per Gaussian, plus the small JSON record
    assert storage.stored_field_bytes(obj) == len(obj.data.vertices) * 96 + len(obj["clickgauss_field"])
    bpy.context.view_layer.objects.active = obj
    obj.select_set(True)
    out = tmp_path / "export.ply"
    assert bpy.ops.export_scene.clickgauss_splats(filepath=str(out)) == {"FINISHED"}
    exported = read_gaussian_ply(out)
    assert len(exported) == len(obj.data.vertices)
    assert not [name for name in exported.properties if name.startswith("cg_")]


def _click_sequence(obj, rng, count=6):
    """Views, pixels and levels of a few clicks that hit something (fixed by the seed)."""
    from clickgauss_core import blender_view

    storage = _module("blender.field_storage")
    clicks = []
    while len(clicks) < count:
        view, window, region_xy = _random_view(rng, obj, orthographic=len(clicks) % 3 == 2)
        level = ("coarse", "fine")[len(clicks) % 2]
        camera = blender_view.camera_from_blender_view(view, window, 160, 120, np.array(obj.matrix_world))
        pixel = blender_view.blender_region_to_pixel(*region_xy, 120)
        if storage.local_click(obj, camera, pixel, level).selected.any():
            clicks.append({"view": view.tolist(), "window": window.tolist(), "region": list(region_xy), "level": level})
    return clicks


def test_round_trip_through_a_saved_blend_without_backend(stored_object, addon_zip, tmp_path):
    """Clicks, grow, segment everything and export; save; a fresh Blender process with no backend
    (its preferences point at a closed port) reopens the .blend and repeats them: same results."""
    obj = stored_object
    clicks = _click_sequence(obj, np.random.default_rng(11))
    before = _run_sequence(obj.name, clicks, tmp_path / "before")
    blend = tmp_path / "moved" / "scene.blend"
    blend.parent.mkdir()
    source, masks = obj["clickgauss_source"], obj.clickgauss.masks_path
    assert bpy.ops.wm.save_as_mainfile(filepath=str(blend), copy=True) == {"FINISHED"}
    # this session keeps absolute paths (its own .blend did not move); the saved file holds relative ones
    assert (obj["clickgauss_source"], obj.clickgauss.masks_path) == (source, masks)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"addon_zip": str(addon_zip), "blend": str(blend), "object": obj.name,
                                "clicks": clicks, "out": str(tmp_path / "after")}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLENDER_USER_")}
    result = subprocess.run([sys.executable, str(HERE / "reopen_blend.py"), str(spec)], capture_output=True,
                            text=True, env={**env, "OMP_NUM_THREADS": "1"}, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    after = json.loads((tmp_path / "after" / "results.json").read_text())
    assert after["backend"] == "unreachable"  # really no backend
    assert after["has_stored_field"] and not after["has_features_flag"]
    # the saved source path and mask folder are relative to the .blend, and resolve
    assert after["source_path"].startswith("//") and after["masks_path"].startswith("//") and after["paths_resolve"]
    for key in ("clicks", "grown", "segments", "export_ids"):
        assert after[key] == before[key], key


def _run_sequence(object_name, clicks, out: Path) -> dict:
    """What reopen_blend.py does, in this process (shared code: reopen_blend.run_sequence)."""
    sys.path.insert(0, str(HERE))
    try:
        import reopen_blend
    finally:
        sys.path.remove(str(HERE))
    # Work on a copy: the sequence splits and hides the object.
    source = bpy.data.objects[object_name]
    copy = source.copy()
    copy.data = source.data.copy()
    bpy.context.scene.collection.objects.link(copy)
    copy.name = prefix = object_name + "-before"
    try:
        return reopen_blend.run_sequence(_module, copy, clicks, out)
    finally:
        for part in list(bpy.data.objects):
            if part.name.startswith(prefix):
                bpy.data.objects.remove(part)


def test_live_threshold_rethresholds_the_last_click(stored_object):
    from clickgauss_core import blender_view

    storage, local = _module("blender.field_storage"), _module("blender.click")
    selection = _module("blender.selection")
    obj = stored_object
    settings = bpy.context.scene.clickgauss
    settings.use_threshold = False
    bpy.context.view_layer.objects.active = obj
    selection.set_selection(obj, np.zeros(len(obj.data.vertices), dtype=bool))
    clicks = _click_sequence(obj, np.random.default_rng(5), count=1)
    view, window = np.array(clicks[0]["view"]), np.array(clicks[0]["window"])
    camera = blender_view.camera_from_blender_view(view, window, 160, 120, np.array(obj.matrix_world))
    pixel = blender_view.blender_region_to_pixel(*clicks[0]["region"], 120)
    level = clicks[0]["level"]
    result = local.click_locally(obj, camera, pixel, level, None, "NEW")
    # no custom threshold: the click's own adaptive one (clickgauss_core.click.adaptive_threshold)
    again = storage.local_click(obj, camera, pixel, level)
    used, similarity = again.threshold, again.similarity
    assert result.threshold == used and -1.0 <= used <= 1.0
    assert settings.threshold == pytest.approx(used) and not settings.use_threshold  # shown = used
    assert result.selected_now == int((similarity >= used).sum())
    for value in (used - 0.2, used + 0.05, used):
        settings.threshold = value  # the slider: re-thresholds the last click, no new render
        assert settings.use_threshold  # the value shown is the value the next click uses
        np.testing.assert_array_equal(selection.get_selection(obj), similarity >= value)
    settings.level = level
    settings.threshold = used + 0.05
    settings.use_threshold = False  # back to automatic: the slider shows what the last click chose itself
    assert settings.threshold == pytest.approx(used)


def test_delete_and_separate_keep_each_gaussians_feature(stored_object):
    storage, selection = _module("blender.field_storage"), _module("blender.selection")
    mesh_io = _module("blender.mesh_io")
    source = stored_object
    obj = source.copy()
    obj.data = source.data.copy()
    bpy.context.scene.collection.objects.link(obj)
    try:
        record = storage.field_record(obj)
        features = storage.read_features(obj, record)
        by_id = dict(zip(mesh_io.read_attribute(obj.data, "cg_id").tolist(), range(len(features))))
        rng = np.random.default_rng(0)
        bpy.context.view_layer.objects.active = obj
        selection.set_selection(obj, rng.random(len(obj.data.vertices)) < 0.3)
        assert bpy.ops.clickgauss.delete_selected() == {"FINISHED"}
        selection.set_selection(obj, rng.random(len(obj.data.vertices)) < 0.5)
        assert bpy.ops.clickgauss.separate_selected() == {"FINISHED"}
        parts = [o for o in bpy.data.objects if o.name.startswith(obj.name)]
        assert len(parts) == 2
        for part in parts:
            assert storage.has_stored_field(part)
            ids = mesh_io.read_attribute(part.data, "cg_id")
            np.testing.assert_array_equal(storage.read_features(part, storage.field_record(part)),
                                          features[[by_id[i] for i in ids]])
    finally:
        for part in [o for o in bpy.data.objects if o.name.startswith(obj.name)]:
            bpy.data.objects.remove(part)


def test_a_failed_field_download_stores_nothing_and_says_so(addon, tmp_path):
    """A backend answering the field download with an HTML page: a clear error, no stored field
    (the panel then never says the features are in the .blend)."""
    from bad_backend import BadBackend
    from clickgauss_core.ply import write_gaussian_ply
    from splat_fixtures import make_cloud

    storage, session = _module("blender.field_storage"), _module("blender.session")
    assert "UNDO" in bpy.types.CLICKGAUSS_OT_apply_click.bl_options  # a click is one undo step
    path = tmp_path / "scene.ply"
    write_gaussian_ply(path, make_cloud(40, 1, False, False, seed=3))
    assert bpy.ops.import_scene.clickgauss_splats(filepath=str(path), orientation="KEEP") == {"FINISHED"}
    obj = bpy.context.active_object
    obj.clickgauss.scene_id, obj.clickgauss.has_features = "a" * 64, True
    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    saved = prefs.backend_url
    server = BadBackend("html200").start()
    prefs.backend_url = server.url
    try:
        assert bpy.ops.clickgauss.fetch_field() == {"FINISHED"}
        _deliver_until(lambda: not session.TASKS.busy(), timeout=30)
    finally:
        server.stop()
        prefs.backend_url = saved
    error = session.STATE.errors[obj.name]
    assert error.startswith("downloading the features failed") and "not a feature-field .npz" in error, error
    assert not storage.has_stored_field(obj) and "clickgauss_field" not in obj
    assert not [a.name for a in obj.data.attributes if a.name.startswith("cg_feature_")]
    bpy.data.objects.remove(obj)


def test_a_click_in_edit_mode_reads_the_current_mesh(stored_object):
    from clickgauss_core import blender_view

    storage, local, selection = (_module(n) for n in ("blender.field_storage", "blender.click",
                                                        "blender.selection"))
    obj = stored_object
    click = _click_sequence(obj, np.random.default_rng(21), count=1)[0]
    camera = blender_view.camera_from_blender_view(np.array(click["view"]), np.array(click["window"]), 160, 120,
                                           np.array(obj.matrix_world))
    pixel = blender_view.blender_region_to_pixel(*click["region"], 120)
    expected = storage.local_click(obj, camera, pixel, click["level"]).selected
    bpy.context.view_layer.objects.active = obj
    assert bpy.ops.object.mode_set(mode="EDIT") == {"FINISHED"}
    result = local.click_locally(obj, camera, pixel, click["level"], None, "NEW")
    assert obj.mode == "OBJECT" and result.selected_now == int(expected.sum())
    np.testing.assert_array_equal(selection.get_selection(obj), expected)
    # Moving Gaussians in Edit mode drops the click's index (it is built again from the new positions).
    import bmesh

    assert obj.name in storage._CACHE
    assert bpy.ops.object.mode_set(mode="EDIT") == {"FINISHED"}
    edit_mesh = bmesh.from_edit_mesh(obj.data)
    edit_mesh.verts.ensure_lookup_table()
    edit_mesh.verts[0].co.x += 0.01
    bmesh.update_edit_mesh(obj.data)
    bpy.context.view_layer.update()
    assert obj.name not in storage._CACHE
    edit_mesh.verts[0].co.x -= 0.01
    bmesh.update_edit_mesh(obj.data)
    assert bpy.ops.object.mode_set(mode="OBJECT") == {"FINISHED"}
