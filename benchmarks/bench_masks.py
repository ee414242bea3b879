"""Mask generation and the synthetic scene: how long each costs per view, and the mask cache.

    OMP_NUM_THREADS=2 backend/.venv/bin/python benchmarks/bench_masks.py --out benchmarks/results/bench_masks_cpu.json

Rows:
- `synthetic cloud N`: building the labelled room cloud with N Gaussians (numpy only) and writing its PLY;
- `generate_scene <preset> [n=N]`: the whole scene (cloud, PLY, views rendered with rasterize(),
  label maps, SAM-like masks, COLMAP), per view; `--scene-gaussians` = the tiny preset's views
  with N Gaussians (what the service benchmarks generate);
- `precomputed cold / warm`: MaskStore.build over the scene's mask folder, first (reads, resizes,
  writes the cache) and second time (cache hits only), per view; `load()` from disk per view;
- `SAM tiny random pps=K`: SamMaskGenerator with a tiny random-weight SAM (the plumbing cost: image
  read, SAM's 1024-px preprocessing, K x K point prompts, post-processing, two-level maps, resize);
  NOT the cost of a real vit_h, which is dominated by its image encoder;
- `SAM <model> (checkpoint)`: a real checkpoint when `--sam-checkpoint` is given (GPU if present);
- `SAM vit_b|vit_h random <S>px pps=K`: a model of the real vit_b / vit_h size built with random
  weights (`--sam-sized`, at each `--sam-input-sizes` S): the time is that of the real model (the
  image encoder's work does not depend on the weights; the masks are meaningless). `encoder_s`
  is the image encoder per view, `decode_s` the K x K point prompts' mask decoding and
  post-processing per view; SAM's thresholds are set to keep every mask, so the post-processing
  is timed at its most expensive.
Prints a table and writes JSON (`--out`).

    # what benchmarks/RESULTS.md reports for vit_b / vit_h on a CPU (a few minutes):
    OMP_NUM_THREADS=1 backend/.venv/bin/python benchmarks/bench_masks.py --gaussians --scene-gaussians \
        --presets tiny --sam-points --sam-sized vit_b vit_h --sam-input-sizes 1024 512 --sam-sized-points 8 \
        --sam-views 1 --out benchmarks/results/bench_masks_sam_sizes_cpu.json
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from clickgauss_backend.features.masks import MaskStore, PrecomputedMasks
from clickgauss_backend.features.sam import SAM_ARCHITECTURES, SamArchitecture, SamMaskGenerator
from clickgauss_backend.synthetic import generate_scene
from clickgauss_backend.synthetic.geometry import build_room_cloud
from clickgauss_core.ply import write_gaussian_ply

TINY_SAM = SamArchitecture("tiny-random", embed_dim=32, depth=2, num_heads=2, global_attn_indexes=(1,))


def timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def bench_cloud(n: int, folder: Path) -> dict:
    labelled, build_s = timed(lambda: build_room_cloud(n, np.random.default_rng(0)))
    _, write_s = timed(lambda: write_gaussian_ply(folder / f"cloud_{n}.ply", labelled.cloud))
    (folder / f"cloud_{n}.ply").unlink()
    return {"row": f"synthetic cloud {n:,}", "build_s": build_s, "ply_write_s": write_s}


def bench_scene(preset: str, folder: Path, n_gaussians: int | None = None) -> tuple[dict, object]:
    overrides = {} if n_gaussians is None else {"n_gaussians": n_gaussians}
    scene, seconds = timed(lambda: generate_scene(folder / preset, preset=preset, seed=0, **overrides))
    views = len(scene.view_names)
    label = f"generate_scene {preset}" + ("" if n_gaussians is None else f" n={n_gaussians:,}")
    return {"row": label, "gaussians": len(scene.gaussian_objects), "views": views,
            "size": f"{scene.config.width}x{scene.config.height}", "total_s": seconds,
            "per_view_s": seconds / views}, scene


def bench_precomputed(scene, folder: Path) -> list[dict]:
    views = scene.dataset().views
    size = lambda view: (view.camera.width, view.camera.height)
    cold, cold_s = timed(lambda: MaskStore.build(PrecomputedMasks(scene.masks_dir), views, size, folder / "cache"))
    _, warm_s = timed(lambda: MaskStore.build(PrecomputedMasks(scene.masks_dir), views, size, folder / "cache"))
    fresh = MaskStore.build(PrecomputedMasks(scene.masks_dir), views, size, folder / "cache", memory_cache_size=1)
    _, load_s = timed(lambda: [fresh.load(i) for i in range(len(views))])
    n = len(views)
    return [{"row": "precomputed cold (read+resize+cache)", "views": n, "total_s": cold_s, "per_view_s": cold_s / n,
             "generated": cold.stats["generated"]},
            {"row": "precomputed warm (cache hits)", "views": n, "total_s": warm_s, "per_view_s": warm_s / n},
            {"row": "MaskStore.load from disk", "views": n, "total_s": load_s, "per_view_s": load_s / n}]


def random_sam_checkpoint(architecture: SamArchitecture, path: Path) -> Path:
    """A checkpoint of `architecture` with random weights (seeded): SAM's real cost, no download.
    Reused when `path` is already there."""
    if not path.is_file():
        torch.manual_seed(0)
        torch.save(architecture.build().state_dict(), path)
    return path


def bench_sam(scene, folder: Path, points_per_side: int, n_views: int, checkpoint: Path | None = None,
              model_type: str | SamArchitecture = TINY_SAM, device: str | None = None,
              keep_all_masks: bool | None = None) -> dict:
    """SamMaskGenerator over the scene's first `n_views` views. Without a checkpoint the model has
    random weights; `keep_all_masks` (the default then) turns SAM's quality filter off so that
    every mask is post-processed, the worst case; off, random weights pass few masks, the best case.
    `warm_per_view_s` leaves the first view (CUDA/cuDNN warm-up) out when there are two or more."""
    if checkpoint is None:
        architecture = SAM_ARCHITECTURES[model_type] if isinstance(model_type, str) else model_type
        checkpoint = random_sam_checkpoint(architecture, folder / f"random_{architecture.name}.pth")
        model_type = architecture
        keep_all_masks = True if keep_all_masks is None else keep_all_masks
    settings = dict(pred_iou_thresh=0.0, stability_score_thresh=0.0) if keep_all_masks else {}
    generator, load_s = timed(lambda: SamMaskGenerator(checkpoint, model_type=model_type, device=device,
                                                       points_per_side=points_per_side, **settings))
    views = scene.dataset().views[:n_views]
    size = lambda view: (view.camera.width, view.camera.height)
    finished_at = [time.perf_counter()]
    cache = folder / f"sam_cache_{points_per_side}{'_all' if keep_all_masks else ''}"
    store, seconds = timed(lambda: MaskStore.build(generator, views, size, cache,
                                                   progress=lambda done, total: finished_at.append(time.perf_counter())))
    view_seconds = np.diff(finished_at)
    segments = np.mean([len(np.unique(store.load(i).fine)) - 1 for i in range(len(views))])
    name = model_type.name if isinstance(model_type, SamArchitecture) else model_type
    image_width, image_height = scene.config.width, scene.config.height
    return {"row": f"SAM {name} pps={points_per_side}" + (" keep-all" if keep_all_masks else ""),
            "device": generator.device, "views": len(views),
            "image": f"{image_width}x{image_height}", "load_s": load_s, "total_s": seconds,
            "per_view_s": seconds / len(views),
            "warm_per_view_s": float(np.median(view_seconds[1:] if len(view_seconds) > 1 else view_seconds)),
            "fine_segments_per_view": float(segments)}


def save_random_sam(architecture: SamArchitecture, folder: Path) -> Path:
    """A checkpoint of `architecture` with random weights (segment_anything's own builder)."""
    torch.manual_seed(0)
    path = folder / f"random_{architecture.name}.pth"
    torch.save(architecture.build().state_dict(), path)
    return path


def bench_sam_sized(scene, folder: Path, model: str, input_size: int, points_per_side: int, n_views: int,
                    device: str | None = None) -> dict:
    architecture = SAM_ARCHITECTURES[model]
    checkpoint = save_random_sam(architecture, folder)
    try:
        generator, load_s = timed(lambda: SamMaskGenerator(
            checkpoint, model_type=architecture, device=device, points_per_side=points_per_side,
            input_size=input_size, views_per_batch=n_views, pred_iou_thresh=0.0, stability_score_thresh=0.0))
    finally:
        checkpoint.unlink()
    images = [generator._read_image(view) for view in scene.dataset().views[:n_views]]
    features, encoder_s = timed(lambda: generator._encode(images))

    def decode():  # what generate_batch does once the batch is encoded
        for index, image in enumerate(images):
            generator._predictor.queue_features(features[index:index + 1])
            generator._generator.generate(image)

    _, decode_s = timed(decode)
    seconds = encoder_s + decode_s
    return {"row": f"SAM {model} random {input_size}px pps={points_per_side}", "device": generator.device,
            "views": len(images), "load_s": load_s, "total_s": seconds, "per_view_s": seconds / len(images),
            "encoder_s": encoder_s / len(images), "decode_s": decode_s / len(images)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gaussians", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--presets", nargs="*", default=["tiny", "demo"])  # not vocabulary: synthetic scene sizes
    parser.add_argument("--scene-gaussians", type=int, nargs="*", default=[100_000],
                        help="also generate the tiny preset's views with this many Gaussians")
    parser.add_argument("--sam-points", type=int, nargs="*", default=[8, 16])
    parser.add_argument("--sam-views", type=int, default=3)
    parser.add_argument("--sam-checkpoint", type=Path, default=None, help="also time a real SAM checkpoint")
    parser.add_argument("--sam-model", default="vit_h")
    parser.add_argument("--sam-sized", nargs="*", default=[], choices=sorted(SAM_ARCHITECTURES),
                        help="also time random-weight models of these real sizes")
    parser.add_argument("--sam-input-sizes", type=int, nargs="*", default=[1024])
    parser.add_argument("--sam-sized-points", type=int, default=8, help="points per side for --sam-sized")
    parser.add_argument("--device", default=None, help="for the SAM rows (default: cuda if present)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_masks_") as tmp:
        folder = Path(tmp)
        for n in args.gaussians:
            rows.append(bench_cloud(n, folder))
            print(rows[-1], flush=True)
        for n in args.scene_gaussians:
            rows.append(bench_scene("tiny", folder / "large", n)[0])  # not vocabulary: a synthetic scene size
            print(rows[-1], flush=True)
        scene = None
        for preset in args.presets:
            row, scene = bench_scene(preset, folder)
            rows.append(row)
            print(rows[-1], flush=True)
        if scene is not None:
            rows.extend(bench_precomputed(scene, folder))
            for points in args.sam_points:
                rows.append(bench_sam(scene, folder, points, args.sam_views))
                print(rows[-1], flush=True)
            if args.sam_checkpoint:
                rows.append(bench_sam(scene, folder, 32, args.sam_views, args.sam_checkpoint, args.sam_model,
                                      args.device))
            for model in args.sam_sized:
                for input_size in args.sam_input_sizes:
                    rows.append(bench_sam_sized(scene, folder, model, input_size, args.sam_sized_points,
                                                args.sam_views, args.device))
                    print(rows[-1], flush=True)

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n{'row':42s} {'views':>6s} {'total s':>9s} {'per view s':>11s}  notes")
    for row in rows:
        notes = {k: v for k, v in row.items() if k not in ("row", "views", "total_s", "per_view_s")}
        notes = ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in notes.items())
        total = row.get("total_s")
        per_view = row.get("per_view_s")
        print(f"{row['row']:42s} {row.get('views', ''):>6} {'' if total is None else f'{total:9.3f}':>9s} "
              f"{'' if per_view is None else f'{per_view:11.4f}':>11s}  {notes}")
    print(f"peak RSS {peak_mb:.0f} MB")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "command": " ".join(sys.argv),
            "machine": {"platform": platform.platform(), "cpus": torch.get_num_threads(),
                        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
            "peak_rss_mb": peak_mb, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
