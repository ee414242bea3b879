"""The click without a renderer: the feature of one pixel, composited from only the Gaussians
whose footprint can cover it, then cosine similarity against every Gaussian's level feature.

Shared by the add-on (numpy only, inside Blender) and the backend (its click calls this too), so
a click gives the same answer in both and costs about one pass over the level features.

Finding the Gaussians of a pixel without projecting them all: each Gaussian's footprint is the
set of pixels where its alpha reaches ALPHA_THRESHOLD. For a Gaussian with opacity o that is
where the 2D Mahalanobis distance is at most e = sqrt(2 ln(o / ALPHA_THRESHOLD)). Two facts
bound it in 3D, in the camera's own terms:
  * the pixel's ray and the Gaussian's mean mu: the ray point q at mu's depth z projects onto the
    pixel, and at a fixed depth perspective projection is linear, so the pixel distance is
    |d| >= f_min / z * |mu - q| >= f_min / z * D, D = mu's distance to the ray (orthographic:
    f_min * D);
  * the footprint: |d| <= e sqrt(lambda_max(J S J^T + 0.3 I)) <= e (|J| s_max + sqrt(0.3)),
    |J| <= f_max / z * sqrt(1 + a^2 + b^2) with a, b the clamped tan of the off-axis angle.
So a Gaussian can only contribute when D <= k e s_max + e sqrt(0.3) z / f_min. The Gaussians sit
in a uniform grid (cells of about CELL_OCCUPANCY Gaussians, each cell with its largest e s_max);
a click tests the cells against the ray, then the Gaussians of the surviving cells, then projects
only the survivors exactly as the backend's rasterizer does (render/projection.py and
render/torch_rasterizer.py: gsplat 1.5's EWA projection with the 0.3 px^2 low-pass dilation, the
off-axis Jacobian clamp, alpha clamp 0.999, alpha threshold 1/255, the transmittance stop at 1e-4
and the stable depth order) and composites them front to back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cameras import Camera
from .protocol import COARSE, FINE, LEVELS

# The rasterizer's constants (render/projection.py, render/torch_rasterizer.py import them from here).
LOW_PASS_VARIANCE = 0.3        # px^2 added to the 2D covariance (gsplat eps2d)
ALPHA_THRESHOLD = 1.0 / 255.0  # contributions below this are skipped (gsplat ALPHA_THRESHOLD)
MAX_EXTENT_SIGMAS = 3.33       # footprint half-size cap, in standard deviations
FOV_CLAMP_MARGIN = 0.3         # off-screen centres are clamped to 1.3x the half field of view
MAX_ALPHA = 0.999              # gsplat 1.5's clamp (the original 3DGS used 0.99)
MIN_TRANSMITTANCE = 1e-4       # a pixel is done once T would drop to this (exclusive, as gsplat)
SIGMA_CUTOFF = 6.0             # > ln(255): opacity * exp(-6) < 1/255 for any opacity <= 1

# Calibrated default thresholds per level (see backend features/query.py for the calibration).
DEFAULT_THRESHOLDS = {COARSE: 0.60, FINE: 0.90}
# A Gaussian belongs to a global cluster when its level feature is at least this similar to the
# cluster's centre (GFL pulls members above tau_g = 0.9; 0.75 keeps the boundary Gaussians).
SEGMENT_MIN_SIMILARITY = 0.75

CELL_OCCUPANCY = 4            # Gaussians per grid cell on average (over the occupied bounding box)
CELL_GROWTH = 4.0              # cell size ratio between the grids for larger Gaussians
BLOCK_CELLS = 4                # blocks of 4^3 cells are tested first
_SLACK = 1e-4                  # relative slack on the culling bounds (float rounding)
_LOOSE = 1e-3                  # the same for the per-Gaussian test, computed in float32


def level_slice(level: str, coarse_dim: int = 12, feature_dim: int = 24, granularity_prior: bool = True) -> slice:
    """Which dims of a feature make up the feature of `level` (coarse: the first `coarse_dim`;
    fine: all of them with the granularity prior, else the rest)."""
    if level == COARSE:
        return slice(0, coarse_dim)
    if level == FINE:
        return slice(0 if granularity_prior else coarse_dim, feature_dim)
    raise ValueError(f"unknown level {level!r}; expected one of {LEVELS}")


def unit_rows(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float32)
    return values / np.maximum(np.linalg.norm(values, axis=1, keepdims=True), 1e-12)


def assign_to_clusters(level_feats: np.ndarray, centres: np.ndarray,
                       min_similarity: float = SEGMENT_MIN_SIMILARITY) -> np.ndarray:
    """Index of the most similar centre per row (cosine), or -1 where none reaches `min_similarity`."""
    if len(centres) == 0:
        return np.full(len(level_feats), -1, dtype=np.int64)
    similarity = unit_rows(level_feats) @ unit_rows(centres).T
    best = similarity.argmax(axis=1)
    best_similarity = similarity[np.arange(len(best)), best]
    return np.where(best_similarity >= min_similarity, best, -1).astype(np.int64)


def similarities(unit_level_features: np.ndarray, query: np.ndarray) -> np.ndarray:
    """(N,) cosine similarity of every (unit) level feature with `query` (one numpy pass)."""
    query = np.asarray(query, dtype=np.float32).reshape(-1)
    return unit_level_features @ (query / max(float(np.linalg.norm(query)), 1e-12))


def _fov_clamp(size: int, focal: float, centre: float) -> tuple[float, float]:
    """The (low, high) clamp of x/z (or y/z) in the Jacobian: 1.3x the half field of view."""
    margin = FOV_CLAMP_MARGIN * 0.5 * size / focal
    return -(centre / focal + margin), (size - centre) / focal + margin


def quaternions_to_rotations(quats: np.ndarray) -> np.ndarray:
    """(N, 4) wxyz quaternions (normalised here) -> (N, 3, 3), as the backend's quaternion_to_rotation."""
    q = np.asarray(quats, dtype=np.float64)
    w, x, y, z = (q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)).T
    rows = (1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y))
    return np.stack(rows, axis=-1).reshape(-1, 3, 3)


