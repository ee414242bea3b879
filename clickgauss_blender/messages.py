"""What the add-on tells people: an error turned into one sentence that says what happened and what
to do, and long messages wrapped for the sidebar. Pure Python (no bpy), so tests use it directly."""

from __future__ import annotations

import textwrap

from clickgauss_core.protocol import UNREACHABLE

from .client import BackendError

# Connection problems go away by themselves once the backend answers: the panel drops them then.
CONNECTION_CODES = (UNREACHABLE,)


def describe(error: BaseException) -> str:
    """The message for the status bar and the panel: the backend's own words for its errors (they
    already say what to do), the reader's for bad files, the system's for files that cannot be written."""
    if isinstance(error, BackendError):
        text = error.message
    elif isinstance(error, OSError) and error.strerror:
        where = f" ({error.filename})" if error.filename else ""
        text = f"{error.strerror}{where}: choose a file or folder you may write to, with space left"
    else:
        text = str(error) or type(error).__name__
    return sentence(text)


def error_code(error: BaseException) -> str | None:
    return error.code if isinstance(error, BackendError) else None


def sentence(text: str) -> str:
    text = " ".join(text.split())
    return text[:1].upper() + text[1:] if text else text


def wrap(text: str, width: int) -> list[str]:
    """`text` as lines of at most `width` characters (long words split), for one label each."""
    return textwrap.wrap(text, max(int(width), 16), break_long_words=True, break_on_hyphens=False) or [""]
