"""Selections on splat objects: Blender's vertex selection read and written as arrays, values
over the original file's Gaussians mapped through `cg_id` onto the mesh (`.select_vert` and the
displayed `cg_selected`), new / add / subtract. The click that makes them is click.py."""

from __future__ import annotations

import bpy
import numpy as np

from .mesh_io import (HIDDEN_ATTRIBUTE, ID_ATTRIBUTE, SELECTED_ATTRIBUTE, VERTEX_SELECT_ATTRIBUTE, read_attribute,
                      write_attribute)

MODES = ("NEW", "ADD", "SUBTRACT")


def ensure_object_mode(obj) -> None:
    """Mesh data is only current outside Edit mode: flush edits before reading or writing it."""
    if obj.mode == "EDIT":
        bpy.ops.object.mode_set(mode="OBJECT")


def splat_ids(obj) -> np.ndarray:
    return read_attribute(obj.data, ID_ATTRIBUTE)


def get_selection(obj) -> np.ndarray:
    """The selection: Blender's own vertex selection, the same state in Edit mode and for the
    click (`cg_selected` only mirrors it for the display: `selection_sync`). Object mode only."""
    mesh = obj.data
    if VERTEX_SELECT_ATTRIBUTE not in mesh.attributes:  # Blender drops it when nothing is selected
        return np.zeros(len(mesh.vertices), dtype=bool)
    return read_attribute(mesh, VERTEX_SELECT_ATTRIBUTE)


def set_selection(obj, selected: np.ndarray) -> int:
    """Select exactly `selected` (bool per vertex, hidden ones never); returns the count."""
    mesh = obj.data
    selected = np.asarray(selected, dtype=bool)
    if HIDDEN_ATTRIBUTE in mesh.attributes:
        selected = selected & ~read_attribute(mesh, HIDDEN_ATTRIBUTE)
    write_attribute(mesh, SELECTED_ATTRIBUTE, selected, "BOOLEAN")
    # Edit mode's vertex selection; the attribute is ~100x faster than vertices.foreach_set("select").
    write_attribute(mesh, VERTEX_SELECT_ATTRIBUTE, selected, "BOOLEAN")
    mesh.update()
    return int(selected.sum())


def combine(current: np.ndarray, hit: np.ndarray, mode: str) -> np.ndarray:
    if mode == "NEW":
        return hit
    if mode == "ADD":
        return current | hit
    if mode == "SUBTRACT":
        return current & ~hit
    raise ValueError(f"selection mode must be one of {MODES}, got {mode!r}")


def per_vertex(obj, values_in_file_order: np.ndarray) -> np.ndarray:
    """Values given per Gaussian of the original file, looked up for each remaining vertex."""
    ids = splat_ids(obj)
    if len(ids) and ids.max() >= len(values_in_file_order):
        raise ValueError(f"object '{obj.name}' has Gaussian id {int(ids.max())} but the backend scene has only "
                         f"{len(values_in_file_order)} Gaussians: is it the same file?")
    return np.asarray(values_in_file_order)[ids]


def apply_mask(obj, mask_in_file_order: np.ndarray, mode: str = "NEW") -> int:
    """Apply a selection over the original file's Gaussians to the object; returns the count."""
    ensure_object_mode(obj)
    hit = per_vertex(obj, np.asarray(mask_in_file_order, dtype=bool))
    return set_selection(obj, combine(get_selection(obj), hit, mode))
