"""The `/v1` routes, one router per resource; each route is a few lines over `server/service.py`.

`service(request)` is the `Service` of the app that received the request (set by `create_app`).
"""

from __future__ import annotations

from fastapi import Request

from ..service import Service


def service(request: Request) -> Service:
    return request.app.state.service
