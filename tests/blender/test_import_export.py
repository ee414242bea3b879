"""Import (File > Import operator) and export (File > Export operator) of 3DGS files in real
Blender: every property kept with its type, cg_id, colours, Z-up as an object transform, baked
object transforms on export, and the real-world files in tests/data/real."""

from __future__ import annotations

import os
from pathlib import Path

import bpy
import numpy as np
import pytest
from mathutils import Matrix, Quaternion, Vector

from splat_fixtures import REAL_DATA, make_cloud


REPO_DATA = Path(__file__).resolve().parents[1] / "data" / "real"  # the real fixtures this repository carries


def _import(path, **options):
    result = bpy.ops.import_scene.clickgauss_splats(filepath=str(path), **options)
    assert result == {"FINISHED"}
    return bpy.context.active_object


def _export(path, **options):
    result = bpy.ops.export_scene.clickgauss_splats(filepath=str(path), **options)
    assert result == {"FINISHED"}


def _assert_same_cloud(actual, expected):
    """Same properties, order, types and values, bit for bit (double properties included)."""
    assert list(actual.properties) == list(expected.properties)
    for name, values in expected.properties.items():
        assert actual.properties[name].dtype == values.dtype, name
        np.testing.assert_array_equal(actual.properties[name], values, err_msg=name)


@pytest.mark.parametrize("sh_degree, normals, extra", [(0, False, False), (1, True, False), (2, False, True),
                                                        (3, True, True)])
def test_round_trip_is_bit_exact(clean_scene, addon_module, tmp_path, sh_degree, normals, extra):
    from clickgauss_core.ply import read_gaussian_ply, write_gaussian_ply

    mesh_io = addon_module("blender.mesh_io")
    source = tmp_path / "in.ply"
    write_gaussian_ply(source, make_cloud(300, sh_degree, normals, extra))
    original = read_gaussian_ply(source)

    obj = _import(source, orientation="CONVERT")  # y down -> Z-up: only the object turns
    assert len(obj.data.vertices) == 300
    assert obj[mesh_io.SOURCE_KEY] == str(source)
    np.testing.assert_allclose(mesh_io.read_positions(obj.data), original.positions)
    for name, values in original.properties.items():
        if name not in "xyz":
            stored = mesh_io.read_attribute(obj.data, name)
            assert obj.data.attributes[name].data_type == ("FLOAT" if values.dtype.kind == "f" else "INT")
            if values.dtype.kind in "iu" and values.dtype.itemsize < 4:
                np.testing.assert_array_equal(stored, values)
    np.testing.assert_array_equal(mesh_io.read_attribute(obj.data, "cg_id"), np.arange(300))
    up = Matrix(obj.matrix_world).to_3x3() @ Vector((0, -1, 0))
    assert tuple(up) == pytest.approx((0, 0, 1), abs=1e-6)  # the file's -Y is Blender's Z

    exported = tmp_path / "out.ply"
    _export(exported)
    _assert_same_cloud(read_gaussian_ply(exported), original)


def test_colour_attribute_is_linear_base_colour_and_opacity(clean_scene, addon_module, tmp_path):
    from clickgauss_core.ply import read_gaussian_ply, write_gaussian_ply

    mesh_io = addon_module("blender.mesh_io")
    source = tmp_path / "c.ply"
    write_gaussian_ply(source, make_cloud(50, 0, False, False))
    cloud = read_gaussian_ply(source)
    rgba = mesh_io.read_attribute(_import(source, orientation="KEEP").data, "cg_color")
    srgb = cloud.colors
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    np.testing.assert_allclose(rgba[:, :3], linear, atol=1e-6)
    np.testing.assert_allclose(rgba[:, 3], cloud.opacities, atol=1e-6)


def _rotation_matrices(quaternions):
    """(N, 3, 3) via mathutils, independent of the add-on's own quaternion code."""
    return np.stack([np.array(Quaternion(row).normalized().to_matrix()) for row in quaternions])


