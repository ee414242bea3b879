"""SplatScene.load: the PLY's Gaussians on a device, its content hash, the in-memory cache."""

import hashlib

import numpy as np
import pytest

from clickgauss_core.errors import PlyFormatError
from clickgauss_core.gaussians import GaussianCloud
from clickgauss_core.ply import write_gaussian_ply

from clickgauss_backend.splat_scene import SplatScene, clear_scene_cache


def small_cloud(count=5, offset=0.0):
    rng = np.random.default_rng(1)
    return GaussianCloud.from_arrays(
        positions=rng.standard_normal((count, 3)) + offset, log_scales=np.full((count, 3), -2.0),
        rotations=np.tile([2.0, 0, 0, 0], (count, 1)), opacity_logits=np.zeros(count),
        sh_dc=rng.standard_normal((count, 3)))


def test_load_reads_gaussians_and_hashes_the_ply_bytes(tmp_path):
    path = tmp_path / "scene.ply"
    cloud = small_cloud()
    write_gaussian_ply(path, cloud)
    clear_scene_cache()
    scene = SplatScene.load(path)
    assert scene.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert len(scene.cloud) == 5 and scene.dataset is None and scene.views == []
    np.testing.assert_allclose(scene.gaussians.means.numpy(), cloud.positions)
    np.testing.assert_allclose(scene.gaussians.quats[:, 0].numpy(), 1.0)  # normalised wxyz
    np.testing.assert_allclose(scene.gaussians.opacities.numpy(), 0.5)


def test_load_is_cached_until_the_file_changes(tmp_path):
    path = tmp_path / "scene.ply"
    write_gaussian_ply(path, small_cloud())
    clear_scene_cache()
    first = SplatScene.load(path)
    assert SplatScene.load(str(path)) is first
    write_gaussian_ply(path, small_cloud(count=7, offset=1.0))
    second = SplatScene.load(path)
    assert second is not first and len(second.cloud) == 7
    assert second.content_hash != first.content_hash


def test_bad_ply_names_the_file(tmp_path):
    path = tmp_path / "broken.ply"
    path.write_bytes(b"not a ply at all")
    with pytest.raises(PlyFormatError, match="broken.ply"):
        SplatScene.load(path)
