"""Synthetic Gaussian clouds for the add-on tests, built with clickgauss_core (the real writer)."""

from __future__ import annotations

import os

import numpy as np

# The real fixtures, kept in the repository (tests/data/real/INDEX.md says where each comes from).
REAL_DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "real")


def make_cloud(n: int = 500, sh_degree: int = 3, normals: bool = True, extra: bool = True, seed: int = 0):
    from clickgauss_core.gaussians import GaussianCloud

    rng = np.random.default_rng(seed)
    coeffs = (sh_degree + 1) ** 2 - 1
    extra_props = None
    if extra:
        extra_props = {
            "segment": rng.integers(0, 7, n).astype(np.int32),
            "label": rng.integers(0, 255, n).astype(np.uint8),
            "packed": rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32),  # above int32 range
            "weight": rng.normal(size=n).astype(np.float64),
        }
    return GaussianCloud.from_arrays(
        positions=rng.normal(size=(n, 3)),
        log_scales=rng.uniform(-5, -2, size=(n, 3)),
        rotations=rng.normal(size=(n, 4)),
        opacity_logits=rng.normal(size=n),
        sh_dc=rng.normal(size=(n, 3)),
        sh_rest=rng.normal(size=(n, coeffs, 3)) * 0.1 if coeffs else None,
        normals=normals, extra=extra_props)
