"""Read and write 3D Gaussian Splatting PLY files (the INRIA layout and its variants).

`read_gaussian_ply(path)` -> GaussianCloud reads the INRIA layout
(`x y z [nx ny nz] f_dc_0..2 f_rest_* opacity scale_0..2 rot_0..3` plus any extra scalar
properties), binary little/big endian or ASCII, SH degree 0-3 (inferred from the number of
`f_rest_*`: 0, 9, 24 or 45). Properties are looked up by name, never by position.

`write_gaussian_ply(path, cloud)` writes binary little endian: the standard properties in INRIA
order, then the extra ones in the cloud's order, every value bit for bit.

`read_splat_file(path)` opens any splat file the add-on can import: the INRIA PLY, the
SuperSplat compressed PLY, the antimatter15 `.splat` (see `splat_formats`) and Niantic SPZ
(see `spz`). The backend opens scenes through it too.

plyfile parses the container; this module checks the header and the content first and turns
every failure into a `PlyFormatError` naming the file and the problem.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from plyfile import PlyData, PlyElement, PlyParseError

from .errors import PlyFormatError
from .files import atomic_write
from .gaussians import REQUIRED_PROPERTIES, GaussianCloud

NORMAL_PROPERTIES = ("nx", "ny", "nz")
# Number of f_rest_* properties for SH degree 0..3: 3 * ((degree + 1)^2 - 1).
REST_COUNT_TO_SH_DEGREE = {0: 0, 9: 1, 24: 2, 45: 3}
# Byte sizes of the PLY scalar types (both spellings of the spec), for the size check.
PLY_TYPE_SIZES = {
    "char": 1, "uchar": 1, "int8": 1, "uint8": 1,
    "short": 2, "ushort": 2, "int16": 2, "uint16": 2,
    "int": 4, "uint": 4, "int32": 4, "uint32": 4, "float": 4, "float32": 4,
    "double": 8, "float64": 8,
}
FLOAT_TYPES = ("float", "float32", "double", "float64")
# A PLY header is a few KB; a file without "end_header" in its first MB is not a PLY.
MAX_HEADER_BYTES = 1 << 20


@dataclass
class PlyHeader:
    """The parts of a PLY header the checks need (plyfile parses it again to read the data)."""
    format: str                                               # ascii | binary_little_endian | binary_big_endian
    elements: list[tuple[str, int, list[tuple[str, str]]]]   # (name, count, [(property, type or "list")])
    size: int                                                 # bytes up to and including the end_header line
    comments: list[str]

    def element(self, name: str):
        return next((e for e in self.elements if e[0] == name), None)

    def property_names(self, element_name: str) -> list[str]:
        element = self.element(element_name)
        return [] if element is None else [p for p, _ in element[2]]


def read_ply_header(path: str | os.PathLike) -> PlyHeader:
    """Scan the header of a PLY file; PlyFormatError if it is empty, not a PLY, or malformed."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise PlyFormatError(path, "is a folder, not a PLY file" if os.path.isdir(path) else "file not found")
    try:
        with open(path, "rb") as stream:
            head = stream.read(MAX_HEADER_BYTES)
    except OSError as exc:
        raise PlyFormatError(path, f"cannot read the file ({exc.strerror or exc})") from None
    if not head:
        raise PlyFormatError(path, "empty file (0 bytes)")
    if not (head.startswith(b"ply\n") or head.startswith(b"ply\r\n")):
        raise PlyFormatError(path, f"not a PLY file: it starts with {head[:16]!r}, expected 'ply'")
    end = -1
    for marker in (b"\nend_header\n", b"\nend_header\r\n"):
        found = head.find(marker)
        if found >= 0 and (end < 0 or found < end):
            end, end_length = found, len(marker)
    if end < 0:
        raise PlyFormatError(path, "malformed PLY header: no 'end_header' line (truncated header?)")
    lines = head[:end].decode("ascii", errors="replace").replace("\r", "").split("\n")
    fmt, comments, elements = None, [], []
    for number, line in enumerate(lines[1:], start=2):
        words = line.split()
        if not words or words[0] in ("obj_info",):
            continue
        if words[0] == "comment":
            comments.append(line[len("comment"):].strip())
        elif words[0] == "format" and len(words) == 3:
            fmt = words[1]
        elif words[0] == "element" and len(words) == 3 and words[2].isdigit():
            elements.append((words[1], int(words[2]), []))
        elif words[0] == "property" and elements and len(words) == 3 and words[1] in PLY_TYPE_SIZES:
            elements[-1][2].append((words[2], words[1]))
        elif words[0] == "property" and elements and len(words) == 5 and words[1] == "list":
            elements[-1][2].append((words[4], "list"))
        else:
            raise PlyFormatError(path, f"malformed PLY header, line {number}: {line!r}")
    for name, _, props in elements:
        seen = set()
        for prop, _ in props:
            if prop in seen:
                raise PlyFormatError(path, f"malformed PLY header: property '{prop}' appears twice in element '{name}'")
            seen.add(prop)
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise PlyFormatError(path, f"malformed PLY header: unknown or missing format line ({fmt!r})")
    return PlyHeader(fmt, elements, end + end_length, comments)


