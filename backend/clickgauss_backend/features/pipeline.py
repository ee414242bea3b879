"""The one training pipeline: views -> mask source -> `MaskStore.build` -> preset -> `train_feature_field`.

`TrainingRequest` is what a user asks for (the CLI's flags, the body of `POST /v1/jobs`, a
benchmark's row): where masks come from (`MaskChoice`), which views (`ViewChoice`), the preset,
setting overrides and the seed. `TrainingPlaces` says where this process keeps the work (render,
mask and checkpoint folders) and what it has (device, SAM checkpoint, data roots). `run_training`
does the rest and returns the `FeatureField`; the CLI (`features/commands.py`), the server's job
runner (`server/training.py`), the benchmarks and the tests all call it.

A request that cannot be run as asked raises `TrainingRequestError` (a sentence naming the field);
`check_views`, `check_masks` and `training_config` find them before anything runs (the server
calls them on submit, in that order); `run_training` meets the same checks again.
"""

from __future__ import annotations

import inspect
import math
import os
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from clickgauss_core.confinement import confined_to
from clickgauss_core.view_planning import DEFAULT_COUNT as DEFAULT_VIEW_COUNT
from clickgauss_core.view_planning import DEFAULT_RESOLUTION as DEFAULT_VIEW_RESOLUTION

from .config import TrainConfig, default_preset
from .field import FeatureField
from .mask_snapping import ColourSnappedMasks
from .masks import MaskStore, PrecomputedMasks
from .trainer import TrainingCancelled, TrainingProgress, train_feature_field

MASKS_FROM_FOLDER = "folder"
MASKS_FROM_SAM = "sam"
MASK_SOURCES = (MASKS_FROM_FOLDER, MASKS_FROM_SAM)
VIEW_SETTING_NAMES = ("count", "resolution", "mode", "layout", "up")
MASKS_STAGE = "masks"


class TrainingRequestError(ValueError):
    """A training request that cannot run as asked; the message names the field and what to do."""


@dataclass(frozen=True)
class MaskChoice:
    """Where the two-level masks come from: a folder of precomputed masks, or SAM with settings."""
    source: str
    path: str | None = None                              # the mask folder (source "folder")
    settings: Mapping[str, Any] = field(default_factory=dict)  # SamMaskGenerator keyword arguments

    def to_json(self) -> dict:
        if self.source == MASKS_FROM_FOLDER:
            return {"source": self.source, "path": self.path}
        return {"source": self.source, "settings": dict(self.settings)}

    @classmethod
    def from_json(cls, values: Mapping) -> "MaskChoice":
        return cls(values["source"], values.get("path"), dict(values.get("settings") or {}))


@dataclass(frozen=True)
class ViewChoice:
    """Which views to train on: the dataset's photos, known poses or planned views (`views/`)."""
    source: str = "auto"
    count: int = DEFAULT_VIEW_COUNT
    resolution: int = DEFAULT_VIEW_RESOLUTION
    mode: str = "auto"
    layout: str = "rings"
    up: tuple[float, float, float] | None = None
    poses_path: str | None = None                        # an INRIA cameras.json or a COLMAP model
    cameras: tuple[dict, ...] | None = None              # known poses as wire camera dicts

    def to_json(self) -> dict:
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        values["up"] = None if self.up is None else list(self.up)
        values["cameras"] = None if self.cameras is None else [dict(camera) for camera in self.cameras]
        return values

    @classmethod
    def from_json(cls, values: Mapping | None) -> "ViewChoice":
        known = {name: value for name, value in (values or {}).items()
                 if name in cls.__dataclass_fields__ and value is not None}
        if "up" in known:
            known["up"] = tuple(known["up"])
        if "cameras" in known:
            known["cameras"] = tuple(known["cameras"])
        return cls(**known)

    def view_settings(self):
        """The `ViewSettings` of planned / posed views; TrainingRequestError when out of range."""
        from ..views import ViewSettings

        try:
            return ViewSettings(**{name: getattr(self, name) for name in VIEW_SETTING_NAMES})
        except ValueError as exc:
            raise TrainingRequestError(f"the views to train on: {exc}; choose other view settings") from None

    def poses(self) -> list | None:
        """The known poses as cameras (from the poses file or the sent cameras), else None."""
        if self.poses_path:
            from clickgauss_core.datasets import load_poses

            return load_poses(self.poses_path)
        if not self.cameras:
            return None
        cameras = [camera_from_wire(camera, index) for index, camera in enumerate(self.cameras)]
        for index, camera in enumerate(cameras):
            camera.name = camera.name or f"camera_{index:03d}.png"
        return cameras


