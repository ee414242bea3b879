"""The synthetic benchmark scene: determinism, the files it writes (PLY, COLMAP, images, masks,
labels) read back through the normal readers, label consistency against independent renders,
and the SAM-like mask simulator's inconsistency rates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.ndimage import binary_erosion

from clickgauss_core.datasets import find_dataset_for_ply, load_dataset
from clickgauss_core.errors import DatasetError
from clickgauss_core.ply import read_gaussian_ply
from clickgauss_backend.cli import main as cli_main
from clickgauss_backend.features.masks import PrecomputedMasks, MaskStore, read_mask_file
from clickgauss_backend.render import GaussianTensors, rasterize
from clickgauss_backend.synthetic import generate_scene, load_synthetic
from clickgauss_backend.synthetic.geometry import build_room_cloud, room_objects
from clickgauss_backend.synthetic.sam_like import MaskNoise, simulate_sam_masks
from clickgauss_backend.synthetic.scene import PRESETS
from clickgauss_backend.synthetic.varied_objects import MAX_OBJECTS, MIN_OBJECTS, varied_objects


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return generate_scene(tmp_path_factory.mktemp("tiny") / "scene", preset="tiny", seed=3)


def _files(root: Path) -> dict[str, bytes]:
    # labels.npz is a zip with timestamps: compared by content below instead.
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "labels.npz"}


# -- determinism -----------------------------------------------------------------------------------

def test_same_seed_gives_identical_files_and_another_seed_does_not(tiny, tmp_path):
    again = generate_scene(tmp_path / "again", preset="tiny", seed=3)
    first, second = _files(tiny.root), _files(again.root)
    assert first.keys() == second.keys()
    assert [k for k in first if first[k] != second[k]] == []
    for name in ("gaussian_objects", "gaussian_parts", "object_maps", "part_maps"):
        assert np.array_equal(getattr(tiny, name), getattr(again, name))
    # Another seed into the same folder: other files, and none of the old views left behind.
    other = generate_scene(tmp_path / "again", preset="tiny", seed=4, n_train=2, n_test=1)
    assert (other.root / "point_cloud.ply").read_bytes() != first["point_cloud.ply"]
    assert len(list(other.images_dir.iterdir())) == 3 and len(list(other.masks_dir.iterdir())) == 6


def test_mask_noise_override_keeps_geometry_and_views(tiny, tmp_path):
    clean = generate_scene(tmp_path / "clean", preset="tiny", seed=3, **vars(MaskNoise.consistent()))
    assert (clean.root / "point_cloud.ply").read_bytes() == (tiny.root / "point_cloud.ply").read_bytes()
    assert (clean.root / "images" / "view_004.png").read_bytes() == (tiny.root / "images" / "view_004.png").read_bytes()
    # Without noise the masks are exactly the GT partition, relabelled.
    for index, name in enumerate(clean.view_names):
        fine = read_mask_file(clean.masks_dir / f"{Path(name).stem}_fine.png")
        _assert_relabelling(fine, clean.part_maps[index])
        coarse = read_mask_file(clean.masks_dir / f"{Path(name).stem}_coarse.png")
        _assert_relabelling(coarse, clean.object_maps[index])


def _assert_relabelling(ids: np.ndarray, labels: np.ndarray) -> None:
    pairs = np.unique(np.stack([ids.ravel(), labels.ravel()], axis=1), axis=0)
    assert len(np.unique(pairs[:, 0])) == len(pairs) == len(np.unique(pairs[:, 1]))
    assert ((pairs[:, 0] == 0) == (pairs[:, 1] == 0)).all()


def test_unknown_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown synthetic scene setting"):
        generate_scene(tmp_path, preset="tiny", n_gausians=10)
    with pytest.raises(ValueError, match="unknown preset"):
        generate_scene(tmp_path, preset="huge")
    with pytest.raises(ValueError, match="n_train must be at least 1"):
        generate_scene(tmp_path, preset="tiny", n_train=0)
    with pytest.raises(ValueError, match="mask noise rates must be in"):
        generate_scene(tmp_path, preset="tiny", drop_rate=1.5)


# -- the files, through the normal readers ---------------------------------------------------------

def test_ply_is_a_realistic_inria_scene(tiny):
    cloud = read_gaussian_ply(tiny.ply_path)
    assert len(cloud) == 4000 == len(tiny.gaussian_objects)
    assert cloud.sh_degree == 3 and np.abs(cloud.sh_rest).mean() > 0.005
    normals = np.stack([cloud.properties[a] for a in ("nx", "ny", "nz")], axis=1)
    assert np.allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-5)
    scales = np.sort(cloud.scales, axis=1)
    assert np.median(scales[:, 2] / scales[:, 0]) > 4  # flat discs lying on the surfaces
    opacity = cloud.opacities
    assert 0.8 < np.mean(opacity > 0.8) < 0.95 and 0.05 < np.mean(opacity < 0.4) < 0.15
    assert not np.allclose(np.linalg.norm(cloud.rotations_raw, axis=1), 1.0)  # stored unnormalised
    assert cloud.colors.std() > 0.1


def test_colmap_dataset_loads_with_the_generated_cameras(tiny):
    dataset = load_dataset(tiny.root)
    assert dataset.kind == "colmap" and [v.name for v in dataset.views] == tiny.view_names
    for view, camera in zip(dataset.views, tiny.cameras):
        assert np.allclose(view.camera.world_to_camera, camera.world_to_camera, atol=1e-9)
        assert (view.camera.width, view.camera.height, view.camera.fx) == (64, 48, pytest.approx(camera.fx))
        assert Path(view.image_path) == tiny.images_dir / camera.name
        with Image.open(view.image_path) as image:
            assert image.size == (64, 48) and image.mode == "RGB"
    assert dataset.points_xyz is not None and len(dataset.points_xyz) > 1000
    assert Path(find_dataset_for_ply(tiny.ply_path)) == tiny.root  # found next to the PLY, like a real scene


def test_load_synthetic_reads_everything_back(tiny):
    loaded = load_synthetic(tiny.root)
    assert loaded.view_names == tiny.view_names and loaded.test_views == tiny.test_views
    assert set(loaded.train_views).isdisjoint(loaded.test_views)
    assert len(loaded.train_views) == 8 and len(loaded.test_views) == 2
    assert loaded.config == tiny.config
    assert np.array_equal(loaded.part_maps, tiny.part_maps)
    assert np.array_equal(loaded.gaussian_labels("fine"), tiny.gaussian_parts)
    assert np.allclose(loaded.cameras[5].world_to_camera, tiny.cameras[5].world_to_camera)
    split = json.loads((tiny.root / "scene.json").read_text())["split"]
    assert split == {"train": tiny.train_views, "test": tiny.test_views}


def test_load_synthetic_errors_name_the_file(tmp_path, tiny):
    with pytest.raises(DatasetError, match="not a synthetic scene folder"):
        load_synthetic(tmp_path)
    (tmp_path / "scene.json").write_text((tiny.root / "scene.json").read_text())
    with pytest.raises(DatasetError, match=r"labels\.npz: ground-truth labels file missing"):
        load_synthetic(tmp_path)


def test_masks_folder_works_as_a_precomputed_mask_source(tiny, tmp_path):
    views = tiny.dataset().views
    store = MaskStore.build(PrecomputedMasks(tiny.masks_dir), views,
                            lambda v: (v.camera.width, v.camera.height), tmp_path)
    assert len(store) == len(tiny.view_names) and store.load(0).size == (64, 48)
    stem = Path(views[3].name).stem
    assert np.array_equal(store.load(3).fine, read_mask_file(tiny.masks_dir / f"{stem}_fine.png"))


# -- labels ----------------------------------------------------------------------------------------

def test_objects_are_made_of_parts(tiny):
    assert 5 <= len(tiny.object_names) and all(2 <= len(o.parts) <= 4 for o in room_objects())
    parts, objects = tiny.gaussian_parts, tiny.gaussian_objects
    assert np.array_equal(tiny.part_objects[parts], objects)  # every part inside its object
    assert ((parts == 0) == (objects == 0)).all() and 0.2 < np.mean(objects == 0) < 0.5
    assert set(np.unique(parts)) == set(range(len(tiny.part_names) + 1))
    assert np.array_equal(tiny.part_objects[tiny.part_maps], tiny.object_maps)


def test_pixel_labels_agree_with_independent_renders(tiny):
    """Each object rendered alone covers the pixels labelled with it, and the images show the
    labelled part's colour there."""
    cloud = read_gaussian_ply(tiny.ply_path)
    gaussians = GaussianTensors.from_cloud(cloud)
    part_colors = {k + 1: np.array(p.color) for k, p in enumerate(p for o in room_objects() for p in o.parts)}
    checked_parts = 0
    for view in (0, 4, 9):
        camera, object_map, part_map = tiny.cameras[view], tiny.object_maps[view], tiny.part_maps[view]
        for obj in np.unique(object_map[object_map > 0]):
            keep = torch.from_numpy(tiny.gaussian_objects == obj)
            alone = rasterize(gaussians.subset(keep), torch.ones(int(keep.sum()), 1), camera).alpha.numpy()
            labelled = object_map == obj
            assert np.mean(alone[labelled] > 0.4) > 0.97, (view, obj)
        with Image.open(tiny.images_dir / camera.name) as image:
            rgb = np.asarray(image, dtype=np.float64) / 255
        for part in np.unique(part_map[part_map > 0]):
            pixels = binary_erosion(part_map == part)  # interior: no blending with the neighbours
            if pixels.sum() >= 8:
                assert np.abs(np.median(rgb[pixels], axis=0) - part_colors[part]).max() < 0.15, (view, part)
                checked_parts += 1
    assert checked_parts >= 10


