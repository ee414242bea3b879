"""Cameras that frame a Gaussian cloud (pure numpy): for pictures of a scene that has no cameras
of its own (the display picture test, benchmarks). The views look at the opacity-weighted
centre from around the cloud's thinnest principal axis (its broad side), far enough back that the
bulk of the visible Gaussians fills the image."""

from __future__ import annotations

import numpy as np

from .cameras import Camera

VISIBLE_OPACITY = 0.1   # Gaussians below this hardly show: they do not decide the framing
BULK_QUANTILE = 0.9     # frame this share of the visible Gaussians (stray floaters are left out)


def principal_axes(positions: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weighted centre, axes (3, 3) as columns from the largest to the smallest variance, variances)."""
    weights = np.asarray(weights, dtype=np.float64)
    centre = (positions * weights[:, None]).sum(axis=0) / weights.sum()
    offsets = positions - centre
    covariance = (offsets * weights[:, None]).T @ offsets / weights.sum()
    variances, axes = np.linalg.eigh(covariance)
    order = np.argsort(variances)[::-1]
    return centre, axes[:, order], variances[order]


def visible_principal_axes(positions, opacities) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`principal_axes` of the Gaussians that show (opacity-weighted; all of them when fewer than
    three show), and that visibility mask: the shape framing and orientation both read."""
    positions = np.asarray(positions, dtype=np.float64)
    opacities = np.asarray(opacities, dtype=np.float64)
    visible = opacities >= VISIBLE_OPACITY
    if visible.sum() < 3:
        visible = np.ones(len(positions), dtype=bool)
    centre, axes, variances = principal_axes(positions[visible], opacities[visible])
    return centre, axes, variances, visible


def framing_cameras(positions, opacities, width: int, height: int, fov_deg: float = 50.0,
                    tilts_deg=(25.0, -35.0)) -> list[Camera]:
    """One perspective camera per tilt: looking along the thinnest axis, turned by the tilt about
    the largest axis (image up: the largest axis)."""
    positions = np.asarray(positions, dtype=np.float64)
    centre, axes, _, visible = visible_principal_axes(positions, opacities)
    radius = float(np.quantile(np.linalg.norm(positions[visible] - centre, axis=1), BULK_QUANTILE))
    focal = 0.5 * width / np.tan(np.radians(fov_deg) / 2)
    distance = radius / np.tan(np.radians(fov_deg) / 2) * min(width, height) / width * 1.15 + radius * 0.2
    largest, middle, thinnest = axes[:, 0], axes[:, 1], axes[:, 2]
    cameras = []
    for index, tilt in enumerate(tilts_deg):
        angle = np.radians(tilt)
        direction = np.cos(angle) * thinnest + np.sin(angle) * middle
        eye = centre + distance * direction
        cameras.append(Camera.look_at(eye, centre, up=largest, width=width, height=height, fx=focal, fy=focal,
                                      cx=width / 2, cy=height / 2, name=f"framing_{index}"))
    return cameras
