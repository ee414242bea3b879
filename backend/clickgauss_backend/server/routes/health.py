"""GET /v1/health: what this backend is and can do."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from clickgauss_core.protocol import API_PREFIX

from ..api_models import HealthResponse, errors
from ..service import Service
from . import service

router = APIRouter(prefix=API_PREFIX, tags=["service"])


@router.get("/health", response_model=HealthResponse, responses=errors(401))
def health(backend: Service = Depends(service)) -> HealthResponse:
    return backend.health()
