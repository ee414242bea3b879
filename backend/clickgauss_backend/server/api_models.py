"""The HTTP API's bodies: requests (validated, bounded) and responses, as docs/protocol.md describes them.

FastAPI builds the OpenAPI schema (`/openapi.json`) from these models; the routes (`server/routes/`)
take and return them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from clickgauss_core.protocol import JOB_STATES, LEVELS, PRESET_NAMES
from clickgauss_core.view_planning import DEFAULT_COUNT as DEFAULT_VIEW_COUNT
from clickgauss_core.view_planning import DEFAULT_RESOLUTION as DEFAULT_VIEW_RESOLUTION

from ..features.pipeline import MASK_SOURCES
from .limits import TrainSettings

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
    source: Literal[MASK_SOURCES]  # type: ignore[valid-type]
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
    preset: Literal[PRESET_NAMES] | None = None  # type: ignore[valid-type]
    settings: TrainSettings = Field(default_factory=TrainSettings, description="TrainConfig overrides")
    seed: int = Field(0, ge=0, le=2**32 - 1)


class ClickRequest(StrictModel):
    camera: dict[str, Any] = Field(description="clickgauss_core.wire.camera_to_dict(camera)")
    pixel: tuple[float, float] = Field(description="[x, y] pixel, origin top-left")
    level: Literal[LEVELS]  # type: ignore[valid-type]
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
    state: Literal[JOB_STATES]  # type: ignore[valid-type]
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
