"""`clickgauss-backend views SCENE`: plan (or take) the cameras, render them, write them out."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from clickgauss_core.view_planning import DEFAULT_COUNT, DEFAULT_RESOLUTION, LAYOUTS, MODES


def add_view_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that say where training views come from and how virtual ones are made."""
    parser.add_argument("--views", default="auto", choices=("auto", "photos", "poses", "planned"),
                        help="where the training views come from (default auto: the dataset's photos, else "
                             "--poses rendered from the splat, else views planned around the splat)")
    parser.add_argument("--poses", default=None,
                        help="known camera poses without photos: an INRIA cameras.json or a COLMAP model folder")
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT,
                        help=f"number of planned views (default {DEFAULT_COUNT})")
    parser.add_argument("--resolution", type=int, default=DEFAULT_RESOLUTION,
                        help=f"longer side of rendered views in pixels (default {DEFAULT_RESOLUTION})")
    parser.add_argument("--mode", default="auto", choices=MODES,
                        help="planned views: orbit around the content, inside looking out (rooms), or auto")
    parser.add_argument("--layout", default="rings", choices=LAYOUTS,
                        help="orbit cameras on rings above the horizon or on a Fibonacci sphere")
    parser.add_argument("--up", type=float, nargs=3, default=None, metavar=("X", "Y", "Z"),
                        help="the scene's up direction in the splat's frame (default: from the data)")


def view_settings_from_args(args: argparse.Namespace):
    from . import ViewSettings

    try:
        return ViewSettings(count=args.count, resolution=args.resolution, mode=args.mode, layout=args.layout,
                            up=None if args.up is None else tuple(args.up))
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None


def register(subparsers) -> None:
    views = subparsers.add_parser("views", help="render training views of a splat (planned around it, or "
                                                "known poses) with their cameras and a contact sheet")
    views.add_argument("scene", help="the splat (.ply, compressed .ply, .splat, .spz)")
    views.add_argument("--out", default=None, help="output folder (default: <scene stem>_views next to it)")
    views.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    add_view_arguments(views)
    views.set_defaults(func=run_views)


def run_views(args: argparse.Namespace) -> int:
    from clickgauss_core.datasets import load_poses

    from ..splat_scene import SplatScene
    from . import contact_sheet, framing_report, plan_scene_views, poses_at_resolution, render_views, \
        write_camera_files

    scene_path = Path(args.scene)
    out = Path(args.out) if args.out else scene_path.with_name(scene_path.stem + "_views")
    settings = view_settings_from_args(args)
    scene = SplatScene.load(scene_path, device=args.device)
    if args.views == "photos":
        raise SystemExit("error: `views` renders views from the splat; use --views poses or planned")
    if args.poses or args.views == "poses":
        if not args.poses:
            raise SystemExit("error: --views poses needs --poses (cameras.json or a COLMAP model folder)")
        cameras = poses_at_resolution(load_poses(args.poses), settings.resolution)
        plan = {"source": "poses", "poses": args.poses, "resolution": settings.resolution}
    else:
        cameras, plan = plan_scene_views(scene.cloud, scene.gaussians, settings)
        plan["source"] = "planned"

    def progress(done, total):
        print(f"[render] {done}/{total}", file=sys.stderr, flush=True)

    views = render_views(scene.cloud, scene.gaussians, cameras, out / "images", progress)
    write_camera_files(out, views)
    plan["framing"] = framing_report(scene.gaussians, cameras, plan)
    plan["scene"] = {"path": str(scene_path), "hash": scene.content_hash, "gaussians": len(scene.cloud)}
    (out / "plan.json").write_text(json.dumps(plan, indent=2) + "\n")
    sheet = contact_sheet([view.image_path for view in views], out / "contact_sheet.png",
                          columns=min(8, len(views)))
    framing = plan["framing"]
    print(f"{len(views)} views ({plan.get('mode', 'poses')}) of {scene_path.name}: "
          f"{framing['framed_share']:.0%} cover >= 20% of the image -> {out}/images, {out}/sparse/0, "
          f"{out}/cameras.json, {sheet}")
    return 0
