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
