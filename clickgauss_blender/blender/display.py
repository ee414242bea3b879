"""How splats look outside Edit mode. One Geometry Nodes modifier, two display modes:

- **Gaussians** (default): every visible Gaussian becomes one quad in the plane of its two
  largest axes (`cg_quad_u`, `cg_quad_v`, from `clickgauss_core.gaussian_quads`), extruded from
  its vertex, and the material fades it with opacity * exp(-r^2 / 2) (r in standard deviations,
  `cg_extent` at the quad's rim) over its SH-DC colour, emitted unlit. Dithered transparency:
  EEVEE's samples (and Cycles') converge to the order-independent alpha compositing of all
  quads, so nothing is sorted.
- **Points**: coloured spheres sized by the largest axis (fast; the Point Scale input).

Both output `cg_color` with the selection highlight already mixed in, on the geometry Solid mode
draws (the active colour attribute; `show_in_solid_mode` sets the shading to Attribute), so
Solid, Material Preview and Rendered all show the same colours and selection. Hidden
(`cg_hidden`) Gaussians are dropped; only the attributes the display needs travel on.

Built through the API by socket identifier/name (never by index: sockets differ between Blender
4.2 and 5.0), the group interface through `interface.new_socket`.
"""

from __future__ import annotations

import bpy
import numpy as np

from clickgauss_core.click import LOW_PASS_VARIANCE
from clickgauss_core.gaussian_quads import MAX_ALPHA, quad_frames
from .mesh_io import COLOR_ATTRIBUTE, HIDDEN_ATTRIBUTE, ID_ATTRIBUTE, SELECTED_ATTRIBUTE, write_attribute

NODE_GROUP_NAME = "ClickGauss Splat Display"
MATERIAL_NAME = "ClickGauss Splat"
MODIFIER_NAME = "ClickGauss Display"
POINT_SCALE_INPUT = "Point Scale"
GAUSSIANS_INPUT = "Gaussian Shapes"
SRGB_BLENDING_INPUT = "sRGB Blending"        # output cg_color sRGB-encoded (shown as data by the Raw view)
PIXEL_SIZE_INPUT = "Camera Pixel Size"        # one render pixel at distance 1 from the scene camera
SORTED_INPUT = "Sort from Camera"             # quads ordered back to front from the scene camera
HIGHLIGHT_COLOR = (1.0, 0.35, 0.0, 1.0)
HIGHLIGHT_STRENGTH = 0.75  # how much of the highlight colour a selected splat shows
QUAD_U_ATTRIBUTE = "cg_quad_u"                # centre to the middle of the quad's side along the largest axis
QUAD_V_ATTRIBUTE = "cg_quad_v"                # ... along the second largest axis
EXTENT_ATTRIBUTE = "cg_extent"                # standard deviations at the quad's rim
QUAD_UV_ATTRIBUTE = "cg_quad_uv"              # the quad's own corner coordinates, [-1, 1]^2

def _socket(sockets, identifier: str):
    """A node socket by its identifier (stable across versions; unique, unlike some names)."""
    for socket in sockets:
        if socket.identifier == identifier:
            return socket
    raise KeyError(f"no socket '{identifier}' among {[s.identifier for s in sockets]}")


def _new_material(name: str) -> bpy.types.Material:
    material = bpy.data.materials.new(name)
    if bpy.app.version < (5, 0):  # always node-based from 5.0 on (the flag is deprecated there)
        material.use_nodes = True
    material.node_tree.nodes.clear()
    return material


def _math(tree, operation: str, a=None, b=None):
    """A Math node; inputs are sockets (linked) or numbers (set)."""
    node = tree.nodes.new("ShaderNodeMath")
    node.operation = operation
    for identifier, value in (("Value", a), ("Value_001", b)):
        if value is None:
            continue
        if isinstance(value, (int, float)):
            _socket(node.inputs, identifier).default_value = value
        else:
            tree.links.new(value, _socket(node.inputs, identifier))
    return node.outputs["Value"]


def _shader_attribute(tree, name: str, attribute_type: str):
    node = tree.nodes.new("ShaderNodeAttribute")
    node.attribute_type = attribute_type
    node.attribute_name = name
    return node