def camera_from_wire(camera: Mapping, index: int):
    """One sent camera; TrainingRequestError naming it (1-based) when it is not a camera."""
    from clickgauss_core.errors import ClickGaussInputError
    from clickgauss_core.wire import camera_from_dict

    try:
        return camera_from_dict(camera)
    except (ClickGaussInputError, KeyError, TypeError, ValueError) as exc:
        raise TrainingRequestError(f"camera {index + 1} of the views to train on is not valid ({exc}): fix that "
                                   "camera or train on planned views") from None


@dataclass(frozen=True)
class TrainingRequest:
    """What to train: masks (None: the caller passes its own mask source), views, preset (None: the
    device's default), overrides, seed."""
    masks: MaskChoice | None
    views: ViewChoice = field(default_factory=ViewChoice)
    preset: str | None = None
    overrides: Mapping[str, bool | int | float] = field(default_factory=dict)   # TrainConfig fields
    seed: int = 0

    def to_json(self) -> dict:
        """The job record's `request` (docs/protocol.md): the overrides travel as `settings`."""
        return {"masks": None if self.masks is None else self.masks.to_json(), "views": self.views.to_json(), "preset": self.preset,
                "settings": dict(self.overrides), "seed": self.seed}

    @classmethod
    def from_json(cls, values: Mapping) -> "TrainingRequest":
        try:
            masks = None if values["masks"] is None else MaskChoice.from_json(values["masks"])
            return cls(masks=masks, views=ViewChoice.from_json(values.get("views")),
                       preset=values.get("preset"), overrides=dict(values.get("settings") or {}),
                       seed=int(values.get("seed", 0)))
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a training request ({exc!r}): {values!r}") from None

    def with_preset_for(self, device: str) -> "TrainingRequest":
        """The request with its preset named (the device's default when it names none)."""
        return self if self.preset is not None else replace(self, preset=default_preset(device))


@dataclass(frozen=True)
class TrainingPlaces:
    """Where one run keeps its work and what this process has to run it with."""
    view_cache_dir: Path                   # renders of planned / posed views
    mask_cache_dir: Path                   # MaskStore's on-disk cache
    checkpoint_dir: Path | None = None     # resumable checkpoints (None: none kept)
    device: str = "cpu"
    sam_checkpoint: str | None = None
    sam_model: str = "vit_h"
    data_roots: Sequence[str | os.PathLike] | None = None  # every mask file must be inside (the server's)


# -- the one place settings are checked -------------------------------------------------------------

def training_config(preset: str, overrides: Mapping[str, Any]) -> TrainConfig:
    """`TrainConfig.from_preset`, its problem as a TrainingRequestError naming the setting."""
    try:
        return TrainConfig.from_preset(preset, dict(overrides))
    except ValueError as exc:
        raise TrainingRequestError(f"settings.{exc}") from None


def sam_generator_defaults() -> dict:
    """The SAM generator's tunable keyword arguments and their defaults."""
    from .sam import SamMaskGenerator  # imports segment_anything: only when SAM is asked for

    fixed = {"self", "checkpoint", "model_type", "device"}
    return {name: parameter.default for name, parameter in inspect.signature(SamMaskGenerator.__init__).parameters.items()
            if name not in fixed and parameter.default is not inspect.Parameter.empty}


def check_sam_settings(settings: Mapping[str, Any]) -> None:
    """Each SAM setting must be known and have its default's type (JSON blurs int/float/bool)."""
    defaults = sam_generator_defaults()
    unknown = sorted(set(settings) - set(defaults))
    if unknown:
        raise TrainingRequestError(f"masks.settings: unknown setting(s) {', '.join(unknown)}; "
                                   f"use one of {', '.join(sorted(defaults))}")
    for name, value in settings.items():
        expected, where = type(defaults[name]), f"masks.settings.{name}"
        if expected is bool and not isinstance(value, bool):
            raise TrainingRequestError(f"{where}: {value!r} is not true/false; send true or false")
        if expected is int and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise TrainingRequestError(f"{where}: {value!r} is not a positive integer; send one")
        if expected is float and (isinstance(value, bool) or not math.isfinite(value) or value < 0):
            raise TrainingRequestError(f"{where}: {value!r} is not a finite number >= 0; send one")