def test_default_masks_are_inconsistent_but_mostly_right(tiny):
    purities, id_sets = [], []
    for index, name in enumerate(tiny.view_names):
        coarse = read_mask_file(tiny.masks_dir / f"{Path(name).stem}_coarse.png")
        id_sets.append(set(np.unique(coarse)) - {0})
        objects = tiny.object_maps[index]
        for obj in np.unique(objects[objects > 0]):
            ids = coarse[objects == obj]
            purities.append(np.bincount(ids).max() / len(ids))
    assert 0.7 < np.mean(purities) < 0.99
    assert sum(len(a & b) for a, b in zip(id_sets, id_sets[1:])) < 3  # ids mean nothing across views


# -- the mask simulator's rates ----------------------------------------------------------------------

def _strip_scene(parts_per_object: int = 2):
    """16 objects in touching pairs, pairs separated by background columns (region 1), a floor band
    below (region 2). With 2 parts per object: a top and a bottom half."""
    part_map = np.zeros((20, 8 * 18), np.int32)
    background = np.zeros_like(part_map)
    part_objects = [0]
    for pair in range(8):
        for side in range(2):
            obj = 2 * pair + side + 1
            x0 = pair * 18 + side * 8
            if parts_per_object == 2:
                part_map[:8, x0:x0 + 8], part_map[8:16, x0:x0 + 8] = 2 * obj - 1, 2 * obj
            else:
                part_map[:16, x0:x0 + 8] = obj
            part_objects += [obj] * parts_per_object
        background[:16, pair * 18 + 16: pair * 18 + 18] = 1
    background[16:] = 2
    return part_map, np.array(part_objects), background


