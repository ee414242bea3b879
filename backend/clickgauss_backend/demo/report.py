"""The demo's report: IoU of every click the add-on made (3D on the Gaussians, 2D on rendered
masks in the held-out views, the protocol of `features.evaluate`), and the pictures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from clickgauss_core.ply import read_gaussian_ply
from clickgauss_core.protocol import COARSE, FINE

from ..features.evaluate import MIN_VISIBLE_FRACTION, iou, render_selection, visible_gaussians
from ..render import GaussianTensors, rasterize
from ..synthetic.scene import SyntheticScene

PICTURE_SCALE = 2
HIGHLIGHT = np.array([1.0, 0.55, 0.0])  # the add-on's selection colour family: orange
LABEL_HEIGHT = 14


def selection_iou(synthetic: SyntheticScene, gaussians: GaussianTensors, click: dict, selection: np.ndarray,
                  counted: np.ndarray) -> tuple[float, float]:
    """(3D IoU over the counted Gaussians, mean 2D IoU over the held-out views showing the target)."""
    truth = synthetic.gaussian_labels(click["level"]) == click["label"]
    iou_3d = iou(selection[counted], truth[counted])
    image_pixels = synthetic.cameras[0].width * synthetic.cameras[0].height
    scores = []
    for view_index in synthetic.test_indices:
        truth_2d = synthetic.pixel_labels(view_index, click["level"]) == click["label"]
        if truth_2d.sum() >= MIN_VISIBLE_FRACTION * image_pixels:
            scores.append(iou(render_selection(gaussians, selection, synthetic.cameras[view_index]), truth_2d))
    return iou_3d, float(np.mean(scores)) if scores else float("nan")


def render_rgb(gaussians: GaussianTensors, colors: np.ndarray, camera) -> np.ndarray:
    """(H, W, 3) float image of per-Gaussian colours on a white background."""
    with torch.no_grad():
        result = rasterize(gaussians, torch.from_numpy(colors.astype(np.float32)), camera)
    rgb = result.features.numpy() + (1.0 - result.alpha.numpy()[..., None])
    return np.clip(rgb, 0.0, 1.0)


def highlighted(base_colors: np.ndarray, selection: np.ndarray) -> np.ndarray:
    """Colours with the selection tinted orange and the rest faded to grey, as the add-on shows it."""
    grey = base_colors.mean(axis=1, keepdims=True) * 0.5 + 0.4
    faded = np.repeat(grey, 3, axis=1)
    tinted = 0.35 * base_colors + 0.65 * HIGHLIGHT
    return np.where(selection[:, None], tinted, faded)


def overlay(image: np.ndarray, pixel_mask: np.ndarray) -> np.ndarray:
    """The ground-truth pixel mask drawn over an image in the highlight colour."""
    return np.where(pixel_mask[..., None], 0.35 * image + 0.65 * HIGHLIGHT, 0.5 * image + 0.5)


def _tile(image: np.ndarray) -> Image.Image:
    if image.dtype != np.uint8:
        image = np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8)
    tile = Image.fromarray(image)
    return tile.resize((tile.width * PICTURE_SCALE, tile.height * PICTURE_SCALE), Image.Resampling.NEAREST)


def contact_sheet(rows: list[tuple[str, list[np.ndarray]]], columns: list[str], path: Path) -> Path:
    """A grid of equally sized images with column titles and a caption per row."""
    first = _tile(rows[0][1][0])
    cell_w, cell_h = first.size
    sheet = Image.new("RGB", (cell_w * len(columns), LABEL_HEIGHT + (cell_h + LABEL_HEIGHT) * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for column, title in enumerate(columns):
        draw.text((column * cell_w + 4, 1), title, fill="black")
    for row, (caption, images) in enumerate(rows):
        top = LABEL_HEIGHT + row * (cell_h + LABEL_HEIGHT)
        draw.text((4, top + 1), caption, fill="black")
        for column, image in enumerate(images):
            sheet.paste(_tile(image), (column * cell_w, top + LABEL_HEIGHT))
    sheet.save(path)
    return path


def mark_click(image: np.ndarray, pixel) -> np.ndarray:
    """A small cross at the click."""
    marked = image.copy()
    x, y = int(pixel[0]), int(pixel[1])
    h, w = marked.shape[:2]
    for dx in range(-3, 4):
        if 0 <= x + dx < w and 0 <= y < h:
            marked[y, x + dx] = (1.0, 0.0, 0.0)
        if 0 <= y + dx < h and 0 <= x < w:
            marked[y + dx, x] = (1.0, 0.0, 0.0)
    return marked


def write_report(synthetic: SyntheticScene, plan: list[dict], selections: dict[str, np.ndarray],
                 edited_ply: Path | None, out_dir: Path, extra: dict | None = None) -> dict:
    """IoU per click + pictures into `out_dir`; returns the summary (also written as summary.json)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cloud = read_gaussian_ply(synthetic.ply_path)
    gaussians = GaussianTensors.from_cloud(cloud, "cpu")
    base_colors = cloud.colors
    counted = visible_gaussians(gaussians, synthetic.cameras)
    results = {COARSE: [], FINE: []}
    rows = {COARSE: [], FINE: []}
    for click in plan:
        key = f"{click['level']}_{click['label']}"
        selection = selections[key]
        iou_3d, iou_2d = selection_iou(synthetic, gaussians, click, selection, counted)
        results[click["level"]].append({"label": click["label"], "name": click["name"], "view": click["view"],
                                        "pixel": click["pixel"], "selected": int(selection.sum()),
                                        "iou_3d": iou_3d, "iou_2d": iou_2d})
        camera = synthetic.cameras[click["view_index"]]
        truth = synthetic.gaussian_labels(click["level"]) == click["label"]
        rows[click["level"]].append((
            f"{click['name']} ({click['view']}): 3D IoU {iou_3d:.2f}, 2D IoU {iou_2d:.2f}",
            [mark_click(render_rgb(gaussians, base_colors, camera), click["pixel"]),
             render_rgb(gaussians, highlighted(base_colors, selection), camera),
             render_rgb(gaussians, highlighted(base_colors, truth), camera),
             overlay(render_rgb(gaussians, base_colors, camera),
                     synthetic.pixel_labels(click["view_index"], click["level"]) == click["label"])]))
    pictures = {}
    for level, level_rows in rows.items():
        if level_rows:
            pictures[f"clicks_{level}"] = str(contact_sheet(
                level_rows, ["view + click", "ClickGauss selection", "ground truth (Gaussians)", "ground truth (pixels)"],
                out_dir / f"clicks_{level}.png"))
    overview = [render_rgb(gaussians, base_colors, synthetic.cameras[i]) for i in synthetic.test_indices[:4]]
    scene_row = [("the synthetic scene: held-out views rendered by ClickGauss' rasterizer", overview)]
    if edited_ply is not None:
        edited = read_gaussian_ply(edited_ply)
        edited_gaussians = GaussianTensors.from_cloud(edited, "cpu")
        scene_row.append(("after the edits (one object deleted, one recoloured), re-read from the exported PLY",
                          [render_rgb(edited_gaussians, edited.colors, synthetic.cameras[i])
                           for i in synthetic.test_indices[:4]]))
    pictures["scene"] = str(contact_sheet(scene_row, [""] * len(overview), out_dir / "scene.png"))
    summary = {"levels": {level: {"mean_iou_3d": float(np.mean([r["iou_3d"] for r in rs])) if rs else None,
                                  "mean_iou_2d": float(np.nanmean([r["iou_2d"] for r in rs])) if rs else None,
                                  "clicks": rs} for level, rs in results.items()},
               "pictures": pictures, **(extra or {})}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    (out_dir / "summary.md").write_text(summary_markdown(summary))
    return summary


