"""Read and write 3D Gaussian Splatting PLY files (the INRIA layout and its variants).

`read_gaussian_ply(path)` -> GaussianCloud; `write_gaussian_ply(path, cloud)` writes binary
little-endian INRIA layout with every property of the cloud. plyfile parses the container;
this module validates the content and turns every failure into a PlyFormatError naming the file.
"""

from __future__ import annotations

import os

import numpy as np
from plyfile import PlyData, PlyElement

from .errors import PlyFormatError
from .gaussians import REQUIRED_PROPERTIES, GaussianCloud


def read_gaussian_ply(path: str | os.PathLike) -> GaussianCloud:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise PlyFormatError(path, "file not found")
    try:
        ply = PlyData.read(path)
    except Exception as exc:  # plyfile raises several types for a broken container
        raise PlyFormatError(path, f"not a readable PLY file ({exc})") from None
    if "vertex" not in ply:
        raise PlyFormatError(path, "no 'vertex' element: not a Gaussian splat PLY")
    vertex = ply["vertex"].data
    names = list(vertex.dtype.names or ())
    missing = [n for n in REQUIRED_PROPERTIES if n not in names]
    if missing:
        raise PlyFormatError(path, f"missing required Gaussian properties: {', '.join(missing)}")
    props = {name: np.ascontiguousarray(vertex[name]) for name in names}
    for name in REQUIRED_PROPERTIES:
        props[name] = props[name].astype(np.float32)
        if not np.isfinite(props[name]).all():
            bad = int((~np.isfinite(props[name])).sum())
            raise PlyFormatError(path, f"property '{name}' has {bad} NaN/inf value(s)")
    return GaussianCloud(props, source=path, comments=list(ply.comments))


def write_gaussian_ply(path: str | os.PathLike, cloud: GaussianCloud) -> None:
    path = os.fspath(path)
    n = len(cloud)
    dtype = [(name, np.asarray(v).dtype.str.replace(">", "<")) for name, v in cloud.properties.items()]
    data = np.empty(n, dtype=dtype)
    for name, values in cloud.properties.items():
        data[name] = values
    PlyData([PlyElement.describe(data, "vertex")], text=False, byte_order="<",
            comments=list(cloud.comments)).write(path)
