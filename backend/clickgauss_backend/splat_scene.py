"""A scene as the engine sees it: the splat's Gaussians, its training dataset and its identity.

`SplatScene.load` reads the splat file once (any format the add-on imports: INRIA PLY, SuperSplat
compressed PLY, antimatter15 `.splat`, Niantic SPZ, through `clickgauss_core`'s one reader) (and the dataset, when given), puts the Gaussians on the device
and remembers the result, so the server and the CLI can ask for the same scene repeatedly for
free. The content hash (sha256 of the file's bytes) is the scene's identity everywhere: mask
caches, feature fields and server sessions are keyed by it.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass

from clickgauss_core.files import file_sha256
from clickgauss_core.gaussians import GaussianCloud
from clickgauss_core.ply import read_splat_file

from .render import GaussianTensors

# Scenes kept in memory; a scene is a few hundred MB at most, the server rarely has more open.
SCENE_CACHE_SIZE = 4


@dataclass
class SplatScene:
    ply_path: str
    cloud: GaussianCloud
    gaussians: GaussianTensors
    dataset: object | None  # clickgauss_core.datasets.Dataset
    content_hash: str
    device: str = "cpu"

    @property
    def views(self) -> list:
        return [] if self.dataset is None else list(self.dataset.views)

    @classmethod
    def load(cls, ply_path: str | os.PathLike, dataset_path: str | os.PathLike | None = None,
             images: str | None = None, resolution: int | float | None = None,
             device: str = "cpu") -> "SplatScene":
        ply_path = os.path.realpath(os.fspath(ply_path))
        stat = os.stat(ply_path) if os.path.isfile(ply_path) else None
        dataset_key = None if dataset_path is None else os.path.realpath(os.fspath(dataset_path))
        # The file's size and mtime are in the key so an edited PLY is read again.
        key = (ply_path, stat and (stat.st_size, stat.st_mtime_ns), dataset_key, images, resolution, str(device))
        with _CACHE_LOCK:
            if key in _CACHE:
                _CACHE.move_to_end(key)
                return _CACHE[key]
        scene = cls._read(ply_path, dataset_key, images, resolution, str(device))
        with _CACHE_LOCK:
            _CACHE[key] = scene
            while len(_CACHE) > SCENE_CACHE_SIZE:
                _CACHE.popitem(last=False)
        return scene

    @classmethod
    def _read(cls, ply_path, dataset_path, images, resolution, device) -> "SplatScene":
        cloud = read_splat_file(ply_path)  # raises PlyFormatError naming the file
        dataset = None
        if dataset_path is not None:
            from clickgauss_core.datasets import load_dataset
            dataset = load_dataset(dataset_path, images=images, resolution=resolution)
        return cls(ply_path=ply_path, cloud=cloud, gaussians=GaussianTensors.from_cloud(cloud, device),
                   dataset=dataset, content_hash=file_sha256(ply_path), device=device)


_CACHE: "OrderedDict[tuple, SplatScene]" = OrderedDict()
_CACHE_LOCK = threading.Lock()


def clear_scene_cache() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()
