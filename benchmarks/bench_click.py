"""Backend click latency at 100k / 1M / 5M Gaussians, beside the floor measured in the same run.

    OMP_NUM_THREADS=1 backend/.venv/bin/python benchmarks/bench_click.py [--sizes 100000 1000000 5000000]
        [--clicks 60] [--json benchmarks/results/bench_click_cpu.json]

Scene and views: benchmarks/click_scene.py (a room of spheres covered by flat Gaussians, 1280x720
views inside it, each clicking a Gaussian; 1 in 4 orthographic), random 24-dim features.
- click: `features.query.click` as the server runs it (the culled one-pixel composite of
  clickgauss_core.click, cosine at the coarse level, threshold), p50 / p99;
- floor: one numpy pass of the coarse level features against a vector plus the threshold
  (`unit @ q >= t`), timed in the same loop;
- before: the previous click (the pixel rendered by `rasterize(..., pixels=)`, which projects
  every Gaussian) on the first clicks, for comparison (skipped above 1M: seconds per click);
- index_s: building the click index (once per scene, on the first click).
One torch / BLAS thread (as the server's click route). Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from click_scene import click_views, latency_summary, room_scene, unit_features  # noqa: E402

from clickgauss_backend.features.config import TrainConfig  # noqa: E402
from clickgauss_backend.features.field import FeatureField  # noqa: E402
from clickgauss_backend.features.query import click, click_index, similarity_to  # noqa: E402
from clickgauss_backend.render import GaussianTensors, rasterize  # noqa: E402
from clickgauss_core.click import unit_rows  # noqa: E402
from clickgauss_core.protocol import COARSE

BEFORE_MAX_GAUSSIANS = 1_000_000
BEFORE_CLICKS = 5


def bench_size(n: int, clicks: int) -> dict:
    cloud = room_scene(n)
    gaussians = GaussianTensors.from_cloud(cloud)
    field = FeatureField(unit_features(n), metadata={"settings": TrainConfig().to_dict()})
    views = click_views(cloud, clicks + 1)
    start = time.perf_counter()
    click_index(gaussians)
    index_s = time.perf_counter() - start
    click(field, gaussians, *views[0], COARSE)  # the unit level features, prepared once per field
    unit = unit_rows(field.level_features(COARSE))
    rng = np.random.default_rng(0)
    click_ms, floor_ms, selected = [], [], []
    for camera, pixel in views[1:]:
        start = time.perf_counter()
        selection = click(field, gaussians, camera, pixel, COARSE)
        click_ms.append((time.perf_counter() - start) * 1e3)
        selected.append(int(selection.sum()))
        query = rng.standard_normal(12).astype(np.float32)
        start = time.perf_counter()
        (unit @ query) >= 0.6
        floor_ms.append((time.perf_counter() - start) * 1e3)
    before_ms = []
    if n <= BEFORE_MAX_GAUSSIANS:
        features = torch.from_numpy(field.features)
        for camera, pixel in views[1:BEFORE_CLICKS + 1]:
            start = time.perf_counter()
            with torch.no_grad():
                rendered = rasterize(gaussians, features, camera, rasterizer="torch",
                                     pixels=torch.tensor([[int(pixel[0]), int(pixel[1])]])).features[0]
            (similarity_to(field, rendered[:12], COARSE) >= 0.6).numpy()
            before_ms.append((time.perf_counter() - start) * 1e3)
    return {"gaussians": n, "clicks": clicks, "index_s": round(index_s, 2), **latency_summary(click_ms, floor_ms),
            "before_p50_ms": round(float(np.median(before_ms)), 1) if before_ms else None,
            "clicks_selecting": int(np.count_nonzero(selected))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 5_000_000])
    parser.add_argument("--clicks", type=int, default=60)
    parser.add_argument("--json", type=Path,
                        default=Path(__file__).resolve().parent / "results" / "bench_click_cpu.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for n in args.sizes:
        rows.append(bench_size(n, args.clicks))
        print(json.dumps(rows[-1]), flush=True)
    header = ("gaussians", "index_s", "click_p50_ms", "click_p99_ms", "floor_p50_ms", "floor_p99_ms",
              "ratio_p50", "ratio_p99", "before_p50_ms")
    print(f"backend click, {platform.processor() or platform.machine()}, {os.cpu_count()} CPU(s), "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    print(" | ".join(header))
    for row in rows:
        print(" | ".join(str(row[k]) for k in header))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"cpus": os.cpu_count(), "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