@dataclass
class PixelComposite:
    """The Gaussians that make up one pixel, front to back, and their weights alpha_i T_i."""

    ids: np.ndarray            # (K,) int64 indices into the Gaussians
    weights: np.ndarray        # (K,) float64
    transmittance: float       # T after the last one
    candidates: int            # Gaussians projected exactly (after the culling)

    def feature(self, features: np.ndarray) -> np.ndarray:
        """(D,) sum_i w_i f_i (no background), float64."""
        if len(self.ids) == 0:
            return np.zeros(features.shape[1], dtype=np.float64)
        return self.weights @ np.asarray(features[self.ids], dtype=np.float64)


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """np.concatenate([np.arange(s, s + c) for s, c in zip(starts, counts)]), vectorised."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    return np.repeat(np.asarray(starts, dtype=np.int64) - (np.cumsum(counts) - counts), counts) + np.arange(total)


@dataclass
class _Boxes:
    """Axis-aligned cubes (cells or blocks of cells): each a range [start, start + count) of the
    next finer list and the largest footprint bound e s_max of what it holds."""

    centres: np.ndarray        # (M, 3)
    half_diagonal: np.ndarray  # (M,)
    bound: np.ndarray          # (M,)
    start: np.ndarray          # (M,) int64
    count: np.ndarray          # (M,) int64

    @classmethod
    def empty(cls) -> "_Boxes":
        return cls(np.zeros((0, 3)), np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))

    @classmethod
    def around(cls, coords, origin, size, start, bound) -> "_Boxes":
        return cls(origin + (coords + 0.5) * size, np.full(len(coords), 0.5 * np.sqrt(3.0) * size),
                   np.asarray(bound, dtype=np.float64), np.asarray(start, dtype=np.int64), np.zeros(0, dtype=np.int64))

    @classmethod
    def concatenate(cls, parts: list, end: int) -> "_Boxes":
        start = np.concatenate([p.start for p in parts])
        return cls(np.concatenate([p.centres for p in parts]), np.concatenate([p.half_diagonal for p in parts]),
                   np.concatenate([p.bound for p in parts]), start, np.diff(np.r_[start, end]))


class _RayBound:
    """The pixel's ray in the PLY frame and the 3D test "a box may hold a Gaussian whose footprint
    covers the pixel" (the bound in the module docstring, widened by the box's half-diagonal;
    |J|'s off-axis factor taken at the box's own largest angle)."""

    def __init__(self, camera: Camera, px: float, py: float):
        rotation, translation = camera.world_to_camera[:3, :3], camera.world_to_camera[:3, 3]
        f_min, f_max = min(camera.fx, camera.fy), max(camera.fx, camera.fy)
        self.perspective = camera.projection == "perspective"
        if self.perspective:
            self.origin = -rotation.T @ translation
            direction = rotation.T @ np.array([(px - camera.cx) / camera.fx, (py - camera.cy) / camera.fy, 1.0])
            self.a_max = max(abs(limit) for limit in _fov_clamp(camera.width, camera.fx, camera.cx))
            self.b_max = max(abs(limit) for limit in _fov_clamp(camera.height, camera.fy, camera.cy))
        else:
            self.origin = rotation.T @ (np.array([(px - camera.cx) / camera.fx, (py - camera.cy) / camera.fy, 0.0])
                                        - translation)
            direction = rotation.T @ np.array([0.0, 0.0, 1.0])
        self.focal_ratio = f_max / f_min
        self.direction = direction / np.linalg.norm(direction)
        self.rotation, self.translation = rotation, translation
        self.low_pass = MAX_EXTENT_SIGMAS * np.sqrt(LOW_PASS_VARIANCE) / f_min  # per unit depth (ortho: absolute)
        self.near, self.far = camera.near, camera.far

    def reaches(self, centres, bound, half_diagonal) -> np.ndarray:
        offset = centres - self.origin
        along = offset @ self.direction
        distance_sq = np.einsum("ij,ij->i", offset, offset) - along * along
        camera_xyz = centres @ self.rotation.T + self.translation
        depth = camera_xyz[:, 2]
        depth_min, depth_max = depth - half_diagonal, depth + half_diagonal
        if self.perspective:
            # The largest |x/z|, |y/z| inside the box (the clamp's limit when it reaches z <= 0).
            safe = np.where(depth_min > 0, depth_min, 1.0)
            a = np.where(depth_min > 0, np.minimum((np.abs(camera_xyz[:, 0]) + half_diagonal) / safe, self.a_max),
                         self.a_max)
            b = np.where(depth_min > 0, np.minimum((np.abs(camera_xyz[:, 1]) + half_diagonal) / safe, self.b_max),
                         self.b_max)
            stretch = self.focal_ratio * np.sqrt(1.0 + a * a + b * b)
            low_pass = self.low_pass * np.maximum(depth_max, 0.0)
        else:
            stretch, low_pass = self.focal_ratio, self.low_pass
        reach = stretch * bound + half_diagonal + low_pass
        reach = reach * (1 + _SLACK) + _SLACK * (half_diagonal + bound)
        return (distance_sq <= reach * reach) & (depth_max >= self.near) & (depth_min <= self.far)


class ClickIndex:
    """The Gaussians' geometry (activated, in the PLY frame) and a uniform grid over their means,
    built once per set of Gaussians; `composite(camera, pixel)` answers a pixel.

    means (N, 3), scales (N, 3) standard deviations, quats (N, 4) wxyz, opacities (N,) in [0, 1].
    """

    def __init__(self, means, scales, quats, opacities):
        self.means = np.ascontiguousarray(means, dtype=np.float32)
        self.scales = np.ascontiguousarray(scales, dtype=np.float32)
        self.quats = np.ascontiguousarray(quats, dtype=np.float32)
        self.opacities = np.ascontiguousarray(opacities, dtype=np.float32).reshape(-1)
        n = len(self.means)
        if not (self.scales.shape == (n, 3) and self.quats.shape == (n, 4) and self.opacities.shape == (n,)
                and self.means.shape == (n, 3)):
            raise ValueError(f"ClickIndex: inconsistent shapes means {self.means.shape}, scales {self.scales.shape}, "
                             f"quats {self.quats.shape}, opacities {self.opacities.shape}")
        # e_i: the footprint's half-size in standard deviations (alpha < threshold beyond it).
        with np.errstate(divide="ignore", invalid="ignore"):
            extent = np.sqrt(2.0 * np.log(np.maximum(self.opacities, ALPHA_THRESHOLD) / ALPHA_THRESHOLD))
        extent = np.minimum(np.nan_to_num(extent, nan=0.0), MAX_EXTENT_SIGMAS)
        strong = (self.opacities >= ALPHA_THRESHOLD) & np.isfinite(self.means).all(axis=1)
        self.extent = extent.astype(np.float32)
        self.scale_max = self.scales.max(axis=1)
        self.bound = (extent * self.scale_max).astype(np.float32)  # e_i * s_max,i
        self._build_grid(np.flatnonzero(strong))

    def __len__(self) -> int:
        return len(self.means)

    def _build_grid(self, ids: np.ndarray) -> None:
        """Cells of several sizes (CELL_GROWTH apart): each Gaussian goes into the finest grid whose
        cells are at least as large as its bound, so that a few huge Gaussians do not make every
        cell of the fine grid large. The cells of every grid are grouped into blocks of
        BLOCK_CELLS^3 cells: a click tests the blocks, then the cells of the blocks it reaches."""
        cells = _Boxes.empty()
        blocks = _Boxes.empty()
        self.order = np.zeros(0, dtype=np.int64)
        self.levels = 0
        if len(ids) == 0:
            self.cells, self.blocks = cells, blocks
            return
        means = self.means[ids].astype(np.float64)
        low, high = np.percentile(means, 1, axis=0), np.percentile(means, 99, axis=0)
        volume = float(np.prod(np.maximum(high - low, 1e-9)))
        size = max((volume * CELL_OCCUPANCY / len(ids)) ** (1.0 / 3.0), 1e-9)
        level = np.ceil(np.log(np.maximum(self.bound[ids], size) / size) / np.log(CELL_GROWTH) - 1e-9)
        level = np.clip(level, 0, None).astype(np.int64)
        orders, cell_parts, block_parts = [], [], []
        placed = cells_so_far = 0
        for k in np.unique(level):
            chosen = level == k
            cell = size * CELL_GROWTH ** int(k)
            level_ids, level_means = ids[chosen], means[chosen]
            origin = level_means.min(axis=0)
            coords = np.floor((level_means - origin) / cell).astype(np.int64)
            block_coords = coords // BLOCK_CELLS
            # By block, then by cell (coordinate columns: no key that could overflow on outliers).
            order = np.lexsort((*coords.T[::-1], *block_coords.T[::-1]))
            coords, block_coords, level_ids = coords[order], block_coords[order], level_ids[order]
            cell_starts = np.flatnonzero(np.r_[True, (coords[1:] != coords[:-1]).any(axis=1)])
            level_cells = _Boxes.around(coords[cell_starts], origin, cell, cell_starts + placed,
                                        np.maximum.reduceat(self.bound[level_ids], cell_starts))
            cell_blocks = block_coords[cell_starts]
            block_starts = np.flatnonzero(np.r_[True, (cell_blocks[1:] != cell_blocks[:-1]).any(axis=1)])
            block_parts.append(_Boxes.around(block_coords[cell_starts[block_starts]], origin, cell * BLOCK_CELLS,
                                             block_starts + cells_so_far,
                                             np.maximum.reduceat(level_cells.bound, block_starts)))
            orders.append(level_ids)
            cell_parts.append(level_cells)
            placed += len(level_ids)
            cells_so_far += len(cell_starts)
        self.order = np.concatenate(orders)
        self.cells = _Boxes.concatenate(cell_parts, len(self.order))
        self.blocks = _Boxes.concatenate(block_parts, cells_so_far)
        self.levels = len(orders)

    # -- culling -----------------------------------------------------------------------------
    def candidates(self, camera: Camera, pixel_xy) -> np.ndarray:
        """Sorted ids of the Gaussians that may contribute to the pixel (a superset of them)."""
        px, py = int(np.floor(pixel_xy[0])) + 0.5, int(np.floor(pixel_xy[1])) + 0.5
        ray = _RayBound(camera, px, py)
        blocks = np.flatnonzero(ray.reaches(self.blocks.centres, self.blocks.bound, self.blocks.half_diagonal))
        cells = _ranges(self.blocks.start[blocks], self.blocks.count[blocks])
        cells = cells[ray.reaches(self.cells.centres[cells], self.cells.bound[cells], self.cells.half_diagonal[cells])]
        ids = np.sort(self.order[_ranges(self.cells.start[cells], self.cells.count[cells])])
        return ids[self._footprint_may_cover(ids, camera, px, py)]

    def _footprint_may_cover(self, ids, camera: Camera, u: float, v: float) -> np.ndarray:
        """Per Gaussian, in pixels: |d| <= e (|J| s_max + sqrt(0.3)), with |J| from its own
        (clamped) off-axis angle. Cheap (no covariance; float32 with slack), and never drops a
        contributor."""
        rotation = camera.world_to_camera[:3, :3].astype(np.float32)
        means_cam = self.means[ids] @ rotation.T + camera.world_to_camera[:3, 3].astype(np.float32)
        x, y, z = means_cam.T
        f_max = max(camera.fx, camera.fy)
        if camera.projection == "perspective":
            inv_z = 1.0 / np.where(z > 0, z, np.float32(1.0))
            a = np.clip(x * inv_z, *_fov_clamp(camera.width, camera.fx, camera.cx))
            b = np.clip(y * inv_z, *_fov_clamp(camera.height, camera.fy, camera.cy))
            jacobian_norm = np.float32(f_max) * inv_z * np.sqrt(1.0 + a * a + b * b)
            du = np.float32(camera.fx) * x * inv_z + np.float32(camera.cx - u)
            dv = np.float32(camera.fy) * y * inv_z + np.float32(camera.cy - v)
        else:
            jacobian_norm = np.float32(f_max)
            du = np.float32(camera.fx) * x + np.float32(camera.cx - u)
            dv = np.float32(camera.fy) * y + np.float32(camera.cy - v)
        reach = self.extent[ids] * (jacobian_norm * self.scale_max[ids] + np.float32(np.sqrt(LOW_PASS_VARIANCE)))
        reach = reach * np.float32(1 + _LOOSE) + np.float32(_LOOSE)
        return (du * du + dv * dv <= reach * reach) & (z >= camera.near) & (z <= camera.far)

    # -- the exact pixel ---------------------------------------------------------------------
    def composite(self, camera: Camera, pixel_xy) -> PixelComposite:
        """The pixel's contributors and weights, as the backend's rasterizer composites them."""
        x, y = int(np.floor(pixel_xy[0])), int(np.floor(pixel_xy[1]))
        if not (0 <= x < camera.width and 0 <= y < camera.height):
            raise ValueError(f"pixel ({pixel_xy[0]}, {pixel_xy[1]}) is outside the "
                             f"{camera.width}x{camera.height} camera image")
        ids = self.candidates(camera, (x, y))
        alpha, depth, ok = self._alpha_at(ids, camera, x + 0.5, y + 0.5)
        ids, alpha, depth = ids[ok], alpha[ok], depth[ok]
        order = np.lexsort((ids, depth))  # depth order, ties in file order (gsplat's stable sort)
        ids, alpha = ids[order], alpha[order]
        after = np.cumprod(1.0 - alpha)
        done = np.flatnonzero(after <= MIN_TRANSMITTANCE)
        stop = int(done[0]) if len(done) else len(ids)
        ids, alpha, after = ids[:stop], alpha[:stop], after[:stop]
        before = np.r_[1.0, after[:-1]] if stop else after
        return PixelComposite(ids=ids, weights=alpha * before,
                              transmittance=float(after[-1]) if stop else 1.0, candidates=len(order))

    def _alpha_at(self, ids, camera: Camera, u: float, v: float):
        """alpha of Gaussians `ids` at pixel centre (u, v), their depth, and whether they count
        (visible, alpha >= threshold): render/projection.py + the compositing step, in numpy."""
        rotation_view = camera.world_to_camera[:3, :3]
        means_cam = self.means[ids].astype(np.float64) @ rotation_view.T + camera.world_to_camera[:3, 3]
        x, y, z = means_cam.T
        fx, fy, cx, cy = camera.fx, camera.fy, camera.cx, camera.cy
        rotation_scale = quaternions_to_rotations(self.quats[ids]) * self.scales[ids].astype(np.float64)[:, None, :]
        axes_cam = rotation_view @ rotation_scale
        if camera.projection == "perspective":
            safe_z = np.where(np.abs(z) > 1e-12, z, 1.0)
            inv_z = 1.0 / safe_z
            tx = safe_z * np.clip(x * inv_z, *_fov_clamp(camera.width, fx, cx))
            ty = safe_z * np.clip(y * inv_z, *_fov_clamp(camera.height, fy, cy))
            row_u = fx * inv_z[:, None] * (axes_cam[:, 0, :] - (tx * inv_z)[:, None] * axes_cam[:, 2, :])
            row_v = fy * inv_z[:, None] * (axes_cam[:, 1, :] - (ty * inv_z)[:, None] * axes_cam[:, 2, :])
            mean_u, mean_v = fx * x * inv_z + cx, fy * y * inv_z + cy
        elif camera.projection == "orthographic":
            row_u, row_v = fx * axes_cam[:, 0, :], fy * axes_cam[:, 1, :]
            mean_u, mean_v = fx * x + cx, fy * y + cy
        else:
            raise ValueError(f"camera {camera.name!r} has unknown projection {camera.projection!r}")
        cov_xx = (row_u * row_u).sum(-1) + LOW_PASS_VARIANCE
        cov_xy = (row_u * row_v).sum(-1)
        cov_yy = (row_v * row_v).sum(-1) + LOW_PASS_VARIANCE
        det = cov_xx * cov_yy - cov_xy * cov_xy
        safe_det = np.where(det > 0, det, 1.0)
        a, b, c = cov_yy / safe_det, -cov_xy / safe_det, cov_xx / safe_det
        opacity = self.opacities[ids].astype(np.float64)
        du, dv = mean_u - u, mean_v - v
        sigma = 0.5 * a * du * du + b * du * dv + 0.5 * c * dv * dv
        alpha = np.minimum(np.exp(np.maximum(-sigma, -SIGMA_CUTOFF)) * opacity, MAX_ALPHA)
        ok = ((z >= camera.near) & (z <= camera.far) & (det > 0) & (opacity >= ALPHA_THRESHOLD)
              & (alpha >= ALPHA_THRESHOLD))
        return alpha, z, ok


def pixel_feature(index: ClickIndex, features: np.ndarray, camera: Camera, pixel_xy) -> np.ndarray:
    """The rendered (D,) feature of the pixel (float64)."""
    return index.composite(camera, pixel_xy).feature(features)


# The adaptive threshold (`adaptive_threshold`): the valley in a click's own similarities just
# below the clicked segment. Searched per level inside these bounds: coarse around the band
# where the negative term leaves other objects (tau_coarse = 0.5) and below where an object's
# own parts spread (its parts are never pushed apart at this level); fine between the band
# where the negative term leaves sibling parts (tau_fine = 0.75) and the clicked part's own
# spread near 1. Chosen on the tuning seeds of benchmarks/bench_fine.py.
ADAPTIVE_SEARCH = {COARSE: (0.45, 0.80), FINE: (0.70, 0.96)}
ADAPTIVE_BIN = 0.01            # histogram bin width (cosine)
ADAPTIVE_SMOOTHING_BINS = 1.5  # std of the Gaussian kernel that smooths the histogram, in bins
# A valley counts when the smoothed histogram there is at most this share of the clicked
# segment's peak; with none as deep, one segment fills the window and the fixed threshold is used.
ADAPTIVE_MAX_VALLEY_RATIO = 0.1


def adaptive_threshold(similarity: np.ndarray, level: str, fallback: float | None = None) -> float:
    """The threshold of one click from its own similarity distribution.

    The clicked segment's Gaussians sit in a peak near 1; other segments lower, where the
    contrastive loss pushed them. The threshold is the highest valley of the smoothed histogram
    (a local minimum at most ADAPTIVE_MAX_VALLEY_RATIO of that peak) inside ADAPTIVE_SEARCH[level]:
    the gap right below the clicked segment, not one between two other segments further down. On
    a run of equal bins (an empty gap) its middle. Without such a valley `fallback` (default
    DEFAULT_THRESHOLDS[level])."""
    if level not in ADAPTIVE_SEARCH:
        raise ValueError(f"unknown level {level!r}; expected one of {LEVELS}")
    low, high = ADAPTIVE_SEARCH[level]
    fixed = DEFAULT_THRESHOLDS[level] if fallback is None else float(fallback)
    values = np.asarray(similarity, dtype=np.float64).reshape(-1)
    edges = np.arange(low - 5 * ADAPTIVE_BIN, 1.0 + 1.5 * ADAPTIVE_BIN, ADAPTIVE_BIN)
    counts, _ = np.histogram(values[np.isfinite(values)], bins=edges)
    radius = int(np.ceil(3 * ADAPTIVE_SMOOTHING_BINS))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / ADAPTIVE_SMOOTHING_BINS) ** 2)
    density = np.convolve(counts, kernel / kernel.sum(), mode="same")
    centres = 0.5 * (edges[:-1] + edges[1:])
    peak = float(density[centres > high].max(initial=0.0))
    if peak <= 0.0:
        return fixed
    inside = np.flatnonzero((centres >= low) & (centres <= high))
    deep = density[inside] <= ADAPTIVE_MAX_VALLEY_RATIO * peak
    # a local minimum: no lower bin on either side before the density rises again
    minimum = (density[inside] <= density[inside - 1]) & (density[inside] <= density[inside + 1])
    candidates = inside[deep & minimum]
    if len(candidates) == 0:
        return fixed
    top = candidates[-1]
    # the run of (nearly) equal bins the highest valley belongs to: its middle
    floor = density[top] + 1e-6 * peak
    run_low = top
    while run_low - 1 >= inside[0] and density[run_low - 1] <= floor:
        run_low -= 1
    run_high = top
    while run_high + 1 <= inside[-1] and density[run_high + 1] <= floor:
        run_high += 1
    return float(np.round(0.5 * (centres[run_low] + centres[run_high]), 3))


def select(unit_level_features: np.ndarray, level_query: np.ndarray, threshold: float | None = None,
           level: str = FINE, fallback: float | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """(selected bool (N,), similarities (N,), the threshold used) of a click's level query against
    every Gaussian: at `threshold` when given, else at the click's `adaptive_threshold` for `level`."""
    similarity = similarities(unit_level_features, level_query)
    if threshold is None:
        threshold = adaptive_threshold(similarity, level, fallback)
    return similarity >= threshold, similarity, float(threshold)