def _ids_in(ids: np.ndarray, region: np.ndarray) -> tuple[int, int]:
    """(most common id, number of distinct non-zero ids) inside a region."""
    values = ids[region]
    return int(np.bincount(values).argmax()), len(set(np.unique(values)) - {0})


NO_NOISE = vars(MaskNoise.consistent())


def _measure(rate_name: str, rate: float, parts_per_object: int, draws: int = 120) -> float:
    """How often the effect of `rate_name` (alone switched on) shows in the masks."""
    part_map, part_objects, background = _strip_scene(parts_per_object)
    object_map = part_objects[part_map]
    noise = MaskNoise(**{**NO_NOISE, rate_name: rate})
    rng = np.random.default_rng(0)
    seen, total = 0, 0
    for _ in range(draws):
        masks = simulate_sam_masks(part_map, part_objects, background, noise, rng)
        if rate_name == "part_merge_rate":  # the two halves of an object share one fine mask
            for obj in range(1, 17):
                seen += _ids_in(masks.fine, part_map == 2 * obj - 1)[0] == _ids_in(masks.fine, part_map == 2 * obj)[0]
                total += 1
        elif rate_name == "object_merge_rate":  # the two objects of a pair share one coarse mask
            for pair in range(8):
                left = _ids_in(masks.coarse, object_map == 2 * pair + 1)[0]
                seen += left == _ids_in(masks.coarse, object_map == 2 * pair + 2)[0]
                total += 1
        elif rate_name == "drop_rate":  # an object with no mask at all
            seen += sum(_ids_in(masks.coarse, object_map == obj)[1] == 0 for obj in range(1, 17))
            total += 16
        elif rate_name == "split_rate":  # an object covered by two masks
            seen += sum(_ids_in(masks.fine, object_map == obj)[1] == 2 for obj in range(1, 17))
            total += 16
        elif rate_name == "background_rate":
            seen += sum(_ids_in(masks.coarse, background == region)[0] != 0 for region in (1, 2))
            total += 2
    return seen / total


