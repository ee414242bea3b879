"""/v1/scenes/{id}/field: the trained feature field, downloaded or uploaded."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from clickgauss_core.protocol import API_PREFIX

from ..api_models import SceneResponse, errors, upload_body
from ..service import Service
from ..uploads import receive_file_upload
from . import service

router = APIRouter(prefix=API_PREFIX, tags=["feature field"])
FIELD_FILE = {200: {"description": "the FeatureField .npz", "content": {"application/octet-stream": {}}}}


@router.get("/scenes/{scene_id}/field", responses={**FIELD_FILE, **errors(401, 404, 409)}, response_class=FileResponse)
def download_field(scene_id: str, backend: Service = Depends(service)):
    return FileResponse(backend.field_file(scene_id), media_type="application/octet-stream",
                        filename=f"clickgauss-{scene_id[:16]}.npz")


@router.put("/scenes/{scene_id}/field", response_model=SceneResponse,
            responses=errors(400, 401, 404, 409, 413, 415, 422), openapi_extra=upload_body(()))
async def upload_field(scene_id: str, request: Request) -> SceneResponse:
    backend = service(request)
    backend.scenes.record(scene_id)
    backend.refuse_during_training(scene_id)
    upload_name = f"the features file for {backend.scenes.name(scene_id)}"
    received = await receive_file_upload(request, backend.store.uploads_dir, backend.settings.max_upload_bytes,
                                         upload_name)
    try:  # reading a big npz must not block the event loop
        await run_in_threadpool(backend.install_uploaded_field, scene_id, received.path, received.size, upload_name)
    finally:
        received.path.unlink(missing_ok=True)
    return backend.scene_response(scene_id)
