"""A contact sheet of the synthetic scene: per view, the render, the GT object and part maps and
the simulated coarse / fine masks side by side (ids coloured; black = 0)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..features.masks import read_mask_file
from .scene import SyntheticScene

COLUMNS = ("render", "GT objects", "GT parts", "coarse mask", "fine mask")


def id_colors(ids: np.ndarray) -> np.ndarray:
    """(H, W) ids -> (H, W, 3) uint8; each id a fixed, well-spread colour, 0 black."""
    ids = ids.astype(np.int64)
    hue = (ids * 0.618033988749895) % 1.0  # golden-ratio hues stay distinct
    value = np.where(ids > 0, 0.55 + 0.4 * ((ids * 7919) % 3) / 2, 0.0)
    rgb = np.stack([np.abs(((hue * 6 + shift) % 6) - 3) - 1 for shift in (0, 4, 2)], axis=-1)
    rgb = np.clip(rgb, 0, 1) * 0.75 + 0.25
    return np.rint(rgb * value[..., None] * 255).astype(np.uint8)


def write_preview(scene: SyntheticScene, path: str | os.PathLike, n_views: int = 4, scale: int | None = None) -> Path:
    """Write the contact sheet for `n_views` views spread over the scene; returns its path."""
    count = len(scene.view_names)
    picks = np.unique(np.linspace(0, count - 1, min(n_views, count)).round().astype(int))
    width, height = scene.config.width, scene.config.height
    scale = scale or max(1, 320 // width)
    label_height = 14
    cell_w, cell_h = width * scale, height * scale
    sheet = Image.new("RGB", (cell_w * len(COLUMNS), label_height + cell_h * len(picks)), "white")
    draw = ImageDraw.Draw(sheet)
    for column, title in enumerate(COLUMNS):
        draw.text((column * cell_w + 4, 1), title, fill="black")
    for row, index in enumerate(picks):
        name = scene.view_names[index]
        stem = Path(name).stem
        with Image.open(scene.images_dir / name) as image:
            render = np.asarray(image.convert("RGB"))
        cells = [render, id_colors(scene.object_maps[index]), id_colors(scene.part_maps[index]),
                 id_colors(read_mask_file(scene.masks_dir / f"{stem}_coarse.png")),
                 id_colors(read_mask_file(scene.masks_dir / f"{stem}_fine.png"))]
        for column, cell in enumerate(cells):
            tile = Image.fromarray(cell).resize((cell_w, cell_h), Image.Resampling.NEAREST)
            sheet.paste(tile, (column * cell_w, label_height + row * cell_h))
        split = "test" if name in scene.test_views else "train"
        draw.text((4, label_height + row * cell_h + 2), f"{stem} ({split})", fill="black")
    path = Path(path)
    sheet.save(path)
    return path
