"""The in-memory 3DGS scene: every PLY vertex property by name, plus typed views of the standard ones.

`GaussianCloud.properties` keeps every property of the file (extra ones included) in file order,
so an export writes back exactly what was read, with edits applied. The typed accessors decode
the INRIA conventions: opacity is a logit, scale a log, rot an unnormalised wxyz quaternion,
colour = 0.5 + SH_C0 * f_dc, f_rest is channel-major (all red coefficients, then green, then blue).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SH_C0 = 0.28209479177387814
REQUIRED_PROPERTIES = (
    "x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
    "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3",
)


def _stack(props: dict[str, np.ndarray], names) -> np.ndarray:
    return np.stack([np.asarray(props[n], dtype=np.float32) for n in names], axis=1)


@dataclass
class GaussianCloud:
    properties: dict[str, np.ndarray]  # name -> (N,) array, file order; float32 (or the file's float64) for the standard ones
    source: str | None = None          # file it was read from, for messages
    comments: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.properties["x"])

    # -- raw (stored) values ------------------------------------------------------------
    @property
    def positions(self) -> np.ndarray:
        return _stack(self.properties, ("x", "y", "z"))

    @property
    def log_scales(self) -> np.ndarray:
        return _stack(self.properties, ("scale_0", "scale_1", "scale_2"))

    @property
    def rotations_raw(self) -> np.ndarray:
        """(N, 4) wxyz as stored (not normalised)."""
        return _stack(self.properties, ("rot_0", "rot_1", "rot_2", "rot_3"))

    @property
    def opacity_logits(self) -> np.ndarray:
        return np.asarray(self.properties["opacity"], dtype=np.float32)

    @property
    def sh_dc(self) -> np.ndarray:
        return _stack(self.properties, ("f_dc_0", "f_dc_1", "f_dc_2"))

    @property
    def rest_names(self) -> list[str]:
        names = [n for n in self.properties if n.startswith("f_rest_")]
        return sorted(names, key=lambda n: int(n[len("f_rest_"):]))

    @property
    def sh_degree(self) -> int:
        coeffs = len(self.rest_names) // 3 + 1
        return int(round(np.sqrt(coeffs))) - 1

    @property
    def sh_rest(self) -> np.ndarray:
        """(N, K-1, 3) higher-order SH coefficients, decoded from the channel-major file layout."""
        names = self.rest_names
        if not names:
            return np.zeros((len(self), 0, 3), dtype=np.float32)
        flat = _stack(self.properties, names)
        return flat.reshape(len(self), 3, len(names) // 3).transpose(0, 2, 1).copy()

    # -- activated values ----------------------------------------------------------------
    @property
    def scales(self) -> np.ndarray:
        return np.exp(self.log_scales)

    @property
    def opacities(self) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.opacity_logits))

    @property
    def rotations(self) -> np.ndarray:
        """(N, 4) unit wxyz quaternions."""
        q = self.rotations_raw
        norm = np.linalg.norm(q, axis=1, keepdims=True)
        return q / np.where(norm > 0, norm, 1.0)

    @property
    def colors(self) -> np.ndarray:
        """(N, 3) base colour in [0, 1] from the SH DC term (view-independent)."""
        return np.clip(0.5 + SH_C0 * self.sh_dc, 0.0, 1.0)

    # -- editing -------------------------------------------------------------------------
    def subset(self, keep: np.ndarray) -> "GaussianCloud":
        """A new cloud with the Gaussians selected by a boolean mask or index array, order kept."""
        return GaussianCloud({k: np.asarray(v)[keep] for k, v in self.properties.items()},
                             source=self.source, comments=list(self.comments))

    @classmethod
    def from_arrays(cls, positions, log_scales, rotations, opacity_logits, sh_dc, sh_rest=None,
                    normals: bool = True, extra: dict[str, np.ndarray] | None = None) -> "GaussianCloud":
        """Build a cloud in the INRIA property order from stored (log / logit / raw) values."""
        positions = np.asarray(positions, dtype=np.float32)
        n = len(positions)
        props: dict[str, np.ndarray] = {}
        for i, axis in enumerate("xyz"):
            props[axis] = positions[:, i]
        if normals:
            for axis in ("nx", "ny", "nz"):
                props[axis] = np.zeros(n, dtype=np.float32)
        sh_dc = np.asarray(sh_dc, dtype=np.float32)
        for i in range(3):
            props[f"f_dc_{i}"] = sh_dc[:, i]
        if sh_rest is not None and np.asarray(sh_rest).shape[1] > 0:
            flat = np.asarray(sh_rest, dtype=np.float32).transpose(0, 2, 1).reshape(n, -1)
            for i in range(flat.shape[1]):
                props[f"f_rest_{i}"] = flat[:, i]
        props["opacity"] = np.asarray(opacity_logits, dtype=np.float32).reshape(n)
        log_scales = np.asarray(log_scales, dtype=np.float32)
        for i in range(3):
            props[f"scale_{i}"] = log_scales[:, i]
        rotations = np.asarray(rotations, dtype=np.float32)
        for i in range(4):
            props[f"rot_{i}"] = rotations[:, i]
        for name, values in (extra or {}).items():
            props[name] = np.asarray(values)
        return cls(props)