def splat_material() -> bpy.types.Material:
    """Unlit Gaussian: emission = cg_color, alpha = min(opacity, MAX_ALPHA) * exp(-r^2 / 2) inside
    the quad's visible disc. Points get a constant r = 0 (the attribute is missing: 0)."""
    material = bpy.data.materials.get(MATERIAL_NAME)
    if material is not None:
        return material
    material = _new_material(MATERIAL_NAME)
    tree = material.node_tree
    links = tree.links
    color = _shader_attribute(tree, COLOR_ATTRIBUTE, "GEOMETRY")
    extent = _shader_attribute(tree, EXTENT_ATTRIBUTE, "GEOMETRY")
    quad_uv = _shader_attribute(tree, QUAD_UV_ATTRIBUTE, "GEOMETRY")
    is_quad = tree.nodes.new("ShaderNodeAttribute")  # 1 on the quads (their uv attribute exists), 0 on points
    is_quad.attribute_type = "GEOMETRY"
    is_quad.attribute_name = "cg_is_quad"

    # r^2 in sigma^2 = extent^2 * |uv|^2 ; visible where |uv| <= 1
    uv_squared = tree.nodes.new("ShaderNodeVectorMath")
    uv_squared.operation = "DOT_PRODUCT"
    links.new(quad_uv.outputs["Vector"], _socket(uv_squared.inputs, "Vector"))
    links.new(quad_uv.outputs["Vector"], _socket(uv_squared.inputs, "Vector_001"))
    uv2 = _socket(uv_squared.outputs, "Value")
    extent2 = _math(tree, "MULTIPLY", extent.outputs[2], extent.outputs[2])
    falloff = _math(tree, "EXPONENT", _math(tree, "MULTIPLY", _math(tree, "MULTIPLY", uv2, extent2), -0.5))
    inside = _math(tree, "LESS_THAN", uv2, 1.0)
    opacity = _math(tree, "MINIMUM", color.outputs["Alpha"], MAX_ALPHA)
    quad_alpha = _math(tree, "MULTIPLY", _math(tree, "MULTIPLY", opacity, falloff), inside)
    # Points mode: opaque spheres (the attribute on the quad mesh tells the two apart).
    alpha = tree.nodes.new("ShaderNodeMix")
    alpha.data_type = "FLOAT"
    links.new(is_quad.outputs[2], _socket(alpha.inputs, "Factor_Float"))
    _socket(alpha.inputs, "A_Float").default_value = 1.0
    links.new(quad_alpha, _socket(alpha.inputs, "B_Float"))
    emission = tree.nodes.new("ShaderNodeEmission")
    links.new(color.outputs["Color"], emission.inputs["Color"])
    transparent = tree.nodes.new("ShaderNodeBsdfTransparent")
    mix = tree.nodes.new("ShaderNodeMixShader")
    links.new(_socket(alpha.outputs, "Result_Float"), _socket(mix.inputs, "Fac"))
    links.new(transparent.outputs["BSDF"], _socket(mix.inputs, "Shader"))
    links.new(emission.outputs["Emission"], _socket(mix.inputs, "Shader_001"))
    output = tree.nodes.new("ShaderNodeOutputMaterial")
    links.new(mix.outputs["Shader"], output.inputs["Surface"])
    for x, node in enumerate(tree.nodes):
        node.location = (x * 180, (x % 3) * -160)
    material.surface_render_method = "DITHERED"  # order-independent (`apply_transparency` may sort instead)
    material.use_backface_culling = False
    if hasattr(material, "use_transparent_shadow"):
        material.use_transparent_shadow = True
    # Solid mode with Material colour: a neutral grey; the Attribute colour type shows cg_color.
    material.diffuse_color = (0.6, 0.6, 0.6, 1.0)
    return material


def _named_attribute(tree, name: str, data_type: str):
    node = tree.nodes.new("GeometryNodeInputNamedAttribute")
    node.data_type = data_type
    node.inputs["Name"].default_value = name
    return node


# The PLY properties and add-on attributes the quads do not need (the 45 f_rest alone would
# otherwise be copied onto every corner). Properties a file adds beyond these simply travel on.
_UNNEEDED_BY_QUADS = ("f_*", "rot_*", "scale_*", "opacity", "nx", "ny", "nz", ID_ATTRIBUTE, HIDDEN_ATTRIBUTE,
                      SELECTED_ATTRIBUTE)


