"""The trained feature field kept on the splat object, and the click computed from it inside
Blender (numpy only: clickgauss_core.click), so that a saved .blend clicks, grows and segments
with no backend at all.

On the object:
- point attributes `cg_feature_00` .. `cg_feature_23` (FLOAT): each Gaussian's feature, float32
  (float16 changed selections, see clickgauss_core.stored_field). Point attributes go wherever the Gaussian
  goes: Delete, Separate and Segment Everything keep each Gaussian's feature; export writes only
  the PLY's own properties (the object's layout), never these.
- the custom property `clickgauss_field`: the field's JSON record (cluster centres, level
  slices, calibrated thresholds, what it was trained from).

The click's index (geometry + grid) and the unit level features are built on the first click and
kept in memory, keyed by the mesh (its address and size: Delete, Separate and undo give a new
mesh) and the stored record; moving Gaussians in Edit mode drops it (`forget_edited`, a depsgraph
handler). Per click nothing is looked up by attribute name: in Blender 5.0 each lookup on a big
mesh costs ~0.5 ms, in 4.2 reading vertex positions ~2 ms.
"""

from __future__ import annotations

from dataclasses import dataclass

import bpy
import numpy as np
from clickgauss_core.cameras import Camera
from clickgauss_core.click import ClickIndex, select, unit_rows
from clickgauss_core.stored_field import FieldRecord, StoredFieldError

from .mesh_io import ID_ATTRIBUTE, read_attribute, read_positions, splat_layout, write_attribute

FIELD_KEY = "clickgauss_field"
FEATURE_PREFIX = "cg_feature_"


def feature_attribute_names(feature_dim: int) -> list[str]:
    return [f"{FEATURE_PREFIX}{k:02d}" for k in range(feature_dim)]


def store_field(obj, features_file_order: np.ndarray, record: FieldRecord) -> None:
    """Put the field on the object: each vertex gets the feature of its Gaussian (by `cg_id`)."""
    mesh = obj.data
    ids = read_attribute(mesh, ID_ATTRIBUTE)
    if len(ids) and (ids.max() >= len(features_file_order) or ids.min() < 0):
        raise ValueError(f"object '{obj.name}' has Gaussian id {int(ids.max())} but the feature field has only "
                         f"{len(features_file_order)} Gaussians: it was trained for another file")
    features = np.asarray(features_file_order, dtype=np.float32)[ids]
    for name in [a.name for a in mesh.attributes if a.name.startswith(FEATURE_PREFIX)]:
        mesh.attributes.remove(mesh.attributes.get(name))
    for column, name in enumerate(feature_attribute_names(record.feature_dim)):
        write_attribute(mesh, name, features[:, column], "FLOAT")
    obj[FIELD_KEY] = record.to_json()
    mesh.update()
    forget(obj)


def field_record(obj) -> FieldRecord | None:
    """The object's stored field record, or None when it has none (or its attributes are gone)."""
    if obj is None or FIELD_KEY not in obj:
        return None
    try:
        record = FieldRecord.from_json(str(obj[FIELD_KEY]), f"object '{obj.name}'")
    except StoredFieldError:
        return None
    # The attributes are written and removed together: checking the last one is enough here (one
    # lookup: this runs in panel draws and polls); a missing one is named when they are read.
    return record if obj.data.attributes.get(feature_attribute_names(record.feature_dim)[-1]) is not None else None


def has_stored_field(obj) -> bool:
    return field_record(obj) is not None


def read_features(obj, record: FieldRecord) -> np.ndarray:
    """(n vertices, D) float32 features of the object's Gaussians."""
    try:
        return np.stack([read_attribute(obj.data, name) for name in feature_attribute_names(record.feature_dim)],
                        axis=1)
    except KeyError as exc:
        raise ValueError(f"object '{obj.name}': the stored features are incomplete ({exc.args[0]}): "
                         "train or store the features again") from None


