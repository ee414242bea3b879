"""Wire formats between the add-on and the backend: JSON-safe dicts, never pickle.

Masks over Gaussians (boolean, PLY order):
    {"encoding": "bits", "length": N, "data": b64}
        np.packbits(mask, bitorder="little"): Gaussian i is bit (i % 8) of byte i // 8.
    {"encoding": "delta-indices", "length": N, "count": K, "dtype": "uint8"|"uint16"|"uint32", "data": b64}
        the K selected indices in increasing order, stored as differences (first index, then
        gaps) in the smallest little-endian unsigned type that holds the largest gap.
    `encode_mask` picks whichever is smaller, so tiny and huge selections both stay small.

Arrays: {"dtype": "float32", "shape": [..], "data": b64} (little endian, C order; numeric and
bool dtypes only).

Cameras: `camera_to_dict` / `camera_from_dict` in the `Camera` convention (OpenCV axes,
world_to_camera 4x4 row-major, pixels with origin top-left, pixel centres at +0.5).
Blender viewport matrices become such a camera in `blender_view.py`.

Every decoding failure is a `WireFormatError` whose message names the field.
"""

from __future__ import annotations

import base64
import binascii
import math

import numpy as np

from .cameras import Camera
from .errors import WireFormatError

ARRAY_DTYPES = ("bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64",
                "float16", "float32", "float64")
INDEX_DTYPES = ("uint8", "uint16", "uint32")
CAMERA_FIELDS = ("world_to_camera", "width", "height", "fx", "fy", "cx", "cy", "projection", "near", "far", "name")
CAMERA_OPTIONAL_FIELDS = ("projection", "near", "far", "name")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value, field: str) -> bytes:
    if not isinstance(value, str):
        raise WireFormatError(None, f"{field}: expected a base64 string, got {type(value).__name__}")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise WireFormatError(None, f"{field}: invalid base64 ({exc})") from None


def _count(payload: dict, key: str, field: str) -> int:
    value = payload.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise WireFormatError(None, f"{field}.{key}: expected a non-negative integer, got {value!r}")
    return value


def _require_dict(payload, field: str) -> dict:
    if not isinstance(payload, dict):
        raise WireFormatError(None, f"{field}: expected a JSON object, got {type(payload).__name__}")
    return payload


# -- masks -------------------------------------------------------------------------------------
def encode_mask(mask) -> dict:
    """Boolean (N,) selection -> the smaller of the bit-packed and the delta-index encodings."""
    mask = np.asarray(mask)
    if mask.ndim != 1 or mask.dtype != np.bool_:
        raise ValueError(f"encode_mask needs a 1-D bool array, got {mask.dtype} {mask.shape}")
    length = len(mask)
    indices = np.flatnonzero(mask)
    gaps = np.diff(indices, prepend=0)
    largest_gap = int(gaps.max()) if len(gaps) else 0
    dtype = next(d for d in INDEX_DTYPES if largest_gap <= np.iinfo(d).max)
    if len(indices) * np.dtype(dtype).itemsize < (length + 7) // 8:
        return {"encoding": "delta-indices", "length": length, "count": len(indices), "dtype": dtype,
                "data": _b64(gaps.astype("<" + np.dtype(dtype).str[1:]).tobytes())}
    return {"encoding": "bits", "length": length, "data": _b64(np.packbits(mask, bitorder="little").tobytes())}


def decode_mask(payload: dict, length: int | None = None) -> np.ndarray:
    """The inverse of `encode_mask`: a writable bool (N,) array.

    `length`: the number of Gaussians the receiver has; a mask of another length is refused
    (and a hostile length never allocates memory).
    """
    payload = _require_dict(payload, "mask")
    declared = _count(payload, "length", "mask")
    if length is not None and declared != length:
        raise WireFormatError(None, f"mask.length: {declared}, but the scene has {length} Gaussians")
    length = declared
    encoding = payload.get("encoding")
    data = _unb64(payload.get("data"), "mask.data")
    if encoding == "bits":
        if len(data) != (length + 7) // 8:
            raise WireFormatError(None, f"mask.data: {len(data)} bytes for {length} bits, expected {(length + 7) // 8}")
        bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")
        if bits[length:].any():
            raise WireFormatError(None, "mask.data: padding bits past 'length' are set")
        return bits[:length].astype(bool)
    if encoding == "delta-indices":
        count = _count(payload, "count", "mask")
        dtype = payload.get("dtype")
        if dtype not in INDEX_DTYPES:
            raise WireFormatError(None, f"mask.dtype: expected one of {', '.join(INDEX_DTYPES)}, got {dtype!r}")
        itemsize = np.dtype(dtype).itemsize
        if len(data) != count * itemsize:
            raise WireFormatError(None, f"mask.data: {len(data)} bytes for {count} {dtype} gaps, "
                                        f"expected {count * itemsize}")
        gaps = np.frombuffer(data, dtype="<" + np.dtype(dtype).str[1:]).astype(np.int64)
        if count > 1 and (gaps[1:] == 0).any():
            raise WireFormatError(None, "mask.data: repeated index (a gap of 0 after the first)")
        indices = np.cumsum(gaps)
        if count and indices[-1] >= length:
            raise WireFormatError(None, f"mask.data: index {int(indices[-1])} is out of range for length {length}")
        mask = np.zeros(length, dtype=bool)
        mask[indices] = True
        return mask
    raise WireFormatError(None, f"mask.encoding: expected 'bits' or 'delta-indices', got {encoding!r}")


