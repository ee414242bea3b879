"""The synthetic room: objects made of parts, each part a few surface primitives, as 3D Gaussians.

World frame: z up, floor at z = 0, objects within ~1.7 units of the origin, two walls behind.
Every part is sampled as flat, anisotropic Gaussians lying on its surfaces (normal axis thin,
tangent axes sized to the sample spacing so surfaces render solid), randomly spun about the
normal. Everything is vectorised: a million Gaussians take about a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clickgauss_core.gaussians import SH_C0, GaussianCloud

SH_DEGREE = 3
SH_REST_COEFFS = (SH_DEGREE + 1) ** 2 - 1


# -- surface primitives: area + uniform samples with outward normals ----------------------------

@dataclass(frozen=True)
class Box:
    center: tuple[float, float, float]
    size: tuple[float, float, float]

    @property
    def area(self) -> float:
        sx, sy, sz = self.size
        return 2.0 * (sx * sy + sy * sz + sx * sz)

    def sample(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        size = np.asarray(self.size)
        face_areas = np.array([size[1] * size[2], size[0] * size[2], size[0] * size[1]]).repeat(2)
        face = rng.choice(6, size=n, p=face_areas / face_areas.sum())
        axis, sign = face // 2, np.where(face % 2 == 0, 1.0, -1.0)
        local = rng.uniform(-0.5, 0.5, size=(n, 3))
        local[np.arange(n), axis] = 0.5 * sign
        normals = np.zeros((n, 3))
        normals[np.arange(n), axis] = sign
        return np.asarray(self.center) + local * size, normals

    def contains(self, points: np.ndarray, margin: np.ndarray) -> np.ndarray:
        half = 0.5 * np.asarray(self.size)
        return np.all(np.abs(points - np.asarray(self.center)) <= half + margin[:, None], axis=1)


@dataclass(frozen=True)
class Frustum:
    """A vertical truncated cone (a cylinder when the radii are equal), optional end caps."""

    base: tuple[float, float, float]  # centre of the bottom
    radius_bottom: float
    radius_top: float
    height: float
    bottom_cap: bool = True
    top_cap: bool = True

    def _areas(self) -> np.ndarray:
        r0, r1, h = self.radius_bottom, self.radius_top, self.height
        side = np.pi * (r0 + r1) * np.hypot(h, r0 - r1)
        return np.array([side, np.pi * r0 ** 2 * self.bottom_cap, np.pi * r1 ** 2 * self.top_cap])

    @property
    def area(self) -> float:
        return float(self._areas().sum())

    def sample(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        r0, r1, h = self.radius_bottom, self.radius_top, self.height
        areas = self._areas()
        which = rng.choice(3, size=n, p=areas / areas.sum())
        angle = rng.uniform(0.0, 2.0 * np.pi, size=n)
        cos, sin = np.cos(angle), np.sin(angle)
        # Side: area element grows with the radius, so sample t by inverting the radius-weighted CDF.
        u = rng.uniform(size=n)
        if abs(r1 - r0) < 1e-9:
            t = u
        else:
            t = (np.sqrt(r0 ** 2 + u * (r1 ** 2 - r0 ** 2)) - r0) / (r1 - r0)
        radius = r0 + t * (r1 - r0)
        slope = (r0 - r1) / h
        side_normal = np.stack([cos, sin, np.full(n, slope)], axis=1)
        side_normal /= np.linalg.norm(side_normal, axis=1, keepdims=True)
        points = np.stack([radius * cos, radius * sin, t * h], axis=1)
        normals = side_normal
        # Caps: uniform on discs.
        cap_radius = np.sqrt(rng.uniform(size=n)) * np.where(which == 1, r0, r1)
        on_cap = which > 0
        points[on_cap] = np.stack([cap_radius * cos, cap_radius * sin, np.where(which == 1, 0.0, h)], axis=1)[on_cap]
        normals[on_cap] = np.stack([np.zeros(n), np.zeros(n), np.where(which == 1, -1.0, 1.0)], axis=1)[on_cap]
        return points + np.asarray(self.base), normals

    def contains(self, points: np.ndarray, margin: np.ndarray) -> np.ndarray:
        local = points - np.asarray(self.base)
        t = np.clip(local[:, 2] / self.height, 0.0, 1.0)
        radius = self.radius_bottom + t * (self.radius_top - self.radius_bottom)
        return ((local[:, 2] >= -margin) & (local[:, 2] <= self.height + margin)
                & (np.hypot(local[:, 0], local[:, 1]) <= radius + margin))


@dataclass(frozen=True)
class Ellipsoid:
    center: tuple[float, float, float]
    radii: tuple[float, float, float]

    @property
    def area(self) -> float:
        a, b, c = self.radii  # Knud Thomsen's approximation (within ~1 %)
        p = 1.6075
        return float(4 * np.pi * (((a * b) ** p + (a * c) ** p + (b * c) ** p) / 3) ** (1 / p))

    def sample(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        direction = rng.normal(size=(n, 3))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        radii = np.asarray(self.radii)
        normals = direction / radii  # gradient of the implicit function at the mapped point
        normals /= np.linalg.norm(normals, axis=1, keepdims=True)
        return np.asarray(self.center) + direction * radii, normals

    def contains(self, points: np.ndarray, margin: np.ndarray) -> np.ndarray:
        radii = np.asarray(self.radii)[None, :] + margin[:, None]
        return (((points - np.asarray(self.center)) / radii) ** 2).sum(axis=1) <= 1.0


@dataclass(frozen=True)
class TorusArc:
    """Part of a torus standing in the x-z plane (a mug handle), centred at `center`."""

    center: tuple[float, float, float]
    major_radius: float
    minor_radius: float
    angle_from: float  # radians, 0 = +x, pi/2 = +z
    angle_to: float

    @property
    def area(self) -> float:
        return float((self.angle_to - self.angle_from) * self.major_radius * 2 * np.pi * self.minor_radius)

    def sample(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        theta = rng.uniform(self.angle_from, self.angle_to, size=n)
        phi = rng.uniform(0.0, 2 * np.pi, size=n)
        ring = np.stack([np.cos(theta), np.zeros(n), np.sin(theta)], axis=1)
        normals = np.cos(phi)[:, None] * ring + np.sin(phi)[:, None] * np.array([0.0, 1.0, 0.0])
        points = np.asarray(self.center) + self.major_radius * ring + self.minor_radius * normals
        return points, normals

    def contains(self, points: np.ndarray, margin: np.ndarray) -> np.ndarray:
        local = points - np.asarray(self.center)
        theta = np.clip(np.arctan2(local[:, 2], local[:, 0]), self.angle_from, self.angle_to)
        on_circle = self.major_radius * np.stack([np.cos(theta), np.zeros(len(local)), np.sin(theta)], axis=1)
        return np.linalg.norm(local - on_circle, axis=1) <= self.minor_radius + margin


@dataclass(frozen=True)
class Rectangle:
    """A one-sided axis-aligned rectangle: `normal_axis` is 0/1/2, the rectangle spans the other two."""

    center: tuple[float, float, float]
    size: tuple[float, float]
    normal_axis: int
    normal_sign: float = 1.0

    @property
    def area(self) -> float:
        return float(self.size[0] * self.size[1])

    def sample(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        spans = [a for a in range(3) if a != self.normal_axis]
        points = np.tile(np.asarray(self.center, dtype=np.float64), (n, 1))
        for axis, extent in zip(spans, self.size):
            points[:, axis] += rng.uniform(-0.5, 0.5, size=n) * extent
        normals = np.zeros((n, 3))
        normals[:, self.normal_axis] = self.normal_sign
        return points, normals

    def contains(self, points: np.ndarray, margin: np.ndarray) -> np.ndarray:
        """Behind the rectangle (the room's floor and walls are the faces of solid half-spaces)."""
        axis = self.normal_axis
        return (points[:, axis] - self.center[axis]) * self.normal_sign <= margin


# -- the scene layout ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Part:
    name: str
    color: tuple[float, float, float]
    surfaces: tuple


@dataclass(frozen=True)
class SceneObject:
    name: str
    parts: tuple[Part, ...]


def _legs(xs, ys, z0, height, width, name, color) -> Part:
    return Part(name, color, tuple(Box((x, y, z0 + height / 2), (width, width, height)) for x in xs for y in ys))


def room_objects() -> tuple[SceneObject, ...]:
    """Six objects, 2-3 parts each. The mug stands on the table and the chair is tucked in close,
    so a mask generator can plausibly merge them; the rest stand apart."""
    table_top_z = 0.72
    return (
        SceneObject("table", (
            Part("table top", (0.72, 0.50, 0.28), (Box((0.0, 0.0, table_top_z + 0.025), (1.2, 0.8, 0.05)),)),
            _legs((-0.54, 0.54), (-0.34, 0.34), 0.0, table_top_z, 0.06, "table legs", (0.33, 0.20, 0.10)),
        )),
        SceneObject("mug", (
            Part("mug body", (0.15, 0.35, 0.85),
                 (Frustum((0.22, 0.1, table_top_z + 0.05), 0.12, 0.12, 0.24, top_cap=False),)),
            Part("mug handle", (0.95, 0.80, 0.10),
                 (TorusArc((0.34, 0.1, table_top_z + 0.17), 0.09, 0.025, -1.4, 1.4),)),
        )),
        SceneObject("lamp", (
            Part("lamp base", (0.35, 0.35, 0.38), (Frustum((-1.25, 0.65, 0.0), 0.2, 0.16, 0.05),)),
            Part("lamp pole", (0.80, 0.82, 0.86), (Frustum((-1.25, 0.65, 0.05), 0.03, 0.03, 1.1, False, False),)),
            Part("lamp shade", (0.98, 0.93, 0.70), (Frustum((-1.25, 0.65, 1.05), 0.3, 0.14, 0.32, False, True),)),
        )),
        SceneObject("chair", (
            Part("chair seat", (0.80, 0.12, 0.12), (Box((0.1, -0.82, 0.47), (0.46, 0.46, 0.05)),)),
            Part("chair back", (0.45, 0.05, 0.20), (Box((0.1, -1.03, 0.78), (0.46, 0.05, 0.56)),)),
            _legs((-0.1, 0.3), (-0.62, -1.02), 0.0, 0.445, 0.04, "chair legs", (0.08, 0.08, 0.08)),
        )),
        SceneObject("plant", (
            Part("plant pot", (0.78, 0.38, 0.22), (Frustum((1.35, 0.75, 0.0), 0.18, 0.24, 0.38),)),
            Part("plant leaves", (0.15, 0.62, 0.20), (Ellipsoid((1.35, 0.75, 0.78), (0.34, 0.34, 0.42)),)),
        )),
        SceneObject("snowman", (
            Part("snowman body", (0.95, 0.95, 0.97), (Ellipsoid((-1.15, -0.85, 0.26), (0.26, 0.26, 0.26)),)),
            Part("snowman head", (0.80, 0.86, 0.98), (Ellipsoid((-1.15, -0.85, 0.64), (0.17, 0.17, 0.17)),)),
            Part("snowman hat", (0.55, 0.10, 0.65), (Frustum((-1.15, -0.85, 0.78), 0.12, 0.12, 0.16),)),
        )),
    )


ROOM_HALF_SIZE = 3.5
WALL_HEIGHT = 2.6
# Background regions (label 0 for object and part); kept apart so the simulated mask
# generator can segment the floor and each wall as segments of their own.
BACKGROUND_REGIONS = ("floor", "back wall", "side wall")
FLOOR_TILE = 0.5


def background_surfaces() -> tuple:
    h = ROOM_HALF_SIZE
    return (
        Rectangle((0.0, 0.0, 0.0), (2 * h, 2 * h), normal_axis=2),
        Rectangle((0.0, h, WALL_HEIGHT / 2), (2 * h, WALL_HEIGHT), normal_axis=1, normal_sign=-1.0),
        Rectangle((-h, 0.0, WALL_HEIGHT / 2), (2 * h, WALL_HEIGHT), normal_axis=0, normal_sign=1.0),
    )


BACKGROUND_COLORS = ((0.58, 0.56, 0.52), (0.72, 0.74, 0.70), (0.66, 0.70, 0.76))


# -- Gaussians -------------------------------------------------------------------------------------

@dataclass
class LabelledCloud:
    cloud: GaussianCloud
    object_labels: np.ndarray      # (N,) int32, 0 = background, k = objects[k-1]
    part_labels: np.ndarray        # (N,) int32, 0 = background, k = parts[k-1]
    background_regions: np.ndarray  # (N,) int32, 0 = on an object, k = BACKGROUND_REGIONS[k-1]
    object_names: list[str]
    part_names: list[str]
    part_objects: np.ndarray       # (P+1,) int32: part label -> object label (entry 0 = background)


# A Gaussian is "inside" a solid when its centre is within this many of its own thickness (its
# normal-axis standard deviation) of it: centres are jittered off their surface by 0.3 of it.
HIDDEN_MARGIN = 3.0


def _split_count(total: int, weights: np.ndarray) -> np.ndarray:
    """Integer counts proportional to `weights` summing exactly to `total` (largest remainder)."""
    exact = total * weights / weights.sum()
    counts = np.floor(exact).astype(np.int64)
    counts[np.argsort(-(exact - counts), kind="stable")[: total - counts.sum()]] += 1
    return counts


def _surface_gaussians(rng, surfaces, n, colors_fn, flatness):
    """n Gaussians on `surfaces` (split by area): positions, normals, log scales, wxyz quats, colours."""
    areas = np.array([s.area for s in surfaces])
    counts = _split_count(n, areas)
    points, normals = [], []
    for surface, count in zip(surfaces, counts):
        if count:
            p, nrm = surface.sample(rng, int(count))
            points.append(p)
            normals.append(nrm)
    points, normals = np.concatenate(points), np.concatenate(normals)
    spacing = np.sqrt(areas.sum() / max(n, 1))
    tangent = spacing * rng.uniform(0.55, 1.3, size=(n, 2))
    thickness = spacing * flatness * rng.uniform(0.5, 1.5, size=(n, 1))
    log_scales = np.log(np.concatenate([tangent, thickness], axis=1))
    points = points + normals * rng.normal(scale=0.3, size=(n, 1)) * thickness  # "in" the surface, not exactly on it
    return points, normals, log_scales, _frames_to_quats(rng, normals), colors_fn(points)


def _frames_to_quats(rng, normals) -> np.ndarray:
    """wxyz quaternions whose local z axis is the normal, spun randomly about it."""
    # q = align (shortest arc z -> normal; half a turn about x for -z) * spin (about z), in closed
    # form: scipy's Rotation product costs seconds per million.
    axis = np.cross([0.0, 0.0, 1.0], normals)
    sin = np.linalg.norm(axis, axis=1, keepdims=True)
    axis = np.where(sin > 1e-9, axis / np.maximum(sin, 1e-12), [[1.0, 0.0, 0.0]])
    half = 0.5 * np.arctan2(sin[:, 0], normals[:, 2])
    w, (x, y, z) = np.cos(half), (axis * np.sin(half)[:, None]).T
    spin = 0.5 * rng.uniform(0.0, 2 * np.pi, size=len(normals))
    c, s = np.cos(spin), np.sin(spin)
    return np.stack([w * c - z * s, x * c + y * s, y * c - x * s, w * s + z * c], axis=1)


def _hidden(positions, log_scales, part_labels, background_regions, parts, bg_surfaces) -> np.ndarray:
    """(N,) True for a Gaussian whose centre lies inside a solid it is not part of: another part's,
    or (for an object's Gaussians) behind the floor or a wall; within HIDDEN_MARGIN of its own thickness."""
    margin = HIDDEN_MARGIN * np.exp(log_scales[:, 2])
    hidden = np.zeros(len(positions), dtype=bool)
    owners = [(index + 1, part.surfaces) for index, part in enumerate(parts)] + [(0, bg_surfaces)]
    for label, surfaces in owners:
        others = part_labels != label if label else background_regions == 0
        for surface in surfaces:
            hidden[others] |= surface.contains(positions[others], margin[others])
    return hidden


def build_room_cloud(n_gaussians: int, rng: np.random.Generator, background_fraction: float = 0.35,
                     objects: tuple[SceneObject, ...] | None = None, hidden_surfaces: bool = True) -> LabelledCloud:
    """The labelled room as a 3DGS cloud (SH degree 3, normals, mostly-opaque flat Gaussians), with
    `objects` in it (default: the demo room's `room_objects()`).

    `hidden_surfaces` False leaves out the Gaussians that no view could see in a real scene: those
    inside another part (a cabinet's front behind its drawers, a stem inside its ring), under an
    object on the floor and on an object's face resting on the floor; a trained 3DGS scene has
    none there. Kept, they show through the surface in front of them wherever sorting by centre
    composites them first (the floor's large splats over a lamp's base disc), so `n_gaussians`
    is then the count before they are left out."""
    objects = room_objects() if objects is None else objects
    parts = [part for obj in objects for part in obj.parts]
    part_objects = np.array([0] + [k + 1 for k, obj in enumerate(objects) for _ in obj.parts], dtype=np.int32)
    n_background = int(round(n_gaussians * background_fraction))
    part_areas = np.array([sum(s.area for s in p.surfaces) for p in parts])
    # Area^0.6: small parts (a lamp pole, a mug handle) get more than their area share so they
    # stay solid at low counts, without starving the large ones.
    part_counts = _split_count(n_gaussians - n_background, part_areas ** 0.6)
    bg_surfaces = background_surfaces()
    bg_counts = _split_count(n_background, np.array([s.area for s in bg_surfaces]))

    chunks = []  # (positions, normals, log_scales, quats, colours, object, part, background region)
    for index, (part, count) in enumerate(zip(parts, part_counts)):
        base = np.asarray(part.color)
        colours = lambda pts, base=base: np.clip(base + rng.normal(scale=0.03, size=(len(pts), 3)), 0.02, 0.98)
        arrays = _surface_gaussians(rng, part.surfaces, int(count), colours, flatness=0.12)
        chunks.append((*arrays, part_objects[index + 1], index + 1, 0))
    for region, (surface, count) in enumerate(zip(bg_surfaces, bg_counts)):
        base = np.asarray(BACKGROUND_COLORS[region])

        def colours(pts, base=base, region=region):
            tint = np.ones(len(pts))
            if region == 0:  # a checkerboard floor gives the views some texture
                tiles = np.floor(pts[:, 0] / FLOOR_TILE) + np.floor(pts[:, 1] / FLOOR_TILE)
                tint = np.where(tiles % 2 == 0, 1.08, 0.88)
            return np.clip(base * tint[:, None] + rng.normal(scale=0.02, size=(len(pts), 3)), 0.02, 0.98)

        arrays = _surface_gaussians(rng, (surface,), int(count), colours, flatness=0.1)
        chunks.append((*arrays, 0, 0, region + 1))

    counts = [len(c[0]) for c in chunks]
    positions = np.concatenate([c[0] for c in chunks])
    normals = np.concatenate([c[1] for c in chunks])
    log_scales = np.concatenate([c[2] for c in chunks])
    quats = np.concatenate([c[3] for c in chunks])
    colors = np.concatenate([c[4] for c in chunks])
    object_labels = np.repeat([c[5] for c in chunks], counts).astype(np.int32)
    part_labels = np.repeat([c[6] for c in chunks], counts).astype(np.int32)
    background_regions = np.repeat([c[7] for c in chunks], counts).astype(np.int32)
    if not hidden_surfaces:
        keep = ~_hidden(positions, log_scales, part_labels, background_regions, parts, bg_surfaces)
        positions, normals, log_scales, quats, colors = (a[keep] for a in (positions, normals, log_scales, quats, colors))
        object_labels, part_labels, background_regions = object_labels[keep], part_labels[keep], background_regions[keep]
    n = len(positions)

    # Mostly opaque, some faint: like a trained scene's opacity histogram.
    faint = rng.uniform(size=n) < 0.1
    opacity = np.where(faint, rng.uniform(0.05, 0.35, size=n), rng.uniform(0.88, 0.995, size=n))
    opacity_logits = np.log(opacity / (1.0 - opacity))
    sh_dc = (colors - 0.5) / SH_C0
    sh_rest = 0.02 * rng.standard_normal(size=(n, SH_REST_COEFFS, 3), dtype=np.float32)  # mild view dependence
    # Stored quaternions are unnormalised in trained files: scale them randomly.
    quats = quats * rng.uniform(0.5, 2.0, size=(n, 1))
    cloud = GaussianCloud.from_arrays(positions, log_scales, quats, opacity_logits, sh_dc, sh_rest, normals=True)
    for i, axis in enumerate(("nx", "ny", "nz")):
        cloud.properties[axis] = normals[:, i].astype(np.float32)
    return LabelledCloud(cloud, object_labels, part_labels, background_regions,
                         [obj.name for obj in objects], [p.name for p in parts], part_objects)
