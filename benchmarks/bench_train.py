"""Click-Gaussian accuracy and speed on the synthetic "demo" scene (inconsistent SAM-like masks).

    backend/.venv/bin/python benchmarks/bench_train.py [--preset cpu-fast] [--work DIR] \
        [--out benchmarks/results/bench_train_cpu.json] [--device cpu|cuda] [--click-sizes 10000 100000 1000000]

1. Generates the synthetic "demo" scene (seed 0) into `--work` (reused when already there).
2. Trains on its training views only (precomputed masks through MaskStore), or with `--views
   planned` on views planned around the splat (`clickgauss_backend.views`, `--view-count`,
   `--view-resolution`) with label masks rendered at them under the scene's own SAM-like noise
   (`synthetic.label_masks`), seven times:
   the full method, GFL off, granularity prior off, the paper's mask terms (our three changes
   to them, `config.ROBUST_MASK_TERMS`, undone), the paper's fine clustering (all 24 dims
   instead of the rest dims), the paper's pixel sampling (every mask an equal share, however
   small) and equal coarse shares (only `sampling_exponent_coarse` undone). Each run is timed.
3. Evaluates each field on the held-out views with `features.evaluate.evaluate_field`: one click
   per object (coarse) / part (fine), 3D IoU over the visible Gaussians and LERF-Mask-style 2D
   IoU of the rendered selection (protocol in evaluate.py). The cosine threshold of each level is
   calibrated by sweeping 0.50..0.99 and keeping the best mean 3D IoU (the sweep is printed); this
   is how `query.DEFAULT_THRESHOLDS` was chosen. The full method is also scored at the defaults
   and with snapping the click to the nearest global cluster.
4. Click latency (`query.click`: one-pixel `pixels=` render + cosine over all Gaussians + threshold) at each
   `--click-sizes` Gaussian count, on a random cloud with random unit features (latency depends
   on the count, not on the features' quality); median of 20 clicks after 3 warm-ups. Also the
   server route's share (camera from its wire dict + click + mask encoded, p50 / p99) and the
   floor: one pass over the features (cosine + threshold, no render).
5. Peak memory: the process's max RSS (and CUDA peak allocation on GPU).
Prints the tables and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

from clickgauss_core import wire
from clickgauss_core.cameras import Camera
from clickgauss_core.gaussians import GaussianCloud
from clickgauss_core.protocol import COARSE, FINE, PRESET_CPU_FAST

from clickgauss_backend.features.config import TrainConfig
from clickgauss_backend.features.evaluate import evaluate_field
from clickgauss_backend.features.field import FeatureField
from clickgauss_backend.features.masks import PrecomputedMasks
from clickgauss_backend.features.pipeline import TrainingPlaces, TrainingRequest, run_training, training_config
from clickgauss_backend.features.query import DEFAULT_THRESHOLDS, click, similarity_to
from clickgauss_backend.render import GaussianTensors
from clickgauss_backend.splat_scene import SplatScene
from clickgauss_backend.synthetic.label_masks import synthetic_label_masks
from clickgauss_backend.synthetic.scene import SCENE_JSON, generate_scene, load_synthetic
from clickgauss_backend.views import ViewSettings, training_views

REPO_ROOT = Path(__file__).resolve().parents[1]
# "paper's mask terms" / "fine clustering" / "pixel sampling" / "equal coarse shares" / "masks as
# given": the same schedule with one of our changes undone (config.ROBUST_MASK_TERMS /
# fine_clusters_on_rest / both sampling changes / sampling_exponent_coarse / snap_masks_to_colours),
# to show what each is worth.
VARIANTS = {"full": {}, "no GFL": {"gfl": False}, "no granularity prior": {"granularity_prior": False},
            "paper's mask terms": {"unmasked_negatives": False, "skip_mask_edges": False,
                                   "lambda_negative": TrainConfig().lambda_negative},
            "paper's fine clustering": {"fine_clusters_on_rest": False},
            "paper's pixel sampling": {"sampling_min_mask_fraction_coarse": 0.0, "sampling_min_mask_fraction_fine": 0.0,
                                       "sampling_exponent_coarse": 1.0},
            "equal coarse shares": {"sampling_exponent_coarse": 1.0},
            "masks as given": {"snap_masks_to_colours": False}}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def training_inputs(work: Path, synthetic, scene, view_settings: ViewSettings | None):
    """(training views, mask source) for `run_training`: the scene's photos (test views held out) with its masks, or
    (view_settings given) views planned around the splat with label masks rendered at them under
    the same noise."""
    if view_settings is None:
        return [scene.views[i] for i in synthetic.train_indices], PrecomputedMasks(synthetic.masks_dir)
    planned = training_views(scene, work / "views_cache", "planned", view_settings)
    print(f"{planned.sentence()}: {planned.plan['mode']}, {planned.plan['width']}x{planned.plan['height']}, "
          f"median distance {planned.plan['distance']:.2f}", flush=True)
    return planned.views, synthetic_label_masks(synthetic, scene.gaussians)


def train_variants(work: Path, preset: str, device: str, seed: int, variants: list[str], settings: dict,
                   scene_preset: str = "demo", progress=None, view_settings: ViewSettings | None = None) -> dict:
    """Train and evaluate each variant on the synthetic scene in `work` (generated when missing);
    `view_settings`: train on views planned around the splat instead of the photos.

    `progress(name, entry)` is called after each variant (the GPU check records results as they come)."""
    if not (work / SCENE_JSON).is_file():
        started = time.perf_counter()
        generate_scene(work, preset=scene_preset, seed=0)
        print(f"generated the {scene_preset} scene in {time.perf_counter() - started:.0f} s", flush=True)
    synthetic = load_synthetic(work)
    scene = SplatScene.load(synthetic.ply_path, dataset_path=synthetic.dataset_path, device=device)
    train_views, mask_source = training_inputs(work, synthetic, scene, view_settings)
    places = TrainingPlaces(view_cache_dir=work / "views_cache", mask_cache_dir=work / "mask_cache", device=device)
    results = {}
    for name in variants:
        request = TrainingRequest(masks=None, preset=preset, overrides={**settings, **VARIANTS[name]}, seed=seed)
        config = training_config(preset, request.overrides)
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()  # the masks come from the cache after the first variant
        field = run_training(request, scene, places, views=train_views, masks=mask_source)
        seconds = time.perf_counter() - started
        cuda_peak_mb = torch.cuda.max_memory_allocated() / 2 ** 20 if device.startswith("cuda") else None
        file_stem = "".join(c if c.isalnum() else "_" for c in name) + (
            "" if view_settings is None else
            f"_views{view_settings.count}x{view_settings.resolution}f{view_settings.frame_quantile:g}")
        field.save(work / f"field_{file_stem}_seed{seed}.npz")
        evaluation = evaluate_field(field, scene.gaussians, synthetic)  # thresholds calibrated by the sweep
        entry = {"train_seconds": seconds, "settings": config.to_dict(),
                 "cuda_peak_mb": cuda_peak_mb,  # training only
                 "clusters": {level: len(c) for level, c in field.clusters.items()},
                 "calibrated": {level: r.to_dict() for level, r in evaluation.items()}}
        if name == "full":
            entry["default_thresholds"] = {level: r.to_dict() for level, r in
                                           evaluate_field(field, scene.gaussians, synthetic, DEFAULT_THRESHOLDS).items()}
            entry["snapped"] = {level: r.to_dict() for level, r in
                                evaluate_field(field, scene.gaussians, synthetic, DEFAULT_THRESHOLDS, snap=True).items()}
        results[name] = entry
        summary = ", ".join(f"{level} 3D {r.iou_3d:.3f} 2D {r.iou_2d:.3f} @ {r.threshold:.2f}"
                            for level, r in evaluation.items())
        print(f"[{name}] trained in {seconds:.0f} s: {summary}", flush=True)
        if progress is not None:
            progress(name, entry)
    results["scene"] = {"gaussians": len(scene.cloud), "train_views": len(train_views),
                        "views": "photos" if view_settings is None else {"source": "planned", **view_settings.to_dict(),
                                                                          "size": f"{train_views[0].camera.width}x"
                                                                                  f"{train_views[0].camera.height}"},
                        "test_views": len(synthetic.test_indices),
                        "size": f"{synthetic.config.width}x{synthetic.config.height}",
                        "objects": len(synthetic.object_names), "parts": len(synthetic.part_names)}
    return results


def random_scene(count: int, device: str, seed: int = 0):
    """A random cloud in a unit box seen by one camera, with a random unit-feature field."""
    rng = np.random.default_rng(seed)
    positions = rng.uniform(-1, 1, (count, 3))
    cloud = GaussianCloud.from_arrays(positions, np.full((count, 3), np.log(2.0 / count ** (1 / 3))),
                                      np.tile([1.0, 0, 0, 0], (count, 1)), np.full(count, 2.0), np.zeros((count, 3)),
                                      normals=False)
    features = rng.standard_normal((count, 24)).astype(np.float32)
    features[:, :12] /= np.linalg.norm(features[:, :12], axis=1, keepdims=True)
    features[:, 12:] /= np.linalg.norm(features[:, 12:], axis=1, keepdims=True)
    field = FeatureField(features, metadata={"settings": TrainConfig().to_dict()})
    camera = Camera.look_at((0, -3.5, 0), (0, 0, 0), width=1280, height=720, fx=900, fy=900, cx=640, cy=360)
    return GaussianTensors.from_cloud(cloud, device), field, camera


def click_latency(sizes: list[int], device: str, repeats: int = 20, warmup: int = 3, progress=None) -> dict:
    """Per Gaussian count: the click as the server's click route runs it (camera decoded from its
    wire dict, `query.click`, the selection encoded for the wire), and its floor: one pass over
    the features (the cosine similarity of every Gaussian's level feature and the threshold).

    `progress(count, timing)` is called after each count."""
    rng = np.random.default_rng(1)
    synchronize = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    results = {}
    for count in sizes:
        gaussians, field, camera = random_scene(count, device)
        camera_json = wire.camera_to_dict(camera)
        pixels = rng.uniform([400, 200], [880, 520], (repeats + warmup, 2))
        click_ms, server_ms, floor_ms = [], [], []
        for index, pixel in enumerate(pixels):
            level = COARSE if index % 2 else FINE
            started = time.perf_counter()
            decoded = wire.camera_from_dict(camera_json)
            before_click = time.perf_counter()
            selection = click(field, gaussians, camera=decoded, pixel_xy=tuple(pixel), level=level)
            synchronize()
            after_click = time.perf_counter()
            wire.encode_mask(selection)
            finished = time.perf_counter()
            query = torch.from_numpy(field.features[index % count]).to(device)
            synchronize()
            floor_started = time.perf_counter()
            (similarity_to(field, query, level, device) >= DEFAULT_THRESHOLDS[level]).any().item()
            floor_finished = time.perf_counter()
            if index >= warmup:
                click_ms.append((after_click - before_click) * 1000.0)
                server_ms.append((finished - started) * 1000.0)
                floor_ms.append((floor_finished - floor_started) * 1000.0)
        results[str(count)] = {
            "median_ms": float(np.median(click_ms)), "p90_ms": float(np.percentile(click_ms, 90)),
            "min_ms": float(np.min(click_ms)), "server_p50_ms": float(np.percentile(server_ms, 50)),
            "server_p99_ms": float(np.percentile(server_ms, 99)), "floor_p50_ms": float(np.median(floor_ms)),
            "clicks": len(click_ms)}
        timing = results[str(count)]
        print(f"click at {count:,} Gaussians: median {timing['median_ms']:.1f} ms, server path p50 "
              f"{timing['server_p50_ms']:.1f} / p99 {timing['server_p99_ms']:.1f} ms, floor {timing['floor_p50_ms']:.2f} ms",
              flush=True)
        if progress is not None:
            progress(count, timing)
        del gaussians, field
    return results


def print_tables(report: dict) -> None:
    training = report["training"]
    print("\n| variant | train s | coarse 3D | coarse 2D | fine 3D | fine 2D | thresholds (c / f) |")
    print("|---|---|---|---|---|---|---|")
    for name in [n for n in VARIANTS if n in training]:
        entry = training[name]
        c, f = entry["calibrated"][COARSE], entry["calibrated"][FINE]
        print(f"| {name} | {entry['train_seconds']:.0f} | {c['iou_3d']:.3f} | {c['iou_2d']:.3f} | "
              f"{f['iou_3d']:.3f} | {f['iou_2d']:.3f} | {c['threshold']:.2f} / {f['threshold']:.2f} |")
    if "full" in training:
        for label in ("default_thresholds", "snapped"):
            c, f = training["full"][label][COARSE], training["full"][label][FINE]
            print(f"| full, {label.replace('_', ' ')} | - | {c['iou_3d']:.3f} | {c['iou_2d']:.3f} | "
                  f"{f['iou_3d']:.3f} | {f['iou_2d']:.3f} | {c['threshold']:.2f} / {f['threshold']:.2f} |")
        print("\nthreshold sweep (mean 3D IoU, full method):")
        for level in (COARSE, FINE):
            sweep = training["full"]["calibrated"][level]["sweep_3d"]
            print(f"  {level}: " + "  ".join(f"{t}:{v:.3f}" for t, v in sweep.items()))
    print("\n| Gaussians | click median ms | p90 ms | server path p50 / p99 ms | floor ms |")
    print("|---|---|---|---|---|")
    for count, timing in report["click_latency"].items():
        print(f"| {int(count):,} | {timing['median_ms']:.1f} | {timing['p90_ms']:.1f} | "
              f"{timing['server_p50_ms']:.1f} / {timing['server_p99_ms']:.1f} | {timing['floor_p50_ms']:.2f} |")
    print(f"\npeak RSS {report['peak_rss_mb']:.0f} MB")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default=PRESET_CPU_FAST)
    parser.add_argument("--work", default="/tmp/clickgauss-bench-train")
    parser.add_argument("--out", default=str(REPO_ROOT / "benchmarks" / "results" / "bench_train_cpu.json"))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--click-sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=0, help="training seed (the scene is always seed 0)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), metavar="NAME",
                        help=f"which variants to train (default: all of {', '.join(VARIANTS)})")
    parser.add_argument("--settings", type=json.loads, default={},
                        help='TrainConfig overrides for every variant, as JSON (e.g. \'{"tau_fine": 0.6}\')')
    parser.add_argument("--skip-training", action="store_true", help="only the click latency")
    parser.add_argument("--views", default="photos", choices=("photos", "planned"),
                        help="train on the scene's photos and masks, or on views planned around the splat with "
                             "label masks rendered at them (the same SAM-like noise)")
    parser.add_argument("--view-count", type=int, default=48)
    parser.add_argument("--view-resolution", type=int, default=256, help="longer side of planned views (px)")
    parser.add_argument("--view-mode", default="auto", choices=("auto", "orbit", "inside"))
    parser.add_argument("--view-frame", type=float, default=ViewSettings().frame_quantile,
                        help="share of the content's mass each planned view frames (smaller: closer views)")
    args = parser.parse_args(argv)

    report = {"machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                          "torch_threads": torch.get_num_threads(), "device": args.device,
                          "load_average": os.getloadavg()},
              "preset": args.preset, "seed": args.seed, "settings": args.settings, "views": args.views}
    view_settings = None if args.views == "photos" else ViewSettings(args.view_count, args.view_resolution,
                                                                     args.view_mode, frame_quantile=args.view_frame)
    if not args.skip_training:
        report["training"] = train_variants(Path(args.work), args.preset, args.device, args.seed,
                                            args.variants, args.settings, view_settings=view_settings)
    report["click_latency"] = click_latency(args.click_sizes, args.device)
    report["peak_rss_mb"] = peak_rss_mb()
    if args.device == "cuda":
        report["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    if "training" in report:
        print_tables(report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
