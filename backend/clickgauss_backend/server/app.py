"""The FastAPI application: the `/v1` endpoints of docs/protocol.md.

Routes stay thin: paths are confined by `paths`, files come in through `uploads`, scenes and
fields live in `SceneManager`, training in `JobManager`; the engine (scene, masks, trainer,
query) does the work. Blocking work runs in plain `def` routes (FastAPI's thread pool) or the
training thread, never on the event loop.
"""

from __future__ import annotations

import hmac
import importlib.metadata
import importlib.util
import inspect
import math
import os
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import torch
from fastapi import FastAPI, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.concurrency import run_in_threadpool

from clickgauss_core import wire
from clickgauss_core.errors import ClickGaussInputError
from clickgauss_core.ply import SPLAT_SUFFIXES, sniff_splat_suffix

from clickgauss_core.view_planning import DEFAULT_COUNT as DEFAULT_VIEW_COUNT
from clickgauss_core.view_planning import DEFAULT_RESOLUTION as DEFAULT_VIEW_RESOLUTION

from ..features.config import LEVELS, PRESETS, default_preset
from ..features.field import FeatureField
from ..features.query import click_with_feature, segment_all
from ..features.trainer import TrainingCancelled
from ..views import ViewSettings
from .errors import (LOAD_SAVED_FEATURES, ApiError, api_error_from_input_error, error_response, install_error_handlers,
                     no_training_views_message)
from .jobs import JobManager
from .limits import (BodySizeLimitMiddleware, HostCheckMiddleware, TrainSettings, check_camera_limits,
                     check_training_config, training_overrides)
from .paths import resolve_inside_roots
from .scenes import SceneManager, detect_dataset, scene_name
from .settings import ServerSettings, resolve_device
from .store import Store
from .training import make_training_runner
from .uploads import receive_file_upload

API_VERSION = "v1"
# A plain folder name: `images` picks a sub-folder of the dataset and must not climb out of it.
FOLDER_NAME_PATTERN = r"^[^/\\\x00]+$"
SettingValue = bool | int | float


# -- request bodies --------------------------------------------------------------------------------

class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OpenSceneRequest(StrictModel):
    ply_path: str = Field(min_length=1, description="PLY on the server's disk, inside a data root")
    dataset_path: str | None = Field(None, description="dataset folder; null = detect next to the PLY")
    images: str | None = Field(None, pattern=FOLDER_NAME_PATTERN, description="images sub-folder name")
    resolution: int | None = Field(None, ge=1, le=100_000, description="downscale factor or target width")

    @field_validator("images")
    @classmethod
    def _plain_folder_name(cls, value: str | None) -> str | None:
        if value in (".", ".."):
            raise ValueError("must be a folder name inside the dataset, not '.' or '..'")
        return value


class MaskSpec(StrictModel):
    source: Literal["folder", "sam"]
    path: str | None = Field(None, description="precomputed mask folder (source 'folder')")
    settings: dict[str, SettingValue] = Field(default_factory=dict, description="SAM generator settings")


class ViewSpec(StrictModel):
    source: Literal["auto", "photos", "poses", "planned"] = Field(
        "auto", description="auto: the dataset's photos, else the given poses rendered from the splat, else "
                            "views planned around the splat")
    count: int = Field(DEFAULT_VIEW_COUNT, ge=1, le=1000, description="number of planned views")
    resolution: int = Field(DEFAULT_VIEW_RESOLUTION, ge=8, le=4096, description="longer side of rendered views (px)")
    mode: Literal["auto", "orbit", "inside"] = "auto"
    layout: Literal["rings", "sphere"] = "rings"
    up: tuple[float, float, float] | None = Field(None, description="up direction in the splat's frame")
    poses_path: str | None = Field(None, description="known poses: an INRIA cameras.json or a COLMAP model folder")
    cameras: list[dict[str, Any]] | None = Field(None, max_length=1000,
                                                 description="known poses as wire camera dicts (e.g. Blender's cameras)")


