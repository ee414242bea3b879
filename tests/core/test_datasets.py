"""Datasets: COLMAP (text/binary, real capture), INRIA output folders, nerfstudio, image folders."""

from __future__ import annotations

import json
import os
import shutil
import warnings

import numpy as np
import pytest
from PIL import Image

from clickgauss_core.cameras import Camera
from clickgauss_core.colmap import (ColmapCamera, matrix_to_quaternion, quaternion_to_matrix, read_cameras_binary,
                                    read_colmap_model, read_images_text, write_cameras_binary, write_colmap_text,
                                    write_images_binary)
from clickgauss_core.datasets import View, find_dataset_for_ply, load_dataset, parse_cfg_args
from clickgauss_core.errors import DatasetError

SNOWMIKU = "snowmiku-plush-colmap"
SNOWMIKU_VIEWS = 7  # every 16th of the capture's 97 views (tests/data/real/snowmiku-plush-colmap/SOURCE.md)


# -- helpers -------------------------------------------------------------------------------------
def _ring_cameras(count=4, width=64, height=48):
    cameras = []
    for i in range(count):
        angle = 2 * np.pi * i / count
        cameras.append(Camera.look_at([3 * np.cos(angle), 3 * np.sin(angle), 1.0], [0.0, 0.0, 0.0], width=width,
                                      height=height, fx=60.0 + i, fy=61.0 + i % 2, cx=width / 2 + 0.25, cy=height / 2 - 0.5))
    return cameras


def _write_image(path, size, fmt="PNG", **save):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.new("RGB", size, (120, 30, 200)).save(path, fmt, **save)


def _colmap_dataset(root, cameras=None, downscaled=(), extension=".png"):
    """A COLMAP text dataset: images/ (+ images_N/ for each factor) and sparse/0."""
    cameras = cameras or _ring_cameras()
    views = [View(camera, "", f"view_{i:02d}{extension}") for i, camera in enumerate(cameras)]
    write_colmap_text(os.path.join(root, "sparse", "0"), views, points_xyz=np.eye(3), points_rgb=np.full((3, 3), 9))
    for view in views:
        _write_image(os.path.join(root, "images", view.name), (view.camera.width, view.camera.height))
        for factor in downscaled:
            size = (round(view.camera.width / factor), round(view.camera.height / factor))
            _write_image(os.path.join(root, f"images_{factor}", view.name), size)
    return views


# -- real capture --------------------------------------------------------------------------------
def test_real_colmap_text_dataset(real_data):
    root = real_data(SNOWMIKU)
    dataset = load_dataset(root)
    assert dataset.kind == "colmap" and len(dataset) == SNOWMIKU_VIEWS
    names = [view.name for view in dataset.views]
    assert names == sorted(names) and names[0] == "20240212_003919.jpg"
    first = dataset.views[0]
    assert (first.camera.width, first.camera.height) == (989, 742)
    assert (first.camera.fx, first.camera.fy, first.camera.cx, first.camera.cy) == (
        819.22892824426015, 819.22892824426015, 494.75, 371.0)
    assert os.path.isfile(first.image_path) and first.camera.extra["image_path"] == first.image_path
    # pose = images.txt line of IMAGE_ID 1 (qvec -> R, tvec)
    expected = quaternion_to_matrix([0.99379311323787922, -0.057826705979381374, -0.09417147220597133, -0.01276925914443991])
    np.testing.assert_allclose(first.camera.world_to_camera[:3, :3], expected, atol=1e-15)
    np.testing.assert_allclose(first.camera.world_to_camera[:3, 3], [1.3436385631004031, -1.1559792850137878,
                                                                     3.6460153765079215])
    assert dataset.points_xyz.shape == (25784, 3) and dataset.points_rgb.dtype == np.uint8
    np.testing.assert_allclose(dataset.points_xyz[0], [-1.38188248, 3.00177316, 1.73308522])


def test_real_dataset_model_folder_given_directly(real_data):
    dataset = load_dataset(real_data(SNOWMIKU) / "sparse" / "0")
    assert len(dataset) == SNOWMIKU_VIEWS and dataset.image_folder == str(real_data(SNOWMIKU) / "images")


