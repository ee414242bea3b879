"""The add-on against a REAL backend process on the synthetic "tiny" scene: Train Features through
the operator (worker thread + hand-back), clicks through the operator's code path with viewports
built from known matrices on a moved / rotated / scaled object (perspective and orthographic),
checked against the ground-truth labels; delete, click again, recolour, export, re-import."""

from __future__ import annotations

import time

import bpy
import numpy as np
import pytest

from conftest import ADDON_MODULE
from viewport import project_to_region, viewport_matrices, visible_pixel

TRAINING_TIMEOUT_S = 600.0
# The tiny preset trains for seconds on noisy SAM-like masks: modest bars (the backend's own
# tests use the same mean), checked on every object of the scene.
MIN_IOU = 0.5
MIN_OBJECT_IOU = 0.3


def _labels(synthetic_scene):
    with np.load(synthetic_scene / "labels.npz") as labels:
        return labels["gaussian_objects"], labels["gaussian_parts"]


def _import_scene(synthetic_scene):
    assert bpy.ops.import_scene.clickgauss_splats(filepath=str(synthetic_scene / "point_cloud.ply"),
                                                  orientation="KEEP") == {"FINISHED"}
    return bpy.context.active_object


@pytest.fixture(scope="module")
def training_run(addon, backend, synthetic_scene):
    """Train Features via the operator, delivering the worker results like Blender's timer would."""
    import importlib

    session = importlib.import_module(f"{ADDON_MODULE}.blender.session")
    obj = _import_scene(synthetic_scene)
    obj.clickgauss.masks_source = "FOLDER"
    obj.clickgauss.masks_path = str(synthetic_scene / "masks")
    obj.clickgauss.preset = "tiny"
    assert bpy.ops.clickgauss.train_features() == {"FINISHED"}
    snapshots = []
    deadline = time.monotonic() + TRAINING_TIMEOUT_S
    while time.monotonic() < deadline:
        session.TASKS.deliver_finished()  # what the bpy.app.timers callback does in the UI
        job = session.STATE.jobs.get(obj.name)
        assert obj.name not in session.STATE.errors, session.STATE.errors[obj.name]
        if job is not None:
            snapshots.append(dict(job))
            if job["state"] in session.FINISHED_STATES:
                break
        time.sleep(0.05)
    result = {"snapshots": snapshots, "scene_id": obj.clickgauss.scene_id, "has_features": obj.clickgauss.has_features,
              "dataset_found": obj.clickgauss.dataset_found}
    bpy.data.objects.remove(obj)
    return result


def test_train_features_operator_follows_the_job_to_the_end(training_run, synthetic_scene):
    snapshots = training_run["snapshots"]
    assert snapshots[-1]["state"] == "done", snapshots[-1]
    assert "training" in {s.get("stage") for s in snapshots}
    assert any(s.get("total") for s in snapshots)
    assert training_run["has_features"] and len(training_run["scene_id"]) == 64
    assert training_run["dataset_found"] == str(synthetic_scene)  # detected by the backend next to the PLY


@pytest.fixture
def connected_object(clean_scene, addon_module, backend, training_run, synthetic_scene):
    """A fresh import of the trained scene, placed with a move + rotation + uniform scale, opened
    on the backend (the features trained above are found by the scene's content hash)."""
    tasks, requests = addon_module("blender.backend_tasks"), addon_module("backend_requests")
    obj = _import_scene(synthetic_scene)
    obj.location = (3.0, -1.0, 0.5)
    obj.rotation_euler = (0.2, -0.1, 0.9)
    obj.scale = (1.5, 1.5, 1.5)
    bpy.context.view_layer.update()
    tasks.record_scene(obj, requests.open_scene(backend, obj["clickgauss_source"], None))
    assert obj.clickgauss.has_features
    return obj


