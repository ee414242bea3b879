"""The GPU check: proves the CUDA backend on a GPU machine in one command (issue 18).

    scripts/gpu-check --out DIR                      # on the GPU machine: installs the carried wheels, runs this
    python benchmarks/gpu_check.py --device cpu --quick --out DIR   # the tiny CPU mode (tests/backend)

Steps, each in its own (forked) process with its own time box (a step that fails or runs out of time is
recorded as such and the others still run); the results are rewritten after every step to
DIR/gpu_check.json and DIR/gpu_check.md (the step processes' output goes to DIR/gpu_check.log):

  scenes       the synthetic scenes the steps use (generated while gsplat compiles)
  1 gsplat     does gsplat build (JIT) and run with this torch/CUDA? compile time. If it cannot,
               the reason is recorded and every later step runs on our torch rasterizer.
  2 parity     gsplat against our rasterizer (and ours in float32 against float64) on the same
               random scenes: 24 channels, perspective and orthographic, relative difference of the
               rendered features and of the feature gradients (bench_render's scenes); and the
               click path (one pixel per render) against the same pixels of a whole image.
  3 train      the synthetic benchmark trained at the `gpu` and `paper` presets: wall time, peak
               GPU memory, held-out IoU 3D/2D at both levels (bench_train.train_variants).
  3b steps     one training step's time at 1M and 5M Gaussians over 100+ views at 512 px, masks
               streamed from disk through the MaskStore (setup, KD-tree and mask reads separate).
  4 clicks     click latency p50/p99 at 1M and 10M Gaussians through the server's click route,
               and its floor, one pass over the features, in the same run (bench_train.click_latency).
  5 sam        SAM automatic mask generation, seconds per 1024-px view, vit_b and vit_h with
               random weights, the product's settings, and vit_h keeping every mask (the
               post-processing's worst case) (bench_masks.bench_sam).

Statuses: ok, fallback (gsplat unusable: the reason says why; the steps use our rasterizer),
failed (the reason is the error), timeout (killed at its time box; what it recorded is kept),
skipped (the total budget was spent). The exit code is 0 when no step failed or timed out.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import traceback
from pathlib import Path
from clickgauss_core.protocol import COARSE, FINE, PRESET_GPU, PRESET_PAPER, PRESET_TINY

BENCHMARKS = Path(__file__).resolve().parent
REPO_ROOT = BENCHMARKS.parent
JSON_NAME, MARKDOWN_NAME, LOG_NAME, INSTALL_NAME = "gpu_check.json", "gpu_check.md", "gpu_check.log", "install.json"
# What every step imports, loaded once in the parent so that each forked step process starts at
# once (a torch import costs seconds). Never gsplat (a step may have to run without it) and never
# CUDA initialisation (a forked child must initialise its own).
PRELOAD = ["numpy", "torch", "scipy.spatial", "sklearn.cluster", "clickgauss_backend.features.trainer",
           "clickgauss_backend.features.evaluate", "clickgauss_backend.features.sam",
           "clickgauss_backend.synthetic.scene", "bench_render", "bench_train", "bench_masks"]
# The project's pin (backend/pyproject.toml): scikit-learn's HDBSCAN with cluster_selection_epsilon
# > 0 raises TypeError on numpy >= 2.4 (scikit-learn#33219), and GFL uses exactly that.
NUMPY_BELOW = (2, 4)

STEP_TITLES = {"install": "0 install (carried wheels)", "scenes": "scenes (synthetic inputs)",
               "gsplat": "1 gsplat build + run", "parity": "2 parity gsplat vs ours",
               "train": "3 training presets", "train_steps": "3b step time at scale",
               "clicks": "4 click latency", "sam": "5 SAM automatic masks"}
# Execution order: gsplat first (with the scenes beside it), the quick and most-asked-for
# numbers next, the most expensive last, so that a tight budget loses the least.
ORDER = ["scenes", "gsplat", "parity", "clicks", "train", "sam", "train_steps"]
TABLE_ORDER = ["install", "scenes", "gsplat", "parity", "train", "train_steps", "clicks", "sam"]

SETTINGS = {
    "full": dict(
        parity_sizes=[10_000, 1_000_000], parity_side=256,
        train_presets=[PRESET_GPU, PRESET_PAPER], train_scene="demo", train_settings={},
        step_gaussians=[1_000_000, 5_000_000], step_views=104, step_side=512, step_iterations=25, step_preset=PRESET_GPU,
        step_base_gaussians=200_000,
        click_sizes=[1_000_000, 10_000_000], click_repeats=100,
        sam_models=["vit_b", "vit_h", "vit_h:keep-all"], sam_side=1024, sam_points=32, sam_views=3),
    "quick": dict(
        parity_sizes=[2_000], parity_side=40,
        train_presets=[PRESET_TINY],
        train_scene="tiny",  # not vocabulary: a synthetic scene size
        train_settings=dict(iterations=12, gfl_start=6, gfl_refresh_every=3, checkpoint_every=1000),
        step_gaussians=[3_000, 6_000], step_views=6, step_side=48, step_iterations=5, step_preset=PRESET_TINY,
        step_base_gaussians=2_000,
        click_sizes=[2_000, 20_000], click_repeats=8,
        sam_models=["tiny"], sam_side=64, sam_points=1, sam_views=2),  # not vocabulary: a SAM model size
}
TIME_BOXES = {
    # seconds; on an H200 the whole check is meant to take ~8 minutes (the `run` call's limit is 10)
    "full": dict(scenes=150, gsplat=300, parity=60, clicks=60, train=180, sam=120, train_steps=150),
    "quick": dict(scenes=90, gsplat=60, parity=60, clicks=60, train=90, sam=90, train_steps=90),
}
BUDGET_S = {"full": 520, "quick": 300}


# -- the step processes ------------------------------------------------------------------------------

class Recorder:
    """What a step found, rewritten to its result file after every call, so a step killed at its
    time box keeps what it had measured."""

    def __init__(self, path: Path):
        self.path = path
        self.data = {"status": None, "reason": None, "numbers": {}, "tables": {}, "notes": []}
        self._write()

    def _write(self) -> None:
        partial = self.path.with_suffix(".partial")
        partial.write_text(json.dumps(self.data, indent=1, default=_plain))
        os.replace(partial, self.path)

    def number(self, key: str, value) -> None:
        self.data["numbers"][key] = value
        self._write()

    def row(self, table: str, row: dict) -> None:
        self.data["tables"].setdefault(table, []).append(row)
        self._write()

    def note(self, text: str) -> None:
        self.data["notes"].append(text)
        self._write()

    def status(self, status: str, reason: str | None = None) -> None:
        self.data["status"], self.data["reason"] = status, reason
        self._write()


def _plain(value):
    """JSON for numpy scalars and paths."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _peak_gpu_mib(device: str):
    import torch

    return torch.cuda.max_memory_allocated() / 2 ** 20 if device.startswith("cuda") else None