def summary_markdown(summary: dict) -> str:
    """The summary for people: IoU per object / part and level, training time, click latency."""
    lines = ["# ClickGauss demo summary", ""]
    if "training_seconds" in summary:
        lines.append(f"- Training: {summary['training_seconds']} s (preset {summary.get('training_preset')}, "
                     f"device {summary.get('device')}, {summary.get('gaussians', 0):,} Gaussians)")
    if "click_latency_ms" in summary:
        latency = summary["click_latency_ms"]
        lines.append(f"- Click latency through the add-on (request + decode + apply): median {latency['median']} ms, "
                     f"p95 {latency['p95']} ms over {latency['count']} clicks")
    for level, values in summary["levels"].items():
        lines += ["", f"## {level} level: mean IoU 3D {values['mean_iou_3d']:.3f}, 2D {values['mean_iou_2d']:.3f}", "",
                  "| target | view | selected | 3D IoU | 2D IoU |", "|---|---|---|---|---|"]
        lines += [f"| {c['name']} | {c['view']} | {c['selected']} | {c['iou_3d']:.3f} | {c['iou_2d']:.3f} |"
                  for c in values["clicks"]]
    lines += ["", "3D IoU: on the Gaussians that some view shows (ground-truth labels of the synthetic scene); "
              "2D IoU: the selection rendered in the held-out views, LERF-Mask style.", ""]
    return "\n".join(lines)
