"""Which way is up in a splat file (pure numpy): what the importer's *Auto* orientation decides.

In order of trust:
1. the header comments of tools that say it ("z-up", "y-up", "y-down", ...);
2. the cameras of the dataset next to the file (cameras.json, COLMAP, transforms.json): their
   mean image-up direction (-y of the OpenCV camera axes);
3. the content: the thinnest principal axis of the visible Gaussians (opacity-weighted), the
   normal of a ground or table plane, or the axis of a flat object. A principal axis has no sign:
   a Z axis is taken as +Z (Z-up tools), a Y axis as -Y (COLMAP / INRIA, y down).
The answer is snapped to the nearest file axis ("+X", "-X", ..., "-Z"): files are written in an
axis convention, and cameras or content are only ever near it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np

from .framing import visible_principal_axes

AXES = {"+X": (1, 0, 0), "-X": (-1, 0, 0), "+Y": (0, 1, 0), "-Y": (0, -1, 0), "+Z": (0, 0, 1), "-Z": (0, 0, -1)}
# What a principal axis (no sign) means, by the conventions of the tools that write such files.
UNSIGNED_AXIS_CONVENTION = {0: "+X", 1: "-Y", 2: "+Z"}
_COMMENT_PATTERNS = (
    (re.compile(r"\bz[-_ ]?up\b", re.IGNORECASE), "+Z"),
    (re.compile(r"\by[-_ ]?up\b", re.IGNORECASE), "+Y"),
    (re.compile(r"\by[-_ ]?down\b", re.IGNORECASE), "-Y"),
    (re.compile(r"\bup[-_ :=]*\+?z\b", re.IGNORECASE), "+Z"),
)


@dataclass
class Orientation:
    up: str       # the file axis that points up: "+X" ... "-Z"
    source: str   # "header", "cameras" or "content"
    reason: str   # for the user: what was decided from what

    @property
    def up_vector(self) -> np.ndarray:
        return np.array(AXES[self.up], dtype=np.float64)


def nearest_axis(direction) -> str:
    direction = np.asarray(direction, dtype=np.float64)
    index = int(np.argmax(np.abs(direction)))
    return ("+" if direction[index] >= 0 else "-") + "XYZ"[index]


def from_comments(comments) -> Orientation | None:
    for comment in comments:
        for pattern, up in _COMMENT_PATTERNS:
            if pattern.search(comment):
                return Orientation(up, "header", f"the file's header says so ('{comment.strip()[:60]}'): {up} is up")
    return None


def from_cameras(cameras) -> Orientation | None:
    """Mean image-up direction of the cameras (OpenCV axes: -y of each camera in world)."""
    if not cameras:
        return None
    ups = np.array([-np.asarray(camera.camera_to_world)[:3, 1] for camera in cameras])
    mean = ups.mean(axis=0)
    if np.linalg.norm(mean) < 0.3:  # cameras rolled every which way: they do not say
        return None
    up = nearest_axis(mean)
    return Orientation(up, "cameras", f"the {len(cameras)} cameras next to the file hold their image up along {up}")


def from_content(positions, opacities) -> Orientation:
    _, axes, variances, _ = visible_principal_axes(positions, opacities)
    thinnest = axes[:, 2]
    index = int(np.argmax(np.abs(thinnest)))
    up = UNSIGNED_AXIS_CONVENTION[index]
    flatness = float(variances[2] / variances[1]) if variances[1] > 0 else 1.0
    return Orientation(up, "content", f"the scene is thinnest along file {'XYZ'[index]} (ground / object plane, "
                                      f"{flatness:.2f} of the next axis' variance): {up} is up")


def decide_orientation(cloud, path: str | os.PathLike | None = None) -> Orientation:
    """Auto orientation of `cloud` read from `path` (header, then cameras next to it, then content)."""
    decided = from_comments(getattr(cloud, "comments", ()) or ())
    if decided is None and path is not None:
        decided = from_cameras(_cameras_next_to(path))
    return decided or from_content(cloud.positions, cloud.opacities)


def _cameras_next_to(path) -> list:
    from .datasets import find_dataset_for_ply, load_dataset

    folder = find_dataset_for_ply(path)
    if folder is None:
        return []
    try:
        return [view.camera for view in load_dataset(folder).views]
    except Exception:  # noqa: BLE001 - a broken dataset must not stop an import: the content decides then
        return []
