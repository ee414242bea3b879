"""Training views for a splat, with or without its photos.

Where the views come from, in this order (`choose_view_source`):
1. "photos": the dataset's photos and cameras (as always);
2. "poses": known camera poses whose photos are missing (an INRIA cameras.json, a COLMAP model
   without its images, the cameras of the Blender scene): each pose rendered from the splat;
3. "planned": nothing known: virtual cameras planned around the splat
   (`clickgauss_core.view_planning`), moved back when the first render starts inside the content.

Renders go through the one rasterizer (`rasterize`: gsplat on CUDA) with the splat's
view-dependent colour, and are cached as PNGs in a folder keyed by the splat's hash and the
cameras, so masks (SAM, or a precomputed folder named after the rendered files) are made for them
exactly as for photos.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from clickgauss_core.cameras import Camera
from clickgauss_core.colmap import write_colmap_text
from clickgauss_core.datasets import View
from clickgauss_core.errors import ClickGaussInputError
from clickgauss_core.files import atomic_write
from clickgauss_core.view_planning import (DEFAULT_COUNT, DEFAULT_FRAME_QUANTILE, DEFAULT_RESOLUTION, LAYOUTS,
                                           MODES, image_size, plan_views, views_sentence)

from ..render import rasterize
from ..render.sh import view_colors

VIEW_SOURCES = ("auto", "photos", "poses", "planned")
BACKGROUND_RGB = (0.5, 0.5, 0.5)  # neutral grey: neither SAM nor the eye takes it for content
RENDER_FORMAT_VERSION = 1         # bump when a render of the same camera would change
# A first render "starts inside the content" when most of it is covered by surfaces this close.
NEAR_DEPTH_FRACTION = 0.15        # x the camera's distance to the content centre
INSIDE_COVERED_SHARE = 0.5
MOVE_BACK_FACTOR = 1.5
MAX_MOVES_BACK = 4
# An orbit camera whose view of the centre is blocked by something much nearer than the centre
# (the back of a room's wall) moves forward past it, unless it would then start inside the content
# (the near side of a solid object); probes are rendered this small.
OCCLUDER_DEPTH_FRACTION = 0.75
OCCLUDER_IMAGE_SHARE = 0.6
PROBE_RESOLUTION = 64
MAX_MOVES_FORWARD = 3
COVERED_ALPHA = 0.5


@dataclass(frozen=True)
class ViewSettings:
    """How virtual views are made: count, resolution (longer side, px), mode, layout, up (or None)."""

    count: int = DEFAULT_COUNT
    resolution: int = DEFAULT_RESOLUTION
    mode: str = "auto"
    layout: str = "rings"
    up: tuple | None = None
    frame_quantile: float = DEFAULT_FRAME_QUANTILE  # share of the content's mass each view frames

    def __post_init__(self):
        problems = []
        if not 1 <= int(self.count) <= 1000:
            problems.append(f"count must be 1..1000, not {self.count}")
        if not 8 <= int(self.resolution) <= 4096:
            problems.append(f"resolution must be 8..4096 pixels, not {self.resolution}")
        if self.mode not in MODES:
            problems.append(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.layout not in LAYOUTS:
            problems.append(f"layout must be one of {', '.join(LAYOUTS)}, not {self.layout!r}")
        if not 0.1 <= float(self.frame_quantile) <= 1.0:
            problems.append(f"frame_quantile must be in 0.1..1, not {self.frame_quantile}")
        if self.up is not None and (len(self.up) != 3 or not np.any(np.asarray(self.up, dtype=float))):
            problems.append(f"up must be a non-zero 3-vector, not {self.up!r}")
        if problems:
            raise ValueError("invalid view settings: " + "; ".join(problems))

    def to_dict(self) -> dict:
        return {**asdict(self), "up": None if self.up is None else [float(v) for v in self.up]}


@dataclass
class TrainingViews:
    """The views a training uses and where they came from."""

    source: str                  # "photos" | "poses" | "planned"
    views: list                  # clickgauss_core.datasets.View
    folder: str | None = None    # where the renders are (None for photos)
    plan: dict | None = None     # the planner's description (planned views)

    def describe(self) -> dict:
        return {"source": self.source, "count": len(self.views), "folder": self.folder, "plan": self.plan}

    def sentence(self) -> str:
        return views_sentence(self.source, len(self.views))


# -- planning with a look at the first render ------------------------------------------------------

def coverage_and_depth(gaussians, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """(covered bool (H, W), depth (H, W)) of one render: where the splat is opaque, and how far."""
    ones = torch.ones((len(gaussians), 1), device=gaussians.means.device)
    with torch.no_grad():
        result = rasterize(gaussians, ones, camera)
    return (result.alpha >= COVERED_ALPHA).cpu().numpy(), result.depth.cpu().numpy()


def starts_inside(gaussians, camera: Camera, distance: float) -> bool:
    """True when most of the image is covered by surfaces much nearer than the content's centre."""
    covered, depth = coverage_and_depth(gaussians, _probe(camera))
    near = covered & (depth < NEAR_DEPTH_FRACTION * distance)
    return float(near.mean()) > INSIDE_COVERED_SHARE


