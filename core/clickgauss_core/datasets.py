"""Training views (cameras + image paths) of a 3DGS scene, from the folders people actually have.

`load_dataset(path, images=None, resolution=None)` accepts:
- a COLMAP dataset: `<root>/images/` + `<root>/sparse/0/` (or `<root>/sparse/`), binary or
  text model; `path` may also be the model folder itself;
- an INRIA 3DGS training output folder: `cameras.json` + `cfg_args` (the Namespace(...) the
  trainer saved, parsed with `ast`, never evaluated) naming the dataset (`source_path`,
  `images`, `resolution`). The dataset's own COLMAP/nerfstudio cameras are used when it has
  them (exact principal point); `cameras.json` alone otherwise (principal point at the image
  centre, as INRIA assumes). `source_path=` overrides a source path that does not exist here;
- a nerfstudio / NeRF-synthetic `transforms.json` (OpenGL camera axes, see `_load_nerfstudio`).

Views are sorted by image name (as the INRIA trainer does) for COLMAP and INRIA; nerfstudio keeps
the frame order. `View.name` is the image path relative to the image folder; mask folders use
its stem. Every camera matches the size of the image file it points to (read from the PNG/JPEG
header): a downscaled folder (`images_2`, `images_4`, `images_8`) gets the intrinsics scaled to
its real size. `resolution` is INRIA's option: 1, 2, 4 or 8 = downscale factor, any other
positive number = target width, None or -1 = as stored. When the factor has no pre-scaled folder,
the camera is scaled and the image file is the full-size one: resize it to the camera's size.
"""

from __future__ import annotations

import ast
import json
import os
import warnings
from dataclasses import dataclass, field

import numpy as np

from .cameras import Camera
from .colmap import is_colmap_model_folder, read_colmap_model
from .confinement import check_confined
from .errors import DatasetError
from .images import IMAGE_EXTENSIONS, image_size

DOWNSCALE_FACTORS = (1, 2, 4, 8)
# A downscaled image may differ from the exact ratio by this many pixels per side (rounding).
SIZE_ROUNDING_PIXELS = 1.0
DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")


@dataclass
class View:
    camera: Camera    # OpenCV axes, sized like the image the backend should load
    image_path: str   # absolute path of the image file
    name: str         # image path relative to the image folder (COLMAP's image NAME)


@dataclass
class Dataset:
    root: str                       # the folder given to load_dataset
    kind: str                       # "colmap" | "inria" | "nerfstudio"
    views: list[View]
    image_folder: str               # where the image files were found
    points_xyz: np.ndarray | None = None    # SfM points (COLMAP points3D), world frame
    points_rgb: np.ndarray | None = None
    applied_transform: np.ndarray | None = None  # nerfstudio's 4x4 (see _load_nerfstudio)
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.views)

    def view_named(self, name: str) -> View:
        for view in self.views:
            if view.name == name:
                return view
        raise KeyError(name)


# -- public entry points -------------------------------------------------------------------------
def load_dataset(path: str | os.PathLike, images: str | None = None, resolution: float | None = None,
                 source_path: str | os.PathLike | None = None, undo_applied_transform: bool = False) -> Dataset:
    """Load the views of a COLMAP, INRIA-output or nerfstudio dataset (see the module doc).

    images: image folder name relative to the dataset root (default "images"; nerfstudio: the
        first folder of each frame's file_path). resolution: see the module doc.
    source_path: the training dataset of an INRIA output folder, when cfg_args' one is absent or
        elsewhere. undo_applied_transform: nerfstudio only, map poses back to the COLMAP world.
    """
    path = os.fspath(path)
    resolution = _check_resolution(path, resolution)
    if os.path.isfile(path):
        base = os.path.basename(path)
        if base in ("cameras.json", "cfg_args"):
            return _load_inria(os.path.dirname(path) or ".", images, resolution, source_path)
        if base.endswith(".json"):
            return _load_nerfstudio(path, images, resolution, undo_applied_transform)
        raise DatasetError(path, "not a dataset: expected a folder, transforms.json or cameras.json")
    if not os.path.isdir(path):
        raise DatasetError(path, "dataset folder not found")
    model_folder = _colmap_model_folder(path)
    if model_folder is not None:
        return _load_colmap(path, model_folder, images, resolution)
    if os.path.isfile(os.path.join(path, "transforms.json")):
        return _load_nerfstudio(os.path.join(path, "transforms.json"), images, resolution, undo_applied_transform)
    if os.path.isfile(os.path.join(path, "cameras.json")) or os.path.isfile(os.path.join(path, "cfg_args")):
        return _load_inria(path, images, resolution, source_path)
    if is_colmap_model_folder(path):  # the model folder itself: <root>/sparse/0
        parent = os.path.dirname(os.path.abspath(path))
        root = os.path.dirname(parent) if os.path.basename(parent) == "sparse" else parent
        return _load_colmap(root, path, images, resolution)
    raise DatasetError(path, "no dataset found: expected sparse/0 (COLMAP), transforms.json (nerfstudio) "
                             "or cameras.json + cfg_args (INRIA output)")


