"""The scenes the service knows: records on disk, scenes and feature fields loaded on demand.

`SplatScene.load` keeps recently used scenes in memory itself; this keeps the feature fields next to
them (LRU by scene) so a click costs one 1-pixel render plus one vectorised similarity pass.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from contextlib import nullcontext
from pathlib import Path

from clickgauss_core.confinement import confined_to
from clickgauss_core.errors import ClickGaussInputError
from clickgauss_core.protocol import NO_FEATURES, UNKNOWN_SCENE

from ..features.field import FeatureField
from ..splat_scene import SplatScene
from .errors import ApiError
from .records import SCENE_ID_PATTERN, SceneRecord, RecordStore


class SceneRegistry:
    def __init__(self, store: RecordStore, device: str, field_capacity: int = 4, data_roots: list[Path] | None = None):
        """`data_roots`: every dataset file (cameras, images) must resolve inside them (None: anywhere)."""
        self.store = store
        self.device = device
        self.data_roots = data_roots
        self.field_capacity = field_capacity
        self._lock = threading.RLock()
        self._records: dict[str, SceneRecord] = store.load_scenes()
        self._fields: "OrderedDict[str, FeatureField]" = OrderedDict()

    # records -----------------------------------------------------------------------------------
    def record(self, scene_id: str) -> SceneRecord:
        with self._lock:
            record = self._records.get(scene_id) if SCENE_ID_PATTERN.match(scene_id) else None
        if record is None:
            raise ApiError(404, UNKNOWN_SCENE, "the backend does not know this scene (it was never opened here, "
                                                 "or the backend now uses another cache folder): open the scene again")
        return record

    def is_known(self, scene_id: str) -> bool:
        with self._lock:
            return scene_id in self._records

    def records(self) -> list[SceneRecord]:
        with self._lock:
            return list(self._records.values())

    def name(self, scene_id: str) -> str:
        """The scene's file name for messages ("this scene" when it is unknown)."""
        with self._lock:
            record = self._records.get(scene_id)
        return "this scene" if record is None else scene_name(record)

    def open(self, ply_path: Path, dataset_path: Path | None, images: str | None,
             resolution: int | None, uploaded: bool = False, name: str = "") -> SceneRecord:
        """Load the PLY (+ dataset), remember it under its content hash and return its record."""
        scene = self._load(ply_path, dataset_path, images, resolution)
        record = SceneRecord(scene_id=scene.content_hash, ply_path=os.fspath(ply_path),
                             dataset_path=None if dataset_path is None else os.fspath(dataset_path),
                             images=images, resolution=resolution, n_gaussians=len(scene.cloud),
                             sh_degree=int(scene.cloud.sh_degree), n_views=len(scene.views),
                             uploaded=uploaded, name=name or ply_path.name)
        with self._lock:
            self.store.save_scene(record)
            self._records[record.scene_id] = record
        return record

    # loaded state ------------------------------------------------------------------------------
    def scene(self, scene_id: str) -> SplatScene:
        """The loaded scene, reopened from its recorded path when it is not in memory."""
        record = self.record(scene_id)
        if not os.path.isfile(record.ply_path):
            if record.uploaded:
                raise ApiError(404, UNKNOWN_SCENE, f"{scene_name(record)}: the backend's copy of the file is gone "
                                                     "(its cache was cleared): open the scene again to send it again")
            raise ApiError(404, UNKNOWN_SCENE, f"{scene_name(record)}: the file is no longer at {record.ply_path}: "
                                                 "open the scene again from where the file is now")
        try:
            scene = self._load(record.ply_path, record.dataset_path, record.images, record.resolution)
        except ClickGaussInputError as exc:
            raise ApiError(404, UNKNOWN_SCENE, f"{scene_name(record)} can no longer be loaded ({exc.problem}): "
                                                 "check the file and its dataset, then open the scene again") from exc
        if scene.content_hash != scene_id:
            raise ApiError(404, UNKNOWN_SCENE, f"{scene_name(record)} has changed on disk since it was opened: "
                                                 "open the scene again (and train its features again)")
        return scene

    def _load(self, ply_path, dataset_path, images, resolution) -> SplatScene:
        with nullcontext() if self.data_roots is None else confined_to(self.data_roots):
            return SplatScene.load(ply_path, dataset_path, images=images, resolution=resolution, device=self.device)

    def has_field(self, scene_id: str) -> bool:
        with self._lock:
            return scene_id in self._fields or self.store.field_path(scene_id).is_file()

    def field(self, scene_id: str) -> FeatureField:
        self.record(scene_id)
        with self._lock:
            if scene_id in self._fields:
                self._fields.move_to_end(scene_id)
                return self._fields[scene_id]
            path = self.store.field_path(scene_id)
            if not path.is_file():
                raise ApiError(409, NO_FEATURES, f"{scene_name(self._records[scene_id])} has no trained features "
                                                   "yet: train its features first, or load features saved earlier")
            field = FeatureField.load(path)
            self._remember_field(scene_id, field)
            return field

    def install_field(self, scene_id: str, field: FeatureField, saved_at: Path | None = None) -> None:
        """Make `field` the scene's feature field, on disk and in memory.

        `saved_at` is a file already holding it (an upload): it is moved into place instead of
        saving again. The rename is atomic, so a concurrent download sees the old or the new file.
        """
        target = self.store.field_path(scene_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        if saved_at is None:
            saved_at = target.with_name("field.saving.npz")
            field.save(saved_at)
        with self._lock:
            os.replace(saved_at, target)
            self._remember_field(scene_id, field)

    def _remember_field(self, scene_id: str, field: FeatureField) -> None:
        self._fields[scene_id] = field
        self._fields.move_to_end(scene_id)
        while len(self._fields) > self.field_capacity:
            self._fields.popitem(last=False)


def scene_name(record: SceneRecord) -> str:
    """How messages name a scene: its file name (an upload's original name), never its hash."""
    return record.name or os.path.basename(record.ply_path)


def detect_dataset(ply_path: Path) -> Path | None:
    """The dataset of an INRIA output folder next to the PLY, if there is one."""
    from clickgauss_core.datasets import find_dataset_for_ply

    found = find_dataset_for_ply(ply_path)
    return None if found is None else Path(found)
