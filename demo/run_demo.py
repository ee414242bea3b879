"""The Blender half of `run-demo`: the whole product on the built-in synthetic scene, through the
same parts a user goes through.

Runs under a Blender environment's Python (`bpy` from PyPI). Steps: generate the synthetic scene
(backend CLI), build the add-on zip (scripts/build-addon), install it into a throw-away Blender user
folder with Blender's own extension installer, start the backend with the add-on's "Start local
backend" launcher, import the PLY with the add-on's importer, Train Features with the add-on's
operator, click every object (coarse) and part (fine) through the add-on's click path from held-out
viewpoints, segment everything into one object per segment, delete one object, recolour another,
export, save a .blend, then let the backend measure the selections (IoU) and draw the pictures.
Second part, a real splat without photos (`--real-splat`, default the SuperSplat fruit crop in
tests/data/real, MIT): the backend renders the views Train Features will plan around it (a contact
sheet) and, as the demo has no SAM checkpoint, a mask folder from the splat's own per-Gaussian
labels; the add-on imports it, trains on the views rendered from the splat, and clicks each label
from views the training never saw (pictures of the clicks).
The backend is stopped whatever happens; a failure names the step.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]


def _repository_protocol():
    """`clickgauss_core.protocol` read from this checkout under a name of its own: the demo needs the
    protocol's words before it installs the add-on, and the `clickgauss_core` package itself must then
    come from the add-on's wheel, as it does for a user."""
    spec = importlib.util.spec_from_file_location("clickgauss_demo_protocol",
                                                  REPO_ROOT / "core" / "clickgauss_core" / "protocol.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_protocol = _repository_protocol()
COARSE, FINE, DONE, FINISHED_STATES = _protocol.COARSE, _protocol.FINE, _protocol.DONE, _protocol.FINISHED_STATES
PRESET_TINY, PRESET_CPU_FAST, PRESET_GPU, PRESET_PAPER, PRESET_NAMES = (
    _protocol.PRESET_TINY, _protocol.PRESET_CPU_FAST, _protocol.PRESET_GPU, _protocol.PRESET_PAPER, _protocol.PRESET_NAMES)
ADDON_MODULE = "bl_ext.user_default.clickgauss"
TRAINING_TIMEOUT_S = 3600.0
DELETED_COLOR = "deleted"
RECOLOR_RGB = (0.1, 0.45, 1.0)  # a blue no synthetic object has
REAL_SPLAT = REPO_ROOT / "tests" / "data" / "real" / "supersplat-fruit-labels" / "fruit_drops_minimal.ply"


class StepFailed(Exception):
    def __init__(self, step: str, reason: str):
        self.step, self.reason = step, reason
        super().__init__(f"step '{step}' failed: {reason}")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="ClickGauss demo on the built-in synthetic scene.")
    parser.add_argument("--out", default=str(REPO_ROOT / "out" / "demo"), help="output folder (default out/demo)")
    parser.add_argument("--scene-preset", default="demo", choices=("tiny", "demo", "large"),  # not vocabulary: synthetic scene sizes
                        help="size of the synthetic scene (tiny is for the test suite)")
    parser.add_argument("--train-preset", default="auto", choices=("auto", PRESET_TINY, PRESET_CPU_FAST, PRESET_GPU, PRESET_PAPER),
                        help="training preset (auto: cpu-fast on CPU, gpu on CUDA)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="backend device")
    parser.add_argument("--real-splat", default=str(REAL_SPLAT),
                        help="the second part's real splat; its per-Gaussian labels (Segments.ai JSON) next to it "
                             "with the same stem stand in for SAM's masks")
    parser.add_argument("--real-views", type=int, default=16, help="views planned around the real splat")
    parser.add_argument("--real-train-preset", default=PRESET_TINY, choices=PRESET_NAMES,
                        help="training preset for the real splat (default tiny: a quick look)")
    parser.add_argument("--backend-python", default=str(REPO_ROOT / "backend" / ".venv" / "bin" / "python"),
                        help="the backend environment's interpreter")
    return parser.parse_args(argv)


class Demo:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.out = Path(args.out).resolve()
        self.scene_dir = self.out / "scene"
        self.work = self.out / "work"
        self.backend_process = None
        self.client = None
        self.timings: dict = {}
        self.step_number = 0

    # -- plumbing -------------------------------------------------------------------------------
    @contextmanager
    def step(self, title: str):
        self.step_number += 1
        print(f"[{self.step_number}] {title} ...", flush=True)
        started = time.perf_counter()
        try:
            yield
        except StepFailed:
            raise
        except Exception as exc:  # any failure becomes "which step, and why"
            traceback.print_exc()
            raise StepFailed(title, f"{type(exc).__name__}: {exc}") from exc
        print(f"    done in {time.perf_counter() - started:.1f} s", flush=True)

    def backend_cli(self, *args: str) -> None:
        command = [self.args.backend_python, "-m", "clickgauss_backend.cli", *args]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} exited with {result.returncode}:\n{result.stderr[-3000:]}")
        if result.stdout.strip():
            print("    " + result.stdout.strip().replace("\n", "\n    "), flush=True)

    def addon(self, name: str):
        return importlib.import_module(f"{ADDON_MODULE}.{name}")

    # -- the steps ------------------------------------------------------------------------------
    def run(self) -> dict:
        with self.step("generate the synthetic scene"):
            self.backend_cli("synth", str(self.scene_dir), "--preset", self.args.scene_preset, "--preview")
            self.backend_cli("demo-plan", str(self.scene_dir), "--out", str(self.work / "clicks.json"))
            self.plan = json.loads((self.work / "clicks.json").read_text())
        with self.step("build the add-on with Blender's extension builder"):
            self.addon_zip = self.out / "clickgauss-addon.zip"
            result = subprocess.run([str(REPO_ROOT / "scripts" / "build-addon"), str(self.addon_zip)],
                                    capture_output=True, text=True)
            if result.returncode != 0:
                raise RuntimeError(f"scripts/build-addon failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
        with self.step("install the add-on into Blender"):
            self.install_addon()
        with self.step("start the backend (the add-on's local backend launcher)"):
            self.start_backend()
        with self.step("import the scene (File > Import > 3D Gaussian Splatting)"):
            self.obj = self.import_scene()
        with self.step("Train Features"):
            self.timings["training_seconds"], self.timings["training_preset"] = self.train(
                self.obj, self.scene_dir / "masks", self.args.train_preset)
        with self.step(f"click every object and part ({len(self.plan)} clicks)"):
            self.selections = self.click_everything()
        with self.step("segment everything into one object per segment, export each"):
            self.segment_everything()
        with self.step("delete one object, recolour another, export the edited scene"):
            self.edit_and_export()
        with self.step("save the .blend"):
            self.save_blend()
        with self.step("measure the selections and draw the pictures (backend)"):
            summary = self.report()
        with self.step("a real splat without photos: render the views Train Features will use, masks (backend)"):
            self.prepare_real()
        with self.step("import the real splat"):
            self.real_obj = self.import_real()
        with self.step("Train Features on views rendered from the splat (no photos)"):
            self.real_timings["training_seconds"], self.real_timings["training_preset"] = self.train(
                self.real_obj, self.real_dir / "masks", self.args.real_train_preset)
        with self.step(f"click each label of the real splat ({len(self.real_clicks)} clicks)"):
            self.click_real()
        with self.step("draw the real splat's views and clicks (backend)"):
            summary["real_splat"] = self.report_real()
            (self.out / "summary.json").write_text(json.dumps(summary, indent=2))
        return summary

    def install_addon(self) -> None:
        import bpy

        result = bpy.ops.extensions.package_install_files(repo="user_default", filepath=str(self.addon_zip),
                                                          enable_on_install=True)
        if result != {"FINISHED"}:
            raise RuntimeError(f"package_install_files returned {result}")
        importlib.import_module(ADDON_MODULE)

    def start_backend(self) -> None:
        import bpy

        local_backend, client_module = self.addon("local_backend"), self.addon("client")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.backend_log = self.out / "backend.log"
        extra = ["--log-level", "warning"] + (["--device", self.args.device] if self.args.device != "auto" else [])
        self.backend_process = local_backend.start_local_backend(
            self.args.backend_python, port, str(self.backend_log), cache_dir=str(self.work / "backend-cache"),
            data_roots=[self.out], extra_args=extra)
        self.client = client_module.BackendClient(f"http://127.0.0.1:{port}")
        health = local_backend.wait_until_ready(self.client, self.backend_process, log_path=str(self.backend_log))
        bpy.context.preferences.addons[ADDON_MODULE].preferences.backend_url = self.client.url
        print(f"    backend {health.get('version')} on {health.get('device')} at {self.client.url}")
        self.timings["device"] = health.get("device")

    def import_scene(self):
        import bpy

        # Blender's default Cube, Camera and Light have no place in the artist's file.
        for default in list(bpy.data.objects):
            bpy.data.objects.remove(default)
        # Auto orientation: the COLMAP cameras next to the PLY say which way is up.
        result = bpy.ops.import_scene.clickgauss_splats(filepath=str(self.scene_dir / "point_cloud.ply"))
        if result != {"FINISHED"}:
            raise RuntimeError(f"import returned {result}")
        obj = bpy.context.active_object
        print(f"    {len(obj.data.vertices):,} Gaussians as '{obj.name}' (orientation: {obj['clickgauss_orientation']})")
        self.timings["gaussians"] = len(obj.data.vertices)
        return obj

    def train(self, obj, masks: Path, preset: str) -> tuple[float, str]:
        """Train Features on `obj` with the masks in `masks`; returns (seconds, preset used)."""
        import bpy

        session = self.addon("blender.session")
        settings = obj.clickgauss
        settings.masks_source = "FOLDER"
        settings.masks_path = str(masks)
        settings.preset = "AUTO" if preset == "auto" else preset
        bpy.context.view_layer.objects.active = obj
        started = time.perf_counter()
        if bpy.ops.clickgauss.train_features() != {"FINISHED"}:
            raise RuntimeError("the Train Features operator did not start")
        last_print, job = 0.0, None
        while time.perf_counter() - started < TRAINING_TIMEOUT_S:
            session.TASKS.deliver_finished()  # what the add-on's bpy.app.timers callback does in the UI
            if obj.name in session.STATE.errors:
                raise RuntimeError(session.STATE.errors[obj.name])
            job = session.STATE.jobs.get(obj.name)
            if job and job.get("state") in FINISHED_STATES:
                break
            if job and time.perf_counter() - last_print > 5:
                eta = job.get("eta_seconds")
                print(f"    {job.get('stage') or job.get('state')}: {job.get('iteration', 0)}/{job.get('total') or '?'}"
                      + (f", about {eta:.0f} s left" if eta else ""), flush=True)
                last_print = time.perf_counter()
            time.sleep(0.1)
        if not job or job.get("state") != DONE:
            raise RuntimeError(f"training ended as {job and job.get('state')}: {job}")
        # The add-on then downloads the trained field onto the object (it goes into the .blend).
        storage = self.addon("blender.field_storage")
        while not storage.has_stored_field(obj) and time.perf_counter() - started < TRAINING_TIMEOUT_S:
            session.TASKS.deliver_finished()
            if obj.name in session.STATE.errors:
                raise RuntimeError(session.STATE.errors[obj.name])
            time.sleep(0.05)
        if not storage.has_stored_field(obj):
            raise RuntimeError("the trained features were not stored on the object")
        return round(time.perf_counter() - started, 1), job.get("preset") or preset

    def click(self, camera_dict: dict, pixel, level: str, obj=None) -> np.ndarray:
        """One click through the add-on's click path: viewport matrices -> camera in the object's
        frame -> the click computed in Blender from the features stored on the object (what
        Shift+click does; no backend) -> selection on the mesh. Returns the selection in PLY order."""
        from clickgauss_core import blender_view, wire

        # the synthetic object loses Gaussians to the edits; selections stay in its PLY order
        count = int(self.timings["gaussians"]) if obj is None else len(obj.data.vertices)
        obj = obj or self.obj
        selection, local = self.addon("blender.selection"), self.addon("blender.click")
        camera = wire.camera_from_dict(camera_dict)
        view, window = blender_view.blender_view_from_camera(camera, np.array(obj.matrix_world))
        region_x, region_y = pixel[0] - 0.5, camera.height - pixel[1] - 0.5  # the mouse in region coordinates
        viewport = blender_view.camera_from_blender_view(view, window, camera.width, camera.height,
                                                         np.array(obj.matrix_world))
        local.click_locally(obj, viewport, blender_view.blender_region_to_pixel(region_x, region_y, camera.height),
                            level, None, "NEW")
        selected = np.zeros(count, dtype=bool)
        selected[selection.splat_ids(obj)[selection.get_selection(obj)]] = True
        return selected

    def click_everything(self) -> dict:
        selections, latencies = {}, []
        for item in self.plan:
            key = f"{item['level']}_{item['label']}"
            started = time.perf_counter()
            selections[key] = self.click(item["camera"], item["pixel"], item["level"])
            latencies.append((time.perf_counter() - started) * 1000)
            print(f"    {item['level']:6s} {item['name']:24s} {int(selections[key].sum()):6d} "
                  f"Gaussians selected in {latencies[-1]:.0f} ms", flush=True)
        np.savez_compressed(self.work / "selections.npz", **selections)
        self.timings["click_latency_ms"] = {"median": round(float(np.median(latencies)), 1),
                                            "p95": round(float(np.percentile(latencies, 95)), 1),
                                            "count": len(latencies)}
        return selections

    def segment_everything(self) -> None:
        import bpy

        io_operators, session = self.addon("blender.io_operators"), self.addon("blender.session")
        bpy.context.view_layer.objects.active = self.obj
        if bpy.ops.clickgauss.segment_everything(level=COARSE) != {"FINISHED"}:
            raise RuntimeError("Segment Everything did not finish")
        # The operator fetches the segment ids on a worker thread; the timer applies them.
        deadline = time.monotonic() + 300
        while not self.obj.hide_get() and time.monotonic() < deadline:
            session.TASKS.deliver_finished()  # what the add-on's bpy.app.timers callback does in the UI
            if self.obj.name in session.STATE.errors:
                raise RuntimeError(session.STATE.errors[self.obj.name])
            time.sleep(0.05)
        if not self.obj.hide_get():
            raise RuntimeError("Segment Everything: the segments did not arrive within 300 s")
        parts = [o for o in bpy.data.objects if o.name.startswith(f"{self.obj.name}.")]
        segments_dir = self.out / "segments"
        segments_dir.mkdir()
        for part in parts:
            io_operators.export_splats(part, str(segments_dir / f"{part.name.split('.', 1)[1]}.ply"))
        # The segments stay in their own collection, hidden from the viewport and from F12 alike
        # (they would bring deleted Gaussians back over the edit).
        for collection in {c for part in parts for c in part.users_collection}:
            collection.hide_viewport = True
            collection.hide_render = True
        self.obj.hide_set(False)
        bpy.context.view_layer.objects.active = self.obj
        self.timings["segments"] = len(parts)
        print(f"    {len(parts)} segments -> {segments_dir}")

    def edit_and_export(self) -> None:
        import bpy

        coarse = [item for item in self.plan if item["level"] == COARSE]
        deleted, recoloured = coarse[0], coarse[1]
        scene_settings = bpy.context.scene.clickgauss
        bpy.context.view_layer.objects.active = self.obj
        self.click(deleted["camera"], deleted["pixel"], COARSE)
        assert bpy.ops.clickgauss.delete_selected() == {"FINISHED"}
        self.click(recoloured["camera"], recoloured["pixel"], COARSE)
        scene_settings.recolor = RECOLOR_RGB
        assert bpy.ops.clickgauss.recolor_selected() == {"FINISHED"}
        bpy.ops.clickgauss.clear_selection()
        self.edited_ply = self.out / "edited.ply"
        result = bpy.ops.export_scene.clickgauss_splats(filepath=str(self.edited_ply))
        if result != {"FINISHED"}:
            raise RuntimeError(f"export returned {result}")
        self.timings["edits"] = {"deleted": deleted["name"], "deleted_label": deleted["label"],
                                 "recoloured": recoloured["name"], "recoloured_label": recoloured["label"],
                                 "recolour_rgb": list(RECOLOR_RGB),
                                 "gaussians_after_edit": len(self.obj.data.vertices)}

    def save_blend(self) -> None:
        """The .blend an artist opens: the edited scene, a camera on a held-out view (F12 renders
        what the demo edited, in EEVEE with the Gaussians display), one object selected."""
        import bpy
        from clickgauss_core import wire

        views = self.addon("blender.views")
        coarse = [item for item in self.plan if item["level"] == COARSE]
        shown = coarse[1]  # the held-out view of the recoloured object
        camera = wire.camera_from_dict(shown["camera"])
        scene = bpy.context.scene
        scene.camera = views.camera_object("ClickGauss held-out view", camera, np.array(self.obj.matrix_world))
        views.set_render_size(scene, camera)
        scene.render.resolution_percentage = 400  # the views are small (synthetic): F12 at 4x
        views.faithful_color_settings(scene)
        scene.render.engine = views.engine_name("BLENDER_EEVEE")
        bpy.context.view_layer.objects.active = self.obj
        selected_item = coarse[2 % len(coarse)]
        self.click(selected_item["camera"], selected_item["pixel"], COARSE)  # the orange highlight shows
        self.blend = self.out / "clickgauss_demo.blend"
        bpy.ops.wm.save_as_mainfile(filepath=str(self.blend))

    def report(self) -> dict:
        extra_path = self.work / "timings.json"
        extra_path.write_text(json.dumps(self.timings))
        self.backend_cli("demo-report", str(self.scene_dir), "--plan", str(self.work / "clicks.json"),
                         "--selections", str(self.work / "selections.npz"), "--edited-ply", str(self.edited_ply),
                         "--extra", str(extra_path), "--out", str(self.out))
        return json.loads((self.out / "summary.json").read_text())

    # -- the second part: a real splat without photos -----------------------------------------------
    def prepare_real(self) -> None:
        from clickgauss_core.view_planning import DEFAULT_RESOLUTION

        source = Path(self.args.real_splat)
        labels = source.with_suffix(".json")
        self.real_dir = self.out / "real"
        self.real_dir.mkdir()
        # inside the backend's data root; the labels go with it
        self.real_splat, self.real_labels = self.real_dir / source.name, self.real_dir / labels.name
        shutil.copy(source, self.real_splat)
        shutil.copy(labels, self.real_labels)
        # What the add-on sends for an unrotated object: up = +Z; the server renders at its default size.
        self.backend_cli("demo-real-prepare", str(self.real_splat), "--labels", str(self.real_labels),
                         "--out", str(self.real_dir), "--count", str(self.args.real_views),
                         "--resolution", str(DEFAULT_RESOLUTION), "--up", "0", "0", "1")
        self.real_clicks = json.loads((self.real_dir / "clicks.json").read_text())
        self.real_timings: dict = {}

    def import_real(self):
        import bpy

        self.obj.hide_set(True)  # the synthetic room out of the way
        result = bpy.ops.import_scene.clickgauss_splats(filepath=str(self.real_splat), orientation="KEEP")
        if result != {"FINISHED"}:
            raise RuntimeError(f"import returned {result}")
        obj = bpy.context.active_object
        obj.clickgauss.view_count = self.args.real_views
        sentence = self.addon("blender.planned_views").no_photos_sentence(bpy.context, obj)
        print(f"    {len(obj.data.vertices):,} Gaussians as '{obj.name}'; the panel says: {sentence}")
        if not sentence:
            raise RuntimeError("the panel did not say that there are no photos")
        self.real_timings["no_photos_sentence"] = sentence
        return obj

    def click_real(self) -> None:
        selections = {}
        for item in self.real_clicks:
            key = f"{item['level']}_{item['label']}"
            selections[key] = self.click(item["camera"], item["pixel"], item["level"], self.real_obj)
            print(f"    {item['name']:10s} in {item['view']}: {int(selections[key].sum()):5d} Gaussians selected",
                  flush=True)
        np.savez_compressed(self.real_dir / "selections.npz", **selections)

    def report_real(self) -> dict:
        extra_path = self.real_dir / "timings.json"
        extra_path.write_text(json.dumps(self.real_timings))
        self.backend_cli("demo-real-report", str(self.real_splat), "--labels", str(self.real_labels),
                         "--clicks", str(self.real_dir / "clicks.json"), "--selections",
                         str(self.real_dir / "selections.npz"), "--extra", str(extra_path), "--out", str(self.real_dir))
        return json.loads((self.real_dir / "real_summary.json").read_text())

    def stop_backend(self) -> None:
        if self.backend_process is not None:
            from clickgauss_core.launcher import stop_backend

            stop_backend(self.backend_process)
            self.backend_process = None

    def print_next_steps(self, summary: dict) -> None:
        levels = summary["levels"]
        print("\nClickGauss demo finished. Everything is in", self.out)
        print(f"  summary.md / summary.json  IoU per object and part: coarse 3D {levels[COARSE]['mean_iou_3d']:.3f} "
              f"2D {levels[COARSE]['mean_iou_2d']:.3f}, fine 3D {levels[FINE]['mean_iou_3d']:.3f} "
              f"2D {levels[FINE]['mean_iou_2d']:.3f}; training {self.timings['training_seconds']} s; click "
              f"{self.timings['click_latency_ms']['median']} ms median")
        print("  scene.png, clicks_coarse.png, clicks_fine.png   pictures of the scene and of every click")
        print("  edited.ply                  the edited scene (one object deleted, one recoloured)")
        print("  segments/*.ply              one PLY per segmented object")
        print("  clickgauss_demo.blend       open it in Blender (with the add-on installed) to go on by hand")
        real = summary["real_splat"]
        print(f"  real/views.png              the {self.args.real_views} views rendered from {real['splat']} "
              f"(no photos), trained in {real['training_seconds']} s")
        print(f"  real/real_clicks.png        {len(real['clicks'])} clicks on it from views the training never saw "
              f"(mean 3D IoU against its labels {real['mean_iou_3d']:.2f}); real/real_summary.json")
        print("\nNext:")
        print(f"  - Install {self.addon_zip.name} in Blender: Edit > Preferences > Get Extensions > Install from Disk.")
        print("  - Your own scene: backend/.venv/bin/clickgauss-backend train SCENE.ply --dataset DATASET "
              "--sam-checkpoint sam_vit_h.pth --out field.npz  (see README: 'Running on your own capture')")
        print("  - Real captures need a SAM checkpoint (sam_vit_h_4b8939.pth from the segment-anything release).")
        print("  - With a GPU: ./run-demo --device cuda (gsplat rasterizer, the 3000-iteration \"gpu\" preset).")


def main(argv=None) -> int:
    args = parse_args(argv)
    demo = Demo(args)
    if demo.out.exists():
        shutil.rmtree(demo.out)
    demo.work.mkdir(parents=True)
    # Blender's user folders (where the add-on gets installed) live in the output, set before
    # `import bpy`: the user's own ~/.config/blender is never touched. They stay until the
    # process ends: Blender still reads them while it shuts down.
    user_dir = demo.work / "blender-user"
    for variable in ("BLENDER_USER_RESOURCES", "BLENDER_USER_CONFIG", "BLENDER_USER_SCRIPTS",
                     "BLENDER_USER_DATAFILES", "BLENDER_USER_EXTENSIONS"):
        os.environ[variable] = str(user_dir / variable.lower())
    try:
        summary = demo.run()
    except StepFailed as failure:
        print(f"\nDEMO FAILED at step '{failure.step}': {failure.reason}", file=sys.stderr)
        if demo.backend_process is not None:
            print(f"(backend log: {demo.backend_log})", file=sys.stderr)
        return 1
    finally:
        demo.stop_backend()
    demo.print_next_steps(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
