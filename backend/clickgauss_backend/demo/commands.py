"""`demo-plan` and `demo-report`: the backend steps of `run-demo` (see demo/run_demo.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..synthetic.scene import load_synthetic
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


def run_plan(args: argparse.Namespace) -> int:
    plan = click_plan(load_synthetic(args.scene))
    Path(args.out).write_text(json.dumps(plan, indent=1))
    print(f"{len(plan)} clicks planned -> {args.out}")
    return 0


def run_report(args: argparse.Namespace) -> int:
    plan = json.loads(Path(args.plan).read_text())
    with np.load(args.selections, allow_pickle=False) as stored:
        selections = {key: stored[key].astype(bool) for key in stored.files}
    extra = json.loads(Path(args.extra).read_text()) if args.extra else None
    summary = write_report(load_synthetic(args.scene), plan, selections,
                           Path(args.edited_ply) if args.edited_ply else None, Path(args.out), extra)
    for level, values in summary["levels"].items():
        print(f"{level}: mean 3D IoU {values['mean_iou_3d']:.3f}, mean 2D IoU {values['mean_iou_2d']:.3f}")
    return 0