@pytest.mark.parametrize("resolution, size", [(2, (494, 371)), (4, (247, 186)), (500, (500, 375))])
def test_real_dataset_downscaled_without_a_scaled_folder(real_data, resolution, size):
    view = load_dataset(real_data(SNOWMIKU), resolution=resolution).views[0]
    assert (view.camera.width, view.camera.height) == size
    assert view.camera.fx == pytest.approx(819.22892824426015 * size[0] / 989)
    assert view.image_path.endswith("images/20240212_003919.jpg")  # the backend resizes it


def test_real_binary_cameras(real_data):
    undistorted = read_cameras_binary(str(real_data(SNOWMIKU) / "originals" / "cameras_undistorted.bin"))
    camera = undistorted[1]
    assert (camera.model, camera.width, camera.height) == ("PINHOLE", 3958, 2968)
    assert camera.pinhole == pytest.approx((3276.9157129770406, 3276.9157129770406, 1979.0, 1484.0))
    distorted = read_cameras_binary(str(real_data(SNOWMIKU) / "originals" / "cameras_distorted.bin"))[1]
    assert (distorted.model, distorted.width, distorted.height) == ("SIMPLE_RADIAL", 4032, 3024)
    assert distorted.params[3] == pytest.approx(0.0321232, abs=1e-7)
    assert distorted.pinhole == pytest.approx((3276.9157, 3276.9157, 2016.0, 1512.0), abs=1e-4)


def test_distorted_model_loads_with_a_warning_naming_the_file(real_data, tmp_path):
    model = tmp_path / "sparse" / "0"
    model.mkdir(parents=True)
    shutil.copy(real_data(SNOWMIKU) / "originals" / "cameras_distorted.bin", model / "cameras.bin")
    shutil.copy(real_data(SNOWMIKU) / "sparse" / "0" / "images.txt", model / "images.txt")
    with pytest.warns(UserWarning, match=r"cameras\.bin: camera model SIMPLE_RADIAL has lens distortion.*image_undistorter"):
        loaded = read_colmap_model(model)
    assert len(loaded.images) == SNOWMIKU_VIEWS and loaded.warnings and loaded.points_xyz is None
    os.symlink(real_data(SNOWMIKU) / "images", tmp_path / "images")
    with pytest.warns(UserWarning, match="image_undistorter"):
        dataset = load_dataset(tmp_path)
    # 4032x3024 camera, 989x742 images: same 4:3 aspect within rounding, intrinsics scaled to the files
    assert dataset.views[0].camera.width == 989 and dataset.warnings


def test_real_inria_output_folder_with_a_foreign_source_path(real_data):
    originals = real_data(SNOWMIKU) / "originals"
    with pytest.raises(DatasetError, match=r"cfg_args: source_path 'D:\\\\noname.*does not exist on this machine: "
                                           r"give the dataset folder .* as the dataset instead, or as source_path="):
        load_dataset(originals)
    dataset = load_dataset(originals, source_path=real_data(SNOWMIKU))
    assert dataset.kind == "inria" and len(dataset) == SNOWMIKU_VIEWS and dataset.root == str(originals)
    assert (dataset.views[0].camera.width, dataset.views[0].camera.height) == (989, 742)


def test_real_cfg_args_is_parsed_without_evaluating(real_data, tmp_path):
    cfg = parse_cfg_args(real_data(SNOWMIKU) / "originals" / "cfg_args")
    assert cfg["images"] == "images" and cfg["resolution"] == -1 and cfg["sh_degree"] == 3 and cfg["eval"] is False
    evil = tmp_path / "cfg_args"
    evil.write_text("Namespace(source_path=__import__('os').system('touch pwned'))")
    with pytest.raises(DatasetError, match="'source_path' is not a Python literal"):
        parse_cfg_args(evil)
    evil.write_text("print('hi')")
    with pytest.raises(DatasetError, match="not a Namespace"):
        parse_cfg_args(evil)
    evil.write_text("Namespace(a=1")
    with pytest.raises(DatasetError, match="cannot parse cfg_args"):
        parse_cfg_args(evil)


