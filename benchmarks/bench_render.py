"""Rasterizer benchmark: forward + backward time and peak memory of rendering 24-channel features.

Synthetic random Gaussians (a cube of them in front of the camera, sizes shrinking with the
count so that the depth complexity stays scene-like), rendered as whole images and as the
training workload (a random subset of pixels). Every configuration runs in a fresh process so
that its peak memory is its own.

    backend/.venv/bin/python benchmarks/bench_render.py --sizes 10k:256 100k:256 --out render.json
    backend/.venv/bin/python benchmarks/bench_render.py --backend gsplat --device cuda --out gpu.json

`--backend gsplat` also renders the same scene with the torch rasterizer on the same device and
reports their relative difference.
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import platform
import resource
import statistics
import sys
import time

DEFAULT_SIZES = ["10k:256", "10k:512", "100k:256", "100k:512"]
CHANNELS = 24


def parse_size(text: str) -> tuple[int, int]:
    """'100k:256' -> (100000, 256): Gaussians and image side."""
    count, _, side = text.partition(":")
    multiplier = {"k": 1_000, "m": 1_000_000}.get(count[-1].lower(), 1)
    number = count[:-1] if count[-1].lower() in "km" else count
    return int(float(number) * multiplier), int(side or 256)


def synthetic_scene(num_gaussians: int, seed: int, device: str):
    import torch

    from clickgauss_backend.render import GaussianTensors

    gen = torch.Generator().manual_seed(seed)
    means = torch.rand(num_gaussians, 3, generator=gen) * 2 - 1
    means[:, 2] += 3.0
    # Scale ~ spacing of the points, so that a ray meets a similar number of Gaussians at any count.
    typical = 0.8 * num_gaussians ** (-1 / 3)
    scales = typical * torch.exp(0.5 * torch.randn(num_gaussians, 3, generator=gen))
    gaussians = GaussianTensors(
        means=means, quats=torch.nn.functional.normalize(torch.randn(num_gaussians, 4, generator=gen), dim=-1),
        scales=scales, opacities=torch.rand(num_gaussians, generator=gen) * 0.95 + 0.05)
    features = torch.randn(num_gaussians, CHANNELS, generator=gen)
    return gaussians.to(device), features.to(device)


def scene_camera(side: int):
    import numpy as np

    from clickgauss_core.cameras import Camera

    focal = side / (2 * np.tan(np.radians(25)))  # 50 degree field of view
    return Camera(np.eye(4), side, side, focal, focal, side / 2, side / 2)


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run_configuration(config: dict) -> dict:
    """One row: runs inside its own process."""
    import torch

    from clickgauss_backend.render import rasterize

    torch.set_num_threads(config["threads"])
    device = config["device"]
    gaussians, features = synthetic_scene(config["gaussians"], seed=0, device=device)
    camera = scene_camera(config["side"])
    pixels = None
    if config["pixels"]:
        gen = torch.Generator().manual_seed(1)
        pixels = torch.randint(0, config["side"], (config["pixels"], 2), generator=gen).to(device)
    features.requires_grad_(True)

    def synchronize():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    def render_once():
        features.grad = None
        synchronize()
        start, start_cpu = time.perf_counter(), time.process_time()
        out = rasterize(gaussians, features, camera, rasterizer=config["backend"], pixels=pixels)
        synchronize()
        middle = time.perf_counter()
        (out.features * out.features).sum().backward()
        synchronize()
        return out, middle - start, time.perf_counter() - middle, time.process_time() - start_cpu

    baseline_rss = rss_bytes()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        baseline_gpu = torch.cuda.memory_allocated()
    out, *_ = render_once()  # warm-up
    forward, backward, cpu = [], [], []
    for _ in range(config["repeats"]):
        out, f, b, c = render_once()
        forward.append(f)
        backward.append(b)
        cpu.append(c)
    row = {key: config[key] for key in ("backend", "device", "gaussians", "side", "pixels", "threads")}
    row.update(forward_ms=1e3 * statistics.median(forward), backward_ms=1e3 * statistics.median(backward),
               total_ms=1e3 * (statistics.median(forward) + statistics.median(backward)),
               # CPU seconds of the process: on a shared machine this, not wall time, is stable.
               cpu_ms=1e3 * statistics.median(cpu),
               mean_alpha=float(out.alpha.mean()))
    # ru_maxrss is the process's peak in KiB; minus what was resident before the first render.
    row["peak_cpu_mib"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - baseline_rss) / 2**20
    if device.startswith("cuda"):
        row["peak_gpu_mib"] = (torch.cuda.max_memory_allocated() - baseline_gpu) / 2**20
    if config["backend"] == "torch":
        from clickgauss_backend.render.torch_rasterizer import compositing_weights

        requested = pixels if pixels is not None else torch.stack(
            [axis.reshape(-1) for axis in torch.meshgrid(torch.arange(config["side"], device=device),
                                                         torch.arange(config["side"], device=device),
                                                         indexing="xy")], dim=1)
        weights = compositing_weights(gaussians, camera, requested)
        row["contributions_per_pixel"] = weights.weights.numel() / requested.shape[0]
    if config["backend"] == "gsplat":
        with torch.no_grad():
            reference = rasterize(gaussians, features, camera, rasterizer="torch", pixels=pixels)
        difference = (out.features - reference.features).norm() / reference.features.norm().clamp_min(1e-12)
        row["relative_difference_vs_torch"] = float(difference)
        row["max_alpha_difference_vs_torch"] = float((out.alpha - reference.alpha).abs().max())
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=DEFAULT_SIZES,
                        help="GAUSSIANS:SIDE entries, e.g. 10k:256 1m:512 (default: %(default)s)")
    parser.add_argument("--pixels", type=int, nargs="*", default=[0, 10_000],
                        help="0 = whole image; P = a random subset of P pixels, the training workload")
    parser.add_argument("--backend", choices=["torch", "gsplat"], default="torch")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=torch_threads_default())
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", help="write the rows as JSON here")
    args = parser.parse_args(argv)

    rows = []
    header = (f"{'backend':8} {'device':6} {'gaussians':>9} {'image':>9} {'pixels':>7} {'fwd ms':>9} "
              f"{'bwd ms':>9} {'total ms':>9} {'cpu ms':>9} {'peak MiB':>9}")
    print(header)
    context = multiprocessing.get_context("spawn")
    for size in args.sizes:
        gaussians, side = parse_size(size)
        for pixels in args.pixels:
            config = dict(backend=args.backend, device=args.device, gaussians=gaussians, side=side,
                          pixels=pixels, threads=args.threads, repeats=args.repeats)
            with context.Pool(1) as pool:
                row = pool.apply(run_configuration, (config,))
            rows.append(row)
            peak = row.get("peak_gpu_mib", row["peak_cpu_mib"])
            line = (f"{row['backend']:8} {row['device']:6} {gaussians:>9} {f'{side}x{side}':>9} "
                    f"{pixels or 'all':>7} {row['forward_ms']:9.1f} {row['backward_ms']:9.1f} "
                    f"{row['total_ms']:9.1f} {row['cpu_ms']:9.1f} {peak:9.0f}")
            if "relative_difference_vs_torch" in row:
                line += f"  rel. diff vs torch {row['relative_difference_vs_torch']:.2e}"
            print(line, flush=True)
    if args.out:
        import torch

        report = {
            "benchmark": "render", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
            "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
                        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None},  # not vocabulary: the GPU's name
            "rows": rows,
        }
        with open(args.out, "w") as handle:
            json.dump(report, handle, indent=2)
    return 0


def torch_threads_default() -> int:
    return min(2, os.cpu_count() or 1)


if __name__ == "__main__":
    sys.exit(main())
