"""The synthetic benchmark scene, written as a normal 3DGS scene folder plus ground truth.

`generate_scene(out_dir, preset="demo", seed=0, **overrides)` writes
    point_cloud.ply            INRIA layout, SH degree 3, normals
    sparse/0/*.txt, images/    a COLMAP text model and the views rendered with our rasterizer
    masks/<stem>_coarse.png    SAM-like inconsistent two-level masks (16-bit PNG, 0 = no mask),
    masks/<stem>_fine.png      for every view (train AND test: use `train_views` to train)
    labels.npz                 GT object / part label per Gaussian (PLY order, 0 = background)
                               and per view per pixel
    scene.json                 settings, object / part names, the train / test split
`load_synthetic(out_dir)` reads it back.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from clickgauss_core.cameras import Camera
from clickgauss_core.colmap import write_colmap_text
from clickgauss_core.datasets import Dataset, View, load_dataset
from clickgauss_core.errors import DatasetError
from clickgauss_core.ply import write_gaussian_ply
from clickgauss_core.protocol import COARSE, FINE

from ..features.masks import write_mask_png
from ..render import GaussianTensors, rasterize
from .geometry import BACKGROUND_REGIONS, LabelledCloud, build_room_cloud
from .sam_like import MaskNoise, simulate_sam_masks
from .varied_objects import varied_objects

FORMAT = "clickgauss-synthetic"
FORMAT_VERSION = 1
PLY_NAME = "point_cloud.ply"
LABELS_NAME = "labels.npz"
SCENE_JSON = "scene.json"
IMAGES_DIR = "images"
MASKS_DIR = "masks"
SPARSE_DIR = os.path.join("sparse", "0")
# Where no surface is hit the images show this colour (a pale "sky").
VOID_COLOR = (0.92, 0.94, 0.97)
LOOK_AT = (0.0, 0.0, 0.55)
COLMAP_POINTS = 5000
OBJECT_SETS = ("room", "varied")


@dataclass(frozen=True)
class SyntheticConfig:
    n_gaussians: int
    width: int
    height: int
    n_train: int
    n_test: int
    background_fraction: float = 0.35     # share of the Gaussians on the floor and walls
    horizontal_fov_deg: float = 70.0
    label_alpha_threshold: float = 0.5    # a pixel is labelled where the render is this opaque
    mask_noise: MaskNoise = field(default_factory=MaskNoise)
    # "room": the demo room's six fixed objects; "varied": 5-8 of varied_objects' templates with
    # thin and touching parts, picked and placed by the seed.
    objects: str = "room"
    # False: no Gaussians on surfaces no view can see (inside another part, under an object on the
    # floor), as in a trained scene (`geometry.build_room_cloud`). The demo room keeps them: its
    # tests' bars were set on it.
    hidden_surfaces: bool = True

    def __post_init__(self):
        problems = [f"{name} must be at least {low}" for name, low in
                    (("n_gaussians", 100), ("width", 8), ("height", 8), ("n_train", 1), ("n_test", 0))
                    if getattr(self, name) < low]
        if not 0.0 <= self.background_fraction < 1.0:
            problems.append("background_fraction must be in [0, 1)")
        if self.objects not in OBJECT_SETS:
            problems.append(f"objects must be one of {', '.join(OBJECT_SETS)}")
        if problems:
            raise ValueError(f"invalid synthetic scene settings: {'; '.join(problems)}")

    def with_overrides(self, **overrides) -> "SyntheticConfig":
        """Override any setting, or any `MaskNoise` rate by its name."""
        own = {f for f in self.__dataclass_fields__ if f != "mask_noise"}
        noise_names = set(MaskNoise.field_names())
        unknown = set(overrides) - own - noise_names - {"mask_noise"}
        if unknown:
            raise ValueError(f"unknown synthetic scene setting(s) {sorted(unknown)}; "
                             f"known: {sorted(own | noise_names)}")
        noise = overrides.pop("mask_noise", self.mask_noise)
        noise = replace(noise, **{k: overrides.pop(k) for k in list(overrides) if k in noise_names})
        return replace(self, mask_noise=noise, **overrides)


PRESETS = {
    # Unit tests: generates in a second or two.
    "tiny": SyntheticConfig(n_gaussians=4000, width=64, height=48, n_train=8, n_test=2),  # not vocabulary: a synthetic scene size
    # The CPU training preset trains on this in a few minutes.
    "demo": SyntheticConfig(n_gaussians=20000, width=160, height=120, n_train=24, n_test=8),
    # Benchmarks and GPU runs.
    "large": SyntheticConfig(n_gaussians=200_000, width=320, height=240, n_train=32, n_test=8),
    # The fine-level benchmark (benchmarks/bench_fine.py): other objects per seed, thin parts
    # touching larger siblings, and masks noisier than the demo's.
    "hard": SyntheticConfig(n_gaussians=19000, width=192, height=144, n_train=40, n_test=8, objects="varied",
                            hidden_surfaces=False, mask_noise=MaskNoise(part_merge_rate=0.25, object_merge_rate=0.15, drop_rate=0.05,
                                                 split_rate=0.08, boundary_jitter=0.007)),
}


@dataclass
class SyntheticScene:
    root: Path
    config: SyntheticConfig
    seed: int
    view_names: list[str]                 # image file names, in the COLMAP model's order
    train_views: list[str]
    test_views: list[str]
    object_names: list[str]               # object label k is object_names[k - 1]
    part_names: list[str]                 # part label k is part_names[k - 1]
    part_objects: np.ndarray              # (P+1,) part label -> object label (0 -> 0)
    gaussian_objects: np.ndarray          # (N,) object label per Gaussian, PLY order
    gaussian_parts: np.ndarray            # (N,) part label per Gaussian, PLY order
    object_maps: np.ndarray               # (V, H, W) object label per pixel, 0 = background / nothing
    part_maps: np.ndarray                 # (V, H, W) part label per pixel
    cameras: list[Camera]                 # in view order

    @property
    def ply_path(self) -> Path:
        return self.root / PLY_NAME

    @property
    def dataset_path(self) -> Path:
        """The COLMAP dataset folder (sparse/0 + images/): the scene root."""
        return self.root

    @property
    def images_dir(self) -> Path:
        return self.root / IMAGES_DIR

    @property
    def masks_dir(self) -> Path:
        return self.root / MASKS_DIR

    @property
    def train_indices(self) -> list[int]:
        return [self.view_names.index(v) for v in self.train_views]

    @property
    def test_indices(self) -> list[int]:
        return [self.view_names.index(v) for v in self.test_views]

    def dataset(self) -> Dataset:
        """The scene's COLMAP dataset through the normal reader (views sorted by image name = view order)."""
        return load_dataset(self.root)

    def gaussian_labels(self, level: str) -> np.ndarray:
        """GT label per Gaussian at "coarse" (objects) or "fine" (parts)."""
        return {COARSE: self.gaussian_objects, FINE: self.gaussian_parts}[level]

    def pixel_labels(self, view: str | int, level: str) -> np.ndarray:
        """GT label map of one view (by index or image name) at "coarse" or "fine"."""
        index = int(view) if isinstance(view, (int, np.integer)) else self.view_names.index(view)
        return {COARSE: self.object_maps, FINE: self.part_maps}[level][index]


