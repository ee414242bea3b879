"""Fuzzing the readers: any corruption of a valid file gives a cloud or a PlyFormatError, nothing else."""

from __future__ import annotations

import io

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plyfile import PlyData, PlyElement

from clickgauss_core.errors import PlyFormatError
from clickgauss_core.gaussians import GaussianCloud
from clickgauss_core.ply import read_gaussian_ply, read_splat_file
from conftest import make_cloud


def _encoded(text: bool) -> bytes:
    cloud = make_cloud(n=6, sh_degree=1)
    data = np.empty(len(cloud), dtype=[(n, "<f4") for n in cloud.properties])
    for name, values in cloud.properties.items():
        data[name] = values
    buffer = io.BytesIO()
    PlyData([PlyElement.describe(data, "vertex")], text=text, byte_order="<").write(buffer)
    return buffer.getvalue()


VALID = [_encoded(text=False), _encoded(text=True)]


@settings(max_examples=200, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.sampled_from([0, 1]), keep=st.floats(0, 1.2),
       flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=4), in_header=st.booleans())
def test_corrupted_ply_files_fail_cleanly(tmp_path_factory, which, keep, flips, in_header):
    content = bytearray(VALID[which])
    span = content.index(b"end_header") + len(b"end_header\n") if in_header else len(content)
    for position, value in flips:
        content[int(position * (span - 1))] = value
    if keep < 1:  # truncate
        content = content[:int(keep * len(content))]
    path = tmp_path_factory.getbasetemp() / "fuzz-case.ply"
    path.write_bytes(bytes(content))
    for reader in (read_gaussian_ply, read_splat_file):
        try:
            cloud = reader(path)
        except PlyFormatError as error:
            assert error.path == str(path)
        else:
            assert isinstance(cloud, GaussianCloud) and np.isfinite(cloud.positions).all()
