"""Gaussian cloud <-> Blender mesh: a vertices-only mesh whose point attributes are the PLY
properties (by name, file order recorded on the object), plus the add-on's own attributes:
`cg_id` (index in the original file, survives deletions), `cg_color` (display colour from the SH
DC term), `cg_selected` and `cg_hidden` (selection and hide state the display shows in Object mode).
Properties whose names Blender reserves are stored under a safe name, float64 ones with their
exact bits beside them (`property_storage`); export writes back the original names and values.

Everything goes through numpy + foreach_get/foreach_set: a million Gaussians in seconds.
"""

from __future__ import annotations

import json

import bpy
import numpy as np
from mathutils import Matrix
from clickgauss_core.gaussians import GaussianCloud

from ..property_storage import attribute_names, exact_bits_names, merge_float64, safe_name, float64_bits
from ..splat_math import srgb_to_linear

LAYOUT_KEY = "clickgauss_layout"      # JSON [[property, numpy dtype str, attribute name], ...] in file order
SOURCE_KEY = "clickgauss_source"      # path of the file it was imported from
COMMENTS_KEY = "clickgauss_comments"  # JSON list of the PLY header comments
FRAME_KEY = "clickgauss_frame"        # 16 floats: matrix_world given at import (file frame -> world)
ID_ATTRIBUTE = "cg_id"
COLOR_ATTRIBUTE = "cg_color"
SELECTED_ATTRIBUTE = "cg_selected"
HIDDEN_ATTRIBUTE = "cg_hidden"
VERTEX_SELECT_ATTRIBUTE = ".select_vert"  # Blender's own vertex selection / hide state
VERTEX_HIDE_ATTRIBUTE = ".hide_vert"
POSITION_PROPERTIES = ("x", "y", "z")

# Blender attribute type -> (foreach key, numpy dtype, components)
_ATTRIBUTE_LAYOUT = {
    "FLOAT": ("value", np.float32, 1),
    "INT": ("value", np.int32, 1),
    "INT8": ("value", np.int8, 1),
    "BOOLEAN": ("value", np.bool_, 1),
    "FLOAT_COLOR": ("color", np.float32, 4),
    "BYTE_COLOR": ("color", np.float32, 4),
    "FLOAT_VECTOR": ("vector", np.float32, 3),
    "FLOAT2": ("vector", np.float32, 2),
}


def is_splat_object(obj) -> bool:
    return obj is not None and obj.type == "MESH" and LAYOUT_KEY in obj


def read_attribute(mesh: bpy.types.Mesh, name: str) -> np.ndarray:
    """A point attribute as a numpy array ((N,) or (N, components))."""
    attribute = mesh.attributes.get(name)
    if attribute is None:
        raise KeyError(f"mesh '{mesh.name}' has no attribute '{name}'")
    key, dtype, components = _ATTRIBUTE_LAYOUT[attribute.data_type]
    values = np.empty(len(mesh.vertices) * components, dtype=dtype)
    attribute.data.foreach_get(key, values)
    return values if components == 1 else values.reshape(-1, components)


def write_attribute(mesh: bpy.types.Mesh, name: str, values: np.ndarray, data_type: str) -> None:
    """Create (or replace, if its type differs) a point attribute and fill it."""
    attribute = mesh.attributes.get(name)
    if attribute is not None and (attribute.data_type != data_type or attribute.domain != "POINT"):
        mesh.attributes.remove(attribute)
        attribute = None
    if attribute is None:
        attribute = mesh.attributes.new(name, data_type, "POINT")
    key, dtype, _ = _ATTRIBUTE_LAYOUT[data_type]
    attribute.data.foreach_set(key, np.ascontiguousarray(values, dtype=dtype).ravel())


def read_positions(mesh: bpy.types.Mesh) -> np.ndarray:
    positions = np.empty(len(mesh.vertices) * 3, dtype=np.float32)
    mesh.vertices.foreach_get("co", positions)
    return positions.reshape(-1, 3)


def _blender_type_for(dtype: np.dtype) -> str:
    return "FLOAT" if dtype.kind == "f" else "INT"


def _to_blender_values(values: np.ndarray) -> np.ndarray:
    """PLY property values as Blender stores them: float32, or int32 (uint32 bit-reinterpreted,
    so packed values survive bit for bit)."""
    if values.dtype.kind == "f":
        with np.errstate(over="ignore"):  # float64 beyond float32's range: +-inf here, exact bits kept aside
            return values.astype(np.float32, copy=False)
    if values.dtype.itemsize == 4 and values.dtype.kind == "u":
        return values.astype(values.dtype.newbyteorder("="), copy=False).view(np.int32)
    return values.astype(np.int32)


