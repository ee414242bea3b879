"""The PLY container under every splat PLY: the header scanned and checked, the data parsed by plyfile.

`read_ply_header(path)` scans the header (format, elements, comments) and rejects what is not a
PLY before plyfile sees it; `read_ply_data(path, header)` checks the declared sizes against the
file and parses it. The INRIA layout (`ply.py`) and the SuperSplat compressed PLY
(`splat_formats.py`) are both read through these. Every failure is a `PlyFormatError`.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass

from plyfile import PlyData, PlyParseError

from .errors import PlyFormatError

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
MAX_QUOTED_HEADER_LINE = 80
NON_ASCII_AS_QUESTION_MARK = bytes(range(128)) + b"?" * 128


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
        # The file's own bytes are never quoted: it may be any file the caller could name.
        raise PlyFormatError(path, "not a PLY file: its first line is not 'ply'")
    end = -1
    for marker in (b"\nend_header\n", b"\nend_header\r\n"):
        found = head.find(marker)
        if found >= 0 and (end < 0 or found < end):
            end, end_length = found, len(marker)
    if end < 0:
        raise PlyFormatError(path, "malformed PLY header: no 'end_header' line (truncated header?)")
    fmt, comments, elements = None, [], []
    for number, raw in enumerate(head[:end].replace(b"\r", b"").split(b"\n")[1:], start=2):
        keyword = raw.split()[:1]
        if keyword == [b"comment"]:
            comments.append(_decode_comment(raw[len(b"comment"):].strip()))
            continue
        if not keyword or keyword == [b"obj_info"]:  # free text too, in any encoding: not kept
            continue
        line = raw.decode("latin-1")
        words = line.split() if raw.isascii() else ["(not ASCII)"]
        if words[0] == "format" and len(words) == 3:
            fmt = words[1]
        elif words[0] == "element" and len(words) == 3 and words[2].isdigit():
            elements.append((words[1], int(words[2]), []))
        elif words[0] == "property" and elements and len(words) == 3 and words[1] in PLY_TYPE_SIZES:
            elements[-1][2].append((words[2], words[1]))
        elif words[0] == "property" and elements and len(words) == 5 and words[1] == "list":
            elements[-1][2].append((words[4], "list"))
        else:
            shown = line if len(line) <= MAX_QUOTED_HEADER_LINE else line[:MAX_QUOTED_HEADER_LINE] + "..."
            raise PlyFormatError(path, f"malformed PLY header, line {number}: {shown!r}")
    for name, _, props in elements:
        seen = set()
        for prop, _ in props:
            if prop in seen:
                raise PlyFormatError(path, f"malformed PLY header: property '{prop}' appears twice in element '{name}'")
            seen.add(prop)
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise PlyFormatError(path, f"malformed PLY header: unknown or missing format line ({fmt!r})")
    return PlyHeader(fmt, elements, end + end_length, comments)


def _decode_comment(raw: bytes) -> str:
    """A header comment in whatever encoding its writer used: UTF-8, else latin-1 (never fails)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _describe_counts(header: PlyHeader) -> str:
    return ", ".join(f"{count} {name}" for name, count, _ in header.elements)


def _check_declared_sizes(path: str, header: PlyHeader) -> None:
    """The data after the header must be what the header declares, no less and no more.

    Binary without list properties: exactly the declared bytes (a count smaller than the data
    would drop the rest of the file silently, a larger one reads past its end). ASCII: a lower
    bound first (each value is >= 1 character plus a separator: keeps a corrupt count from
    allocating terabytes), then one non-blank line per declared row. With list properties the
    row size varies: only the lower bound.
    """
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
    amount = f"{needed} bytes of data" if exact else f"at least {needed} bytes of data"
    if available < needed:
        raise PlyFormatError(path, f"file is truncated: the header declares {_describe_counts(header)} ({amount}) "
                                   f"but only {available} bytes follow the header{_in_rows(header, available)}")
    if exact and available > needed:
        raise PlyFormatError(path, f"the data is longer than the header says: the header declares "
                                   f"{_describe_counts(header)} ({amount}) but {available} bytes follow the "
                                   f"header{_in_rows(header, available)}")
    if header.format == "ascii":
        _check_ascii_row_count(path, header)


def _in_rows(header: PlyHeader, size: int) -> str:
    """' (3 vertex and 7 bytes)': `size` bytes in rows of a binary file's one fixed-size element."""
    if header.format == "ascii" or len(header.elements) != 1:
        return ""
    name, _, props = header.elements[0]
    if any(kind == "list" for _, kind in props) or not props:
        return ""
    rows, rest = divmod(size, sum(PLY_TYPE_SIZES[kind] for _, kind in props))
    return f" ({rows} {name}" + (f" and {rest} bytes)" if rest else ")")


def _check_ascii_row_count(path: str, header: PlyHeader) -> None:
    declared = sum(count for _, count, _ in header.elements)
    with open(path, "rb") as stream:
        stream.seek(header.size)
        rows = sum(1 for line in stream if line.strip())
    if rows != declared:
        plural = "row" if rows == 1 else "rows"
        raise PlyFormatError(path, f"the header declares {_describe_counts(header)} rows but the data has "
                                   f"{rows} {plural}")


class _PlyfileStream(io.FileIO):
    """The file as plyfile reads it: header bytes outside ASCII read as '?'.

    plyfile decodes the header as ASCII, but comments may be in any encoding (we decode them
    ourselves in `read_ply_header`). The bytes keep their count, so data offsets and plyfile's
    memory map of the data are unchanged.
    """

    def __init__(self, path: str, header_size: int):
        super().__init__(path, "rb")
        self.header_size = header_size

    def read(self, size: int = -1) -> bytes:
        start = self.tell()
        data = super().read(size)
        if start < self.header_size and not data[:self.header_size - start].isascii():
            cut = self.header_size - start
            data = data[:cut].translate(NON_ASCII_AS_QUESTION_MARK) + data[cut:]
        return data


def read_ply_data(path: str, header: PlyHeader) -> PlyData:
    """plyfile's parse of a file whose header passed `read_ply_header`; failures as PlyFormatError."""
    _check_declared_sizes(path, header)
    try:
        # Memory-mapped: the only fast path plyfile has for binary data; arrays are copied out.
        with _PlyfileStream(path, header.size) as stream:
            return PlyData.read(stream, mmap="c")
    except PlyParseError as exc:
        raise PlyFormatError(path, f"malformed PLY data: {exc}") from None
    except (ValueError, OSError) as exc:
        raise PlyFormatError(path, f"not a readable PLY file: {exc}") from None


def require_gaussians(path: str, count: int) -> None:
    """Zero Gaussians is an error before any work: nothing to show, train or click."""
    if count == 0:
        raise PlyFormatError(path, "no Gaussians: the header declares 0 vertices (an empty scene)")


def is_compressed_ply_header(header: PlyHeader) -> bool:
    """SuperSplat compressed PLY: a `chunk` element and packed_* vertex properties."""
    return header.element("chunk") is not None and "packed_position" in header.property_names("vertex")
