"""Editing splat objects by their selection (numpy over point attributes, Object mode): delete,
separate, hide / isolate / reveal, invert, grow to whole segments, recolour, split into one object
per segment. Segment ids come from the backend's segment-everything (PLY order, -1 = noise)."""

from __future__ import annotations

import bpy
import numpy as np

from ..splat_math import sh_dc_from_color, srgb_to_linear
from .display import ensure_display
from .field_storage import FIELD_KEY
from .mesh_io import (COLOR_ATTRIBUTE, HIDDEN_ATTRIBUTE, VERTEX_HIDE_ATTRIBUTE, copy_splat_metadata, mesh_subset,
                      read_attribute, read_point_attributes, read_positions, replace_mesh, write_attribute)
from .selection import ensure_object_mode, get_selection, per_vertex, set_selection


def _hidden(obj) -> np.ndarray:
    return read_attribute(obj.data, HIDDEN_ATTRIBUTE)


def _set_hidden(obj, hidden: np.ndarray) -> None:
    hidden = np.asarray(hidden, dtype=bool)
    write_attribute(obj.data, HIDDEN_ATTRIBUTE, hidden, "BOOLEAN")
    write_attribute(obj.data, VERTEX_HIDE_ATTRIBUTE, hidden, "BOOLEAN")  # Edit mode hides them as well
    set_selection(obj, get_selection(obj) & ~hidden)


def delete_selected(obj) -> int:
    """Remove the selected Gaussians from the object; returns how many were removed."""
    ensure_object_mode(obj)
    selected = get_selection(obj)
    if selected.any():
        replace_mesh(obj, mesh_subset(obj.data, ~selected))
    return int(selected.sum())


def separate_selected(context, obj) -> bpy.types.Object | None:
    """Move the selected Gaussians into a new splat object (same transform); None if nothing is selected."""
    ensure_object_mode(obj)
    selected = get_selection(obj)
    if not selected.any():
        return None
    part = bpy.data.objects.new(f"{obj.name}.part", mesh_subset(obj.data, selected, f"{obj.data.name}.part"))
    copy_splat_metadata(obj, part)
    part.matrix_world = obj.matrix_world
    for collection in obj.users_collection:
        collection.objects.link(part)
    ensure_display(part)
    set_selection(part, np.zeros(len(part.data.vertices), dtype=bool))
    replace_mesh(obj, mesh_subset(obj.data, ~selected))
    _copy_backend_settings(obj, part)
    return part


def hide_selected(obj) -> int:
    ensure_object_mode(obj)
    selected = get_selection(obj)
    _set_hidden(obj, _hidden(obj) | selected)
    return int(selected.sum())


def isolate_selected(obj) -> int:
    """Hide everything but the selection."""
    ensure_object_mode(obj)
    selected = get_selection(obj)
    _set_hidden(obj, ~selected)
    return int((~selected).sum())


def reveal_all(obj) -> None:
    ensure_object_mode(obj)
    _set_hidden(obj, np.zeros(len(obj.data.vertices), dtype=bool))


def invert_selection(obj) -> int:
    ensure_object_mode(obj)
    return set_selection(obj, ~get_selection(obj))


def clear_selection(obj) -> None:
    ensure_object_mode(obj)
    set_selection(obj, np.zeros(len(obj.data.vertices), dtype=bool))


def grow_to_segments(obj, segment_ids_file_order: np.ndarray) -> int:
    """Select every Gaussian whose segment (at the level the ids come from) has a selected
    Gaussian: a fine click grows to its whole coarse object. Noise (-1) never grows."""
    ensure_object_mode(obj)
    return grow_to_vertex_segments(obj, per_vertex(obj, segment_ids_file_order))


def grow_to_vertex_segments(obj, segments: np.ndarray) -> int:
    """`grow_to_segments` with one segment id per vertex (from the features stored on the object)."""
    ensure_object_mode(obj)
    selected = get_selection(obj)
    touched = np.unique(segments[selected & (segments >= 0)])
    return set_selection(obj, selected | np.isin(segments, touched))


def recolor_selected(obj, color_srgb, zero_view_dependent: bool = True) -> int:
    """Give the selected Gaussians the base colour `color_srgb` (writes f_dc_0..2, and zeroes
    f_rest_* when `zero_view_dependent`, so the colour is the same from every side)."""
    ensure_object_mode(obj)
    mesh = obj.data
    selected = get_selection(obj)
    dc = sh_dc_from_color(color_srgb)
    for i in range(3):
        values = read_attribute(mesh, f"f_dc_{i}")
        values[selected] = dc[i]
        write_attribute(mesh, f"f_dc_{i}", values, "FLOAT")
    if zero_view_dependent:
        for name in [a.name for a in mesh.attributes if a.name.startswith("f_rest_")]:
            values = read_attribute(mesh, name)
            values[selected] = 0.0
            write_attribute(mesh, name, values, "FLOAT")
    colors = read_attribute(mesh, COLOR_ATTRIBUTE)
    colors[selected, :3] = srgb_to_linear(np.clip(np.asarray(color_srgb, dtype=np.float32), 0.0, 1.0))
    write_attribute(mesh, COLOR_ATTRIBUTE, colors, "FLOAT_COLOR")
    mesh.update()
    return int(selected.sum())


def split_by_segments(context, obj, segment_ids_file_order: np.ndarray) -> list[bpy.types.Object]:
    """One new splat object per segment (noise -> '<name>.unassigned') in a new collection; the
    source object is hidden. Returns the new objects, largest segment first."""
    ensure_object_mode(obj)
    return split_by_vertex_segments(context, obj, per_vertex(obj, segment_ids_file_order))


def split_by_vertex_segments(context, obj, segments: np.ndarray) -> list[bpy.types.Object]:
    """`split_by_segments` with one segment id per vertex (from the features stored on the object)."""
    ensure_object_mode(obj)
    collection = bpy.data.collections.new(f"{obj.name} segments")
    context.scene.collection.children.link(collection)
    ids, counts = np.unique(segments, return_counts=True)
    attributes, positions = read_point_attributes(obj.data), read_positions(obj.data)  # once, not per segment
    created = []
    for segment in ids[np.argsort(-counts, kind="stable")]:
        keep = segments == segment
        label = "unassigned" if segment < 0 else f"segment_{int(segment):03d}"
        mesh = mesh_subset(obj.data, keep, f"{obj.data.name}.{label}", attributes, positions)
        part = bpy.data.objects.new(f"{obj.name}.{label}", mesh)
        copy_splat_metadata(obj, part)
        part.matrix_world = obj.matrix_world
        collection.objects.link(part)
        ensure_display(part)
        _copy_backend_settings(obj, part)
        created.append(part)
    obj.hide_set(True)
    return created


def _copy_backend_settings(source, target) -> None:
    """A part of a scene is clicked against the same backend scene (ids map through cg_id)."""
    for key in ("dataset_path", "masks_source", "masks_path", "preset", "scene_id", "dataset_found", "dataset_nearby",
                "has_features", "view_count", "use_scene_cameras"):
        setattr(target.clickgauss, key, getattr(source.clickgauss, key))
    if FIELD_KEY in source:  # the features themselves travel as point attributes
        target[FIELD_KEY] = source[FIELD_KEY]
