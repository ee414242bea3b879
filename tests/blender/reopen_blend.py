"""Reopen a saved .blend in a fresh Blender process (bpy as a module) with the add-on installed
from its zip and NO backend (the preferences point at a port nobody listens on), and repeat a
sequence of clicks, a grow, segment everything and an export from the features stored in the
.blend:   python reopen_blend.py spec.json   (spec written by test_local_click.py).

`run_sequence` is also what the test runs in its own process before saving, so both sides do
exactly the same steps."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import socket
import sys
import tempfile
from pathlib import Path

import numpy as np


def run_sequence(module, obj, clicks, out: Path) -> dict:
    """Each click (NEW), the selected cg_ids; then grow the last one to coarse segments; segment
    everything (coarse) into objects; export the first segment. Returns what happened."""
    import bpy
    from clickgauss_core import blender_view
    from clickgauss_core.ply import read_gaussian_ply

    local, selection, mesh_io = (module(name) for name in ("blender.click", "blender.selection",
                                                            "blender.mesh_io"))
    out.mkdir(parents=True, exist_ok=True)
    bpy.context.view_layer.objects.active = obj
    bpy.context.scene.clickgauss.use_threshold = False
    results = {"clicks": []}

    def selected_ids(target):
        return sorted(mesh_io.read_attribute(target.data, "cg_id")[selection.get_selection(target)].tolist())

    for click in clicks:
        view, window = np.array(click["view"]), np.array(click["window"])
        camera = blender_view.camera_from_blender_view(view, window, 160, 120, np.array(obj.matrix_world))
        pixel = blender_view.blender_region_to_pixel(*click["region"], 120)
        local.click_locally(obj, camera, pixel, click["level"], None, "NEW")
        results["clicks"].append(selected_ids(obj))
    assert bpy.ops.clickgauss.grow_selection(level="coarse") == {"FINISHED"}
    results["grown"] = selected_ids(obj)
    assert bpy.ops.clickgauss.segment_everything(level="coarse") == {"FINISHED"}
    parts = sorted((o for o in bpy.data.objects if o.name.startswith(obj.name + ".")), key=lambda o: o.name)
    results["segments"] = sorted(sorted(mesh_io.read_attribute(p.data, "cg_id").tolist()) for p in parts)
    largest = max(parts, key=lambda o: len(o.data.vertices))
    for other in bpy.context.selected_objects:
        other.select_set(False)
    largest.select_set(True)
    bpy.context.view_layer.objects.active = largest
    path = out / "segment.ply"
    assert bpy.ops.export_scene.clickgauss_splats(filepath=str(path)) == {"FINISHED"}
    exported = read_gaussian_ply(path)
    assert not [name for name in exported.properties if name.startswith("cg_")]
    order = np.lexsort((exported.properties["z"], exported.properties["y"], exported.properties["x"]))
    digest = hashlib.sha256(np.ascontiguousarray(exported.positions[order]).tobytes()).hexdigest()
    results["export_ids"] = [len(exported), digest]
    return results


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    user = Path(tempfile.mkdtemp(prefix="clickgauss-reopen-user-"))
    for variable in ("BLENDER_USER_RESOURCES", "BLENDER_USER_CONFIG", "BLENDER_USER_SCRIPTS",
                     "BLENDER_USER_DATAFILES", "BLENDER_USER_EXTENSIONS"):
        os.environ[variable] = str(user / variable.lower())
    import bpy

    assert bpy.ops.extensions.package_install_files(repo="user_default", filepath=spec["addon_zip"],
                                                    enable_on_install=True) == {"FINISHED"}
    package = "bl_ext.user_default.clickgauss"

    def module(name):
        return importlib.import_module(f"{package}.{name}")

    with socket.socket() as probe:  # a port nobody listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    bpy.context.preferences.addons[package].preferences.backend_url = url
    assert bpy.ops.wm.open_mainfile(filepath=spec["blend"]) == {"FINISHED"}
    obj = bpy.data.objects[spec["object"]]
    try:
        module("client").BackendClient(url, timeout=2.0).health()
        backend = "connected"
    except Exception:  # noqa: BLE001 (any failure means: no backend)
        backend = "unreachable"
    storage = module("blender.field_storage")
    facts = {"backend": backend, "has_stored_field": storage.has_stored_field(obj),
             "has_features_flag": bool(obj.clickgauss.has_features), "source_path": str(obj["clickgauss_source"]),
             "masks_path": obj.clickgauss.masks_path,
             "paths_resolve": os.path.isfile(bpy.path.abspath(obj["clickgauss_source"]))
             and os.path.isdir(bpy.path.abspath(obj.clickgauss.masks_path))}
    results = run_sequence(module, obj, spec["clicks"], Path(spec["out"]))
    (Path(spec["out"]) / "results.json").write_text(json.dumps({**facts, **results}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