# -- cameras ---------------------------------------------------------------------------------------

def ring_cameras(config: SyntheticConfig, rng: np.random.Generator) -> list[Camera]:
    """Views all around the room at varying heights and distances, looking at its centre."""
    n_views = config.n_train + config.n_test
    azimuth = (np.arange(n_views) + rng.uniform(-0.25, 0.25, size=n_views)) * 2 * np.pi / n_views
    radius = rng.uniform(2.6, 3.1, size=n_views)
    height = np.where(np.arange(n_views) % 2 == 0, 1.3, 2.2) + rng.uniform(-0.15, 0.15, size=n_views)
    fx = config.width / 2 / np.tan(np.radians(config.horizontal_fov_deg) / 2)
    digits = max(3, len(str(n_views - 1)))  # zero-padded: sorting by name (as dataset readers do) keeps the order
    cameras = []
    for i in range(n_views):
        eye = (radius[i] * np.cos(azimuth[i]), radius[i] * np.sin(azimuth[i]), height[i])
        target = np.asarray(LOOK_AT) + rng.uniform(-0.15, 0.15, size=3)
        cameras.append(Camera.look_at(eye, target, width=config.width, height=config.height, fx=fx, fy=fx,
                                      cx=config.width / 2, cy=config.height / 2, name=f"view_{i:0{digits}d}.png"))
    return cameras


def split_views(n_views: int, n_test: int) -> list[bool]:
    """Held-out test views spread evenly around the ring."""
    test = {int(i) for i in np.floor((np.arange(n_test) + 0.5) * n_views / max(n_test, 1))} if n_test else set()
    return [i in test for i in range(n_views)]


# -- rendering the views and their labels ------------------------------------------------------------

