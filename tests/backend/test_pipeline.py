"""The training request of the one pipeline (features/pipeline.py): its JSON (a job's `request`)
and the one check of settings. Training itself is in test_training.py (through `run_training`)."""

import pytest

from clickgauss_core.protocol import PRESET_CPU_FAST, PRESET_GPU, PRESET_TINY

from clickgauss_backend.features.config import TrainConfig
from clickgauss_backend.features.pipeline import (MASKS_FROM_FOLDER, MASKS_FROM_SAM, MaskChoice, TrainingPlaces,
                                                  TrainingRequest, TrainingRequestError, ViewChoice, check_masks,
                                                  check_views, run_training, training_config)

CAMERA = {"world_to_camera": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 2], [0, 0, 0, 1]], "width": 64, "height": 48,
          "fx": 50.0, "fy": 50.0, "cx": 32.0, "cy": 24.0}


def test_a_request_travels_as_the_job_records_json_and_back():
    request = TrainingRequest(MaskChoice(MASKS_FROM_FOLDER, "/data/masks"),
                              ViewChoice(source="poses", count=12, up=(0.0, 0.0, 1.0), cameras=(CAMERA,)),
                              preset=PRESET_TINY, overrides={"iterations": 20}, seed=7)
    payload = request.to_json()
    assert set(payload) == {"masks", "views", "preset", "settings", "seed"}
    assert payload["masks"] == {"source": MASKS_FROM_FOLDER, "path": "/data/masks"}
    assert payload["settings"] == {"iterations": 20} and payload["views"]["up"] == [0.0, 0.0, 1.0]
    assert TrainingRequest.from_json(payload) == request
    sam = TrainingRequest(MaskChoice(MASKS_FROM_SAM, settings={"points_per_side": 8}))
    assert sam.to_json()["masks"] == {"source": MASKS_FROM_SAM, "settings": {"points_per_side": 8}}
    # A job recorded before views could be chosen trains on the automatic choice.
    old = {"masks": {"source": MASKS_FROM_FOLDER, "path": "/m"}, "preset": PRESET_TINY, "settings": {}, "seed": 0}
    assert TrainingRequest.from_json(old).views == ViewChoice()
    with pytest.raises(ValueError, match="not a training request"):
        TrainingRequest.from_json({"preset": PRESET_TINY})


def test_the_preset_left_out_is_the_devices_default():
    request = TrainingRequest(MaskChoice(MASKS_FROM_FOLDER, "/m"))
    assert request.with_preset_for("cuda:0").preset == PRESET_GPU
    assert request.with_preset_for("cpu").preset == PRESET_CPU_FAST
    assert request.with_preset_for("cpu").with_preset_for("cuda").preset == PRESET_CPU_FAST


def test_settings_are_checked_in_one_place():
    assert training_config(PRESET_TINY, {"iterations": 20}) == TrainConfig.preset(PRESET_TINY).with_changes(iterations=20)
    with pytest.raises(TrainingRequestError, match=r"^settings\.unknown setting\(s\) iteration;"):
        training_config(PRESET_TINY, {"iteration": 20})
    with pytest.raises(TrainingRequestError, match=r"^settings\.iterations: "):
        training_config(PRESET_TINY, {"iterations": 0})
    with pytest.raises(TrainingRequestError, match=r"^settings\.coarse_dim: "):
        training_config(PRESET_TINY, {"coarse_dim": 24, "feature_dim": 24})


def test_views_and_masks_are_checked_before_anything_runs():
    with pytest.raises(TrainingRequestError, match="camera 2 of the views to train on is not valid"):
        check_views(ViewChoice(cameras=(CAMERA, {"width": 3})))
    with pytest.raises(TrainingRequestError, match="the views to train on: .*count"):
        check_views(ViewChoice(count=0))
    with pytest.raises(TrainingRequestError, match="needs the poses"):
        check_views(ViewChoice(source="poses"))
    with pytest.raises(TrainingRequestError, match="masks.path"):
        check_masks(MaskChoice(MASKS_FROM_FOLDER))
    with pytest.raises(TrainingRequestError, match=r"masks.settings.points_per_side: 1.5 is not a positive integer"):
        check_masks(MaskChoice(MASKS_FROM_SAM, settings={"points_per_side": 1.5}))


def test_a_request_without_masks_needs_a_mask_source(tmp_path):
    places = TrainingPlaces(view_cache_dir=tmp_path / "views", mask_cache_dir=tmp_path / "masks")
    with pytest.raises(TrainingRequestError, match="masks: say where the masks come from"):
        run_training(TrainingRequest(masks=None, preset=PRESET_TINY), scene=None, places=places, views=[])


def test_a_recorded_request_with_unusable_masks_stops_before_any_view_is_made(tmp_path):
    """A job recorded before today's checks (or edited on disk) meets them again when it runs: a mask
    folder without its path is refused before views are chosen (scene=None would fail there)."""
    places = TrainingPlaces(view_cache_dir=tmp_path / "views", mask_cache_dir=tmp_path / "masks")
    with pytest.raises(TrainingRequestError, match="masks.path: give the mask folder"):
        run_training(TrainingRequest(masks=MaskChoice(MASKS_FROM_FOLDER), preset=PRESET_TINY), scene=None,
                     places=places)
