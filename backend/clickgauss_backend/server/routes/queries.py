"""/v1/scenes/{id}/click and /segments: what the trained field selects."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from clickgauss_core.protocol import API_PREFIX

from ..api_models import ClickRequest, ClickResponse, SegmentsResponse, errors
from ..service import Service
from . import service

router = APIRouter(prefix=API_PREFIX, tags=["queries"])


@router.post("/scenes/{scene_id}/click", response_model=ClickResponse, responses=errors(400, 401, 404, 409, 422))
def click_scene(scene_id: str, body: ClickRequest, backend: Service = Depends(service)) -> ClickResponse:
    return backend.click(scene_id, body)


@router.get("/scenes/{scene_id}/segments", response_model=SegmentsResponse, responses=errors(401, 404, 409))
def segments(scene_id: str, backend: Service = Depends(service)) -> SegmentsResponse:
    return backend.segments(scene_id)
