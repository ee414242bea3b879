"""The extension builds with Blender's own builder, installs from its zip, enables, and its
bundled wheels (plyfile, clickgauss_core) are importable from where Blender unpacked them."""

from __future__ import annotations

import zipfile

import bpy

from conftest import ADDON_MODULE, EXTENSIONS_DIR


def test_zip_has_manifest_package_and_wheels(addon_zip):
    names = set(zipfile.ZipFile(addon_zip).namelist())
    assert "blender_manifest.toml" in names
    assert "__init__.py" in names  # clickgauss_blender/ is the zip root
    wheels = {n for n in names if n.startswith("wheels/") and n.endswith(".whl")}
    assert any(n.startswith("wheels/plyfile-") for n in wheels)
    assert any(n.startswith("wheels/clickgauss_core-") for n in wheels)
    assert not any("__pycache__" in n for n in names)


def test_installed_enabled_and_wheels_import_from_extension_site_packages(addon):
    assert ADDON_MODULE in bpy.context.preferences.addons
    import clickgauss_core
    import plyfile

    site_packages = EXTENSIONS_DIR / ".local"
    for module in (plyfile, clickgauss_core):
        assert str(site_packages) in module.__file__, module.__file__
    from clickgauss_core.ply import read_gaussian_ply  # noqa: F401  the real core, not a stand-in


def test_registers_menus_panel_keymap_and_operators(addon):
    import bpy

    for operator in ("import_scene.clickgauss_splats", "export_scene.clickgauss_splats", "clickgauss.train_features",
                     "clickgauss.click_select", "clickgauss.delete_selected", "clickgauss.recolor_selected",
                     "clickgauss.segment_everything", "clickgauss.start_backend"):
        category, name = operator.split(".")
        assert hasattr(getattr(bpy.ops, category), name), operator
    assert hasattr(bpy.types, "CLICKGAUSS_PT_sidebar")
    keymap = bpy.context.window_manager.keyconfigs.addon.keymaps["3D View"]
    clicks = [item for item in keymap.keymap_items if item.idname == "clickgauss.click_select"]
    assert len(clicks) == 1 and clicks[0].type == "LEFTMOUSE" and clicks[0].shift  # rebindable add-on keymap item
    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    assert prefs.backend_url.startswith("http://")
    # one undo step per click: the answer is applied by an undoable operator, the click itself adds none
    assert "UNDO" in bpy.types.CLICKGAUSS_OT_apply_click.bl_options
    assert "UNDO" not in bpy.types.CLICKGAUSS_OT_click_select.bl_options


def test_disable_and_enable_again(addon):
    import addon_utils
    import bpy

    url = bpy.context.preferences.addons[ADDON_MODULE].preferences.backend_url
    addon_utils.disable(ADDON_MODULE)
    assert not hasattr(bpy.types, "CLICKGAUSS_PT_sidebar")
    assert not any(i.idname == "clickgauss.click_select"
                   for i in bpy.context.window_manager.keyconfigs.addon.keymaps["3D View"].keymap_items)
    addon_utils.enable(ADDON_MODULE)
    assert hasattr(bpy.types, "CLICKGAUSS_PT_sidebar")
    bpy.context.preferences.addons[ADDON_MODULE].preferences.backend_url = url  # for tests that follow