def find_dataset_for_ply(ply_path: str | os.PathLike) -> str | None:
    """The dataset folder that belongs to a PLY, or None.

    INRIA layout: `<out>/point_cloud/iteration_N/point_cloud.ply` -> `<out>` (cameras.json,
    cfg_args). Otherwise the PLY's own folder or one of its two parents if it is a dataset.
    """
    folder = os.path.dirname(os.path.abspath(os.fspath(ply_path)))
    candidates = [folder, os.path.dirname(folder), os.path.dirname(os.path.dirname(folder))]
    if os.path.basename(candidates[1]) == "point_cloud":
        candidates.insert(0, candidates[2])
    for candidate in candidates:
        if any(os.path.isfile(os.path.join(candidate, f)) for f in ("cameras.json", "cfg_args", "transforms.json")):
            return candidate
        if _colmap_model_folder(candidate) is not None:
            return candidate
    return None


def parse_cfg_args(path: str | os.PathLike) -> dict:
    """The keyword arguments of the `Namespace(...)` the INRIA trainer writes, as Python literals."""
    path = os.fspath(path)
    check_confined(path, "dataset file")
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read().strip()
        tree = ast.parse(text, mode="eval").body
    except (OSError, SyntaxError, UnicodeDecodeError) as exc:
        raise DatasetError(path, f"cannot parse cfg_args ({exc.__class__.__name__}: {exc})") from None
    if not (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and tree.func.id == "Namespace"
            and not tree.args):
        raise DatasetError(path, "cfg_args is not a Namespace(key=value, ...) expression")
    values = {}
    for keyword in tree.keywords:
        try:
            values[keyword.arg] = ast.literal_eval(keyword.value)
        except ValueError:
            raise DatasetError(path, f"cfg_args: value of {keyword.arg!r} is not a Python literal") from None
    return values


# -- helpers -------------------------------------------------------------------------------------
def _check_resolution(path: str, resolution) -> float | None:
    if resolution is None or resolution == -1:
        return None
    if (isinstance(resolution, bool) or not isinstance(resolution, (int, float)) or not 0 < resolution < np.inf
            or (resolution not in DOWNSCALE_FACTORS and resolution != int(resolution))):
        raise DatasetError(path, f"resolution must be a downscale factor (1, 2, 4, 8), a target width in pixels "
                                 f"or -1, got {resolution!r}")
    return resolution


def _colmap_model_folder(root: str) -> str | None:
    for candidate in (os.path.join(root, "sparse", "0"), os.path.join(root, "sparse")):
        if os.path.isdir(candidate) and is_colmap_model_folder(candidate):
            return candidate
    return None


def _image_folder(root: str, images: str | None, resolution) -> tuple[str, float | None]:
    """(folder with the image files, factor still to apply to the cameras or None)."""
    base = os.path.join(root, images or "images")
    if not os.path.isdir(base):
        raise DatasetError(base, "image folder not found" + ("" if images else " (pass images= for another name)"))
    if resolution in DOWNSCALE_FACTORS and resolution > 1:
        scaled = f"{base}_{int(resolution)}"
        if os.path.isdir(scaled):
            return scaled, None
    return base, resolution


def _find_image(path: str, dataset_file: str, name: str) -> str:
    candidates = [path] + ([path + ext for ext in IMAGE_EXTENSIONS]
                           if not os.path.splitext(path)[1] else [])  # nerfstudio may omit the extension
    for candidate in candidates:
        if os.path.isfile(candidate):
            check_confined(candidate, f"image of view {name!r}")
            return candidate
    raise DatasetError(path, f"image file not found (view {name!r} of {dataset_file})")


