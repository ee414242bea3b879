"""A real splat with real per-Gaussian labels, trained from views planned around it (no photos).

    backend/.venv/bin/python benchmarks/bench_views_real.py [--scene tests/data/real/supersplat-fruit-labels/fruit_drops_minimal.ply]
        [--labels .../fruit_drops_minimal.json] [--count 48] [--resolution 256] [--preset cpu-fast] [--seed 0]
        [--out benchmarks/results/bench_views_fruit_cpu.json]

1. Plans `--count` views around the splat (`clickgauss_backend.views`, the product's planner) and
   renders them; label masks are rendered at each view from the labels JSON with the synthetic
   scene's SAM-like noise (`synthetic.label_masks`; each label is one object of one part).
2. Trains the feature field on those views only.
3. Held out: 8 other views (a Fibonacci sphere at the same framing, not the training rings).
   Evaluation is the synthetic benchmark's protocol (`features.evaluate`): one click per label at
   the deepest point of its mask in the held-out view where it reaches deepest; 3D IoU over the
   visible Gaussians and 2D IoU of the rendered selection; threshold calibrated by the sweep and at
   the defaults. Both levels are scored (with one part per object they ask the same question).
Prints a per-label table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from clickgauss_backend.features.evaluate import evaluate_field
from clickgauss_backend.features.pipeline import TrainingPlaces, TrainingRequest, run_training
from clickgauss_backend.features.query import DEFAULT_THRESHOLDS
from clickgauss_backend.splat_scene import SplatScene
from clickgauss_backend.synthetic.label_masks import LabelledViews, held_out_cameras, json_label_masks
from clickgauss_backend.synthetic.sam_like import MaskNoise
from clickgauss_backend.views import ViewSettings, training_views
from clickgauss_core.protocol import PRESET_CPU_FAST

REPO_ROOT = Path(__file__).resolve().parents[1]
FRUIT = REPO_ROOT / "tests" / "data" / "real" / "supersplat-fruit-labels"


def repository_relative(path: str) -> str:
    """The scene's path as the report names it: relative to the repository when inside it (no machine paths)."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(REPO_ROOT)) if resolved.is_relative_to(REPO_ROOT) else str(path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scene", default=str(FRUIT / "fruit_drops_minimal.ply"))
    parser.add_argument("--labels", default=str(FRUIT / "fruit_drops_minimal.json"))
    # 48 views at 256 px: the settings of the committed fruit rows (RESULTS), not the product's defaults
    parser.add_argument("--count", type=int, default=48)
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--preset", default=PRESET_CPU_FAST)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default="/tmp/clickgauss-bench-views-real")
    parser.add_argument("--out", default=str(REPO_ROOT / "benchmarks" / "results" / "bench_views_fruit_cpu.json"))
    args = parser.parse_args(argv)

    scene = SplatScene.load(args.scene)
    work = Path(args.work)
    planned = training_views(scene, work, "planned", ViewSettings(args.count, args.resolution))
    source = json_label_masks(args.labels, scene.gaussians, MaskNoise(), seed=0)
    request = TrainingRequest(masks=None, preset=args.preset, seed=args.seed)  # the label masks are passed below
    places = TrainingPlaces(view_cache_dir=work, mask_cache_dir=work / "mask_cache")
    masks_done = []  # the training is timed from the end of the "masks" stage, as before the pipeline

    def note_masks(event):
        if event.stage == "masks":
            masks_done.append(time.perf_counter())

    field = run_training(request, scene, places, note_masks, views=planned.views, masks=source)
    started = masks_done[-1]
    seconds = time.perf_counter() - started

    held_out = held_out_cameras(scene, args.resolution)
    labelled = LabelledViews.rendered(source, held_out)
    report = {"machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                          "torch_threads": torch.get_num_threads(), "load_average": os.getloadavg()},
              "scene": repository_relative(args.scene), "gaussians": len(scene.cloud), "views": {**planned.describe(), "folder": Path(planned.folder).name},
              "preset": args.preset, "seed": args.seed, "train_seconds": seconds, "results": {}}
    for name, thresholds in (("calibrated", None), ("default thresholds", DEFAULT_THRESHOLDS)):
        evaluation = evaluate_field(field, scene.gaussians, labelled, thresholds)
        report["results"][name] = {level: r.to_dict() for level, r in evaluation.items()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")

    print(f"trained on {len(planned.views)} planned views ({planned.plan['width']}x{planned.plan['height']}) "
          f"in {seconds:.0f} s")
    labels = sorted({int(k) for r in report["results"]["calibrated"].values() for k in r["per_target_3d"]})
    print("\n| thresholds | level | " + " | ".join(f"label {k} 3D / 2D" for k in labels) + " | mean 3D | mean 2D |")
    print("|---|---|" + "---|" * (len(labels) + 2))
    for name, levels in report["results"].items():
        for level, r in levels.items():
            cells = [f"{r['per_target_3d'].get(str(k), float('nan')):.2f} / {r['per_target_2d'].get(str(k), float('nan')):.2f}"
                     for k in labels]
            print(f"| {name} ({r['threshold']:.2f}) | {level} | " + " | ".join(cells)
                  + f" | {r['iou_3d']:.3f} | {r['iou_2d']:.3f} |")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
