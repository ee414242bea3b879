"""Shared fixtures of the core tests: the real data folder and a small random cloud."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clickgauss_core.gaussians import GaussianCloud

# The real fixtures, kept in the repository (tests/data/real/INDEX.md says where each comes from).
REAL_DATA = Path(__file__).resolve().parents[1] / "data" / "real"


def _real(relative: str) -> Path:
    path = REAL_DATA / relative
    assert path.exists(), f"real test data missing: {path}"
    return path


@pytest.fixture
def real_data():
    return _real


def make_cloud(n: int = 50, sh_degree: int = 1, normals: bool = True, seed: int = 0,
               extra: dict | None = None) -> GaussianCloud:
    rng = np.random.default_rng(seed)
    rest = (sh_degree + 1) ** 2 - 1
    return GaussianCloud.from_arrays(
        positions=rng.normal(size=(n, 3)), log_scales=rng.normal(-3, 1, size=(n, 3)),
        rotations=rng.normal(size=(n, 4)), opacity_logits=rng.normal(size=n),
        sh_dc=rng.normal(size=(n, 3)), sh_rest=rng.normal(size=(n, rest, 3)) if rest else None,
        normals=normals, extra=extra)


@pytest.fixture
def random_cloud():
    return make_cloud
