"""Everything the service keeps on disk, under the cache dir, as plain JSON and npz files.

    <cache>/scenes/<scene_id>/scene.json   where the scene's PLY/dataset are (reopened lazily)
    <cache>/scenes/<scene_id>/field.npz    the scene's current feature field (FeatureField.save)
    <cache>/scenes/<scene_id>/masks/       the on-disk mask cache (MaskStore)
    <cache>/jobs/<job_id>/job.json         a training job's record
    <cache>/jobs/<job_id>/checkpoints/     its training checkpoints (resume)
    <cache>/uploads/<sha256>.<ply,spz,splat> uploaded splat files
Ids are validated before they become path components, so a request can never name a path.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from clickgauss_core.protocol import QUEUED

from ..features.pipeline import TrainingRequest

log = logging.getLogger("clickgauss.server")

SCENE_ID_PATTERN = re.compile(r"^[0-9a-f]{64}$")  # sha256 hex of the PLY bytes
JOB_ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")    # uuid4 hex


@dataclass
class SceneRecord:
    scene_id: str
    ply_path: str
    dataset_path: str | None
    images: str | None
    resolution: int | None
    n_gaussians: int
    sh_degree: int
    n_views: int
    uploaded: bool = False
    name: str = ""                     # the file name people know the scene by (an upload's original name)


@dataclass
class JobRecord:
    job_id: str
    scene_id: str
    request: TrainingRequest           # as validated on submit (a dict when read from disk)
    state: str = QUEUED                # one of protocol.JOB_STATES
    stage: str | None = None           # masks training clustering done
    iteration: int = 0
    total: int = 0
    losses: dict = field(default_factory=dict)
    eta_seconds: float | None = None
    created_at: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    error: dict | None = None          # {"code", "message"} when failed

    def __post_init__(self):
        if not isinstance(self.request, TrainingRequest):  # read back from job.json
            self.request = TrainingRequest.from_json(self.request)

    def to_json(self) -> dict:
        return {**asdict(self), "request": self.request.to_json()}


def write_json_atomic(path: Path, payload: dict) -> None:
    """Write via a temp file + rename so a crash never leaves a half-written record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp_name = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=1, sort_keys=True)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def _read_record(path: Path, record_type):
    """A record from its JSON file, or None (logged) when the file is unreadable or foreign."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        known = {f.name for f in fields(record_type)}
        return record_type(**{key: value for key, value in payload.items() if key in known})
    except (OSError, ValueError, TypeError) as exc:
        log.warning("ignoring unreadable record %s: %s", path, exc)
        return None


def _id_folder(root: Path, pattern: re.Pattern, kind: str, record_id: str) -> Path:
    """`root/<id>`, the id checked first: a request can never name a path."""
    if not pattern.match(record_id):
        raise ValueError(f"not a {kind} id: {record_id!r}")
    return root / record_id


def _read_records(root: Path, file_name: str, record_type, id_of) -> dict:
    """Every readable record under `root/<id>/file_name` whose id matches its folder, by id."""
    records = {}
    for path in sorted(root.glob(f"*/{file_name}")):
        record = _read_record(path, record_type)
        if record is not None and id_of(record) == path.parent.name:
            records[id_of(record)] = record
    return records


class RecordStore:
    def __init__(self, cache_dir: Path):
        self.root = Path(cache_dir)
        for folder in (self.scenes_root, self.jobs_root, self.uploads_dir):
            folder.mkdir(parents=True, exist_ok=True)

    @property
    def scenes_root(self) -> Path:
        return self.root / "scenes"

    @property
    def jobs_root(self) -> Path:
        return self.root / "jobs"

    @property
    def uploads_dir(self) -> Path:
        return self.root / "uploads"

    def scene_dir(self, scene_id: str) -> Path:
        return _id_folder(self.scenes_root, SCENE_ID_PATTERN, "scene", scene_id)

    def field_path(self, scene_id: str) -> Path:
        return self.scene_dir(scene_id) / "field.npz"

    def mask_cache_dir(self, scene_id: str) -> Path:
        return self.scene_dir(scene_id) / "masks"

    def job_dir(self, job_id: str) -> Path:
        return _id_folder(self.jobs_root, JOB_ID_PATTERN, "job", job_id)

    def checkpoint_dir(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "checkpoints"

    def save_scene(self, record: SceneRecord) -> None:
        write_json_atomic(self.scene_dir(record.scene_id) / "scene.json", asdict(record))

    def load_scenes(self) -> dict[str, SceneRecord]:
        return _read_records(self.scenes_root, "scene.json", SceneRecord, lambda record: record.scene_id)

    def save_job(self, record: JobRecord) -> None:
        write_json_atomic(self.job_dir(record.job_id) / "job.json", record.to_json())

    def load_jobs(self) -> dict[str, JobRecord]:
        return _read_records(self.jobs_root, "job.json", JobRecord, lambda record: record.job_id)
