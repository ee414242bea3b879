"""Pure-torch tile rasterizer (CPU or GPU): the reference implementation.

The scene geometry is frozen in ClickGauss, so the compositing weights w_pi = alpha_i T_i of
pixel p and Gaussian i do not depend on the features. We compute them once, without autograd,
as a sparse (pixels x Gaussians) matrix W; the rendered features are then F = W f, whose
gradient is W^T dF. One sparse product forward and one backward is far cheaper and leaner than
letting autograd record the per-pixel compositing.

Computing W: the depth-sorted Gaussians are binned into 16x16-pixel tiles by their footprint's
bounding box (only tiles holding requested pixels); the requested pixels of a tile walk its
list front to back together, BLOCK_COLUMNS entries at a time, as a (tiles, pixels, entries)
tensor; pixels whose transmittance has run out leave between blocks (gsplat's kernels stop
the same way). Whole images and pixel subsets go through the same code, so a pixel's value
never depends on which other pixels were requested.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import torch

from clickgauss_core.cameras import Camera
from clickgauss_core.click import MAX_ALPHA, MIN_TRANSMITTANCE, SIGMA_CUTOFF

from .gaussians import GaussianTensors
from .projection import ALPHA_THRESHOLD, ProjectedGaussians, project_gaussians

# torch flags its CSR API (our W) as beta; set once here, as catch_warnings is not thread-safe.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")

TILE_SIZE = 16
ELEMENTS_PER_BLOCK = 1 << 18    # pixel x candidate pairs evaluated per step (bounds the memory)
COLUMN_BITS = 6
BLOCK_COLUMNS = 1 << COLUMN_BITS  # list entries per step: the granularity of stopping early


@dataclass
class CompositingWeights:
    """W (P x N) as CSR arrays, rows = requested pixels in request order, plus T at the end."""

    row_offsets: torch.Tensor    # (P + 1,) int32 (int64 past 2^31 entries)
    gaussian_ids: torch.Tensor   # (nnz,) same dtype, front to back within a row
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
        index_dtype = self.gaussian_ids.dtype
        order = torch.argsort(self.gaussian_ids, stable=True)
        counts = torch.bincount(self.gaussian_ids, minlength=self.num_gaussians)
        offsets = torch.zeros(self.num_gaussians + 1, dtype=index_dtype, device=counts.device)
        torch.cumsum(counts, 0, out=offsets[1:])
        rows = torch.repeat_interleave(torch.arange(self.num_pixels, dtype=index_dtype, device=counts.device),
                                       self.row_offsets.diff())
        return _csr(offsets, rows.index_select(0, order), self.weights.index_select(0, order).to(dtype),
                    (self.num_gaussians, self.num_pixels))

    def transmittance_before(self) -> torch.Tensor:
        """(nnz,) each entry's pixel transmittance just before it: 1 - the weights ahead of it in its
        row (accumulated in float64: a million summed weights would blur a float32 difference)."""
        ahead = torch.zeros(self.weights.shape[0] + 1, dtype=torch.float64, device=self.weights.device)
        torch.cumsum(self.weights.to(torch.float64), 0, out=ahead[1:])
        rows_start = ahead.index_select(0, self.row_offsets[:-1].long())
        before = ahead[:-1] - torch.repeat_interleave(rows_start, self.row_offsets.diff().long())
        return (1.0 - before).to(self.weights.dtype)

    def reaching(self, min_transmittance: float) -> "CompositingWeights":
        """The same W with the entries the pixel reaches at a transmittance under `min_transmittance`
        set to zero: what lies behind the surface the pixel shows."""
        kept = self.weights * (self.transmittance_before() >= min_transmittance).to(self.weights.dtype)
        return CompositingWeights(row_offsets=self.row_offsets, gaussian_ids=self.gaussian_ids, weights=kept,
                                  transmittance=self.transmittance, num_gaussians=self.num_gaussians)


def _csr(row_offsets, columns, values, shape) -> torch.Tensor:
    return torch.sparse_csr_tensor(row_offsets, columns, values, shape, check_invariants=False)


class _WeightedSum(torch.autograd.Function):
    """F = W f with dF/df = W^T (or the W' given for the backward); W is constant (the frozen geometry)."""

    @staticmethod
    def forward(ctx, features: torch.Tensor, weights: CompositingWeights,
                backward_weights: CompositingWeights) -> torch.Tensor:
        ctx.compositing = backward_weights
        return weights.matrix(features.dtype) @ features

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        weights: CompositingWeights = ctx.compositing
        grad = weights.transposed_matrix(grad_output.dtype) @ grad_output.contiguous()
        return grad, None, None


def weighted_sum(weights: CompositingWeights, features: torch.Tensor,
                 backward_weights: CompositingWeights | None = None) -> torch.Tensor:
    """(P, C) = W @ features, differentiable w.r.t. features; `backward_weights` W' (same pixels and
    Gaussians) makes the gradient W'^T dF instead: some contributions treated as constants."""
    return _WeightedSum.apply(features, weights, weights if backward_weights is None else backward_weights)


@dataclass
class _TileBins:
    """Visible Gaussians grouped by tile, front to back inside a tile, with what compositing reads.

    Tile t's list occupies slots [list_start[t], list_end[t]); slot list_end[t] is an all-zero
    splat (opacity 0 never contributes) that the padded columns of a block point at.
    `splats` is (6, slots): u, v, -a / 2, -b, -c / 2 (the conic (a, b, c) scaled so that the
    exponent is their dot product with (dx^2, dx dy, dy^2)), opacity; one contiguous row per
    quantity keeps the per-candidate arithmetic on contiguous memory.
    """

    list_start: torch.Tensor     # (tiles,)
    list_end: torch.Tensor       # (tiles,)
    gaussian_ids: torch.Tensor   # (slots,) ids into the full Gaussian set (0 at padding slots)
    splats: torch.Tensor         # (6, slots)


def _bin_into_tiles(projected: ProjectedGaussians, tiles_x: int, tiles_y: int, tile_size: int,
                    wanted_tiles: torch.Tensor) -> _TileBins:
    """Bin the visible Gaussians into the tiles flagged in `wanted_tiles` ((tiles,) bool).

    Gathers use index_select: on CPU it is several times faster than advanced indexing.
    """
    device = projected.means2d.device
    num_tiles = tiles_x * tiles_y
    visible_ids = projected.visible.nonzero().squeeze(1)
    means = projected.means2d.index_select(0, visible_ids)
    radii = projected.radii.index_select(0, visible_ids)
    low = torch.floor((means - radii) / tile_size).long()
    high = torch.ceil((means + radii) / tile_size).long()
    x0, x1 = low[:, 0].clamp(0, tiles_x), high[:, 0].clamp(0, tiles_x)
    y0, y1 = low[:, 1].clamp(0, tiles_y), high[:, 1].clamp(0, tiles_y)
    # Cheap pre-cut to the bounding box of the wanted tiles (a click wants a single tile).
    wanted_grid = wanted_tiles.view(tiles_y, tiles_x)
    wanted_cols = wanted_grid.any(0).nonzero().squeeze(1)
    wanted_rows = wanted_grid.any(1).nonzero().squeeze(1)
    if wanted_cols.numel() > 0:
        x0, x1 = x0.clamp_min(int(wanted_cols[0])), x1.clamp_max(int(wanted_cols[-1]) + 1)
        y0, y1 = y0.clamp_min(int(wanted_rows[0])), y1.clamp_max(int(wanted_rows[-1]) + 1)
    span_x = (x1 - x0).clamp_min(0)
    tiles_per_gaussian = span_x * (y1 - y0).clamp_min(0)
    keep = (tiles_per_gaussian > 0).nonzero().squeeze(1)
    # Stable sort: equal depths keep the file order, like gsplat's stable radix sort.
    keep = keep.index_select(0, _stable_argsort_floats(projected.depths.index_select(0, visible_ids.index_select(0, keep))))
    visible_ids, x0, y0, span_x, tiles_per_gaussian = (
        t.index_select(0, keep) for t in (visible_ids, x0, y0, span_x, tiles_per_gaussian))

    # One (Gaussian, tile) pair per tile of each footprint's bounding box, in depth order.
    owner = torch.repeat_interleave(torch.arange(len(visible_ids), device=device), tiles_per_gaussian)
    first_pair = torch.cumsum(tiles_per_gaussian, 0) - tiles_per_gaussian
    local = torch.arange(owner.numel(), device=device) - first_pair.index_select(0, owner)
    owner_span = span_x.index_select(0, owner)
    row_in_box = torch.div(local, owner_span, rounding_mode="floor")
    tile_ids = ((y0.index_select(0, owner) + row_in_box) * tiles_x + x0.index_select(0, owner)
                + local - row_in_box * owner_span)
    wanted_pair = wanted_tiles.index_select(0, tile_ids).nonzero().squeeze(1)
    owner, tile_ids = owner.index_select(0, wanted_pair), tile_ids.index_select(0, wanted_pair)
    # A stable sort by tile keeps the depth order inside each tile (narrow keys sort faster).
    tile_ids, order = torch.sort(tile_ids.to(torch.int16 if num_tiles <= 2**15 else torch.int32), stable=True)
    tile_ids = tile_ids.long()
    owner = owner.index_select(0, order)
    counts = torch.bincount(tile_ids, minlength=num_tiles)
    # Tile t's list starts after the lists and padding slots of tiles 0..t-1.
    list_end = torch.cumsum(counts + 1, 0) - 1
    list_start = list_end - counts
    slots = torch.arange(tile_ids.numel(), device=device) + tile_ids  # sorted pair k -> its slot
    centres = projected.means2d.index_select(0, visible_ids)
    conics = projected.conics.index_select(0, visible_ids)
    per_gaussian = torch.stack([centres[:, 0], centres[:, 1], -0.5 * conics[:, 0], -conics[:, 1],
                                -0.5 * conics[:, 2], projected.opacities.index_select(0, visible_ids)])
    splats = torch.zeros(6, tile_ids.numel() + num_tiles, dtype=per_gaussian.dtype, device=device)
    splats.index_copy_(1, slots, per_gaussian.index_select(1, owner))
    gaussian_ids = torch.zeros(tile_ids.numel() + num_tiles, dtype=torch.int64, device=device)
    gaussian_ids.index_copy_(0, slots, visible_ids.index_select(0, owner))
    return _TileBins(list_start=list_start, list_end=list_end, gaussian_ids=gaussian_ids, splats=splats)


def _stable_argsort_floats(values: torch.Tensor) -> torch.Tensor:
    """argsort(values, stable=True), several times faster for non-negative values on CPU.

    Non-negative IEEE floats order like their bit patterns read as integers, and torch sorts
    integers by radix sort.
    """
    as_integers = {torch.float32: torch.int32, torch.float64: torch.int64}.get(values.dtype)
    if as_integers is None or values.numel() == 0 or bool(values.min() < 0):
        return torch.argsort(values, stable=True)
    return torch.argsort(values.view(as_integers), stable=True)


def compositing_weights(gaussians: GaussianTensors, camera: Camera, pixels: torch.Tensor,
                        tile_size: int = TILE_SIZE) -> CompositingWeights:
    """Front-to-back alpha compositing weights of the (P, 2) integer (x, y) `pixels`."""
    device = gaussians.device
    num_pixels = pixels.shape[0]
    with torch.no_grad():
        projected = project_gaussians(gaussians, camera)
        tiles_x, tiles_y = math.ceil(camera.width / tile_size), math.ceil(camera.height / tile_size)
        pixel_tiles = (pixels[:, 1] // tile_size) * tiles_x + pixels[:, 0] // tile_size
        wanted_tiles = torch.zeros(tiles_x * tiles_y, dtype=torch.bool, device=device)
        wanted_tiles[pixel_tiles] = True
        bins = _bin_into_tiles(projected, tiles_x, tiles_y, tile_size, wanted_tiles)
        state = _PixelState.start(pixels, bins.splats.dtype)

        # The pixels of a tile share its list, so each list entry is read once per tile. Tiles are
        # processed in chunks padded to the chunk's largest pixel count: sorting the tiles by
        # pixel count keeps that padding small (uneven list lengths cost nothing, a tile simply
        # leaves the loop when its list ends).
        list_length = bins.list_end - bins.list_start
        pixels_per_tile = torch.bincount(pixel_tiles, minlength=tiles_x * tiles_y)
        tiles = (wanted_tiles & (list_length > 0)).nonzero().squeeze(1)
        tiles = tiles[torch.argsort(pixels_per_tile[tiles], descending=True, stable=True)]
        tile_rank = torch.full((tiles_x * tiles_y,), tiles.numel(), dtype=torch.int64, device=device)
        tile_rank[tiles] = torch.arange(tiles.numel(), device=device)
        pixel_order = torch.argsort(tile_rank[pixel_tiles], stable=True)   # pixels grouped by tile
        pixels_per_tile = pixels_per_tile[tiles]
        first_pixel = torch.cumsum(pixels_per_tile, 0) - pixels_per_tile
        counts_host = pixels_per_tile.tolist()

        chunk_begin = 0
        while chunk_begin < tiles.numel():
            width = counts_host[chunk_begin]   # the largest pixel count of the chunk
            chunk_end = min(tiles.numel(), chunk_begin + max(1, ELEMENTS_PER_BLOCK // (BLOCK_COLUMNS * width)))
            chunk = slice(chunk_begin, chunk_end)
            # (tiles, width) table of pixel rows; short tiles padded with the never-counted row P.
            rank_in_tile = torch.arange(width, device=device)
            table_slots = (first_pixel[chunk, None] + rank_in_tile).clamp_max(num_pixels - 1)
            table = torch.where(rank_in_tile < pixels_per_tile[chunk, None], pixel_order[table_slots], num_pixels)
            _composite_tiles(bins, state, table, bins.list_start[tiles[chunk]], bins.list_end[tiles[chunk]])
            chunk_begin = chunk_end
        return state.weights(bins, len(gaussians))


@dataclass
class _PixelState:
    """The requested pixels while they are being composited, and the weights found so far.

    Arrays have P + 1 entries: the last is a padding pixel that is done from the start.
    Contributions are kept with their rank inside their pixel's row, so that the CSR arrays can
    be filled at the end without sorting.
    """

    centres: torch.Tensor        # (2, P + 1) pixel centres (x + 0.5, y + 0.5)
    transmittance: torch.Tensor  # (P + 1,) T after the candidates composited so far
    open: torch.Tensor           # (P + 1,) 1.0 while the pixel still composites, else 0.0
    filled: torch.Tensor         # (P + 1,) contributions found so far
    rows: list = field(default_factory=list)     # per block: pixel of each contribution
    ranks: list = field(default_factory=list)    # per block: its rank in the pixel's row
    slots: list = field(default_factory=list)    # per block: its list slot
    values: list = field(default_factory=list)   # per block: its weight alpha * T

    @classmethod
    def start(cls, pixels: torch.Tensor, dtype: torch.dtype) -> "_PixelState":
        num_pixels = pixels.shape[0]
        centres = torch.zeros(2, num_pixels + 1, dtype=dtype, device=pixels.device)
        centres[:, :num_pixels] = pixels.T.to(dtype) + 0.5
        is_open = torch.ones(num_pixels + 1, dtype=dtype, device=pixels.device)
        is_open[num_pixels] = 0.0
        return cls(centres=centres, transmittance=torch.ones_like(is_open), open=is_open,
                   filled=torch.zeros(num_pixels + 1, dtype=torch.int64, device=pixels.device))

    def weights(self, bins: _TileBins, num_gaussians: int) -> CompositingWeights:
        num_pixels = self.transmittance.shape[0] - 1
        device = self.transmittance.device
        row_offsets = torch.zeros(num_pixels + 1, dtype=torch.int64, device=device)
        torch.cumsum(self.filled[:num_pixels], 0, out=row_offsets[1:])
        nnz = int(row_offsets[-1])
        # int32 indices halve the memory and sort faster; CSR wants row and column indices alike.
        index_dtype = torch.int32 if max(nnz, num_gaussians) < 2**31 - 1 else torch.int64
        gaussian_ids = torch.zeros(nnz, dtype=index_dtype, device=device)
        values = self.transmittance.new_zeros(nnz)
        for rows, ranks, slots, block_values in zip(self.rows, self.ranks, self.slots, self.values):
            where = row_offsets.index_select(0, rows) + ranks
            gaussian_ids.index_copy_(0, where, bins.gaussian_ids.index_select(0, slots).to(index_dtype))
            values.index_copy_(0, where, block_values)
        return CompositingWeights(row_offsets=row_offsets.to(index_dtype), gaussian_ids=gaussian_ids, weights=values,
                                  transmittance=self.transmittance[:num_pixels], num_gaussians=num_gaussians)


def _composite_tiles(bins: _TileBins, state: _PixelState, table: torch.Tensor, list_start: torch.Tensor,
                     list_end: torch.Tensor) -> None:
    """Composite the pixels `table` (tiles, K) through their tiles' lists, BLOCK_COLUMNS at a time.

    After each block the pixels that are done leave their tile's row of the table (it shrinks
    to the most pixels still open in any tile), and a tile leaves once none is open. Written
    for CPU speed: in-place arithmetic, float masks instead of torch.where, and everything that
    only concerns contributions (weights, transmittance) computed on the few hits.
    """
    padding_pixel = state.open.shape[0] - 1
    pixel_rows, start, end = table, list_start, list_end
    column = 0
    columns = torch.arange(BLOCK_COLUMNS, device=table.device)
    while pixel_rows.numel() > 0:
        num_tiles, width = pixel_rows.shape
        slots = torch.minimum(start[:, None] + (column + columns), end[:, None])            # (tiles, B)
        splat = bins.splats.index_select(1, slots.view(-1)).view(6, num_tiles, 1, BLOCK_COLUMNS)
        u, v, neg_half_a, neg_b, neg_half_c, opacity = splat
        centres = state.centres[:, pixel_rows].unsqueeze(-1)                                # (2, tiles, K, 1)
        dx = u - centres[0]                                                                 # (tiles, K, B)
        dy = v - centres[1]
        exponent = dx * neg_half_a
        exponent.addcmul_(dy, neg_b).mul_(dx).add_(dy.mul_(dy).mul_(neg_half_c))             # -sigma
        # Past sigma = 6 > ln 255 every alpha is below the threshold; clamping there keeps exp()
        # from producing denormals, which are many times slower on CPUs. gsplat's extra
        # "sigma < 0" skip only fires on rounding noise of a positive-definite conic; not copied.
        alpha = exponent.clamp_(min=-SIGMA_CUTOFF).exp_().mul_(opacity).clamp_(max=MAX_ALPHA)
        counted = alpha >= ALPHA_THRESHOLD
        alpha.mul_(counted)
        start_t = (state.transmittance[pixel_rows] * state.open[pixel_rows]).unsqueeze(-1)
        after = torch.cumprod(1.0 - alpha, dim=2).mul_(start_t)                             # T after each
        hits = (counted & (after > MIN_TRANSMITTANCE)).view(-1).nonzero().squeeze(1)
        if hits.numel():
            _record_hits(state, hits, pixel_rows, slots, alpha, after)
        still_open = after[..., -1] > MIN_TRANSMITTANCE                                     # (tiles, K)
        state.open[pixel_rows] *= still_open
        state.open[padding_pixel] = 0.0  # padding entries of the table may have written it
        column += BLOCK_COLUMNS

        keep_tiles = (still_open.any(dim=1) & (end - start > column)).nonzero().squeeze(1)
        pixel_rows, still_open = pixel_rows.index_select(0, keep_tiles), still_open.index_select(0, keep_tiles)
        start, end = start.index_select(0, keep_tiles), end.index_select(0, keep_tiles)
        open_width = int(still_open.sum(dim=1).max()) if keep_tiles.numel() else 0
        if open_width < width:
            # Open pixels first in each row (stable), then cut the row to the widest open count.
            order = torch.argsort(still_open.to(torch.uint8), dim=1, descending=True, stable=True)[:, :open_width]
            pixel_rows = torch.where(still_open.gather(1, order), pixel_rows.gather(1, order), padding_pixel)


def _record_hits(state: _PixelState, hits, pixel_rows, slots, alpha, after) -> None:
    """Store the contributions at flat block indices `hits` (sorted) and update T.

    index_select and shifts instead of advanced indexing and division: several times faster
    on CPU, and this runs once per contribution.
    """
    num_tiles, width = pixel_rows.shape
    group = hits >> COLUMN_BITS            # (tile, pixel) row of the block; hits of a row are adjacent
    hit_column = hits & (BLOCK_COLUMNS - 1)
    tile_of_group = torch.arange(num_tiles, device=hits.device).repeat_interleave(width)
    pixel = pixel_rows.view(-1).index_select(0, group)
    hit_alpha = alpha.view(-1).index_select(0, hits)
    hit_after = after.view(-1).index_select(0, hits)
    counts = torch.bincount(group, minlength=pixel_rows.numel())
    group_start = torch.cumsum(counts, 0) - counts
    rank = torch.arange(hits.numel(), device=hits.device) - group_start.index_select(0, group)
    # Kept as int32 until the end: these lists are the largest memory of a big render.
    state.rows.append(pixel.to(torch.int32))
    state.ranks.append((rank + state.filled.index_select(0, pixel)).to(torch.int32))
    slot_index = (tile_of_group.index_select(0, group) << COLUMN_BITS) + hit_column
    state.slots.append(slots.view(-1).index_select(0, slot_index).to(torch.int32))
    state.values.append(hit_alpha * (hit_after / (1.0 - hit_alpha)))   # alpha * T in front of it
    # T stays at its value after the last contribution; the candidate that would end it is excluded.
    last = (group_start + counts - 1)[counts > 0]
    state.transmittance[pixel.index_select(0, last)] = hit_after.index_select(0, last)
    state.filled.view(-1)[pixel_rows.view(-1)] += counts