def _probe(camera: Camera) -> Camera:
    scale = min(1.0, PROBE_RESOLUTION / max(camera.width, camera.height))
    return camera.scaled(scale)


def occluder_depth(gaussians, camera: Camera, distance: float) -> float | None:
    """How far the surface that blocks the camera's view of the content is, or None if it is clear.

    Blocked = most of the image is covered by something much nearer than the content's centre (a
    wall seen from behind fills the view); the near side of an object with a hole (a donut seen
    from above) covers only part of it and is not a blocker."""
    covered, depth = coverage_and_depth(gaussians, _probe(camera))
    blocked = covered & (depth < OCCLUDER_DEPTH_FRACTION * distance)
    if blocked.mean() <= OCCLUDER_IMAGE_SHARE:
        return None
    return float(np.quantile(depth[blocked], 0.9))


def _clear_view_of_centre(gaussians, camera: Camera, center: np.ndarray, up: np.ndarray) -> tuple[Camera, int]:
    """The camera moved towards the centre, past whatever blocks its view of it (at most a few times)."""
    moves = 0
    for moves in range(MAX_MOVES_FORWARD + 1):
        offset = camera.center - center
        distance = float(np.linalg.norm(offset))
        blocked_until = occluder_depth(gaussians, camera, distance) if moves < MAX_MOVES_FORWARD else None
        if blocked_until is None:
            break
        new_distance = distance - blocked_until - 0.05 * distance
        moved = Camera.look_at(center + offset / distance * new_distance, center, up=up, width=camera.width,
                               height=camera.height, fx=camera.fx, fy=camera.fy, cx=camera.cx, cy=camera.cy,
                               name=camera.name)
        if new_distance <= 0 or starts_inside(gaussians, moved, new_distance):
            break
        camera = moved
    return camera, moves


def plan_scene_views(cloud, gaussians, settings: ViewSettings = ViewSettings(),
                     name_prefix: str = "virtual") -> tuple[list[Camera], dict]:
    """Planned cameras for the splat, checked with small renders: an orbit whose first view starts
    inside the content is moved back; a camera whose view of the centre is blocked by a nearer
    surface (a wall seen from behind) moves forward past it."""
    scale = 1.0
    for moves in range(MAX_MOVES_BACK + 1):
        cameras, plan = plan_views(cloud.positions, cloud.opacities, count=settings.count,
                                   resolution=settings.resolution, mode=settings.mode, up=settings.up,
                                   layout=settings.layout, distance_scale=scale, name_prefix=name_prefix,
                                   frame_quantile=settings.frame_quantile)
        if plan["mode"] == "inside" or moves == MAX_MOVES_BACK or not starts_inside(gaussians, cameras[0],
                                                                                      plan["distance"]):
            break
        scale *= MOVE_BACK_FACTOR
    plan["moved_back"] = moves
    if plan["mode"] == "orbit":
        center, up = np.asarray(plan["bounds"]["center"]), np.asarray(plan["up"])
        moved = [_clear_view_of_centre(gaussians, camera, center, up) for camera in cameras]
        cameras = [camera for camera, _ in moved]
        plan["moved_forward"] = sum(1 for _, count in moved if count)
    return cameras, plan


