"""The trained feature field: one 24-dim feature per Gaussian (PLY order), its global clusters, metadata.

Saved as a plain `.npz` (no pickle): `features` (N, D) float32, `clusters_coarse` / `clusters_fine`
(C, D_level) float32 unit centres, and `metadata_json`, a JSON string with the scene hash, the
view names, the mask source description, the training settings and the format version.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from dataclasses import dataclass, field

import numpy as np

from clickgauss_core.click import SEGMENT_MIN_SIMILARITY, assign_to_clusters
from clickgauss_core.errors import ClickGaussInputError
from clickgauss_core.protocol import COARSE, FINE

from .config import LEVELS, SETTING_RANGES, TrainConfig

FIELD_FORMAT_VERSION = 1
# What a field of N Gaussians may hold once decompressed (an upload is checked before np.load
# allocates anything): N features and at most N + CLUSTER_ALLOWANCE cluster centres of the widest
# allowed feature in float64, and the metadata (settings, view names).
CLUSTER_ALLOWANCE = 4096
MAX_METADATA_BYTES = 16 << 20


class FeatureFieldError(ClickGaussInputError):
    """A feature-field file that cannot be used."""


@dataclass
class FeatureField:
    features: np.ndarray                                   # (N, D) float32, PLY order
    clusters: dict[str, np.ndarray] = field(default_factory=dict)  # level -> (C, D_level) unit centres
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        self.features = np.asarray(self.features, dtype=np.float32)
        for level in LEVELS:
            width = self.level_features(level).shape[1]
            self.clusters[level] = np.asarray(self.clusters.get(level, np.zeros((0, width))),
                                              dtype=np.float32).reshape(-1, width)
        self.metadata.setdefault("version", FIELD_FORMAT_VERSION)

    def __len__(self) -> int:
        return len(self.features)

    @property
    def config(self) -> TrainConfig:
        return TrainConfig.from_dict(self.metadata.get("settings", {}))

    @property
    def scene_hash(self) -> str | None:
        return self.metadata.get("scene_hash")

    def level_features(self, level: str) -> np.ndarray:
        """(N, D_level) features of one level (coarse: the first 12 dims; fine: all 24 with the prior)."""
        return self.features[:, self.config.level_slice(level)]

    def cluster_ids(self, level: str, min_similarity: float = SEGMENT_MIN_SIMILARITY) -> np.ndarray:
        """(N,) global-cluster id per Gaussian at `level` ("segment everything"); -1 = noise."""
        return assign_to_clusters(self.level_features(level), self.clusters[level], min_similarity)

    def save(self, path: str | os.PathLike) -> None:
        path = os.fspath(path)
        with open(path, "wb") as handle:  # a file object keeps numpy from appending ".npz"
            np.savez(handle, features=self.features,
                     clusters_coarse=self.clusters[COARSE], clusters_fine=self.clusters[FINE],
                     metadata_json=np.array(json.dumps(self.metadata, sort_keys=True)))

    @classmethod
    def load(cls, path: str | os.PathLike, expected_gaussians: int | None = None) -> "FeatureField":
        """`expected_gaussians`: the scene's count; an untrusted file's arrays are then checked
        against it before anything is decompressed (a zip bomb, a header declaring 10^12 rows)."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FeatureFieldError(path, "no such feature-field file")
        try:
            if expected_gaussians is not None:
                _check_declared_sizes(path, expected_gaussians)
            with np.load(path, allow_pickle=False) as data:
                missing = {"features", "clusters_coarse", "clusters_fine", "metadata_json"} - set(data.files)
                if missing:
                    raise FeatureFieldError(path, f"not a ClickGauss feature field (missing {', '.join(sorted(missing))})")
                features = data["features"]
                clusters = {COARSE: data["clusters_coarse"], FINE: data["clusters_fine"]}
                metadata_text = str(data["metadata_json"])
        except (zipfile.BadZipFile, ValueError, OSError) as exc:
            if isinstance(exc, FeatureFieldError):
                raise
            # numpy's own wording names its functions and arguments: say what it means instead.
            raise FeatureFieldError(path, "not a readable .npz feature field (the file is damaged, pickled or of "
                                          "another kind)") from exc
        try:
            metadata = json.loads(metadata_text)
        except json.JSONDecodeError as exc:
            raise FeatureFieldError(path, f"metadata is not valid JSON ({exc})") from exc
        version = metadata.get("version")
        if version != FIELD_FORMAT_VERSION:
            raise FeatureFieldError(path, f"feature-field format version {version!r} is not supported "
                                          f"(this build reads version {FIELD_FORMAT_VERSION})")
        if features.ndim != 2 or not np.issubdtype(features.dtype, np.floating):
            raise FeatureFieldError(path, f"features must be a 2-D float array, got {features.dtype} {features.shape}")
        try:
            config = TrainConfig.from_dict(metadata.get("settings", {}))
        except (TypeError, ValueError) as exc:
            raise FeatureFieldError(path, f"bad training settings in metadata ({exc})") from exc
        if features.shape[1] != config.feature_dim:
            raise FeatureFieldError(path, f"features have {features.shape[1]} dims but the settings say {config.feature_dim}")
        return cls(features=features, clusters=clusters, metadata=metadata)


def _check_declared_sizes(path: str, expected_gaussians: int) -> None:
    """Each member's decompressed size (zip directory) and array size (npy header) within what a
    field of `expected_gaussians` can hold. The zip reader never inflates past a member's
    declared size, so bounding the declared sizes bounds the memory."""
    widest = SETTING_RANGES["feature_dim"][1] * np.dtype(np.float64).itemsize
    array_limit = (expected_gaussians + CLUSTER_ALLOWANCE) * widest
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            name = info.filename.removesuffix(".npy")
            limit = MAX_METADATA_BYTES if name == "metadata_json" else array_limit
            where = f"{name}: a field for {expected_gaussians} Gaussians holds at most {limit} bytes"
            if info.file_size > limit + 4096:  # + the npy header
                raise FeatureFieldError(path, f"{where}, this one is {info.file_size} bytes once decompressed")
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read_header(member)
            declared = math.prod(shape) * dtype.itemsize
            if declared > limit:
                raise FeatureFieldError(path, f"{where}, this one declares a {' x '.join(map(str, shape))} "
                                              f"{dtype} array ({declared} bytes)")
