"""Training views without photos: planned views of real splats, the `views` CLI, `train` without a
dataset, and the label-mask source used by the benchmarks."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from clickgauss_core.datasets import load_poses
from clickgauss_core.ply import read_splat_file
from clickgauss_core.protocol import COARSE, DONE, INVALID_DATASET, PRESET_TINY

from clickgauss_backend.features.masks import write_mask_png
from clickgauss_backend.render import GaussianTensors
from clickgauss_backend.synthetic.label_masks import synthetic_label_masks
from clickgauss_backend.synthetic.sam_like import MaskNoise
from clickgauss_backend.views import (ViewSettings, choose_view_source, framing_report, plan_scene_views,
                                      starts_inside)

REAL = Path(__file__).resolve().parents[1] / "data" / "real"
REAL_SPLATS = ["supersplat-fruit-labels/fruit_drops_minimal.ply", "v3dg-donut-sh0/fused.ply",
               "playcanvas-compressed/guitar.compressed.ply", "aframe-luma-seal-splat/luma-seal.splat",
               "spzjs-converted/fruit_drops_minimal.spz", "spzjs-converted/donut_sh0.spz"]
# The guitar is long and thin: seen end-on or from the side it fills little of a 4:3 image.
MIN_FRAMED_SHARE = {"guitar.compressed.ply": 0.3}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("relative", REAL_SPLATS)
def test_planned_views_frame_every_real_splat(relative):
    cloud = read_splat_file(REAL / relative)
    gaussians = GaussianTensors.from_cloud(cloud, "cpu")
    cameras, plan = plan_scene_views(cloud, gaussians, ViewSettings(count=12, resolution=96))
    report = framing_report(gaussians, cameras, plan)
    assert plan["mode"] == "orbit"
    assert not any(report["inside"]), report
    assert report["framed_share"] >= MIN_FRAMED_SHARE.get(Path(relative).name, 0.9), report
    assert min(report["coverage"]) > 0.05, report  # every view shows the splat


def test_a_camera_inside_the_content_is_detected():
    rng = np.random.default_rng(0)
    from clickgauss_core.gaussians import GaussianCloud

    count = 3000
    cloud = GaussianCloud.from_arrays(rng.standard_normal((count, 3)), np.full((count, 3), np.log(0.08)),
                                      np.tile([1.0, 0, 0, 0], (count, 1)), np.full(count, 3.0), np.zeros((count, 3)),
                                      normals=False)
    gaussians = GaussianTensors.from_cloud(cloud, "cpu")
    cameras, plan = plan_scene_views(cloud, gaussians, ViewSettings(count=4, resolution=64, mode="orbit"))
    assert not starts_inside(gaussians, cameras[0], plan["distance"])
    from clickgauss_core.cameras import Camera
    at_centre = Camera.look_at((0.0, 0.0, 0.0), (1.0, 0.0, 0.0), width=64, height=48, fx=40, fy=40, cx=32, cy=24)
    assert starts_inside(gaussians, at_centre, plan["distance"])


def test_view_source_order():
    assert choose_view_source(True, True) == "photos"
    assert choose_view_source(False, True) == "poses"
    assert choose_view_source(False, False) == "planned"
    assert choose_view_source(True, False, "planned") == "planned"
    with pytest.raises(ValueError, match="view source"):
        choose_view_source(True, False, "drawings")


def test_label_masks_reproduce_the_scenes_ground_truth(tiny_synthetic_scene):
    synthetic = tiny_synthetic_scene
    gaussians = GaussianTensors.from_cloud(read_splat_file(synthetic.ply_path), "cpu")
    source = synthetic_label_masks(synthetic, gaussians)
    for index in (0, 3):
        part_map, _ = source.label_maps(synthetic.cameras[index])
        assert np.mean(part_map == synthetic.part_maps[index]) > 0.999
    # with no noise, the coarse masks are exactly the objects
    exact = type(source)(gaussians, synthetic.gaussian_parts, synthetic.part_objects, None, MaskNoise.consistent())

    class AtCamera:
        camera = synthetic.cameras[1]

    masks = exact.generate(AtCamera, (synthetic.cameras[1].width, synthetic.cameras[1].height))
    objects = synthetic.object_maps[1]
    for object_label in np.unique(objects[objects > 0]):
        ids = np.unique(masks.coarse[objects == object_label])
        assert len(ids) == 1 and ids[0] > 0
        assert np.array_equal(masks.coarse == ids[0], objects == object_label)


def test_views_cli_writes_cameras_renders_and_a_contact_sheet(tiny_synthetic_scene, backend_cli, tmp_path):
    ply = tmp_path / "alone" / "scene.ply"  # no dataset next to it
    ply.parent.mkdir()
    shutil.copy(tiny_synthetic_scene.ply_path, ply)
    out = tmp_path / "views"
    run = subprocess.run([*backend_cli, "views", str(ply), "--out", str(out), "--count", "6", "--resolution", "64"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    images = sorted((out / "images").glob("*.png"))
    assert len(images) == 6
    assert {Image.open(p).size for p in images} == {(64, 48)}
    plan = json.loads((out / "plan.json").read_text())
    assert plan["source"] == "planned" and plan["count"] == 6 and not any(plan["framing"]["inside"])
    from_colmap, from_json = load_poses(out), load_poses(out / "cameras.json")
    assert [c.name for c in from_colmap] == [p.name for p in images]
    for a, b in zip(from_colmap, from_json):
        assert np.allclose(a.world_to_camera, b.world_to_camera, atol=1e-6)
    assert Image.open(out / "contact_sheet.png").size[0] > 64
    # the same cameras as known poses render the same pictures
    again = tmp_path / "again"
    run = subprocess.run([*backend_cli, "views", str(ply), "--out", str(again), "--poses", str(out / "cameras.json"),
                          "--resolution", "64"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    for image in images:
        first = np.asarray(Image.open(image), dtype=int)
        second = np.asarray(Image.open(again / "images" / image.name), dtype=int)
        assert np.abs(first - second).max() <= 1
    bad = subprocess.run([*backend_cli, "views", str(ply), "--count", "0"], capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "count" in bad.stderr


class AtCamera:
    """A view known only by its camera (what a mask source gets for a rendered view)."""

    def __init__(self, camera):
        self.camera = camera


def splat_alone_with_masks(synthetic, tmp_path, settings):
    """The scene's PLY in a folder without its dataset, and a precomputed mask folder named after the
    views the planner makes for it (what any external segmenter would write)."""
    ply = tmp_path / "alone" / "scene.ply"
    ply.parent.mkdir()
    shutil.copy(synthetic.ply_path, ply)
    cloud = read_splat_file(ply)
    gaussians = GaussianTensors.from_cloud(cloud, "cpu")
    cameras, _ = plan_scene_views(cloud, gaussians, settings)
    masks = tmp_path / "masks"
    masks.mkdir()
    source = synthetic_label_masks(synthetic, gaussians)
    for camera in cameras:
        generated = source.generate(AtCamera(camera), (camera.width, camera.height))
        write_mask_png(masks / f"{Path(camera.name).stem}_coarse.png", generated.coarse)
        write_mask_png(masks / f"{Path(camera.name).stem}_fine.png", generated.fine)
    return ply, masks, cloud, gaussians


def clicked_object_share(synthetic, gaussians, selection_for) -> float:
    """Click the largest object in a held-out photo; the share of the selection that is that object."""
    view = synthetic.test_indices[0]
    objects = synthetic.object_maps[view]
    label = np.bincount(objects[objects > 0]).argmax()
    ys, xs = np.nonzero(objects == label)
    pixel = (float(xs[len(xs) // 2]) + 0.5, float(ys[len(ys) // 2]) + 0.5)
    selection = selection_for(synthetic.cameras[view], pixel)
    assert selection.any()
    return float(np.mean(synthetic.gaussian_objects[selection] == label))


def test_train_without_a_dataset_uses_virtual_views(tiny_synthetic_scene, backend_cli, tmp_path):
    synthetic = tiny_synthetic_scene
    ply, masks, cloud, gaussians = splat_alone_with_masks(synthetic, tmp_path, ViewSettings(count=8, resolution=64))
    out = tmp_path / "field.npz"
    run = subprocess.run([*backend_cli, "train", str(ply), "--masks", str(masks), "--preset", PRESET_TINY,
                          "--count", "8", "--resolution", "64", "--out", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "No photos found: training on 8 views rendered from the splat" in run.stderr
    from clickgauss_backend.features.field import FeatureField
    from clickgauss_backend.features.query import click

    field = FeatureField.load(out)
    assert field.features.shape == (len(cloud), 24)
    # a click on an object in one of the scene's own (never used) photos selects mostly that object
    assert clicked_object_share(synthetic, gaussians,
                                lambda camera, pixel: click(field, gaussians, camera, pixel, COARSE)) > 0.5


def test_server_trains_a_scene_without_photos(tiny_synthetic_scene, start_server, tmp_path):
    from clickgauss_core import wire

    synthetic = tiny_synthetic_scene
    ply, masks, cloud, gaussians = splat_alone_with_masks(synthetic, tmp_path, ViewSettings(count=8, resolution=64))
    server = start_server(data_roots=[tmp_path], cache_dir=tmp_path / "cache")
    scene = server.post("/v1/scenes", json={"ply_path": str(ply)}).json()
    assert scene["n_views"] == 0 and scene["view_source"] == "planned"
    request = {"scene_id": scene["scene_id"], "preset": PRESET_TINY, "masks": {"source": "folder", "path": str(masks)}}
    refused = server.post("/v1/jobs", json={**request, "views": {"source": "photos"}})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == INVALID_DATASET
    refused = server.post("/v1/jobs", json={**request, "views": {"source": "poses"}})
    assert refused.status_code == 422 and "poses" in refused.text
    refused = server.post("/v1/jobs", json={**request, "views": {"up": [0, 0, 0]}})
    assert refused.status_code == 422 and "up" in refused.text
    job = server.post("/v1/jobs", json={**request, "views": {"count": 8, "resolution": 64}})
    assert job.status_code == 202, job.text
    assert job.json()["request"]["views"]["source"] == "auto"
    final = server.wait_for_job(job.json()["job_id"])
    assert final["state"] == DONE, final

    def selection_for(camera, pixel):
        answer = server.post(f"/v1/scenes/{scene['scene_id']}/click",
                             json={"camera": wire.camera_to_dict(camera), "pixel": list(pixel), "level": COARSE})
        assert answer.status_code == 200, answer.text
        return wire.decode_mask(answer.json()["mask"], len(cloud))

    assert clicked_object_share(synthetic, gaussians, selection_for) > 0.5
