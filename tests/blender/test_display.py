"""The Gaussian display, rendered headless: EEVEE and Cycles next to the backend rasterizer on a real splat
(PSNR / SSIM floors a little under what it reaches: benchmarks/RESULTS.md), and the selection
highlight after a click, in EEVEE (Rendered) and Workbench (Solid), on the selected side only."""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np
import pytest

from display_pictures import compare_display, display_renders

REAL = Path(__file__).resolve().parents[1] / "data" / "real"
FRUIT = REAL / "supersplat-fruit-labels" / "fruit_drops_minimal.ply"
SIZE = (96, 72)
SAMPLES = 16
# Measured 2026-11-30 at this size and sample count, with the quads widened like the rasterizer's
# low-pass, As Trained (sRGB) blending and Sorted transparency: EEVEE 26.88 / 25.63 dB, SSIM
# 0.958 / 0.930 (dithered instead: 23.98 / 23.73, 0.837 / 0.807; before all three: 18.72 / 19.47,
# 0.731 / 0.735); Cycles (order-independent anyway) 24.43 / 24.39 dB, SSIM 0.859 / 0.880. Blender
# 5.0: EEVEE 26.83 / 25.57, 0.957 / 0.928; Cycles 24.50 / 24.14, 0.870 / 0.859. See
# benchmarks/RESULTS.md for the real splats at 160 x 120.
FLOORS = {"BLENDER_EEVEE": (25.0, 0.90), "CYCLES": (23.5, 0.83)}  # (PSNR dB, SSIM)


@pytest.mark.parametrize("engine", ["BLENDER_EEVEE", "CYCLES"])
def test_gaussian_display_matches_the_backend_rasterizer(clean_scene, addon_module, tmp_path, engine):
    result = compare_display(addon_module, FRUIT, SIZE, SAMPLES, tmp_path, engine)
    print(engine, "display vs rasterizer:", result["views"])
    floor_psnr, floor_ssim = FLOORS[engine]
    for view in result["views"]:
        assert view["psnr"] >= floor_psnr, result["views"]
        assert view["ssim"] >= floor_ssim, result["views"]


@pytest.mark.parametrize("engine", ["BLENDER_EEVEE", "BLENDER_WORKBENCH"])  # Rendered, and Solid
def test_selection_highlight_after_a_click(clean_scene, addon_module, tmp_path, engine):
    from clickgauss_core.framing import framing_cameras
    from clickgauss_core.ply import read_splat_file

    obj = addon_module("blender.io_operators").import_splats(bpy.context, str(FRUIT), z_up=False)
    cloud = read_splat_file(FRUIT)
    camera = framing_cameras(cloud.positions, cloud.opacities, *SIZE)[0]
    pixels, _ = camera.project(cloud.positions)
    before = display_renders(addon_module, obj, [camera], tmp_path / "before", SAMPLES, engine)[0]
    # The Blender half of a click: a mask over the file's Gaussians applied through cg_id.
    left = pixels[:, 0] < SIZE[0] / 2
    addon_module("blender.selection").apply_mask(obj, left)
    after = display_renders(addon_module, obj, [camera], tmp_path / "after", SAMPLES, engine)[0]
    orange_shift = (after[..., 0] - before[..., 0]) - (after[..., 2] - before[..., 2])
    third = SIZE[0] // 3
    selected_side, other_side = orange_shift[:, :third].mean(), orange_shift[:, -third:].mean()
    print(engine, "orange shift: selected side", selected_side, "other side", other_side)
    assert selected_side > 0.2  # the selected side turns orange
    # The other side shows unselected Gaussians: it changes only where a selected Gaussian's
    # quad reaches over (Solid draws the quads opaque, out to their visible extent).
    assert other_side < (0.02 if engine == "BLENDER_EEVEE" else 0.5 * selected_side)
    changed = np.abs(after - before).max(axis=2) > 2 / 255
    assert (orange_shift[changed] > 0).all()  # whatever changed, changed towards the highlight


def _quad_sides_and_colours(obj):
    """Per quad of the evaluated display: its centre, its two side lengths (longer first) and the
    colour its corners carry."""
    evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).data
    corners = np.array([p.vertices[:] for p in evaluated.polygons])
    positions = np.array([v.co for v in evaluated.vertices])[corners]  # (quads, 4, 3)
    sides = np.linalg.norm(positions - np.roll(positions, 1, axis=1), axis=2)[:, :2]
    colours = np.array([c.color for c in evaluated.attributes["cg_color"].data])[corners[:, 0]]
    return positions.mean(axis=1), -np.sort(-sides, axis=1), colours