def test_real_cameras_json_alone_gives_consistent_geometry(real_data, tmp_path):
    """cameras.json + a dataset with only images: poses from cameras.json (INRIA's c2w layout)."""
    output, source = tmp_path / "output", tmp_path / "dataset"
    output.mkdir()
    source.mkdir()
    shutil.copy(real_data(SNOWMIKU) / "originals" / "cameras.json", output / "cameras.json")
    os.symlink(real_data(SNOWMIKU) / "images", source / "images")
    (output / "cfg_args").write_text(f"Namespace(images='images', resolution=-1, source_path={str(source)!r})")
    dataset = load_dataset(output)
    assert dataset.kind == "inria" and len(dataset) == SNOWMIKU_VIEWS
    entry = json.loads((output / "cameras.json").read_text())[0]
    view = dataset.view_named("20240212_003919.jpg")
    np.testing.assert_allclose(view.camera.center, entry["position"], atol=1e-12)
    np.testing.assert_allclose(view.camera.camera_to_world[:3, :3], entry["rotation"], atol=1e-12)
    assert (view.camera.width, view.camera.height) == (989, 742)
    assert view.camera.fx == pytest.approx(3276.9157129770406 * 989 / 3958)
    assert view.camera.cx == pytest.approx(989 / 2)
    # The capture's SfM points land inside the views they were reconstructed from.
    points = load_dataset(real_data(SNOWMIKU)).points_xyz
    inside = []
    for v in dataset.views:
        uv, depth = v.camera.project(points)
        inside.append(np.mean((depth > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < v.camera.width)
                              & (uv[:, 1] >= 0) & (uv[:, 1] < v.camera.height)))
    assert np.median(inside) > 0.6


# -- synthetic COLMAP datasets -------------------------------------------------------------------
def test_write_colmap_text_round_trips_exactly(tmp_path):
    cameras = _ring_cameras(count=5)
    cameras[3] = Camera(cameras[3].world_to_camera, 64, 48, cameras[1].fx, cameras[1].fy, cameras[1].cx, cameras[1].cy)
    views = [View(c, "", f"v{i}.png") for i, c in enumerate(cameras)]
    write_colmap_text(tmp_path / "model", views)
    model = read_colmap_model(tmp_path / "model")
    assert len(model.cameras) == 4  # views 1 and 3 share intrinsics
    assert model.points_xyz.shape == (0, 3)
    for image, camera in zip(model.images.values(), cameras):
        loaded = model.camera_for(image)
        np.testing.assert_allclose(loaded.world_to_camera, camera.world_to_camera, atol=1e-14)
        assert (loaded.fx, loaded.fy, loaded.cx, loaded.cy) == (camera.fx, camera.fy, camera.cx, camera.cy)
    ortho = Camera(np.eye(4), 4, 4, 1, 1, 2, 2, projection="orthographic")
    with pytest.raises(ValueError, match="orthographic"):
        write_colmap_text(tmp_path / "o", [View(ortho, "", "o.png")])


def test_binary_and_text_models_load_the_same(tmp_path):
    _colmap_dataset(tmp_path)
    text_model = read_colmap_model(tmp_path / "sparse" / "0")
    binary = tmp_path / "binary"
    binary.mkdir()
    write_cameras_binary(str(binary / "cameras.bin"), text_model.cameras)
    write_images_binary(str(binary / "images.bin"), text_model.images)
    binary_model = read_colmap_model(binary)
    for image_id, image in text_model.images.items():
        np.testing.assert_array_equal(binary_model.images[image_id].world_to_camera, image.world_to_camera)
        assert binary_model.images[image_id].name == image.name
    for camera_id, camera in text_model.cameras.items():
        np.testing.assert_array_equal(binary_model.cameras[camera_id].params, camera.params)


def test_quaternion_conversion_round_trips_for_all_rotations():
    rng = np.random.default_rng(0)
    for _ in range(200):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        back = matrix_to_quaternion(quaternion_to_matrix(q))
        np.testing.assert_allclose(back, q if q[0] >= 0 else -q, atol=1e-12)
    for angle_axis in np.eye(3):  # 180 degree turns: the trace is -1
        rotation = 2 * np.outer(angle_axis, angle_axis) - np.eye(3)
        np.testing.assert_allclose(quaternion_to_matrix(matrix_to_quaternion(rotation)), rotation, atol=1e-12)


def test_downscaled_folder_is_used_with_intrinsics_fitted_to_its_files(tmp_path):
    views = _colmap_dataset(tmp_path, cameras=_ring_cameras(width=63, height=47), downscaled=(2, 4))
    full = load_dataset(tmp_path)
    half = load_dataset(tmp_path, resolution=2)
    assert half.image_folder == str(tmp_path / "images_2")
    for a, b, view in zip(full.views, half.views, views):
        assert (b.camera.width, b.camera.height) == (32, 24)  # the real size of the files (63/2, 47/2 rounded)
        assert b.camera.fx == pytest.approx(view.camera.fx * 32 / 63) and b.camera.cy == pytest.approx(view.camera.cy * 24 / 47)
        point = np.array([[0.1, -0.2, 0.3]])
        np.testing.assert_allclose(b.camera.project(point)[0], a.camera.project(point)[0] * [32 / 63, 24 / 47])
        assert b.image_path == str(tmp_path / "images_2" / view.name)
    assert load_dataset(tmp_path, resolution=8).image_folder == str(tmp_path / "images")  # no images_8


