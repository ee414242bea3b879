"""The frozen geometry of a 3DGS scene as torch tensors, ready to rasterize."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from clickgauss_core.gaussians import GaussianCloud


@dataclass(frozen=True)
class GaussianTensors:
    """Activated Gaussian parameters: what the rasterizer needs, nothing else.

    means (N, 3) world positions; quats (N, 4) unit wxyz rotations; scales (N, 3) standard
    deviations along the rotated axes (exp of the stored log-scales); opacities (N,) in [0, 1]
    (sigmoid of the stored logits). All float32 on one device. The geometry is frozen: derive
    new tensors (`subset`, `to`) rather than editing these in place, as renders cache from them.
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

    @cached_property
    def rotation_scale(self) -> torch.Tensor:
        """(N, 3, 3) R S, the camera-independent factor of each covariance R S S^T R^T.

        Computed once per set of Gaussians: every render needs it and the geometry is frozen.
        """
        return quaternion_to_rotation(self.quats) * self.scales[:, None, :]

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


def quaternion_to_rotation(quats: torch.Tensor) -> torch.Tensor:
    """(N, 4) wxyz quaternions (normalised here) -> (N, 3, 3) rotation matrices."""
    w, x, y, z = torch.nn.functional.normalize(quats, dim=-1).unbind(-1)
    rows = (
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    )
    return torch.stack(rows, dim=-1).reshape(quats.shape[:-1] + (3, 3))
