"""Load test of the backend service: many clicks from concurrent clients against a real server.

    backend/.venv/bin/python benchmarks/bench_load.py --gaussians 100000 --clicks 1000 --clients 1 4 \
        --out benchmarks/results/bench_load_cpu.json

What it does, end to end through the public HTTP API:
1. generates the synthetic scene (`generate_scene(..., n_gaussians=N)`: PLY + COLMAP dataset + masks);
2. starts `clickgauss-backend serve` as a separate process (the same command users run);
3. opens the scene (POST /v1/scenes) and trains a feature field through POST /v1/jobs with a
   deliberately SHORT run (preset "tiny", `--train-iterations`): click latency depends on the
   Gaussian count and the 1-pixel render, not on how well the field is trained, so the field is
   real but not converged;
4. for each `--clients` value, sends `--clicks` click requests (random pixels of the dataset's
   cameras, alternating coarse / fine) from that many threads, each with its own HTTP connection,
   after a few warm-up clicks; a click counts as failed unless it is a 200 with a decodable mask;
5. prints p50 / p90 / p99 / max latency, throughput and failed requests; writes JSON (`--out`).
A `--work` folder from an earlier run is reused: its scene is loaded instead of generated and the
server's cache there still holds the trained field (then no training happens).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import numpy as np

from clickgauss_core import wire
from clickgauss_core.datasets import load_dataset
from clickgauss_core.launcher import MODULE_CLI, free_port, spawn_backend, stop_backend, wait_until_healthy
from clickgauss_core.protocol import COARSE, DONE, FINE, PRESET_TINY, QUEUED, RUNNING

WARMUP_CLICKS = 8


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def build_click_bodies(dataset_path: Path, count: int, seed: int) -> list[dict]:
    """`count` click requests at random pixels of the dataset's cameras, alternating levels."""
    rng = np.random.default_rng(seed)
    cameras = [wire.camera_to_dict(view.camera) for view in load_dataset(dataset_path).views]
    bodies = []
    for index in range(count):
        camera = cameras[int(rng.integers(len(cameras)))]
        pixel = [float(rng.uniform(0, camera["width"])), float(rng.uniform(0, camera["height"]))]
        bodies.append({"camera": camera, "pixel": pixel, "level": (COARSE, FINE)[index % 2], "threshold": None})
    return bodies


def run_clients(url: str, scene_id: str, bodies: list[dict], clients: int) -> tuple[list[float], list[str], float]:
    """Send `bodies` split over `clients` threads; (latencies in ms, failure descriptions, wall s)."""
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    shares = [bodies[i::clients] for i in range(clients)]
    barrier = threading.Barrier(clients + 1)

    def client(share: list[dict]) -> None:
        with httpx.Client(base_url=url, timeout=120.0) as http:
            barrier.wait()
            for body in share:
                start = time.perf_counter()
                try:
                    response = http.post(f"/v1/scenes/{scene_id}/click", json=body)
                    elapsed = (time.perf_counter() - start) * 1000.0
                    ok = response.status_code == 200
                    if ok:
                        wire.decode_mask(response.json()["mask"])  # a well-formed mask, not just a 200
                    problem = None if ok else f"HTTP {response.status_code}: {response.text[:200]}"
                except Exception as exc:  # a failed request is a result here, not a crash
                    elapsed = (time.perf_counter() - start) * 1000.0
                    problem = f"{type(exc).__name__}: {exc}"
                with lock:
                    latencies.append(elapsed)
                    if problem is not None:
                        failures.append(problem)

    threads = [threading.Thread(target=client, args=(share,)) for share in shares]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return latencies, failures, time.perf_counter() - started