def test_custom_image_folder_name(tmp_path):
    views = _colmap_dataset(tmp_path)
    os.rename(tmp_path / "images", tmp_path / "rgb")
    with pytest.raises(DatasetError, match="images: image folder not found"):
        load_dataset(tmp_path)
    dataset = load_dataset(tmp_path, images="rgb")
    assert dataset.views[2].image_path == str(tmp_path / "rgb" / views[2].name)


def test_missing_image_is_named(tmp_path):
    views = _colmap_dataset(tmp_path)
    os.remove(tmp_path / "images" / views[1].name)
    with pytest.raises(DatasetError, match=f"{views[1].name}: image file not found.*sparse/0"):
        load_dataset(tmp_path)


def test_image_with_another_aspect_ratio_is_refused(tmp_path):
    views = _colmap_dataset(tmp_path)
    _write_image(str(tmp_path / "images" / views[0].name), (64, 64))
    with pytest.raises(DatasetError, match="image is 64x64 but its camera is 64x48"):
        load_dataset(tmp_path)


@pytest.mark.parametrize("name, content, message", [
    ("cameras.txt", "1 PINHOLE 64 48 1 2 3\n", "line 1: model PINHOLE needs 4 parameters, got 3"),
    ("cameras.txt", "1 FISHEYE_X 64 48 1 2 3\n", "line 1: expected 'CAMERA_ID MODEL"),
    ("cameras.txt", "# c\n1 PINHOLE 64 48 1 2 3 x\n", "line 2: malformed camera parameters"),
    ("images.txt", "1 1 0 0 0 0 0\n\n", "line 1: expected 'IMAGE_ID QW"),
    ("images.txt", "1 1 0 0 0 0 0 0 9 a.png\n\n", "image 1 \\(a.png\\) refers to camera 9"),
    ("images.txt", "x 1 0 0 0 0 0 0 1 a.png\n\n", "line 1: malformed image pose"),
    ("points3D.txt", "1 0 0\n", "line 1: expected 'POINT3D_ID"),
])
def test_malformed_text_models(tmp_path, name, content, message):
    _colmap_dataset(tmp_path)
    (tmp_path / "sparse" / "0" / name).write_text(content)
    with pytest.raises(DatasetError, match=message) as info:
        load_dataset(tmp_path)
    assert name in str(info.value)


def test_truncated_binary_model(tmp_path):
    cameras = {1: ColmapCamera(1, "PINHOLE", 64, 48, np.array([1.0, 2.0, 3.0, 4.0]))}
    write_cameras_binary(str(tmp_path / "cameras.bin"), cameras)
    data = (tmp_path / "cameras.bin").read_bytes()
    (tmp_path / "cameras.bin").write_bytes(data[:-5])
    with pytest.raises(DatasetError, match="cameras.bin: truncated COLMAP binary file"):
        read_cameras_binary(str(tmp_path / "cameras.bin"))


@pytest.mark.parametrize("resolution", [0, -3, "2", True, 1.5, float("nan"), float("inf")])
def test_bad_resolution(tmp_path, resolution):
    _colmap_dataset(tmp_path)
    with pytest.raises(DatasetError, match="resolution must be"):
        load_dataset(tmp_path, resolution=resolution)


def test_not_a_dataset(tmp_path):
    with pytest.raises(DatasetError, match="no dataset found"):
        load_dataset(tmp_path)
    with pytest.raises(DatasetError, match="dataset folder not found"):
        load_dataset(tmp_path / "missing")


# -- INRIA output folders ----------------------------------------------------------------------
def _inria_output(tmp_path, source, cfg=True):
    output = tmp_path / "output"
    ply = output / "point_cloud" / "iteration_30000" / "point_cloud.ply"
    ply.parent.mkdir(parents=True)
    ply.write_bytes(b"ply\n")
    (output / "cameras.json").write_text("[]")
    if cfg:
        (output / "cfg_args").write_text(f"Namespace(images='images', resolution=2, source_path={str(source)!r}, "
                                         "sh_degree=3, white_background=False)")
    return output, ply


