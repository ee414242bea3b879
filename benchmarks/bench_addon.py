"""Add-on speed: import, click (add-on side) and export at 100k and 1M Gaussians, and the click
computed inside Blender from the stored features at 100k / 1M / 5M, in real Blender.

    .venv-blender-4.2/bin/python benchmarks/bench_addon.py [--sizes 100000 1000000]
        [--local-sizes 100000 1000000 5000000] [--json out.json]

Builds and installs the extension zip (scripts/build-addon) into a throw-away Blender user folder,
writes synthetic INRIA PLYs (SH degree 3, normals: 62 properties) with clickgauss_core, then times
- import: File > Import operator (PLY read + mesh + every attribute + display modifier);
- click (add-on side): `click.click_select` = camera to JSON, HTTP request, mask decode and
  applying it through cg_id onto the mesh. The answer comes from a small local HTTP responder that
  returns a precomputed real `wire.encode_mask` payload (10% of the Gaussians selected), so the
  number is the add-on's share only (the backend's click time is in its own benchmark);
- display: the display's re-evaluation after a selection change and an EEVEE frame (headless
  render, 1 sample, 320 x 240: the proxy for a viewport frame) in the Gaussians and Points modes;
- export: File > Export operator with an object transform to bake.
- local click (`--local-sizes`): the scene of benchmarks/click_scene.py (the backend's click
  benchmark uses the same), imported, random 24-dim features stored on the object
  (`field_storage.store_field`, as after training), then `click.click_locally` = the
  Shift+click with the features in the .blend: the pixel's Gaussians found through the grid and
  composited, cosine over every Gaussian, threshold, the selection written; p50 / p99 over
  `--clicks` views (with_undo: the same click through the undoable operator, as Shift+click runs
  it: plus Blender's memfile undo step, a cost of every edit operator), beside the floor measured in the same loop (one numpy pass of
  the coarse level features against a vector + threshold). first_click_s builds the click index
  (once per object). blend_mb_per_m: how much the stored field adds to a saved .blend, per million
  Gaussians (measured at sizes <= 1M by saving without and with it).
Prints tables and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
USER_DIR = Path(tempfile.mkdtemp(prefix="clickgauss-bench-user-"))
for _variable in ("BLENDER_USER_RESOURCES", "BLENDER_USER_CONFIG", "BLENDER_USER_SCRIPTS",
                  "BLENDER_USER_DATAFILES", "BLENDER_USER_EXTENSIONS"):
    os.environ[_variable] = str(USER_DIR / _variable.lower())

import bpy  # noqa: E402
import numpy as np  # noqa: E402

ADDON_MODULE = "bl_ext.user_default.clickgauss"
CLICK_REPEATS = 5


def install_addon(work: Path):
    import importlib

    zip_path = work / "clickgauss.zip"
    subprocess.run([str(REPO_ROOT / "scripts" / "build-addon"), str(zip_path)], check=True, capture_output=True)
    assert bpy.ops.extensions.package_install_files(repo="user_default", filepath=str(zip_path),
                                                    enable_on_install=True) == {"FINISHED"}
    return lambda name: importlib.import_module(f"{ADDON_MODULE}.{name}")


def write_scene(path: Path, n: int, seed: int = 0) -> None:
    from clickgauss_core.gaussians import GaussianCloud
    from clickgauss_core.ply import write_gaussian_ply

    rng = np.random.default_rng(seed)
    cloud = GaussianCloud.from_arrays(
        positions=rng.normal(size=(n, 3)).astype(np.float32), log_scales=rng.uniform(-6, -3, (n, 3)),
        rotations=rng.normal(size=(n, 4)), opacity_logits=rng.normal(size=n), sh_dc=rng.normal(size=(n, 3)),
        sh_rest=rng.normal(size=(n, 15, 3)).astype(np.float32) * 0.1)
    write_gaussian_ply(path, cloud)


class CannedClickServer:
    """Answers POST /v1/scenes/<id>/click with one fixed, real protocol response."""

    def __init__(self, body: bytes):
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def bench_size(addon_module, work: Path, n: int) -> dict:
    # clickgauss_core comes with the add-on's wheel: imported once the add-on is installed.
    from clickgauss_core import wire
    from clickgauss_core.cameras import Camera
    from clickgauss_core.protocol import COARSE

    client_module, click = addon_module("client"), addon_module("blender.click")
    ply = work / f"scene_{n}.ply"
    write_scene(ply, n)
    for collection in (bpy.data.objects, bpy.data.meshes):
        bpy.data.batch_remove(list(collection))

    start = time.perf_counter()
    assert bpy.ops.import_scene.clickgauss_splats(filepath=str(ply)) == {"FINISHED"}
    import_s = time.perf_counter() - start
    obj = bpy.context.active_object

    mask = np.random.default_rng(1).random(n) < 0.1
    payload = {"scene_id": "0" * 64, "level": COARSE, "threshold": 0.8, "n_gaussians": n,
               "selected": int(mask.sum()), "mask": wire.encode_mask(mask)}
    body = json.dumps(payload).encode()
    server = CannedClickServer(body)
    client = client_module.BackendClient(server.url)
    camera = Camera(np.eye(4), 1280, 720, 900.0, 900.0, 640.0, 360.0)
    click_times = []
    try:
        for _ in range(CLICK_REPEATS):
            start = time.perf_counter()
            result = click.click_select(client, obj, "0" * 64, camera, (640.5, 360.5), COARSE, None, "NEW")
            click_times.append(time.perf_counter() - start)
    finally:
        server.close()
    assert result.selected_now == mask.sum()

    display = measure_display(addon_module, obj, work)

    obj.location = (1.0, 2.0, 3.0)
    obj.scale = (2.0, 2.0, 2.0)
    bpy.context.view_layer.update()
    start = time.perf_counter()
    assert bpy.ops.export_scene.clickgauss_splats(filepath=str(work / f"out_{n}.ply")) == {"FINISHED"}
    export_s = time.perf_counter() - start
    return {"gaussians": n, "file_mb": round(ply.stat().st_size / 1e6, 1), "import_s": round(import_s, 3),
            "click_ms_median": round(float(np.median(click_times)) * 1000, 1),
            "click_response_kb": round(len(body) / 1e3, 1), "export_s": round(export_s, 3), **display}


def measure_display(addon_module, obj, work: Path) -> dict:
    """The viewport display's cost, headless: re-evaluating the display after a selection change
    (what the viewport waits for after a click), and an EEVEE frame (1 sample, 320 x 240) of the
    Gaussians display (Dithered, the viewport's default, and Sorted, the picture settings') and of
    the Points display: the render after a first one (shaders compiled), as the
    proxy for a viewport frame. The same frame at 32 x 24 (one hundredth of the pixels) tells the
    per-Gaussian cost (vertices, triangle setup) from the per-pixel one (fragments)."""
    from clickgauss_core.framing import framing_cameras

    views, selection = addon_module("blender.views"), addon_module("blender.selection")
    n = len(obj.data.vertices)
    scene = bpy.context.scene
    positions = np.empty(n * 3, dtype=np.float32)
    obj.data.vertices.foreach_get("co", positions)
    camera = framing_cameras(positions.reshape(-1, 3), np.ones(n), 320, 240)[0]
    scene.camera = views.camera_object("bench view", camera, np.array(obj.matrix_world))
    views.set_render_size(scene, camera)
    views.faithful_color_settings(scene)
    result = {}
    # (name, display mode, transparency): the viewport's default, the picture settings', the fast one.
    for name, mode, transparency in (("gaussians", "GAUSSIANS", "DITHERED"), ("gaussians_sorted", "GAUSSIANS", "SORTED"),
                                     ("points", "POINTS", "DITHERED")):
        obj.clickgauss.display_mode = mode
        scene.clickgauss.transparency = transparency
        selection.set_selection(obj, np.random.default_rng(2).random(n) < 0.2)
        start = time.perf_counter()
        obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
        result[f"{name}_update_s"] = round(time.perf_counter() - start, 3)
        frames = []
        for index in range(2):
            start = time.perf_counter()
            views.render_to_file(scene, str(work / f"frame_{name}_{index}.png"), "BLENDER_EEVEE", samples=1)
            frames.append(time.perf_counter() - start)
        result[f"{name}_eevee_frame_s"] = round(frames[-1], 2)
        scene.render.resolution_percentage = 10
        start = time.perf_counter()
        views.render_to_file(scene, str(work / f"frame_{name}_small.png"), "BLENDER_EEVEE", samples=1)
        result[f"{name}_eevee_frame_32x24_s"] = round(time.perf_counter() - start, 2)
        scene.render.resolution_percentage = 100
    return result


def bench_local_click(addon_module, work: Path, n: int, clicks: int) -> dict:
    """The in-Blender click from features stored on the object (see the module docstring)."""
    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    from click_scene import click_views, latency_summary, room_scene, unit_features
    from clickgauss_core.click import unit_rows
    from clickgauss_core.ply import write_gaussian_ply
    from clickgauss_core.protocol import COARSE, FINE
    from clickgauss_core.stored_field import FieldRecord

    storage, local = addon_module("blender.field_storage"), addon_module("blender.click")
    selection = addon_module("blender.selection")
    cloud = room_scene(n)
    ply = work / f"room_{n}.ply"
    write_gaussian_ply(ply, cloud)
    views = click_views(cloud, clicks + 1)
    del cloud
    for collection in (bpy.data.objects, bpy.data.meshes):
        bpy.data.batch_remove(list(collection))
    assert bpy.ops.import_scene.clickgauss_splats(filepath=str(ply), orientation="KEEP") == {"FINISHED"}
    ply.unlink()
    obj = bpy.context.active_object
    blend_mb_per_m = None
    if n <= 1_000_000:
        bpy.ops.wm.save_as_mainfile(filepath=str(work / "without.blend"), copy=True)
    features = unit_features(n)
    record = FieldRecord(clusters={COARSE: np.zeros((0, 12), np.float32), FINE: np.zeros((0, 24), np.float32)},
                         level_slices={COARSE: (0, 12), FINE: (0, 24)}, thresholds={COARSE: 0.6, FINE: 0.9},
                         feature_dim=24, trained_from={"benchmark": True})
    storage.store_field(obj, features, record)
    if n <= 1_000_000:
        bpy.ops.wm.save_as_mainfile(filepath=str(work / "with.blend"), copy=True)
        added = (work / "with.blend").stat().st_size - (work / "without.blend").stat().st_size
        blend_mb_per_m = round(added / 1e6 * 1e6 / n, 1)
        for name in ("with.blend", "without.blend"):
            (work / name).unlink()
    unit = unit_rows(features[:, :12])
    del features
    start = time.perf_counter()
    local.click_locally(obj, *views[0], COARSE, None, "NEW")
    first_click_s = time.perf_counter() - start
    rng = np.random.default_rng(0)
    click_ms, undo_ms, floor_ms, selecting = [], [], [], 0
    for camera, pixel in views[1:]:
        # The add-on's click: compute from the stored field + write the selection.
        start = time.perf_counter()
        clicked = storage.local_click(obj, camera, pixel, COARSE)
        selection.set_selection(obj, clicked.selected)
        click_ms.append((time.perf_counter() - start) * 1e3)
        selecting += bool(clicked.selected.any())
        # The same through the operator, as Shift+click runs it: plus Blender's undo step.
        start = time.perf_counter()
        local.click_locally(obj, camera, pixel, COARSE, None, "NEW")
        undo_ms.append((time.perf_counter() - start) * 1e3)
        query = rng.standard_normal(12).astype(np.float32)
        start = time.perf_counter()
        (unit @ query) >= 0.6
        floor_ms.append((time.perf_counter() - start) * 1e3)
    return {"gaussians": n, "clicks": clicks, "first_click_s": round(first_click_s, 2),
            **latency_summary(click_ms, floor_ms),
            "with_undo_p50_ms": round(float(np.percentile(undo_ms, 50)), 2),
            "with_undo_p99_ms": round(float(np.percentile(undo_ms, 99)), 2),
            "stored_mb_per_m": round(storage.stored_field_bytes(obj) / 1e6 * 1e6 / n, 1),
            "blend_mb_per_m": blend_mb_per_m, "clicks_selecting": int(selecting)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--local-sizes", type=int, nargs="*", default=[100_000, 1_000_000, 5_000_000])
    parser.add_argument("--clicks", type=int, default=60)
    parser.add_argument("--json", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "bench_addon.json")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="clickgauss-bench-"))
    try:
        addon_module = install_addon(work)
        rows = [bench_size(addon_module, work, n) for n in args.sizes]
        local_rows = []
        for n in args.local_sizes:
            local_rows.append(bench_local_click(addon_module, work, n, args.clicks))
            print(json.dumps(local_rows[-1]), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(USER_DIR, ignore_errors=True)
    header = ("gaussians", "file_mb", "import_s", "click_ms_median", "click_response_kb", "export_s",
              *(f"{name}_{what}" for name in ("gaussians", "gaussians_sorted", "points")
                for what in ("update_s", "eevee_frame_s", "eevee_frame_32x24_s")))
    print(f"Blender {bpy.app.version_string}, Python {sys.version.split()[0]}, {os.cpu_count()} CPU(s)")
    print(" | ".join(header))
    for row in rows:
        print(" | ".join(str(row[k]) for k in header))
    local_header = ("gaussians", "first_click_s", "click_p50_ms", "click_p99_ms", "floor_p50_ms", "floor_p99_ms",
                    "ratio_p50", "ratio_p99", "with_undo_p50_ms", "with_undo_p99_ms", "stored_mb_per_m",
                    "blend_mb_per_m")
    print("in-Blender click (features stored on the object)")
    print(" | ".join(local_header))
    for row in local_rows:
        print(" | ".join(str(row[k]) for k in local_header))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"blender": bpy.app.version_string, "cpus": os.cpu_count(), "rows": rows,
                                     "local_click_rows": local_rows}, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
