"""`clickgauss-backend synth OUT [--preset demo] [--seed 0] [--n-gaussians N] [--preview]`."""

from __future__ import annotations

import argparse
import time

from .scene import PRESETS


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "synth", help="generate the synthetic benchmark scene (PLY + COLMAP views + GT labels + SAM-like masks)",
        description="Generate the synthetic benchmark scene into OUT: point_cloud.ply, a COLMAP text model "
                    "with rendered images, ground-truth labels (labels.npz), inconsistent two-level masks "
                    "(masks/) and scene.json with the train/test split.")
    parser.add_argument("out", help="output folder (created; existing scene files are overwritten)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="demo",
                        help="size of the scene (default: demo)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same files)")
    parser.add_argument("--n-gaussians", type=_gaussian_count, default=None, help="override the number of Gaussians")
    parser.add_argument("--preview", action="store_true",
                        help="also write preview.png: renders beside GT label maps and the masks")
    parser.set_defaults(func=run_synth)


def _gaussian_count(text: str) -> int:
    count = int(text)
    if count < 100:
        raise argparse.ArgumentTypeError("must be at least 100 (every part needs a few Gaussians)")
    return count


def run_synth(args: argparse.Namespace) -> int:
    from .preview import write_preview
    from .scene import generate_scene

    overrides = {}
    if args.n_gaussians is not None:
        overrides["n_gaussians"] = args.n_gaussians
    start = time.perf_counter()
    scene = generate_scene(args.out, preset=args.preset, seed=args.seed, **overrides)
    seconds = time.perf_counter() - start
    print(f"wrote {scene.root}: {len(scene.gaussian_objects)} Gaussians, {len(scene.object_names)} objects, "
          f"{len(scene.part_names)} parts, {len(scene.train_views)} train + {len(scene.test_views)} test views "
          f"at {scene.config.width}x{scene.config.height} in {seconds:.1f} s")
    if args.preview:
        print(f"wrote {write_preview(scene, scene.root / 'preview.png')}")
    return 0