def render_view(gaussians: GaussianTensors, features: torch.Tensor, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """RGB image (H, W, 3) in [0, 1] on the void colour, and the rendered region weights + alpha."""
    with torch.no_grad():
        result = rasterize(gaussians, features, camera, rasterizer="auto")
    rendered = result.features.cpu().numpy()
    alpha = result.alpha.cpu().numpy()
    rgb = rendered[..., :3] + (1.0 - alpha[..., None]) * np.asarray(VOID_COLOR)
    return np.clip(rgb, 0.0, 1.0), np.concatenate([rendered[..., 3:], alpha[..., None]], axis=-1)


def label_maps(region_weights: np.ndarray, n_background: int, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel: the region (background regions first, then parts) with the largest rendered weight
    where alpha >= threshold. Returns (part map, background-region map), 0 = none."""
    weights, alpha = region_weights[..., :-1], region_weights[..., -1]
    region = np.argmax(weights, axis=-1)
    hit = alpha >= threshold
    part_map = np.where(hit & (region >= n_background), region - n_background + 1, 0)
    background_map = np.where(hit & (region < n_background), region + 1, 0)
    return part_map.astype(np.int32), background_map.astype(np.int32)


def region_one_hot(part_labels: np.ndarray, background_regions: np.ndarray | None, n_background: int,
                   n_parts: int) -> np.ndarray:
    """(N, n_background + n_parts) float32 one-hot per Gaussian: background regions first, then parts.

    A Gaussian with neither a part nor a background region (label 0 everywhere) is all zeros."""
    part_labels = np.asarray(part_labels)
    regions = np.zeros(len(part_labels), dtype=np.int64) if background_regions is None else np.asarray(background_regions)
    column = np.where(part_labels > 0, part_labels + n_background - 1, regions - 1)
    one_hot = np.zeros((len(column), n_background + n_parts), dtype=np.float32)
    has = column >= 0
    one_hot[np.nonzero(has)[0], column[has]] = 1.0
    return one_hot


def _region_features(labelled: LabelledCloud) -> torch.Tensor:
    """Per Gaussian: colour (3) then a one-hot over background regions and parts."""
    one_hot = region_one_hot(labelled.part_labels, labelled.background_regions, len(BACKGROUND_REGIONS),
                             len(labelled.part_names))
    return torch.from_numpy(np.concatenate([labelled.cloud.colors, one_hot], axis=1))


# -- writing ---------------------------------------------------------------------------------------

def _write_png(path: Path, rgb: np.ndarray) -> None:
    Image.fromarray(np.rint(rgb * 255).astype(np.uint8)).save(path)


def _write_colmap(root: Path, cameras: list[Camera], labelled: LabelledCloud, rng: np.random.Generator) -> None:
    """The views as a COLMAP text model; a sample of the Gaussian centres stands in for SfM points."""
    cloud = labelled.cloud
    sample = np.sort(rng.choice(len(cloud), size=min(len(cloud), COLMAP_POINTS), replace=False))
    colors = np.rint(cloud.colors[sample] * 255).astype(np.uint8)
    write_colmap_text(root / SPARSE_DIR, [View(c, str(root / IMAGES_DIR / c.name), c.name) for c in cameras],
                      points_xyz=cloud.positions[sample], points_rgb=colors)


def generate_scene(out_dir: str | os.PathLike, preset: str = "demo", seed: int = 0, **overrides) -> SyntheticScene:
    """Generate the synthetic scene into `out_dir` (created; our files in it are overwritten).

    Overrides: any `SyntheticConfig` field (n_gaussians, width, height, n_train, n_test, ...) or
    any `MaskNoise` rate by name. The same preset, seed and overrides give identical files.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    config = PRESETS[preset].with_overrides(**overrides)
    root = Path(out_dir)
    if root.exists() and not root.is_dir():
        raise DatasetError(root, "output path exists and is not a folder")
    for folder in (root, root / IMAGES_DIR, root / MASKS_DIR, root / SPARSE_DIR):
        folder.mkdir(parents=True, exist_ok=True)
    # A previous, larger scene in the same folder must not leave views behind.
    for stale in [*(root / IMAGES_DIR).glob("view_*.png"), *(root / MASKS_DIR).glob("view_*_*.png")]:
        stale.unlink()
    # Independent streams, so changing e.g. the mask noise leaves the geometry and views unchanged.
    geometry_rng, camera_rng, mask_rng, points_rng, layout_rng = (np.random.default_rng([seed, k]) for k in range(5))

    objects = varied_objects(layout_rng) if config.objects == "varied" else None
    labelled = build_room_cloud(config.n_gaussians, geometry_rng, config.background_fraction, objects,
                                config.hidden_surfaces)
    write_gaussian_ply(root / PLY_NAME, labelled.cloud)
    cameras = ring_cameras(config, camera_rng)
    is_test = split_views(len(cameras), config.n_test)

    gaussians = GaussianTensors.from_cloud(labelled.cloud, "cuda" if torch.cuda.is_available() else "cpu")
    features = _region_features(labelled).to(gaussians.device)
    part_maps, object_maps = [], []
    for camera in cameras:
        rgb, region_weights = render_view(gaussians, features, camera)
        part_map, background_map = label_maps(region_weights, len(BACKGROUND_REGIONS), config.label_alpha_threshold)
        masks = simulate_sam_masks(part_map, labelled.part_objects, background_map, config.mask_noise, mask_rng)
        stem = Path(camera.name).stem
        _write_png(root / IMAGES_DIR / camera.name, rgb)
        write_mask_png(root / MASKS_DIR / f"{stem}_coarse.png", masks.coarse)
        write_mask_png(root / MASKS_DIR / f"{stem}_fine.png", masks.fine)
        part_maps.append(part_map)
        object_maps.append(labelled.part_objects[part_map])
    _write_colmap(root, cameras, labelled, points_rng)

    view_names = [c.name for c in cameras]
    scene = SyntheticScene(
        root=root, config=config, seed=seed, view_names=view_names,
        train_views=[v for v, t in zip(view_names, is_test) if not t],
        test_views=[v for v, t in zip(view_names, is_test) if t],
        object_names=labelled.object_names, part_names=labelled.part_names, part_objects=labelled.part_objects,
        gaussian_objects=labelled.object_labels, gaussian_parts=labelled.part_labels,
        object_maps=np.stack(object_maps).astype(np.uint8), part_maps=np.stack(part_maps).astype(np.uint8),
        cameras=cameras)
    np.savez_compressed(root / LABELS_NAME, gaussian_objects=scene.gaussian_objects,
                        gaussian_parts=scene.gaussian_parts, part_objects=scene.part_objects,
                        object_maps=scene.object_maps, part_maps=scene.part_maps)
    description = {
        "format": FORMAT, "version": FORMAT_VERSION, "preset": preset, "seed": seed, "config": asdict(config),
        "objects": scene.object_names,
        "parts": [{"name": name, "object": int(scene.part_objects[k + 1])} for k, name in enumerate(scene.part_names)],
        "views": view_names, "split": {"train": scene.train_views, "test": scene.test_views},
        "files": {"ply": PLY_NAME, "labels": LABELS_NAME, "images": IMAGES_DIR, "masks": MASKS_DIR,
                  "colmap": SPARSE_DIR},
    }
    (root / SCENE_JSON).write_text(json.dumps(description, indent=2) + "\n")
    return scene


# -- reading ---------------------------------------------------------------------------------------

def load_synthetic(out_dir: str | os.PathLike) -> SyntheticScene:
    """Read a generated scene back (labels, split, cameras from its COLMAP model)."""
    root = Path(out_dir)
    json_path = root / SCENE_JSON
    if not json_path.is_file():
        raise DatasetError(root, f"not a synthetic scene folder (no {SCENE_JSON})")
    try:
        description = json.loads(json_path.read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(json_path, f"unreadable scene description ({exc})") from None
    if description.get("format") != FORMAT or description.get("version") != FORMAT_VERSION:
        raise DatasetError(json_path, f"not a {FORMAT} v{FORMAT_VERSION} scene description")
    labels_path = root / LABELS_NAME
    try:
        with np.load(labels_path, allow_pickle=False) as labels:
            arrays = {k: labels[k] for k in ("gaussian_objects", "gaussian_parts", "part_objects",
                                             "object_maps", "part_maps")}
    except FileNotFoundError:
        raise DatasetError(labels_path, "ground-truth labels file missing") from None
    except Exception as exc:
        raise DatasetError(labels_path, f"unreadable ground-truth labels ({exc})") from None

    dataset = load_dataset(root)
    cameras_by_name = {view.name: view.camera for view in dataset.views}
    missing = [v for v in description["views"] if v not in cameras_by_name]
    if missing:
        raise DatasetError(root / SPARSE_DIR, f"COLMAP model lacks view(s) {missing[:3]}")
    config_dict = dict(description["config"])
    config = SyntheticConfig(**{k: v for k, v in config_dict.items() if k != "mask_noise"},
                             mask_noise=MaskNoise(**config_dict["mask_noise"]))
    return SyntheticScene(
        root=root, config=config, seed=int(description["seed"]), view_names=list(description["views"]),
        train_views=list(description["split"]["train"]), test_views=list(description["split"]["test"]),
        object_names=list(description["objects"]), part_names=[p["name"] for p in description["parts"]],
        part_objects=arrays["part_objects"], gaussian_objects=arrays["gaussian_objects"],
        gaussian_parts=arrays["gaussian_parts"], object_maps=arrays["object_maps"], part_maps=arrays["part_maps"],
        cameras=[cameras_by_name[v] for v in description["views"]])
