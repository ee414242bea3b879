"""How splats look in Object mode: a Geometry Nodes modifier turns the vertices into points sized
by their Gaussian scale and hides `cg_hidden` ones; a material colours them from `cg_color` and
mixes in a highlight for `cg_selected`.

Built through the API by socket identifier/name (never by index: sockets differ between Blender
4.2 and 5.0), the group interface through `interface.new_socket`.
"""

from __future__ import annotations

import bpy

from .mesh_io import COLOR_ATTRIBUTE, HIDDEN_ATTRIBUTE, SELECTED_ATTRIBUTE

NODE_GROUP_NAME = "ClickGauss Splat Display"
MATERIAL_NAME = "ClickGauss Splat"
MODIFIER_NAME = "ClickGauss Display"
POINT_SCALE_INPUT = "Point Scale"
HIGHLIGHT_COLOR = (1.0, 0.35, 0.0, 1.0)
HIGHLIGHT_STRENGTH = 0.75  # how much of the highlight colour a selected splat shows


def _socket(sockets, identifier: str):
    """A node socket by its identifier (stable across versions; unique, unlike some names)."""
    for socket in sockets:
        if socket.identifier == identifier:
            return socket
    raise KeyError(f"no socket '{identifier}' among {[s.identifier for s in sockets]}")


def splat_material() -> bpy.types.Material:
    material = bpy.data.materials.get(MATERIAL_NAME)
    if material is not None:
        return material
    material = bpy.data.materials.new(MATERIAL_NAME)
    if bpy.app.version < (5, 0):  # always node-based from 5.0 on (the flag is deprecated there)
        material.use_nodes = True
    tree = material.node_tree
    tree.nodes.clear()
    color = tree.nodes.new("ShaderNodeAttribute")
    color.attribute_type = "GEOMETRY"
    color.attribute_name = COLOR_ATTRIBUTE
    selected = tree.nodes.new("ShaderNodeAttribute")
    selected.attribute_type = "GEOMETRY"
    selected.attribute_name = SELECTED_ATTRIBUTE
    strength = tree.nodes.new("ShaderNodeMath")
    strength.operation = "MULTIPLY"
    _socket(strength.inputs, "Value_001").default_value = HIGHLIGHT_STRENGTH
    mix = tree.nodes.new("ShaderNodeMix")
    mix.data_type = "RGBA"
    _socket(mix.inputs, "B_Color").default_value = HIGHLIGHT_COLOR
    emission = tree.nodes.new("ShaderNodeEmission")
    output = tree.nodes.new("ShaderNodeOutputMaterial")
    links = tree.links
    links.new(selected.outputs["Fac"], _socket(strength.inputs, "Value"))
    links.new(strength.outputs["Value"], _socket(mix.inputs, "Factor_Float"))
    links.new(color.outputs["Color"], _socket(mix.inputs, "A_Color"))
    links.new(_socket(mix.outputs, "Result_Color"), emission.inputs["Color"])
    links.new(emission.outputs["Emission"], output.inputs["Surface"])
    for x, node in enumerate((selected, strength, mix, emission, output)):
        node.location = (x * 220, 0)
    color.location = (220, -200)
    return material


def _named_attribute(tree, name: str, data_type: str):
    node = tree.nodes.new("GeometryNodeInputNamedAttribute")
    node.data_type = data_type
    node.inputs["Name"].default_value = name
    return node


def splat_node_group() -> bpy.types.NodeTree:
    group = bpy.data.node_groups.get(NODE_GROUP_NAME)
    if group is not None:
        return group
    group = bpy.data.node_groups.new(NODE_GROUP_NAME, "GeometryNodeTree")
    group.interface.new_socket(name="Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
    scale_socket = group.interface.new_socket(name=POINT_SCALE_INPUT, in_out="INPUT", socket_type="NodeSocketFloat")
    scale_socket.default_value = 1.0
    scale_socket.min_value = 0.0
    group.interface.new_socket(name="Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
    nodes, links = group.nodes, group.links
    group_input = nodes.new("NodeGroupInput")
    group_output = nodes.new("NodeGroupOutput")

    # radius = exp(max(scale_0, scale_1, scale_2)) * point scale: the Gaussian's largest axis.
    scales = [_named_attribute(group, f"scale_{i}", "FLOAT") for i in range(3)]
    max_01 = nodes.new("ShaderNodeMath")
    max_01.operation = "MAXIMUM"
    max_012 = nodes.new("ShaderNodeMath")
    max_012.operation = "MAXIMUM"
    exponent = nodes.new("ShaderNodeMath")
    exponent.operation = "EXPONENT"
    radius = nodes.new("ShaderNodeMath")
    radius.operation = "MULTIPLY"
    links.new(scales[0].outputs["Attribute"], _socket(max_01.inputs, "Value"))
    links.new(scales[1].outputs["Attribute"], _socket(max_01.inputs, "Value_001"))
    links.new(max_01.outputs["Value"], _socket(max_012.inputs, "Value"))
    links.new(scales[2].outputs["Attribute"], _socket(max_012.inputs, "Value_001"))
    links.new(max_012.outputs["Value"], _socket(exponent.inputs, "Value"))
    links.new(exponent.outputs["Value"], _socket(radius.inputs, "Value"))
    links.new(group_input.outputs[POINT_SCALE_INPUT], _socket(radius.inputs, "Value_001"))

    hidden = _named_attribute(group, HIDDEN_ATTRIBUTE, "BOOLEAN")
    visible = nodes.new("FunctionNodeBooleanMath")
    visible.operation = "NOT"
    links.new(hidden.outputs["Attribute"], _socket(visible.inputs, "Boolean"))

    to_points = nodes.new("GeometryNodeMeshToPoints")
    to_points.mode = "VERTICES"
    links.new(group_input.outputs["Geometry"], to_points.inputs["Mesh"])
    links.new(visible.outputs["Boolean"], to_points.inputs["Selection"])
    links.new(radius.outputs["Value"], to_points.inputs["Radius"])

    set_material = nodes.new("GeometryNodeSetMaterial")
    set_material.inputs["Material"].default_value = splat_material()
    links.new(to_points.outputs["Points"], set_material.inputs["Geometry"])
    links.new(set_material.outputs["Geometry"], group_output.inputs["Geometry"])

    for x, node in enumerate((group_input, max_01, max_012, exponent, radius, to_points, set_material, group_output)):
        node.location = (x * 200, 0)
    for y, node in enumerate(scales + [hidden, visible]):
        node.location = (0, -200 - y * 160)
    return group


def ensure_display(obj: bpy.types.Object, point_scale: float = 1.0) -> bpy.types.NodesModifier:
    """Give a splat object its display modifier (once) and return it."""
    modifier = obj.modifiers.get(MODIFIER_NAME)
    if modifier is None:
        modifier = obj.modifiers.new(MODIFIER_NAME, "NODES")
    group = splat_node_group()
    modifier.node_group = group
    modifier[group.interface.items_tree[POINT_SCALE_INPUT].identifier] = float(point_scale)
    if obj.data.materials.get(MATERIAL_NAME) is None:
        obj.data.materials.append(splat_material())
    return modifier