def _drop_unneeded(tree, geometry):
    for pattern in _UNNEEDED_BY_QUADS:
        node = tree.nodes.new("GeometryNodeRemoveAttribute")
        if "pattern_mode" in node.bl_rna.properties:  # 4.2-4.4: a node property; 4.5+: an input socket
            node.pattern_mode = "WILDCARD"
        else:
            node.inputs["Pattern Mode"].default_value = "Wildcard"
        node.inputs["Name"].default_value = pattern
        tree.links.new(geometry, node.inputs["Geometry"])
        geometry = node.outputs["Geometry"]
    return geometry


def _srgb_encoded(tree, channel, use_srgb):
    """The channel sRGB-encoded where `use_srgb` (a bool socket) is on, else as it is:
    12.92 c below 0.0031308, else 1.055 c^(1/2.4) - 0.055."""
    low = _math(tree, "MULTIPLY", channel, 12.92)
    high = _math(tree, "SUBTRACT", _math(tree, "MULTIPLY", _math(tree, "POWER", _math(tree, "MAXIMUM", channel, 0.0),
                                                                  1.0 / 2.4), 1.055), 0.055)
    is_low = _math(tree, "LESS_THAN", channel, 0.0031308)
    encoded = _math(tree, "ADD", high, _math(tree, "MULTIPLY", is_low, _math(tree, "SUBTRACT", low, high)))
    return _math(tree, "ADD", channel, _math(tree, "MULTIPLY", use_srgb, _math(tree, "SUBTRACT", encoded, channel)))


def _highlighted_color(tree, geometry, use_srgb):
    """Store cg_color = mix(cg_color, highlight, selected * strength) on the points, sRGB-encoded
    when `use_srgb` is on (the Raw view transform then shows it as it is, and Blender blends
    the encoded values, as 3DGS does)."""
    links = tree.links
    color = _named_attribute(tree, COLOR_ATTRIBUTE, "FLOAT_COLOR")
    selected = _named_attribute(tree, SELECTED_ATTRIBUTE, "FLOAT")
    mix = tree.nodes.new("ShaderNodeMix")
    mix.data_type = "RGBA"
    strength = tree.nodes.new("ShaderNodeMath")
    strength.operation = "MULTIPLY"
    _socket(strength.inputs, "Value_001").default_value = HIGHLIGHT_STRENGTH
    links.new(selected.outputs["Attribute"], _socket(strength.inputs, "Value"))
    links.new(strength.outputs["Value"], _socket(mix.inputs, "Factor_Float"))
    links.new(color.outputs["Attribute"], _socket(mix.inputs, "A_Color"))
    _socket(mix.inputs, "B_Color").default_value = HIGHLIGHT_COLOR
    # Keep the Gaussian's opacity in alpha: mix only the colour, then put alpha back.
    separate = tree.nodes.new("FunctionNodeSeparateColor")
    links.new(color.outputs["Attribute"], separate.inputs["Color"])
    mixed = tree.nodes.new("FunctionNodeSeparateColor")
    links.new(_socket(mix.outputs, "Result_Color"), mixed.inputs["Color"])
    combine = tree.nodes.new("FunctionNodeCombineColor")
    for channel in ("Red", "Green", "Blue"):
        links.new(_srgb_encoded(tree, mixed.outputs[channel], use_srgb), combine.inputs[channel])
    links.new(separate.outputs["Alpha"], combine.inputs["Alpha"])
    store = tree.nodes.new("GeometryNodeStoreNamedAttribute")
    store.data_type = "FLOAT_COLOR"
    store.domain = "POINT"
    store.inputs["Name"].default_value = COLOR_ATTRIBUTE
    links.new(geometry, store.inputs["Geometry"])
    links.new(combine.outputs["Color"], _value_input(store, "FLOAT_COLOR"))
    return store.outputs["Geometry"]


def _value_input(store_node, data_type: str):
    """Store Named Attribute's value input (one socket per type in 4.2, one 'Value' from 4.3 on)."""
    enabled = [s for s in store_node.inputs if s.name == "Value" and s.enabled]
    return enabled[0] if enabled else store_node.inputs["Value"]


def _store(tree, geometry, name: str, data_type: str, value, selection=None):
    """Store Named Attribute on points; `value` a socket or a constant."""
    node = tree.nodes.new("GeometryNodeStoreNamedAttribute")
    node.data_type = data_type
    node.domain = "POINT"
    node.inputs["Name"].default_value = name
    tree.links.new(geometry, node.inputs["Geometry"])
    if isinstance(value, (tuple, float, int)):
        _value_input(node, data_type).default_value = value
    else:
        tree.links.new(value, _value_input(node, data_type))
    if selection is not None:
        tree.links.new(selection, node.inputs["Selection"])
    return node.outputs["Geometry"]


