"""Benchmark (not a test): PLY read/write speed for large INRIA-layout clouds.

    backend/.venv/bin/python tests/core/bench_ply_io.py [--sizes 100000 1000000] [--json out.json]

Prints a table (Gaussians, SH degree, file MB, read s, write s) and optionally writes it as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from conftest import make_cloud  # noqa: E402

from clickgauss_core.ply import read_gaussian_ply, write_gaussian_ply  # noqa: E402


def best_of(repeats: int, action) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--sh-degree", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for n in args.sizes:
            cloud = make_cloud(n=n, sh_degree=args.sh_degree)
            path = Path(folder) / f"bench_{n}.ply"
            write_s = best_of(args.repeats, lambda: write_gaussian_ply(path, cloud))
            read_s = best_of(args.repeats, lambda: read_gaussian_ply(path))
            rows.append({"gaussians": n, "sh_degree": args.sh_degree, "file_mb": round(path.stat().st_size / 1e6, 1),
                         "read_s": round(read_s, 4), "write_s": round(write_s, 4)})
    print(f"{'gaussians':>10} {'sh':>3} {'file MB':>8} {'read s':>8} {'write s':>8}")
    for row in rows:
        print(f"{row['gaussians']:>10} {row['sh_degree']:>3} {row['file_mb']:>8} {row['read_s']:>8} {row['write_s']:>8}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
