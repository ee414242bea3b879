"""Virtual cameras planned around a splat that has no photos (pure numpy; no rendering here).

1. `content_bounds(positions, opacities)`: where the content is, ignoring floaters and far
   background: Gaussians under `MIN_OPACITY` are dropped, the rest weighted by opacity; anything
   farther than `FAR_FACTOR` x the median distance from the weighted median is far background.
   What is left is weighted by opacity x local density (Gaussians in the same cell of a
   `DENSITY_CELLS`-wide grid): a capture reconstructs its subject densely and the floor, walls
   and surroundings sparsely, so without it a room's floor and walls pull the centre up and the
   cameras out (parts of the subject then cover half the pixels they do in the capture's photos,
   see benchmarks/RESULTS.md). The framing sphere holds `frame_quantile` of that mass.
2. `up_from_content(...)`: when the caller knows no up direction: the principal axis of least
   spread (floors, tables and most captured objects are wider than tall), signed so that more
   mass lies below the centre, snapped to a world axis when within `UP_SNAP_DEG` of one.
3. `surrounds_centre(...)`: a room seen from inside: opaque content at nearly every azimuth
   around the centre, and almost none near the centre itself.
4. `plan_views(...)`: "orbit" cameras on rings above the horizon (or a Fibonacci sphere), at the
   distance where the framing sphere fills the narrower field of view, looking at its centre; or
   "inside" cameras at the centre looking out on rings. "auto" picks "inside" for rooms.

The backend renders the views and moves an orbit back when its first render starts inside the
content (`clickgauss_backend.views`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cameras import Camera

MODES = ("auto", "orbit", "inside")
LAYOUTS = ("rings", "sphere")
MIN_OPACITY = 0.05         # Gaussians this transparent are floaters for the bounds
FAR_FACTOR = 6.0           # x the median distance: beyond is far background (skyboxes, stray splats)
DENSITY_CELLS = 24         # cells along the longest side of the content's box for the density weights
UP_SNAP_DEG = 25.0
DEFAULT_COUNT = 24         # benchmarks/RESULTS.md, "Training without photos": 24 scored as well as 48 or better
DEFAULT_RESOLUTION = 160   # the longer image side in pixels (the same sweep: 256 px scored 0.04-0.16 lower)
DEFAULT_ASPECT = 4 / 3
DEFAULT_FOV_DEG = 60.0     # horizontal field of view of orbit cameras
INSIDE_FOV_DEG = 90.0
DEFAULT_FRAME_QUANTILE = 0.8
RING_ELEVATIONS_DEG = (12.0, 32.0, 55.0)   # orbit rings above the horizon (2 rings: the first two)
SPHERE_ELEVATION_RANGE_DEG = (-20.0, 75.0)
# Flat content (a surface: a crop of a front-facing capture, a relief, a tabletop layer) is seen
# nearly edge-on from low rings: its parts then cover a few pixels between the large Gaussians
# around them. Content thinner along up than this share of its narrower horizontal spread is
# viewed from high rings instead (the SuperSplat fruit crop: 3% of pixels at 10 deg, 23% at 80).
FLAT_THICKNESS_RATIO = 0.25
FLAT_RING_ELEVATIONS_DEG = (40.0, 60.0, 80.0)
FLAT_SPHERE_ELEVATION_RANGE_DEG = (25.0, 85.0)
INSIDE_ELEVATIONS_DEG = (-20.0, 5.0, 30.0)
# surrounds_centre: content in this share of direction bins, and this little mass near the centre
SURROUND_BINS = 48
SURROUND_MIN_BIN_SHARE = 0.85
SURROUND_MAX_CENTRE_MASS = 0.05


def views_sentence(source: str, count: int) -> str:
    """What the add-on and the CLI say about a training's views, in words."""
    if source == "photos":
        return f"Training on the dataset's {count} photos"
    if source == "poses":
        return f"No photos found: training on {count} views rendered from the splat at the known cameras"
    return f"No photos found: training on {count} views rendered from the splat"


@dataclass(frozen=True)
class ContentBounds:
    center: np.ndarray   # (3,) centre of the framing sphere
    radius: float        # framing sphere radius (holds `frame_quantile` of the opacity x local density weight)
    low: np.ndarray      # (3,) robust box (2nd / 98th weighted percentiles of the kept Gaussians)
    high: np.ndarray
    kept: np.ndarray     # bool (N,): the Gaussians counted as content
    weights: np.ndarray  # (N,) opacity x local density: each Gaussian's share of the framing (0: not kept)

    def to_dict(self) -> dict:
        return {"center": self.center.tolist(), "radius": self.radius, "low": self.low.tolist(),
                "high": self.high.tolist(), "kept": int(self.kept.sum())}


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q) -> np.ndarray:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    cumulative /= cumulative[-1]
    return values[order][np.minimum(np.searchsorted(cumulative, q), len(values) - 1)]