def test_inria_output_uses_the_source_dataset_and_its_settings(tmp_path):
    source = tmp_path / "scene"
    _colmap_dataset(source, downscaled=(2,))
    output, ply = _inria_output(tmp_path, source)
    dataset = load_dataset(output)
    assert dataset.kind == "inria" and dataset.root == str(output)
    assert dataset.image_folder == str(source / "images_2")  # resolution=2 from cfg_args
    assert load_dataset(output, resolution=1).image_folder == str(source / "images")
    assert find_dataset_for_ply(ply) == str(output)


def test_inria_output_without_cfg_args_needs_a_source_path(tmp_path):
    source = tmp_path / "scene"
    _colmap_dataset(source)
    output, _ = _inria_output(tmp_path, source, cfg=False)
    with pytest.raises(DatasetError, match="without cfg_args: give the training dataset folder"):
        load_dataset(output)
    assert len(load_dataset(output, source_path=source)) == 4
    with pytest.raises(DatasetError, match="source_path\\) not found"):
        load_dataset(output, source_path=tmp_path / "nowhere")


@pytest.mark.parametrize("layout", ["inside", "beside"])
def test_inria_output_finds_its_moved_dataset_by_name(tmp_path, layout):
    source = tmp_path / "garden"
    _colmap_dataset(source)
    output = source / "output" if layout == "inside" else tmp_path / "garden_output"
    output.mkdir()
    (output / "cameras.json").write_text("[]")
    (output / "cfg_args").write_text("Namespace(images='images', resolution=-1, "
                                     "source_path='C:\\\\Users\\\\me\\\\garden')")
    assert parse_cfg_args(output / "cfg_args")["source_path"] == "C:\\Users\\me\\garden"
    dataset = load_dataset(output)
    assert dataset.image_folder == str(source / "images") and len(dataset) == 4


def test_find_dataset_for_ply(tmp_path):
    _colmap_dataset(tmp_path / "scene")
    (tmp_path / "scene" / "splat.ply").write_bytes(b"ply\n")
    assert find_dataset_for_ply(tmp_path / "scene" / "splat.ply") == str(tmp_path / "scene")
    (tmp_path / "alone").mkdir()
    assert find_dataset_for_ply(tmp_path / "alone" / "splat.ply") is None


# -- nerfstudio ----------------------------------------------------------------------------------
def _nerfstudio(root, frames_extra=None, **top):
    cameras = _ring_cameras(count=3)
    frames = []
    for i, camera in enumerate(cameras):
        c2w_gl = camera.camera_to_world @ np.diag([1.0, -1.0, -1.0, 1.0])
        frames.append({"file_path": f"images/frame_{i:05d}.png", "transform_matrix": c2w_gl.tolist(),
                       **(frames_extra or {}).get(i, {})})
        _write_image(str(root / "images" / f"frame_{i:05d}.png"), (64, 48))
    data = {"camera_model": "OPENCV", "fl_x": 60.0, "fl_y": 61.0, "cx": 32.25, "cy": 23.5, "w": 64, "h": 48,
            "frames": frames, **top}
    (root / "transforms.json").write_text(json.dumps(data))
    return cameras


def test_nerfstudio_dataset(tmp_path):
    cameras = _nerfstudio(tmp_path, frames_extra={2: {"fl_x": 70.0}})
    dataset = load_dataset(tmp_path)
    assert dataset.kind == "nerfstudio" and [v.name for v in dataset.views] == [
        "frame_00000.png", "frame_00001.png", "frame_00002.png"]
    for view, camera in zip(dataset.views, cameras):
        np.testing.assert_allclose(view.camera.world_to_camera, camera.world_to_camera, atol=1e-12)
    assert dataset.views[0].camera.fx == 60.0 and dataset.views[2].camera.fx == 70.0
    assert dataset.views[1].camera.cx == 32.25 and dataset.applied_transform is None
    assert load_dataset(tmp_path / "transforms.json").views[1].image_path == dataset.views[1].image_path


