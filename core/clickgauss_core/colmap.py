"""COLMAP sparse models (`cameras`, `images`, optional `points3D`), binary and text, read and write.

Conventions (COLMAP's own): an image's pose is world -> camera, R = quaternion (qw, qx, qy, qz)
as a rotation matrix, t = tvec, camera axes OpenCV (x right, y down, z forward) — the same as
`Camera`. Camera parameter order per model follows COLMAP's `src/colmap/sensor/models.h`
(e.g. PINHOLE fx fy cx cy; SIMPLE_RADIAL f cx cy k). Image names are paths relative to the
image folder. Only the undistorted models (PINHOLE, SIMPLE_PINHOLE) describe the images
exactly; the others load as their pinhole part with a warning (run COLMAP's image_undistorter).
"""

from __future__ import annotations

import os
import struct
import warnings
from dataclasses import dataclass, field

import numpy as np

from .cameras import Camera
from .confinement import check_confined
from .errors import DatasetError

# model id -> (name, number of parameters), COLMAP's table.
CAMERA_MODELS = {
    0: ("SIMPLE_PINHOLE", 3), 1: ("PINHOLE", 4), 2: ("SIMPLE_RADIAL", 4), 3: ("RADIAL", 5),
    4: ("OPENCV", 8), 5: ("OPENCV_FISHEYE", 8), 6: ("FULL_OPENCV", 12), 7: ("FOV", 5),
    8: ("SIMPLE_RADIAL_FISHEYE", 4), 9: ("RADIAL_FISHEYE", 5), 10: ("THIN_PRISM_FISHEYE", 12),
    11: ("RAD_TAN_THIN_PRISM_FISHEYE", 16),
}
MODEL_IDS = {name: model_id for model_id, (name, _) in CAMERA_MODELS.items()}
PARAM_COUNTS = {name: count for name, count in CAMERA_MODELS.values()}
# Models whose first parameter is a single focal length f (then cx, cy).
SINGLE_FOCAL_MODELS = {"SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL", "SIMPLE_RADIAL_FISHEYE", "RADIAL_FISHEYE"}
UNDISTORTED_MODELS = {"SIMPLE_PINHOLE", "PINHOLE"}


@dataclass
class ColmapCamera:
    camera_id: int
    model: str
    width: int
    height: int
    params: np.ndarray  # float64, COLMAP's order for the model

    @property
    def pinhole(self) -> tuple[float, float, float, float]:
        """(fx, fy, cx, cy): the pinhole part of any model."""
        p = self.params
        if self.model in SINGLE_FOCAL_MODELS:
            return float(p[0]), float(p[0]), float(p[1]), float(p[2])
        return float(p[0]), float(p[1]), float(p[2]), float(p[3])


@dataclass
class ColmapImage:
    image_id: int
    qvec: np.ndarray  # (qw, qx, qy, qz) world -> camera
    tvec: np.ndarray
    camera_id: int
    name: str

    @property
    def world_to_camera(self) -> np.ndarray:
        matrix = np.eye(4)
        matrix[:3, :3] = quaternion_to_matrix(self.qvec)
        matrix[:3, 3] = self.tvec
        return matrix


@dataclass
class ColmapModel:
    folder: str
    cameras: dict[int, ColmapCamera]
    images: dict[int, ColmapImage]
    points_xyz: np.ndarray | None = None   # (P, 3) float64
    points_rgb: np.ndarray | None = None   # (P, 3) uint8
    warnings: list[str] = field(default_factory=list)

    def camera_for(self, image: ColmapImage) -> Camera:
        """The `Camera` of one image at the model's resolution (pinhole part of its model)."""
        cam = self.cameras[image.camera_id]
        fx, fy, cx, cy = cam.pinhole
        return Camera(world_to_camera=image.world_to_camera, width=cam.width, height=cam.height,
                      fx=fx, fy=fy, cx=cx, cy=cy, name=image.name)


