"""What one request may ask of the machine, checked before any work: camera sizes, training
settings, JSON body size, and the Host header of a loopback server (DNS rebinding).

The two middlewares are plain ASGI: they answer with the protocol's error shape before FastAPI
reads (or parses) anything.
"""

from __future__ import annotations

import re
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, create_model, model_validator

from clickgauss_core.cameras import Camera
from clickgauss_core.protocol import BAD_CAMERA, BAD_HOST, REQUEST_TOO_LARGE

from ..features.config import SETTING_RANGES, SETTING_TYPES, check_setting_names
from .errors import ApiError, error_response

# A click renders one pixel, but the tile grid over the whole image is allocated: 100,000^2
# pixels took 6.5 s and 1.6 GB. The largest Blender viewport is a few 8K screens wide.
MAX_CAMERA_SIDE = 32_768
MAX_CAMERA_PIXELS = 1 << 27  # 134 M pixels: four 8K UHD screens (7680 x 4320)
# The renderer works in float32 (largest 3.4e38): a finite 1e308 focal length overflowed it. No
# real view comes near 1e12 (pixels per unit, pixels, scene units), and products of two such
# numbers still fit; nor is a focal length below 1e-9 (width / fx is a field-of-view bound there).
MAX_CAMERA_VALUE = 1e12
MIN_FOCAL = 1e-9

# The routes that stream a multipart upload to disk under their own limit (--max-upload-mb).
STREAMED_UPLOADS = (("POST", re.compile(r"^/v1/scenes/upload/?$")), ("PUT", re.compile(r"^/v1/scenes/[^/]+/field/?$")))


def check_camera_limits(camera: Camera) -> None:
    """400 bad_camera when the camera's image is larger than the server renders, or one of its
    numbers larger than the renderer's float32 arithmetic holds."""
    problem = camera_limit_problem(camera)
    if problem is not None:
        raise ApiError(400, BAD_CAMERA, f"the click's view cannot be used ({problem}): click again in a 3D view of "
                                          "ordinary size with a normal perspective or orthographic camera")


def camera_limit_problem(camera: Camera) -> str | None:
    for name in ("width", "height"):
        value = getattr(camera, name)
        if value > MAX_CAMERA_SIDE:
            return f"camera.{name}: {value} pixels is above the server's limit of {MAX_CAMERA_SIDE}"
    if camera.width * camera.height > MAX_CAMERA_PIXELS:
        return (f"camera: width x height = {camera.width} x {camera.height} pixels is above the server's limit of "
                f"{MAX_CAMERA_PIXELS} pixels")
    numbers = {name: getattr(camera, name) for name in ("fx", "fy", "cx", "cy", "near", "far")}
    numbers["world_to_camera"] = float(abs(camera.world_to_camera).max())
    for name, value in numbers.items():
        if abs(value) > MAX_CAMERA_VALUE:
            return f"camera.{name}: {value:g} is beyond the server's limit of ±{MAX_CAMERA_VALUE:g}"
    for name in ("fx", "fy"):
        if getattr(camera, name) < MIN_FOCAL:
            return f"camera.{name}: {getattr(camera, name):g} is below the server's limit of {MIN_FOCAL:g}"
    return None


class _KnownSettingNames(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _known_names(cls, values):
        if isinstance(values, dict):
            check_setting_names(values)  # one short error, not one per unknown name
        return values


def _setting_field(name: str):
    kind = SETTING_TYPES[name]
    if kind is bool:
        return Optional[StrictBool], None
    low, high = SETTING_RANGES[name]
    value_type = StrictInt if kind is int else StrictFloat  # JSON 3 is a float, 3.5 no integer
    return Optional[value_type], Field(None, ge=low, le=high, allow_inf_nan=False)


# The body of a job's `settings`: every TrainConfig field optional, typed and bounded as
# features/config.py says (SETTING_TYPES, SETTING_RANGES), so OpenAPI documents the bounds and
# a request out of them is a 422 naming the field before anything is queued.
TrainSettings = create_model("TrainSettings", __base__=_KnownSettingNames,
                             **{name: _setting_field(name) for name in SETTING_TYPES})


def training_overrides(settings: BaseModel) -> dict:
    """The settings a request named (null = the preset's value)."""
    return settings.model_dump(exclude_unset=True, exclude_none=True)


def _header(scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def host_name(host_header: str) -> str:
    """The name part of a Host header: 'localhost:8765' -> 'localhost', '[::1]:8765' -> '[::1]'."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[:host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if ":" in host else host


class HostCheckMiddleware:
    """Answer only requests whose Host names this server: a web page that re-binds its own DNS
    name to 127.0.0.1 can reach a loopback server from the browser, but its requests carry its
    own name in Host. The port is not checked (an SSH tunnel changes it)."""

    def __init__(self, app, allowed_names: list[str]):
        self.app = app
        self.allowed = {name.lower() for name in allowed_names}

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            raw = _header(scope, b"host") or b""
            host = raw.decode("latin-1")
            if host_name(host) not in self.allowed:
                shown = host if len(host) <= 100 else host[:100] + "..."
                response = error_response(400, BAD_HOST, f"Host header {shown!r} is not a name this server answers to "
                                                           f"({', '.join(sorted(self.allowed))}); start it with "
                                                           "--allowed-host NAME to add one, or use one of those names in the Backend URL")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodySizeLimitMiddleware:
    """Refuse request bodies over `max_bytes` (the JSON endpoints' bodies are a few KB), whether
    declared by Content-Length or counted as they arrive. The body is read here (at most
    `max_bytes`) and handed on; the streamed uploads pass through to their own limit."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or any(scope["method"] == method and pattern.match(scope["path"])
                                          for method, pattern in STREAMED_UPLOADS):
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        delivered = False

        async def replay():
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope, receive, send):
        limit_kb = self.max_bytes / 1024
        response = error_response(413, REQUEST_TOO_LARGE, f"the request body is larger than the server's limit of "
                                                            f"{limit_kb:g} KB: send a smaller request, or start the "
                                                            "backend with a larger --max-json-kb")
        await response(scope, receive, send)