def poses_at_resolution(cameras: list[Camera], resolution: int) -> list[Camera]:
    """Known poses rendered at `resolution` (longer side): the capture's photos may be 4K."""
    out = []
    for index, camera in enumerate(cameras):
        scale = resolution / max(camera.width, camera.height)
        resized = camera.scaled(scale) if scale < 1 else replace(camera, extra=dict(camera.extra))
        stem = Path(camera.name).stem if camera.name else f"pose_{index:03d}"
        resized.name = f"{stem}.png"
        out.append(resized)
    return out


# -- rendering and caching -------------------------------------------------------------------------

def cameras_digest(cameras: list[Camera]) -> str:
    digest = hashlib.sha256(f"render-v{RENDER_FORMAT_VERSION}:{BACKGROUND_RGB}".encode())
    for camera in cameras:
        digest.update(camera.name.encode() + b"\0")
        digest.update(np.round(np.concatenate([np.asarray(camera.world_to_camera).ravel(),
                                               [camera.width, camera.height, camera.fx, camera.fy,
                                                camera.cx, camera.cy]]), 9).tobytes())
    return digest.hexdigest()


def render_rgb(cloud, gaussians, camera: Camera) -> np.ndarray:
    """(H, W, 3) uint8: the splat's view-dependent colour on the neutral background."""
    colors = view_colors(cloud, camera).to(device=gaussians.means.device, dtype=torch.float32)
    background = torch.tensor(BACKGROUND_RGB, dtype=torch.float32, device=gaussians.means.device)
    with torch.no_grad():
        rgb = rasterize(gaussians, colors, camera, background=background).features
    return np.rint(np.clip(rgb.cpu().numpy(), 0.0, 1.0) * 255).astype(np.uint8)


def render_views(cloud, gaussians, cameras: list[Camera], folder: str | os.PathLike, progress=None,
                 reuse_existing: bool = False) -> list[View]:
    """Render every camera into `folder/<camera name>` -> views with image paths. `reuse_existing`:
    keep a file already there (only for a folder keyed by the splat and the cameras: the cache)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = [camera.name for camera in cameras]
    if len(set(names)) != len(names) or not all(names):
        raise ValueError("every camera needs a unique file name")
    views = []
    for index, camera in enumerate(cameras):
        path = folder / camera.name
        if not (reuse_existing and path.is_file()):
            with atomic_write(path) as handle:
                Image.fromarray(render_rgb(cloud, gaussians, camera)).save(handle, format="PNG")
        camera = replace(camera, extra={**camera.extra, "image_path": str(path)})
        views.append(View(camera=camera, image_path=str(path), name=camera.name))
        if progress is not None:
            progress(index + 1, len(cameras))
    return views


def render_cache_folder(cache_dir: str | os.PathLike, content_hash: str, cameras: list[Camera]) -> Path:
    return Path(cache_dir) / "views" / f"{content_hash[:16]}-{cameras_digest(cameras)[:16]}"


def choose_view_source(has_photos: bool, has_poses: bool, requested: str = "auto") -> str:
    """The source a training uses: photos, else known poses, else planned views (or the one asked for)."""
    if requested not in VIEW_SOURCES:
        raise ValueError(f"view source must be one of {', '.join(VIEW_SOURCES)}, not {requested!r}")
    if requested == "auto":
        return "photos" if has_photos else "poses" if has_poses else "planned"
    return requested


def training_views(scene, cache_dir: str | os.PathLike, source: str = "auto", settings: ViewSettings = ViewSettings(),
                   poses: list[Camera] | None = None, progress=None) -> TrainingViews:
    """The views to train `scene` on (see the module docstring); renders are cached under `cache_dir`."""
    chosen = choose_view_source(bool(scene.views), bool(poses), source)
    if chosen == "photos":
        if not scene.views:
            raise ClickGaussInputError(scene.ply_path, "views from photos were asked for, but the scene has no "
                                                       "dataset with photos")
        return TrainingViews("photos", scene.views)
    if chosen == "poses":
        if not poses:
            raise ClickGaussInputError(scene.ply_path, "views from known poses were asked for, but no camera "
                                                       "poses were given")
        cameras, plan = poses_at_resolution(poses, settings.resolution), {"poses": len(poses),
                                                                          "resolution": settings.resolution}
    else:
        cameras, plan = plan_scene_views(scene.cloud, scene.gaussians, settings)
    folder = render_cache_folder(cache_dir, scene.content_hash, cameras)
    views = render_views(scene.cloud, scene.gaussians, cameras, folder, progress, reuse_existing=True)
    return TrainingViews(chosen, views, str(folder), plan)


# -- files for people and other tools --------------------------------------------------------------

def write_camera_files(folder: str | os.PathLike, views: list[View]) -> None:
    """The views' cameras as a COLMAP text model (`sparse/0`) and an INRIA `cameras.json`."""
    folder = Path(folder)
    write_colmap_text(folder / "sparse" / "0", views)
    entries = []
    for index, view in enumerate(views):
        c2w = view.camera.camera_to_world
        entries.append({"id": index, "img_name": Path(view.name).stem, "width": view.camera.width,
                        "height": view.camera.height, "position": c2w[:3, 3].tolist(),
                        "rotation": c2w[:3, :3].tolist(), "fx": view.camera.fx, "fy": view.camera.fy})
    with atomic_write(folder / "cameras.json") as handle:
        handle.write((json.dumps(entries, indent=1) + "\n").encode())


