"""The FastAPI application: the `/v1` endpoints of docs/protocol.md.

`create_app(settings)` builds one server's `Service` (store, scenes, jobs) and mounts the routers
of `server/routes/` (health, scenes, jobs, queries, field), behind the token, body size and Host
checks. The routes stay thin: the rules live in `service.py`, paths are confined by `paths`, files
come in through `uploads`; the engine (scene, masks, pipeline, query) does the work. Blocking work
runs in plain `def` routes (FastAPI's thread pool) or the training thread, never on the event loop.
"""

from __future__ import annotations

import hmac
from contextlib import asynccontextmanager

import torch
from fastapi import FastAPI

from clickgauss_core.protocol import BAD_TOKEN, TOKEN_ENV

from ..features.trainer import TrainingCancelled
from .errors import error_response, install_error_handlers
from .jobs import JobManager
from .limits import BodySizeLimitMiddleware, HostCheckMiddleware
from .routes import field, health, jobs, queries, scenes
from .scene_registry import SceneRegistry
from .service import Service, package_version
from .settings import ServerSettings, resolve_device
from .records import RecordStore
from .training import make_training_runner

ROUTERS = (health.router, scenes.router, jobs.router, queries.router, field.router)


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
                               f"started with, --token or {TOKEN_ENV}) in the add-on's preferences")
                else:
                    message = ("the token sent does not match this backend's: put the token the backend was started "
                               f"with (--token or {TOKEN_ENV}) in the add-on's preferences")
                response = error_response(401, BAD_TOKEN, message)
                response.headers["WWW-Authenticate"] = "Bearer"
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


# -- the app ----------------------------------------------------------------------------------------

def create_app(settings: ServerSettings) -> FastAPI:
    device = resolve_device(settings.device)
    store = RecordStore(settings.cache_dir)
    scene_manager = SceneRegistry(store, device, settings.loaded_scene_capacity, data_roots=settings.data_roots)
    torch_threads = torch.get_num_threads()  # the process default, before any click sets its own
    job_manager = JobManager(store, make_training_runner(scene_manager, store, settings, torch_threads),
                             TrainingCancelled, scene_name=scene_manager.name)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        job_manager.start()
        try:
            yield
        finally:
            job_manager.stop()

    app = FastAPI(title="ClickGauss backend", version=package_version(), lifespan=lifespan,
                  description="Click-Gaussian feature training and click selection for 3DGS scenes. "
                              "See docs/protocol.md.")
    app.state.settings, app.state.scenes, app.state.jobs = settings, scene_manager, job_manager
    app.state.service = Service(settings, device, store, scene_manager, job_manager)
    install_error_handlers(app)
    if settings.token:
        app.add_middleware(TokenMiddleware, token=settings.token)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_json_bytes)
    if settings.allowed_hosts is not None:
        app.add_middleware(HostCheckMiddleware, allowed_names=settings.allowed_hosts)  # outermost: first
    for router in ROUTERS:
        app.include_router(router)
    return app
