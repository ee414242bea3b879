"""Spherical-harmonic rotation: band matrices orthogonal, composing like rotations, identity for
no rotation, and the rotated coefficients evaluate to the original colour seen along R^T d."""

from __future__ import annotations

import numpy as np
import pytest

from clickgauss_core.gaussians import SH_C0
from clickgauss_core.sh_rotation import SH_C1, rotate_sh_rest, sh_band_rotations, sh_basis


def random_rotation(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def random_directions(n: int, seed: int) -> np.ndarray:
    d = np.random.default_rng(seed).standard_normal((n, 3))
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def test_basis_follows_the_inria_signs_and_order():
    # INRIA eval_sh, band 1: -C1 y c1 + C1 z c2 - C1 x c3.
    np.testing.assert_allclose(sh_basis(np.array([0.0, 0.0, 1.0]), 1), [SH_C0, 0.0, SH_C1, 0.0])
    np.testing.assert_allclose(sh_basis(np.array([0.0, 1.0, 0.0]), 1), [SH_C0, -SH_C1, 0.0, 0.0])
    np.testing.assert_allclose(sh_basis(np.array([1.0, 0.0, 0.0]), 1), [SH_C0, 0.0, 0.0, -SH_C1])


def test_basis_is_orthonormal_over_the_sphere():
    dirs = random_directions(200_000, seed=1)
    basis = sh_basis(dirs, 3)
    gram = basis.T @ basis * (4 * np.pi / len(dirs))  # Monte Carlo integral over the sphere
    np.testing.assert_allclose(gram, np.eye(16), atol=0.02)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_band_matrices_are_orthogonal(seed):
    for band, matrix in enumerate(sh_band_rotations(random_rotation(seed), 3), start=1):
        assert matrix.shape == (2 * band + 1, 2 * band + 1)
        np.testing.assert_allclose(matrix @ matrix.T, np.eye(2 * band + 1), atol=1e-12)
        assert np.linalg.det(matrix) == pytest.approx(1.0, abs=1e-12)


def test_identity_rotation_changes_nothing():
    for band, matrix in enumerate(sh_band_rotations(np.eye(3), 3), start=1):
        np.testing.assert_allclose(matrix, np.eye(2 * band + 1), atol=1e-13)


def test_rotations_compose():
    first, second = random_rotation(3), random_rotation(4)
    together = sh_band_rotations(first @ second, 3)
    one_after_other = [a @ b for a, b in zip(sh_band_rotations(first, 3), sh_band_rotations(second, 3))]
    for combined, chained in zip(together, one_after_other):
        np.testing.assert_allclose(combined, chained, atol=1e-12)


def test_band_one_turns_like_a_vector():
    # Band 1 is (-y, z, -x) up to C1: rotating by 90 degrees about z maps x to y.
    quarter_turn = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    rest = np.zeros((1, 3, 3))
    rest[0, 2, :] = 1.0  # coefficient of -C1 x: a colour lobe along -x
    rotated = rotate_sh_rest(rest, quarter_turn)
    np.testing.assert_allclose(rotated[0, :, 0], [1.0, 0.0, 0.0], atol=1e-12)  # now along -y


@pytest.mark.parametrize("degree", [1, 2, 3])
def test_rotated_coefficients_give_the_colour_seen_along_the_turned_back_direction(degree):
    rng = np.random.default_rng(degree)
    rotation = random_rotation(10 + degree)
    count = (degree + 1) ** 2
    rest = rng.standard_normal((5, count - 1, 3))
    dc = rng.standard_normal((5, 1, 3))
    dirs = random_directions(7, seed=degree)
    rotated = rotate_sh_rest(rest, rotation)
    after = np.einsum("dk,nkc->ndc", sh_basis(dirs, degree), np.concatenate([dc, rotated], axis=1))
    before = np.einsum("dk,nkc->ndc", sh_basis(dirs @ rotation, degree), np.concatenate([dc, rest], axis=1))
    np.testing.assert_allclose(after, before, atol=1e-12)


def test_wrong_coefficient_count_is_refused():
    with pytest.raises(ValueError, match="expected 0, 3, 8 or 15"):
        rotate_sh_rest(np.zeros((2, 5, 3)), np.eye(3))