def _click_object(addon_module, backend, obj, synthetic_scene, label, orthographic, mode="NEW", level="coarse"):
    """Click the centre of GT object `label` as seen from the first training view's position."""
    from clickgauss_core import blender_view
    from clickgauss_core.datasets import load_dataset

    mesh_io = addon_module("blender.mesh_io")
    objects, parts = _labels(synthetic_scene)
    truth = (objects if level == "coarse" else parts)[mesh_io.read_attribute(obj.data, "cg_id")]
    world = np.array(obj.matrix_world)
    local = mesh_io.read_positions(obj.data).astype(np.float64)
    points_world = local @ world[:3, :3].T + world[:3, 3]
    eye_local = load_dataset(synthetic_scene).views[0].camera.center
    eye = world[:3, :3] @ eye_local + world[:3, 3]
    target = points_world[truth == label].mean(axis=0)
    width, height = 320, 240
    view, window = viewport_matrices(eye, target, width, height, orthographic=orthographic, fov_deg=55,
                                     ortho_scale=4.0)
    scale = np.linalg.norm(world[:3, 0])  # uniform object scale
    log_scales = np.stack([mesh_io.read_attribute(obj.data, f"scale_{i}") for i in range(3)], axis=1)
    radii = np.exp(log_scales.max(axis=1)) * scale
    region_xy = visible_pixel(points_world, radii, truth == label, view, window, width, height)
    camera = blender_view.camera_from_blender_view(view, window, width, height, world)
    assert camera.projection == ("orthographic" if orthographic else "perspective")
    # The camera (object-local frame, top-left pixels) sees the Gaussians where the viewport does.
    region, _ = project_to_region(points_world, view, window, width, height)
    uv, _ = camera.project(local)
    np.testing.assert_allclose(uv, np.stack([region[:, 0], height - region[:, 1]], axis=1), atol=1e-3)
    pixel = blender_view.blender_region_to_pixel(*region_xy, height)
    return _click_through_operator_path(addon_module, backend, obj, camera, pixel, level, mode), truth


def _click_through_operator_path(addon_module, backend, obj, camera, pixel, level, mode):
    """What the Shift+click operator does after reading the viewport: the query on the worker
    thread, then (delivered like the UI timer would) the undoable apply operator."""
    click, session = addon_module("blender.click"), addon_module("blender.session")
    session.STATE.clicks.pop(obj.name, None)
    click.start_click(backend, obj, camera, pixel, level, None, mode)
    deadline = time.monotonic() + 60
    while obj.name not in session.STATE.clicks and time.monotonic() < deadline:
        assert obj.name not in session.STATE.errors, session.STATE.errors[obj.name]
        session.TASKS.deliver_finished()
        time.sleep(0.01)
    return session.STATE.clicks[obj.name]


def _iou(selected, truth):
    return (selected & truth).sum() / max(1, (selected | truth).sum())


@pytest.mark.parametrize("orthographic", [False, True], ids=["perspective", "orthographic"])
def test_click_selects_the_ground_truth_object(connected_object, addon_module, backend, synthetic_scene,
                                               orthographic):
    selection = addon_module("blender.selection")
    obj = connected_object
    ious = {}
    for label in range(1, 7):  # every object of the scene, seen from the first training view's position
        result, truth = _click_object(addon_module, backend, obj, synthetic_scene, label, orthographic)
        selected = selection.get_selection(obj)
        assert result.selected_now == selected.sum()
        vertex_select = np.empty(len(obj.data.vertices), dtype=bool)
        obj.data.vertices.foreach_get("select", vertex_select)
        np.testing.assert_array_equal(vertex_select, selected)  # Edit mode sees the same selection
        ious[label] = _iou(selected, truth == label)
    assert np.mean(list(ious.values())) >= MIN_IOU and min(ious.values()) >= MIN_OBJECT_IOU, ious