def segment_ids(obj, level: str) -> np.ndarray:
    """Per-vertex global-cluster ids at `level` from the stored field (-1 = noise)."""
    record = field_record(obj)
    if record is None:
        raise ValueError(f"object '{obj.name}' has no stored feature field")
    return record.segment_ids(_prepared(obj, record).features, level)


# -- the click ------------------------------------------------------------------------------
@dataclass
class _Prepared:
    key: tuple
    index: ClickIndex
    features: np.ndarray
    unit_levels: dict


_CACHE: dict[str, _Prepared] = {}


def forget(obj) -> None:
    _CACHE.pop(obj.name, None)


def _cache_key(obj) -> tuple:
    mesh = obj.data
    return mesh.as_pointer(), len(mesh.vertices), str(obj.get(FIELD_KEY, ""))


def forget_edited(_scene, depsgraph) -> None:
    """Depsgraph handler: an object whose geometry changes in Edit mode is indexed again."""
    for update in depsgraph.updates:
        if isinstance(update.id, bpy.types.Object) and update.is_updated_geometry:
            obj = update.id.original
            if obj.mode == "EDIT" and obj.name in _CACHE:
                forget(obj)


def _geometry(obj) -> tuple[np.ndarray, ...]:
    """Activated means, scales, quaternions and opacities of the object's Gaussians (local frame),
    read from the point attributes the PLY's properties live in."""
    mesh = obj.data
    attribute_of = {prop: attribute for prop, _, attribute in splat_layout(obj)}

    def column(prop):
        return read_attribute(mesh, attribute_of[prop]).astype(np.float32)

    means = read_positions(mesh)
    scales = np.exp(np.stack([column(f"scale_{k}") for k in range(3)], axis=1))
    quats = np.stack([column(f"rot_{k}") for k in range(4)], axis=1)
    with np.errstate(over="ignore"):
        opacities = 1.0 / (1.0 + np.exp(-column("opacity")))
    return means, scales, quats, opacities


def _prepared(obj, record: FieldRecord) -> _Prepared:
    key = _cache_key(obj)
    cached = _CACHE.get(obj.name)
    if cached is not None and cached.key == key:
        return cached
    features = read_features(obj, record)
    prepared = _Prepared(key=key, index=ClickIndex(*_geometry(obj)), features=features,
                         unit_levels={level: unit_rows(features[:, record.level_slice(level)])
                                      for level in record.level_slices})
    _CACHE[obj.name] = prepared
    return prepared


@dataclass
class LocalClick:
    selected: np.ndarray       # (n vertices,) bool
    similarity: np.ndarray     # (n vertices,) float32: what the live threshold re-thresholds
    threshold: float
    pixel_feature: np.ndarray  # (D,) the rendered feature of the clicked pixel
    level: str


def local_click(obj, camera: Camera, pixel_xy, level: str, threshold: float | None = None) -> LocalClick:
    """The click from the stored field: the pixel's feature composited from the Gaussians that
    cover it (as the backend's rasterizer does), then cosine similarity at `level`."""
    record = field_record(obj)
    if record is None:
        raise ValueError(f"object '{obj.name}' has no stored feature field: train features first")
    prepared = _prepared(obj, record)
    try:
        feature = prepared.index.composite(camera, pixel_xy).feature(prepared.features)
    except ValueError as exc:
        raise ValueError(f"click: {exc}") from None
    # No threshold: the click's adaptive one, the field's calibrated threshold as its fallback.
    selected, similarity, threshold = select(prepared.unit_levels[level], feature[record.level_slice(level)],
                                             threshold, level, record.thresholds[level])
    return LocalClick(selected, similarity, threshold, feature, level)


def stored_field_bytes(obj) -> int:
    """Bytes the stored field adds to the .blend (attributes + record), for the panel and benchmarks."""
    record = field_record(obj)
    if record is None:
        return 0
    return len(obj.data.vertices) * 4 * len(feature_attribute_names(record.feature_dim)) + len(str(obj[FIELD_KEY]))


def reset_cache() -> None:
    _CACHE.clear()
