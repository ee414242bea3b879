"""How much of each view the synthetic scene's parts cover: its photos vs views planned around its splat.

    backend/.venv/bin/python benchmarks/bench_view_coverage.py [--work DIR] [--plans 24,160,0.8 48,160,0.8 ...] \
        [--out benchmarks/results/bench_view_coverage.json]

The diagnostic behind the planner's framing (benchmarks/RESULTS.md, "Training without photos"): a
part that covers few pixels in the training views gets few samples and is mostly mask edge, so
its features separate less. For the "demo" scene (seed 0, generated into `--work` when missing):
the 24 training photos, then each planned configuration (count, resolution, frame quantile: the
product's planner with its render checks). Per part: the median share of the image it covers in
the views that show it (%), and in how many views it is visible; per configuration the median camera
distance to the content centre and the elevations. Shares are measured at 160 px wide so they
compare across resolutions. No training. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from clickgauss_backend.splat_scene import SplatScene
from clickgauss_backend.synthetic.label_masks import synthetic_label_masks
from clickgauss_backend.synthetic.scene import SCENE_JSON, generate_scene, load_synthetic
from clickgauss_backend.views import ViewSettings, plan_scene_views

REPO_ROOT = Path(__file__).resolve().parents[1]
MEASURE_WIDTH = 160


def coverage(cameras, masks, n_parts: int, up: np.ndarray, centre: np.ndarray) -> dict:
    shares = []
    for camera in cameras:
        part_map, _ = masks.label_maps(camera.scaled(MEASURE_WIDTH / camera.width))
        shares.append(np.bincount(part_map.ravel(), minlength=n_parts + 1)[1:] / part_map.size)
    shares = np.array(shares)
    offsets = np.array([camera.center - centre for camera in cameras])
    distances = np.linalg.norm(offsets, axis=1)
    elevations = np.degrees(np.arcsin(offsets @ up / distances))
    return {"views": len(cameras), "size": f"{cameras[0].width}x{cameras[0].height}",
            "median_distance": float(np.median(distances)),
            "elevation_deg": [float(v) for v in np.percentile(elevations, [0, 50, 100])],
            "median_share_pct": [float(np.median(shares[shares[:, p] > 0, p]) * 100) if (shares[:, p] > 0).any()
                                 else 0.0 for p in range(n_parts)],
            "visible_views": [int(v) for v in (shares > 0).sum(axis=0)]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", default="/tmp/clickgauss-bench-train")
    parser.add_argument("--plans", nargs="+", default=["24,160,0.8", "48,160,0.8", "24,160,0.6"],
                        help="planned configurations: count,resolution,frame_quantile")
    parser.add_argument("--out", default=str(REPO_ROOT / "benchmarks" / "results" / "bench_view_coverage.json"))
    args = parser.parse_args(argv)

    work = Path(args.work)
    if not (work / SCENE_JSON).is_file():
        generate_scene(work, preset="demo", seed=0)
    synthetic = load_synthetic(work)
    scene = SplatScene.load(synthetic.ply_path, dataset_path=synthetic.dataset_path)
    masks = synthetic_label_masks(synthetic, scene.gaussians)
    n_parts = len(synthetic.part_objects) - 1
    up = np.array([0.0, 0.0, 1.0])  # the synthetic scene is Z up
    photos = [scene.views[i].camera for i in synthetic.train_indices]
    results = {}
    for spec in args.plans:
        count, resolution, frame = spec.split(",")
        cameras, plan = plan_scene_views(scene.cloud, scene.gaussians,
                                         ViewSettings(int(count), int(resolution), frame_quantile=float(frame)))
        centre = np.asarray(plan["bounds"]["center"])
        results[f"planned {count} @ {resolution}, frame {frame}"] = {
            **coverage(cameras, masks, n_parts, up, centre), "moved_forward": plan["moved_forward"],
            "content_centre": plan["bounds"]["center"]}
    # the photos' distances and elevations from the same centre (the first plan's content centre)
    first = next(iter(results.values()))
    results = {"photos (24 training views)": coverage(photos, masks, n_parts, up, np.asarray(first["content_centre"])),
               **results}

    names = list(results)
    print("| part | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for row in (("median camera distance", lambda r: f"{r['median_distance']:.2f}"),
                ("elevation min / median / max (deg)", lambda r: " / ".join(f"{v:.0f}" for v in r["elevation_deg"]))):
        print(f"| {row[0]} | " + " | ".join(row[1](results[n]) for n in names) + " |")
    for p, part in enumerate(synthetic.part_names):
        print(f"| {part} | " + " | ".join(f"{results[n]['median_share_pct'][p]:.2f}% ({results[n]['visible_views'][p]}/"
                                         f"{results[n]['views']})" for n in names) + " |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"parts": list(synthetic.part_names), "results": results}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
