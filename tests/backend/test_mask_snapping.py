"""Masks snapped to the image's colours (`mask_snapping`): thin parts recovered from wandering
boundaries, clean masks left alone, and the wrapper's cache key and errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from clickgauss_core.errors import MaskError
from clickgauss_backend.features.mask_snapping import ColourSnappedMasks, snap_ids_to_colours
from clickgauss_backend.features.masks import MaskStore, PrecomputedMasks, write_mask_png

from test_masks import dataset_view

BODY, HANDLE, FLOOR = 1, 2, 3


def _body_and_handle(height=48, width=64):
    """A body (brown) with a 2 px wide vertical handle (cream) at its right, on a grey floor."""
    labels = np.full((height, width), FLOOR)
    labels[8:40, 10:40] = BODY
    labels[12:36, 40:42] = HANDLE
    palette = {BODY: (140, 90, 60), HANDLE: (235, 225, 200), FLOOR: (110, 110, 120)}
    image = np.zeros((height, width, 3), dtype=np.uint8)
    for label, colour in palette.items():
        image[labels == label] = colour
    return labels, image


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def _wandered(labels: np.ndarray) -> np.ndarray:
    """The handle's mask slid 1 px into the body (as a jittered boundary does): half of it is body
    pixels, and the handle's outer column is left to the floor's mask."""
    noisy = labels.copy()
    noisy[labels == HANDLE] = FLOOR
    noisy[12:36, 39:41] = HANDLE
    return noisy


def test_a_thin_part_outside_its_wandering_mask_is_given_back_its_pixels():
    labels, image = _body_and_handle()
    noisy = _wandered(labels)
    assert _iou(noisy == HANDLE, labels == HANDLE) == 1 / 3

    snapped = snap_ids_to_colours(noisy, image)

    assert _iou(snapped == HANDLE, labels == HANDLE) == 1.0
    assert _iou(snapped == BODY, labels == BODY) == 1.0


def test_masks_that_follow_the_colours_are_left_as_they_are():
    labels, image = _body_and_handle()
    assert np.array_equal(snap_ids_to_colours(labels, image), labels)
    # One colour everywhere gives no evidence: boundaries stay where the masks put them.
    flat = np.full_like(image, 128)
    assert np.array_equal(snap_ids_to_colours(labels, flat), labels)


def test_the_image_must_match_the_id_map():
    labels, image = _body_and_handle()
    with pytest.raises(ValueError, match="does not match"):
        snap_ids_to_colours(labels, image[:-1])


def _scene_on_disk(folder):
    labels, image = _body_and_handle()
    noisy = _wandered(labels)
    (folder / "masks").mkdir()
    Image.fromarray(image).save(folder / "v0.png")
    write_mask_png(folder / "masks" / "v0_coarse.png", np.where(noisy == FLOOR, 0, 1))
    write_mask_png(folder / "masks" / "v0_fine.png", noisy)
    return labels, dataset_view(folder / "v0.png", "v0.png", size=(64, 48))


def test_snapped_masks_are_what_the_store_caches_and_the_image_is_in_the_key(tmp_path):
    labels, view = _scene_on_disk(tmp_path)
    source = ColourSnappedMasks(PrecomputedMasks(tmp_path / "masks"))
    store = MaskStore.build(source, [view], lambda v: (64, 48), tmp_path / "cache")
    assert _iou(store.load(0).fine == HANDLE, labels == HANDLE) == 1.0
    assert store.describe()["source"]["snapped_to_colours"]["margin"] > 1.0

    # A changed image is another input: its masks are snapped again.
    Image.fromarray(np.full((48, 64, 3), 128, dtype=np.uint8)).save(tmp_path / "v0.png")
    again = MaskStore.build(source, [view], lambda v: (64, 48), tmp_path / "cache")
    assert again.stats["generated"] == 1
    assert _iou(again.load(0).fine == HANDLE, labels == HANDLE) == 1 / 3  # one colour: the masks as given


def test_a_missing_image_is_a_clear_error_that_says_how_to_go_on(tmp_path):
    _, view = _scene_on_disk(tmp_path)
    (tmp_path / "v0.png").unlink()
    source = ColourSnappedMasks(PrecomputedMasks(tmp_path / "masks"))
    with pytest.raises(MaskError, match=r"v0\.png: image not found.*snap_masks_to_colours false"):
        MaskStore.build(source, [view], lambda v: (64, 48), tmp_path / "cache")