def test_nerfstudio_applied_transform_can_be_undone(tmp_path):
    applied = np.eye(4)[:3][[0, 2, 1]]
    applied[2] *= -1  # what ns-process-data applies to COLMAP worlds
    cameras = _nerfstudio(tmp_path, applied_transform=applied.tolist())
    as_stored = load_dataset(tmp_path)
    np.testing.assert_allclose(as_stored.applied_transform[:3], applied)
    undone = load_dataset(tmp_path, undo_applied_transform=True)
    transform = np.vstack([applied, [0, 0, 0, 1]])
    for a, b, camera in zip(as_stored.views, undone.views, cameras):
        np.testing.assert_allclose(a.camera.world_to_camera, camera.world_to_camera, atol=1e-12)
        point = np.array([0.2, -0.1, 0.4])  # a point in the stored world is transform^-1 in the COLMAP world
        original = (np.linalg.inv(transform) @ np.append(point, 1))[:3]
        np.testing.assert_allclose(b.camera.project(original[None])[0], a.camera.project(point[None])[0], atol=1e-9)


def test_nerfstudio_distortion_warns(tmp_path):
    _nerfstudio(tmp_path, k1=0.01)
    with pytest.warns(UserWarning, match="transforms.json: the cameras have lens distortion"):
        dataset = load_dataset(tmp_path)
    assert dataset.warnings


def test_nerfstudio_downscaled_folder(tmp_path):
    _nerfstudio(tmp_path)
    for i in range(3):
        _write_image(str(tmp_path / "images_4" / f"frame_{i:05d}.png"), (16, 12))
    view = load_dataset(tmp_path, resolution=4).views[0]
    assert view.image_path == str(tmp_path / "images_4" / "frame_00000.png")
    assert (view.camera.width, view.camera.fx, view.camera.cx) == (16, 15.0, 32.25 / 4)


def test_nerf_synthetic_camera_angle_and_extensionless_paths(tmp_path):
    c2w = np.eye(4)
    c2w[2, 3] = 4.0
    frames = [{"file_path": "./train/r_0", "transform_matrix": c2w.tolist()}]
    (tmp_path / "transforms.json").write_text(json.dumps({"camera_angle_x": 0.6911112070083618, "frames": frames}))
    _write_image(str(tmp_path / "train" / "r_0.png"), (80, 80))
    view = load_dataset(tmp_path / "transforms.json").views[0]
    assert view.name == "r_0.png" and view.image_path == str(tmp_path / "train" / "r_0.png")
    assert view.camera.fx == pytest.approx(0.5 * 80 / np.tan(0.5 * 0.6911112070083618))
    uv, depth = view.camera.project(np.zeros((1, 3)))
    np.testing.assert_allclose(uv[0], [40.0, 40.0])
    assert depth[0] == pytest.approx(4.0)


@pytest.mark.parametrize("change, message", [
    ({"frames": []}, "no 'frames' list"),
    ({"camera_model": "EQUIRECTANGULAR"}, "EQUIRECTANGULAR"),
    ({"frames": [{"file_path": "images/frame_00000.png"}]}, "frame 0: needs 'file_path' and 'transform_matrix'"),
    ({"frames": [{"file_path": "images/frame_00000.png", "transform_matrix": [[1, 0], [0, 1]]}]}, "must be 4x4"),
    ({"fl_x": None}, "frame 0: no focal length"),
    ({"fl_x": "wide"}, "fl_x must be a number"),
    ({"applied_transform": [1, 2]}, "applied_transform must be a 3x4"),
])
def test_bad_nerfstudio_files(tmp_path, change, message):
    _nerfstudio(tmp_path)
    data = json.loads((tmp_path / "transforms.json").read_text())
    data.update(change)
    (tmp_path / "transforms.json").write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=message):
        load_dataset(tmp_path)


def test_unreadable_json(tmp_path):
    (tmp_path / "transforms.json").write_text("{oops")
    with pytest.raises(DatasetError, match="transforms.json: cannot read JSON"):
        load_dataset(tmp_path)


def test_loading_does_not_warn_for_undistorted_data(tmp_path, real_data):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_dataset(real_data(SNOWMIKU))
        _nerfstudio(tmp_path)
        load_dataset(tmp_path)


def test_read_images_text_keeps_names_with_spaces(tmp_path):
    (tmp_path / "images.txt").write_text("# header\n3 1 0 0 0 0.5 0 0 1 my photo 1.jpg\n1.0 2.0 -1\n")
    image = read_images_text(str(tmp_path / "images.txt"))[3]
    assert image.name == "my photo 1.jpg" and image.tvec[0] == 0.5
