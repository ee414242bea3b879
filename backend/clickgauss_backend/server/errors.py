"""The service's error model: every failure is `{"error": {"code", "message"}}` with a stable code.

Route code raises `ApiError`; the handlers installed by `install_error_handlers` turn it, FastAPI's
validation errors, unknown routes and the core's `ClickGaussInputError`s into that one shape, so a
client only ever has to switch on `code` (docs/protocol.md lists them all).

Messages are for the people who read them in Blender's status bar: what happened and what to do,
in words. They name scenes by file name, never by their hash, and never name routes or functions.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from clickgauss_core.errors import ClickGaussInputError, DatasetError, MaskError, OutsideRootsError, PlyFormatError
from clickgauss_core.protocol import (
    BAD_REQUEST, BAD_TOKEN, INTERNAL_ERROR, INVALID_DATASET, INVALID_FIELD, INVALID_MASKS, INVALID_PLY,
    MALFORMED_JSON, METHOD_NOT_ALLOWED, NOT_FOUND, OUTSIDE_DATA_ROOT, UNSUPPORTED_MEDIA_TYPE,
    UPLOAD_TOO_LARGE,
)

log = logging.getLogger("clickgauss.server")

# However much a request names (300,000 unknown settings, a 100 MB path), its error stays short.
MAX_ERROR_MESSAGE_CHARS = 2048


def bounded_message(message: str) -> str:
    if len(message) <= MAX_ERROR_MESSAGE_CHARS:
        return message
    cut = MAX_ERROR_MESSAGE_CHARS - 40
    return f"{message[:cut]}... ({len(message) - cut} more characters)"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_body(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": bounded_message(message)}}


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status)


def input_error_code(exc: ClickGaussInputError) -> str:
    """The protocol code for a bad file/folder reported by the core or the engine."""
    if isinstance(exc, OutsideRootsError):
        return OUTSIDE_DATA_ROOT
    if isinstance(exc, PlyFormatError):
        return INVALID_PLY
    if isinstance(exc, DatasetError):
        return INVALID_DATASET
    if isinstance(exc, MaskError):
        return INVALID_MASKS
    if type(exc).__name__ == "FeatureFieldError":  # the engine's own subclass (features/field.py)
        return INVALID_FIELD
    return BAD_REQUEST


# What to do about a bad file, by code: said after the reader's own description of the problem.
INPUT_ADVICE = {
    INVALID_PLY: "open a trained 3D Gaussian Splatting scene (a .ply in the INRIA layout, a SuperSplat "
                   "compressed .ply or a .splat)",
    INVALID_DATASET: "choose the scene's dataset folder: the images and cameras it was trained from (COLMAP, an "
                       "INRIA output folder or nerfstudio)",
    INVALID_MASKS: "check the mask folder (<image name>_coarse.png and <image name>_fine.png for every view), or "
                     "make the masks with SAM",
    INVALID_FIELD: "load a features file saved by ClickGauss for this scene",
    OUTSIDE_DATA_ROOT: "keep the scene's files inside a folder the backend may read (its --data-root folders; a "
                         "backend the add-on starts itself is given the folders of the files you open)",
    BAD_REQUEST: "check the file and try again",
}
LOAD_SAVED_FEATURES = "choose a features file saved with Save Features for this scene"


def no_training_views_message(scene: str) -> str:
    return (f"{scene} has no training views (no dataset was found next to it): choose its dataset folder, the images "
            "and cameras it was trained from, and train again")


def describe_input_error(exc: ClickGaussInputError, shown_as: str | None = None) -> str:
    """The reader's message with advice; `shown_as` replaces the path (an upload's original name)."""
    where = shown_as or exc.path
    problem = f"{where}: {exc.problem}" if where else exc.problem
    return f"{problem.rstrip('.')}. What to do: {INPUT_ADVICE[input_error_code(exc)]}."


def input_error_status(exc: ClickGaussInputError) -> int:
    return 403 if isinstance(exc, OutsideRootsError) else 400


def api_error_from_input_error(exc: ClickGaussInputError, shown_as: str | None = None) -> ApiError:
    return ApiError(input_error_status(exc), input_error_code(exc), describe_input_error(exc, shown_as))


def _describe_validation_error(error: dict) -> str:
    location = ".".join(str(part) for part in error.get("loc", ()) if part != "body") or "request"
    raised = error.get("ctx", {}).get("error") if error.get("type") == "value_error" else None
    # A validator's own ValueError says what is wrong; pydantic's "Value error, " prefix adds nothing.
    return f"{location}: {raised if raised is not None else error.get('msg', 'invalid value')}"


def unexpected_error_message(exc: BaseException, doing: str = "the backend") -> str:
    """Only what is safe and useful to show: the kind of failure (an OS error's own words, never its file
    name: cache paths hold scene hashes); the traceback is in the backend's log."""
    kind = type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        kind = f"{kind}: {exc.strerror}"
    return (f"{doing} failed unexpectedly ({kind}): try again; if it happens again, report it with the backend's "
            "log, which has the details")


# Answers to requests for addresses the backend does not have: a wrong Backend URL or mismatched versions.
HTTP_MESSAGES = {
    NOT_FOUND: "the backend has no such address: check that the Backend URL is just http://host:port (no path) "
                 "and that the add-on and the backend are the same version",
    METHOD_NOT_ALLOWED: "the backend does not take that request at this address: check that the add-on and the "
                          "backend are the same version",
}

STATUS_CODES = {404: NOT_FOUND, 405: METHOD_NOT_ALLOWED, 413: UPLOAD_TOO_LARGE,
                415: UNSUPPORTED_MEDIA_TYPE, 401: BAD_TOKEN}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError):
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(ClickGaussInputError)
    async def _input_error(_request: Request, exc: ClickGaussInputError):
        return error_response(input_error_status(exc), input_error_code(exc), describe_input_error(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError):
        errors = exc.errors()
        if any(error.get("type") == "json_invalid" for error in errors):
            return error_response(400, MALFORMED_JSON, "the request body is not valid JSON ("
                                  + "; ".join(str(error.get("ctx", {}).get("error", error.get("msg")))
                                              for error in errors) + "): send a JSON object")
        return error_response(422, BAD_REQUEST, "; ".join(_describe_validation_error(e) for e in errors)
                              + ". Send the fields as docs/protocol.md describes")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException):
        code = STATUS_CODES.get(exc.status_code, BAD_REQUEST if exc.status_code < 500 else INTERNAL_ERROR)
        return error_response(exc.status_code, code, HTTP_MESSAGES.get(code, str(exc.detail)))

    @app.exception_handler(Exception)
    async def _bug(_request: Request, exc: Exception):
        log.exception("unhandled error")
        return error_response(500, INTERNAL_ERROR, unexpected_error_message(exc))