def content_bounds(positions: np.ndarray, opacities: np.ndarray,
                   frame_quantile: float = DEFAULT_FRAME_QUANTILE) -> ContentBounds:
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    opacities = np.asarray(opacities, dtype=np.float64).reshape(-1)
    finite = np.isfinite(positions).all(axis=1) & np.isfinite(opacities)
    kept = finite & (opacities >= MIN_OPACITY)
    if not kept.any():  # an all-transparent cloud still has a place
        kept = finite
    if not kept.any():
        raise ValueError("no Gaussian with a finite position")
    weights = np.where(kept, np.clip(opacities, 1e-6, 1.0), 0.0)
    idx = np.nonzero(kept)[0]
    median = np.array([weighted_quantile(positions[idx, k], weights[idx], 0.5) for k in range(3)])
    distance = np.linalg.norm(positions[idx] - median, axis=1)
    typical = float(weighted_quantile(distance, weights[idx], 0.5))
    if typical > 0:
        near = distance <= FAR_FACTOR * typical
        kept[idx[~near]] = False
        idx = idx[near]
    w = weights[idx] * local_density(positions[idx], weights[idx])
    low = np.array([weighted_quantile(positions[idx, k], w, 0.02) for k in range(3)])
    high = np.array([weighted_quantile(positions[idx, k], w, 0.98) for k in range(3)])
    center = 0.5 * (low + high)
    radius = float(weighted_quantile(np.linalg.norm(positions[idx] - center, axis=1), w, frame_quantile))
    framing_weights = np.zeros(len(positions))
    framing_weights[idx] = w
    return ContentBounds(center=center, radius=max(radius, 1e-6), low=low, high=high, kept=kept,
                         weights=framing_weights)


def local_density(points: np.ndarray, weights: np.ndarray, cells: int = DENSITY_CELLS) -> np.ndarray:
    """How many Gaussians share each point's cell of a grid over the points' robust box."""
    low = np.array([weighted_quantile(points[:, k], weights, 0.02) for k in range(3)])
    high = np.array([weighted_quantile(points[:, k], weights, 0.98) for k in range(3)])
    size = max(float((high - low).max()) / cells, 1e-9)
    keys = np.floor((points - low) / size).astype(np.int64)
    keys -= keys.min(axis=0)
    cell = np.ravel_multi_index(keys.T, keys.max(axis=0) + 1)  # one integer per cell: fast on millions
    _, inverse, counts = np.unique(cell, return_inverse=True, return_counts=True)
    return counts[inverse].astype(np.float64)


def up_from_content(positions: np.ndarray, opacities: np.ndarray, bounds: ContentBounds) -> np.ndarray:
    points = np.asarray(positions, dtype=np.float64)[bounds.kept] - bounds.center
    weights = np.clip(np.asarray(opacities, dtype=np.float64)[bounds.kept], 1e-6, 1.0)
    covariance = (points * weights[:, None]).T @ points / weights.sum()
    _, vectors = np.linalg.eigh(covariance)
    up = vectors[:, 0]  # least spread
    if np.sum(weights * (points @ up)) > 0:  # more mass above than below: flip
        up = -up
    axis = int(np.argmax(np.abs(up)))
    if np.degrees(np.arccos(min(1.0, abs(up[axis])))) <= UP_SNAP_DEG:
        up = np.sign(up[axis]) * np.eye(3)[axis]
    return up / np.linalg.norm(up)


def thickness_ratio(points: np.ndarray, weights: np.ndarray, up: np.ndarray) -> float:
    """The content's spread along `up` over its narrower horizontal spread (weighted std devs;
    `points` relative to the centre): near 0 for a surface lying across `up`."""
    a, b, up = _basis(up)
    horizontal = points @ np.stack([a, b], axis=1)
    covariance = (horizontal * weights[:, None]).T @ horizontal / weights.sum()
    narrower = float(np.sqrt(max(np.linalg.eigvalsh(covariance)[0], 0.0)))
    along = float(np.sqrt(np.sum(weights * (points @ up) ** 2) / weights.sum()))
    return along / narrower if narrower > 0 else float("inf")


