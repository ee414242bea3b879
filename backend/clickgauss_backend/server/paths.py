"""Paths named in requests: resolved (symlinks followed) and confined to the data roots."""

from __future__ import annotations

from pathlib import Path

from .errors import ApiError


def resolve_inside_roots(raw: str, roots: list[Path], what: str, kind: str = "any") -> Path:
    """The real path of `raw` if it lies inside one of `roots` and exists, else an ApiError.

    Relative paths are taken relative to the first root. The containment check comes before the
    existence check so the server never tells whether a file outside the roots exists.
    `kind` is "file", "dir" or "any".
    """
    if not raw or "\x00" in raw:
        raise ApiError(422, "bad_request", f"{what}: not a usable path: {raw!r}")
    candidate = Path(raw).expanduser()
    if not candidate.is_absolute():
        candidate = roots[0] / candidate
    try:
        resolved = candidate.resolve()
    except (OSError, RuntimeError) as exc:  # symlink loops, unreadable components
        raise ApiError(400, "bad_request", f"{what} {raw}: cannot resolve path ({exc})") from exc
    if not any(resolved == root or resolved.is_relative_to(root) for root in roots):
        raise ApiError(403, "outside_data_root",
                       f"{what} {raw} is outside the server's data roots "
                       f"({', '.join(str(root) for root in roots)}); start the server with --data-root")
    try:
        exists, is_file, is_dir = resolved.exists(), resolved.is_file(), resolved.is_dir()
    except OSError as exc:  # a name longer than the file system allows, an unreadable folder
        raise ApiError(400, "bad_request", f"{what} {raw}: not a usable path ({exc.strerror})") from exc
    if not exists:
        raise ApiError(404, "file_not_found", f"{what} {raw}: no such file or folder")
    if kind == "file" and not is_file:
        raise ApiError(400, "bad_request", f"{what} {raw}: is a folder, expected a file")
    if kind == "dir" and not is_dir:
        raise ApiError(400, "bad_request", f"{what} {raw}: is a file, expected a folder")
    return resolved
