"""/v1/scenes: open a splat by path or upload, list the open scenes, describe one."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from clickgauss_core.protocol import API_PREFIX

from ..api_models import OpenSceneRequest, SceneListResponse, SceneResponse, errors, upload_body
from ..errors import ApiError
from ..service import Service
from ..uploads import receive_file_upload
from . import service

router = APIRouter(prefix=API_PREFIX, tags=["scenes"])
UPLOAD_FIELDS = ("dataset_path", "images", "resolution")


@router.post("/scenes", response_model=SceneResponse, responses=errors(400, 401, 403, 404, 422))
def open_scene_by_path(body: OpenSceneRequest, backend: Service = Depends(service)) -> SceneResponse:
    return backend.open_scene_by_path(body)


@router.post("/scenes/upload", response_model=SceneResponse, responses=errors(400, 401, 403, 404, 413, 415, 422),
             openapi_extra=upload_body(UPLOAD_FIELDS))
async def upload_scene(request: Request) -> SceneResponse:
    backend = service(request)
    received = await receive_file_upload(request, backend.store.uploads_dir, backend.settings.max_upload_bytes,
                                         "the uploaded scene file", text_fields=UPLOAD_FIELDS)
    form = backend.scene_upload_form(received)
    path = backend.keep_uploaded_scene(received)
    try:  # loading a big PLY must not block the event loop
        return await run_in_threadpool(backend.open_scene, path, backend.dataset_path(form.dataset_path), form.images,
                                       form.resolution, True, received.filename or "the uploaded scene file")
    except ApiError:
        backend.forget_unusable_upload(received, path)
        raise


@router.get("/scenes", response_model=SceneListResponse, responses=errors(401))
def list_scenes(backend: Service = Depends(service)) -> SceneListResponse:
    return SceneListResponse(scenes=[backend.scene_response(record.scene_id) for record in backend.scenes.records()])


@router.get("/scenes/{scene_id}", response_model=SceneResponse, responses=errors(401, 404))
def describe_scene(scene_id: str, backend: Service = Depends(service)) -> SceneResponse:
    return backend.scene_response(scene_id)
