"""The frozen geometry of a 3DGS scene as torch tensors, ready to rasterize."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from clickgauss_core.gaussians import GaussianCloud


@dataclass(frozen=True)
class GaussianTensors:
    """Activated Gaussian parameters: what the rasterizer needs, nothing else.

    means (N, 3) world positions; quats (N, 4) unit wxyz rotations; scales (N, 3) standard
    deviations along the rotated axes (exp of the stored log-scales); opacities (N,) in [0, 1]
    (sigmoid of the stored logits). All float32 on one device.
    """

    means: torch.Tensor
    quats: torch.Tensor
    scales: torch.Tensor
    opacities: torch.Tensor

    def __post_init__(self):
        n = self.means.shape[0]
        expected = {"means": (n, 3), "quats": (n, 4), "scales": (n, 3), "opacities": (n,)}
        for name, shape in expected.items():
            actual = tuple(getattr(self, name).shape)
            if actual != shape:
                raise ValueError(f"GaussianTensors.{name} has shape {actual}, expected {shape}")

    @classmethod
    def from_cloud(cls, cloud: GaussianCloud, device: str | torch.device = "cpu") -> "GaussianTensors":
        def tensor(values: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.ascontiguousarray(values, dtype=np.float32), device=device)

        return cls(means=tensor(cloud.positions), quats=tensor(cloud.rotations),
                   scales=tensor(cloud.scales), opacities=tensor(cloud.opacities))

    def __len__(self) -> int:
        return self.means.shape[0]

    @property
    def device(self) -> torch.device:
        return self.means.device

    def to(self, device: str | torch.device) -> "GaussianTensors":
        return GaussianTensors(self.means.to(device), self.quats.to(device),
                               self.scales.to(device), self.opacities.to(device))

    def subset(self, keep: torch.Tensor | np.ndarray) -> "GaussianTensors":
        """The Gaussians selected by a boolean mask or an index array, order kept."""
        keep = torch.as_tensor(keep, device=self.device)
        return GaussianTensors(self.means[keep], self.quats[keep], self.scales[keep], self.opacities[keep])