def _fit_to_image(camera: Camera, image_path: str, pending_resolution) -> Camera:
    """Scale the camera to the image file's real size, then apply a pending downscale."""
    width, height = image_size(image_path)
    if (width, height) != (camera.width, camera.height):
        expected_height = camera.height * width / camera.width
        if abs(height - expected_height) > SIZE_ROUNDING_PIXELS + 1e-6 * height:
            raise DatasetError(image_path, f"image is {width}x{height} but its camera is {camera.width}x{camera.height} "
                                           "(a different aspect ratio: wrong image folder or camera?)")
        camera = camera.resized(width, height)
    if pending_resolution is None or pending_resolution == 1:
        return camera
    if pending_resolution in DOWNSCALE_FACTORS:
        target_width = max(1, round(width / pending_resolution))
        target_height = max(1, round(height / pending_resolution))
    else:
        target_width = int(round(pending_resolution))
        target_height = max(1, round(height * target_width / width))
    return camera.resized(target_width, target_height)


def _views(cameras_and_names, folder: str, dataset_file: str, pending_resolution) -> list[View]:
    views = []
    for camera, name in cameras_and_names:
        image_path = _find_image(os.path.join(folder, name), dataset_file, name)
        camera = _fit_to_image(camera, image_path, pending_resolution)
        name = os.path.relpath(image_path, folder).replace(os.sep, "/")
        camera.name = name
        camera.extra["image_path"] = image_path
        views.append(View(camera=camera, image_path=image_path, name=name))
    return views


# -- COLMAP ------------------------------------------------------------------------------------
def _load_colmap(root: str, model_folder: str, images, resolution, kind: str = "colmap",
                 dataset_root: str | None = None) -> Dataset:
    model = read_colmap_model(model_folder)
    folder, pending = _image_folder(root, images, resolution)
    ordered = sorted(model.images.values(), key=lambda image: image.name)
    views = _views(((model.camera_for(image), image.name) for image in ordered), folder, model_folder, pending)
    if not views:
        raise DatasetError(model_folder, "the COLMAP model has no images")
    return Dataset(root=dataset_root or root, kind=kind, views=views, image_folder=folder,
                   points_xyz=model.points_xyz, points_rgb=model.points_rgb, warnings=list(model.warnings))


# -- INRIA output folder -------------------------------------------------------------------------
def _load_inria(folder: str, images, resolution, source_path) -> Dataset:
    cfg_path = os.path.join(folder, "cfg_args")
    cfg = parse_cfg_args(cfg_path) if os.path.isfile(cfg_path) else {}
    images = images or cfg.get("images")
    if resolution is None:
        resolution = _check_resolution(cfg_path, cfg.get("resolution"))
    if source_path is not None:
        source = os.fspath(source_path)
        if not os.path.isdir(source):
            raise DatasetError(source, "dataset folder (source_path) not found")
    elif "source_path" in cfg:
        source = _resolve_source_path(folder, cfg_path, str(cfg["source_path"]))
    else:
        raise DatasetError(folder, "INRIA output folder without cfg_args: give the training dataset folder "
                                   "(the one with images/) as the dataset instead, or as source_path=")
    model_folder = _colmap_model_folder(source)
    if model_folder is not None:
        return _load_colmap(source, model_folder, images, resolution, kind="inria", dataset_root=folder)
    if os.path.isfile(os.path.join(source, "transforms.json")):
        dataset = _load_nerfstudio(os.path.join(source, "transforms.json"), images, resolution, False)
        dataset.root, dataset.kind = folder, "inria"
        return dataset
    return _load_inria_cameras_json(folder, source, images, resolution)


def _resolve_source_path(folder: str, cfg_path: str, source: str) -> str:
    """cfg_args holds the path as typed at training time: absolute, or relative to that shell.

    When it does not exist here (another machine, a Windows path), a folder with the same name
    that holds the output folder or sits beside it is taken if it is a dataset.
    """
    candidates = [source] if os.path.isabs(source) else [os.path.join(folder, source),
                                                          os.path.join(os.path.dirname(folder), source), source]
    for candidate in candidates:
        if os.path.isdir(candidate):
            return candidate
    name = source.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    absolute = os.path.abspath(folder)
    moved = [parent for parent in (os.path.dirname(absolute), os.path.dirname(os.path.dirname(absolute)))
             if os.path.basename(parent) == name]
    moved += [os.path.join(os.path.dirname(absolute), name), os.path.join(os.path.dirname(os.path.dirname(absolute)), name)]
    for candidate in moved:
        if name and (_colmap_model_folder(candidate) is not None
                     or os.path.isfile(os.path.join(candidate, "transforms.json"))):
            return candidate
    raise DatasetError(cfg_path, f"source_path {source!r} (the training dataset) does not exist on this machine: "
                                 "give the dataset folder (with images/ and sparse/0 or transforms.json) as the "
                                 "dataset instead, or as source_path= together with this output folder")