def _vector_math(tree, operation: str, a, b=None, scale=None):
    node = tree.nodes.new("ShaderNodeVectorMath")
    node.operation = operation
    for identifier, value in (("Vector", a), ("Vector_001", b)):
        if value is None:
            continue
        if isinstance(value, tuple):
            _socket(node.inputs, identifier).default_value = value
        else:
            tree.links.new(value, _socket(node.inputs, identifier))
    if isinstance(scale, (int, float)):
        _socket(node.inputs, "Scale").default_value = scale
    elif scale is not None:
        tree.links.new(scale, _socket(node.inputs, "Scale"))
    return _socket(node.outputs, "Value" if operation in ("DOT_PRODUCT", "DISTANCE", "LENGTH") else "Vector")


def _camera_location(tree):
    """The scene camera's position in the splat object's space (where its scales are)."""
    camera = tree.nodes.new("GeometryNodeInputActiveCamera")
    camera_info = tree.nodes.new("GeometryNodeObjectInfo")
    camera_info.transform_space = "RELATIVE"
    tree.links.new(_socket(camera.outputs, "Active Camera"), camera_info.inputs["Object"])
    return camera_info.outputs["Location"]


def _distance_to(tree, location):
    position = tree.nodes.new("GeometryNodeInputPosition").outputs["Position"]
    return _vector_math(tree, "DISTANCE", position, location)


def _low_pass(tree, vertices, pixel_size, camera_location):
    """Widen every quad as 3DGS rasterizers blur every projected Gaussian (LOW_PASS_VARIANCE px^2
    added to its screen covariance; sub-pixel Gaussians become pixel-sized dots): sigma^2 +=
    LOW_PASS_VARIANCE * (distance to the scene camera * pixel_size)^2 along both quad axes, the
    opacity kept (as 3DGS keeps it). Stored once on the points: the extrusions move them."""
    pixel = _math(tree, "MULTIPLY", _distance_to(tree, camera_location), pixel_size)
    blur_variance = _math(tree, "MULTIPLY", _math(tree, "MULTIPLY", pixel, pixel), LOW_PASS_VARIANCE)
    extent = _named_attribute(tree, EXTENT_ATTRIBUTE, "FLOAT").outputs["Attribute"]
    blur_in_rims = _math(tree, "MULTIPLY", blur_variance, _math(tree, "MULTIPLY", extent, extent))
    for name in (QUAD_U_ATTRIBUTE, QUAD_V_ATTRIBUTE):
        axis = _named_attribute(tree, name, "FLOAT_VECTOR").outputs["Attribute"]
        # |axis| = sigma * extent: scale it by sqrt(1 + blur / sigma^2) (0 / 0 -> 0: an invisible one stays 0)
        growth = _math(tree, "SQRT", _math(tree, "ADD", _math(tree, "DIVIDE", blur_in_rims,
                                                                _vector_math(tree, "DOT_PRODUCT", axis, axis)), 1.0))
        vertices = _store(tree, vertices, name, "FLOAT_VECTOR", _vector_math(tree, "SCALE", axis, scale=growth))
    return vertices


