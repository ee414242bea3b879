"""Confining the files a reader opens to some folders (the server's data roots).

A server checks the paths named in a request, but a dataset folder leads to more files: camera
files, images named in them (absolute paths in nerfstudio's transforms.json, an INRIA output's
`source_path`), mask files, and any of them may be a symbolic link. The readers call
`check_confined(path)` on every such file before opening it; inside `with confined_to(roots):`
a file whose real path is outside every root is an `OutsideRootsError`. Outside such a block
(the CLI, the add-on) nothing is checked. The setting is a context variable: it holds for the
thread (or task) that entered the block, not for others.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterable, Iterator

from .errors import OutsideRootsError

_ROOTS: ContextVar[tuple[str, ...] | None] = ContextVar("clickgauss_confined_to", default=None)


@contextmanager
def confined_to(roots: Iterable[str | os.PathLike]) -> Iterator[None]:
    token = _ROOTS.set(tuple(os.path.realpath(os.fspath(root)) for root in roots))
    try:
        yield
    finally:
        _ROOTS.reset(token)


def check_confined(path: str | os.PathLike, what: str = "file") -> None:
    """OutsideRootsError naming `path` when it resolves outside the roots of `confined_to`."""
    roots = _ROOTS.get()
    if roots is None:
        return
    real = os.path.realpath(os.fspath(path))
    if not any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in roots):
        raise OutsideRootsError(path, f"{what} resolves outside the server's data roots "
                                      f"({', '.join(roots)}): a symbolic link or a path out of the dataset? "
                                      "Copy it inside, or start the server with --data-root")
