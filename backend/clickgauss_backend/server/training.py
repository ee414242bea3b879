"""What a training job does: masks for every view, then `train_feature_field`, then install it."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from clickgauss_core.confinement import confined_to
from clickgauss_core.protocol import BAD_REQUEST, INVALID_DATASET

from ..features.config import TrainConfig
from ..features.masks import MaskStore, PrecomputedMasks
from ..features.trainer import TrainingCancelled, TrainingProgress, train_feature_field
from .errors import ApiError, no_training_views_message
from .jobs import TrainingRunner
from .limits import check_training_config
from .scenes import SceneManager
from .settings import ServerSettings
from .store import JobRecord, Store


def training_size(view) -> tuple[int, int]:
    """Masks are made at the size the view is trained at: its camera's (the dataset resolution)."""
    return view.camera.width, view.camera.height


def make_mask_source(masks: dict, settings: ServerSettings, device: str):
    if masks["source"] == "folder":
        return PrecomputedMasks(masks["path"])
    from ..features.sam import SamMaskGenerator  # imports segment_anything: only when used

    return SamMaskGenerator(settings.sam_checkpoint, model_type=settings.sam_model, device=device,
                            **masks.get("settings", {}))


def job_training_views(scene, views: dict, store: Store, scene_id: str):
    """The views a job trains on (`ViewSpec` of the request; an old job record has none: auto)."""
    from clickgauss_core.datasets import load_poses
    from clickgauss_core.wire import camera_from_dict

    from ..views import ViewSettings, training_views

    poses = None
    if views.get("poses_path"):
        poses = load_poses(views["poses_path"])
    elif views.get("cameras"):
        poses = [camera_from_dict(camera) for camera in views["cameras"]]
        for index, camera in enumerate(poses):
            camera.name = camera.name or f"camera_{index:03d}.png"
    settings = ViewSettings(**{key: views[key] for key in ("count", "resolution", "mode", "layout", "up")
                               if views.get(key) is not None})
    try:
        return training_views(scene, store.scene_dir(scene_id), views.get("source", "auto"), settings,
                              poses)
    except ValueError as exc:
        raise ApiError(422, BAD_REQUEST, f"the views to train on: {exc}; choose other view settings") from None


def make_training_runner(scenes: SceneManager, store: Store, settings: ServerSettings,
                         torch_threads: int) -> TrainingRunner:
    def run(job: JobRecord, report: Callable, should_cancel: Callable[[], bool]) -> None:
        # Clicks run with one torch thread each, and torch copies the last value set in any thread
        # into threads that start using it later: give training its full count back explicitly.
        torch.set_num_threads(torch_threads)
        request = job.request
        scene = scenes.scene(job.scene_id)
        if not scene.views and (request.get("views") or {}).get("source") == "photos":
            raise ApiError(400, INVALID_DATASET, no_training_views_message(scenes.name(job.scene_id)))
        chosen = job_training_views(scene, request.get("views") or {}, store, job.scene_id)
        report("masks", 0, len(chosen.views))

        def on_masks_built(done: int, total: int) -> None:
            # MaskStore.build has no cancel hook and SAM takes seconds per view: stop between views.
            if should_cancel():
                raise TrainingCancelled("cancelled while making masks")
            report("masks", done, total)

        source = make_mask_source(request["masks"], settings, scenes.device)
        with confined_to(settings.data_roots):  # mask files, like every file the server opens
            mask_store = MaskStore.build(source, chosen.views, training_size, store.mask_cache_dir(job.scene_id),
                                         progress=on_masks_built)
        check_training_config(request["preset"], request["settings"])  # a job recorded before the bounds
        config = TrainConfig.preset(request["preset"]).with_changes(**request["settings"])

        def on_progress(event: TrainingProgress) -> None:
            report(event.stage, event.iteration, event.total, event.losses, event.eta_seconds)

        field = train_feature_field(scene, mask_store, config, progress=on_progress, should_cancel=should_cancel,
                                    checkpoint_dir=Path(store.checkpoint_dir(job.job_id)), seed=request["seed"],
                                    views=chosen.views)
        scenes.install_field(job.scene_id, field)

    return run