def train(http: httpx.Client, scene_id: str, masks_dir: Path, iterations: int) -> None:
    """A short real training through the API (preset "tiny", `iterations` iterations)."""
    job = http.post("/v1/jobs", json={"scene_id": scene_id, "masks": {"source": "folder", "path": str(masks_dir)},
                                      "preset": PRESET_TINY, "settings": {"iterations": iterations}})
    job.raise_for_status()
    job_id = job.json()["job_id"]
    while (state := http.get(f"/v1/jobs/{job_id}").json())["state"] in (QUEUED, RUNNING):
        time.sleep(0.5)
    if state["state"] != DONE:
        raise RuntimeError(f"training job ended {state['state']}: {state['error']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gaussians", type=int, default=100_000)
    parser.add_argument("--scene-preset", default="tiny", help="synthetic preset for cameras/views (default tiny)")  # not vocabulary: a synthetic scene size
    parser.add_argument("--clicks", type=int, default=1000)
    parser.add_argument("--clients", type=int, nargs="+", default=[4], help="concurrent clients, one run each")
    parser.add_argument("--train-iterations", type=int, default=20)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)

    from clickgauss_backend.synthetic import generate_scene, load_synthetic

    work = args.work or Path(tempfile.mkdtemp(prefix="bench_load_"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    scene = None
    if (work / "scene" / "scene.json").is_file():  # a --work folder of an earlier run: reuse its scene
        scene = load_synthetic(work / "scene")
        if len(scene.gaussian_objects) != args.gaussians:
            scene = None
    if scene is None:
        scene = generate_scene(work / "scene", preset=args.scene_preset, seed=args.seed, n_gaussians=args.gaussians)
    generate_s = time.perf_counter() - started

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = work / "server.log"
    process = spawn_backend([sys.executable, *MODULE_CLI], port, log_path, cache_dir=work / "cache", data_roots=[work],
                            extra_args=["--device", args.device, "--log-level", "warning"])
    try:
        started = time.perf_counter()
        health = wait_until_healthy(url, process, timeout=180.0, log_path=log_path)
        startup_s = time.perf_counter() - started
        with httpx.Client(base_url=url, timeout=600.0) as http:
            opened = http.post("/v1/scenes", json={"ply_path": str(scene.ply_path), "dataset_path": str(scene.dataset_path)})
            opened.raise_for_status()
            scene_id = opened.json()["scene_id"]
            started = time.perf_counter()
            if opened.json()["has_features"]:  # the --work cache already holds this scene's field
                train_s = None
            else:
                train(http, scene_id, scene.masks_dir, args.train_iterations)
                train_s = time.perf_counter() - started

        rows = []
        for clients in args.clients:
            bodies = build_click_bodies(scene.dataset_path, args.clicks + WARMUP_CLICKS, args.seed)
            warmup_latencies, warmup_failures, _ = run_clients(url, scene_id, bodies[:WARMUP_CLICKS], 1)
            latencies, failures, wall_s = run_clients(url, scene_id, bodies[WARMUP_CLICKS:], clients)
            rows.append({"clients": clients, "clicks": len(latencies), "failed": len(failures) + len(warmup_failures),  # not vocabulary: a count of clicks
                         "failures": failures[:10], "first_warmup_click_ms": round(warmup_latencies[0], 2),
                         "latency_ms": {"p50": percentile(latencies, 50), "p90": percentile(latencies, 90),
                                        "p99": percentile(latencies, 99), "max": max(latencies),
                                        "mean": statistics.fmean(latencies)},
                         "throughput_clicks_per_s": len(latencies) / wall_s, "wall_s": wall_s})
    finally:
        stop_backend(process, timeout=30)

    results = {
        "benchmark": "bench_load", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpu_count": os.cpu_count(), "server_device": health["device"]},
        "gaussians": len(scene.gaussian_objects), "scene_preset": args.scene_preset,
        "train_iterations": args.train_iterations, "scene_s": round(generate_s, 2),
        "server_startup_s": round(startup_s, 2), "train_s": None if train_s is None else round(train_s, 2),
        "runs": rows,
    }
    print(f"{'gaussians':>10} {'clients':>7} {'clicks':>6} {'failed':>6} {'p50 ms':>8} {'p90 ms':>8} "  # not vocabulary: a count of clicks
          f"{'p99 ms':>8} {'max ms':>8} {'clicks/s':>8}")
    for row in rows:
        latency = row["latency_ms"]
        print(f"{results['gaussians']:>10} {row['clients']:>7} {row['clicks']:>6} {row['failed']:>6} "  # not vocabulary: a count of clicks
              f"{latency['p50']:>8.1f} {latency['p90']:>8.1f} {latency['p99']:>8.1f} {latency['max']:>8.1f} "
              f"{row['throughput_clicks_per_s']:>8.1f}")
    trained = "reused the cached field" if train_s is None else f"{args.train_iterations}-iteration training in {train_s:.1f} s"
    print(f"(scene ready in {generate_s:.1f} s, server up in {startup_s:.1f} s, {trained})")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
    return 0 if all(row["failed"] == 0 for row in rows) else 1  # not vocabulary: a count of clicks


if __name__ == "__main__":
    sys.exit(main())