def _from_blender_values(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype.kind == "u" and dtype.itemsize == 4:
        return values.astype(np.int32, copy=False).view(np.uint32)
    return values.astype(dtype)


def display_colors(cloud: GaussianCloud) -> np.ndarray:
    """(N, 4) linear RGBA: base colour from f_dc (sRGB in 3DGS) and the activated opacity."""
    rgba = np.empty((len(cloud), 4), dtype=np.float32)
    rgba[:, :3] = srgb_to_linear(cloud.colors)
    rgba[:, 3] = cloud.opacities
    return rgba


def create_splat_mesh(cloud: GaussianCloud, name: str) -> tuple[bpy.types.Mesh, list[list[str]]]:
    """A vertices-only mesh holding every property of `cloud` as a point attribute, and its
    layout ([property, dtype, attribute name] in file order). Nothing is left behind on failure."""
    mesh = bpy.data.meshes.new(name)
    try:
        layout = _fill_splat_mesh(mesh, cloud)
    except BaseException:
        bpy.data.meshes.remove(mesh)
        raise
    return mesh, layout


def _fill_splat_mesh(mesh: bpy.types.Mesh, cloud: GaussianCloud) -> list[list[str]]:
    n = len(cloud)
    mesh.vertices.add(n)
    mesh.vertices.foreach_set("co", cloud.positions.ravel())
    names = attribute_names(cloud.properties)
    taken = set(names.values())
    layout = []
    for index, (prop, values) in enumerate(cloud.properties.items()):
        values = np.asarray(values)
        attribute = names[prop]
        if prop not in POSITION_PROPERTIES:
            data_type = _blender_type_for(values.dtype)
            if not _try_write_attribute(mesh, attribute, _to_blender_values(values), data_type):
                # A name this Blender version refuses or renames: store it under a safe one.
                attribute = safe_name(prop, taken | set(mesh.attributes.keys()))
                taken.add(attribute)
                write_attribute(mesh, attribute, _to_blender_values(values), data_type)
        if values.dtype == np.float64:
            low, high = float64_bits(values)
            for bits_name, bits in zip(exact_bits_names(index), (low, high)):
                write_attribute(mesh, bits_name, bits, "INT")
        layout.append([prop, values.dtype.newbyteorder("<").str, attribute])
    write_attribute(mesh, ID_ATTRIBUTE, np.arange(n, dtype=np.int32), "INT")
    write_attribute(mesh, COLOR_ATTRIBUTE, display_colors(cloud), "FLOAT_COLOR")
    write_attribute(mesh, SELECTED_ATTRIBUTE, np.zeros(n, dtype=bool), "BOOLEAN")
    write_attribute(mesh, VERTEX_SELECT_ATTRIBUTE, np.zeros(n, dtype=bool), "BOOLEAN")  # new vertices come selected
    write_attribute(mesh, HIDDEN_ATTRIBUTE, np.zeros(n, dtype=bool), "BOOLEAN")
    mesh.color_attributes.active_color = mesh.color_attributes[COLOR_ATTRIBUTE]
    mesh.update()
    return layout


def _try_write_attribute(mesh: bpy.types.Mesh, name: str, values: np.ndarray, data_type: str) -> bool:
    """Create and fill a new point attribute `name`; False (and nothing left) if Blender refuses
    the name or would store it under another one (`position` -> `position.001`)."""
    if name in mesh.attributes:
        return False
    attribute = mesh.attributes.new(name, data_type, "POINT")
    if attribute is None:
        return False
    if attribute.name != name or attribute.domain != "POINT" or attribute.data_type != data_type:
        mesh.attributes.remove(attribute)
        return False
    write_attribute(mesh, name, values, data_type)
    return True


def copy_splat_metadata(source: bpy.types.Object, target: bpy.types.Object) -> None:
    for key in (LAYOUT_KEY, SOURCE_KEY, COMMENTS_KEY, FRAME_KEY):
        if key in source:
            target[key] = source[key]


def create_splat_object(context, cloud: GaussianCloud, name: str, matrix_world) -> bpy.types.Object:
    """Link a new splat object to the active collection; `matrix_world` maps the file's frame
    into the scene (identity, or an axis conversion to Z-up) and is remembered for export."""
    mesh, layout = create_splat_mesh(cloud, name)
    obj = bpy.data.objects.new(name, mesh)
    obj[LAYOUT_KEY] = json.dumps(layout)
    obj[SOURCE_KEY] = cloud.source or ""
    obj[COMMENTS_KEY] = json.dumps(list(cloud.comments))
    rows = np.asarray(matrix_world, dtype=np.float64).reshape(4, 4)
    obj.matrix_world = Matrix(rows.tolist())  # rows: a plain nested list would be read as columns
    obj[FRAME_KEY] = rows.ravel().tolist()
    context.collection.objects.link(obj)
    return obj


def import_frame(obj) -> np.ndarray:
    """The file-frame -> world matrix the object was imported with (identity if unknown)."""
    if FRAME_KEY not in obj:
        return np.eye(4)
    return np.asarray(list(obj[FRAME_KEY]), dtype=np.float64).reshape(4, 4)


def splat_layout(obj) -> list[tuple[str, np.dtype, str]]:
    """(property, dtype, attribute name) in file order; layouts saved before safe names existed
    have two entries (the attribute is the property's own name)."""
    return [(entry[0], np.dtype(entry[1]), entry[2] if len(entry) > 2 else entry[0])
            for entry in json.loads(obj[LAYOUT_KEY])]


def cloud_from_object(obj) -> GaussianCloud:
    """The object's Gaussians in its own (local = file) frame, every original property with the
    original type and name, in file order; deleted vertices are gone, edits (recolour, moved
    vertices) included. Works in Edit mode: the edit-mesh is synced into a copy first."""
    if obj.mode != "EDIT":
        return _cloud_from_mesh(obj, obj.data)
    obj.update_from_editmode()
    # The edit-mesh owns the attribute data while in Edit mode (their RNA arrays read as empty):
    # a copy of the synced mesh holds it all.
    mesh = obj.data.copy()
    try:
        return _cloud_from_mesh(obj, mesh)
    finally:
        bpy.data.meshes.remove(mesh)


def _cloud_from_mesh(obj, mesh: bpy.types.Mesh) -> GaussianCloud:
    props: dict[str, np.ndarray] = {}
    positions = read_positions(mesh)
    for index, (prop, dtype, attribute) in enumerate(splat_layout(obj)):
        if prop in POSITION_PROPERTIES:
            values = positions[:, POSITION_PROPERTIES.index(prop)]
        elif attribute in mesh.attributes:
            values = read_attribute(mesh, attribute)
        else:
            raise ValueError(f"object '{obj.name}': the Gaussian property '{prop}' (point attribute "
                             f"'{attribute}') was removed, so the object cannot be exported as a 3D "
                             "Gaussian Splatting PLY")
        low_name, high_name = exact_bits_names(index)
        if dtype == np.float64 and low_name in mesh.attributes and high_name in mesh.attributes:
            props[prop] = merge_float64(values, read_attribute(mesh, low_name), read_attribute(mesh, high_name))
        else:
            props[prop] = _from_blender_values(values, dtype)
    comments = json.loads(obj[COMMENTS_KEY]) if COMMENTS_KEY in obj else []
    return GaussianCloud(props, source=obj.get(SOURCE_KEY) or None, comments=comments)


def read_point_attributes(mesh: bpy.types.Mesh) -> dict[str, tuple[str, np.ndarray]]:
    """Every point attribute of a supported type (not position, not Blender-internal '.' ones):
    name -> (Blender data type, values)."""
    return {attribute.name: (attribute.data_type, read_attribute(mesh, attribute.name))
            for attribute in list(mesh.attributes)
            if attribute.name != "position" and not attribute.name.startswith(".")
            and attribute.domain == "POINT" and attribute.data_type in _ATTRIBUTE_LAYOUT}


def mesh_subset(mesh: bpy.types.Mesh, keep: np.ndarray, name: str | None = None,
                attributes: dict[str, tuple[str, np.ndarray]] | None = None,
                positions: np.ndarray | None = None) -> bpy.types.Mesh:
    """A new vertices-only mesh with the vertices `keep` (bool per vertex) of `mesh`, its point
    attributes carried over (Blender-internal ones are rebuilt), materials kept. Pass the
    `attributes` / `positions` read once when cutting one mesh into many pieces."""
    keep = np.asarray(keep, dtype=bool)
    attributes = read_point_attributes(mesh) if attributes is None else attributes
    positions = read_positions(mesh) if positions is None else positions
    subset = bpy.data.meshes.new(name or mesh.name)
    subset.vertices.add(int(keep.sum()))
    subset.vertices.foreach_set("co", positions[keep].ravel())
    for attribute_name, (data_type, values) in attributes.items():
        write_attribute(subset, attribute_name, values[keep], data_type)
    for flag in (VERTEX_SELECT_ATTRIBUTE, VERTEX_HIDE_ATTRIBUTE):  # Blender's own: the selection is one of them
        values = read_attribute(mesh, flag) if flag in mesh.attributes else np.zeros(len(keep), dtype=bool)
        write_attribute(subset, flag, values[keep], "BOOLEAN")
    if COLOR_ATTRIBUTE in subset.color_attributes:
        subset.color_attributes.active_color = subset.color_attributes[COLOR_ATTRIBUTE]
    for material in mesh.materials:
        subset.materials.append(material)
    subset.update()
    return subset


def replace_mesh(obj: bpy.types.Object, mesh: bpy.types.Mesh) -> None:
    """Give `obj` a new mesh and drop the old one when nothing else uses it."""
    old = obj.data
    obj.data = mesh
    if old.users == 0:
        bpy.data.meshes.remove(old)
