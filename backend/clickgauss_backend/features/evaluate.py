"""Accuracy of a feature field on the synthetic benchmark scene (ground truth per Gaussian and pixel).

Protocol (held-out views only: views the field was not trained on):
- Targets: every object (coarse) / part (fine) whose ground-truth pixel mask in some held-out view
  has an interior point at least `MIN_CLICK_DEPTH_PX` pixels from its boundary.
- One click per target, in the held-out view where its mask reaches deepest, at that deepest point
  (the Euclidean distance transform's maximum): a click "deep inside" the object as a user would.
- 3D IoU: the selection against the ground-truth Gaussians of the target, counting only the
  Gaussians that matter: those whose compositing weight summed over every pixel of every view
  (train and held-out) is at least `MIN_VISIBLE_WEIGHT` (half a pixel's worth of colour).
  Gaussians nobody can see are not decided by any mask, so they would only add noise.
- 2D IoU (LERF-Mask style): the selection rendered as a one-channel mask in every held-out view
  where the target covers at least `MIN_VISIBLE_FRACTION` of the image, binarised > 0.5, IoU
  against the ground-truth pixel mask; mIoU = mean over targets of the mean over those views.
- Threshold calibration: the similarities of each click are computed once; every threshold of
  the sweep is scored by mean 3D IoU.
- Adaptive (`adaptive=True`): each click at its own threshold from its own similarities
  (`clickgauss_core.click.adaptive_threshold`, with the given / default fixed threshold as the
  fallback), as a click with no threshold gets it from the add-on and the API.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.ndimage import distance_transform_edt

from clickgauss_core.click import DEFAULT_THRESHOLDS, adaptive_threshold

from ..render import rasterize
from .config import LEVELS
from .field import FeatureField
from .query import render_pixel_feature, similarity_to, snap_to_cluster

MIN_CLICK_DEPTH_PX = 2.0
MIN_VISIBLE_WEIGHT = 0.5
MIN_VISIBLE_FRACTION = 0.002
THRESHOLD_SWEEP = tuple(np.round(np.concatenate([np.arange(0.50, 0.96, 0.05), [0.97, 0.98, 0.99]]), 2))


@dataclass
class Click:
    level: str
    label: int
    view_index: int
    pixel: tuple[float, float]


@dataclass
class LevelResult:
    threshold: float
    iou_3d: float
    iou_2d: float
    per_target_3d: dict = field(default_factory=dict)
    per_target_2d: dict = field(default_factory=dict)
    sweep_3d: dict = field(default_factory=dict)  # threshold -> mean 3D IoU
    per_target_threshold: dict = field(default_factory=dict)  # the threshold each click used

    def to_dict(self) -> dict:
        return {"threshold": self.threshold, "iou_3d": self.iou_3d, "iou_2d": self.iou_2d,
                "per_target_threshold": {str(k): v for k, v in self.per_target_threshold.items()},
                "per_target_3d": {str(k): v for k, v in self.per_target_3d.items()},
                "per_target_2d": {str(k): v for k, v in self.per_target_2d.items()},
                "sweep_3d": {f"{k:.2f}": v for k, v in self.sweep_3d.items()}}


def deepest_pixel(mask: np.ndarray) -> tuple[tuple[float, float], float]:
    """The pixel centre (x, y) farthest from the mask's boundary, and that distance in pixels."""
    distance = distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(distance)), distance.shape)
    return (x + 0.5, y + 0.5), float(distance[y, x])


def plan_clicks(synthetic, level: str, view_indices: list[int]) -> list[Click]:
    """One click per visible target of `level`, in the held-out view where it reaches deepest."""
    labels = np.unique(synthetic.gaussian_labels(level))
    clicks = []
    for label in labels[labels > 0]:
        best = None
        for view_index in view_indices:
            mask = synthetic.pixel_labels(view_index, level) == label
            if not mask.any():
                continue
            pixel, depth = deepest_pixel(mask)
            if depth >= MIN_CLICK_DEPTH_PX and (best is None or depth > best[0]):
                best = (depth, view_index, pixel)
        if best is not None:
            clicks.append(Click(level, int(label), best[1], best[2]))
    return clicks