def _basis(up: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two horizontal unit axes and `up`."""
    up = np.asarray(up, dtype=np.float64)
    up = up / np.linalg.norm(up)
    helper = np.eye(3)[int(np.argmin(np.abs(up)))]
    a = np.cross(up, helper)
    a /= np.linalg.norm(a)
    return a, np.cross(up, a), up


def surrounds_centre(positions: np.ndarray, opacities: np.ndarray, bounds: ContentBounds) -> bool:
    """True for a room seen from inside: content in nearly every direction from the centre (walls,
    floor AND ceiling; a ring such as a donut leaves its poles open) and little at the centre."""
    points = np.asarray(positions, dtype=np.float64)[bounds.kept] - bounds.center
    weights = np.clip(np.asarray(opacities, dtype=np.float64)[bounds.kept], 1e-6, 1.0)
    distance = np.linalg.norm(points, axis=1)
    centre_mass = weights[distance < 0.5 * bounds.radius].sum() / weights.sum()
    outer = distance > 0.5 * bounds.radius
    if not outer.any() or centre_mass > SURROUND_MAX_CENTRE_MASS:
        return False
    k = np.arange(SURROUND_BINS) + 0.5
    z = 1 - 2 * k / SURROUND_BINS
    azimuth = k * np.pi * (3.0 - np.sqrt(5.0))
    bin_directions = np.stack([np.sqrt(1 - z ** 2) * np.cos(azimuth), np.sqrt(1 - z ** 2) * np.sin(azimuth), z], 1)
    bins = np.argmax((points[outer] / distance[outer, None]) @ bin_directions.T, axis=1)
    mass = np.bincount(bins, weights=weights[outer], minlength=SURROUND_BINS)
    covered = np.count_nonzero(mass >= 0.25 * weights[outer].sum() / SURROUND_BINS)
    return covered >= SURROUND_MIN_BIN_SHARE * SURROUND_BINS


def image_size(resolution: int, aspect: float = DEFAULT_ASPECT) -> tuple[int, int]:
    """(width, height) with the longer side `resolution` pixels."""
    if resolution < 8:
        raise ValueError(f"resolution must be at least 8 pixels, not {resolution}")
    width = int(resolution) if aspect >= 1 else max(8, int(round(resolution * aspect)))
    height = max(8, int(round(resolution / aspect))) if aspect >= 1 else int(resolution)
    return width, height


def _ring_directions(count: int, elevations_deg) -> np.ndarray:
    """(count, 2) (azimuth, elevation) in radians, spread over the rings; each ring offset by half a step."""
    rings = len(elevations_deg)
    per_ring = np.full(rings, count // rings)
    per_ring[: count % rings] += 1
    out = []
    for ring, (n, elevation) in enumerate(zip(per_ring, elevations_deg)):
        if n == 0:
            continue
        azimuth = (np.arange(n) + 0.5 * (ring % 2)) * 2 * np.pi / n
        out.append(np.stack([azimuth, np.full(n, np.radians(elevation))], axis=1))
    return np.concatenate(out)


def _fibonacci_directions(count: int, elevation_range_deg) -> np.ndarray:
    low, high = np.sin(np.radians(elevation_range_deg))
    k = np.arange(count) + 0.5
    elevation = np.arcsin(low + (high - low) * k / count)
    azimuth = (k * np.pi * (3.0 - np.sqrt(5.0))) % (2 * np.pi)
    return np.stack([azimuth, elevation], axis=1)


def orbit_distance(radius: float, width: int, height: int, horizontal_fov_deg: float) -> float:
    """Camera-to-centre distance at which a sphere of `radius` just fits the narrower field of view."""
    fx = width / 2 / np.tan(np.radians(horizontal_fov_deg) / 2)
    half_narrow = np.arctan(min(width, height) / 2 / fx)
    return float(radius / np.sin(half_narrow))


def framing_distance(points: np.ndarray, weights: np.ndarray, direction: np.ndarray, up: np.ndarray,
                     tan_half_x: float, tan_half_y: float, frame_quantile: float) -> float:
    """Distance along `direction` (from the centre towards the camera) at which the central
    `frame_quantile` of the content's mass, as the camera sees it, fills the image; never less than
    a little beyond the content's near side."""
    forward = -direction
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    tail = (1.0 - frame_quantile) / 2
    extents = []
    for axis in (right, down):
        low, high = weighted_quantile(points @ axis, weights, [tail, 1.0 - tail])
        extents.append(max(abs(low), abs(high)))
    depth = points @ direction  # towards the camera
    near_side = float(weighted_quantile(depth, weights, 0.98))
    fit = max(extents[0] / tan_half_x, extents[1] / tan_half_y) + max(0.0, float(weighted_quantile(
        depth, weights, 1.0 - tail)))
    return max(fit, 1.1 * near_side)


def plan_views(positions: np.ndarray, opacities: np.ndarray, count: int = DEFAULT_COUNT,
               resolution: int = DEFAULT_RESOLUTION, mode: str = "auto", up=None, layout: str = "rings",
               horizontal_fov_deg: float | None = None, distance_scale: float = 1.0,
               frame_quantile: float = DEFAULT_FRAME_QUANTILE, aspect: float = DEFAULT_ASPECT,
               name_prefix: str = "virtual") -> tuple[list[Camera], dict]:
    """Cameras around (orbit) or inside (room) the content; returns (cameras, plan description).

    `up`: the scene's up direction in the splat's frame (None: `up_from_content`).
    `distance_scale` multiplies the framing distance (the backend raises it when a first render
    starts inside the content).
    """
    if count < 1:
        raise ValueError(f"view count must be at least 1, not {count}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    bounds = content_bounds(positions, opacities, frame_quantile)
    up_vector = up_from_content(positions, opacities, bounds) if up is None else np.asarray(up, dtype=np.float64)
    if not np.isfinite(up_vector).all() or np.linalg.norm(up_vector) == 0:
        raise ValueError(f"up direction must be a non-zero vector, not {up!r}")
    up_vector = up_vector / np.linalg.norm(up_vector)
    chosen = mode
    if mode == "auto":
        chosen = "inside" if surrounds_centre(positions, opacities, bounds) else "orbit"
    fov = horizontal_fov_deg or (INSIDE_FOV_DEG if chosen == "inside" else DEFAULT_FOV_DEG)
    width, height = image_size(resolution, aspect)
    fx = width / 2 / np.tan(np.radians(fov) / 2)
    a, b, _ = _basis(up_vector)
    points = np.asarray(positions, dtype=np.float64)[bounds.kept] - bounds.center
    weights = bounds.weights[bounds.kept]
    thickness = thickness_ratio(points, weights, up_vector)
    flat = chosen == "orbit" and thickness < FLAT_THICKNESS_RATIO
    rings = FLAT_RING_ELEVATIONS_DEG if flat else RING_ELEVATIONS_DEG
    if chosen == "inside":
        directions = _ring_directions(count, INSIDE_ELEVATIONS_DEG)
    elif layout == "rings":
        directions = _ring_directions(count, rings if count >= 12 else rings[:2])
    else:
        directions = _fibonacci_directions(count, FLAT_SPHERE_ELEVATION_RANGE_DEG if flat
                                           else SPHERE_ELEVATION_RANGE_DEG)
    tan_half_x, tan_half_y = width / 2 / fx, height / 2 / fx
    digits = max(3, len(str(count - 1)))
    cameras, distances = [], []
    for index, (azimuth, elevation) in enumerate(directions):
        unit = np.cos(elevation) * (np.cos(azimuth) * a + np.sin(azimuth) * b) + np.sin(elevation) * up_vector
        if chosen == "inside":
            eye, target = bounds.center, bounds.center + unit
        else:
            distance = framing_distance(points, weights, unit, up_vector, tan_half_x, tan_half_y,
                                        frame_quantile) * distance_scale
            distances.append(distance)
            eye, target = bounds.center + distance * unit, bounds.center
        cameras.append(Camera.look_at(eye, target, up=up_vector, width=width, height=height, fx=fx, fy=fx,
                                      cx=width / 2, cy=height / 2, name=f"{name_prefix}_{index:0{digits}d}.png"))
    distance = float(np.median(distances)) if distances else None
    description = {"mode": chosen, "requested_mode": mode, "layout": layout if chosen == "orbit" else "rings",
                   "count": count, "width": width, "height": height, "horizontal_fov_deg": fov,
                   "distance": None if chosen == "inside" else distance, "distance_scale": distance_scale,
                   "frame_quantile": frame_quantile, "up": up_vector.tolist(), "up_given": up is not None,
                   "thickness_ratio": thickness, "flat": flat,
                   "bounds": bounds.to_dict()}
    return cameras, description
