"""`clickgauss-backend train | click | segment-all`: Click-Gaussian from the command line."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

from clickgauss_core.errors import ClickGaussInputError
from clickgauss_core.protocol import COARSE, FINE

from .config import LEVELS, PRESETS
from ..views.commands import add_view_arguments, view_settings_from_args


def register(subparsers) -> None:
    train = subparsers.add_parser("train", help="train a Click-Gaussian feature field for a 3DGS PLY")
    train.add_argument("ply", help="the trained 3DGS scene: INRIA or SuperSplat compressed .ply, .spz or antimatter15 .splat")
    train.add_argument("--dataset", help="its training views: COLMAP, INRIA output or nerfstudio folder "
                                         "(default: found next to the PLY; none: views rendered from the splat)")
    add_view_arguments(train)
    masks = train.add_mutually_exclusive_group(required=True)
    masks.add_argument("--masks", help="folder of precomputed two-level masks (<image stem>_coarse/_fine .png/.npy)")
    masks.add_argument("--sam-checkpoint", help="SAM checkpoint file: generate the masks with SAM")
    train.add_argument("--sam-model", default="vit_h", help="SAM model type of the checkpoint (default vit_h)")
    train.add_argument("--sam-points-per-side", type=int, default=32, metavar="N",
                       help="SAM's automatic masks: an N x N grid of point prompts per view (default 32)")
    train.add_argument("--sam-input-size", type=int, default=1024, metavar="PX",
                       help="SAM's image encoder input, a multiple of 16 from 256 to 1024 (default 1024, SAM's own; "
                            "512 is about 4x faster, coarser masks)")
    train.add_argument("--sam-views-per-batch", type=int, default=0, metavar="N",
                       help="views SAM's image encoder takes at once (default: 4 on a GPU, 1 on the CPU)")
    train.add_argument("--preset", default=None, choices=sorted(PRESETS),
                       help="training settings (default: gpu on --device cuda, cpu-fast on cpu)")
    train.add_argument("--out", default=None, help="feature field to write (default: <ply stem>.features.npz)")
    train.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--cache-dir", default=None,
                       help="mask cache and checkpoints (default: <out>.cache next to the output)")
    train.add_argument("--resume", action="store_true", help="continue from the last checkpoint in the cache dir")
    train.set_defaults(func=run_train)

    click = subparsers.add_parser("click", help="select the Gaussians that go with one clicked pixel")
    click.add_argument("field", help="feature field (.npz from `train`)")
    click.add_argument("ply", help="the splat file the field was trained on (any format train takes)")
    click.add_argument("--camera", required=True, help="camera JSON (clickgauss_core.wire camera dict)")
    click.add_argument("--pixel", required=True, nargs=2, type=float, metavar=("X", "Y"))
    click.add_argument("--level", required=True, choices=LEVELS)
    click.add_argument("--threshold", type=float, default=None, help="cosine threshold (default: calibrated)")
    click.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    click.add_argument("--out", required=True, help="bool (N,) selection in PLY order (.npy)")
    click.set_defaults(func=run_click)

    segment = subparsers.add_parser("segment-all", help="global-cluster id of every Gaussian at both levels")
    segment.add_argument("field", help="feature field (.npz from `train`)")
    segment.add_argument("--out", required=True, help="ids.npz with int arrays `coarse` and `fine` (-1 = noise)")
    segment.set_defaults(func=run_segment_all)


def _print_progress(event) -> None:
    losses = " ".join(f"{name}={value:.4f}" for name, value in event.losses.items())
    eta = "" if event.eta_seconds is None else f" eta {event.eta_seconds:.0f}s"
    print(f"[{event.stage}] {event.iteration}/{event.total}{eta} {losses}".rstrip(), file=sys.stderr, flush=True)


def run_train(args: argparse.Namespace) -> int:
    from clickgauss_core.datasets import find_dataset_for_ply

    from ..splat_scene import SplatScene
    from .pipeline import (MASKS_FROM_FOLDER, MASKS_FROM_SAM, MaskChoice, TrainingPlaces, TrainingRequest,
                           TrainingRequestError, ViewChoice, choose_views, run_training)

    ply = Path(args.ply)
    out = Path(args.out) if args.out else ply.with_name(ply.stem + ".features.npz")
    cache_dir = Path(args.cache_dir) if args.cache_dir else out.with_name(out.name + ".cache")
    dataset = args.dataset or (find_dataset_for_ply(ply) if args.views in ("auto", "photos") else None)
    settings = view_settings_from_args(args)  # exits with the problem when the view flags are out of range
    views = ViewChoice(source=args.views, count=settings.count, resolution=settings.resolution, mode=settings.mode,
                       layout=settings.layout, up=settings.up, poses_path=args.poses)
    if args.masks:
        masks = MaskChoice(MASKS_FROM_FOLDER, args.masks)
    else:
        masks = MaskChoice(MASKS_FROM_SAM, settings=dict(points_per_side=args.sam_points_per_side,
                                                         input_size=args.sam_input_size,
                                                         views_per_batch=args.sam_views_per_batch))
    request = TrainingRequest(masks, views, args.preset, seed=args.seed)
    places = TrainingPlaces(view_cache_dir=cache_dir, mask_cache_dir=cache_dir / "masks",
                            checkpoint_dir=cache_dir / "checkpoint", device=args.device,
                            sam_checkpoint=args.sam_checkpoint, sam_model=args.sam_model)
    scene = SplatScene.load(ply, dataset_path=dataset, device=args.device)
    if not args.resume and places.checkpoint_dir.exists():
        shutil.rmtree(places.checkpoint_dir)  # a fresh run must not silently continue an old one
    try:
        chosen = choose_views(scene, views, places)
        print(chosen.sentence() + (f" (renders in {chosen.folder})" if chosen.folder else ""), file=sys.stderr,
              flush=True)
        field = run_training(request, scene, places, progress=_print_progress, views=chosen.views)
    except TrainingRequestError as exc:
        raise SystemExit(f"error: {exc}") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    field.save(out)
    print(f"wrote {out} ({len(field)} Gaussians, {len(field.clusters[COARSE])} coarse / "
          f"{len(field.clusters[FINE])} fine clusters)")
    return 0


def _read_camera(path: str):
    from clickgauss_core.wire import camera_from_dict

    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, json.JSONDecodeError) as exc:
        raise ClickGaussInputError(path, f"cannot read the camera JSON ({exc})") from exc
    try:
        return camera_from_dict(data)
    except ClickGaussInputError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ClickGaussInputError(path, f"not a camera dict ({exc})") from exc


def run_click(args: argparse.Namespace) -> int:
    from ..splat_scene import SplatScene
    from .field import FeatureField
    from .query import click

    field = FeatureField.load(args.field)
    scene = SplatScene.load(args.ply, device=args.device)
    if field.scene_hash is not None and field.scene_hash != scene.content_hash:
        raise ClickGaussInputError(args.field, f"was trained for another PLY than {args.ply} (scene hash differs)")
    selection = click(field, scene.gaussians, _read_camera(args.camera), tuple(args.pixel), args.level,
                      threshold=args.threshold)
    np.save(args.out, selection)
    print(f"selected {int(selection.sum())} of {len(selection)} Gaussians -> {args.out}")
    return 0


def run_segment_all(args: argparse.Namespace) -> int:
    from .field import FeatureField
    from .query import segment_all

    ids = segment_all(FeatureField.load(args.field))
    with open(args.out, "wb") as handle:
        np.savez(handle, **{level: values.astype(np.int32) for level, values in ids.items()})
    summary = ", ".join(f"{level}: {len(set(values.tolist()) - {-1})} segments" for level, values in ids.items())
    print(f"{summary} -> {os.fspath(args.out)}")
    return 0