class StartJobRequest(StrictModel):
    scene_id: str
    masks: MaskSpec
    views: ViewSpec = Field(default_factory=ViewSpec, description="where the training views come from")
    preset: Literal[tuple(PRESETS)] | None = None  # type: ignore[valid-type]  # the preset names, one list
    settings: TrainSettings = Field(default_factory=TrainSettings, description="TrainConfig overrides")
    seed: int = Field(0, ge=0, le=2**32 - 1)


class ClickRequest(StrictModel):
    camera: dict[str, Any] = Field(description="clickgauss_core.wire.camera_to_dict(camera)")
    pixel: tuple[float, float] = Field(description="[x, y] pixel, origin top-left")
    level: Literal["coarse", "fine"]
    threshold: float | None = Field(None, ge=-1.0, le=1.0, description="null: the click's own adaptive threshold")


# -- responses --------------------------------------------------------------------------------------

class HealthResponse(BaseModel):
    status: str
    version: str
    api: str
    device: str
    cuda_available: bool
    gsplat_usable: bool
    sam_checkpoint_configured: bool
    sam_model: str | None
    max_upload_mb: float
    auth_required: bool


class SceneResponse(BaseModel):
    scene_id: str
    n_gaussians: int
    sh_degree: int
    ply_path: str
    dataset_path: str | None
    n_views: int
    view_source: Literal["photos", "planned"] = Field(description="the views a job without poses would train on")
    has_features: bool
    training_job: str | None


class SceneListResponse(BaseModel):
    scenes: list[SceneResponse]


class JobResponse(BaseModel):
    job_id: str
    scene_id: str
    state: Literal["queued", "running", "done", "failed", "cancelled", "interrupted"]
    stage: str | None
    iteration: int
    total: int
    losses: dict[str, float | None]
    eta_seconds: float | None
    queue_position: int | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    error: dict[str, str] | None
    request: dict[str, Any]


class JobListResponse(BaseModel):
    jobs: list[JobResponse]


class ClickResponse(BaseModel):
    scene_id: str
    level: str
    threshold: float
    n_gaussians: int
    selected: int
    mask: dict[str, Any]
    pixel_feature: list[float] = Field(description="the rendered feature of the clicked pixel (all D dims)")


class SegmentsResponse(BaseModel):
    scene_id: str
    n_gaussians: int
    coarse: dict[str, Any]
    fine: dict[str, Any]


ERROR_SCHEMA = {"application/json": {"schema": {"type": "object", "properties": {"error": {
    "type": "object", "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
    "required": ["code", "message"]}}, "required": ["error"]}}}


def errors(*statuses: int) -> dict:
    return {status: {"description": "error", "content": ERROR_SCHEMA} for status in statuses}


def upload_body(text_fields: tuple[str, ...]) -> dict:
    """OpenAPI for the streamed multipart uploads (read from the raw stream, not a Form model)."""
    properties = {"file": {"type": "string", "format": "binary"}}
    properties.update({name: {"type": "string"} for name in text_fields})
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "properties": properties, "required": ["file"]}}}}}


# -- auth -------------------------------------------------------------------------------------------

class TokenMiddleware:
    """Every request needs `Authorization: Bearer <token>` when the server has a token."""

    def __init__(self, app, token: str):
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            provided = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(provided, self.expected):
                if not provided:
                    message = ("this backend needs a token and none was sent: put the backend's token (the one it was "
                               "started with, --token or CLICKGAUSS_TOKEN) in the add-on's preferences")
                else:
                    message = ("the token sent does not match this backend's: put the token the backend was started "
                               "with (--token or CLICKGAUSS_TOKEN) in the add-on's preferences")
                response = error_response(401, "bad_token", message)
                response.headers["WWW-Authenticate"] = "Bearer"
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


# -- the app ----------------------------------------------------------------------------------------