def quaternion_to_matrix(qvec) -> np.ndarray:
    """(w, x, y, z) -> 3x3 rotation (normalised first: text files carry ~17 digits)."""
    w, x, y, z = np.asarray(qvec, dtype=np.float64) / np.linalg.norm(qvec)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def matrix_to_quaternion(rotation) -> np.ndarray:
    """3x3 rotation -> (w, x, y, z) with w >= 0 (Shepperd's method, stable for every angle)."""
    m = np.asarray(rotation, dtype=np.float64)
    trace = np.trace(m)
    candidates = [trace, m[0, 0], m[1, 1], m[2, 2]]
    k = int(np.argmax(candidates))
    if k == 0:
        s = np.sqrt(1.0 + trace) * 2
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif k == 1:
        s = np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2]) * 2
        q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif k == 2:
        s = np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2]) * 2
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s]
    else:
        s = np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1]) * 2
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s]
    q = np.array(q)
    return q if q[0] >= 0 else -q


# -- binary ------------------------------------------------------------------------------------
class _BinaryReader:
    """Little-endian struct reads that fail with a DatasetError naming the file."""

    def __init__(self, path: str):
        self.path = path
        check_confined(path, "COLMAP model file")
        with open(path, "rb") as stream:
            self.data = stream.read()
        self.offset = 0

    def read(self, fmt: str):
        size = struct.calcsize("<" + fmt)
        if self.offset + size > len(self.data):
            raise DatasetError(self.path, f"truncated COLMAP binary file (needs {self.offset + size} bytes, "
                                          f"has {len(self.data)})")
        values = struct.unpack_from("<" + fmt, self.data, self.offset)
        self.offset += size
        return values

    def read_string(self) -> str:
        end = self.data.find(b"\0", self.offset)
        if end < 0:
            raise DatasetError(self.path, "truncated COLMAP binary file (unterminated image name)")
        text = self.data[self.offset:end].decode("utf-8", errors="replace")
        self.offset = end + 1
        return text

    def skip(self, size: int) -> None:
        if self.offset + size > len(self.data):
            raise DatasetError(self.path, "truncated COLMAP binary file")
        self.offset += size


def read_cameras_binary(path: str) -> dict[int, ColmapCamera]:
    reader = _BinaryReader(path)
    cameras = {}
    for _ in range(reader.read("Q")[0]):
        camera_id, model_id, width, height = reader.read("iiQQ")
        if model_id not in CAMERA_MODELS:
            raise DatasetError(path, f"camera {camera_id}: unknown COLMAP camera model id {model_id}")
        model, count = CAMERA_MODELS[model_id]
        params = np.array(reader.read(f"{count}d"))
        cameras[camera_id] = ColmapCamera(camera_id, model, width, height, params)
    return cameras


def read_images_binary(path: str) -> dict[int, ColmapImage]:
    reader = _BinaryReader(path)
    images = {}
    for _ in range(reader.read("Q")[0]):
        values = reader.read("i7di")
        name = reader.read_string()
        reader.skip(reader.read("Q")[0] * 24)  # points2D: x, y (double), point3D id (int64)
        images[values[0]] = ColmapImage(values[0], np.array(values[1:5]), np.array(values[5:8]), values[8], name)
    return images


def read_points3d_binary(path: str) -> tuple[np.ndarray, np.ndarray]:
    reader = _BinaryReader(path)
    count = reader.read("Q")[0]
    xyz, rgb = np.zeros((count, 3)), np.zeros((count, 3), dtype=np.uint8)
    for i in range(count):
        values = reader.read("Q3d3Bd")
        xyz[i], rgb[i] = values[1:4], values[4:7]
        reader.skip(reader.read("Q")[0] * 8)  # track: image id, point2D index (int32 each)
    return xyz, rgb


def write_cameras_binary(path: str, cameras: dict[int, ColmapCamera]) -> None:
    with open(path, "wb") as stream:
        stream.write(struct.pack("<Q", len(cameras)))
        for cam in cameras.values():
            stream.write(struct.pack("<iiQQ", cam.camera_id, MODEL_IDS[cam.model], cam.width, cam.height))
            stream.write(struct.pack(f"<{len(cam.params)}d", *cam.params))


def write_images_binary(path: str, images: dict[int, ColmapImage]) -> None:
    with open(path, "wb") as stream:
        stream.write(struct.pack("<Q", len(images)))
        for image in images.values():
            stream.write(struct.pack("<i7di", image.image_id, *image.qvec, *image.tvec, image.camera_id))
            stream.write(image.name.encode("utf-8") + b"\0")
            stream.write(struct.pack("<Q", 0))


