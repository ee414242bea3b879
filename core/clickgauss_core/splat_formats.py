"""The other real-world splat formats, decoded into a GaussianCloud in the INRIA layout.

- SuperSplat / PlayCanvas compressed PLY: an element `chunk` (per 256 splats: min/max of
  position and log-scale, optionally of colour) and an element `vertex` of four uint32:
  packed_position and packed_scale 11/10/11 bits (fractions of the chunk's min..max range),
  packed_rotation "largest three" (2 bits: index of the dropped largest component, then three
  10-bit components in [-1/sqrt2, 1/sqrt2]; component i is rot_i, i.e. w x y z), packed_color
  8/8/8/8 RGBA (colour as a fraction of the chunk's colour range when the chunk has one, A =
  opacity after the sigmoid). An optional element `sh` holds f_rest_* quantised to uint8.
- antimatter15 `.splat`: no header, 32 bytes per splat: float32 x y z, float32 linear scale
  x y z, uint8 R G B A (A = opacity), uint8 quaternion w x y z stored as q * 128 + 128.

Both store activated values (opacity in [0, 1], colour instead of SH DC); they are converted to
the stored INRIA values: logit opacity, log scale, f_dc = (colour - 0.5) / SH_C0.
"""

from __future__ import annotations

import os

import numpy as np

from .errors import PlyFormatError
from .gaussians import SH_C0, GaussianCloud
from .ply_container import (REST_COUNT_TO_SH_DEGREE, is_compressed_ply_header, read_ply_data, read_ply_header,
                            require_gaussians)

CHUNK_SIZE = 256
CHUNK_PROPERTIES = ("min_x", "min_y", "min_z", "max_x", "max_y", "max_z",
                    "min_scale_x", "min_scale_y", "min_scale_z", "max_scale_x", "max_scale_y", "max_scale_z")
CHUNK_COLOR_PROPERTIES = ("min_r", "min_g", "min_b", "max_r", "max_g", "max_b")
PACKED_PROPERTIES = ("packed_position", "packed_rotation", "packed_scale", "packed_color")
# Opacity 0 or 1 has no finite logit; clamp to values that render the same.
OPACITY_EPSILON = 1e-6
# Linear scales of 0 have no log; this is far below anything a renderer can resolve.
MIN_LINEAR_SCALE = 1e-12
SPLAT_RECORD = np.dtype([("position", "<f4", (3,)), ("scale", "<f4", (3,)),
                         ("rgba", "u1", (4,)), ("rotation", "u1", (4,))])


def _logit(alpha: np.ndarray) -> np.ndarray:
    alpha = np.clip(alpha.astype(np.float64), OPACITY_EPSILON, 1.0 - OPACITY_EPSILON)
    return np.log(alpha / (1.0 - alpha)).astype(np.float32)


def _unorm(values: np.ndarray, shift: int, bits: int) -> np.ndarray:
    mask = (1 << bits) - 1
    return ((values >> np.uint32(shift)) & np.uint32(mask)).astype(np.float32) / np.float32(mask)


def _unpack_11_10_11(values: np.ndarray) -> np.ndarray:
    return np.stack([_unorm(values, 21, 11), _unorm(values, 11, 10), _unorm(values, 0, 11)], axis=1)


def _unpack_rotation(values: np.ndarray) -> np.ndarray:
    """Largest-three quaternion -> (N, 4) in stored component order (rot_0..rot_3 = w x y z)."""
    scale = np.float32(np.sqrt(2.0))  # components lie in [-1/sqrt2, 1/sqrt2]
    small = np.stack([(_unorm(values, shift, 10) - 0.5) * scale for shift in (20, 10, 0)], axis=1)
    largest = np.sqrt(np.maximum(0.0, 1.0 - (small * small).sum(axis=1)))
    which = (values >> np.uint32(30)).astype(np.int64)
    quats = np.empty((len(values), 4), dtype=np.float32)
    rows = np.arange(len(values))
    quats[rows, which] = largest
    # The three stored components fill the other slots in increasing index order.
    other = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])[which]
    for k in range(3):
        quats[rows, other[:, k]] = small[:, k]
    return quats