def create_app(settings: ServerSettings) -> FastAPI:
    device = resolve_device(settings.device)
    store = Store(settings.cache_dir)
    scenes = SceneManager(store, device, settings.loaded_scene_capacity, data_roots=settings.data_roots)
    torch_threads = torch.get_num_threads()  # the process default, before any click sets its own
    jobs = JobManager(store, make_training_runner(scenes, store, settings, torch_threads), TrainingCancelled,
                      scene_name=scenes.name)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        jobs.start()
        try:
            yield
        finally:
            jobs.stop()

    app = FastAPI(title="ClickGauss backend", version=package_version(), lifespan=lifespan,
                  description="Click-Gaussian feature training and click selection for 3DGS scenes. "
                              "See docs/protocol.md.")
    app.state.settings, app.state.scenes, app.state.jobs = settings, scenes, jobs
    install_error_handlers(app)
    if settings.token:
        app.add_middleware(TokenMiddleware, token=settings.token)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_json_bytes)
    if settings.allowed_hosts is not None:
        app.add_middleware(HostCheckMiddleware, allowed_names=settings.allowed_hosts)  # outermost: first

    def scene_response(scene_id: str) -> SceneResponse:
        record = scenes.record(scene_id)
        return SceneResponse(scene_id=record.scene_id, n_gaussians=record.n_gaussians, sh_degree=record.sh_degree,
                             ply_path=record.ply_path, dataset_path=record.dataset_path, n_views=record.n_views,
                             view_source="photos" if record.n_views else "planned", has_features=scenes.has_field(scene_id), training_job=jobs.active_job_for(scene_id))

    def open_scene(ply_path: Path, dataset_path: Path | None, images: str | None, resolution: int | None,
                   uploaded: bool, name: str = "") -> SceneResponse:
        if dataset_path is None and not uploaded:  # an upload has no folder of its own to look in
            detected = detect_dataset(ply_path)
            if detected is not None and any(detected.resolve().is_relative_to(root) for root in settings.data_roots):
                dataset_path = detected
        try:
            record = scenes.open(ply_path, dataset_path, images, resolution, uploaded=uploaded, name=name)
        except ClickGaussInputError as exc:
            # An upload's problem is about the sender's file, not the backend's copy of it in the cache.
            shown_as = name if uploaded and exc.path == os.fspath(ply_path) else None
            raise api_error_from_input_error(exc, shown_as) from exc
        return scene_response(record.scene_id)

    def dataset_arg(raw: str | None) -> Path | None:
        return None if raw is None else resolve_inside_roots(raw, settings.data_roots, "the dataset folder", kind="dir")

    # health ----------------------------------------------------------------------------------------
    @app.get("/v1/health", response_model=HealthResponse, tags=["service"], responses=errors(401))
    def health() -> HealthResponse:
        cuda = torch.cuda.is_available()
        return HealthResponse(status="ok", version=package_version(), api=API_VERSION, device=device,
                              cuda_available=cuda, gsplat_usable=cuda and importlib.util.find_spec("gsplat") is not None,
                              sam_checkpoint_configured=settings.sam_checkpoint is not None,
                              sam_model=settings.sam_model if settings.sam_checkpoint is not None else None,
                              max_upload_mb=settings.max_upload_mb, auth_required=settings.token is not None)

    # scenes ----------------------------------------------------------------------------------------
    @app.post("/v1/scenes", response_model=SceneResponse, tags=["scenes"], responses=errors(400, 401, 403, 404, 422))
    def open_scene_by_path(body: OpenSceneRequest) -> SceneResponse:
        ply_path = resolve_inside_roots(body.ply_path, settings.data_roots, "the scene file", kind="file")
        return open_scene(ply_path, dataset_arg(body.dataset_path), body.images, body.resolution, uploaded=False)

    upload_fields = ("dataset_path", "images", "resolution")

    @app.post("/v1/scenes/upload", response_model=SceneResponse, tags=["scenes"],
              responses=errors(400, 401, 403, 404, 413, 415, 422), openapi_extra=upload_body(upload_fields))
    async def upload_scene(request: Request) -> SceneResponse:
        received = await receive_file_upload(request, store.uploads_dir, settings.max_upload_bytes,
                                             "the uploaded scene file", text_fields=upload_fields)
        try:
            form = OpenSceneRequest(ply_path="upload", **{k: (v or None) for k, v in received.fields.items()})
        except ValueError as exc:
            received.path.unlink(missing_ok=True)
            raise ApiError(422, "bad_request", f"the uploaded scene's form fields are not usable ({exc}): "
                                               "send them as docs/protocol.md describes") from exc
        # The reader tells the formats apart by content, except the headerless antimatter15
        # `.splat`: that one is known by the extension the client gave it.
        suffix = sniff_splat_suffix(received.head) or Path(received.filename or "").suffix.lower()
        final_path = store.uploads_dir / f"{received.sha256}{suffix if suffix in SPLAT_SUFFIXES else '.ply'}"
        os.replace(received.path, final_path)
        try:  # loading a big PLY must not block the event loop
            return await run_in_threadpool(open_scene, final_path, dataset_arg(form.dataset_path), form.images,
                                           form.resolution, True, received.filename or "the uploaded scene file")
        except ApiError:
            if not scenes.is_known(received.sha256):  # not a usable scene: keep nothing of it
                final_path.unlink(missing_ok=True)
            raise

    @app.get("/v1/scenes", response_model=SceneListResponse, tags=["scenes"], responses=errors(401))
    def list_scenes() -> SceneListResponse:
        return SceneListResponse(scenes=[scene_response(record.scene_id) for record in scenes.records()])

    @app.get("/v1/scenes/{scene_id}", response_model=SceneResponse, tags=["scenes"], responses=errors(401, 404))
    def describe_scene(scene_id: str) -> SceneResponse:
        return scene_response(scene_id)

    # jobs ------------------------------------------------------------------------------------------
    @app.post("/v1/jobs", response_model=JobResponse, status_code=202, tags=["training"],
              responses=errors(400, 401, 403, 404, 409, 422))
    def start_job(body: StartJobRequest) -> dict:
        record = scenes.record(body.scene_id)
        views = body.views.model_dump()
        if views["source"] == "photos" and record.n_views == 0:
            raise ApiError(400, "invalid_dataset", no_training_views_message(scene_name(record))
                           + ", or train on views rendered from the splat instead of its photos")
        if views["poses_path"] is not None:
            views["poses_path"] = os.fspath(resolve_inside_roots(views["poses_path"], settings.data_roots,
                                                                 "the camera poses file"))
        if views["cameras"] is not None:
            for index, camera in enumerate(views["cameras"]):
                try:
                    wire.camera_from_dict(camera)
                except (ClickGaussInputError, KeyError, TypeError, ValueError) as exc:
                    raise ApiError(422, "bad_request", f"camera {index + 1} of the views to train on is not valid "
                                                       f"({exc}): fix that camera or train on planned views") from None
        try:
            ViewSettings(**{key: views[key] for key in ("count", "resolution", "mode", "layout", "up")})
        except ValueError as exc:
            raise ApiError(422, "bad_request", f"the views to train on: {exc}; choose other view settings") from None
        if views["source"] == "poses" and views["poses_path"] is None and not views["cameras"]:
            raise ApiError(422, "bad_request", "training on known camera poses needs the poses: give a cameras.json "
                                               "or COLMAP model, or send the cameras, or train on planned views")
        masks: dict = {"source": body.masks.source}
        if body.masks.source == "folder":
            if body.masks.path is None:
                raise ApiError(422, "bad_request", "masks.path: give the mask folder when the mask source is 'folder'")
            masks["path"] = os.fspath(resolve_inside_roots(body.masks.path, settings.data_roots, "the mask folder", kind="dir"))
        else:
            if settings.sam_checkpoint is None:
                raise ApiError(400, "sam_not_configured", "this backend has no SAM model to make masks with: start it "
                                                          "with --sam-checkpoint and a segment-anything checkpoint "
                                                          "file, or choose a folder of precomputed masks")
            check_overrides(body.masks.settings, sam_generator_defaults(), "masks.settings")
            masks["settings"] = dict(body.masks.settings)
        preset = body.preset or default_preset(device)
        overrides = training_overrides(body.settings)
        check_training_config(preset, overrides)
        return jobs.submit(record.scene_id, {"masks": masks, "preset": preset, "settings": overrides,
                                             "seed": body.seed, "views": views})

    @app.get("/v1/jobs", response_model=JobListResponse, tags=["training"], responses=errors(401, 422))
    def list_jobs(scene_id: str | None = Query(None)) -> dict:
        return {"jobs": jobs.list(scene_id)}

    @app.get("/v1/jobs/{job_id}", response_model=JobResponse, tags=["training"], responses=errors(401, 404))
    def get_job(job_id: str) -> dict:
        return jobs.get(job_id)

    @app.post("/v1/jobs/{job_id}/cancel", response_model=JobResponse, tags=["training"], responses=errors(401, 404))
    def cancel_job(job_id: str) -> dict:
        return jobs.cancel(job_id)

    @app.post("/v1/jobs/{job_id}/resume", response_model=JobResponse, status_code=202, tags=["training"],
              responses=errors(401, 404, 409))
    def resume_job(job_id: str) -> dict:
        return jobs.resume(job_id)

    # queries ---------------------------------------------------------------------------------------
    @app.post("/v1/scenes/{scene_id}/click", response_model=ClickResponse, tags=["queries"],
              responses=errors(400, 401, 404, 409, 422))
    def click_scene(scene_id: str, body: ClickRequest) -> ClickResponse:
        # One torch thread for this request thread: a click is too small for intra-op parallelism
        # to pay, and on a busy CPU its barriers turned a 40 ms click into 150 ms-1.5 s
        # (benchmarks/RESULTS.md, service). Concurrent clicks still use all cores; the training
        # thread sets its own count (training.py).
        torch.set_num_threads(1)
        record = scenes.record(scene_id)
        try:
            camera = wire.camera_from_dict(body.camera)
        except (ClickGaussInputError, ValueError, TypeError, KeyError) as exc:
            raise ApiError(400, "bad_camera", f"the click's view cannot be used ({exc}): click again in a 3D view "
                                              "with a normal perspective or orthographic camera") from exc
        check_camera_limits(camera)
        x, y = body.pixel
        if not (math.isfinite(x) and math.isfinite(y) and 0 <= x < camera.width and 0 <= y < camera.height):
            raise ApiError(400, "bad_pixel", f"the click at ({x}, {y}) is outside the {camera.width}x{camera.height} "
                                             "view: click inside the view")
        field = scenes.field(scene_id)
        scene = scenes.scene(scene_id)
        try:
            selection, pixel_feature, threshold = click_with_feature(field, scene.gaussians, camera, (x, y),
                                                                     body.level, body.threshold)
        except ClickGaussInputError as exc:
            raise api_error_from_input_error(exc) from exc
        return ClickResponse(scene_id=scene_id, level=body.level, threshold=threshold, n_gaussians=record.n_gaussians,
                             selected=int(selection.sum()), mask=wire.encode_mask(selection),
                             pixel_feature=[float(v) for v in pixel_feature])

    @app.get("/v1/scenes/{scene_id}/segments", response_model=SegmentsResponse, tags=["queries"],
             responses=errors(401, 404, 409))
    def segments(scene_id: str) -> SegmentsResponse:
        record = scenes.record(scene_id)
        ids = segment_all(scenes.field(scene_id))
        return SegmentsResponse(scene_id=scene_id, n_gaussians=record.n_gaussians,
                                **{level: wire.encode_array(ids[level].astype("int32")) for level in LEVELS})

    # the feature field -----------------------------------------------------------------------------
    @app.get("/v1/scenes/{scene_id}/field", tags=["feature field"], responses={
        200: {"description": "the FeatureField .npz", "content": {"application/octet-stream": {}}},
        **errors(401, 404, 409)}, response_class=FileResponse)
    def download_field(scene_id: str):
        scenes.field(scene_id)  # 409 no_features / 404 unknown_scene before any bytes go out
        return FileResponse(store.field_path(scene_id), media_type="application/octet-stream",
                            filename=f"clickgauss-{scene_id[:16]}.npz")

    @app.put("/v1/scenes/{scene_id}/field", response_model=SceneResponse, tags=["feature field"],
             responses=errors(400, 401, 404, 409, 413, 415, 422), openapi_extra=upload_body(()))
    async def upload_field(scene_id: str, request: Request) -> SceneResponse:
        scenes.record(scene_id)
        refuse_during_training(scene_id)
        upload_name = f"the features file for {scenes.name(scene_id)}"
        received = await receive_file_upload(request, store.uploads_dir, settings.max_upload_bytes, upload_name)
        try:  # reading a big npz must not block the event loop
            await run_in_threadpool(install_uploaded_field, scene_id, received.path, received.size, upload_name)
        finally:
            received.path.unlink(missing_ok=True)
        return scene_response(scene_id)

    def install_uploaded_field(scene_id: str, path: Path, size: int, upload_name: str) -> None:
        try:
            if size == 0:  # np.load reports an empty file as EOFError, not as a bad file
                raise ApiError(400, "invalid_field", f"{upload_name} is empty: {LOAD_SAVED_FEATURES}")
            field = FeatureField.load(path, expected_gaussians=scenes.record(scene_id).n_gaussians)
        except (ClickGaussInputError, ValueError, TypeError, KeyError, AttributeError) as exc:
            # An uploaded file is untrusted input: whatever the reader trips over is the file's fault.
            detail = exc.problem if isinstance(exc, ClickGaussInputError) else str(exc)  # not the temp file's path
            raise ApiError(400, "invalid_field", f"{upload_name} is not a ClickGauss features file ({detail}): "
                                                 f"{LOAD_SAVED_FEATURES}") from exc
        if field.scene_hash != scene_id:
            raise ApiError(400, "invalid_field", f"{upload_name} was trained for another scene (or another version "
                                                 f"of this file): {LOAD_SAVED_FEATURES}, or train this one")
        expected = scenes.record(scene_id).n_gaussians
        if len(field) != expected:
            raise ApiError(400, "invalid_field", f"{upload_name} has {len(field):,} Gaussians but the scene has "
                                                 f"{expected:,}: {LOAD_SAVED_FEATURES}")
        refuse_during_training(scene_id)
        scenes.install_field(scene_id, field, saved_at=path)

    def refuse_during_training(scene_id: str) -> None:
        active = jobs.active_job_for(scene_id)
        if active is not None:
            raise ApiError(409, "training_running", f"{scenes.name(scene_id)} is being trained right now: wait for "
                                                    "the training to finish, or cancel it, then load the features")

    return app


