"""Training settings for Click-Gaussian: the paper's values are the defaults.

`TrainConfig()` is the paper's recipe (ECCV 2024, see /work/shared/method.md). Every loss term can
be switched off for ablations. `TrainConfig.preset(name)` returns one of the named variants:

- "paper":    the published recipe (10,000 pixels, 3,000 iterations, GFL from 2,000).
- "cpu-fast": trains the synthetic "demo" scene in a few minutes on 2 CPU cores (fewer pixels
              and iterations; the GFL start and refresh period scaled by the same ratio; Adam's
              learning rate 0.05 instead of 0.01 because Adam moves each feature by about lr per
              step and these presets take 5-20x fewer steps).
- "tiny":     seconds, for tests (same reasoning).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

LEVELS = ("coarse", "fine")


@dataclass(frozen=True)
class TrainConfig:
    # feature layout: the fine feature is coarse ⊕ rest (granularity prior) unless switched off,
    # in which case the fine level uses only the rest dims.
    feature_dim: int = 24
    coarse_dim: int = 12
    granularity_prior: bool = True

    # optimisation
    iterations: int = 3000
    learning_rate: float = 0.01
    pixels_per_iteration: int = 10_000

    # contrastive loss
    tau_coarse: float = 0.5
    tau_fine: float = 0.75
    lambda_negative: float = 0.1
    stop_gradient: bool = True  # sg(F_c) inside the fine negative term

    # Global Feature-guided Learning
    gfl: bool = True
    lambda_gfl: float = 10.0
    gfl_start: int = 2000
    gfl_refresh_every: int = 250
    tau_global: float = 0.9
    hdbscan_epsilon_coarse: float = 1e-2
    hdbscan_epsilon_fine: float = 1e-3
    # HDBSCAN min_cluster_size = max(2, round(ratio * number of views)): a real object is seen in
    # a good share of the views, a one-view mask artefact is not.
    min_cluster_size_per_view: float = 0.25
    # Segment means are taken over every `gfl_pixel_stride`-th pixel in x and y (1 = every pixel,
    # as in the paper); larger strides make the no-grad pass cheap on CPU.
    gfl_pixel_stride: int = 1

    # regularisers
    hypersphere: bool = True
    lambda_hypersphere: float = 0.2
    rendered_norm: bool = True
    lambda_rendered_norm: float = 0.2
    spatial: bool = True
    lambda_spatial: float = 0.5
    spatial_samples: int = 100_000
    spatial_neighbours: int = 5

    # bookkeeping
    checkpoint_every: int = 500

    @property
    def rest_dim(self) -> int:
        return self.feature_dim - self.coarse_dim

    def tau(self, level: str) -> float:
        return self.tau_coarse if level == "coarse" else self.tau_fine

    def hdbscan_epsilon(self, level: str) -> float:
        return self.hdbscan_epsilon_coarse if level == "coarse" else self.hdbscan_epsilon_fine

    def rendered_norm_target(self, level: str) -> float:
        """r_l: a pixel whose contributors all agree has the norm of one Gaussian's level feature."""
        if level == "coarse":
            return 1.0
        return math.sqrt(2.0) if self.granularity_prior else 1.0

    def level_slice(self, level: str) -> slice:
        """Which dims of the 24-dim feature make up the feature of `level`."""
        if level == "coarse":
            return slice(0, self.coarse_dim)
        if level == "fine":
            return slice(0 if self.granularity_prior else self.coarse_dim, self.feature_dim)
        raise ValueError(f"unknown level {level!r}; expected one of {LEVELS}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training settings: {', '.join(unknown)}")
        return cls(**values)

    def with_changes(self, **changes) -> "TrainConfig":
        return replace(self, **changes)

    @classmethod
    def preset(cls, name: str) -> "TrainConfig":
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; expected one of {', '.join(PRESETS)}")
        return cls(**PRESETS[name])


PRESETS: dict[str, dict] = {
    "paper": {},
    "cpu-fast": dict(iterations=600, pixels_per_iteration=2048, learning_rate=0.05, gfl_start=400,
                     gfl_refresh_every=50, spatial_samples=20_000, gfl_pixel_stride=2, checkpoint_every=100),
    "tiny": dict(iterations=150, pixels_per_iteration=1024, learning_rate=0.05, gfl_start=100,
                 gfl_refresh_every=25, spatial_samples=2_000, gfl_pixel_stride=2, checkpoint_every=25),
}