def _check_declared_sizes(path: str, header: PlyHeader) -> None:
    """The file must be able to hold every element the header declares (a count larger than the
    file): exact for binary data, a lower bound for ASCII (each value is >= 1 character plus a
    separator). Also keeps a corrupt count from allocating terabytes before the read fails."""
    available = os.path.getsize(path) - header.size
    needed, exact = 0, header.format != "ascii"
    for name, count, props in header.elements:
        if header.format == "ascii":
            needed += count * 2 * len(props)
        elif any(kind == "list" for _, kind in props):
            exact = False  # variable-size rows: count only the list lengths' bytes
            needed += count * sum(1 if kind == "list" else PLY_TYPE_SIZES[kind] for _, kind in props)
        else:
            needed += count * sum(PLY_TYPE_SIZES[kind] for _, kind in props)
    if available < needed:
        counts = ", ".join(f"{count} {name}" for name, count, _ in header.elements)
        amount = f"{needed} bytes of data" if exact else f"at least {needed} bytes of data"
        raise PlyFormatError(path, f"file is truncated: the header declares {counts} ({amount}) "
                                   f"but only {available} bytes follow the header")


def read_ply_data(path: str, header: PlyHeader) -> PlyData:
    """plyfile's parse of a file whose header passed `read_ply_header`; failures as PlyFormatError."""
    _check_declared_sizes(path, header)
    try:
        # Memory-mapped: the only fast path plyfile has for binary data; arrays are copied out.
        return PlyData.read(path, mmap="c")
    except PlyParseError as exc:
        raise PlyFormatError(path, f"malformed PLY data: {exc}") from None
    except (ValueError, OSError) as exc:
        raise PlyFormatError(path, f"not a readable PLY file: {exc}") from None


def _native(values: np.ndarray) -> np.ndarray:
    """A contiguous copy in native byte order (big-endian files would leak '>f4' arrays otherwise)."""
    values = np.asarray(values)
    return np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("="))


def is_compressed_ply_header(header: PlyHeader) -> bool:
    """SuperSplat compressed PLY: a `chunk` element and packed_* vertex properties."""
    return header.element("chunk") is not None and "packed_position" in header.property_names("vertex")


def read_gaussian_ply(path: str | os.PathLike) -> GaussianCloud:
    """Read an INRIA-layout 3DGS PLY into a GaussianCloud (every vertex property, file order).

    Every property keeps its type in native byte order (the standard ones are float32, or
    float64 where the file declares double). Raises PlyFormatError for anything that is not a
    well-formed Gaussian splat.
    """
    path = os.fspath(path)
    header = read_ply_header(path)
    vertex = header.element("vertex")
    if is_compressed_ply_header(header):
        raise PlyFormatError(path, "this is a SuperSplat compressed PLY, not the INRIA layout: "
                                   "open it with clickgauss_core.ply.read_splat_file")
    if vertex is None:
        names = ", ".join(e[0] for e in header.elements) or "none"
        raise PlyFormatError(path, f"no 'vertex' element (elements: {names}): not a Gaussian splat PLY")
    names = [p for p, _ in vertex[2]]
    types = dict(vertex[2])
    missing = [n for n in REQUIRED_PROPERTIES if n not in types]
    if missing:
        gaussian_specific = [n for n in REQUIRED_PROPERTIES if n not in ("x", "y", "z")]
        if all(axis in types for axis in "xyz") and not any(n in types for n in gaussian_specific):
            kind = "mesh" if header.element("face") is not None else "point cloud/mesh"
            raise PlyFormatError(path, f"this is a {kind} PLY, not a Gaussian splat: missing {', '.join(missing)}")
        raise PlyFormatError(path, f"missing required Gaussian properties: {', '.join(missing)}")
    for name in names:
        if types[name] == "list":
            raise PlyFormatError(path, f"vertex property '{name}' is a list property; "
                                       "Gaussian splat properties are scalars")
    standard = list(REQUIRED_PROPERTIES) + [n for n in NORMAL_PROPERTIES if n in types]
    rest = [n for n in names if n.startswith("f_rest_")]
    if len(rest) not in REST_COUNT_TO_SH_DEGREE:
        raise PlyFormatError(path, f"{len(rest)} f_rest_* properties: expected 0, 9, 24 or 45 (SH degree 0-3)")
    expected_rest = {f"f_rest_{i}" for i in range(len(rest))}
    if set(rest) != expected_rest:
        raise PlyFormatError(path, f"f_rest_* properties are not numbered 0..{len(rest) - 1}: "
                                   f"{', '.join(sorted(set(rest) - expected_rest))}")
    standard += rest
    for name in standard:
        if types[name] not in FLOAT_TYPES:
            raise PlyFormatError(path, f"property '{name}' has type {types[name]}, expected float or double")

    ply = read_ply_data(path, header)
    data = ply["vertex"].data
    props: dict[str, np.ndarray] = {}
    for name in names:
        values = data[name]
        props[name] = _native(values)  # float standard properties are float32, double ones stay float64
    del data, ply  # release the memory map
    for name in standard:
        finite = np.isfinite(props[name])
        if not finite.all():
            first = int(np.argmin(finite))
            raise PlyFormatError(path, f"property '{name}' has {int((~finite).sum())} NaN/inf value(s) "
                                       f"(first at vertex {first})")
    return GaussianCloud(props, source=path, comments=list(header.comments))