def _reset_peak(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def _bench_module(name: str):
    """A benchmarks/bench_*.py script as a module (benchmarks/ is not a package)."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    return __import__(name)


SCENE_SPECS = {
    # name -> (preset, overrides) from the context
    "train": lambda c: (c["train_scene"], {}),
    "steps": lambda c: ("large" if not c["quick"] else "tiny",  # not vocabulary: a synthetic scene size
                        dict(n_gaussians=c["step_base_gaussians"], width=c["step_side"], height=c["step_side"],
                             n_train=c["step_views"], n_test=0)),
    "sam": lambda c: ("tiny", dict(width=c["sam_side"], height=c["sam_side"] * 3 // 4, n_train=c["sam_views"], n_test=0)),  # not vocabulary: a synthetic scene size
}


def scene_folder(context: dict, name: str) -> Path:
    """Where the scene `name` lives: named by its settings, so quick and full runs never share one."""
    preset, overrides = SCENE_SPECS[name](context)
    return Path(context["work"]) / "scenes" / "_".join([name, preset, *(f"{k}{v}" for k, v in sorted(overrides.items()))])


def ensure_scene(context: dict, name: str):
    """The synthetic scene `name` under the work folder, generated when missing (`scenes` makes them
    ahead; a step whose scene is not there yet generates it itself)."""
    from clickgauss_backend.synthetic.scene import SCENE_JSON, generate_scene, load_synthetic

    folder = scene_folder(context, name)
    if not (folder / SCENE_JSON).is_file():
        preset, overrides = SCENE_SPECS[name](context)
        generate_scene(folder, preset=preset, seed=0, **overrides)
    return load_synthetic(folder)


def step_scenes(context: dict, rec: Recorder) -> None:
    for name in ("train", "sam", "steps"):
        started = time.perf_counter()
        scene = ensure_scene(context, name)
        seconds = time.perf_counter() - started
        rec.row("scenes", {"scene": name, "gaussians": len(scene.gaussian_objects), "views": len(scene.view_names),
                           "size": f"{scene.config.width}x{scene.config.height}", "seconds": round(seconds, 2)})
        rec.number(f"{name}_s", round(seconds, 2))
    rec.note("generated with our torch rasterizer (gsplat blocked: it may be compiling beside this step)")


def step_gsplat(context: dict, rec: Recorder) -> None:
    import torch

    device = context["device"]
    rec.number("torch", torch.__version__)
    rec.number("torch_cuda", torch.version.cuda)
    started = time.perf_counter()
    try:
        import gsplat
    except ImportError as exc:
        rec.status("fallback", f"gsplat does not import ({exc}); the steps use our torch rasterizer")
        return
    rec.number("gsplat", getattr(gsplat, "__version__", "?"))
    rec.number("import_s", round(time.perf_counter() - started, 2))
    if not device.startswith("cuda"):
        rec.number("torch_smoke_render_ms", _smoke_render_ms(device, "torch"))
        rec.status("fallback", f"device {device}: gsplat runs on CUDA only; the steps use our torch rasterizer")
        return
    major, minor = torch.cuda.get_device_capability()
    rec.number("gpu", torch.cuda.get_device_name())  # not vocabulary: the GPU's name
    rec.number("capability", f"{major}.{minor}")
    # Compile for this GPU only (not every architecture torch knows), on every core.
    os.environ.setdefault("TORCH_CUDA_ARCH_LIST", f"{major}.{minor}")
    os.environ.setdefault("MAX_JOBS", str(os.cpu_count() or 4))
    if shutil.which("ninja") is None:  # torch's JIT runs `ninja`; the pip package's may not be on PATH
        try:
            import ninja

            os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")
        except ImportError:
            pass
    rec.number("ninja", shutil.which("ninja"))
    rec.number("arch_list", os.environ["TORCH_CUDA_ARCH_LIST"])
    rec.number("max_jobs", os.environ["MAX_JOBS"])
    nvcc = shutil.which("nvcc") or (os.path.join(os.environ["CUDA_HOME"], "bin", "nvcc") if "CUDA_HOME" in os.environ else None)
    if nvcc and os.path.exists(nvcc):
        version = subprocess.run([nvcc, "--version"], capture_output=True, text=True).stdout.strip().splitlines()
        rec.number("nvcc", version[-1] if version else "?")
    else:
        rec.number("nvcc", None)
    # What the JIT build needs besides nvcc: Python's headers (a missing python3-dev is a classic failure).
    rec.number("python_h", os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))
    from torch.utils.cpp_extension import _get_build_directory

    build_dir = _get_build_directory("gsplat_cuda", verbose=False)
    rec.number("cached_build", os.path.exists(os.path.join(build_dir, "gsplat_cuda.so")))
    rec.note(f"build folder {build_dir}: a rerun on the same (still warm) machine reuses a finished build; "
             "gsplat restarts an unfinished one from scratch")
    started = time.perf_counter()
    from gsplat.cuda import _backend

    rec.number("jit_compile_s", round(time.perf_counter() - started, 1))
    if _backend._C is None:
        rec.status("fallback", "gsplat found no CUDA toolkit (nvcc / CUDA_HOME) to compile its kernels; "
                               "the steps use our torch rasterizer")
        return
    rec.number("first_render_ms", _smoke_render_ms(device, "gsplat"))
    rec.number("warm_render_ms", _smoke_render_ms(device, "gsplat"))
    rec.status("ok")


def _smoke_render_ms(device: str, backend: str) -> float:
    bench_render = _bench_module("bench_render")
    from clickgauss_backend.render import rasterize

    gaussians, features = bench_render.synthetic_scene(2_000, seed=0, device=device)
    started = time.perf_counter()
    rendered = rasterize(gaussians, features, bench_render.scene_camera(64), rasterizer=backend)
    _sync(device)
    if not bool(rendered.features.isfinite().all()):
        raise RuntimeError(f"the {backend} rasterizer rendered non-finite features")
    return round((time.perf_counter() - started) * 1000.0, 2)


def _gsplat_usable() -> bool:
    from clickgauss_backend.render.gsplat_rasterizer import gsplat_available

    return gsplat_available()


def _relative(candidate, reference) -> float:
    candidate, reference = candidate.detach(), reference.detach().double()
    return float((candidate.double() - reference).norm() / reference.norm().clamp_min(1e-30))


def step_parity(context: dict, rec: Recorder) -> None:
    """gsplat vs our rasterizer (float32 both) and ours float32 vs float64: features and gradients."""
    import numpy as np
    import torch

    from clickgauss_backend.render import GaussianTensors, rasterize
    from clickgauss_core.cameras import Camera

    bench_render = _bench_module("bench_render")
    device, side = context["device"], context["parity_side"]
    with_gsplat = device.startswith("cuda") and _gsplat_usable()
    if not with_gsplat:
        rec.note("gsplat unusable here: only our rasterizer's float32 against float64 is compared")
    cameras = {"perspective": bench_render.scene_camera(side),
               # the cube of Gaussians spans x, y in [-1, 1]: 1.1 units across half the image
               "orthographic": Camera(np.eye(4), side, side, side / 2.2, side / 2.2, side / 2, side / 2,
                                      projection="orthographic")}
    worst: dict[str, float] = {}
    for count in context["parity_sizes"]:
        gaussians, features = bench_render.synthetic_scene(count, seed=0, device=device)
        gaussians64 = GaussianTensors(*(t.double() for t in (gaussians.means, gaussians.quats,
                                                               gaussians.scales, gaussians.opacities)))
        for projection, camera in cameras.items():
            upstream = torch.randn((side, side, features.shape[1]), generator=torch.Generator().manual_seed(2)).to(device)

            def render(backend: str, precision: torch.dtype):
                values = features.to(precision).detach().requires_grad_(True)
                geometry = gaussians64 if precision == torch.float64 else gaussians
                _sync(device)
                started = time.perf_counter()
                out = rasterize(geometry, values, camera, rasterizer=backend)
                (out.features * upstream.to(precision)).sum().backward()
                _sync(device)
                return out, values.grad, (time.perf_counter() - started) * 1000.0

            ours, ours_grad, ours_ms = render("torch", torch.float32)
            ours64, ours64_grad, ours64_ms = render("torch", torch.float64)
            pairs = [("torch fp32 vs fp64", ours, ours_grad, ours_ms, ours64, ours64_grad)]
            if with_gsplat:
                render("gsplat", torch.float32)  # warm-up
                theirs, theirs_grad, theirs_ms = render("gsplat", torch.float32)
                pairs.insert(0, ("gsplat vs torch fp32", theirs, theirs_grad, theirs_ms, ours, ours_grad))
            for label, cand, cand_grad, cand_ms, ref, ref_grad in pairs:
                row = {"gaussians": count, "projection": projection, "image": f"{side}x{side}", "compared": label,
                       "features_rel_diff": _relative(cand.features, ref.features),
                       "grad_rel_diff": _relative(cand_grad, ref_grad),
                       "alpha_max_abs_diff": float((cand.alpha.detach().double() - ref.alpha.detach().double()).abs().max()),
                       "candidate_fwd_bwd_ms": round(cand_ms, 2), "torch_fp32_fwd_bwd_ms": round(ours_ms, 2)}
                rec.row("parity", row)
                for key in ("features_rel_diff", "grad_rel_diff"):
                    name = f"{label.split(' vs ')[0].replace(' ', '_')}_{key}_max"
                    worst[name] = max(worst.get(name, 0.0), row[key])
                    rec.number(name, worst[name])
            # The click path: one pixel at a time (`pixels=`; gsplat renders a 1x1 crop) against the
            # same pixels of our whole-image render.
            clicked = torch.randint(0, side, (32, 2), generator=torch.Generator().manual_seed(3)).to(device)
            expected = ours.features.detach()[clicked[:, 1], clicked[:, 0]]
            for backend in (["gsplat"] if with_gsplat else []) + ["torch"]:
                with torch.no_grad():
                    got = torch.stack([rasterize(gaussians, features, camera, rasterizer=backend, pixels=pixel[None]).features[0]
                                       for pixel in clicked])
                label = f"click pixels: {backend} pixels= vs torch image"
                rec.row("parity", {"gaussians": count, "projection": projection, "image": f"{side}x{side}",
                                   "compared": label, "features_rel_diff": _relative(got, expected)})
                name = f"click_{backend}_rel_diff_max"
                worst[name] = max(worst.get(name, 0.0), _relative(got, expected))
                rec.number(name, worst[name])
            del ours, ours64, ours_grad, ours64_grad
        del gaussians, gaussians64, features
        if device.startswith("cuda"):
            torch.cuda.empty_cache()


def step_train(context: dict, rec: Recorder) -> None:
    bench_train = _bench_module("bench_train")
    device = context["device"]
    ensure_scene(context, "train")
    work = scene_folder(context, "train")
    rec.number("rasterizer", "gsplat" if device.startswith("cuda") and _gsplat_usable() else "torch")
    for preset in context["train_presets"]:
        def record(_name, entry, preset=preset):
            defaults, calibrated = entry["default_thresholds"], entry["calibrated"]
            rec.row("train", {
                "preset": preset, "train_s": round(entry["train_seconds"], 1),
                "peak_gpu_mib": entry["cuda_peak_mb"],
                "coarse_3d": defaults[COARSE]["iou_3d"], "coarse_2d": defaults[COARSE]["iou_2d"],
                "fine_3d": defaults[FINE]["iou_3d"], "fine_2d": defaults[FINE]["iou_2d"],
                "calibrated_coarse_3d": calibrated[COARSE]["iou_3d"], "calibrated_fine_3d": calibrated[FINE]["iou_3d"],
                "iterations": entry["settings"]["iterations"], "pixels": entry["settings"]["pixels_per_iteration"]})
            rec.number(f"{preset}_train_s", round(entry["train_seconds"], 1))
            rec.number(f"{preset}_coarse_3d_2d", [round(defaults[COARSE]["iou_3d"], 3), round(defaults[COARSE]["iou_2d"], 3)])
            rec.number(f"{preset}_fine_3d_2d", [round(defaults[FINE]["iou_3d"], 3), round(defaults[FINE]["iou_2d"], 3)])

        bench_train.train_variants(work, preset, device, seed=0, variants=["full"], settings=context["train_settings"],
                                   scene_preset=context["train_scene"], progress=record)
    rec.note("IoU at the default click thresholds, held-out views (features/evaluate.py); "
             "calibrated = the best threshold of the sweep")


class _StopAfterSteps(Exception):
    """Raised from the progress callback once the timed steps are done (skips the final clustering)."""


def step_train_steps(context: dict, rec: Recorder) -> None:
    import numpy as np
    import torch

    from clickgauss_backend.features.pipeline import (MASKS_FROM_FOLDER, MaskChoice, TrainingPlaces, TrainingRequest,
                                                      run_training, training_config)
    from clickgauss_backend.render import GaussianTensors
    from clickgauss_backend.splat_scene import SplatScene
    from clickgauss_backend.synthetic.geometry import build_room_cloud

    device = context["device"]
    synthetic = ensure_scene(context, "steps")
    views = synthetic.dataset().views
    iterations = context["step_iterations"]
    request = TrainingRequest(MaskChoice(MASKS_FROM_FOLDER, str(synthetic.masks_dir)), preset=context["step_preset"],
                              overrides=dict(iterations=iterations, gfl=False, checkpoint_every=iterations + 1), seed=0)
    places = TrainingPlaces(view_cache_dir=Path(context["work"]) / "steps_views",
                            mask_cache_dir=Path(context["work"]) / "steps_mask_cache", device=device)
    config = training_config(request.preset, request.overrides)
    rec.number("rasterizer", "gsplat" if device.startswith("cuda") and _gsplat_usable() else "torch")
    rec.note(f"{context['step_preset']} preset ({config.pixels_per_iteration} pixels per step, GFL refresh not included); the "
             f"same {len(views)} views' masks (of a {len(synthetic.gaussian_objects):,}-Gaussian room) are "
             f"streamed for every count; the room is rebuilt at each count")
    for count in context["step_gaussians"]:
        started = time.perf_counter()
        cloud = build_room_cloud(count, np.random.default_rng(0)).cloud
        cloud_s = time.perf_counter() - started
        _reset_peak(device)
        scene = SplatScene(ply_path=str(synthetic.ply_path), cloud=cloud, gaussians=GaussianTensors.from_cloud(cloud, device),
                      dataset=None, content_hash=f"room-{count}", device=device)
        stamps: list[float] = []
        masks_read: list[float] = []

        def progress(event):
            if event.stage == "masks":
                masks_read.append(time.perf_counter())
            elif event.stage == "training":
                _sync(device)
                stamps.append(time.perf_counter())
            elif event.stage == "clustering" and event.iteration == event.total:
                raise _StopAfterSteps()

        started = time.perf_counter()
        try:
            run_training(request, scene, places, progress, views=views)
        except _StopAfterSteps:
            pass
        steps_ms = np.diff(stamps) * 1000.0
        steady = steps_ms[2:] if len(steps_ms) > 4 else steps_ms
        rec.row("steps", {"gaussians": count, "views": len(views),
                          "image": f"{synthetic.config.width}x{synthetic.config.height}",
                          "pixels_per_step": config.pixels_per_iteration,
                          "step_ms_median": float(np.median(steady)), "step_ms_p90": float(np.percentile(steady, 90)),
                          # from the call: the mask store built (from its cache after the first count),
                          # then every view's masks read once, the features, the KD-tree of the spatial
                          # term and the first step (with its warm-up)
                          "masks_read_s": round(masks_read[-1] - started, 2),
                          "first_step_done_s": round(stamps[0] - started, 2),
                          "cloud_build_s": round(cloud_s, 2), "peak_gpu_mib": _peak_gpu_mib(device),
                          "steps_timed": len(steady)})
        rec.number(f"step_ms_{count}", round(float(np.median(steady)), 2))
        del scene, cloud
        if device.startswith("cuda"):
            torch.cuda.empty_cache()


def step_clicks(context: dict, rec: Recorder) -> None:
    import torch

    bench_train = _bench_module("bench_train")
    device = context["device"]
    torch.set_num_threads(1)  # as the server's click route does
    rec.number("rasterizer", "gsplat" if device.startswith("cuda") and _gsplat_usable() else "torch")

    def record(count, timing):
        rec.row("clicks", {"gaussians": count, "server_p50_ms": timing["server_p50_ms"],
                           "server_p99_ms": timing["server_p99_ms"], "click_p50_ms": timing["median_ms"],
                           "floor_p50_ms": timing["floor_p50_ms"], "clicks": timing["clicks"]})
        rec.number(f"p50_p99_ms_{count}", [round(timing["server_p50_ms"], 2), round(timing["server_p99_ms"], 2)])
        rec.number(f"floor_ms_{count}", round(timing["floor_p50_ms"], 3))

    bench_train.click_latency(context["click_sizes"], device, repeats=context["click_repeats"], progress=record)
    rec.note("server route = camera from its wire dict + query.click (one-pixel render, cosine, threshold, "
             "mask to host) + wire.encode_mask; floor = one pass over the features (cosine + threshold) on the device")


def step_sam(context: dict, rec: Recorder) -> None:
    """`sam_models` entries: a model name, with ":keep-all" to switch SAM's quality filter off."""
    import torch

    bench_masks = _bench_module("bench_masks")
    from clickgauss_backend.features.sam import SAM_ARCHITECTURES

    device = context["device"]
    scene = ensure_scene(context, "sam")
    checkpoints = Path(context["work"]) / "sam_checkpoints"  # random weights, written once per model
    checkpoints.mkdir(parents=True, exist_ok=True)
    known = {"tiny": bench_masks.TINY_SAM, **SAM_ARCHITECTURES}  # not vocabulary: a SAM model size
    for entry in context["sam_models"]:
        name, _, mode = entry.partition(":")
        if name not in known or mode not in ("", "keep-all"):
            raise ValueError(f"unknown SAM model {entry!r}: choose from {', '.join(known)} (optionally :keep-all)")
        checkpoint = bench_masks.random_sam_checkpoint(known[name], checkpoints / f"random_{name}.pth")
        folder = Path(context["work"]) / "sam" / entry.replace(":", "_")
        shutil.rmtree(folder, ignore_errors=True)  # no mask cache from an earlier run
        folder.mkdir(parents=True)
        _reset_peak(device)
        row = bench_masks.bench_sam(scene, folder, context["sam_points"], context["sam_views"], checkpoint=checkpoint,
                                    model_type=known[name], device=device, keep_all_masks=mode == "keep-all")
        row["peak_gpu_mib"] = _peak_gpu_mib(device)
        rec.row("sam", row)
        rec.number(f"{entry}_s_per_view", round(row["warm_per_view_s"], 3))
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    rec.note("random weights: with SAM's quality filter on (the product's settings) few masks pass, so "
             "post-processing is at its cheapest; keep-all post-processes every mask, its worst case. "
             "s/view leaves the first (warm-up) view out")


STEPS = {"scenes": step_scenes, "gsplat": step_gsplat, "parity": step_parity, "train": step_train,
         "train_steps": step_train_steps, "clicks": step_clicks, "sam": step_sam}


def run_step_here(name: str, context_path: Path, result_path: Path, block_gsplat: bool) -> int:
    """Inside a step process: run one step, record its outcome."""
    if block_gsplat:
        sys.modules["gsplat"] = None  # `import gsplat` raises ImportError: rasterize() uses our rasterizer
    context = json.loads(context_path.read_text())
    rec = Recorder(result_path)
    try:
        STEPS[name](context, rec)
    except Exception as exc:
        traceback.print_exc()
        rec.status("failed", f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}")  # not vocabulary: a step's status
        return 1
    if rec.data["status"] is None:
        rec.status("ok")
    return 0


# -- the orchestrator --------------------------------------------------------------------------------

class Check:
    def __init__(self, args):
        mode = "quick" if args.quick else "full"
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.work = Path(args.work)
        self.work.mkdir(parents=True, exist_ok=True)
        self.context = {**SETTINGS[mode], "device": args.device, "quick": args.quick, "work": str(self.work)}
        for assignment in args.set:
            key, _, value = assignment.partition("=")
            if key not in SETTINGS[mode]:
                raise SystemExit(f"--set {key}: unknown setting (known: {', '.join(SETTINGS[mode])})")
            self.context[key] = json.loads(value)
        self.boxes = dict(TIME_BOXES[mode])
        for assignment in args.time_box:
            key, _, value = assignment.partition("=")
            if key not in self.boxes:
                raise SystemExit(f"--time-box {key}: unknown step (steps: {', '.join(self.boxes)})")
            self.boxes[key] = float(value)
        self.started = time.monotonic()
        self.deadline = self.started + (args.budget or BUDGET_S[mode])
        self.steps = [s for s in ORDER if s in args.steps]
        self.block_gsplat = False
        self.log = open(self.out / LOG_NAME, "a", buffering=1)
        self.report = {"check": "gpu", "issue": 18, "mode": mode,  # not vocabulary: this check's name
                       "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                       "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
                       "machine": machine_info(), "budget_s": args.budget or BUDGET_S[mode],
                       "time_boxes_s": self.boxes, "settings": self.context, "rasterizer": None, "steps": {}}
        install = self.out / INSTALL_NAME
        if install.is_file():
            self.report["steps"]["install"] = json.loads(install.read_text())
        self.context_path = self.work / "context.json"
        self.context_path.write_text(json.dumps(self.context, indent=1))

    def run(self) -> int:
        try:
            return self._run()
        except BaseException:
            # The check itself broke: keep what the steps found, and say where it broke.
            self.report["error"] = traceback.format_exc()
            self.write()
            raise

    def _run(self) -> int:
        failed = preload()
        if failed:
            self.report["preload_failures"] = failed
        print(f"gpu check ({self.report['mode']}, device {self.context['device']}): steps {', '.join(self.steps)}; "
              f"results in {self.out}", flush=True)
        pending = list(self.steps)
        if "scenes" in pending and "gsplat" in pending:
            # gsplat's compile is CPU work on the host; the scenes need the GPU and a few cores.
            pending.remove("scenes")
            pending.remove("gsplat")
            self.finish([self.start("scenes", block_gsplat=True), self.start("gsplat", block_gsplat=False)])
        for name in pending:
            self.finish([self.start(name, block_gsplat=self.block_gsplat or name == "scenes")])
        self.write()
        markdown = self.markdown()
        print(markdown, flush=True)
        # The summary table once more at the very end: a caller that keeps only the output's tail sees it.
        print("\n".join(line for line in markdown.split("\n\n**", 1)[0].splitlines() if line.startswith("|")), flush=True)
        bad = [n for n, s in self.report["steps"].items() if s.get("status") in ("failed", "timeout")]  # not vocabulary: steps' statuses
        return 1 if bad else 0

    def start(self, name: str, block_gsplat: bool) -> dict:
        remaining = self.deadline - time.monotonic()
        box = min(self.boxes[name], remaining)
        handle = {"name": name, "box": box, "started": time.monotonic(), "pid": None,
                  "result": self.work / f"{name}.result.json"}
        if remaining < 5:
            handle["skipped"] = f"the check's budget ({self.report['budget_s']:.0f} s) was spent before this step"
            return handle
        handle["result"].unlink(missing_ok=True)
        self.log.write(f"\n===== step {name} (time box {box:.0f} s{', gsplat blocked' if block_gsplat else ''}) =====\n")
        self.log.flush()
        print(f"[{name}] started (time box {box:.0f} s)", flush=True)
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the step process
            code = 1
            try:
                os.setsid()  # its own process group: a timeout kills nvcc and ninja with it
                os.dup2(self.log.fileno(), 1)
                os.dup2(self.log.fileno(), 2)
                sys.stdout.reconfigure(line_buffering=True)  # what it printed survives a kill
                sys.stderr.reconfigure(line_buffering=True)
                code = run_step_here(name, self.context_path, handle["result"], block_gsplat)
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        handle["pid"] = pid
        return handle

    def finish(self, handles: list[dict]) -> None:
        for handle in handles:
            name, pid = handle["name"], handle["pid"]
            entry = {"title": STEP_TITLES[name], "time_box_s": round(handle["box"], 1)}
            if pid is None:
                entry.update(status="skipped", reason=handle["skipped"], seconds=0.0, numbers={}, tables={}, notes=[])
            else:
                code = wait_for(pid, handle["started"] + handle["box"])
                timed_out = code is None
                if timed_out:
                    os.killpg(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                recorded = (json.loads(handle["result"].read_text()) if handle["result"].is_file()
                            else {"status": None, "reason": None, "numbers": {}, "tables": {}, "notes": []})
                entry.update(recorded, seconds=round(time.monotonic() - handle["started"], 1))
                if timed_out:
                    entry.update(status="timeout", reason=f"killed at its time box ({handle['box']:.0f} s); "  # not vocabulary: a step's status
                                                          "the numbers are what it had measured by then")
                elif recorded["status"] is None:
                    entry.update(status="failed", reason=f"the step process ended ({code}) without a result "  # not vocabulary: a step's status
                                                         f"(see {LOG_NAME})")
            self.report["steps"][name] = entry
            if name == "gsplat":
                self.gsplat_outcome(entry)
            print(f"[{name}] {entry['status']} in {entry['seconds']:.0f} s"
                  + (f": {entry['reason']}" if entry.get("reason") else ""), flush=True)
            self.write()

    def gsplat_outcome(self, entry: dict) -> None:
        if entry["status"] == "ok":
            self.report["rasterizer"] = "gsplat"
        else:
            self.block_gsplat = True
            self.report["rasterizer"] = f"torch (our rasterizer; gsplat {entry['status']}: {entry.get('reason')})"

    def write(self) -> None:
        self.report["elapsed_s"] = round(time.monotonic() - self.started, 1)
        partial = self.out / (JSON_NAME + ".partial")
        partial.write_text(json.dumps(self.report, indent=2, default=_plain) + "\n")
        os.replace(partial, self.out / JSON_NAME)
        (self.out / MARKDOWN_NAME).write_text(self.markdown())

    def markdown(self) -> str:
        return render_markdown(self.report)


def wait_for(pid: int, deadline: float):
    """The exit status of child `pid` (a signal as its negative), or None if it outlives `deadline`."""
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)


def preload() -> list[str]:
    """Import PRELOAD in this (parent) process; what fails is imported, and fails, in the step itself."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    failed = []
    for module in PRELOAD:
        try:
            __import__(module)
        except Exception as exc:
            failed.append(f"{module}: {type(exc).__name__}: {exc}")
    if "gsplat" in sys.modules:
        raise RuntimeError("a preloaded module imported gsplat: steps could not run without it")
    return failed


def render_markdown(report: dict) -> str:
    machine = report["machine"]
    lines = [f"# GPU check ({report['mode']}), {report['date']}", "",
             f"Machine: {machine.get('gpu') or 'no GPU'}; {machine['cpu_count']} CPUs; Python {machine['python']}; "  # not vocabulary: the GPU's name
             f"{machine['platform']}. Rasterizer for steps 2-4: {report['rasterizer'] or 'not decided (gsplat step not run)'}. "
             f"Elapsed {report.get('elapsed_s', 0):.0f} s of a {report['budget_s']:.0f} s budget.", "",
             "| step | status | s (box) | numbers |", "|---|---|---|---|"]
    for name in TABLE_ORDER:
        step = report["steps"].get(name)
        if step is None:
            continue
        numbers = ", ".join(f"{k} {_fmt(v)}" for k, v in step.get("numbers", {}).items())
        status = step["status"] + (f": {step['reason']}" if step.get("reason") else "")
        box = f" ({step['time_box_s']:.0f})" if step.get("time_box_s") else ""
        lines.append(f"| {step.get('title', name)} | {_cell(status)} | {step.get('seconds', 0):.0f}{box} | {_cell(numbers)} |")
    for name in TABLE_ORDER:
        step = report["steps"].get(name) or {}
        for table, rows in step.get("tables", {}).items():
            if not rows:
                continue
            columns = list(dict.fromkeys(key for row in rows for key in row))
            lines += ["", f"**{step.get('title', name)}: {table}**", "",
                      "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
            lines += ["| " + " | ".join(_cell(_fmt(row.get(c, ""))) for c in columns) + " |" for row in rows]
        for note in step.get("notes", []):
            lines.append(f"\n- {step.get('title', name)}: {note}")
    return "\n".join(lines) + "\n"


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-2 or abs(value) >= 1e4 else f"{value:.3f}".rstrip("0").rstrip(".")
    if isinstance(value, list):
        return " / ".join(_fmt(v) for v in value)
    return "-" if value is None else str(value)


def _cell(text: str) -> str:
    return str(text).replace("|", "/").replace("\n", " ")


def machine_info() -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "gpu": None}  # not vocabulary: the GPU's name
    if shutil.which("nvidia-smi"):
        query = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                               capture_output=True, text=True)
        info["gpu"] = query.stdout.strip().splitlines()[0] if query.returncode == 0 and query.stdout.strip() else None  # not vocabulary: the GPU's name
    return info


# -- installing the carried wheels (stdlib only: runs before anything is installed) ---------------------

# What numpy's wheel must not break (built against the machine's own numpy), then the backend.
NUMPY_USERS = ["numpy", "scipy.spatial", "sklearn.cluster", "cv2", "PIL.Image", "torch", "torchvision"]
BACKEND_IMPORTS = ["plyfile", "segment_anything", "gsplat", "fastapi", "uvicorn", "multipart", "clickgauss_core.ply",
                   "clickgauss_backend.features.trainer", "clickgauss_backend.features.sam",
                   "clickgauss_backend.server.app", "clickgauss_backend.cli"]
IMPORT_CHECK = """
import importlib, json, sys
errors = {}
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except Exception as exc:
        errors[name] = f"{type(exc).__name__}: {exc}"
import numpy
print(json.dumps({"numpy": numpy.__version__, "errors": errors}))
"""


def install_wheels(wheels: Path, site: Path, out: Path, python: str) -> int:
    """pip-install every carried wheel into `site` (offline, no dependency resolution), keep numpy's
    wheel only where the machine's numpy breaks the project's pin, and check the backend imports."""
    started = time.monotonic()
    entry = {"title": STEP_TITLES["install"], "status": None, "reason": None, "numbers": {}, "tables": {}, "notes": []}
    files = sorted(wheels.glob("*.whl"))
    if not files:
        entry.update(status="failed", reason=f"no wheels in {wheels}: run scripts/gpu-wheels first (on a machine "  # not vocabulary: a step's status
                                             "with PyPI) and carry the folder")
        return _write_install(entry, out, started)
    numpy_wheels = [f for f in files if f.name.startswith("numpy-")]
    others = [f for f in files if f not in numpy_wheels]
    env = dict(os.environ)
    machine_numpy = subprocess.run([python, "-c", "import numpy; print(numpy.__version__)"], capture_output=True,
                                   text=True, env={k: v for k, v in env.items() if k != "PYTHONPATH"}).stdout.strip()
    entry["numbers"]["machine_numpy"] = machine_numpy or None
    need_numpy = bool(machine_numpy) and tuple(int(p) for p in machine_numpy.split(".")[:2]) >= NUMPY_BELOW
    chosen = others + (numpy_wheels if need_numpy else [])
    shutil.rmtree(site, ignore_errors=True)
    pip = subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--no-compile",
                          "--no-cache-dir", "--disable-pip-version-check", "--upgrade", "--target", str(site),
                          *map(str, chosen)], capture_output=True, text=True)
    entry["numbers"]["wheels"] = len(chosen)
    entry["numbers"]["wheels_mib"] = round(sum(f.stat().st_size for f in chosen) / 2 ** 20, 1)
    entry["numbers"]["pip_s"] = round(time.monotonic() - started, 1)
    entry["tables"]["wheels"] = [{"wheel": f.name, "mib": round(f.stat().st_size / 2 ** 20, 2)} for f in chosen]
    if pip.returncode != 0:
        entry.update(status="failed", reason=f"pip install failed: {(pip.stderr or pip.stdout).strip()[-600:]}")  # not vocabulary: a step's status
        return _write_install(entry, out, started)
    pythonpath = os.pathsep.join([str(site), str(REPO_ROOT / "core"), str(REPO_ROOT / "backend")])
    check = _import_check(python, pythonpath, NUMPY_USERS + BACKEND_IMPORTS)
    if need_numpy and set(check["errors"]) & set(NUMPY_USERS):
        # The carried numpy breaks what the machine built against its own: keep the machine's.
        for path in list(site.glob("numpy")) + list(site.glob("numpy-*")) + list(site.glob("numpy.libs")):
            shutil.rmtree(path, ignore_errors=True)
        entry["notes"].append(f"the carried numpy broke imports ({check['errors']}); kept the machine's numpy "
                              f"{machine_numpy}: GFL's HDBSCAN may raise TypeError (scikit-learn#33219)")
        check = _import_check(python, pythonpath, NUMPY_USERS + BACKEND_IMPORTS)
    elif need_numpy:
        entry["notes"].append(f"machine numpy {machine_numpy} breaks the project's pin (< {NUMPY_BELOW[0]}."
                              f"{NUMPY_BELOW[1]}: scikit-learn#33219): the carried numpy {check['numpy']} shadows it")
    entry["numbers"]["numpy_used"] = check["numpy"]
    entry["numbers"]["install_s"] = round(time.monotonic() - started, 1)
    if check["errors"]:
        entry.update(status="failed", reason="imports fail: " + "; ".join(f"{k}: {v}" for k, v in check["errors"].items()))  # not vocabulary: a step's status
    else:
        entry["status"] = "ok"
    return _write_install(entry, out, started)


def _import_check(python: str, pythonpath: str, modules: list[str]) -> dict:
    done = subprocess.run([python, "-c", IMPORT_CHECK, *modules], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=pythonpath))
    if done.returncode != 0:
        return {"numpy": None, "errors": {"python": done.stderr.strip()[-600:]}}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _write_install(entry: dict, out: Path, started: float) -> int:
    entry["seconds"] = round(time.monotonic() - started, 1)
    out.mkdir(parents=True, exist_ok=True)
    (out / INSTALL_NAME).write_text(json.dumps(entry, indent=2) + "\n")
    print(f"[install] {entry['status']} in {entry['seconds']:.0f} s" + (f": {entry['reason']}" if entry["reason"] else ""),
          flush=True)
    for note in entry["notes"]:
        print(f"[install] {note}", flush=True)
    return 0 if entry["status"] == "ok" else 1


# -- command line --------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--out", default=os.environ.get("OUT"), help="results folder (default: $OUT)")
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: the CPU mode the test suite runs")
    parser.add_argument("--steps", nargs="+", default=ORDER, choices=ORDER, help="which steps (default: all)")
    parser.add_argument("--time-box", action="append", default=[], metavar="STEP=SECONDS",
                        help="override one step's time box")
    parser.add_argument("--budget", type=float, default=None,
                        help=f"seconds for all steps (default {BUDGET_S['full']}, quick {BUDGET_S['quick']})")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                        help="override a setting, e.g. --set 'click_sizes=[1000000]'")
    parser.add_argument("--work", default="/tmp/clickgauss-gpu-check", help="scratch folder (scenes, caches)")
    parser.add_argument("--install-wheels", type=Path, metavar="DIR",
                        help="only install the wheels in DIR into --site and check the imports (scripts/gpu-check does this)")
    parser.add_argument("--site", type=Path, default=Path("/tmp/clickgauss-site"))
    args = parser.parse_args(argv)
    if not args.out:
        parser.error("give --out DIR (or set OUT)")
    if args.install_wheels:
        return install_wheels(args.install_wheels, args.site, Path(args.out), sys.executable)
    return Check(args).run()


if __name__ == "__main__":
    sys.exit(main())