def contact_sheet(image_paths: list, out_path: str | os.PathLike, columns: int = 8, thumb_width: int = 160,
                  labels: list[str] | None = None) -> Path:
    """All images as thumbnails on one PNG (row-major), optionally captioned."""
    from PIL import ImageDraw

    if not image_paths:
        raise ValueError("no images for a contact sheet")
    thumbs = []
    for path in image_paths:
        with Image.open(path) as image:
            height = max(1, round(image.height * thumb_width / image.width))
            thumbs.append(image.convert("RGB").resize((thumb_width, height), Image.Resampling.BILINEAR))
    cell_h = max(t.height for t in thumbs) + (12 if labels else 0)
    rows = -(-len(thumbs) // columns)
    sheet = Image.new("RGB", (columns * (thumb_width + 2), rows * (cell_h + 2)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for index, thumb in enumerate(thumbs):
        x, y = (index % columns) * (thumb_width + 2), (index // columns) * (cell_h + 2)
        sheet.paste(thumb, (x, y))
        if labels:
            draw.text((x + 2, y + thumb.height), labels[index], fill=(0, 0, 0))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out_path) as handle:
        sheet.save(handle, format="PNG")
    return out_path


def framing_report(gaussians, cameras: list[Camera], plan: dict, min_coverage: float = 0.2) -> dict:
    """Per view: the covered share of its pixels and (orbit views) whether it starts inside the content."""
    center = np.asarray(plan["bounds"]["center"]) if plan.get("bounds") else None
    coverages, inside = [], []
    for camera in cameras:
        covered, depth = coverage_and_depth(gaussians, camera)
        coverages.append(float(covered.mean()))
        if center is not None and plan.get("mode") == "orbit":
            distance = float(np.linalg.norm(camera.center - center))
            inside.append(bool(float((covered & (depth < NEAR_DEPTH_FRACTION * distance)).mean())
                               > INSIDE_COVERED_SHARE))
    return {"coverage": coverages, "framed_share": float(np.mean([c >= min_coverage for c in coverages])),
            "inside": inside, "min_coverage": min_coverage}


__all__ = ["VIEW_SOURCES", "ViewSettings", "TrainingViews", "plan_scene_views", "render_views", "training_views",
           "choose_view_source", "write_camera_files", "contact_sheet", "framing_report", "image_size"]
