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

import numpy as np
from plyfile import PlyData, PlyElement

from .errors import PlyFormatError
from .files import atomic_write
from .gaussians import REQUIRED_PROPERTIES, GaussianCloud
from .ply_container import (FLOAT_TYPES, NORMAL_PROPERTIES, REST_COUNT_TO_SH_DEGREE, is_compressed_ply_header,
                            read_ply_data, read_ply_header, require_gaussians)
from .splat_formats import read_antimatter_splat, read_compressed_ply
from .spz import GZIP_MAGIC, SPZ_MAGIC, read_spz

def _native(values: np.ndarray) -> np.ndarray:
    """A contiguous copy in native byte order (big-endian files would leak '>f4' arrays otherwise)."""
    values = np.asarray(values)
    return np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("="))


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
        raise PlyFormatError(path, "this is a SuperSplat compressed PLY, not the INRIA layout that this reader "
                                   "takes: open it as a splat file (the splat importer decodes it), or export it "
                                   "as an INRIA PLY from SuperSplat")
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
    require_gaussians(path, vertex[1])

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
    for comment in cloud.comments:
        if "\n" in comment or "\r" in comment:
            raise ValueError(f"cannot write {path}: the header comment {comment[:40]!r}... has a line break")
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
        stream.write(_binary_header(data, cloud.comments))
        stream.write(data.tobytes())


def _binary_header(data: np.ndarray, comments) -> bytes:
    """plyfile's header for `data` with the comments in UTF-8 (plyfile allows only ASCII ones):
    a comment read from a UTF-8 or latin-1 header is written back, not refused."""
    lines = PlyData([PlyElement.describe(data, "vertex")], text=False, byte_order="<").header.split("\n")
    lines[2:2] = [f"comment {comment}" for comment in comments]  # after 'ply' and the format line
    return ("\n".join(lines) + "\n").encode("utf-8")


# What a splat file's own first bytes prove about its format (PLY: 'ply'; SPZ: its magic). The
# antimatter15 `.splat` has no header, so only its extension names it.
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