def test_delete_click_again_recolour_export_reimport(connected_object, addon_module, backend, synthetic_scene,
                                                     tmp_path):
    from clickgauss_core.ply import read_gaussian_ply
    from clickgauss_core.sh_rotation import rotate_sh_rest

    selection, editing, mesh_io = (addon_module(f"blender.{m}") for m in ("selection", "editing", "mesh_io"))
    io_operators = addon_module("blender.io_operators")
    obj = connected_object
    objects, _ = _labels(synthetic_scene)
    original = read_gaussian_ply(synthetic_scene / "point_cloud.ply")

    # click the table, delete it
    _click_object(addon_module, backend, obj, synthetic_scene, 1, orthographic=False)
    deleted_ids = mesh_io.read_attribute(obj.data, "cg_id")[selection.get_selection(obj)]
    assert len(deleted_ids) > 0
    assert editing.delete_selected(obj) == len(deleted_ids)
    remaining_ids = mesh_io.read_attribute(obj.data, "cg_id")
    assert len(remaining_ids) == len(original) - len(deleted_ids)
    assert not np.isin(deleted_ids, remaining_ids).any()

    # a click after the deletion lands on the right Gaussians through cg_id
    result, truth = _click_object(addon_module, backend, obj, synthetic_scene, 4, orthographic=False)
    selected = selection.get_selection(obj)
    assert _iou(selected, truth == 4) >= MIN_IOU
    chair_ids = remaining_ids[selected]

    # add the lamp (label 3) with mode ADD, then subtract it again
    _click_object(addon_module, backend, obj, synthetic_scene, 3, orthographic=False, mode="ADD")
    assert selection.get_selection(obj)[selected].all() and selection.get_selection(obj).sum() >= selected.sum()
    _click_object(addon_module, backend, obj, synthetic_scene, 3, orthographic=False, mode="SUBTRACT")
    assert selection.get_selection(obj).sum() <= selected.sum()
    selection.set_selection(obj, selected)

    # recolour the chair, export (transform baked), re-import and compare
    assert editing.recolor_selected(obj, (0.1, 0.8, 0.2), zero_view_dependent=True) == len(chair_ids)
    out = tmp_path / "edited.ply"
    assert io_operators.export_splats(obj, str(out)) == []  # view-dependent colour is rotated, not warned about
    exported = read_gaussian_ply(out)
    assert len(exported) == len(remaining_ids)
    assert list(exported.properties) == list(original.properties)
    world = np.array(obj.matrix_world)
    np.testing.assert_allclose(exported.positions, original.positions[remaining_ids] @ world[:3, :3].T + world[:3, 3],
                               atol=1e-4)
    np.testing.assert_allclose(exported.log_scales, original.log_scales[remaining_ids] + np.log(1.5), atol=1e-5)
    chair_rows = np.isin(remaining_ids, chair_ids)
    np.testing.assert_allclose(exported.colors[chair_rows], np.tile([0.1, 0.8, 0.2], (chair_rows.sum(), 1)), atol=1e-6)
    assert not exported.sh_rest[chair_rows].any()
    np.testing.assert_array_equal(exported.sh_dc[~chair_rows], original.sh_dc[remaining_ids][~chair_rows])
    turned = rotate_sh_rest(original.sh_rest[remaining_ids][~chair_rows], world[:3, :3] / 1.5)
    np.testing.assert_allclose(exported.sh_rest[~chair_rows], turned, atol=1e-5)
    np.testing.assert_array_equal(exported.opacity_logits, original.opacity_logits[remaining_ids])

    reimported = io_operators.import_splats(bpy.context, str(out), z_up=False)
    assert len(reimported.data.vertices) == len(remaining_ids)
    for name in ("f_dc_0", "opacity", "scale_0", "rot_0"):
        np.testing.assert_array_equal(mesh_io.read_attribute(reimported.data, name), exported.properties[name])
    np.testing.assert_array_equal(mesh_io.read_positions(reimported.data), exported.positions)