# -- text --------------------------------------------------------------------------------------
def _data_lines(path: str):
    """(line number, line) of the non-comment lines; blank lines kept (images.txt needs them)."""
    check_confined(path, "COLMAP model file")
    with open(path, encoding="utf-8") as stream:
        for number, line in enumerate(stream, start=1):
            if not line.startswith("#"):
                yield number, line.rstrip("\r\n")


def _parse(path: str, number: int, words: list[str], types: list, what: str):
    try:
        return [kind(word) for kind, word in zip(types, words, strict=True)]
    except ValueError:
        raise DatasetError(path, f"line {number}: malformed {what}: {' '.join(words)!r}") from None


def read_cameras_text(path: str) -> dict[int, ColmapCamera]:
    cameras = {}
    for number, line in _data_lines(path):
        words = line.split()
        if not words:
            continue
        if len(words) < 4 or words[1] not in PARAM_COUNTS:
            raise DatasetError(path, f"line {number}: expected 'CAMERA_ID MODEL WIDTH HEIGHT PARAMS...' "
                                     f"with a known model, got {line!r}")
        count = PARAM_COUNTS[words[1]]
        if len(words) != 4 + count:
            raise DatasetError(path, f"line {number}: model {words[1]} needs {count} parameters, got {len(words) - 4}")
        camera_id, width, height = _parse(path, number, [words[0], words[2], words[3]], [int, int, int], "camera")
        params = np.array(_parse(path, number, words[4:], [float] * count, "camera parameters"))
        cameras[camera_id] = ColmapCamera(camera_id, words[1], width, height, params)
    return cameras


def read_images_text(path: str) -> dict[int, ColmapImage]:
    images = {}
    lines = iter(_data_lines(path))
    for number, line in lines:
        words = line.split(maxsplit=9)
        if not words:
            continue  # stray blank line between entries
        if len(words) != 10:
            raise DatasetError(path, f"line {number}: expected 'IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME', "
                                     f"got {line!r}")
        values = _parse(path, number, words[:9], [int] + [float] * 7 + [int], "image pose")
        images[values[0]] = ColmapImage(values[0], np.array(values[1:5]), np.array(values[5:8]), values[8], words[9])
        next(lines, None)  # the POINTS2D line (possibly empty)
    return images


def read_points3d_text(path: str) -> tuple[np.ndarray, np.ndarray]:
    xyz, rgb = [], []
    for number, line in _data_lines(path):
        words = line.split()
        if not words:
            continue
        if len(words) < 8:
            raise DatasetError(path, f"line {number}: expected 'POINT3D_ID X Y Z R G B ERROR TRACK...', got {line!r}")
        values = _parse(path, number, words[1:7], [float] * 3 + [int] * 3, "point")
        xyz.append(values[:3])
        rgb.append(values[3:])
    return np.array(xyz, dtype=np.float64).reshape(-1, 3), np.array(rgb, dtype=np.uint8).reshape(-1, 3)


def _format_number(value: float) -> str:
    return repr(float(value))  # shortest text that reads back to the same double


def write_cameras_text(path: str, cameras: dict[int, ColmapCamera]) -> None:
    with open(path, "w", encoding="utf-8") as stream:
        stream.write("# Camera list with one line of data per camera:\n#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]\n")
        stream.write(f"# Number of cameras: {len(cameras)}\n")
        for cam in cameras.values():
            params = " ".join(_format_number(p) for p in cam.params)
            stream.write(f"{cam.camera_id} {cam.model} {cam.width} {cam.height} {params}\n")


def write_images_text(path: str, images: dict[int, ColmapImage]) -> None:
    with open(path, "w", encoding="utf-8") as stream:
        stream.write("# Image list with two lines of data per image:\n"
                     "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME\n#   POINTS2D[] as (X, Y, POINT3D_ID)\n")
        stream.write(f"# Number of images: {len(images)}\n")
        for image in images.values():
            pose = " ".join(_format_number(v) for v in (*image.qvec, *image.tvec))
            stream.write(f"{image.image_id} {pose} {image.camera_id} {image.name}\n\n")


def write_points3d_text(path: str, xyz, rgb=None) -> None:
    xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    rgb = np.full((len(xyz), 3), 128, dtype=np.uint8) if rgb is None else np.asarray(rgb, dtype=np.uint8).reshape(-1, 3)
    with open(path, "w", encoding="utf-8") as stream:
        stream.write("# 3D point list with one line of data per point:\n"
                     "#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)\n")
        stream.write(f"# Number of points: {len(xyz)}\n")
        for i, (point, color) in enumerate(zip(xyz, rgb), start=1):
            stream.write(f"{i} {' '.join(_format_number(v) for v in point)} {color[0]} {color[1]} {color[2]} 0\n")


