"""Niantic SPZ ("splat zip"), read into and written from a GaussianCloud in the INRIA layout.

Layout (little endian; nianticlabs/spz README and src/cc/load-spz.cc):
- Versions 1-3: the whole file is one gzip stream holding a 16-byte header (uint32 magic
  'NGSP' = 0x5053474e, uint32 version, uint32 count, uint8 SH degree, uint8 fractional bits,
  uint8 flags, uint8 reserved) and then the attributes one after the other, each for every
  Gaussian: positions, alphas, colours, scales, rotations, SH. A stream of this layout that is
  not gzip-wrapped is read as well.
- Version 4: not gzip-wrapped. A 32-byte header (the same first 15 bytes, then uint8 stream
  count, uint32 offset of the table of contents, 12 reserved bytes), optional extensions, the
  table (per stream: uint64 compressed size, uint64 size), then each attribute (in the order
  above, empty ones left out) as its own zstd frame.
Attributes:
- position: 24-bit signed fixed point per axis, `fractional bits` of fraction (v1: float16).
- alpha: uint8 sigmoid(opacity) * 255; colour: uint8 f_dc * 0.15 * 255 + 127.5 (the SH DC
  coefficient, not the colour); scale: uint8 (log scale + 10) * 16.
- rotation: v1-2: uint8 x y z of the unit quaternion with w >= 0, as q * 127.5 + 127.5;
  v3+: "smallest three" in a uint32: the top 2 bits the index (x y z w order) of the largest
  component, then for each other component in index order a sign bit and 9 bits of
  |q| / sqrt(1/2) * 511, the first one in the highest bits.
- SH: uint8 (q - 128) / 128 per coefficient, the colour channel varying fastest.
The coordinates are taken as stored (Niantic's loader without a coordinate conversion): SPZ
has no field saying which axes a file uses.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib

import numpy as np

from .errors import PlyFormatError
from .files import atomic_write
from .gaussians import REQUIRED_PROPERTIES, GaussianCloud
from .ply_container import NORMAL_PROPERTIES
from .splat_formats import _logit

GZIP_MAGIC = b"\x1f\x8b"   # versions 1-3: a gzip stream
SPZ_MAGIC = b"NGSP"         # version 4: uint32 0x5053474e, little endian
LEGACY_HEADER = struct.Struct("<4sIIBBBB")           # versions 1-3, inside the gzip stream
STREAMS_HEADER = struct.Struct("<4sIIBBBBI12x")      # version 4: + stream count, TOC offset
TOC_ENTRY = struct.Struct("<QQ")                     # compressed size, uncompressed size
LATEST_VERSION = 4
FIRST_SMALLEST_THREE_VERSION = 3
FIRST_STREAMS_VERSION = 4
COLOR_SCALE = 0.15
# SH coefficients per colour channel beyond the DC term, by degree (degree 4 exists in SPZ but
# has no place in the INRIA layout, which stops at 3).
SH_REST_COUNT = {0: 0, 1: 3, 2: 8, 3: 15}
WRITE_VERSION = 2
WRITE_FRACTIONAL_BITS = 12  # 1/4096 unit (~0.25 mm in metres), what Niantic's writer uses
INT24_LIMIT = 1 << 23


def _attribute_sizes(version: int, count: int, sh_degree: int) -> list[tuple[str, int]]:
    """(name, bytes) for each attribute in file order."""
    rotation_bytes = 4 if version >= FIRST_SMALLEST_THREE_VERSION else 3
    position_bytes = 6 if version == 1 else 9
    return [("positions", count * position_bytes), ("alphas", count), ("colors", count * 3),
            ("scales", count * 3), ("rotations", count * rotation_bytes),
            ("sh", count * SH_REST_COUNT[sh_degree] * 3)]


def _check_header(path: str, version: int, count: int, sh_degree: int, available: int) -> None:
    if not 1 <= version <= LATEST_VERSION:
        raise PlyFormatError(path, f"SPZ version {version} is not supported (versions 1-{LATEST_VERSION} are)")
    if sh_degree not in SH_REST_COUNT:
        raise PlyFormatError(path, f"SPZ with SH degree {sh_degree}: only degrees 0-3 can be opened "
                                   "(the INRIA layout has no degree 4)")
    # Even a perfectly compressed Gaussian takes a fraction of a byte: a count far beyond the
    # data is a corrupt header, refused before anything is allocated for it.
    if count == 0 or count > available * 1024:
        raise PlyFormatError(path, f"SPZ header declares {count} Gaussians for {available} bytes of data: "
                                   "corrupt or not an SPZ file")


def _decode(path: str, version: int, count: int, sh_degree: int, fractional_bits: int,
            flags: int, buffers: dict[str, bytes]) -> GaussianCloud:
    def array(name, width):
        return np.frombuffer(buffers[name], dtype=np.uint8).reshape(count, width)

    if version == 1:  # float16 positions (never released by Niantic, but readable)
        positions = np.frombuffer(buffers["positions"], dtype="<f2").reshape(count, 3).astype(np.float32)
    else:
        raw = array("positions", 9).reshape(count, 3, 3).astype(np.int32)
        fixed = raw[..., 0] | (raw[..., 1] << 8) | (raw[..., 2] << 16)
        fixed = np.where(fixed >= INT24_LIMIT, fixed - (1 << 24), fixed)  # sign of the 24-bit value
        positions = (fixed.astype(np.float64) / float(1 << fractional_bits)).astype(np.float32)
    if not np.isfinite(positions).all():
        raise PlyFormatError(path, "SPZ positions contain NaN/inf")
    log_scales = array("scales", 3).astype(np.float32) / 16.0 - 10.0
    opacity = _logit(array("alphas", 1)[:, 0].astype(np.float32) / 255.0)
    sh_dc = (array("colors", 3).astype(np.float32) / 255.0 - 0.5) / COLOR_SCALE
    if version >= FIRST_SMALLEST_THREE_VERSION:
        xyzw = _unpack_smallest_three(np.frombuffer(buffers["rotations"], dtype="<u4"))
    else:
        xyz = array("rotations", 3).astype(np.float32) / 127.5 - 1.0
        w = np.sqrt(np.maximum(0.0, 1.0 - (xyz * xyz).sum(axis=1)))
        xyzw = np.concatenate([xyz, w[:, None]], axis=1)
    wxyz = xyzw[:, [3, 0, 1, 2]]
    rest = SH_REST_COUNT[sh_degree]
    sh_rest = None
    if rest:
        sh_rest = (array("sh", rest * 3).astype(np.float32) - 128.0) / 128.0
        sh_rest = sh_rest.reshape(count, rest, 3)  # coefficient-major, channel fastest: (N, K-1, 3)
    cloud = GaussianCloud.from_arrays(positions, log_scales, wxyz, opacity, sh_dc, sh_rest=sh_rest)
    cloud.source = path
    antialiased = " (trained with antialiasing)" if flags & 1 else ""
    cloud.comments = [f"converted from Niantic SPZ version {version} {os.path.basename(path)}{antialiased}"]
    return cloud


def _unpack_smallest_three(packed: np.ndarray) -> np.ndarray:
    """uint32 "smallest three" codes -> (N, 4) unit quaternions in x y z w order."""
    packed = packed.astype(np.uint32)
    largest = (packed >> np.uint32(30)).astype(np.int64)
    quats = np.zeros((len(packed), 4), dtype=np.float32)
    rows = np.arange(len(packed))
    # The other three components, in increasing index order, occupy bits 29-20, 19-10, 9-0.
    others = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])[largest]
    for slot, shift in enumerate((20, 10, 0)):
        code = (packed >> np.uint32(shift)) & np.uint32(0x3FF)
        magnitude = (code & np.uint32(0x1FF)).astype(np.float32) / 511.0 * np.float32(np.sqrt(0.5))
        quats[rows, others[:, slot]] = np.where(code & np.uint32(0x200), -magnitude, magnitude)
    quats[rows, largest] = np.sqrt(np.maximum(0.0, 1.0 - (quats * quats).sum(axis=1)))
    return quats


def _split(path: str, data: bytes, offset: int, sizes: list[tuple[str, int]]) -> dict[str, bytes]:
    needed = sum(size for _, size in sizes)
    if len(data) - offset < needed:
        raise PlyFormatError(path, f"truncated SPZ: the header declares {needed} bytes of Gaussian data, "
                                   f"the file holds {len(data) - offset}")
    buffers = {}
    for name, size in sizes:
        buffers[name] = data[offset:offset + size]
        offset += size
    return buffers  # what follows (extensions) is not needed


def _read_single_stream(path: str, data: bytes) -> GaussianCloud:
    if len(data) < LEGACY_HEADER.size:
        raise PlyFormatError(path, f"truncated SPZ: {len(data)} bytes, shorter than its {LEGACY_HEADER.size}-byte header")
    magic, version, count, sh_degree, fractional_bits, flags, _ = LEGACY_HEADER.unpack_from(data)
    if magic != SPZ_MAGIC:
        raise PlyFormatError(path, f"not an SPZ file: the gzip stream starts with {magic!r}, expected {SPZ_MAGIC!r}")
    _check_header(path, version, count, sh_degree, len(data))
    sizes = _attribute_sizes(version, count, sh_degree)
    return _decode(path, version, count, sh_degree, fractional_bits, flags,
                   _split(path, data, LEGACY_HEADER.size, sizes))


def _zstd_decompress(path: str, frame: bytes, size: int) -> bytes:
    try:
        from compression import zstd  # Python 3.14+

        return zstd.decompress(frame)
    except ImportError:
        pass
    try:
        import zstandard
    except ImportError:
        raise PlyFormatError(path, "SPZ version 4 is compressed with zstd, which this Python cannot "
                                   "decompress: install the 'zstandard' package (Blender and the backend "
                                   "have it)") from None
    try:
        return zstandard.ZstdDecompressor().decompress(frame, max_output_size=size)
    except zstandard.ZstdError as exc:
        raise PlyFormatError(path, f"corrupt zstd stream in SPZ ({exc})") from None


def _read_streams(path: str, data: bytes) -> GaussianCloud:
    if len(data) < STREAMS_HEADER.size:
        raise PlyFormatError(path, f"truncated SPZ: {len(data)} bytes, shorter than its {STREAMS_HEADER.size}-byte header")
    _, version, count, sh_degree, fractional_bits, flags, stream_count, toc_offset = STREAMS_HEADER.unpack_from(data)
    _check_header(path, version, count, sh_degree, len(data))
    sizes = [(name, size) for name, size in _attribute_sizes(version, count, sh_degree) if size]
    if stream_count != len(sizes):
        raise PlyFormatError(path, f"SPZ has {stream_count} attribute streams, expected {len(sizes)} "
                                   f"for SH degree {sh_degree}")
    toc_end = toc_offset + stream_count * TOC_ENTRY.size
    if toc_offset < STREAMS_HEADER.size or toc_end > len(data):
        raise PlyFormatError(path, f"SPZ table of contents at byte {toc_offset} lies outside the file")
    buffers, offset = {}, toc_end
    for index, (name, size) in enumerate(sizes):
        compressed, uncompressed = TOC_ENTRY.unpack_from(data, toc_offset + index * TOC_ENTRY.size)
        if uncompressed != size or offset + compressed > len(data):
            raise PlyFormatError(path, f"SPZ stream '{name}': {compressed} bytes unpacking to {uncompressed}, "
                                       f"expected {size} within the file: corrupt or truncated")
        buffers[name] = _zstd_decompress(path, data[offset:offset + compressed], size)
        if len(buffers[name]) != size:
            raise PlyFormatError(path, f"SPZ stream '{name}' unpacks to {len(buffers[name])} bytes, expected {size}")
        offset += compressed
    return _decode(path, version, count, sh_degree, fractional_bits, flags, buffers)


def read_spz(path: str | os.PathLike) -> GaussianCloud:
    """Read a Niantic SPZ file (versions 1-4, SH degree 0-3) into the INRIA layout."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise PlyFormatError(path, "file not found")
    with open(path, "rb") as stream:
        data = stream.read()
    if not data:
        raise PlyFormatError(path, "empty file (0 bytes)")
    if data.startswith(GZIP_MAGIC):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise PlyFormatError(path, f"corrupt or truncated gzip stream in SPZ ({exc})") from None
        return _read_single_stream(path, data)
    if data.startswith(SPZ_MAGIC):
        version = struct.unpack_from("<I", data, 4)[0] if len(data) >= 8 else 0
        if version >= FIRST_STREAMS_VERSION:
            return _read_streams(path, data)
        return _read_single_stream(path, data)
    raise PlyFormatError(path, f"not an SPZ file: it starts with {data[:4]!r}, expected gzip data or {SPZ_MAGIC!r}")