def inria_property_order(names) -> list[str]:
    """INRIA order for the standard properties present, then every other one in the given order."""
    names = list(names)
    rest = sorted((n for n in names if n.startswith("f_rest_") and n[7:].isdigit()), key=lambda n: int(n[7:]))
    standard = (["x", "y", "z"] + [n for n in NORMAL_PROPERTIES if n in names]
                + ["f_dc_0", "f_dc_1", "f_dc_2"] + rest
                + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])
    standard = [n for n in standard if n in names]
    return standard + [n for n in names if n not in standard]


def write_gaussian_ply(path: str | os.PathLike, cloud: GaussianCloud) -> None:
    """Write binary little endian, INRIA property order, every property of the cloud exactly."""
    path = os.fspath(path)
    missing = [name for name in REQUIRED_PROPERTIES if name not in cloud.properties]
    if missing:
        raise ValueError(f"cannot write {path}: the cloud lacks {', '.join(missing)}")
    n = len(cloud)
    order = inria_property_order(cloud.properties)
    for name in order:
        values = np.asarray(cloud.properties[name])
        if values.shape != (n,):
            raise ValueError(f"property '{name}' has shape {values.shape}, expected ({n},)")
    dtype = [(name, np.asarray(cloud.properties[name]).dtype.newbyteorder("<")) for name in order]
    data = np.empty(n, dtype=dtype)
    for name in order:
        data[name] = cloud.properties[name]
    # Written beside the target and renamed: an export over the file it was read from never
    # leaves a half-written scene behind.
    with atomic_write(path) as stream:
        PlyData([PlyElement.describe(data, "vertex")], text=False, byte_order="<",
                comments=list(cloud.comments)).write(stream)


# What a splat file's own first bytes prove about its format. The antimatter15 `.splat` has no
# header, so only its extension names it.
GZIP_MAGIC = b"\x1f\x8b"
SPZ_MAGIC = b"NGSP"  # uint32 0x5053474e, little endian
SPLAT_SUFFIXES = (".ply", ".spz", ".splat")


def sniff_splat_suffix(head: bytes) -> str | None:
    """'.ply' or '.spz' when the first bytes of a file prove it, else None (`.splat` or unknown)."""
    if head.startswith(b"ply"):
        return ".ply"
    if head.startswith(GZIP_MAGIC) or head.startswith(SPZ_MAGIC):
        return ".spz"
    return None


def read_splat_file(path: str | os.PathLike) -> GaussianCloud:
    """Any supported splat file -> GaussianCloud in INRIA layout, chosen by content.

    PLY files (starting with 'ply') are the INRIA layout or the SuperSplat compressed PLY
    (a `chunk` element with packed_* vertex properties); Niantic SPZ starts with the gzip magic
    (versions 1-3) or 'NGSP' (version 4). Anything else with the `.splat` extension is read as
    antimatter15 `.splat` (that format has no header to sniff).
    """
    from .splat_formats import read_antimatter_splat, read_compressed_ply
    from .spz import read_spz

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise PlyFormatError(path, "file not found")
    with open(path, "rb") as stream:
        magic = stream.read(4)
    suffix = os.path.splitext(path)[1].lower()
    sniffed = sniff_splat_suffix(magic)
    if sniffed == ".ply" or (sniffed is None and suffix == ".ply"):
        header = read_ply_header(path)
        if is_compressed_ply_header(header):
            return read_compressed_ply(path)
        return read_gaussian_ply(path)
    if sniffed == ".spz" or suffix == ".spz":
        return read_spz(path)
    if suffix == ".splat":
        return read_antimatter_splat(path)
    if not magic:
        raise PlyFormatError(path, "empty file (0 bytes)")
    raise PlyFormatError(path, f"unknown splat file format (starts with {magic!r}): expected a PLY "
                               "(INRIA or SuperSplat compressed), a Niantic .spz or an antimatter15 .splat")