def test_grow_separate_and_segment_everything(connected_object, addon_module, backend, synthetic_scene):
    selection, editing, mesh_io = (addon_module(f"blender.{m}") for m in ("selection", "editing", "mesh_io"))
    edit_operators = addon_module("blender.edit_operators")
    obj = connected_object
    segments = edit_operators.segment_ids(backend, obj.clickgauss.scene_id, "coarse")
    assert segments.shape == (len(obj.data.vertices),) and segments.dtype == np.int32

    # one Gaussian of the largest segment grows to the whole segment
    largest = np.bincount(segments[segments >= 0]).argmax()
    seed = np.zeros(len(segments), dtype=bool)
    seed[np.flatnonzero(segments == largest)[0]] = True
    selection.set_selection(obj, seed)
    assert editing.grow_to_segments(obj, segments) == (segments == largest).sum()

    # separate it: the part keeps its ids, transform and backend scene
    part = editing.separate_selected(bpy.context, obj)
    part_ids = mesh_io.read_attribute(part.data, "cg_id")
    np.testing.assert_array_equal(np.sort(part_ids), np.flatnonzero(segments == largest))
    assert part.clickgauss.scene_id == obj.clickgauss.scene_id
    assert np.allclose(np.array(part.matrix_world), np.array(obj.matrix_world))
    assert len(obj.data.vertices) + len(part.data.vertices) == len(segments)

    # segment everything splits what is left, one object per segment, every Gaussian once
    created = editing.split_by_segments(bpy.context, obj, segments)
    ids = np.concatenate([mesh_io.read_attribute(o.data, "cg_id") for o in created])
    np.testing.assert_array_equal(np.sort(ids), np.sort(mesh_io.read_attribute(obj.data, "cg_id")))
    for o in created:
        assert len(np.unique(segments[mesh_io.read_attribute(o.data, "cg_id")])) == 1
    assert obj.hide_get()


def test_cancel_training_operator(training_run, clean_scene, addon_module, synthetic_scene):
    session = addon_module("blender.session")
    obj = _import_scene(synthetic_scene)
    obj.clickgauss.masks_path = str(synthetic_scene / "masks")
    obj.clickgauss.preset = "tiny"
    assert bpy.ops.clickgauss.train_features() == {"FINISHED"}

    def deliver_until(condition):
        deadline = time.monotonic() + TRAINING_TIMEOUT_S
        while time.monotonic() < deadline and not condition(session.STATE.jobs.get(obj.name) or {}):
            session.TASKS.deliver_finished()
            time.sleep(0.05)
        return session.STATE.jobs.get(obj.name) or {}

    job = deliver_until(lambda j: j.get("state") in ("running",) + session.FINISHED_STATES)
    assert job["state"] == "running", job
    assert bpy.ops.clickgauss.cancel_training() == {"FINISHED"}
    job = deliver_until(lambda j: j.get("state") in session.FINISHED_STATES)
    assert job["state"] == "cancelled", job
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not obj.clickgauss.has_features:  # the earlier field is still there
        session.TASKS.deliver_finished()
        time.sleep(0.05)
    assert obj.clickgauss.has_features

    # resume continues the same job from its checkpoint to the end
    assert bpy.ops.clickgauss.resume_training() == {"FINISHED"}
    job = deliver_until(lambda j: j.get("state") in ("queued", "running"))
    job = deliver_until(lambda j: j.get("state") in session.FINISHED_STATES)
    assert job["state"] == "done" and job["job_id"] == obj.clickgauss.job_id, job
    assert obj.clickgauss.has_features


def test_save_and_load_features_file(connected_object, addon_module, backend, tmp_path):
    requests = addon_module("backend_requests")
    obj = connected_object
    path = tmp_path / "features.npz"
    size = requests.save_features(backend, obj.clickgauss.scene_id, str(path))
    assert size == path.stat().st_size > 0
    with np.load(path, allow_pickle=False) as field:  # a plain npz, no pickled objects
        assert len(field.files) > 0
    scene = requests.load_features(backend, obj["clickgauss_source"], None, str(path))
    assert scene["scene_id"] == obj.clickgauss.scene_id and scene["has_features"]