def _read_inria_cameras(path: str) -> list[tuple[Camera, str]]:
    """(camera, image name) of every entry of an INRIA `cameras.json`, sorted by name."""
    entries = _read_json(path)
    if not isinstance(entries, list) or not entries:
        raise DatasetError(path, "expected a non-empty JSON list of cameras")
    cameras = []
    for index, entry in enumerate(entries):
        try:
            rotation = np.array(entry["rotation"], dtype=np.float64).reshape(3, 3)  # camera -> world
            position = np.array(entry["position"], dtype=np.float64).reshape(3)
            width, height = int(entry["width"]), int(entry["height"])
            fx, fy, name = float(entry["fx"]), float(entry["fy"]), str(entry["img_name"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(path, f"camera {index}: missing or malformed field ({exc.__class__.__name__}: {exc})") from None
        w2c = np.eye(4)
        w2c[:3, :3] = rotation.T
        w2c[:3, 3] = -rotation.T @ position
        # cameras.json drops the principal point; the INRIA trainer assumes the image centre.
        cameras.append((Camera(world_to_camera=w2c, width=width, height=height, fx=fx, fy=fy,
                               cx=width / 2, cy=height / 2, name=name), name))
    cameras.sort(key=lambda item: item[1])
    return cameras


def _load_inria_cameras_json(folder: str, source: str, images, resolution) -> Dataset:
    path = os.path.join(folder, "cameras.json")
    if not os.path.isfile(path):
        raise DatasetError(folder, f"no cameras.json, and the dataset {source} has no COLMAP model or transforms.json")
    cameras = _read_inria_cameras(path)
    image_folder, pending = _image_folder(source, images, resolution)
    views = _views(cameras, image_folder, path, pending)
    return Dataset(root=folder, kind="inria", views=views, image_folder=image_folder)


def load_poses(path: str | os.PathLike) -> list[Camera]:
    """The camera poses of a capture whose photos are missing: an INRIA `cameras.json` (the file or
    a folder holding it) or a COLMAP model (`<root>/sparse/0`, `<root>/sparse` or the model folder).
    Cameras keep the image names and sizes of the model; no image file is opened."""
    path = os.fspath(path)
    if os.path.isfile(path):
        if os.path.basename(path).endswith(".json"):
            return [camera for camera, _ in _read_inria_cameras(path)]
        raise DatasetError(path, "not a pose file: expected cameras.json or a COLMAP model folder")
    if not os.path.isdir(path):
        raise DatasetError(path, "pose file or folder not found")
    model_folder = _colmap_model_folder(path) or (path if is_colmap_model_folder(path) else None)
    if model_folder is not None:
        model = read_colmap_model(model_folder, read_points=False)
        cameras = []
        for image in sorted(model.images.values(), key=lambda image: image.name):
            camera = model.camera_for(image)
            camera.name = image.name
            cameras.append(camera)
        if not cameras:
            raise DatasetError(model_folder, "the COLMAP model has no images")
        return cameras
    if os.path.isfile(os.path.join(path, "cameras.json")):
        return [camera for camera, _ in _read_inria_cameras(os.path.join(path, "cameras.json"))]
    raise DatasetError(path, "no camera poses found: expected cameras.json or a COLMAP model (sparse/0)")


# -- nerfstudio ----------------------------------------------------------------------------------
def _read_json(path: str):
    check_confined(path, "dataset file")
    try:
        with open(path, encoding="utf-8") as stream:
            return json.load(stream)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(path, f"cannot read JSON ({exc})") from None


def _load_nerfstudio(path: str, images, resolution, undo_applied_transform: bool) -> Dataset:
    """nerfstudio `transforms.json` (also NeRF-synthetic `camera_angle_x` files).

    Each frame's `transform_matrix` is camera -> world with OpenGL camera axes (x right, y up,
    looking down -z); intrinsics fl_x fl_y cx cy w h come per frame or globally. nerfstudio's
    ns-process-data stores `applied_transform` (3x4): the transform it applied to the COLMAP world
    (poses here = A @ COLMAP poses, A = applied_transform as 4x4). Poses are returned in the
    transforms.json world; `undo_applied_transform=True` maps them back to the COLMAP world (use
    it when the PLY was trained on the COLMAP model, e.g. by the INRIA trainer).
    """
    data = _read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("frames"), list) or not data["frames"]:
        raise DatasetError(path, "not a nerfstudio transforms.json: no 'frames' list")
    root = os.path.dirname(os.path.abspath(path))
    applied = None
    if "applied_transform" in data:
        try:
            applied = np.vstack([np.array(data["applied_transform"], dtype=np.float64).reshape(3, 4), [0, 0, 0, 1]])
        except (TypeError, ValueError):
            raise DatasetError(path, "applied_transform must be a 3x4 matrix") from None
    camera_model = str(data.get("camera_model", "OPENCV"))
    if camera_model == "EQUIRECTANGULAR":
        raise DatasetError(path, "EQUIRECTANGULAR cameras cannot be rendered as pinhole views")
    dataset_warnings = []
    distorted = camera_model == "OPENCV_FISHEYE" or any(
        float(frame.get(key, data.get(key, 0.0)) or 0.0) != 0.0
        for frame in data["frames"] if isinstance(frame, dict) for key in DISTORTION_KEYS)
    if distorted:
        message = (f"{path}: the cameras have lens distortion ({camera_model}, k/p coefficients); ClickGauss renders "
                   "pinhole cameras, so masks will not line up exactly. Undistort the images first "
                   "(e.g. COLMAP's image_undistorter) and use their pinhole intrinsics.")
        dataset_warnings.append(message)
        warnings.warn(message, stacklevel=3)

    pending_entries = []
    for index, frame in enumerate(data["frames"]):
        if not isinstance(frame, dict) or "file_path" not in frame or "transform_matrix" not in frame:
            raise DatasetError(path, f"frame {index}: needs 'file_path' and 'transform_matrix'")
        try:
            c2w = np.array(frame["transform_matrix"], dtype=np.float64).reshape(4, 4)
        except (TypeError, ValueError):
            raise DatasetError(path, f"frame {index}: transform_matrix must be 4x4") from None
        if not np.isfinite(c2w).all():
            raise DatasetError(path, f"frame {index}: transform_matrix has NaN/inf")
        if undo_applied_transform and applied is not None:
            c2w = np.linalg.inv(applied) @ c2w
        pending_entries.append((index, frame, c2w, os.path.normpath(str(frame["file_path"]))))

    # The image folder: `images=` or the first folder of the frames' paths (names are relative to
    # it, so images_2 etc. hold the same names); the dataset folder when the frames share none.
    first_parts = {entry[3].split(os.sep)[0] for entry in pending_entries if os.sep in entry[3]}
    shared_folder = first_parts.pop() if len(first_parts) == 1 and all(
        os.sep in entry[3] for entry in pending_entries) else None
    if shared_folder is not None:
        folder, pending_resolution = _image_folder(root, images or shared_folder, resolution)
    elif images:
        folder, pending_resolution = _image_folder(root, images, resolution)
    else:
        folder, pending_resolution = root, resolution
    views = []
    for index, frame, c2w, file_path in pending_entries:
        name = file_path.split(os.sep, 1)[1] if shared_folder is not None else file_path
        image_path = _find_image(os.path.join(folder, name), path, file_path)
        camera = Camera.from_opengl(c2w, **_nerfstudio_intrinsics(path, index, frame, data, image_path))
        views.extend(_views([(camera, os.path.relpath(image_path, folder))], folder, path, pending_resolution))
    return Dataset(root=root, kind="nerfstudio", views=views, image_folder=folder,
                   applied_transform=applied, warnings=dataset_warnings)


def _nerfstudio_intrinsics(path: str, index: int, frame: dict, data: dict, image_path: str) -> dict:
    def get(key):
        value = frame.get(key, data.get(key))
        if value is None:
            return None
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise DatasetError(path, f"frame {index}: {key} must be a number, got {value!r}") from None
        if not np.isfinite(value):
            raise DatasetError(path, f"frame {index}: {key} is not finite")
        return value

    width, height = get("w"), get("h")
    if width is None or height is None:
        width, height = image_size(image_path)
    fx, fy = get("fl_x"), get("fl_y")
    if fx is None:
        angle_x = get("camera_angle_x")
        if angle_x is None:
            raise DatasetError(path, f"frame {index}: no focal length (fl_x or camera_angle_x)")
        fx = 0.5 * width / np.tan(0.5 * angle_x)
    if fy is None:
        angle_y = get("camera_angle_y")
        fy = fx if angle_y is None else 0.5 * height / np.tan(0.5 * angle_y)
    cx, cy = get("cx"), get("cy")
    return dict(width=int(width), height=int(height), fx=fx, fy=fy,
                cx=width / 2 if cx is None else cx, cy=height / 2 if cy is None else cy)