def _quads(tree, vertices):
    """Each vertex -> the quad centre +- u +- v (cg_quad_u, cg_quad_v), built by extruding the
    vertex into an edge and the edge into a face. Extrusion keeps the input mesh (its attributes
    and its active colour attribute, which Solid mode draws), unlike instancing or a new mesh.
    Every corner carries its quad coordinates in [-1, 1]^2 (cg_quad_uv) and cg_is_quad = 1."""
    links = tree.links
    u = _named_attribute(tree, QUAD_U_ATTRIBUTE, "FLOAT_VECTOR").outputs["Attribute"]
    v = _named_attribute(tree, QUAD_V_ATTRIBUTE, "FLOAT_VECTOR").outputs["Attribute"]
    corner = tree.nodes.new("GeometryNodeSetPosition")  # the centre -> corner (-1, -1)
    links.new(vertices, corner.inputs["Geometry"])
    links.new(_vector_math(tree, "SCALE", _vector_math(tree, "ADD", u, v), scale=-1.0), corner.inputs["Offset"])
    geometry = _store(tree, corner.outputs["Geometry"], QUAD_UV_ATTRIBUTE, "FLOAT_VECTOR", (-1.0, -1.0, 0.0))
    for mode, along, step in (("VERTICES", u, (2.0, 0.0, 0.0)), ("EDGES", v, (0.0, 2.0, 0.0))):
        extrude = tree.nodes.new("GeometryNodeExtrudeMesh")
        extrude.mode = mode
        links.new(geometry, extrude.inputs["Mesh"])
        links.new(_vector_math(tree, "SCALE", along, scale=2.0), extrude.inputs["Offset"])
        uv = _named_attribute(tree, QUAD_UV_ATTRIBUTE, "FLOAT_VECTOR").outputs["Attribute"]
        geometry = _store(tree, extrude.outputs["Mesh"], QUAD_UV_ATTRIBUTE, "FLOAT_VECTOR",
                          _vector_math(tree, "ADD", uv, step), selection=extrude.outputs["Top"])
    geometry = _store(tree, geometry, "cg_is_quad", "FLOAT", 1.0)
    material = tree.nodes.new("GeometryNodeSetMaterial")
    material.inputs["Material"].default_value = splat_material()
    links.new(geometry, material.inputs["Geometry"])
    return material.outputs["Geometry"]


def splat_node_group() -> bpy.types.NodeTree:
    """The display's node group: this file's, or built (anew for a file saved before the group
    had all of today's inputs: its objects are moved over to the new one, keeping their Point Scale)."""
    group = bpy.data.node_groups.get(NODE_GROUP_NAME)
    if group is not None and SORTED_INPUT in group.interface.items_tree:
        return group
    if group is None:
        return _build_splat_node_group()
    group.name = NODE_GROUP_NAME + " (outdated)"
    built = _build_splat_node_group()
    scale_identifier = group.interface.items_tree[POINT_SCALE_INPUT].identifier
    for obj in bpy.data.objects:
        modifier = obj.modifiers.get(MODIFIER_NAME)
        if modifier is not None and modifier.node_group == group:
            ensure_display(obj, point_scale=modifier.get(scale_identifier, 1.0))
    bpy.data.node_groups.remove(group)
    return built