# -- whole models --------------------------------------------------------------------------------
def is_colmap_model_folder(folder: str) -> bool:
    return any(os.path.isfile(os.path.join(folder, f"cameras{ext}")) for ext in (".bin", ".txt"))


def read_colmap_model(folder: str | os.PathLike, read_points: bool = True) -> ColmapModel:
    """Read a sparse model folder (`.bin` preferred over `.txt` when both exist, like COLMAP).

    Distorted camera models load as their pinhole part with a `warnings.warn` naming the file.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise DatasetError(folder, "COLMAP model folder not found")

    def pick(stem: str, required: bool) -> tuple[str | None, bool]:
        for ext, binary in ((".bin", True), (".txt", False)):
            candidate = os.path.join(folder, stem + ext)
            if os.path.isfile(candidate):
                return candidate, binary
        if required:
            raise DatasetError(folder, f"COLMAP model has no {stem}.bin or {stem}.txt")
        return None, False

    cameras_path, binary = pick("cameras", True)
    cameras = read_cameras_binary(cameras_path) if binary else read_cameras_text(cameras_path)
    images_path, binary = pick("images", True)
    images = read_images_binary(images_path) if binary else read_images_text(images_path)
    model = ColmapModel(folder, cameras, images)
    for image in images.values():
        if image.camera_id not in cameras:
            raise DatasetError(images_path, f"image {image.image_id} ({image.name}) refers to camera "
                                            f"{image.camera_id}, which {os.path.basename(cameras_path)} does not define")
    distorted = sorted({cam.model for cam in cameras.values() if cam.model not in UNDISTORTED_MODELS})
    if distorted:
        message = (f"{cameras_path}: camera model {', '.join(distorted)} has lens distortion; ClickGauss renders "
                   "pinhole cameras, so masks will not line up exactly. Run COLMAP's image_undistorter "
                   "(colmap image_undistorter --image_path ... --input_path ... --output_path ...) and load its output.")
        model.warnings.append(message)
        warnings.warn(message, stacklevel=2)
    if read_points:
        points_path, binary = pick("points3D", False)
        if points_path is not None:
            model.points_xyz, model.points_rgb = (read_points3d_binary if binary else read_points3d_text)(points_path)
    return model


def write_colmap_text(folder: str | os.PathLike, views, points_xyz=None, points_rgb=None) -> None:
    """Write `views` (objects with `.camera` and `.name`, e.g. datasets.View) as a COLMAP text model.

    `folder` is the model folder itself (e.g. `<dataset>/sparse/0`), created if missing. Views
    with identical intrinsics share one PINHOLE camera. `name` is the image path relative to the
    image folder. points3D.txt is always written (empty without points): COLMAP readers expect it.
    """
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    cameras: dict[int, ColmapCamera] = {}
    ids: dict[tuple, int] = {}
    images: dict[int, ColmapImage] = {}
    for image_id, view in enumerate(views, start=1):
        camera = view.camera
        if camera.projection != "perspective":
            raise ValueError(f"view {view.name!r}: COLMAP has no orthographic camera model")
        key = (camera.width, camera.height, camera.fx, camera.fy, camera.cx, camera.cy)
        if key not in ids:
            ids[key] = len(ids) + 1
            cameras[ids[key]] = ColmapCamera(ids[key], "PINHOLE", camera.width, camera.height, np.array(key[2:]))
        if not view.name or view.name != view.name.strip() or "\n" in view.name:
            raise ValueError(f"view name {view.name!r} cannot be written as a COLMAP image name")
        w2c = np.asarray(camera.world_to_camera, dtype=np.float64)
        images[image_id] = ColmapImage(image_id, matrix_to_quaternion(w2c[:3, :3]), w2c[:3, 3].copy(), ids[key], view.name)
    write_cameras_text(os.path.join(folder, "cameras.txt"), cameras)
    write_images_text(os.path.join(folder, "images.txt"), images)
    write_points3d_text(os.path.join(folder, "points3D.txt"), np.zeros((0, 3)) if points_xyz is None else points_xyz,
                        points_rgb)
