"""Mask sources and the mask cache: precomputed PNG / .npy folders, SAM (a tiny random-weight
model built with segment_anything itself), the two-level rule, and MaskStore's disk cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from clickgauss_core.cameras import Camera
from clickgauss_core.datasets import View
from clickgauss_core.errors import MaskError
from clickgauss_backend.features.masks import (
    MaskStore, PrecomputedMasks, TwoLevelMasks, read_mask_file, resize_ids, two_level_from_masks, write_mask_png,
)
from clickgauss_backend.features.sam import SAM_ARCHITECTURES, SamArchitecture, SamMaskGenerator

TINY_SAM = SamArchitecture("tiny-test", embed_dim=32, depth=2, num_heads=2, global_attn_indexes=(1,))
# Random weights predict poor, unstable masks: accept everything so the plumbing is exercised.
PERMISSIVE = dict(points_per_side=2, pred_iou_thresh=0.0, stability_score_thresh=0.0,
                  min_mask_region_area=4, points_per_batch=4)


def dataset_view(image_path: str | Path, name: str, size=(32, 24)) -> View:
    """A dataset view as clickgauss_core.datasets builds them (the camera is not read by mask sources)."""
    width, height = size
    camera = Camera(np.eye(4), width, height, fx=width, fy=width, cx=width / 2, cy=height / 2)
    return View(camera=camera, image_path=str(image_path), name=name)


def _view(folder: Path, stem: str, size=(32, 24), seed=0) -> View:
    rng = np.random.default_rng(seed)
    image = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    image[:, : size[0] // 2] = rng.integers(0, 255, size=3)
    image[size[1] // 3:, size[0] // 2:] = rng.integers(0, 255, size=3)
    path = folder / f"{stem}.jpg"
    Image.fromarray(image).save(path)
    return dataset_view(path, f"{stem}.jpg", size)


# -- the two-level rule ----------------------------------------------------------------------------

def test_coarse_takes_largest_and_fine_smallest_covering_mask():
    big = np.zeros((4, 6), bool)
    big[:, :4] = True
    small = np.zeros((4, 6), bool)
    small[1:3, 1:3] = True
    other = np.zeros((4, 6), bool)
    other[:, 5] = True
    levels = two_level_from_masks([small, big, other], (4, 6))
    assert levels.coarse[1, 1] == 2 and levels.fine[1, 1] == 1  # inside both: big / small
    assert levels.coarse[0, 0] == 2 and levels.fine[0, 0] == 2  # only big covers it
    assert (levels.coarse[:, 4] == 0).all() and (levels.fine[:, 4] == 0).all()  # nothing covers column 4
    assert (levels.coarse[:, 5] == 3).all()
    assert levels.coarse.dtype == np.int32


def test_resize_ids_is_nearest_and_keeps_ids():
    ids = np.array([[1, 2], [3, 40000]], dtype=np.int32)
    resized = resize_ids(ids, (4, 6))
    assert resized.shape == (6, 4)
    assert set(np.unique(resized)) == {1, 2, 3, 40000}
    assert (resized[:3, :2] == 1).all() and (resized[3:, 2:] == 40000).all()


# -- precomputed folders ---------------------------------------------------------------------------

def test_precomputed_png_and_npy_are_read_and_resized(tmp_path):
    coarse = np.zeros((12, 16), np.int32)
    coarse[:, 8:] = 60000  # needs 16 bits
    fine = np.arange(12 * 16, dtype=np.int32).reshape(12, 16) % 7
    write_mask_png(tmp_path / "frame_01_coarse.png", coarse)
    np.save(tmp_path / "frame_01_fine.npy", fine.astype(np.uint16))
    source = PrecomputedMasks(tmp_path)
    view = dataset_view(str(tmp_path / "images" / "frame_01.jpg"), "frame_01.jpg")  # image need not exist
    same = source.generate(view, (16, 12))
    assert np.array_equal(same.coarse, coarse) and np.array_equal(same.fine, fine)
    doubled = source.generate(view, (32, 24))
    assert doubled.size == (32, 24)
    assert np.array_equal(doubled.coarse[::2, ::2], coarse) and np.array_equal(doubled.fine[::2, ::2], fine)


def test_8bit_png_masks_are_accepted(tmp_path):
    Image.fromarray(np.full((6, 8), 3, np.uint8)).save(tmp_path / "a_coarse.png")
    Image.fromarray(np.full((6, 8), 5, np.uint8)).save(tmp_path / "a_fine.png")
    masks = PrecomputedMasks(tmp_path).generate(dataset_view("a.png", "a.png"), (8, 6))
    assert (masks.coarse == 3).all() and (masks.fine == 5).all()


def test_precomputed_errors_name_the_file(tmp_path):
    with pytest.raises(MaskError, match="mask folder not found"):
        PrecomputedMasks(tmp_path / "nope")
    source = PrecomputedMasks(tmp_path)
    view = dataset_view("cam/b.png", "b.png")
    with pytest.raises(MaskError, match=r"b_coarse\.png.*missing coarse mask"):
        source.generate(view, (8, 6))

    write_mask_png(tmp_path / "b_coarse.png", np.ones((6, 8)))
    (tmp_path / "b_fine.png").write_bytes(b"not a png at all")
    with pytest.raises(MaskError, match=r"b_fine\.png: not a readable image"):
        source.generate(view, (8, 6))

    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(tmp_path / "b_fine.png")
    with pytest.raises(MaskError, match=r"b_fine\.png: is a RGB image"):
        source.generate(view, (8, 6))

    write_mask_png(tmp_path / "b_fine.png", np.ones((5, 8)))
    with pytest.raises(MaskError, match=r"b_fine\.png: shape \(5, 8\) differs from the coarse mask"):
        source.generate(view, (8, 6))

    write_mask_png(tmp_path / "b_fine.png", np.ones((6, 8)))
    with pytest.raises(MaskError, match=r"b_coarse\.png: mask is 8x6 but view 'b.png' is 8x8"):
        source.generate(view, (8, 8))


def test_npy_mask_errors(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 3, 4), np.int32))
    with pytest.raises(MaskError, match=r"x\.npy: expected a 2-D"):
        read_mask_file(tmp_path / "x.npy")
    np.save(tmp_path / "y.npy", np.zeros((2, 3), np.float32))
    with pytest.raises(MaskError, match=r"y\.npy: expected integer segment ids"):
        read_mask_file(tmp_path / "y.npy")
    np.save(tmp_path / "z.npy", -np.ones((2, 3), np.int32))
    with pytest.raises(MaskError, match=r"z\.npy: negative segment ids"):
        read_mask_file(tmp_path / "z.npy")
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(MaskError, match=r"o\.npy: not a readable \.npy"):
        read_mask_file(tmp_path / "o.npy")


# -- the cache -------------------------------------------------------------------------------------

def _precomputed_views(folder: Path, count: int) -> list[View]:
    rng = np.random.default_rng(1)
    views = []
    for i in range(count):
        write_mask_png(folder / f"v{i}_coarse.png", rng.integers(0, 4, size=(12, 16)))
        write_mask_png(folder / f"v{i}_fine.png", rng.integers(0, 9, size=(12, 16)))
        views.append(dataset_view(f"images/v{i}.png", f"v{i}.png"))
    return views


def test_mask_store_caches_on_disk_and_regenerates_on_changes(tmp_path):
    mask_dir, cache = tmp_path / "masks", tmp_path / "cache"
    mask_dir.mkdir()
    views = _precomputed_views(mask_dir, 3)
    calls = []
    store = MaskStore.build(PrecomputedMasks(mask_dir), views, lambda v: (16, 12), cache,
                            progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 3), (2, 3), (3, 3)]
    assert store.stats["generated"] == 3 and store.stats["cached"] == 0
    assert len(store) == 3 and len(list(cache.glob("*.npz"))) == 3
    first = store.load(1)
    assert np.array_equal(first.fine, read_mask_file(mask_dir / "v1_fine.png"))
    assert first.coarse.dtype == np.int32 and not first.coarse.flags.writeable

    again = MaskStore.build(PrecomputedMasks(mask_dir), views, lambda v: (16, 12), cache)
    assert again.stats["generated"] == 0 and again.stats["cached"] == 3
    assert np.array_equal(again.load(1).fine, first.fine)

    # Another training size, or changed mask content, regenerates exactly what changed.
    resized = MaskStore.build(PrecomputedMasks(mask_dir), views, lambda v: (8, 6), cache)
    assert resized.stats["generated"] == 3 and resized.load(0).size == (8, 6)
    write_mask_png(mask_dir / "v2_fine.png", np.full((12, 16), 7))
    changed = MaskStore.build(PrecomputedMasks(mask_dir), views, lambda v: (16, 12), cache)
    assert changed.stats["generated"] == 1
    assert (changed.load(2).fine == 7).all()

    description = store.describe()
    assert description["source"]["kind"] == "precomputed" and description["num_views"] == 3


def test_mask_store_reads_lazily_through_a_small_lru(tmp_path):
    mask_dir = tmp_path / "masks"
    mask_dir.mkdir()
    views = _precomputed_views(mask_dir, 4)
    store = MaskStore.build(PrecomputedMasks(mask_dir), views, lambda v: (16, 12), tmp_path / "cache",
                            memory_cache_size=2)
    assert store.load(0) is store.load(0)  # served from RAM the second time
    store.load(1), store.load(2)            # evicts view 0
    assert store._load.cache_info().currsize == 2
    reloaded = store.load(0)
    assert np.array_equal(reloaded.coarse, read_mask_file(mask_dir / "v0_coarse.png"))


def test_corrupt_cache_entry_is_a_clear_error(tmp_path):
    mask_dir = tmp_path / "masks"
    mask_dir.mkdir()
    views = _precomputed_views(mask_dir, 1)
    store = MaskStore.build(PrecomputedMasks(mask_dir), views, lambda v: (16, 12), tmp_path / "cache")
    store.files[0].write_bytes(b"garbage")
    with pytest.raises(MaskError, match="unreadable mask cache entry"):
        store.load(0)


# -- SAM -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_sam_checkpoint(tmp_path_factory) -> Path:
    """A real (tiny, random-weight) SAM built by segment_anything itself, saved as a state_dict."""
    from segment_anything.build_sam import _build_sam

    torch.manual_seed(0)
    model = _build_sam(encoder_embed_dim=TINY_SAM.embed_dim, encoder_depth=TINY_SAM.depth,
                       encoder_num_heads=TINY_SAM.num_heads, encoder_global_attn_indexes=list(TINY_SAM.global_attn_indexes))
    path = tmp_path_factory.mktemp("sam") / "tiny_sam.pth"
    torch.save(model.state_dict(), path)
    return path


def test_sam_generator_produces_two_level_masks_at_the_training_size(tiny_sam_checkpoint, tmp_path):
    generator = SamMaskGenerator(tiny_sam_checkpoint, model_type=TINY_SAM, device="cpu", **PERMISSIVE)
    view = _view(tmp_path, "frame", size=(40, 30))
    masks = generator.generate(view, (20, 15))
    assert isinstance(masks, TwoLevelMasks) and masks.size == (20, 15)
    assert masks.coarse.dtype == np.int32
    assert (masks.coarse > 0).any(), "the permissive tiny SAM should cover some pixels"
    # Every pixel SAM covers has a mask at both levels (fine is the smallest, coarse the largest).
    assert np.array_equal(masks.coarse > 0, masks.fine > 0)
    description = generator.describe()
    assert description["kind"] == "sam" and description["points_per_side"] == 2
    assert description["architecture"]["embed_dim"] == 32


def test_sam_masks_go_through_the_cache(tiny_sam_checkpoint, tmp_path):
    generator = SamMaskGenerator(tiny_sam_checkpoint, model_type=TINY_SAM, device="cpu", **PERMISSIVE)
    views = [_view(tmp_path, "a", seed=1), _view(tmp_path, "b", seed=2)]
    first = MaskStore.build(generator, views, lambda v: (16, 12), tmp_path / "cache")
    second = MaskStore.build(generator, views, lambda v: (16, 12), tmp_path / "cache")
    assert (first.stats["generated"], second.stats["generated"]) == (2, 0)
    assert np.array_equal(first.load(1).coarse, second.load(1).coarse)
    stricter = SamMaskGenerator(tiny_sam_checkpoint, model_type=TINY_SAM, device="cpu",
                                **{**PERMISSIVE, "points_per_side": 3})
    assert MaskStore.build(stricter, views[:1], lambda v: (16, 12), tmp_path / "cache").stats["generated"] == 1


def test_sam_missing_image_is_a_clear_error(tiny_sam_checkpoint, tmp_path):
    generator = SamMaskGenerator(tiny_sam_checkpoint, model_type=TINY_SAM, device="cpu", **PERMISSIVE)
    with pytest.raises(MaskError, match=r"gone\.png: image not found"):
        generator.generate(dataset_view(str(tmp_path / "gone.png"), "gone.png"), (8, 6))


def test_sam_checkpoint_errors(tiny_sam_checkpoint, tmp_path):
    with pytest.raises(MaskError, match=r"missing\.pth: SAM checkpoint not found"):
        SamMaskGenerator(tmp_path / "missing.pth", model_type=TINY_SAM)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(MaskError, match=r"junk\.pth: not a PyTorch checkpoint"):
        SamMaskGenerator(junk, model_type=TINY_SAM)
    other_model = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(4, 3, 3, 3)}, other_model)
    with pytest.raises(MaskError, match=r"resnet\.pth: not a Segment Anything checkpoint"):
        SamMaskGenerator(other_model, model_type=TINY_SAM)
    with pytest.raises(MaskError, match=r"tiny_sam\.pth: looks like a SAM checkpoint of an unknown variant "
                                        r"\(encoder width 32, depth 2\), but model type 'vit_b' was asked for"):
        SamMaskGenerator(tiny_sam_checkpoint, model_type="vit_b")
    with pytest.raises(MaskError, match="unknown SAM model type 'vit_x'"):
        SamMaskGenerator(tiny_sam_checkpoint, model_type="vit_x")
    with pytest.raises(MaskError, match="device 'cuda:99' is not available here"):
        SamMaskGenerator(tiny_sam_checkpoint, model_type=TINY_SAM, device="cuda:99")
    with pytest.raises(MaskError, match="unknown device 'gpu'"):
        SamMaskGenerator(tiny_sam_checkpoint, model_type=TINY_SAM, device="gpu")


def test_wrong_model_type_names_the_variant_the_file_looks_like(tmp_path):
    # A vit_b-shaped encoder signature (width 768, 12 blocks) without building the 90M-parameter model.
    fake_vit_b = {"image_encoder.patch_embed.proj.weight": torch.zeros(768, 3, 1, 1)}
    fake_vit_b.update({f"image_encoder.blocks.{i}.norm1.weight": torch.zeros(1) for i in range(12)})
    path = tmp_path / "sam_vit_b.pth"
    torch.save(fake_vit_b, path)
    with pytest.raises(MaskError, match=r"looks like a SAM vit_b checkpoint, but model type 'vit_h' was asked for"):
        SamMaskGenerator(path, model_type="vit_h")
    assert SAM_ARCHITECTURES["vit_b"].embed_dim == 768


def test_incomplete_checkpoint_fails_strict_loading(tiny_sam_checkpoint, tmp_path):
    state = torch.load(tiny_sam_checkpoint, weights_only=True)
    del state["mask_decoder.iou_token.weight"]
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    with pytest.raises(MaskError, match=r"partial\.pth: does not match SAM tiny-test: .*iou_token"):
        SamMaskGenerator(path, model_type=TINY_SAM)


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"image_encoder.patch_embed.proj.weight": torch.zeros(1), "note": object()}, path)
    with pytest.raises(MaskError, match=r"evil\.pth: not a PyTorch checkpoint that loads safely"):
        SamMaskGenerator(path, model_type=TINY_SAM)


def test_sam_is_fed_at_most_1024_pixels_on_the_long_side(tiny_sam_checkpoint, tmp_path):
    generator = SamMaskGenerator(tiny_sam_checkpoint, model_type=TINY_SAM, device="cpu", **PERMISSIVE)
    large = tmp_path / "large.png"
    Image.fromarray(np.zeros((60, 1280, 3), np.uint8)).save(large)
    assert generator._read_image(dataset_view(large, "large.png")).shape == (48, 1024, 3)
    small = _view(tmp_path, "small", size=(40, 30))
    assert generator._read_image(small).shape == (30, 40, 3)  # never upscaled: SAM does that itself


def test_batched_encoder_gives_the_masks_of_sams_own_one_view_path(tiny_sam_checkpoint, tmp_path):
    generator = SamMaskGenerator(tiny_sam_checkpoint, model_type=TINY_SAM, device="cpu", views_per_batch=3,
                                 **PERMISSIVE)
    views = [_view(tmp_path, f"v{i}", size=(40, 30), seed=i) for i in range(3)]
    images = [generator._read_image(view) for view in views]
    batched = generator._encode(images)
    assert batched.shape == (3, 256, 64, 64)
    for index, image in enumerate(images):  # one batch of 3 == three batches of 1
        torch.testing.assert_close(batched[index:index + 1], generator._encode([image]), atol=1e-4, rtol=1e-4)
    masks = generator.generate_batch(views, [(40, 30)] * 3)
    for view, image, batched_masks in zip(views, images, masks):
        # segment_anything's own path: its predictor encodes the one image itself.
        records = generator._generator.generate(image)
        own = two_level_from_masks([r["segmentation"] for r in records], image.shape[:2])
        assert (own.coarse > 0).any()
        assert (np.mean(own.coarse == batched_masks.coarse) > 0.99) and (np.mean(own.fine == batched_masks.fine) > 0.99)


def test_mask_store_feeds_a_batching_source_in_batches(tiny_sam_checkpoint, tmp_path):
    generator = SamMaskGenerator(tiny_sam_checkpoint, model_type=TINY_SAM, device="cpu", views_per_batch=2,
                                 **PERMISSIVE)
    calls, progress = [], []
    original = generator.generate_batch
    generator.generate_batch = lambda views, sizes: calls.append(len(views)) or original(views, sizes)
    views = [_view(tmp_path, f"b{i}", seed=i) for i in range(5)]
    MaskStore.build(generator, views[:1], lambda v: (16, 12), tmp_path / "cache")  # one view cached already
    calls.clear()
    store = MaskStore.build(generator, views, lambda v: (16, 12), tmp_path / "cache",
                            progress=lambda done, total: progress.append((done, total)))
    assert calls == [2, 2] and store.stats["generated"] == 4 and store.stats["cached"] == 1
    assert progress == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]


def test_sam_input_size_runs_the_encoder_smaller_and_keys_the_cache(tiny_sam_checkpoint, tmp_path):
    small = SamMaskGenerator(tiny_sam_checkpoint, model_type=TINY_SAM, device="cpu", input_size=512, **PERMISSIVE)
    assert small.model.image_encoder.pos_embed.shape == (1, 32, 32, 32)
    large_image = tmp_path / "wide.png"
    Image.fromarray(np.full((300, 800, 3), 90, np.uint8)).save(large_image)
    view = dataset_view(large_image, "wide.png", (80, 30))
    image = small._read_image(view)
    assert image.shape == (192, 512, 3)  # resized to the input size on the long side
    assert small._encode([image]).shape == (1, 256, 32, 32)
    masks = small.generate(_view(tmp_path, "s", size=(40, 30)), (20, 15))
    assert masks.size == (20, 15) and (masks.coarse > 0).any()
    assert small.describe()["input_size"] == 512
    views = [_view(tmp_path, "k")]
    MaskStore.build(small, views, lambda v: (16, 12), tmp_path / "cache")
    native = SamMaskGenerator(tiny_sam_checkpoint, model_type=TINY_SAM, device="cpu", **PERMISSIVE)
    assert MaskStore.build(native, views, lambda v: (16, 12), tmp_path / "cache").stats["generated"] == 1
    for bad in (500, 128, 2048):
        with pytest.raises(MaskError, match=f"SAM input_size {bad}: use a multiple of 16 from 256 to 1024"):
            SamMaskGenerator(tiny_sam_checkpoint, model_type=TINY_SAM, device="cpu", input_size=bad)
