"""Files: written so that a failure never leaves a half-written one (or the old one destroyed); hashed by content."""

from __future__ import annotations

import hashlib
import os
import tempfile
from contextlib import contextmanager
from typing import BinaryIO, Iterator


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary stream whose content becomes `path` only when the block ends without an error:
    written beside the target, then renamed over it. A missing folder is an error naming it."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot write {path}: the folder {folder} does not exist")
    handle, temporary = tempfile.mkstemp(prefix=".clickgauss-", suffix=os.path.splitext(path)[1], dir=folder)
    try:
        with os.fdopen(handle, "wb") as stream:
            yield stream
        os.chmod(temporary, _new_file_mode(path))
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def _new_file_mode(path: str) -> int:
    """The mode a plain open() would give (mkstemp makes 0600 files): keep an existing file's."""
    if os.path.exists(path):
        return os.stat(path).st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The hex SHA-256 of a file's bytes, read in chunks (scene ids, mask cache keys)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