def test_quads_widen_like_the_rasterizer_low_pass_blend_as_trained_and_sort(clean_scene, addon_module):
    """The display's Geometry Nodes against the 3DGS formulas computed here from the file: each
    quad's half-sides are extent * sqrt(sigma^2 + 0.3 px^2 at its distance from the scene camera)
    (the driver follows the camera's lens and the render width), and 'As Trained' blending
    outputs sRGB-encoded colours (Raw view), 'Linear' the linear ones (Standard view); 'Sorted'
    transparency orders the quads back to front from the camera."""
    from clickgauss_core.click import LOW_PASS_VARIANCE
    from clickgauss_core.gaussian_quads import visible_extent
    from clickgauss_core.ply import read_splat_file

    scene = bpy.context.scene
    scene.clickgauss.transparency = "DITHERED"  # the file's order first (earlier tests may have sorted)
    obj = addon_module("blender.io_operators").import_splats(bpy.context, str(FRUIT), z_up=False)
    cloud = read_splat_file(FRUIT)
    camera_data = bpy.data.cameras.new("low-pass view")
    camera_data.sensor_fit, camera_data.sensor_width, camera_data.lens = "HORIZONTAL", 36.0, 50.0
    camera = bpy.data.objects.new("low-pass view", camera_data)
    scene.collection.objects.link(camera)
    camera.location = cloud.positions.mean(axis=0) + np.array([0.0, 0.0, 3.0])
    scene.camera = camera
    scene.render.resolution_x, scene.render.resolution_percentage = 200, 50  # 100 px wide
    bpy.context.view_layer.update()

    centres, sides, colours = _quad_sides_and_colours(obj)
    assert np.allclose(centres, cloud.positions, atol=1e-5)  # quad i is Gaussian i
    sigmas = -np.sort(-cloud.scales.astype(np.float64), axis=1)[:, :2]  # activated (exp of the file's)
    pixel = 36.0 / (50.0 * 100)
    blur = LOW_PASS_VARIANCE * (np.linalg.norm(cloud.positions - np.array(camera.location), axis=1) * pixel) ** 2
    expected = 2 * visible_extent(cloud.opacities)[:, None] * np.sqrt(sigmas ** 2 + blur[:, None])
    visible = visible_extent(cloud.opacities) > 0
    assert np.allclose(sides[visible], expected[visible], rtol=2e-3)
    assert (expected[visible] > 1.5 * 2 * visible_extent(cloud.opacities)[visible, None] * sigmas[visible]).any()

    stored = addon_module("blender.mesh_io").read_attribute(obj.data, "cg_color")[:, :3]
    scene.clickgauss.blending = "TRAINED"
    assert scene.view_settings.view_transform == "Raw"
    encoded = np.where(stored <= 0.0031308, 12.92 * stored, 1.055 * np.clip(stored, 0, None) ** (1 / 2.4) - 0.055)
    assert np.allclose(_quad_sides_and_colours(obj)[2][:, :3], encoded, atol=1e-4)
    scene.clickgauss.blending = "LINEAR"
    assert scene.view_settings.view_transform == "Standard"
    assert np.allclose(_quad_sides_and_colours(obj)[2][:, :3], stored, atol=1e-5)

    scene.clickgauss.transparency = "SORTED"  # back to front from the camera, drawn blended in that order
    assert bpy.data.materials["ClickGauss Splat"].surface_render_method == "BLENDED"
    centres = _quad_sides_and_colours(obj)[0]
    distances = np.linalg.norm(centres - np.array(camera.location), axis=1)
    assert len(centres) == len(cloud) and (np.diff(distances) <= 1e-5).all()


def test_a_file_from_before_the_new_display_inputs_gets_the_new_display(clean_scene, addon_module):
    """A .blend saved with an older display group (without today's inputs): the next splat
    import rebuilds the group and moves the old objects over, keeping their Point Scale."""
    display = addon_module("blender.display")
    importer = addon_module("blender.io_operators")
    old = importer.import_splats(bpy.context, str(FRUIT), z_up=False, point_scale=0.5)
    group = bpy.data.node_groups[display.NODE_GROUP_NAME]
    group.interface.remove(group.interface.items_tree[display.SORTED_INPUT])  # as the group was before
    importer.import_splats(bpy.context, str(FRUIT), z_up=False)
    modifier = old.modifiers[display.MODIFIER_NAME]
    rebuilt = bpy.data.node_groups[display.NODE_GROUP_NAME]
    assert modifier.node_group == rebuilt and display.SORTED_INPUT in rebuilt.interface.items_tree
    assert len(bpy.data.node_groups) == 1
    assert modifier[rebuilt.interface.items_tree[display.POINT_SCALE_INPUT].identifier] == 0.5
    evaluated = old.evaluated_get(bpy.context.evaluated_depsgraph_get()).data
    assert len(evaluated.polygons) == len(old.data.vertices)  # the Gaussians display is back