def test_export_bakes_move_rotate_uniform_scale(clean_scene, tmp_path):
    from clickgauss_core.ply import read_gaussian_ply, write_gaussian_ply

    source = tmp_path / "in.ply"
    write_gaussian_ply(source, make_cloud(200, 1, True, True))
    original = read_gaussian_ply(source)
    obj = _import(source, orientation="KEEP")
    obj.location = (1.0, -2.0, 0.5)
    obj.rotation_euler = (0.3, -0.7, 1.1)
    obj.scale = (2.0, 2.0, 2.0)
    bpy.context.view_layer.update()
    matrix = np.array(obj.matrix_world)
    _export(tmp_path / "out.ply")
    baked = read_gaussian_ply(tmp_path / "out.ply")

    np.testing.assert_allclose(baked.positions, original.positions @ matrix[:3, :3].T + matrix[:3, 3], atol=1e-5)
    np.testing.assert_allclose(baked.log_scales, original.log_scales + np.log(2.0), atol=1e-5)
    object_rotation = matrix[:3, :3] / 2.0
    expected = object_rotation[None] @ _rotation_matrices(original.rotations_raw)
    np.testing.assert_allclose(_rotation_matrices(baked.rotations_raw), expected, atol=1e-5)
    # the raw quaternion norm (renderers normalise) is kept
    np.testing.assert_allclose(np.linalg.norm(baked.rotations_raw, axis=1),
                               np.linalg.norm(original.rotations_raw, axis=1), rtol=1e-5)
    np.testing.assert_array_equal(baked.properties["packed"], original.properties["packed"])


def test_export_warns_for_non_uniform_scale(clean_scene, addon_module, tmp_path):
    from clickgauss_core.ply import read_gaussian_ply, write_gaussian_ply

    io_operators = addon_module("blender.io_operators")
    source = tmp_path / "in.ply"
    write_gaussian_ply(source, make_cloud(20, 0, False, False))
    obj = _import(source, orientation="KEEP")
    obj.scale = (1.0, 2.0, 4.0)
    bpy.context.view_layer.update()
    warnings = io_operators.export_splats(obj, str(tmp_path / "out.ply"))
    assert any("non-uniform object scale" in w for w in warnings)
    baked = read_gaussian_ply(tmp_path / "out.ply")
    np.testing.assert_allclose(baked.log_scales, read_gaussian_ply(source).log_scales + np.log(2.0), atol=1e-5)
    np.testing.assert_allclose(baked.positions[:, 2], read_gaussian_ply(source).positions[:, 2] * 4, atol=1e-5)


def test_z_up_object_moved_exports_in_file_frame(clean_scene, tmp_path):
    from clickgauss_core.ply import read_gaussian_ply, write_gaussian_ply

    source = tmp_path / "in.ply"
    write_gaussian_ply(source, make_cloud(50, 0, False, False))
    obj = _import(source, orientation="CONVERT")  # turned Z-up
    obj.location.z += 3.0  # lift in Blender's Z = the file's -Y
    bpy.context.view_layer.update()
    _export(tmp_path / "out.ply")
    original, baked = read_gaussian_ply(source), read_gaussian_ply(tmp_path / "out.ply")
    np.testing.assert_allclose(baked.positions, original.positions + [0.0, -3.0, 0.0], atol=1e-5)
    np.testing.assert_allclose(baked.rotations_raw, original.rotations_raw, atol=1e-6)


def test_import_bad_file_names_file_and_problem(clean_scene, addon_module, tmp_path):
    from clickgauss_core.errors import PlyFormatError

    io_operators = addon_module("blender.io_operators")
    bad = tmp_path / "mesh.ply"
    bad.write_bytes(b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\n"
                    b"property float z\nend_header\n0 0 0\n")
    with pytest.raises(PlyFormatError) as error:
        io_operators.import_splats(bpy.context, str(bad))
    assert str(bad) in str(error.value) and "missing" in str(error.value)
    assert len(bpy.data.objects) == 0


def test_real_fruit_sh3_with_extra_property_round_trip(clean_scene, tmp_path):
    from clickgauss_core.ply import read_gaussian_ply

    source = os.path.join(REAL_DATA, "supersplat-fruit-labels", "fruit_drops_minimal.ply")
    original = read_gaussian_ply(source)
    assert original.sh_degree == 3
    obj = _import(source)
    assert len(obj.data.vertices) == 4721
    _export(tmp_path / "fruit.ply")
    _assert_same_cloud(read_gaussian_ply(tmp_path / "fruit.ply"), original)


def test_real_donut_sh0_no_normals_round_trip(clean_scene, tmp_path):
    from clickgauss_core.ply import read_gaussian_ply

    source = os.path.join(REAL_DATA, "v3dg-donut-sh0", "fused.ply")
    original = read_gaussian_ply(source)
    _import(source)
    _export(tmp_path / "donut.ply")
    _assert_same_cloud(read_gaussian_ply(tmp_path / "donut.ply"), original)


@pytest.mark.parametrize("relative_path, count", [("playcanvas-compressed/guitar.compressed.ply", 90854),
                                                  ("aframe-luma-seal-splat/luma-seal.splat", 20000)])