# -- arrays ------------------------------------------------------------------------------------
def encode_array(array) -> dict:
    """Numeric/bool array -> {"dtype", "shape", "data"} (little endian, C order)."""
    array = np.asarray(array)
    name = array.dtype.name
    if name not in ARRAY_DTYPES:
        raise ValueError(f"encode_array: dtype {array.dtype} is not one of {', '.join(ARRAY_DTYPES)}")
    little = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return {"dtype": name, "shape": list(array.shape), "data": _b64(little.tobytes())}


def decode_array(payload: dict) -> np.ndarray:
    """The inverse of `encode_array`: a writable native-order array."""
    payload = _require_dict(payload, "array")
    name = payload.get("dtype")
    if name not in ARRAY_DTYPES:
        raise WireFormatError(None, f"array.dtype: expected one of {', '.join(ARRAY_DTYPES)}, got {name!r}")
    shape = payload.get("shape")
    if not isinstance(shape, list) or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in shape):
        raise WireFormatError(None, f"array.shape: expected a list of non-negative integers, got {shape!r}")
    data = _unb64(payload.get("data"), "array.data")
    dtype = np.dtype(name).newbyteorder("<")
    expected = math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        raise WireFormatError(None, f"array.data: {len(data)} bytes, expected {expected} for {name} {tuple(shape)}")
    values = np.frombuffer(data, dtype=dtype).reshape(shape)
    return values.astype(np.dtype(name), copy=True)


# -- cameras -----------------------------------------------------------------------------------
def camera_to_dict(camera: Camera) -> dict:
    """JSON-safe dict of a camera (`extra` stays local: it may hold anything)."""
    return {"world_to_camera": np.asarray(camera.world_to_camera, dtype=float).tolist(),
            "width": int(camera.width), "height": int(camera.height),
            "fx": float(camera.fx), "fy": float(camera.fy), "cx": float(camera.cx), "cy": float(camera.cy),
            "projection": camera.projection, "near": float(camera.near), "far": float(camera.far),
            "name": camera.name}


def _number(payload: dict, key: str) -> float:
    value = payload[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise WireFormatError(None, f"camera.{key}: expected a finite number, got {value!r}")
    return float(value)


def camera_from_dict(payload: dict) -> Camera:
    """Validated `Camera` from `camera_to_dict` output; WireFormatError names the bad field."""
    payload = _require_dict(payload, "camera")
    unknown = sorted(set(payload) - set(CAMERA_FIELDS))
    if unknown:
        raise WireFormatError(None, f"camera: unknown field(s) {', '.join(unknown)}")
    missing = [k for k in CAMERA_FIELDS if k not in payload and k not in CAMERA_OPTIONAL_FIELDS]
    if missing:
        raise WireFormatError(None, f"camera: missing field(s) {', '.join(missing)}")
    sizes = {}
    for key in ("width", "height"):
        value = payload[key]
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise WireFormatError(None, f"camera.{key}: expected a positive integer, got {value!r}")
        sizes[key] = value
    matrix = payload["world_to_camera"]
    rows_ok = isinstance(matrix, list) and len(matrix) == 4 and all(isinstance(r, list) and len(r) == 4 for r in matrix)
    if not rows_ok or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for r in matrix for v in r):
        raise WireFormatError(None, "camera.world_to_camera: expected a 4x4 list of numbers")
    projection = payload.get("projection", "perspective")
    if projection not in ("perspective", "orthographic"):
        raise WireFormatError(None, f"camera.projection: expected 'perspective' or 'orthographic', got {projection!r}")
    name = payload.get("name", "")
    if not isinstance(name, str):
        raise WireFormatError(None, f"camera.name: expected a string, got {type(name).__name__}")
    values = {key: _number(payload, key) for key in ("fx", "fy", "cx", "cy", "near", "far") if key in payload}
    camera = Camera(world_to_camera=np.array(matrix, dtype=np.float64), projection=projection, name=name,
                    **sizes, **values)
    try:
        camera.validate()
    except ValueError as exc:
        raise WireFormatError(None, f"camera: {exc}") from None
    return camera
