"""What a training job does: the one training pipeline (`features/pipeline.py`) in the job's places, then install its field."""

from __future__ import annotations

from typing import Callable

import torch

from clickgauss_core.protocol import BAD_REQUEST, INVALID_DATASET

from ..features.pipeline import TrainingPlaces, TrainingRequestError, run_training
from ..features.trainer import TrainingProgress
from .errors import ApiError, no_training_views_message
from .jobs import TrainingRunner
from .scene_registry import SceneRegistry
from .settings import ServerSettings
from .records import JobRecord, RecordStore


def job_places(job: JobRecord, store: RecordStore, settings: ServerSettings, device: str) -> TrainingPlaces:
    """A job's renders and masks are kept per scene (reused by the next job), its checkpoints per job."""
    return TrainingPlaces(view_cache_dir=store.scene_dir(job.scene_id), mask_cache_dir=store.mask_cache_dir(job.scene_id),
                          checkpoint_dir=store.checkpoint_dir(job.job_id), device=device,
                          sam_checkpoint=settings.sam_checkpoint, sam_model=settings.sam_model,
                          data_roots=settings.data_roots)


def make_training_runner(scenes: SceneRegistry, store: RecordStore, settings: ServerSettings,
                         torch_threads: int) -> TrainingRunner:
    def run(job: JobRecord, report: Callable, should_cancel: Callable[[], bool]) -> None:
        # Clicks run with one torch thread each, and torch copies the last value set in any thread
        # into threads that start using it later: give training its full count back explicitly.
        torch.set_num_threads(torch_threads)
        scene = scenes.scene(job.scene_id)
        if not scene.views and job.request.views.source == "photos":
            raise ApiError(400, INVALID_DATASET, no_training_views_message(scenes.name(job.scene_id)))

        def on_progress(event: TrainingProgress) -> None:
            report(event.stage, event.iteration, event.total, event.losses, event.eta_seconds)

        try:
            field = run_training(job.request, scene, job_places(job, store, settings, scenes.device), on_progress,
                                 should_cancel)
        except TrainingRequestError as exc:  # a job recorded before today's checks
            raise ApiError(422, BAD_REQUEST, str(exc)) from None
        scenes.install_field(job.scene_id, field)

    return run