def test_real_compressed_ply_and_splat_import_and_export_as_inria(clean_scene, tmp_path, relative_path, count):
    from clickgauss_core.ply import read_gaussian_ply, read_splat_file

    source = os.path.join(REAL_DATA, relative_path)
    decoded = read_splat_file(source)
    obj = _import(source)
    assert len(obj.data.vertices) == count
    _export(tmp_path / "out.ply")
    _assert_same_cloud(read_gaussian_ply(tmp_path / "out.ply"), decoded)


def test_display_evaluates_to_points_sized_by_scale(clean_scene, addon_module, tmp_path):
    from clickgauss_core.ply import write_gaussian_ply

    mesh_io = addon_module("blender.mesh_io")
    display = addon_module("blender.display")
    cloud = make_cloud(100, 0, False, False)
    write_gaussian_ply(tmp_path / "d.ply", cloud)
    obj = _import(tmp_path / "d.ply")
    assert obj.clickgauss.display_mode == "GAUSSIANS"  # the default; points are the fast option
    obj.clickgauss.display_mode = "POINTS"
    hidden = np.zeros(100, dtype=bool)
    hidden[:10] = True
    mesh_io.write_attribute(obj.data, mesh_io.HIDDEN_ATTRIBUTE, hidden, "BOOLEAN")
    obj.data.update()
    depsgraph = bpy.context.evaluated_depsgraph_get()
    clouds = [inst.object.data for inst in depsgraph.object_instances
              if inst.object.type == "POINTCLOUD" and inst.object.original == obj]
    assert len(clouds) == 1
    points = clouds[0]
    assert len(points.points) == 90
    radius = np.empty(90, dtype=np.float32)
    points.attributes["radius"].data.foreach_get("value", radius)
    np.testing.assert_allclose(radius, np.exp(cloud.log_scales.max(axis=1))[10:], rtol=1e-5)
    assert points.materials[0].name == display.MATERIAL_NAME
    material_attributes = {n.attribute_name for n in points.materials[0].node_tree.nodes if n.type == "ATTRIBUTE"}
    assert material_attributes == {"cg_color", "cg_extent", "cg_quad_uv", "cg_is_quad"}


def test_gaussians_display_is_one_oriented_quad_per_gaussian(clean_scene, addon_module, tmp_path):
    """Each visible Gaussian becomes one quad: centred on it, spanning its two largest axes to
    the visible extent, carrying its colour (highlight mixed in where selected)."""
    from clickgauss_core.gaussian_quads import quad_frames
    from clickgauss_core.ply import write_gaussian_ply

    mesh_io, selection = addon_module("blender.mesh_io"), addon_module("blender.selection")
    cloud = make_cloud(50, 1, False, False)
    write_gaussian_ply(tmp_path / "q.ply", cloud)
    obj = _import(tmp_path / "q.ply")
    hidden = np.zeros(50, dtype=bool)
    hidden[:5] = True
    mesh_io.write_attribute(obj.data, mesh_io.HIDDEN_ATTRIBUTE, hidden, "BOOLEAN")
    selection.set_selection(obj, np.arange(50) >= 40)
    evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).data
    assert len(evaluated.polygons) == 45 and len(evaluated.vertices) == 180
    corners = np.array([[v.co[:] for v in (evaluated.vertices[i] for i in p.vertices)] for p in evaluated.polygons])
    u, v, _ = quad_frames(cloud.rotations, cloud.scales, cloud.opacities)
    np.testing.assert_allclose(corners.mean(axis=1), cloud.positions[5:], atol=1e-5)
    spans = np.sort(np.linalg.norm(corners - corners.mean(axis=1, keepdims=True), axis=2), axis=1)
    expected = np.sqrt((u[5:] ** 2).sum(1) + (v[5:] ** 2).sum(1))
    np.testing.assert_allclose(spans, np.repeat(expected[:, None], 4, axis=1), rtol=1e-4)
    colors = mesh_io.read_attribute(evaluated, "cg_color")
    first_corner = np.array([p.vertices[0] for p in evaluated.polygons])
    original = mesh_io.read_attribute(obj.data, "cg_color")[5:]
    np.testing.assert_allclose(colors[first_corner][:30], original[:30], atol=1e-6)  # unselected: as they are
    assert (colors[first_corner][35:, 0] > original[35:, 0] - 1e-6).all()          # selected: towards orange
    assert (colors[first_corner][35:, 2] < original[35:, 2] + 1e-6).all()
    assert evaluated.color_attributes.active_color_name == "cg_color"  # what Solid mode shows


def test_import_operator_reports_bad_files(clean_scene, tmp_path):
    (tmp_path / "empty.ply").write_bytes(b"")
    with pytest.raises(RuntimeError, match=r"empty\.ply: empty file"):
        bpy.ops.import_scene.clickgauss_splats(filepath=str(tmp_path / "empty.ply"))
    assert len(bpy.data.objects) == 0 and len(bpy.data.meshes) == 0


