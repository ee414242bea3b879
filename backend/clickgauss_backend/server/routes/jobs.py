"""/v1/jobs: start a training job, list, follow, cancel and resume jobs."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from clickgauss_core.protocol import API_PREFIX

from ..api_models import JobListResponse, JobResponse, StartJobRequest, errors
from ..service import Service
from . import service

router = APIRouter(prefix=API_PREFIX, tags=["training"])


@router.post("/jobs", response_model=JobResponse, status_code=202, responses=errors(400, 401, 403, 404, 409, 422))
def start_job(body: StartJobRequest, backend: Service = Depends(service)) -> dict:
    return backend.start_job(body)


@router.get("/jobs", response_model=JobListResponse, responses=errors(401, 422))
def list_jobs(scene_id: str | None = Query(None), backend: Service = Depends(service)) -> dict:
    return {"jobs": backend.jobs.list(scene_id)}


@router.get("/jobs/{job_id}", response_model=JobResponse, responses=errors(401, 404))
def get_job(job_id: str, backend: Service = Depends(service)) -> dict:
    return backend.jobs.get(job_id)


@router.post("/jobs/{job_id}/cancel", response_model=JobResponse, responses=errors(401, 404))
def cancel_job(job_id: str, backend: Service = Depends(service)) -> dict:
    return backend.jobs.cancel(job_id)


@router.post("/jobs/{job_id}/resume", response_model=JobResponse, status_code=202, responses=errors(401, 404, 409))
def resume_job(job_id: str, backend: Service = Depends(service)) -> dict:
    return backend.jobs.resume(job_id)
