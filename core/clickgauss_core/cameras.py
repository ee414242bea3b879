"""Pinhole / orthographic cameras in one convention, shared by the add-on and the backend.

Convention (the COLMAP / OpenCV one, used on the wire and everywhere inside ClickGauss):
camera space is x right, y down, z forward (looking down +z). `world_to_camera` is a 4x4
rigid transform. A point p_cam = (x, y, z) lands on pixel
    perspective:  u = fx * x / z + cx,  v = fy * y / z + cy
    orthographic: u = fx * x + cx,      v = fy * y + cy      (fx, fy = pixels per world unit)
Pixel centres are at integer + 0.5 (pixel (0, 0) covers [0, 1) x [0, 1)).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

Projection = Literal["perspective", "orthographic"]

# OpenGL/Blender camera axes (x right, y up, looking down -z) -> OpenCV axes (x right, y down, +z).
OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])


@dataclass
class Camera:
    world_to_camera: np.ndarray  # (4, 4) float64, OpenCV axes
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    projection: Projection = "perspective"
    near: float = 0.01
    far: float = 1e4
    name: str = ""
    extra: dict = field(default_factory=dict)  # e.g. image path, source ids; never needed to render

    def __post_init__(self):
        self.world_to_camera = np.asarray(self.world_to_camera, dtype=np.float64).reshape(4, 4)
        self.width, self.height = int(self.width), int(self.height)
        self.fx, self.fy, self.cx, self.cy = float(self.fx), float(self.fy), float(self.cx), float(self.cy)
        self.near, self.far = float(self.near), float(self.far)

    @property
    def camera_to_world(self) -> np.ndarray:
        return np.linalg.inv(self.world_to_camera)

    @property
    def center(self) -> np.ndarray:
        """Camera position in world space."""
        return self.camera_to_world[:3, 3].copy()

    @property
    def intrinsics(self) -> np.ndarray:
        """3x3 K matrix (for orthographic cameras the same numbers, meaning pixels per unit)."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def scaled(self, factor: float) -> "Camera":
        """The same camera for an image resized by `factor` (0.5 = half resolution)."""
        width = max(1, int(round(self.width * factor)))
        height = max(1, int(round(self.height * factor)))
        sx, sy = width / self.width, height / self.height
        return replace(self, width=width, height=height, fx=self.fx * sx, fy=self.fy * sy,
                       cx=self.cx * sx, cy=self.cy * sy, extra=dict(self.extra))

    def resized(self, width: int, height: int) -> "Camera":
        """The same camera for the image resampled to exactly `width` x `height` pixels.

        Each axis scales by its own ratio (a downscaled image folder rounds each side separately).
        """
        sx, sy = width / self.width, height / self.height
        return replace(self, width=width, height=height, fx=self.fx * sx, fy=self.fy * sy,
                       cx=self.cx * sx, cy=self.cy * sy, extra=dict(self.extra))

    def cropped(self, x0: int, y0: int, width: int, height: int) -> "Camera":
        """The sub-window [x0, x0+width) x [y0, y0+height) of this image as a camera of its own.

        A click renders a 1x1 crop around the clicked pixel instead of the whole image.
        """
        return replace(self, width=width, height=height, cx=self.cx - x0, cy=self.cy - y0,
                       extra=dict(self.extra))

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points (N, 3) -> pixel coordinates (N, 2) and camera-space depth (N,)."""
        points = np.asarray(points, dtype=np.float64)
        cam = points @ self.world_to_camera[:3, :3].T + self.world_to_camera[:3, 3]
        depth = cam[:, 2]
        if self.projection == "perspective":
            with np.errstate(divide="ignore", invalid="ignore"):
                xy = cam[:, :2] / depth[:, None]
        else:
            xy = cam[:, :2]
        uv = np.stack([self.fx * xy[:, 0] + self.cx, self.fy * xy[:, 1] + self.cy], axis=1)
        return uv, depth

    def unproject(self, pixels: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """Pixel coordinates (N, 2) and camera-space depth (N,) -> world points (N, 3).

        The inverse of `project`: `unproject(*project(p))` gives `p` back (for depth > 0).
        """
        pixels = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
        depth = np.asarray(depth, dtype=np.float64).reshape(-1)
        xy = np.stack([(pixels[:, 0] - self.cx) / self.fx, (pixels[:, 1] - self.cy) / self.fy], axis=1)
        if self.projection == "perspective":
            xy = xy * depth[:, None]
        cam = np.concatenate([xy, depth[:, None]], axis=1)
        c2w = self.camera_to_world
        return cam @ c2w[:3, :3].T + c2w[:3, 3]

    def validate(self) -> None:
        """ValueError naming the first bad field: sizes, intrinsics, clip range, pose.

        The pose must be a rigid transform: finite, last row (0, 0, 0, 1), rotation part
        orthonormal with determinant +1 (tolerance 1e-4, enough for float32 round trips).
        """
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"width/height must be positive, got {self.width}x{self.height}")
        for name in ("fx", "fy", "cx", "cy", "near", "far"):
            if not np.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be a finite number, got {getattr(self, name)}")
        if self.fx <= 0 or self.fy <= 0:
            raise ValueError(f"fx and fy must be positive, got fx={self.fx}, fy={self.fy}")
        if self.projection not in ("perspective", "orthographic"):
            raise ValueError(f"projection must be 'perspective' or 'orthographic', got {self.projection!r}")
        # An orthographic view may clip behind its origin (Blender's ortho viewport does).
        lowest_near = -np.inf if self.projection == "orthographic" else 0.0
        if not lowest_near <= self.near < self.far:
            raise ValueError(f"near/far must satisfy 0 <= near < far (near may be negative for orthographic), "
                             f"got near={self.near}, far={self.far}")
        matrix = self.world_to_camera
        if not np.isfinite(matrix).all():
            raise ValueError("world_to_camera contains NaN/inf")
        if not np.allclose(matrix[3], [0.0, 0.0, 0.0, 1.0], atol=1e-6):
            raise ValueError(f"world_to_camera last row must be (0, 0, 0, 1), got {matrix[3].tolist()}")
        rotation = matrix[:3, :3]
        if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-4) or np.linalg.det(rotation) < 0:
            raise ValueError("world_to_camera rotation is not a proper rotation (orthonormal, det +1)")

    @classmethod
    def look_at(cls, eye, target, up=(0.0, 0.0, 1.0), **kwargs) -> "Camera":
        """A camera at `eye` looking at `target`, image 'up' towards world `up` (OpenCV axes)."""
        eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
        forward = target - eye
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, up)
        if np.linalg.norm(right) < 1e-9:
            raise ValueError("look_at: the viewing direction is parallel to 'up'")
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        c2w = np.eye(4)
        c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, down, forward, eye
        return cls(world_to_camera=np.linalg.inv(c2w), **kwargs)

    @classmethod
    def from_opengl(cls, camera_to_world_gl: np.ndarray, **kwargs) -> "Camera":
        """From an OpenGL/Blender/nerfstudio camera-to-world matrix (x right, y up, looking -z)."""
        c2w = np.asarray(camera_to_world_gl, dtype=np.float64) @ OPENGL_TO_OPENCV
        return cls(world_to_camera=np.linalg.inv(c2w), **kwargs)