RESERVED_AND_LONG_NAMES = ("id", "material_index", "sharp_face", "sharp_edge", "position", ".hidden", "cg_id",
                           "ply_id", "long_" * 13, "l" * 70)


def test_reserved_and_long_property_names_import_safely_and_export_under_their_own(clean_scene, addon_module,
                                                                                   tmp_path):
    from clickgauss_core.ply import read_gaussian_ply, write_gaussian_ply

    mesh_io = addon_module("blender.mesh_io")
    cloud = make_cloud(30, 1, False, False)
    rng = np.random.default_rng(5)
    for index, name in enumerate(RESERVED_AND_LONG_NAMES):
        cloud.properties[name] = (rng.normal(size=30).astype(np.float32) if index % 2
                                  else rng.integers(-9, 9, 30).astype(np.int32))
    write_gaussian_ply(tmp_path / "names.ply", cloud)
    original = read_gaussian_ply(tmp_path / "names.ply")
    obj = _import(tmp_path / "names.ply")
    attributes = {a.name for a in obj.data.attributes}
    stored_as = {prop: attribute for prop, _, attribute in mesh_io.splat_layout(obj) if prop not in "xyz"}
    for prop, attribute in stored_as.items():
        assert attribute in attributes and len(attribute.encode("utf-8")) <= 63, (prop, attribute)
        np.testing.assert_array_equal(mesh_io.read_attribute(obj.data, attribute), original.properties[prop])
    assert stored_as["ply_id"] == "ply_id" and stored_as["id"] == "ply_id_2"  # the file's own ply_id kept
    assert all(stored_as[name].startswith("ply_") for name in RESERVED_AND_LONG_NAMES)
    np.testing.assert_array_equal(mesh_io.read_attribute(obj.data, "cg_id"), np.arange(30))  # the add-on's own
    assert len(bpy.data.meshes) == 1  # nothing half-made left behind
    _export(tmp_path / "out.ply")
    _assert_same_cloud(read_gaussian_ply(tmp_path / "out.ply"), original)


def test_float64_properties_and_positions_keep_float64(clean_scene, addon_module, tmp_path):
    from clickgauss_core.ply import read_gaussian_ply, write_gaussian_ply
    from clickgauss_core.gaussians import GaussianCloud

    cloud = make_cloud(40, 1, True, True)
    rng = np.random.default_rng(2)
    doubled = {name: (values.astype(np.float64) + rng.normal(size=40) * 1e-9
                      if name in ("x", "y", "z", "f_dc_0", "opacity") else values)
               for name, values in cloud.properties.items()}
    doubled["weight"] = rng.normal(size=40) * 1e-3 + 1e6  # needs more than float32's 24 bits
    doubled["weight"][:3] = [1e300, -0.0, np.nan]  # beyond float32's range, signed zero, NaN
    write_gaussian_ply(tmp_path / "f64.ply", GaussianCloud(doubled))
    original = read_gaussian_ply(tmp_path / "f64.ply")
    assert original.properties["x"].dtype == np.float64
    obj = _import(tmp_path / "f64.ply")
    _export(tmp_path / "out.ply")
    exported = read_gaussian_ply(tmp_path / "out.ply")
    _assert_same_cloud(exported, original)
    assert np.signbit(exported.properties["weight"][1]) and np.isnan(exported.properties["weight"][2])

    # an edited value is written as edited (still float64); untouched ones stay exact
    mesh_io = addon_module("blender.mesh_io")
    edited = mesh_io.read_attribute(obj.data, "weight")
    edited[5] = 2.5
    mesh_io.write_attribute(obj.data, "weight", edited, "FLOAT")
    obj.data.vertices[6].co.x += 1.0
    _export(tmp_path / "edited.ply")
    again = read_gaussian_ply(tmp_path / "edited.ply")
    assert again.properties["weight"][5] == 2.5 and again.properties["weight"].dtype == np.float64
    assert again.properties["x"][6] == pytest.approx(original.properties["x"][6] + 1.0, abs=1e-6)
    keep = np.ones(40, dtype=bool)
    keep[[5, 6]] = False
    for name in ("weight", "x"):
        np.testing.assert_array_equal(again.properties[name][keep], original.properties[name][keep])