def properties_spz_drops(cloud: GaussianCloud) -> list[str]:
    """The cloud's properties an SPZ file has no place for (all-zero INRIA normals aside)."""
    kept = set(REQUIRED_PROPERTIES) | set(cloud.rest_names)
    return [name for name, values in cloud.properties.items() if name not in kept
            and not (name in NORMAL_PROPERTIES and not np.asarray(values).any())]


def encode_spz(cloud: GaussianCloud) -> bytes:
    """The cloud as SPZ version 2 bytes before the gzip wrapping (see write_spz)."""
    count = len(cloud)
    if count == 0:
        raise ValueError("SPZ cannot hold an empty cloud (its readers refuse a count of 0)")
    degree = int(cloud.sh_degree)
    if degree not in SH_REST_COUNT or len(cloud.rest_names) != SH_REST_COUNT[degree] * 3:
        raise ValueError(f"cannot write SPZ: {len(cloud.rest_names)} f_rest properties is not SH degree 0-3")
    positions = cloud.positions.astype(np.float64)
    if not np.isfinite(positions).all():
        raise ValueError("cannot write SPZ: positions contain NaN/inf")
    # Fewer fractional bits for a scene too large for 12 of them: every reader honours the header.
    extent = float(np.abs(positions).max())
    fractional_bits = WRITE_FRACTIONAL_BITS
    while fractional_bits > 0 and round(extent * (1 << fractional_bits)) >= INT24_LIMIT:
        fractional_bits -= 1
    if round(extent * (1 << fractional_bits)) >= INT24_LIMIT:
        raise ValueError(f"cannot write SPZ: a position of {extent:g} does not fit its 24-bit fixed point")
    fixed = np.round(positions * (1 << fractional_bits)).astype(np.int64) & 0xFFFFFF
    position_bytes = np.stack([fixed & 0xFF, (fixed >> 8) & 0xFF, (fixed >> 16) & 0xFF], axis=-1)

    def to_uint8(values):
        return np.clip(np.round(values), 0, 255).astype(np.uint8)

    alphas = to_uint8(cloud.opacities.astype(np.float64) * 255.0)
    colors = to_uint8(cloud.sh_dc.astype(np.float64) * (COLOR_SCALE * 255.0) + 127.5)
    scales = to_uint8((cloud.log_scales.astype(np.float64) + 10.0) * 16.0)
    xyzw = cloud.rotations.astype(np.float64)[:, [1, 2, 3, 0]]
    xyzw = np.where(xyzw[:, 3:4] < 0, -xyzw, xyzw)  # -q is the same rotation; w >= 0 is implied
    rotations = to_uint8(xyzw[:, :3] * 127.5 + 127.5)
    parts = [LEGACY_HEADER.pack(SPZ_MAGIC, WRITE_VERSION, count, degree, fractional_bits, 0, 0),
             position_bytes.astype(np.uint8).tobytes(), alphas.tobytes(), colors.tobytes(),
             scales.tobytes(), rotations.tobytes()]
    if degree:
        # All 8 bits kept (Niantic's writer rounds higher bands to 4-5 bits to gzip better).
        parts.append(to_uint8(cloud.sh_rest.astype(np.float64) * 128.0 + 128.0).tobytes())
    return b"".join(parts)


def write_spz(path: str | os.PathLike, cloud: GaussianCloud) -> None:
    """Write the cloud as gzip-wrapped SPZ version 2.

    Version 2 because every SPZ reader opens it (Niantic's loaders of every release, spz-js and
    the web viewers built on it), while version 3 needs a 2025 or later loader and version 4 a
    2026 one with zstd. Quantised as SPZ is: 24-bit positions, 8 bits for everything else.
    """
    path = os.fspath(path)
    payload = encode_spz(cloud)
    with atomic_write(path) as stream:
        # mtime=0: the same cloud always gives the same bytes (and the same scene id).
        stream.write(gzip.compress(payload, compresslevel=6, mtime=0))