@pytest.mark.parametrize("rate_name, rate, parts_per_object", [
    ("part_merge_rate", 0.3, 2), ("object_merge_rate", 0.2, 2), ("drop_rate", 0.1, 1),
    ("split_rate", 0.25, 1), ("background_rate", 0.6, 1)])
def test_mask_noise_rates_are_as_requested(rate_name, rate, parts_per_object):
    assert _measure(rate_name, rate, parts_per_object) == pytest.approx(rate, abs=0.05)
    assert _measure(rate_name, 0.0, parts_per_object, draws=10) == 0.0


def test_dropping_an_object_mask_leaves_its_parts_at_the_coarse_level():
    part_map, part_objects, _ = _strip_scene(2)
    masks = simulate_sam_masks(part_map, part_objects, None, MaskNoise(**{**NO_NOISE, "drop_rate": 0.5}),
                               np.random.default_rng(2))
    object_map = part_objects[part_map]
    counts = [_ids_in(masks.coarse, object_map == obj)[1] for obj in range(1, 17)]
    assert 2 in counts  # object mask gone, both part masks kept: coarse falls back to the parts


def test_jitter_moves_only_boundaries():
    part_map, part_objects, _ = _strip_scene(2)
    rng = np.random.default_rng(0)
    for jitter, low, high in ((0.0, 0.0, 0.0), (0.003, 0.002, 0.12)):  # 0.003 x diagonal = 0.4 px
        masks = simulate_sam_masks(part_map, part_objects, None, MaskNoise(**{**NO_NOISE, "boundary_jitter": jitter}), rng)
        dominant = np.zeros(part_map.max() + 1, np.int64)
        for part in range(1, part_map.max() + 1):
            dominant[part] = _ids_in(masks.fine, part_map == part)[0]
        off = np.mean(masks.fine[part_map > 0] != dominant[part_map][part_map > 0])
        assert low <= off <= high
        assert len(set(dominant[1:])) == part_map.max()  # no part lost or merged


def test_ids_are_permuted_per_view():
    part_map, part_objects, _ = _strip_scene(2)
    rng = np.random.default_rng(0)
    first, second = (simulate_sam_masks(part_map, part_objects, None, MaskNoise.consistent(), rng) for _ in range(2))
    assert set(np.unique(first.fine)).isdisjoint(set(np.unique(second.fine)) - {0}) or \
        len(set(np.unique(first.fine)) & set(np.unique(second.fine))) <= 2
    assert not np.array_equal(first.fine, second.fine)
    assert first.fine.max() <= 65535