def visible_gaussians(gaussians, cameras) -> np.ndarray:
    """bool (N,): Gaussians whose summed compositing weight over all `cameras`' pixels >= MIN_VISIBLE_WEIGHT."""
    ones = torch.ones((len(gaussians.means), 1), device=gaussians.means.device, requires_grad=True)
    for camera in cameras:
        # d(sum of the rendered image)/d f_i = sum over pixels of alpha_i T_i
        rasterize(gaussians, ones, camera).features.sum().backward()
    return (ones.grad[:, 0] >= MIN_VISIBLE_WEIGHT).cpu().numpy()


def iou(predicted: np.ndarray, truth: np.ndarray) -> float:
    union = np.logical_or(predicted, truth).sum()
    return float(np.logical_and(predicted, truth).sum() / union) if union else 1.0


def render_selection(gaussians, selection: np.ndarray, camera) -> np.ndarray:
    """The selection as a binary image: rendered 1-channel mask > 0.5."""
    values = torch.from_numpy(selection.astype(np.float32))[:, None].to(gaussians.means.device)
    with torch.no_grad():
        return (rasterize(gaussians, values, camera).features[..., 0] > 0.5).cpu().numpy()


def evaluate_level(field: FeatureField, gaussians, synthetic, level: str, view_indices: list[int],
                   counted: np.ndarray, threshold: float | None = None, snap: bool = False,
                   adaptive: bool = False) -> LevelResult:
    """Mean 3D / 2D IoU of one click per target; `threshold=None` picks the sweep's best by 3D IoU;
    `adaptive`: each click at its adaptive threshold (`threshold`, else the default, its fallback)."""
    truth_labels = synthetic.gaussian_labels(level)
    device = gaussians.means.device
    clicks = plan_clicks(synthetic, level, view_indices)
    similarities = []
    for click_ in clicks:
        camera = synthetic.cameras[click_.view_index]
        query = render_pixel_feature(field, gaussians, camera, click_.pixel)[field.config.level_slice(level)]
        if snap:
            query = snap_to_cluster(field, query, level, threshold if threshold is not None else 0.9)
        similarities.append(similarity_to(field, query, level, device).cpu().numpy())

    def scores_3d(value: float) -> dict:
        return {c.label: iou((s >= value)[counted], (truth_labels == c.label)[counted])
                for c, s in zip(clicks, similarities)}

    sweep = {float(t): float(np.mean(list(scores_3d(float(t)).values()))) if clicks else 0.0 for t in THRESHOLD_SWEEP}
    chosen = max(sweep, key=sweep.get) if threshold is None and not adaptive else float(
        DEFAULT_THRESHOLDS[level] if threshold is None else threshold)
    per_click = {c.label: adaptive_threshold(s, level, chosen) if adaptive else chosen
                 for c, s in zip(clicks, similarities)}
    per_target_3d = {c.label: iou((s >= per_click[c.label])[counted], (truth_labels == c.label)[counted])
                     for c, s in zip(clicks, similarities)}
    per_target_2d = {}
    image_pixels = synthetic.cameras[0].width * synthetic.cameras[0].height
    for click_, similarity in zip(clicks, similarities):
        selection = similarity >= per_click[click_.label]
        view_scores = []
        for view_index in view_indices:
            truth = synthetic.pixel_labels(view_index, level) == click_.label
            if truth.sum() >= MIN_VISIBLE_FRACTION * image_pixels:
                view_scores.append(iou(render_selection(gaussians, selection, synthetic.cameras[view_index]), truth))
        if view_scores:
            per_target_2d[click_.label] = float(np.mean(view_scores))
    return LevelResult(threshold=chosen,
                       iou_3d=float(np.mean(list(per_target_3d.values()))) if per_target_3d else 0.0,
                       iou_2d=float(np.mean(list(per_target_2d.values()))) if per_target_2d else 0.0,
                       per_target_3d=per_target_3d, per_target_2d=per_target_2d, sweep_3d=sweep,
                       per_target_threshold=per_click)


def evaluate_field(field: FeatureField, gaussians, synthetic, thresholds: dict | None = None,
                   snap: bool = False, adaptive: bool = False, counted: np.ndarray | None = None) -> dict[str, LevelResult]:
    """Both levels on the synthetic scene's held-out views (see the module docstring for the protocol).
    `counted`: the visible Gaussians when already computed (`visible_gaussians`)."""
    counted = visible_gaussians(gaussians, synthetic.cameras) if counted is None else counted
    views = synthetic.test_indices
    return {level: evaluate_level(field, gaussians, synthetic, level, views, counted,
                                  None if thresholds is None else thresholds.get(level), snap, adaptive)
            for level in LEVELS}
