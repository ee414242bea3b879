"""Readers confined to folders: every file a dataset leads to must resolve inside them."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from clickgauss_core.confinement import check_confined, confined_to
from clickgauss_core.datasets import load_dataset
from clickgauss_core.errors import OutsideRootsError

SNOWMIKU = "snowmiku-plush-colmap"


@pytest.fixture
def dataset_copy(real_data, tmp_path):
    """The real COLMAP dataset copied into root/, plus a folder outside/ next to root."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    shutil.copytree(real_data(SNOWMIKU) / "sparse", root / "scene" / "sparse")
    shutil.copytree(real_data(SNOWMIKU) / "images", root / "scene" / "images")
    outside.mkdir()
    return root, outside


def move_outside_and_link(path, outside):
    moved = outside / path.name
    shutil.move(path, moved)
    path.symlink_to(moved)


def test_the_dataset_loads_inside_its_root_and_anywhere_unconfined(dataset_copy):
    root, outside = dataset_copy
    with confined_to([root]):
        views = load_dataset(root / "scene").views
    move_outside_and_link(root / "scene" / "images" / views[0].name, outside)
    assert len(load_dataset(root / "scene").views) == len(views)  # no confinement: the CLI, the add-on


def test_a_symlinked_image_outside_the_root_is_refused(dataset_copy):
    root, outside = dataset_copy
    first = sorted((root / "scene" / "images").iterdir())[0]
    move_outside_and_link(first, outside)
    with confined_to([root]), pytest.raises(OutsideRootsError, match="image of view .* resolves outside") as info:
        load_dataset(root / "scene")
    assert info.value.path == str(first)
    with confined_to([root, outside]):  # a second root that holds it
        assert load_dataset(root / "scene").views


def test_a_symlinked_camera_file_outside_the_root_is_refused(dataset_copy):
    root, outside = dataset_copy
    move_outside_and_link(root / "scene" / "sparse" / "0" / "cameras.txt", outside)
    with confined_to([root]), pytest.raises(OutsideRootsError, match="cameras.txt: COLMAP model file resolves outside"):
        load_dataset(root / "scene")


def test_an_image_path_climbing_out_in_transforms_json_is_refused(dataset_copy):
    root, outside = dataset_copy
    image = sorted((root / "scene" / "images").iterdir())[0]
    shutil.copyfile(image, outside / "elsewhere.png")
    frame = {"file_path": "../../outside/elsewhere.png", "transform_matrix": np.eye(4).tolist()}
    (root / "scene" / "transforms.json").write_text(json.dumps(
        {"fl_x": 100, "fl_y": 100, "cx": 50, "cy": 50, "w": 100, "h": 100, "frames": [frame]}))
    with confined_to([root]), pytest.raises(OutsideRootsError, match="elsewhere.png"):
        load_dataset(root / "scene" / "transforms.json")


def test_check_confined_compares_real_paths_not_prefixes(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data-other").mkdir()
    with confined_to([tmp_path / "data"]):
        check_confined(tmp_path / "data" / "x.png")
        check_confined(tmp_path / "data" / "sub" / ".." / "x.png")
        for escaping in (tmp_path / "data-other" / "x.png", tmp_path / "data" / ".." / "x.png"):
            with pytest.raises(OutsideRootsError):
                check_confined(escaping)
    check_confined(tmp_path / "data-other" / "x.png")  # the block has ended
