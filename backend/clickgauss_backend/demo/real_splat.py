"""The second part of `run-demo`: a real splat without photos (the backend steps; the Blender
steps are in demo/run_demo.py).

`prepare(...)` renders the views Train Features will train on (the same planner with the same
settings the add-on sends: count, up; the server's resolution), writes their cameras and a
contact sheet, a mask folder for them, and the clicks to make. The demo has no SAM checkpoint (a
download of 375 MB - 2.5 GB), so the masks come from the splat's own per-Gaussian labels rendered
at each view with the synthetic scene's SAM-like noise (`synthetic.label_masks`): they stand in
for SAM's. The clicks: one per label, each in the held-out view (not a training view) where the
label reaches deepest, at its deepest pixel (the benchmark protocol, `features.evaluate`).

`report(...)` draws every click (the view with the click, the selection, the labelled Gaussians)
and writes `real_summary.json` with the selected counts and the 3D IoU against the labels.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from clickgauss_core import wire
from clickgauss_core.protocol import COARSE

from ..features.evaluate import iou, plan_clicks, visible_gaussians
from ..features.masks import write_mask_png
from ..splat_scene import SplatScene
from ..synthetic.label_masks import LabelledViews, held_out_cameras, json_label_masks
from ..views import ViewSettings, contact_sheet, plan_scene_views, render_views, write_camera_files
from .report import contact_sheet as picture_grid
from .report import highlighted, mark_click, render_rgb

CLICK_LEVEL = COARSE        # each label is one object of one part: the coarse level asks the question
PICTURE_RESOLUTION = 160     # held-out views for the clicks (longer side, px)


def prepare(splat: Path, labels: Path, out: Path, count: int, resolution: int, up) -> dict:
    """Views, masks and clicks for `splat` into `out` (views/, masks/, clicks.json, views.png)."""
    scene = SplatScene.load(splat)
    cameras, plan = plan_scene_views(scene.cloud, scene.gaussians, ViewSettings(count, resolution, up=tuple(up)))
    views = render_views(scene.cloud, scene.gaussians, cameras, out / "views" / "images")
    write_camera_files(out / "views", views)
    sheet = contact_sheet([view.image_path for view in views], out / "views.png", columns=min(8, len(views)))
    source = json_label_masks(labels, scene.gaussians)
    masks = out / "masks"
    masks.mkdir(parents=True, exist_ok=True)
    for view in views:
        two_level = source.generate(view, (view.camera.width, view.camera.height))
        stem = Path(view.name).stem
        write_mask_png(masks / f"{stem}_coarse.png", two_level.coarse)
        write_mask_png(masks / f"{stem}_fine.png", two_level.fine)
    held_out = held_out_cameras(scene, PICTURE_RESOLUTION, up=tuple(up))
    labelled = LabelledViews.rendered(source, held_out)
    clicks = [{"level": click.level, "label": click.label, "name": f"label {click.label}",
               "view_index": click.view_index, "view": held_out[click.view_index].name,
               "camera": wire.camera_to_dict(held_out[click.view_index]), "pixel": list(click.pixel)}
              for click in plan_clicks(labelled, CLICK_LEVEL, labelled.test_indices)]
    (out / "clicks.json").write_text(json.dumps(clicks, indent=1))
    description = {"views": len(views), "mode": plan["mode"], "size": f"{plan['width']}x{plan['height']}",
                   "flat": plan["flat"], "contact_sheet": str(sheet), "masks": str(masks), "clicks": len(clicks)}
    (out / "views" / "plan.json").write_text(json.dumps(plan, indent=2) + "\n")
    return description


def report(splat: Path, labels: Path, clicks: list[dict], selections: dict[str, np.ndarray], out: Path,
           extra: dict | None = None) -> dict:
    """Pictures of the clicks (`real_clicks.png`) and `real_summary.json`."""
    scene = SplatScene.load(splat)
    gaussians, base_colors = scene.gaussians, scene.cloud.colors
    truth_labels = json_label_masks(labels, gaussians).part_labels
    cameras = [wire.camera_from_dict(click["camera"]) for click in clicks]
    counted = visible_gaussians(gaussians, cameras)
    rows, results = [], []
    for click, camera in zip(clicks, cameras):
        selection = selections[f"{click['level']}_{click['label']}"]
        truth = truth_labels == click["label"]
        iou_3d = iou(selection[counted], truth[counted])
        results.append({"label": click["label"], "view": click["view"], "pixel": click["pixel"],
                        "selected": int(selection.sum()), "labelled": int(truth.sum()), "iou_3d": iou_3d})
        rows.append((f"{click['name']} ({click['view']}): {int(selection.sum())} Gaussians selected, "
                     f"3D IoU {iou_3d:.2f}",
                     [mark_click(render_rgb(gaussians, base_colors, camera), click["pixel"]),
                      render_rgb(gaussians, highlighted(base_colors, selection), camera),
                      render_rgb(gaussians, highlighted(base_colors, truth), camera)]))
    pictures = picture_grid(rows, ["held-out view + click", "ClickGauss selection", "labelled Gaussians"],
                            out / "real_clicks.png")
    summary = {"splat": splat.name, "gaussians": len(scene.cloud), "clicks": results,
               "mean_iou_3d": float(np.mean([r["iou_3d"] for r in results])) if results else None,
               "pictures": {"views": str(out / "views.png"), "clicks": str(pictures)}, **(extra or {})}
    (out / "real_summary.json").write_text(json.dumps(summary, indent=2))
    return summary
