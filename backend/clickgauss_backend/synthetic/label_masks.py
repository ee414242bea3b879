"""For tests and benchmarks only: SAM-like masks at ANY camera, from per-Gaussian labels.

`RenderedLabelMasks` renders the labels as one-hot features through `rasterize` (argmax per pixel
where the render is opaque enough: exactly how the synthetic scene labels its photos), then applies
the synthetic scene's SAM-like noise (`sam_like.simulate_sam_masks`). Training on virtual views
can so be measured against ground truth. Not offered to users: real splats have no labels.

Labels: `part_labels` (N,) (0 = none), `part_objects` (P+1,) part -> object, optional
`background_regions` (N,) (floor / walls, segmented only sometimes, as SAM does).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

import numpy as np
import torch

from ..features.masks import TwoLevelMasks
from ..render import rasterize
from .sam_like import MaskNoise, simulate_sam_masks
from .scene import label_maps, region_one_hot


def _camera_digest(camera) -> str:
    numbers = np.concatenate([np.asarray(camera.world_to_camera, dtype=np.float64).ravel(),
                              [camera.width, camera.height, camera.fx, camera.fy, camera.cx, camera.cy]])
    return hashlib.sha256(np.round(numbers, 9).tobytes() + camera.projection.encode()).hexdigest()


class RenderedLabelMasks:
    """A mask source (see features/masks.py) that needs no photo: only the view's camera."""

    def __init__(self, gaussians, part_labels: np.ndarray, part_objects: np.ndarray,
                 background_regions: np.ndarray | None = None, noise: MaskNoise | None = None, seed: int = 0,
                 alpha_threshold: float = 0.5):
        self.gaussians = gaussians
        self.part_labels = np.asarray(part_labels, dtype=np.int64)
        self.part_objects = np.asarray(part_objects, dtype=np.int64)
        if len(self.part_labels) != len(gaussians):
            raise ValueError(f"{len(self.part_labels)} labels for {len(gaussians)} Gaussians")
        # Unlabelled Gaussians without a region form one region of their own that is never segmented:
        # a pixel where they dominate must not take a part's label.
        self.segment_background = background_regions is not None
        self.background_regions = (np.asarray(background_regions, np.int64) if self.segment_background
                                   else (self.part_labels == 0).astype(np.int64))
        self.n_background = max(1, int(self.background_regions.max(initial=0)))
        self.n_parts = len(self.part_objects) - 1
        self.noise = noise or MaskNoise()
        self.seed = int(seed)
        self.alpha_threshold = float(alpha_threshold)
        one_hot = region_one_hot(self.part_labels, self.background_regions, self.n_background, self.n_parts)
        self._features = torch.from_numpy(one_hot).to(gaussians.means.device)
        digest = hashlib.sha256(self.part_labels.tobytes() + self.part_objects.tobytes()
                                + self.background_regions.tobytes() + bytes([self.segment_background]))
        self._labels_digest = digest.hexdigest()

    def describe(self) -> dict:
        return {"kind": "rendered-labels", "labels": self._labels_digest, "noise": asdict(self.noise),
                "seed": self.seed, "alpha_threshold": self.alpha_threshold}

    def fingerprint(self, view) -> str:
        return _camera_digest(view.camera)

    def label_maps(self, camera) -> tuple[np.ndarray, np.ndarray]:
        """(part map, background-region map) of `camera`, 0 = none: the ground truth of that view."""
        with torch.no_grad():
            result = rasterize(self.gaussians, self._features, camera)
        weights = torch.cat([result.features, result.alpha[..., None]], dim=-1).cpu().numpy()
        return label_maps(weights, self.n_background, self.alpha_threshold)

    def generate(self, view, size: tuple[int, int]) -> TwoLevelMasks:
        camera = view.camera.resized(*size)
        part_map, background_map = self.label_maps(camera)
        # Per-view stream: the same camera gets the same masks whatever the other views are.
        rng = np.random.default_rng([self.seed, int(_camera_digest(camera)[:15], 16)])
        return simulate_sam_masks(part_map, self.part_objects, background_map if self.segment_background else None,
                                  self.noise, rng)


HELD_OUT_VIEWS = 8


def held_out_cameras(scene, resolution: int, up=None, count: int = HELD_OUT_VIEWS) -> list:
    """Views to score (and click) a field trained on planned views from: a Fibonacci sphere at the
    same framing, not the training rings."""
    from ..views import ViewSettings, plan_scene_views

    cameras, _ = plan_scene_views(scene.cloud, scene.gaussians, ViewSettings(count, resolution, "orbit", "sphere",
                                                                             up), "held_out")
    return cameras


class LabelledViews:
    """What `features.evaluate` needs of a labelled splat that is not a synthetic scene: labels per
    Gaussian (the same at both levels) and per pixel of some cameras, all of them held out."""

    def __init__(self, labels: np.ndarray, cameras: list, pixel_maps: list):
        self.labels, self.cameras, self.pixel_maps = labels, cameras, pixel_maps
        self.test_indices = list(range(len(cameras)))

    @classmethod
    def rendered(cls, source: "RenderedLabelMasks", cameras: list) -> "LabelledViews":
        """The source's labels at `cameras`, without its mask noise (the ground truth)."""
        exact = RenderedLabelMasks(source.gaussians, source.part_labels, source.part_objects)
        return cls(source.part_labels, cameras, [exact.label_maps(camera)[0] for camera in cameras])

    def gaussian_labels(self, level: str) -> np.ndarray:
        return self.labels

    def pixel_labels(self, view: int, level: str) -> np.ndarray:
        return self.pixel_maps[view]


def synthetic_label_masks(synthetic, gaussians, seed: int = 0) -> RenderedLabelMasks:
    """The synthetic scene's own labels and noise settings; its floor and walls are rebuilt from its
    seed (the labels file keeps only objects and parts)."""
    from .geometry import build_room_cloud

    config = synthetic.config
    labelled = build_room_cloud(config.n_gaussians, np.random.default_rng([synthetic.seed, 0]),
                                config.background_fraction, hidden_surfaces=config.hidden_surfaces)
    if not np.array_equal(labelled.part_labels, synthetic.gaussian_parts):
        raise ValueError(f"{synthetic.root}: rebuilding the room from its seed gave other labels")
    return RenderedLabelMasks(gaussians, synthetic.gaussian_parts, synthetic.part_objects,
                              labelled.background_regions, config.mask_noise, seed)


def json_label_masks(labels_path, gaussians, noise: MaskNoise | None = None, seed: int = 0) -> RenderedLabelMasks:
    """Per-Gaussian labels from a Segments.ai point-cloud export (SuperSplat's annotation demo):
    `dataset.samples[0].labels["ground-truth"].attributes.point_annotations`; each label is an
    object with a single part."""
    with open(labels_path, encoding="utf-8") as handle:
        data = json.load(handle)
    try:
        sample = data["dataset"]["samples"][0]
        labels = np.asarray(sample["labels"]["ground-truth"]["attributes"]["point_annotations"], dtype=np.int64)
    except (KeyError, IndexError, TypeError) as exc:
        raise ValueError(f"{labels_path}: not a Segments.ai point-cloud label export ({exc})") from None
    count = int(labels.max(initial=0))
    return RenderedLabelMasks(gaussians, labels, np.arange(count + 1), None, noise, seed)
