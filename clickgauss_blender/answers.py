"""Checks of the backend's answers (docs/protocol.md) before anything uses them (pure Python +
numpy, no bpy): a server that answers with the wrong shape, a proxy's error page or garbage gives
an `AnswerError` naming what is wrong, never a TypeError deep inside Blender.

The checks run on the worker thread, inside `BackendClient`, so the main-thread callbacks only
ever see answers of the documented shape.
"""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
from clickgauss_core import wire
from clickgauss_core.errors import WireFormatError
from clickgauss_core.protocol import COARSE, FINE, JOB_STATES, LEVELS

FIELD_ARRAYS = ("features", "clusters_coarse", "clusters_fine", "metadata_json")
# np.savez stores its arrays uncompressed; a compressed member may grow this much, no more
# (an answer that would unpack to terabytes is refused before it is unpacked).
MAX_FIELD_EXPANSION = 20


class AnswerError(ValueError):
    """An answer of the wrong shape; the message says which field and what it was."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise AnswerError(message)


def _object(answer, what: str) -> dict:
    _require(isinstance(answer, dict), f"expected a JSON object ({what}), got {type(answer).__name__}")
    return answer


def _text(answer: dict, key: str, optional: bool = False) -> None:
    value = answer.get(key)
    _require((optional and value is None) or (isinstance(value, str) and (optional or value != "")),
             f"'{key}' must be {'a string or null' if optional else 'a non-empty string'}, got {value!r:.80}")


def _integer(answer: dict, key: str, optional: bool = False) -> None:
    value = answer.get(key)
    _require((optional and value is None) or (isinstance(value, int) and not isinstance(value, bool) and value >= 0),
             f"'{key}' must be a non-negative integer{' or null' if optional else ''}, got {value!r:.80}")


def _number(answer: dict, key: str, optional: bool = False) -> None:
    value = answer.get(key)
    _require((optional and value is None) or (isinstance(value, (int, float)) and not isinstance(value, bool)
                                              and np.isfinite(value)),
             f"'{key}' must be a number{' or null' if optional else ''}, got {value!r:.80}")


def check_health(answer) -> dict:
    answer = _object(answer, "the health status")
    _require(answer.get("status") == "ok", f"'status' must be \"ok\", got {answer.get('status')!r:.80}")
    _text(answer, "device")
    return answer


def check_scene(answer) -> dict:
    answer = _object(answer, "a scene")
    _text(answer, "scene_id")
    _integer(answer, "n_gaussians")
    _require(isinstance(answer.get("has_features"), bool),
             f"'has_features' must be true or false, got {answer.get('has_features')!r:.80}")
    _text(answer, "dataset_path", optional=True)
    return answer


def check_job(answer) -> dict:
    answer = _object(answer, "a training job")
    _text(answer, "job_id")
    _text(answer, "scene_id")
    _require(answer.get("state") in JOB_STATES, f"'state' must be one of {', '.join(JOB_STATES)}, "
                                                f"got {answer.get('state')!r:.80}")
    _text(answer, "stage", optional=True)
    _integer(answer, "iteration", optional=True)
    _integer(answer, "total", optional=True)
    _number(answer, "eta_seconds", optional=True)
    error = answer.get("error")
    _require(error is None or (isinstance(error, dict) and isinstance(error.get("message", ""), str)),
             f"'error' must be null or an object with a message, got {error!r:.80}")
    return answer


def check_click(answer) -> dict:
    answer = _object(answer, "a click result")
    _number(answer, "threshold")
    _integer(answer, "selected", optional=True)
    try:
        wire.decode_mask(answer.get("mask"))
    except WireFormatError as exc:
        raise AnswerError(f"'mask' is not a selection mask: {exc}") from None
    return answer


def decode_segments(answer) -> dict[str, np.ndarray]:
    """The per-Gaussian segment ids of a segments answer: {"coarse": ids, "fine": ids}, int32, (N,)."""
    answer = _object(answer, "segment ids")
    ids = {}
    for level in LEVELS:
        try:
            values = wire.decode_array(answer.get(level))
        except WireFormatError as exc:
            raise AnswerError(f"'{level}' is not an encoded array: {exc}") from None
        _require(values.ndim == 1 and values.dtype.kind == "i",
                 f"'{level}' must be one integer id per Gaussian, got {values.dtype} {values.shape}")
        ids[level] = values.astype(np.int32)
    _require(len(ids[COARSE]) == len(ids[FINE]),
             f"'{COARSE}' has {len(ids[COARSE])} ids but '{FINE}' {len(ids[FINE])}")
    return ids


def check_feature_field(data: bytes) -> int:
    """Bytes of a feature-field .npz (FeatureField.save): a zip of the four arrays, no pickle,
    `features` a 2-D float array, metadata JSON. Returns the number of Gaussians."""
    _require(isinstance(data, bytes) and data.startswith(b"PK"),
             f"not a feature-field .npz: it starts with {bytes(data[:32])!r}")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = {info.filename: info for info in archive.infolist()}
            missing = [name for name in FIELD_ARRAYS if f"{name}.npy" not in members]
            _require(not missing, f"not a feature field: the .npz lacks {', '.join(missing)}")
            unpacked = sum(info.file_size for info in members.values())
            _require(unpacked <= MAX_FIELD_EXPANSION * len(data),
                     f"the .npz would unpack to {unpacked} bytes from {len(data)}")
        with np.load(io.BytesIO(data), allow_pickle=False) as field:
            features = field["features"]
            metadata = json.loads(str(field["metadata_json"]))
    except (zipfile.BadZipFile, ValueError, OSError, KeyError, EOFError) as exc:
        if isinstance(exc, AnswerError):
            raise
        raise AnswerError(f"not a readable feature-field .npz ({exc})") from None
    _require(features.ndim == 2 and features.dtype.kind == "f",
             f"'features' must be a 2-D float array, got {features.dtype} {features.shape}")
    _require(isinstance(metadata, dict), "the field's metadata is not a JSON object")
    return int(features.shape[0])
