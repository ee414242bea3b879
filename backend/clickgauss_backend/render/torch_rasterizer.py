"""Pure-torch tile rasterizer (CPU or GPU): the reference implementation.

The scene geometry is frozen in ClickGauss, so the compositing weights w_pi = alpha_i T_i of
pixel p and Gaussian i do not depend on the features. We compute them once, without autograd,
as a sparse (pixels x Gaussians) matrix W; the rendered features are then F = W f, whose
gradient is W^T dF. One sparse product forward and one backward is far cheaper and leaner than
letting autograd record the per-pixel compositing.

Computing W: the depth-sorted Gaussians are binned into square tiles by their footprint's
bounding box; every requested pixel walks the list of its tile front to back, in blocks of
columns, so that pixels whose transmittance has run out stop early (as gsplat's kernels do).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch

from clickgauss_core.cameras import Camera

from .gaussians import GaussianTensors
from .projection import ALPHA_THRESHOLD, ProjectedGaussians, project_gaussians

MAX_ALPHA = 0.999               # gsplat 1.5's clamp (the original 3DGS used 0.99)
MIN_TRANSMITTANCE = 1e-4        # a pixel is done once T would drop to this (exclusive, as gsplat)
TILE_SIZE = 16
ELEMENTS_PER_BLOCK = 1 << 19    # pixel x candidate pairs evaluated per step (bounds the memory)
FIRST_BLOCK_COLUMNS = 32        # candidates per pixel in the first step; doubled while pixels stay open


@dataclass
class CompositingWeights:
    """W (P x N) as CSR arrays, rows = requested pixels in request order, plus T at the end."""

    row_offsets: torch.Tensor    # (P + 1,) int64
    gaussian_ids: torch.Tensor   # (nnz,) int64, front to back within a row
    weights: torch.Tensor        # (nnz,) alpha_i T_i
    transmittance: torch.Tensor  # (P,) final T of every pixel
    num_gaussians: int

    @property
    def num_pixels(self) -> int:
        return self.transmittance.shape[0]

    def matrix(self, dtype: torch.dtype) -> torch.Tensor:
        return _csr(self.row_offsets, self.gaussian_ids, self.weights.to(dtype),
                    (self.num_pixels, self.num_gaussians))

    def transposed_matrix(self, dtype: torch.dtype) -> torch.Tensor:
        """W^T as CSR (N x P): the entries regrouped by Gaussian, for the backward pass."""
        order = torch.argsort(self.gaussian_ids, stable=True)
        counts = torch.bincount(self.gaussian_ids, minlength=self.num_gaussians)
        offsets = torch.zeros(self.num_gaussians + 1, dtype=torch.int64, device=counts.device)
        torch.cumsum(counts, 0, out=offsets[1:])
        rows = torch.repeat_interleave(torch.arange(self.num_pixels, device=counts.device),
                                       self.row_offsets.diff())
        return _csr(offsets, rows[order], self.weights[order].to(dtype), (self.num_gaussians, self.num_pixels))


def _csr(row_offsets, columns, values, shape) -> torch.Tensor:
    with warnings.catch_warnings():
        # torch warns that its CSR API is beta on every construction; it is what we rely on.
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        return torch.sparse_csr_tensor(row_offsets, columns, values, shape, check_invariants=False)


class _WeightedSum(torch.autograd.Function):
    """F = W f with dF/df = W^T; W is constant (the frozen geometry)."""

    @staticmethod
    def forward(ctx, features: torch.Tensor, weights: CompositingWeights) -> torch.Tensor:
        ctx.compositing = weights
        return weights.matrix(features.dtype) @ features

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        weights: CompositingWeights = ctx.compositing
        grad = weights.transposed_matrix(grad_output.dtype) @ grad_output.contiguous()
        return grad, None


def weighted_sum(weights: CompositingWeights, features: torch.Tensor) -> torch.Tensor:
    """(P, C) = W @ features, differentiable w.r.t. features."""
    if weights.weights.numel() == 0:
        # An empty sparse product would still need a gradient path: keep it in autograd.
        return features[:0].sum(0, keepdim=True).expand(weights.num_pixels, -1) * 0
    return _WeightedSum.apply(features, weights)


@dataclass
class _TileBins:
    """Visible Gaussians (ids into the full set) grouped by tile, front to back inside a tile."""

    tile_offsets: torch.Tensor   # (tiles + 1,)
    gaussian_ids: torch.Tensor   # (pairs,) ids into the full Gaussian set


def _bin_into_tiles(projected: ProjectedGaussians, tiles_x: int, tiles_y: int, tile_size: int) -> _TileBins:
    device = projected.means2d.device
    visible_ids = projected.visible.nonzero().squeeze(1)
    # Stable sort: equal depths keep the file order, like gsplat's stable radix sort.
    visible_ids = visible_ids[torch.argsort(projected.depths[visible_ids], stable=True)]
    means = projected.means2d[visible_ids]
    radii = projected.radii[visible_ids]
    low = torch.floor((means - radii) / tile_size).long()
    high = torch.ceil((means + radii) / tile_size).long()
    x0, x1 = low[:, 0].clamp(0, tiles_x), high[:, 0].clamp(0, tiles_x)
    y0, y1 = low[:, 1].clamp(0, tiles_y), high[:, 1].clamp(0, tiles_y)
    span_x = x1 - x0
    tiles_per_gaussian = span_x * (y1 - y0)
    owner = torch.repeat_interleave(torch.arange(len(visible_ids), device=device), tiles_per_gaussian)
    first_pair = torch.cumsum(tiles_per_gaussian, 0) - tiles_per_gaussian
    local = torch.arange(owner.numel(), device=device) - first_pair[owner]
    owner_span = span_x[owner]
    tile_ids = (y0[owner] + local // owner_span) * tiles_x + x0[owner] + local % owner_span
    # Pairs come out in depth order; a stable sort by tile keeps that order inside each tile.
    order = torch.argsort(tile_ids, stable=True)
    counts = torch.bincount(tile_ids, minlength=tiles_x * tiles_y)
    offsets = torch.zeros(tiles_x * tiles_y + 1, dtype=torch.int64, device=device)
    torch.cumsum(counts, 0, out=offsets[1:])
    return _TileBins(tile_offsets=offsets, gaussian_ids=visible_ids[owner[order]])


def compositing_weights(gaussians: GaussianTensors, camera: Camera, pixels: torch.Tensor,
                        tile_size: int = TILE_SIZE) -> CompositingWeights:
    """Front-to-back alpha compositing weights of the (P, 2) integer (x, y) `pixels`."""
    device = gaussians.device
    num_pixels = pixels.shape[0]
    with torch.no_grad():
        projected = project_gaussians(gaussians, camera)
        tiles_x, tiles_y = math.ceil(camera.width / tile_size), math.ceil(camera.height / tile_size)
        bins = _bin_into_tiles(projected, tiles_x, tiles_y, tile_size)
        pixel_tiles = (pixels[:, 1] // tile_size) * tiles_x + pixels[:, 0] // tile_size
        list_start = bins.tile_offsets[pixel_tiles]
        list_length = bins.tile_offsets[pixel_tiles + 1] - list_start
        centres = pixels.to(projected.means2d.dtype) + 0.5
        transmittance = torch.ones(num_pixels, dtype=projected.means2d.dtype, device=device)

        # Rows with long lists first, so each chunk of rows has similar lengths (little padding).
        by_length = torch.argsort(list_length, descending=True)
        entry_rows, entry_ids, entry_weights = [], [], []
        open_rows = by_length[list_length[by_length] > 0]
        column = 0
        columns = FIRST_BLOCK_COLUMNS
        while open_rows.numel() > 0:
            rows_per_step = max(1, ELEMENTS_PER_BLOCK // columns)
            still_open = []
            for chunk in open_rows.split(rows_per_step):
                done = _composite_block(projected, bins, chunk, column, columns, list_start, list_length,
                                        centres, transmittance, entry_rows, entry_ids, entry_weights)
                still_open.append(chunk[~done])
            open_rows = torch.cat(still_open)
            column += columns
            columns *= 2

        rows = torch.cat(entry_rows) if entry_rows else torch.zeros(0, dtype=torch.int64, device=device)
        ids = torch.cat(entry_ids) if entry_ids else torch.zeros(0, dtype=torch.int64, device=device)
        weights = (torch.cat(entry_weights) if entry_weights
                   else torch.zeros(0, dtype=transmittance.dtype, device=device))
        # Entries came out block by block; a stable sort by row restores front-to-back order per row.
        order = torch.argsort(rows, stable=True)
        counts = torch.bincount(rows, minlength=num_pixels)
        row_offsets = torch.zeros(num_pixels + 1, dtype=torch.int64, device=device)
        torch.cumsum(counts, 0, out=row_offsets[1:])
    return CompositingWeights(row_offsets=row_offsets, gaussian_ids=ids[order], weights=weights[order],
                              transmittance=transmittance, num_gaussians=len(gaussians))


def _composite_block(projected, bins, rows, column, columns, list_start, list_length, centres,
                     transmittance, entry_rows, entry_ids, entry_weights) -> torch.Tensor:
    """Composite candidates [column, column + columns) of the lists of `rows`; returns rows now done."""
    positions = column + torch.arange(columns, device=rows.device)
    length = list_length[rows]
    in_list = positions[None, :] < length[:, None]
    slots = torch.where(in_list, list_start[rows][:, None] + positions[None, :], 0)
    ids = bins.gaussian_ids[slots]
    delta = projected.means2d[ids] - centres[rows][:, None, :]
    conic = projected.conics[ids]
    dx, dy = delta[..., 0], delta[..., 1]
    sigma = 0.5 * (conic[..., 0] * dx * dx + conic[..., 2] * dy * dy) + conic[..., 1] * dx * dy
    alpha = torch.clamp_max(projected.opacities[ids] * torch.exp(-sigma), MAX_ALPHA)
    alpha = torch.where(in_list & (sigma >= 0) & (alpha >= ALPHA_THRESHOLD), alpha, 0.0)

    start_t = transmittance[rows]
    after = start_t[:, None] * torch.cumprod(1.0 - alpha, dim=1)   # T after each candidate
    before = torch.cat([start_t[:, None], after[:, :-1]], dim=1)     # T in front of it
    included = (alpha > 0) & (after > MIN_TRANSMITTANCE)
    hit_row, hit_col = included.nonzero(as_tuple=True)
    entry_rows.append(rows[hit_row])
    entry_ids.append(ids[hit_row, hit_col])
    entry_weights.append((alpha * before)[hit_row, hit_col])

    # T stays at its value after the last included candidate (the one that would end it is excluded).
    transmittance[rows] = start_t * torch.where(included, 1.0 - alpha, 1.0).prod(dim=1)
    return (after[:, -1] <= MIN_TRANSMITTANCE) | (length <= column + columns)