def read_compressed_ply(path: str | os.PathLike) -> GaussianCloud:
    """Decode a SuperSplat compressed PLY into the INRIA layout (normals zero, SH from `sh`)."""
    path = os.fspath(path)
    header = read_ply_header(path)
    if not is_compressed_ply_header(header):
        raise PlyFormatError(path, "not a SuperSplat compressed PLY (needs a 'chunk' element and packed_* vertex properties)")
    chunk_types = dict(header.element("chunk")[2])
    vertex_types = dict(header.element("vertex")[2])
    missing = [n for n in CHUNK_PROPERTIES if n not in chunk_types] + [n for n in PACKED_PROPERTIES if n not in vertex_types]
    if missing:
        raise PlyFormatError(path, f"compressed PLY is missing properties: {', '.join(missing)}")
    wrong = [n for n in PACKED_PROPERTIES if vertex_types[n] not in ("uint", "uint32")]
    wrong += [n for n in CHUNK_PROPERTIES if chunk_types[n] not in ("float", "float32")]
    if wrong:
        raise PlyFormatError(path, f"compressed PLY properties have the wrong type: {', '.join(wrong)} "
                                   "(packed_* must be uint, chunk bounds float)")
    sh_element = header.element("sh")
    if sh_element is not None:
        sh_types = dict(sh_element[2])
        if len(sh_types) not in REST_COUNT_TO_SH_DEGREE or set(sh_types) != {f"f_rest_{i}" for i in range(len(sh_types))}:
            raise PlyFormatError(path, f"compressed PLY 'sh' element has {len(sh_types)} properties: "
                                       "expected f_rest_0.. with 9, 24 or 45 of them")
        if any(kind not in ("uchar", "uint8") for kind in sh_types.values()):
            raise PlyFormatError(path, "compressed PLY 'sh' properties must be uchar")

    require_gaussians(path, header.element("vertex")[1])
    ply = read_ply_data(path, header)
    chunks, vertices = ply["chunk"].data, ply["vertex"].data
    n = len(vertices)
    if len(chunks) != -(-n // CHUNK_SIZE):
        raise PlyFormatError(path, f"{len(chunks)} chunks for {n} splats: expected {-(-n // CHUNK_SIZE)} "
                                   f"(one per {CHUNK_SIZE})")
    if sh_element is not None and len(ply["sh"].data) != n:
        raise PlyFormatError(path, f"'sh' element has {len(ply['sh'].data)} rows for {n} splats")
    chunk_of = np.arange(n) // CHUNK_SIZE

    def bounds(names):
        values = np.stack([np.asarray(chunks[name], dtype=np.float32) for name in names], axis=1)
        if not np.isfinite(values).all():
            raise PlyFormatError(path, f"chunk bounds {', '.join(names)} contain NaN/inf")
        return values[chunk_of]

    def lerp(low, high, t):
        return low * (1.0 - t) + high * t

    packed = {name: np.asarray(vertices[name], dtype=np.uint32) for name in PACKED_PROPERTIES}
    positions = lerp(bounds(CHUNK_PROPERTIES[0:3]), bounds(CHUNK_PROPERTIES[3:6]),
                     _unpack_11_10_11(packed["packed_position"]))
    log_scales = lerp(bounds(CHUNK_PROPERTIES[6:9]), bounds(CHUNK_PROPERTIES[9:12]),
                      _unpack_11_10_11(packed["packed_scale"]))
    rgba = np.stack([_unorm(packed["packed_color"], shift, 8) for shift in (24, 16, 8, 0)], axis=1)
    colors = rgba[:, :3]
    if all(name in chunk_types for name in CHUNK_COLOR_PROPERTIES):
        colors = lerp(bounds(CHUNK_COLOR_PROPERTIES[0:3]), bounds(CHUNK_COLOR_PROPERTIES[3:6]), colors)
    sh_rest = None
    if sh_element is not None:
        names = [f"f_rest_{i}" for i in range(len(sh_element[2]))]
        quantised = np.stack([np.asarray(ply["sh"].data[name], dtype=np.float32) for name in names], axis=1)
        # 0 and 255 are exact ends of the range; other codes sit at bucket centres.
        unit = np.where(quantised == 0, 0.0, np.where(quantised == 255, 1.0, (quantised + 0.5) / 256.0))
        flat = ((unit - 0.5) * 8.0).astype(np.float32)
        sh_rest = flat.reshape(n, 3, len(names) // 3).transpose(0, 2, 1)  # file is channel-major
    del chunks, vertices, ply
    cloud = GaussianCloud.from_arrays(positions, log_scales, _unpack_rotation(packed["packed_rotation"]),
                                      _logit(rgba[:, 3]), (colors - 0.5) / SH_C0, sh_rest=sh_rest)
    cloud.source = path
    cloud.comments = [f"converted from SuperSplat compressed PLY {os.path.basename(path)}"]
    return cloud


def read_antimatter_splat(path: str | os.PathLike) -> GaussianCloud:
    """Decode an antimatter15 `.splat` file (SH degree 0) into the INRIA layout."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise PlyFormatError(path, "file not found")
    size = os.path.getsize(path)
    if size == 0:
        raise PlyFormatError(path, "empty file (0 bytes)")
    if size % SPLAT_RECORD.itemsize:
        raise PlyFormatError(path, f"size {size} bytes is not a multiple of {SPLAT_RECORD.itemsize}: "
                                   "not an antimatter15 .splat file (or truncated)")
    records = np.fromfile(path, dtype=SPLAT_RECORD)
    positions, scales = records["position"].astype(np.float32), records["scale"].astype(np.float64)
    for name, values in (("position", positions), ("scale", scales)):
        finite = np.isfinite(values).all(axis=1)
        if not finite.all():
            raise PlyFormatError(path, f"{int((~finite).sum())} splat(s) have a NaN/inf {name} "
                                       f"(first at splat {int(np.argmin(finite))})")
    rgba = records["rgba"].astype(np.float32) / 255.0
    rotations = (records["rotation"].astype(np.float32) - 128.0) / 128.0
    cloud = GaussianCloud.from_arrays(positions, np.log(np.maximum(scales, MIN_LINEAR_SCALE)), rotations,
                                      _logit(rgba[:, 3]), (rgba[:, :3] - 0.5) / SH_C0)
    cloud.source = path
    cloud.comments = [f"converted from antimatter15 .splat {os.path.basename(path)}"]
    return cloud
