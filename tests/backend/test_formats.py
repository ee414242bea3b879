"""Every splat format the add-on imports, opened by the real backend process: by path and uploaded.

The files are real ones written by other tools (tests/data/real, each folder's SOURCE.md says
where from): an INRIA PLY with SH 3, an INRIA PLY with SH 0, a SuperSplat compressed PLY, an
antimatter15 `.splat` and two gzip-wrapped SPZ files. The scene id is the sha256 of the file's
bytes whatever the format, and the scene has as many Gaussians as the core reader finds.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from clickgauss_backend.splat_scene import SplatScene, clear_scene_cache
from clickgauss_core.ply import read_splat_file
from clickgauss_core.protocol import INVALID_PLY, PRESET_TINY

REAL_DATA = Path(__file__).resolve().parents[1] / "data" / "real"
SPLAT_FILES = {
    "inria-sh3": "supersplat-fruit-labels/fruit_drops_minimal.ply",
    "inria-sh0": "v3dg-donut-sh0/fused.ply",
    "supersplat-compressed": "playcanvas-compressed/guitar.compressed.ply",
    "antimatter15-splat": "aframe-luma-seal-splat/luma-seal.splat",
    "spz-sh3": "spzjs-converted/fruit_drops_minimal.spz",
    "spz-sh0": "spzjs-converted/donut_sh0.spz",
}
EXPECTED = {  # Gaussians and SH degree, as each SOURCE.md states them
    "inria-sh3": (4721, 3), "inria-sh0": (45624, 0), "supersplat-compressed": (90854, 0),
    "antimatter15-splat": (20000, 0), "spz-sh3": (4721, 3), "spz-sh0": (45624, 0),
}


@pytest.fixture(scope="module")
def server(start_module_server):
    largest_mb = max((REAL_DATA / name).stat().st_size for name in SPLAT_FILES.values()) / 2**20
    return start_module_server(data_roots=[REAL_DATA], args=["--max-upload-mb", f"{largest_mb + 1:.1f}"])


@pytest.mark.parametrize("kind", sorted(SPLAT_FILES))
def test_scene_load_reads_every_format_through_the_core_reader(kind):
    path = REAL_DATA / SPLAT_FILES[kind]
    clear_scene_cache()
    scene = SplatScene.load(path)
    assert (len(scene.cloud), scene.cloud.sh_degree) == EXPECTED[kind]
    assert scene.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert scene.gaussians.means.shape == (EXPECTED[kind][0], 3)


@pytest.mark.parametrize("kind", sorted(SPLAT_FILES))
def test_every_format_opens_by_path_and_by_upload_as_the_same_scene(server, kind):
    path = REAL_DATA / SPLAT_FILES[kind]
    content = path.read_bytes()
    by_path = server.post("/v1/scenes", json={"ply_path": str(path)})
    uploaded = server.post("/v1/scenes/upload", files={"file": (path.name, content, "application/octet-stream")})
    assert by_path.status_code == 200, by_path.text
    assert uploaded.status_code == 200, uploaded.text
    scene_id = hashlib.sha256(content).hexdigest()
    assert by_path.json()["scene_id"] == uploaded.json()["scene_id"] == scene_id
    n_gaussians, sh_degree = EXPECTED[kind]
    for answer in (by_path.json(), uploaded.json()):
        assert (answer["n_gaussians"], answer["sh_degree"]) == (n_gaussians, sh_degree)
    assert server.get(f"/v1/scenes/{scene_id}").json()["n_gaussians"] == len(read_splat_file(path))


def test_an_upload_is_recognised_by_content_not_by_its_name(server):
    """An SPZ sent under a .ply name is still SPZ; a `.splat` (no header) is known by its name."""
    spz = (REAL_DATA / SPLAT_FILES["spz-sh3"]).read_bytes()
    answer = server.post("/v1/scenes/upload", files={"file": ("renamed.ply", spz)})
    assert answer.status_code == 200, answer.text
    assert answer.json()["n_gaussians"] == 4721
    junk = server.post("/v1/scenes/upload", files={"file": ("junk.splat", b"\x00" * 31)})
    assert junk.status_code == 400 and junk.json()["error"]["code"] == INVALID_PLY
    assert "not a multiple of 32" in junk.json()["error"]["message"]


def test_cli_trains_on_an_spz_scene(backend_cli, tiny_synthetic_scene, tmp_path):
    """`train` takes any format: the synthetic scene written as SPZ, trained with its own views and
    masks; the field belongs to the SPZ file (its bytes' hash)."""
    import subprocess

    from clickgauss_backend.features.field import FeatureField
    from clickgauss_core.spz import write_spz

    spz = tmp_path / "scene.spz"
    write_spz(spz, read_splat_file(tiny_synthetic_scene.ply_path))
    out = tmp_path / "field.npz"
    result = subprocess.run([*backend_cli, "train", str(spz), "--dataset", str(tiny_synthetic_scene.dataset_path),
                             "--masks", str(tiny_synthetic_scene.masks_dir), "--preset", PRESET_TINY, "--out", str(out),
                             "--device", "cpu"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    field = FeatureField.load(out)
    assert field.metadata["scene_hash"] == hashlib.sha256(spz.read_bytes()).hexdigest()
    assert len(field) == len(read_splat_file(spz))