def check_overrides(overrides: dict, defaults: dict, where: str) -> None:
    """Each override must name a known setting and have its default's type (JSON blurs int/float/bool)."""
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise ApiError(422, "bad_request", f"{where}: unknown setting(s) {', '.join(unknown)}; "
                                           f"use one of {', '.join(sorted(defaults))}")
    for name, value in overrides.items():
        expected = type(defaults[name])
        if expected is bool and not isinstance(value, bool):
            raise ApiError(422, "bad_request", f"{where}.{name}: {value!r} is not true/false; send true or false")
        if expected is int and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ApiError(422, "bad_request", f"{where}.{name}: {value!r} is not a positive integer; send one")
        if expected is float and (isinstance(value, bool) or not math.isfinite(value) or value < 0):
            raise ApiError(422, "bad_request", f"{where}.{name}: {value!r} is not a finite number >= 0; send one")


def sam_generator_defaults() -> dict:
    """The SAM generator's tunable keyword arguments and their defaults."""
    from ..features.masks import SamMaskGenerator  # imports segment_anything: only when SAM is asked for

    fixed = {"self", "checkpoint", "model_type", "device"}
    return {name: parameter.default for name, parameter in inspect.signature(SamMaskGenerator.__init__).parameters.items()
            if name not in fixed and parameter.default is not inspect.Parameter.empty}


def package_version() -> str:
    try:
        return importlib.metadata.version("clickgauss-backend")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"