def _build_splat_node_group() -> bpy.types.NodeTree:
    group = bpy.data.node_groups.new(NODE_GROUP_NAME, "GeometryNodeTree")
    group.interface.new_socket(name="Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
    gaussians_socket = group.interface.new_socket(name=GAUSSIANS_INPUT, in_out="INPUT", socket_type="NodeSocketBool")
    gaussians_socket.default_value = True
    scale_socket = group.interface.new_socket(name=POINT_SCALE_INPUT, in_out="INPUT", socket_type="NodeSocketFloat")
    scale_socket.default_value = 1.0
    scale_socket.min_value = 0.0
    group.interface.new_socket(name=SRGB_BLENDING_INPUT, in_out="INPUT", socket_type="NodeSocketBool")
    pixel_socket = group.interface.new_socket(name=PIXEL_SIZE_INPUT, in_out="INPUT", socket_type="NodeSocketFloat")
    pixel_socket.min_value = 0.0
    group.interface.new_socket(name=SORTED_INPUT, in_out="INPUT", socket_type="NodeSocketBool")
    group.interface.new_socket(name="Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
    nodes, links = group.nodes, group.links
    group_input = nodes.new("NodeGroupInput")
    group_output = nodes.new("NodeGroupOutput")

    hidden = _named_attribute(group, HIDDEN_ATTRIBUTE, "BOOLEAN")
    visible = nodes.new("FunctionNodeBooleanMath")
    visible.operation = "NOT"
    links.new(hidden.outputs["Attribute"], _socket(visible.inputs, "Boolean"))
    geometry = _highlighted_color(group, group_input.outputs["Geometry"], group_input.outputs[SRGB_BLENDING_INPUT])

    # Points: radius = exp(max(scale_0, scale_1, scale_2)) * point scale (the largest axis).
    scales = [_named_attribute(group, f"scale_{i}", "FLOAT").outputs["Attribute"] for i in range(3)]
    largest = _math(group, "MAXIMUM", _math(group, "MAXIMUM", scales[0], scales[1]), scales[2])
    radius = _math(group, "MULTIPLY", _math(group, "EXPONENT", largest), group_input.outputs[POINT_SCALE_INPUT])
    to_points = nodes.new("GeometryNodeMeshToPoints")
    to_points.mode = "VERTICES"
    links.new(geometry, to_points.inputs["Mesh"])
    links.new(visible.outputs["Boolean"], to_points.inputs["Selection"])
    links.new(radius, to_points.inputs["Radius"])
    point_material = nodes.new("GeometryNodeSetMaterial")
    point_material.inputs["Material"].default_value = splat_material()
    links.new(to_points.outputs["Points"], point_material.inputs["Geometry"])

    # Gaussians: one quad per visible Gaussian, made from the mesh itself.
    hidden_dropped = nodes.new("GeometryNodeDeleteGeometry")
    hidden_dropped.domain = "POINT"
    links.new(geometry, hidden_dropped.inputs["Geometry"])
    links.new(hidden.outputs["Attribute"], hidden_dropped.inputs["Selection"])
    camera_location = _camera_location(group)
    quads = _quads(group, _low_pass(group, _drop_unneeded(group, hidden_dropped.outputs["Geometry"]),
                                    group_input.outputs[PIXEL_SIZE_INPUT], camera_location))
    # Sorted transparency: faces back to front from the scene camera (their centres' distance, as
    # 3DGS sorts by depth); a blended material draws them in that order, exactly compositing.
    back_to_front = nodes.new("GeometryNodeSortElements")
    back_to_front.domain = "FACE"
    links.new(quads, back_to_front.inputs["Geometry"])
    links.new(_math(group, "MULTIPLY", _distance_to(group, camera_location), -1.0), back_to_front.inputs["Sort Weight"])
    sort_switch = nodes.new("GeometryNodeSwitch")
    sort_switch.input_type = "GEOMETRY"
    links.new(group_input.outputs[SORTED_INPUT], sort_switch.inputs["Switch"])
    links.new(quads, sort_switch.inputs["False"])
    links.new(back_to_front.outputs["Geometry"], sort_switch.inputs["True"])
    quads = sort_switch.outputs["Output"]

    switch = nodes.new("GeometryNodeSwitch")
    switch.input_type = "GEOMETRY"
    links.new(group_input.outputs[GAUSSIANS_INPUT], switch.inputs["Switch"])
    links.new(point_material.outputs["Geometry"], switch.inputs["False"])
    links.new(quads, switch.inputs["True"])
    links.new(switch.outputs["Output"], group_output.inputs["Geometry"])
    for x, node in enumerate(nodes):
        node.location = (x * 40, -(x % 6) * 160)
    return group


def write_quad_attributes(mesh: bpy.types.Mesh, rotations_wxyz: np.ndarray, scales: np.ndarray,
                          opacities: np.ndarray) -> None:
    """The per-Gaussian quad frame the Gaussians display reads (see `gaussian_quads`)."""
    u, v, extent = quad_frames(rotations_wxyz, scales, opacities)
    write_attribute(mesh, QUAD_U_ATTRIBUTE, u, "FLOAT_VECTOR")
    write_attribute(mesh, QUAD_V_ATTRIBUTE, v, "FLOAT_VECTOR")
    write_attribute(mesh, EXTENT_ATTRIBUTE, extent, "FLOAT")


def ensure_quad_attributes(obj, cloud=None) -> None:
    """Give a splat object its quad attributes if it has none (objects from before they existed)."""
    if QUAD_U_ATTRIBUTE in obj.data.attributes:
        return
    if cloud is None:
        from .mesh_io import cloud_from_object
        cloud = cloud_from_object(obj)
    write_quad_attributes(obj.data, cloud.rotations, cloud.scales, cloud.opacities)


def ensure_display(obj: bpy.types.Object, point_scale: float = 1.0, mode: str | None = None,
                   cloud=None) -> bpy.types.NodesModifier:
    """Give a splat object its display modifier (once) and return it. `mode`: "GAUSSIANS" or
    "POINTS" (None: the object's setting). `cloud`: the object's Gaussians if at hand (import)."""
    ensure_quad_attributes(obj, cloud)
    modifier = obj.modifiers.get(MODIFIER_NAME)
    if modifier is None:
        modifier = obj.modifiers.new(MODIFIER_NAME, "NODES")
    group = splat_node_group()
    modifier.node_group = group
    modifier[group.interface.items_tree[POINT_SCALE_INPUT].identifier] = float(point_scale)
    _drive_pixel_size(obj, modifier, bpy.context.scene)
    _set_input(obj, SRGB_BLENDING_INPUT, bpy.context.scene.clickgauss.blending == "TRAINED")
    apply_transparency(bpy.context.scene)  # the material's render method and the scene's splats' sort
    _set_input(obj, SORTED_INPUT, bpy.context.scene.clickgauss.transparency == "SORTED")  # (if not linked yet)
    if mode is not None and obj.clickgauss.display_mode != mode:
        obj.clickgauss.display_mode = mode  # its update callback sets the modifier input
    else:
        apply_display_mode(obj)
    if obj.data.materials.get(MATERIAL_NAME) is None:
        obj.data.materials.append(splat_material())
    return modifier


def _set_input(obj, name: str, value) -> None:
    modifier = obj.modifiers.get(MODIFIER_NAME)
    if modifier is None or modifier.node_group is None:
        return
    modifier[modifier.node_group.interface.items_tree[name].identifier] = value
    obj.update_tag()


def apply_display_mode(obj) -> None:
    """Set the display modifier's switch from the object's display mode setting."""
    _set_input(obj, GAUSSIANS_INPUT, obj.clickgauss.display_mode == "GAUSSIANS")


def _drive_pixel_size(obj, modifier, scene) -> None:
    """A driver keeps the low-pass's pixel size that of the scene camera and render resolution:
    sensor width / (focal length * width in pixels), exact for a horizontal sensor fit (and
    Auto on landscape frames). Without a scene camera it is 0: no widening."""
    path = f'modifiers["{MODIFIER_NAME}"]["{modifier.node_group.interface.items_tree[PIXEL_SIZE_INPUT].identifier}"]'
    obj.driver_remove(path)
    driver = obj.driver_add(path).driver
    driver.type = "SCRIPTED"
    for name, data_path in (("sensor", "camera.data.sensor_width"), ("lens", "camera.data.lens"),
                            ("width", "render.resolution_x"), ("percent", "render.resolution_percentage")):
        variable = driver.variables.new()
        variable.name = name
        variable.type = "SINGLE_PROP"
        variable.targets[0].id_type = "SCENE"
        variable.targets[0].id = scene
        variable.targets[0].data_path = data_path
    # A simple expression (no Python needed); no scene camera: 0 (no widening), not a division by zero.
    driver.expression = "sensor / max(lens * width * percent / 100, 1e-6)"


def apply_transparency(scene) -> None:
    """How splats are made transparent (scene.clickgauss.transparency): SORTED orders every
    splat's quads back to front from the scene camera and blends them in that order (the
    material's Blended render method): exact 3DGS compositing, no noise, but from the scene
    camera only (a viewport looking from elsewhere sees some quads in the wrong order); DITHERED
    (order-independent, converging over the samples: right from any view, grainy until settled)."""
    sorted_ = scene.clickgauss.transparency == "SORTED"
    material = splat_material()
    material.surface_render_method = "BLENDED" if sorted_ else "DITHERED"
    material.use_transparency_overlap = True  # every layer, not only the front-most
    for obj in scene.objects:
        if obj.modifiers.get(MODIFIER_NAME) is not None:
            _set_input(obj, SORTED_INPUT, sorted_)


def apply_blending(scene) -> None:
    """How the scene blends splats (scene.clickgauss.blending): TRAINED blends sRGB-encoded
    colours under the Raw view transform, exactly as 3DGS composites (the picture the splat was
    trained to make; other objects then show unencoded, darker); LINEAR blends in linear light
    under the Standard view transform (other objects as usual; faint overlapping Gaussians come
    out brighter than trained)."""
    trained = scene.clickgauss.blending == "TRAINED"
    scene.view_settings.view_transform = "Raw" if trained else "Standard"
    for obj in scene.objects:
        if obj.modifiers.get(MODIFIER_NAME) is not None:
            _set_input(obj, SRGB_BLENDING_INPUT, trained)


def show_in_solid_mode(context) -> None:
    """Solid shading shows the splat colours (and the highlight): colour type Attribute, flat
    lighting, in the scene's Workbench settings and every open 3D viewport."""
    shadings = [context.scene.display.shading]
    for window in getattr(context.window_manager, "windows", []):
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                shadings.extend(space.shading for space in area.spaces if space.type == "VIEW_3D")
    for shading in shadings:
        shading.color_type = "VERTEX"
        shading.light = "FLAT"  # splat colours are already lit: shown as they are
