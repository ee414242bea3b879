"""`demo-plan`, `demo-report` (the synthetic scene) and `demo-real-prepare`, `demo-real-report` (a
real splat without photos): the backend steps of `run-demo` (see demo/run_demo.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..synthetic.scene import load_synthetic
from . import real_splat
from .plan import click_plan
from .report import write_report


def register(subparsers) -> None:
    plan = subparsers.add_parser("demo-plan", help="the demo's clicks on a synthetic scene (JSON)")
    plan.add_argument("scene", help="synthetic scene folder (from `synth`)")
    plan.add_argument("--out", required=True, help="where to write the click plan (JSON)")
    plan.set_defaults(func=run_plan)
    report = subparsers.add_parser("demo-report", help="IoU and pictures of the demo's selections")
    report.add_argument("scene", help="synthetic scene folder (from `synth`)")
    report.add_argument("--plan", required=True, help="the click plan from demo-plan")
    report.add_argument("--selections", required=True,
                        help="npz: one boolean mask over the Gaussians (PLY order) per click, key <level>_<label>")
    report.add_argument("--edited-ply", help="the edited, exported PLY to picture next to the original")
    report.add_argument("--extra", help="JSON file of further summary fields (timings) to include")
    report.add_argument("--out", required=True, help="output folder for summary.json and the PNGs")
    report.set_defaults(func=run_report)
    real = subparsers.add_parser("demo-real-prepare", help="views, label masks and clicks for a labelled real splat")
    real.add_argument("splat", help="the splat (any format the add-on imports)")
    real.add_argument("--labels", required=True, help="its per-Gaussian labels (Segments.ai point-cloud export JSON)")
    real.add_argument("--out", required=True, help="output folder (views/, masks/, clicks.json, views.png)")
    real.add_argument("--count", type=int, required=True, help="planned views (as the add-on's view count)")
    real.add_argument("--resolution", type=int, required=True, help="longer side of the views (as the server)")
    real.add_argument("--up", type=float, nargs=3, required=True, metavar=("X", "Y", "Z"),
                      help="up in the splat's frame (as the add-on sends it)")
    real.set_defaults(func=run_real_prepare)
    real_report = subparsers.add_parser("demo-real-report", help="pictures of the clicks on the real splat")
    real_report.add_argument("splat")
    real_report.add_argument("--labels", required=True)
    real_report.add_argument("--clicks", required=True, help="clicks.json from demo-real-prepare")
    real_report.add_argument("--selections", required=True, help="npz: one boolean mask per click, key <level>_<label>")
    real_report.add_argument("--extra", help="JSON file of further summary fields (timings) to include")
    real_report.add_argument("--out", required=True, help="output folder for real_summary.json and real_clicks.png")
    real_report.set_defaults(func=run_real_report)


def run_plan(args: argparse.Namespace) -> int:
    plan = click_plan(load_synthetic(args.scene))
    Path(args.out).write_text(json.dumps(plan, indent=1))
    print(f"{len(plan)} clicks planned -> {args.out}")
    return 0


def _report_inputs(args: argparse.Namespace, clicks_path: str) -> tuple[list, dict, dict | None]:
    """(clicks, selections per click key, extra summary fields) from the report commands' files."""
    clicks = json.loads(Path(clicks_path).read_text())
    with np.load(args.selections, allow_pickle=False) as stored:
        selections = {key: stored[key].astype(bool) for key in stored.files}
    return clicks, selections, json.loads(Path(args.extra).read_text()) if args.extra else None


def run_report(args: argparse.Namespace) -> int:
    plan, selections, extra = _report_inputs(args, args.plan)
    summary = write_report(load_synthetic(args.scene), plan, selections,
                           Path(args.edited_ply) if args.edited_ply else None, Path(args.out), extra)
    for level, values in summary["levels"].items():
        print(f"{level}: mean 3D IoU {values['mean_iou_3d']:.3f}, mean 2D IoU {values['mean_iou_2d']:.3f}")
    return 0


def run_real_prepare(args: argparse.Namespace) -> int:
    description = real_splat.prepare(Path(args.splat), Path(args.labels), Path(args.out), args.count,
                                     args.resolution, args.up)
    print(f"{description['views']} views ({description['mode']}, {description['size']}) -> "
          f"{description['contact_sheet']}; {description['clicks']} clicks planned")
    return 0


def run_real_report(args: argparse.Namespace) -> int:
    clicks, selections, extra = _report_inputs(args, args.clicks)
    summary = real_splat.report(Path(args.splat), Path(args.labels), clicks, selections, Path(args.out), extra)
    mean = summary['mean_iou_3d']
    print(f"{len(summary['clicks'])} clicks on {summary['splat']}: mean 3D IoU against its labels "
          + (f"{mean:.3f}" if mean is not None else "- (no clicks)") + f" -> {summary['pictures']['clicks']}")
    return 0
