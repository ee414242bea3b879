"""The service's rules, one method per thing a client asks; the routes (`server/routes/`) only call these.

`Service` holds what one server process has: its settings and device, the on-disk `RecordStore`, the
open scenes (`SceneRegistry`) and the training jobs (`JobManager`). It checks what a request names
(paths inside the data roots, cameras, pixels, masks, training settings) and turns the engine's
errors into `ApiError`s of the protocol.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from clickgauss_core import wire
from clickgauss_core.errors import ClickGaussInputError
from clickgauss_core.ply import SPLAT_SUFFIXES, sniff_splat_suffix
from clickgauss_core.protocol import (
    API_VERSION, BAD_CAMERA, BAD_PIXEL, BAD_REQUEST, INVALID_DATASET, INVALID_FIELD, LEVELS, SAM_NOT_CONFIGURED,
    TRAINING_RUNNING,
)

from ..features.field import FeatureField
from ..features.pipeline import (MASKS_FROM_FOLDER, MaskChoice, TrainingRequest, TrainingRequestError, ViewChoice,
                                 check_masks, check_views, training_config)
from ..features.query import click_with_feature, segment_all
from .api_models import (ClickRequest, ClickResponse, HealthResponse, OpenSceneRequest, SceneResponse,
                         SegmentsResponse, StartJobRequest)
from .errors import LOAD_SAVED_FEATURES, ApiError, api_error_from_input_error, no_training_views_message
from .jobs import JobManager
from .limits import check_camera_limits, training_overrides
from .paths import resolve_inside_roots
from .scene_registry import SceneRegistry, detect_dataset, scene_name
from .settings import ServerSettings
from .records import RecordStore
from .uploads import ReceivedUpload


def package_version() -> str:
    try:
        return importlib.metadata.version("clickgauss-backend")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def _checked(check, *args):
    """An engine check of a training request; its complaint as a 422 bad_request."""
    try:
        return check(*args)
    except TrainingRequestError as exc:
        raise ApiError(422, BAD_REQUEST, str(exc)) from None


@dataclass
class Service:
    settings: ServerSettings
    device: str
    store: RecordStore
    scenes: SceneRegistry
    jobs: JobManager

    # health ----------------------------------------------------------------------------------------
    def health(self) -> HealthResponse:
        cuda = torch.cuda.is_available()
        settings = self.settings
        return HealthResponse(status="ok", version=package_version(), api=API_VERSION, device=self.device,
                              cuda_available=cuda, gsplat_usable=cuda and importlib.util.find_spec("gsplat") is not None,
                              sam_checkpoint_configured=settings.sam_checkpoint is not None,
                              sam_model=settings.sam_model if settings.sam_checkpoint is not None else None,
                              max_upload_mb=settings.max_upload_mb, auth_required=settings.token is not None)

    # scenes ----------------------------------------------------------------------------------------
    def scene_response(self, scene_id: str) -> SceneResponse:
        record = self.scenes.record(scene_id)
        return SceneResponse(scene_id=record.scene_id, n_gaussians=record.n_gaussians, sh_degree=record.sh_degree,
                             ply_path=record.ply_path, dataset_path=record.dataset_path, n_views=record.n_views,
                             view_source="photos" if record.n_views else "planned",
                             has_features=self.scenes.has_field(scene_id),
                             training_job=self.jobs.active_job_for(scene_id))

    def open_scene(self, ply_path: Path, dataset_path: Path | None, images: str | None, resolution: int | None,
                   uploaded: bool, name: str = "") -> SceneResponse:
        if dataset_path is None and not uploaded:  # an upload has no folder of its own to look in
            detected = detect_dataset(ply_path)
            if detected is not None and any(detected.resolve().is_relative_to(root)
                                            for root in self.settings.data_roots):
                dataset_path = detected
        try:
            record = self.scenes.open(ply_path, dataset_path, images, resolution, uploaded=uploaded, name=name)
        except ClickGaussInputError as exc:
            # An upload's problem is about the sender's file, not the backend's copy of it in the cache.
            shown_as = name if uploaded and exc.path == os.fspath(ply_path) else None
            raise api_error_from_input_error(exc, shown_as) from exc
        return self.scene_response(record.scene_id)

    def dataset_path(self, raw: str | None) -> Path | None:
        return None if raw is None else resolve_inside_roots(raw, self.settings.data_roots, "the dataset folder",
                                                             kind="dir")

    def open_scene_by_path(self, body: OpenSceneRequest) -> SceneResponse:
        ply_path = resolve_inside_roots(body.ply_path, self.settings.data_roots, "the scene file", kind="file")
        return self.open_scene(ply_path, self.dataset_path(body.dataset_path), body.images, body.resolution,
                               uploaded=False)

    def scene_upload_form(self, received: ReceivedUpload) -> OpenSceneRequest:
        try:
            return OpenSceneRequest(ply_path="upload", **{k: (v or None) for k, v in received.fields.items()})
        except ValueError as exc:
            received.path.unlink(missing_ok=True)
            raise ApiError(422, BAD_REQUEST, f"the uploaded scene's form fields are not usable ({exc}): "
                                             "send them as docs/protocol.md describes") from exc

    def keep_uploaded_scene(self, received: ReceivedUpload) -> Path:
        """The upload moved to its content-named place in the cache."""
        # The reader tells the formats apart by content, except the headerless antimatter15
        # `.splat`: that one is known by the extension the client gave it.
        suffix = sniff_splat_suffix(received.head) or Path(received.filename or "").suffix.lower()
        final_path = self.store.uploads_dir / f"{received.sha256}{suffix if suffix in SPLAT_SUFFIXES else '.ply'}"
        os.replace(received.path, final_path)
        return final_path

    def forget_unusable_upload(self, received: ReceivedUpload, path: Path) -> None:
        if not self.scenes.is_known(received.sha256):  # not a usable scene: keep nothing of it
            path.unlink(missing_ok=True)

    # training jobs ---------------------------------------------------------------------------------
    def start_job(self, body: StartJobRequest) -> dict:
        """The request checked in the order a person fixes it (views, masks, settings), then queued."""
        record = self.scenes.record(body.scene_id)
        views = body.views.model_dump()
        if views["source"] == "photos" and record.n_views == 0:
            raise ApiError(400, INVALID_DATASET, no_training_views_message(scene_name(record))
                           + ", or train on views rendered from the splat instead of its photos")
        if views["poses_path"] is not None:
            views["poses_path"] = os.fspath(resolve_inside_roots(views["poses_path"], self.settings.data_roots,
                                                                 "the camera poses file"))
        view_choice = ViewChoice.from_json(views)
        _checked(check_views, view_choice)
        masks = MaskChoice(body.masks.source, body.masks.path, dict(body.masks.settings))
        if masks.source == MASKS_FROM_FOLDER:
            _checked(check_masks, masks)
            masks = MaskChoice(masks.source, os.fspath(resolve_inside_roots(
                masks.path, self.settings.data_roots, "the mask folder", kind="dir")))
        else:
            if self.settings.sam_checkpoint is None:
                raise ApiError(400, SAM_NOT_CONFIGURED, "this backend has no SAM model to make masks with: start it "
                                                        "with --sam-checkpoint and a segment-anything checkpoint "
                                                        "file, or choose a folder of precomputed masks")
            _checked(check_masks, masks)
        request = TrainingRequest(masks, view_choice, body.preset, training_overrides(body.settings),
                                  body.seed).with_preset_for(self.device)
        _checked(training_config, request.preset, request.overrides)
        return self.jobs.submit(record.scene_id, request)

    # queries ---------------------------------------------------------------------------------------
    def click(self, scene_id: str, body: ClickRequest) -> ClickResponse:
        # One torch thread for this request thread: a click is too small for intra-op parallelism
        # to pay, and on a busy CPU its barriers turned a 40 ms click into 150 ms-1.5 s
        # (benchmarks/RESULTS.md, service). Concurrent clicks still use all cores; the training
        # thread sets its own count (training.py).
        torch.set_num_threads(1)
        record = self.scenes.record(scene_id)
        try:
            camera = wire.camera_from_dict(body.camera)
        except (ClickGaussInputError, ValueError, TypeError, KeyError) as exc:
            raise ApiError(400, BAD_CAMERA, f"the click's view cannot be used ({exc}): click again in a 3D view "
                                            "with a normal perspective or orthographic camera") from exc
        check_camera_limits(camera)
        x, y = body.pixel
        if not (math.isfinite(x) and math.isfinite(y) and 0 <= x < camera.width and 0 <= y < camera.height):
            raise ApiError(400, BAD_PIXEL, f"the click at ({x}, {y}) is outside the {camera.width}x{camera.height} "
                                           "view: click inside the view")
        field = self.scenes.field(scene_id)
        scene = self.scenes.scene(scene_id)
        try:
            selection, pixel_feature, threshold = click_with_feature(field, scene.gaussians, camera, (x, y),
                                                                     body.level, body.threshold)
        except ClickGaussInputError as exc:
            raise api_error_from_input_error(exc) from exc
        return ClickResponse(scene_id=scene_id, level=body.level, threshold=threshold, n_gaussians=record.n_gaussians,
                             selected=int(selection.sum()), mask=wire.encode_mask(selection),
                             pixel_feature=[float(v) for v in pixel_feature])

    def segments(self, scene_id: str) -> SegmentsResponse:
        record = self.scenes.record(scene_id)
        ids = segment_all(self.scenes.field(scene_id))
        return SegmentsResponse(scene_id=scene_id, n_gaussians=record.n_gaussians,
                                **{level: wire.encode_array(ids[level].astype("int32")) for level in LEVELS})

    # the feature field -----------------------------------------------------------------------------
    def field_file(self, scene_id: str) -> Path:
        self.scenes.field(scene_id)  # 409 no_features / 404 unknown_scene before any bytes go out
        return self.store.field_path(scene_id)

    def refuse_during_training(self, scene_id: str) -> None:
        if self.jobs.active_job_for(scene_id) is not None:
            raise ApiError(409, TRAINING_RUNNING, f"{self.scenes.name(scene_id)} is being trained right now: wait "
                                                  "for the training to finish, or cancel it, then load the features")

    def install_uploaded_field(self, scene_id: str, path: Path, size: int, upload_name: str) -> None:
        """An uploaded features file installed when it is a field of this very scene (else 400 invalid_field)."""
        expected = self.scenes.record(scene_id).n_gaussians
        try:
            if size == 0:  # np.load reports an empty file as EOFError, not as a bad file
                raise ApiError(400, INVALID_FIELD, f"{upload_name} is empty: {LOAD_SAVED_FEATURES}")
            field = FeatureField.load(path, expected_gaussians=expected)
        except (ClickGaussInputError, ValueError, TypeError, KeyError, AttributeError) as exc:
            # An uploaded file is untrusted input: whatever the reader trips over is the file's fault.
            detail = exc.problem if isinstance(exc, ClickGaussInputError) else str(exc)  # not the temp file's path
            raise ApiError(400, INVALID_FIELD, f"{upload_name} is not a ClickGauss features file ({detail}): "
                                               f"{LOAD_SAVED_FEATURES}") from exc
        if field.scene_hash != scene_id:
            raise ApiError(400, INVALID_FIELD, f"{upload_name} was trained for another scene (or another version "
                                               f"of this file): {LOAD_SAVED_FEATURES}, or train this one")
        if len(field) != expected:
            raise ApiError(400, INVALID_FIELD, f"{upload_name} has {len(field):,} Gaussians but the scene has "
                                               f"{expected:,}: {LOAD_SAVED_FEATURES}")
        self.refuse_during_training(scene_id)
        self.scenes.install_field(scene_id, field, saved_at=path)
