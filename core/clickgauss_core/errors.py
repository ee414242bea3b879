"""Errors raised by the core readers: every one names the file and the problem."""

from __future__ import annotations

import os


class ClickGaussInputError(ValueError):
    """Bad user input (a file or folder): the message names the path and what is wrong with it."""

    def __init__(self, path: str | os.PathLike | None, problem: str):
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class PlyFormatError(ClickGaussInputError):
    """A PLY file that is not a readable 3D Gaussian Splatting scene."""


class DatasetError(ClickGaussInputError):
    """A camera/image dataset folder that cannot be loaded."""


class MaskError(ClickGaussInputError):
    """A mask file or folder that cannot be used."""


class WireFormatError(ClickGaussInputError):
    """A JSON payload (camera, mask, array) that does not decode; the problem names the field."""


class OutsideRootsError(ClickGaussInputError):
    """A file a dataset or mask folder leads to (a symbolic link, an absolute path in a camera
    file) that resolves outside the folders the reader is confined to (`confinement.confined_to`)."""