def test_small_segments_are_dropped_at_the_requested_rate():
    part_map, part_objects, _ = _strip_scene(1)
    rng = np.random.default_rng(1)
    noise = MaskNoise(**{**NO_NOISE, "small_drop_rate": 0.4, "small_area_fraction": 0.05})  # 128-px objects are small
    object_map = part_objects[part_map]
    missing = np.mean([[_ids_in(masks.coarse, object_map == obj)[1] == 0 for obj in range(1, 17)]
                       for masks in (simulate_sam_masks(part_map, part_objects, None, noise, rng) for _ in range(100))])
    assert missing == pytest.approx(0.4, abs=0.05)
    big = MaskNoise(**{**NO_NOISE, "small_drop_rate": 0.4, "small_area_fraction": 0.01})  # now they are not small
    assert (simulate_sam_masks(part_map, part_objects, None, big, rng).coarse[part_map > 0] > 0).all()


# -- scale and the command ---------------------------------------------------------------------------

def test_large_counts_are_exact_and_labelled(tmp_path):
    labelled = build_room_cloud(100_000, np.random.default_rng(0))
    assert len(labelled.cloud) == 100_000 == len(labelled.part_labels)
    counts = np.bincount(labelled.part_labels, minlength=len(labelled.part_names) + 1)
    assert counts.min() > 500  # even the mug handle
    assert np.isfinite(labelled.cloud.positions).all()


def test_synth_command_writes_scene_and_preview(tmp_path, capsys):
    out = tmp_path / "cli"
    assert cli_main(["synth", str(out), "--preset", "tiny", "--seed", "1", "--n-gaussians", "3000", "--preview"]) == 0
    assert "3000 Gaussians" in capsys.readouterr().out
    assert len(read_gaussian_ply(out / "point_cloud.ply")) == 3000
    with Image.open(out / "preview.png") as preview:
        assert preview.width == 5 * 64 * 5 and preview.height > 4 * 48 * 5
    assert len(list((out / "masks").glob("*_fine.png"))) == 10

    (tmp_path / "a_file").write_text("x")
    assert cli_main(["synth", str(tmp_path / "a_file"), "--preset", "tiny"]) == 2
    assert "a_file: output path exists and is not a folder" in capsys.readouterr().err


# -- the "hard" preset (benchmarks/bench_fine.py) ---------------------------------------------------

THIN_PARTS = ("mushroom ring", "mushroom stem", "cabinet top drawer", "cabinet bottom drawer", "office chair base",
              "mug handle", "bucket handle", "bottle neck", "stool foot ring", "flower stem", "floor lamp base")


def test_hard_preset_promises_its_sizes_and_noisier_masks():
    hard, demo = PRESETS["hard"], PRESETS["demo"]
    assert (hard.n_gaussians, hard.width, hard.height, hard.n_train, hard.n_test) == (19000, 192, 144, 40, 8)
    assert hard.objects == "varied" and demo.objects == "room"
    for rate in ("part_merge_rate", "object_merge_rate", "drop_rate", "split_rate", "boundary_jitter"):
        assert getattr(hard.mask_noise, rate) > getattr(demo.mask_noise, rate), rate