@pytest.mark.parametrize("edit", [False, True], ids=["no-edits", "moved-vertex"])
def test_export_in_edit_mode(clean_scene, tmp_path, edit):
    import bmesh
    from clickgauss_core.ply import read_gaussian_ply, write_gaussian_ply

    write_gaussian_ply(tmp_path / "in.ply", make_cloud(60, 2, True, True))
    original = read_gaussian_ply(tmp_path / "in.ply")
    obj = _import(tmp_path / "in.ply")
    bpy.ops.object.mode_set(mode="EDIT")
    if edit:
        edit_mesh = bmesh.from_edit_mesh(obj.data)
        edit_mesh.verts.ensure_lookup_table()
        edit_mesh.verts[3].co.x += 2.0
        bmesh.update_edit_mesh(obj.data)
    _export(tmp_path / "out.ply")
    assert obj.mode == "EDIT"  # the user stays where they were
    exported = read_gaussian_ply(tmp_path / "out.ply")
    if edit:
        assert exported.properties["x"][3] == pytest.approx(original.properties["x"][3] + 2.0, abs=1e-5)
        exported.properties["x"][3] = original.properties["x"][3]
    _assert_same_cloud(exported, original)
    bpy.ops.object.mode_set(mode="OBJECT")
    assert len(bpy.data.meshes) == 1  # the synced copy is gone


def test_export_into_a_missing_folder_names_the_target(clean_scene, tmp_path):
    from clickgauss_core.ply import write_gaussian_ply

    write_gaussian_ply(tmp_path / "in.ply", make_cloud(10, 0, False, False))
    _import(tmp_path / "in.ply")
    target = tmp_path / "missing" / "out.ply"
    with pytest.raises(RuntimeError, match=f"(?i)cannot write {target}: the folder {target.parent} does not exist"):
        bpy.ops.export_scene.clickgauss_splats(filepath=str(target))
    assert not target.parent.exists()


def test_export_of_a_rotated_object_rotates_view_dependent_colour(clean_scene, addon_module, tmp_path):
    from clickgauss_core.ply import read_gaussian_ply, write_gaussian_ply
    from clickgauss_core.sh_rotation import rotate_sh_rest

    io_operators = addon_module("blender.io_operators")
    write_gaussian_ply(tmp_path / "in.ply", make_cloud(80, 3, True, False))
    original = read_gaussian_ply(tmp_path / "in.ply")
    obj = _import(tmp_path / "in.ply", orientation="KEEP")
    obj.rotation_euler = (0.4, 1.2, -0.8)
    bpy.context.view_layer.update()
    rotation = np.array(obj.matrix_world)[:3, :3]
    assert io_operators.export_splats(obj, str(tmp_path / "out.ply")) == []  # nothing to warn about
    exported = read_gaussian_ply(tmp_path / "out.ply")
    np.testing.assert_allclose(exported.sh_rest, rotate_sh_rest(original.sh_rest, rotation), atol=1e-5)
    np.testing.assert_array_equal(exported.sh_dc, original.sh_dc)
    assert np.abs(exported.sh_rest - original.sh_rest).max() > 0.05  # really turned


@pytest.mark.parametrize("relative_path, expected_source", [
    ("v3dg-donut-sh0/fused.ply", "content"),  # a Z-up file with nothing but its Gaussians
    (None, "cameras"),                         # the synthetic scene: its COLMAP cameras decide
])
def test_auto_orientation_stands_scenes_upright(clean_scene, synthetic_scene, relative_path, expected_source):
    """Auto (the default) decides up from the file and says so; the scene stands upright in
    Blender: the cameras' image up (synthetic) or the flat axis of the object (donut) is world +Z."""
    from clickgauss_core.framing import principal_axes
    from clickgauss_core.ply import read_splat_file

    path = synthetic_scene / "point_cloud.ply" if relative_path is None else REPO_DATA / relative_path
    obj = _import(path)
    assert obj["clickgauss_orientation"].startswith(f"Auto ({expected_source}): ")
    rotation = np.array(obj.matrix_world)[:3, :3]
    cloud = read_splat_file(path)
    if expected_source == "cameras":
        from clickgauss_core.datasets import load_dataset
        ups = [-view.camera.camera_to_world[:3, 1] for view in load_dataset(synthetic_scene).views]
        world_up = rotation @ np.mean(ups, axis=0)
    else:
        visible = cloud.opacities > 0.1
        _, axes, _ = principal_axes(cloud.positions[visible], cloud.opacities[visible])
        world_up = rotation @ axes[:, 2]
        world_up *= np.sign(world_up[2])  # a principal axis has no sign: upright is about the axis
    assert world_up[2] / np.linalg.norm(world_up) > 0.9
    if expected_source == "content":  # the donut is Z-up already: Auto leaves it as it is
        np.testing.assert_allclose(rotation, np.eye(3), atol=1e-6)
