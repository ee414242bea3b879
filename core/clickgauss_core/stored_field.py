"""A trained feature field as the add-on keeps it with the splat object (pure numpy, no bpy).

The backend's field file (`FeatureField.save`: an .npz of `features` (N, D) float32 in PLY order,
`clusters_coarse`, `clusters_fine` and `metadata_json`) becomes
- the per-Gaussian features, float32 point attributes (one per dim). Not float16: rounding the
  features to float16 flipped Gaussians near the threshold (worst IoU 0.997 against the backend's
  click over 100 clicks on the tiny scene), and the click must select what the backend selects;
- a JSON record (`FieldRecord`): the global cluster centres per level, the level slices, the
  calibrated thresholds, and what the field was trained from (scene hash, views, mask source,
  settings).
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field

import numpy as np

from .click import DEFAULT_THRESHOLDS, SEGMENT_MIN_SIMILARITY, assign_to_clusters, level_slice
from .errors import ClickGaussInputError
from .protocol import COARSE, FINE, LEVELS

RECORD_VERSION = 1
FIELD_ARRAYS = ("features", "clusters_coarse", "clusters_fine", "metadata_json")


class StoredFieldError(ClickGaussInputError):
    """A feature field (file, download or stored record) that cannot be used."""


@dataclass
class FieldRecord:
    """Everything about a field but the per-Gaussian features (small: kept as JSON)."""

    clusters: dict[str, np.ndarray]           # level -> (C, D_level) unit centres
    level_slices: dict[str, tuple[int, int]]  # level -> (start, stop) dims of the feature
    thresholds: dict[str, float]              # calibrated default threshold per level
    feature_dim: int
    trained_from: dict = field(default_factory=dict)  # the field's metadata (scene hash, views, masks, settings)

    def level_slice(self, level: str) -> slice:
        if level not in LEVELS:
            raise ValueError(f"unknown level {level!r}; expected one of {LEVELS}")
        return slice(*self.level_slices[level])

    def segment_ids(self, features: np.ndarray, level: str) -> np.ndarray:
        """(N,) global-cluster id of each feature row at `level` (segment everything); -1 = noise."""
        return assign_to_clusters(features[:, self.level_slice(level)], self.clusters[level], SEGMENT_MIN_SIMILARITY)

    def to_json(self) -> str:
        return json.dumps({"version": RECORD_VERSION, "feature_dim": self.feature_dim,
                           "clusters": {level: self.clusters[level].tolist() for level in LEVELS},
                           "level_slices": {level: list(self.level_slices[level]) for level in LEVELS},
                           "thresholds": self.thresholds, "trained_from": self.trained_from}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: str | None = None) -> "FieldRecord":
        try:
            data = json.loads(text)
            if data.get("version") != RECORD_VERSION:
                raise StoredFieldError(where, f"stored feature field version {data.get('version')!r} is not "
                                              f"supported (this build reads {RECORD_VERSION})")
            feature_dim = int(data["feature_dim"])
            slices = {level: (int(data["level_slices"][level][0]), int(data["level_slices"][level][1]))
                      for level in LEVELS}
            clusters = {level: np.asarray(data["clusters"][level], dtype=np.float32).reshape(
                -1, slices[level][1] - slices[level][0]) for level in LEVELS}
            thresholds = {level: float(data["thresholds"][level]) for level in LEVELS}
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise StoredFieldError(where, f"the stored feature field record is damaged ({exc})") from None
        return cls(clusters=clusters, level_slices=slices, thresholds=thresholds, feature_dim=feature_dim,
                   trained_from=dict(data.get("trained_from") or {}))


def read_field_archive(data: bytes, where: str | None = None) -> tuple[np.ndarray, FieldRecord]:
    """(features (N, D) float32, record) from the bytes of a backend field .npz."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            missing = [name for name in FIELD_ARRAYS if name not in archive.files]
            if missing:
                raise StoredFieldError(where, f"not a ClickGauss feature field (missing {', '.join(missing)})")
            features = np.asarray(archive["features"], dtype=np.float32)
            clusters = {COARSE: archive["clusters_coarse"], FINE: archive["clusters_fine"]}
            metadata = json.loads(str(archive["metadata_json"]))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise StoredFieldError(where, f"not a readable feature-field .npz ({exc})") from None
    if features.ndim != 2 or features.shape[1] == 0 or not np.isfinite(features).all():
        raise StoredFieldError(where, f"features must be a finite (N, D) array, got shape {features.shape}")
    settings = metadata.get("settings") or {}
    feature_dim = int(settings.get("feature_dim", features.shape[1]))
    if feature_dim != features.shape[1]:
        raise StoredFieldError(where, f"features have {features.shape[1]} dims but the settings say {feature_dim}")
    slices = {}
    for level in LEVELS:
        part = level_slice(level, int(settings.get("coarse_dim", 12)), feature_dim,
                           bool(settings.get("granularity_prior", True)))
        slices[level] = (part.start, part.stop)
        width = part.stop - part.start
        clusters[level] = np.asarray(clusters[level], dtype=np.float32).reshape(-1, width)
    record = FieldRecord(clusters=clusters, level_slices=slices, thresholds=dict(DEFAULT_THRESHOLDS),
                         feature_dim=feature_dim, trained_from=metadata)
    return features, record
