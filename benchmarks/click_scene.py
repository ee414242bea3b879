"""The scene and views of the click benchmarks (bench_click.py in the backend environment,
bench_addon.py in Blender): numpy + clickgauss_core only, so both build the same scene.

A room (floor, four walls) and 60 spheres in it, covered by N flat Gaussians lying in their
surfaces (thin along the normal, about the spacing of their neighbours wide, mostly opaque), as a
trained 3DGS scene is; SH degree 0. Views: 1280x720 cameras inside the room, each looking at a
random Gaussian, the click on that Gaussian's pixel.
"""

from __future__ import annotations

import numpy as np
from clickgauss_core.cameras import Camera
from clickgauss_core.gaussians import GaussianCloud

ROOM = np.array([10.0, 8.0, 3.0])  # x, y, z extent; z up
WIDTH, HEIGHT = 1280, 720


def _quaternions_from_z_to(normals: np.ndarray) -> np.ndarray:
    """wxyz unit quaternions turning +z onto each unit normal."""
    z = np.array([0.0, 0.0, 1.0])
    axis = np.cross(np.broadcast_to(z, normals.shape), normals)
    sin_angle = np.linalg.norm(axis, axis=1)
    cos_angle = normals @ z
    angle = np.arctan2(sin_angle, cos_angle)
    axis = np.where(sin_angle[:, None] > 1e-9, axis / np.maximum(sin_angle, 1e-12)[:, None], [1.0, 0.0, 0.0])
    return np.concatenate([np.cos(angle / 2)[:, None], np.sin(angle / 2)[:, None] * axis], axis=1)


def room_scene(n: int, seed: int = 0) -> GaussianCloud:
    rng = np.random.default_rng(seed)
    centres = rng.uniform([1.0, 1.0, 0.4], ROOM - [1.0, 1.0, 0.6], (60, 3))
    radii = rng.uniform(0.2, 0.9, 60)
    sphere_area = 4 * np.pi * radii ** 2
    room_area = 2 * (ROOM[0] * ROOM[1]) + 2 * ROOM[2] * (ROOM[0] + ROOM[1])
    total_area = sphere_area.sum() + room_area
    n_room = int(n * room_area / total_area)
    counts = rng.multinomial(n - n_room, sphere_area / sphere_area.sum())
    # spheres
    which = np.repeat(np.arange(60), counts)
    normals = rng.standard_normal((len(which), 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    positions = [centres[which] + radii[which, None] * normals]
    all_normals = [normals]
    # floor, ceiling and walls: a point on a random face of the box, weighted by area
    faces = [(2, 0.0), (2, ROOM[2]), (0, 0.0), (0, ROOM[0]), (1, 0.0), (1, ROOM[1])]
    face_areas = np.array([ROOM[0] * ROOM[1]] * 2 + [ROOM[1] * ROOM[2]] * 2 + [ROOM[0] * ROOM[2]] * 2)
    face = rng.choice(6, n_room, p=face_areas / face_areas.sum())
    points = rng.uniform(0, 1, (n_room, 3)) * ROOM
    face_normals = np.zeros((n_room, 3))
    for k, (axis, value) in enumerate(faces):
        chosen = face == k
        points[chosen, axis] = value
        face_normals[chosen, axis] = 1.0 if value == 0.0 else -1.0
    positions.append(points)
    all_normals.append(face_normals)
    positions, normals = np.concatenate(positions), np.concatenate(all_normals)
    spacing = np.sqrt(total_area / n)
    log_scales = np.log(np.stack([spacing * rng.uniform(0.5, 1.2, n), spacing * rng.uniform(0.5, 1.2, n),
                                  spacing * 0.1 * np.ones(n)], axis=1))
    return GaussianCloud.from_arrays(positions=positions.astype(np.float32), log_scales=log_scales,
                                     rotations=_quaternions_from_z_to(normals), opacity_logits=rng.normal(2.0, 1.0, n),
                                     sh_dc=rng.normal(size=(n, 3)), normals=False)


def click_views(cloud: GaussianCloud, count: int, seed: int = 1) -> list[tuple[Camera, tuple[float, float]]]:
    """`count` (camera, pixel) pairs: a camera inside the room looking at a random Gaussian, whose
    pixel is clicked (perspective; every fourth one orthographic)."""
    rng = np.random.default_rng(seed)
    views = []
    positions = cloud.positions.astype(np.float64)
    for k in range(count):
        target = positions[rng.integers(len(positions))]
        eye = rng.uniform([1.0, 1.0, 1.0], ROOM - [1.0, 1.0, 0.5])
        forward = target - eye
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, [0.0, 0.0, -1.0])
        right /= max(np.linalg.norm(right), 1e-9)
        down = np.cross(forward, right)
        rotation = np.stack([right, down, forward])
        w2c = np.eye(4)
        w2c[:3, :3], w2c[:3, 3] = rotation, -rotation @ eye
        if k % 4 == 3:
            camera = Camera(w2c, WIDTH, HEIGHT, 200.0, 200.0, WIDTH / 2, HEIGHT / 2, projection="orthographic")
        else:
            camera = Camera(w2c, WIDTH, HEIGHT, 900.0, 900.0, WIDTH / 2, HEIGHT / 2)
        uv, _ = camera.project(target[None])
        pixel = (float(np.clip(uv[0, 0], 0, WIDTH - 1)), float(np.clip(uv[0, 1], 0, HEIGHT - 1)))
        views.append((camera, pixel))
    return views


def unit_features(n: int, dims: int = 24, seed: int = 2) -> np.ndarray:
    """Random features (the click's cost does not depend on their values)."""
    return np.random.default_rng(seed).standard_normal((n, dims)).astype(np.float32)


def latency_summary(click_ms, floor_ms) -> dict:
    """p50 / p99 of the click and of the floor measured in the same loop, and their ratios."""
    p50, p99 = np.percentile(click_ms, 50), np.percentile(click_ms, 99)
    floor50, floor99 = np.percentile(floor_ms, 50), np.percentile(floor_ms, 99)
    return {"click_p50_ms": round(float(p50), 2), "click_p99_ms": round(float(p99), 2),
            "floor_p50_ms": round(float(floor50), 2), "floor_p99_ms": round(float(floor99), 2),
            "ratio_p50": round(float(p50 / floor50), 2), "ratio_p99": round(float(p99 / floor99), 2)}