def test_varied_objects_have_thin_parts_touching_larger_siblings():
    seen = set()
    for seed in range(6):
        objects = varied_objects(np.random.default_rng([seed, 4]))
        assert MIN_OBJECTS <= len(objects) <= MAX_OBJECTS == 8 and MIN_OBJECTS == 5
        assert len({o.name for o in objects}) == len(objects)
        names = [p.name for o in objects for p in o.parts]
        seen.update(names)
        cloud = build_room_cloud(19000, np.random.default_rng(seed), objects=objects)
        assert len(cloud.cloud) == 19000 and cloud.part_names == names
        counts = np.bincount(cloud.part_labels, minlength=len(names) + 1)[1:]
        assert counts.min() >= 30, dict(zip(names, counts))  # every part, however thin, is solid
        # every thin part touches a sibling of its own object (nearest other-part Gaussian within 3 cm)
        positions = cloud.cloud.positions
        for label, name in enumerate(names, start=1):
            if name not in THIN_PARTS:
                continue
            mine = positions[cloud.part_labels == label]
            siblings = positions[(cloud.object_labels == cloud.part_objects[label]) & (cloud.part_labels != label)]
            gaps = np.linalg.norm(mine[:, None, :] - siblings[None, :, :], axis=2).min()
            assert gaps < 0.03, (name, gaps)
    assert seen >= set(THIN_PARTS)  # over six scenes every template comes up


def test_hard_scene_writes_the_objects_its_seed_picked(tmp_path):
    scene = generate_scene(tmp_path / "hard", preset="hard", seed=5, width=64, height=48, n_train=3, n_test=1)
    expected = varied_objects(np.random.default_rng([5, 4]))
    assert scene.object_names == [o.name for o in expected]
    assert scene.part_names == [p.name for o in expected for p in o.parts]
    again = load_synthetic(scene.root)
    assert again.config.objects == "varied" and again.part_names == scene.part_names
    assert len(np.unique(scene.part_maps)) > len(scene.object_names)  # parts visible in the views
    with pytest.raises(ValueError, match="objects must be one of room, varied"):
        generate_scene(tmp_path / "bad", preset="tiny", objects="castle")


def test_hard_scenes_leave_out_the_gaussians_no_view_can_see():
    """Without hidden surfaces: nothing inside another part (a cabinet's front behind its drawers,
    a drawer's back inside the body), under an object on the floor, or on a face resting on it;
    every visible face keeps its density, and every part stays solid."""
    assert PRESETS["hard"].hidden_surfaces is False and PRESETS["demo"].hidden_surfaces is True
    objects = varied_objects(np.random.default_rng([5, 4]))   # has a cabinet and a floor lamp
    names = [p.name for o in objects for p in o.parts]
    assert {"cabinet top drawer", "floor lamp base"} <= set(names)
    full = build_room_cloud(19000, np.random.default_rng(1), objects=objects)
    visible = build_room_cloud(19000, np.random.default_rng(1), objects=objects, hidden_surfaces=False)
    assert len(visible.cloud) < len(full.cloud) == 19000
    parts = [p for o in objects for p in o.parts]
    positions, labels = visible.cloud.positions, visible.part_labels
    for label, part in enumerate(parts, start=1):
        others = labels != label
        inside = np.zeros(len(positions), dtype=bool)
        for surface in part.surfaces:   # no margin: strictly inside
            inside[others] |= surface.contains(positions[others], np.zeros(others.sum()))
        assert not inside.any(), (part.name, int(inside.sum()))
    on_objects = labels > 0
    assert positions[on_objects, 2].min() > 0.0           # no object face left resting on the floor
    drawer = parts[names.index("cabinet top drawer")].surfaces[0]
    body = parts[names.index("cabinet body")].surfaces[0]
    drawer_front = drawer.center[1] - drawer.size[1] / 2
    body_front = body.center[1] - body.size[1] / 2
    for cloud, behind in ((full, True), (visible, False)):
        mine = cloud.cloud.positions[cloud.part_labels == names.index("cabinet top drawer") + 1]
        back_face = np.abs(mine[:, 1] - body_front) < 0.005
        front_face = np.abs(mine[:, 1] - drawer_front) < 0.005
        assert front_face.sum() > 50 and bool(back_face.sum() > 50) == behind
    counts = np.bincount(labels, minlength=len(names) + 1)[1:]
    assert counts.min() >= 30, dict(zip(names, counts))
    # The floor keeps its density away from the objects: only what lies under them is gone.
    floor_full = (full.background_regions == 1).sum()
    floor_visible = (visible.background_regions == 1).sum()
    assert 0.95 * floor_full < floor_visible < floor_full
