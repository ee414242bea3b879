"""The add-on's Gaussian display against the backend rasterizer, on the real splats.

    .venv-blender-4.2/bin/python benchmarks/bench_display.py [--data ../shared/data/real] [--size 320 240]
        [--samples 32] [--json benchmarks/results/bench_display.json] [--images docs/images]

For every splat file under --data (one per folder; SPZ and datasets without a trained splat are
skipped): import it through the installed add-on (Gaussians display), frame it with two cameras
(`clickgauss_core.framing`), render each headless with EEVEE (or --engine CYCLES), and render the same cameras with
`clickgauss-backend render-colors` (SH DC base colour over black, the backend environment as a
subprocess). Prints PSNR / SSIM per splat and camera, writes JSON and a side-by-side PNG per
splat (EEVEE | backend | 4x absolute difference).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests" / "blender"))
from display_pictures import compare_display, install_addon, side_by_side  # noqa: E402

SPLAT_SUFFIXES = (".ply", ".splat")


def splat_files(data: Path) -> list[Path]:
    """One splat per folder (the largest; SuperSplat compressed PLYs included, SPZ not: import
    does not read it)."""
    found = []
    for folder in sorted(p for p in data.iterdir() if p.is_dir()):
        candidates = [p for p in folder.iterdir() if p.suffix in SPLAT_SUFFIXES and p.name != "color.ply"]
        if candidates:
            found.append(max(candidates, key=lambda p: p.stat().st_size))
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data" / "real")
    parser.add_argument("--size", type=int, nargs=2, default=(320, 240))
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--only", nargs="*", help="folder names to run (default: all)")
    parser.add_argument("--engine", default="BLENDER_EEVEE", choices=("BLENDER_EEVEE", "CYCLES"))
    parser.add_argument("--json", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "bench_display.json")
    parser.add_argument("--images", type=Path, default=REPO_ROOT / "docs" / "images")
    args = parser.parse_args(argv)
    addon_module = install_addon(Path(tempfile.mkdtemp(prefix="clickgauss-bench-display-")))
    rows = []
    for path in splat_files(args.data):
        if args.only and path.parent.name not in args.only:
            continue
        started = time.perf_counter()
        result = compare_display(addon_module, path, args.size, args.samples, Path(tempfile.mkdtemp()), args.engine)
        result["engine"] = args.engine
        result["seconds"] = round(time.perf_counter() - started, 1)
        suffix = "" if args.engine == "BLENDER_EEVEE" else "_cycles"
        picture = args.images / f"display_{path.parent.name}{suffix}.png"
        side_by_side(result["pairs"], picture)
        result["picture"] = os.path.relpath(picture, REPO_ROOT)
        result.pop("pairs")
        rows.append(result)
        write_json(args, rows)  # after every splat: a stopped run keeps what it measured
        print(f"{path.parent.name:28s} {result['gaussians']:>8,} G  "
              + "  ".join(f"{v['camera']}: PSNR {v['psnr']:.2f} dB SSIM {v['ssim']:.3f}" for v in result["views"])
              + f"  ({result['seconds']} s)", flush=True)
    write_json(args, rows)
    return 0


def write_json(args, rows) -> None:
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"size": args.size, "samples": args.samples, "splats": rows}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