def check_views(choice: ViewChoice) -> None:
    """The sent cameras, the view settings, and poses when training on poses."""
    for index, camera in enumerate(choice.cameras or ()):
        camera_from_wire(camera, index)
    choice.view_settings()
    if choice.source == "poses" and not choice.poses_path and not choice.cameras:
        raise TrainingRequestError("training on known camera poses needs the poses: give a cameras.json or COLMAP "
                                   "model, or send the cameras, or train on planned views")


def check_masks(choice: MaskChoice) -> None:
    if choice.source not in MASK_SOURCES:
        raise TrainingRequestError(f"masks.source: {choice.source!r} is not one of {', '.join(MASK_SOURCES)}")
    if choice.source == MASKS_FROM_FOLDER and not choice.path:
        raise TrainingRequestError("masks.path: give the mask folder when the mask source is 'folder'")
    if choice.source == MASKS_FROM_SAM:
        check_sam_settings(choice.settings)


# -- the pipeline -----------------------------------------------------------------------------------

def mask_source(choice: MaskChoice, places: TrainingPlaces):
    """The `MaskSource` a (checked: `check_masks`) choice names (SAM is imported only when it is used)."""
    if choice.source == MASKS_FROM_FOLDER:
        return PrecomputedMasks(choice.path)
    from .sam import SamMaskGenerator

    return SamMaskGenerator(places.sam_checkpoint, model_type=places.sam_model, device=places.device,
                            **choice.settings)


def choose_views(scene, choice: ViewChoice, places: TrainingPlaces):
    """The `TrainingViews` a choice names (photos, rendered poses or planned views)."""
    from ..views import training_views

    settings = choice.view_settings()
    try:
        return training_views(scene, places.view_cache_dir, choice.source, settings, choice.poses())
    except ValueError as exc:
        raise TrainingRequestError(f"the views to train on: {exc}; choose other view settings") from None


def training_size(view) -> tuple[int, int]:
    """Masks are made at the size the view is trained at: its camera's (the dataset resolution)."""
    return view.camera.width, view.camera.height


def build_masks(source, views: list, places: TrainingPlaces, progress: Callable[[TrainingProgress], None],
                should_stop: Callable[[], bool]) -> MaskStore:
    """`MaskStore.build` reporting the "masks" stage's views done (1..N) and stopping between views."""

    def on_view(done: int, total: int) -> None:
        # MaskStore.build has no cancel hook and SAM takes seconds per view: stop between views.
        if should_stop():
            raise TrainingCancelled("cancelled while making masks")
        progress(TrainingProgress(MASKS_STAGE, done, total))

    with confined_to(places.data_roots) if places.data_roots is not None else nullcontext():
        return MaskStore.build(source, views, training_size, places.mask_cache_dir, progress=on_view)


def run_training(request: TrainingRequest, scene, places: TrainingPlaces,
                 progress: Callable[[TrainingProgress], None] | None = None,
                 should_stop: Callable[[], bool] | None = None, *,
                 views: list | None = None, masks=None) -> FeatureField:
    """Train a feature field for `scene` as `request` asks.

    `views` (a list of `View`s) and `masks` (a `MaskSource`) replace the request's choices when a
    caller has them already made (held-out synthetic views, masks rendered from labels).
    """
    report = progress or (lambda _event: None)
    stop = should_stop or (lambda: False)
    request = request.with_preset_for(places.device)
    config = training_config(request.preset, request.overrides)  # also a job recorded before the bounds
    # The masks are checked before any view is rendered (a job recorded before today's checks too).
    if masks is None and request.masks is None:
        raise TrainingRequestError("masks: say where the masks come from (a folder, or SAM)")
    if masks is None:
        check_masks(request.masks)
    if views is None:
        views = choose_views(scene, request.views, places).views
    report(TrainingProgress(MASKS_STAGE, 0, len(views)))  # before SAM loads, which takes seconds
    source = masks if masks is not None else mask_source(request.masks, places)
    if config.snap_masks_to_colours:
        source = ColourSnappedMasks(source)
    mask_store = build_masks(source, views, places, report, stop)
    return train_feature_field(scene, mask_store, config, progress=report, should_cancel=stop,
                               checkpoint_dir=places.checkpoint_dir, seed=request.seed, views=views)
