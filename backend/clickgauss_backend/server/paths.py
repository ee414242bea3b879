"""Paths named in requests: resolved (symlinks followed) and confined to the data roots."""

from __future__ import annotations

from pathlib import Path

from .errors import ApiError
from clickgauss_core.protocol import BAD_REQUEST, FILE_NOT_FOUND, OUTSIDE_DATA_ROOT


def resolve_inside_roots(raw: str, roots: list[Path], what: str, kind: str = "any") -> Path:
    """The real path of `raw` if it lies inside one of `roots` and exists, else an ApiError.

    Relative paths are taken relative to the first root. The containment check comes before the
    existence check so the server never tells whether a file outside the roots exists.
    `kind` is "file", "dir" or "any". `what` names the path for people ("the scene file").
    """
    wanted = {"file": "a file", "dir": "a folder"}.get(kind, "a file or folder")
    if not raw or "\x00" in raw:
        raise ApiError(422, BAD_REQUEST, f"{what}: {raw!r} is not a usable path: give the full path of {wanted}")
    try:
        candidate = Path(raw).expanduser()
    except RuntimeError as exc:  # "~someone" for a user this machine does not have
        raise ApiError(400, BAD_REQUEST, f"{what} {raw} names a home folder this computer does not have ({exc}): "
                                           f"give the full path of {wanted}") from exc
    if not candidate.is_absolute():
        candidate = roots[0] / candidate
    try:
        resolved = candidate.resolve()
    except (OSError, RuntimeError) as exc:  # symlink loops, unreadable components
        raise ApiError(400, BAD_REQUEST, f"{what} {raw} cannot be followed ({exc}): "
                                           f"give the full path of {wanted} without symbolic-link loops") from exc
    if not any(resolved == root or resolved.is_relative_to(root) for root in roots):
        raise ApiError(403, OUTSIDE_DATA_ROOT,
                       f"the backend may not read {what} {raw}: it only reads files inside "
                       f"{', '.join(str(root) for root in roots)}. Start the backend with --data-root and "
                       "the folder it is in (Blender's Start Local does this for the files you open)")
    try:
        exists, is_file, is_dir = resolved.exists(), resolved.is_file(), resolved.is_dir()
    except OSError as exc:  # a name longer than the file system allows, an unreadable folder
        raise ApiError(400, BAD_REQUEST, f"{what} {raw} cannot be read ({exc.strerror}): "
                                           f"give the full path of {wanted} the backend can read") from exc
    if not exists:
        raise ApiError(404, FILE_NOT_FOUND, f"{what} {raw} does not exist on the backend's computer: check the "
                                              "path (a backend on another computer sees its own disks, not yours)")
    if kind == "file" and not is_file:
        raise ApiError(400, BAD_REQUEST, f"{what} {raw} is a folder: choose a file")
    if kind == "dir" and not is_dir:
        raise ApiError(400, BAD_REQUEST, f"{what} {raw} is a file: choose the folder instead")
    return resolved
