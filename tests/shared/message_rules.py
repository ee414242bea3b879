"""What every message a user can meet must (not) contain: shared by the backend and add-on tests.

    problems_for_people(text, also_forbidden=()) -> list of what is wrong with `text` (empty: fine)
    documented_error_codes() -> the error codes docs/protocol.md lists
"""

from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

ROUTE = re.compile(r"/v1\b|\b(GET|POST|PUT|DELETE|PATCH) /")
HEX_ID = re.compile(r"\b[0-9a-f]{32,}\b")  # scene ids (sha256) and job ids (uuid4 hex)
# Python names: dotted module paths, calls, our packages, reader/writer functions.
FUNCTION = re.compile(r"\b[A-Za-z_]\w*\.[A-Za-z_]\w*\.[A-Za-z_]\w*\b(?<!\.png)(?<!\.ply)|\b\w+\(\)|"
                      r"\bclickgauss_(core|backend|blender)\b|\b(read|write|load|open|start|save)_[a-z_]+\b")
# "What to do" is said after the description: an instruction after ":", ";", "." or a dash.
ACTIONS = ("start", "restart", "open", "choose", "set", "train", "give", "use", "check", "try", "add", "wait",
           "cancel", "send", "put", "install", "report", "press", "click", "import", "load", "make", "fix",
           "select", "resume", "delete", "export", "switch", "move", "copy", "keep", "see")
ADVICE = re.compile(r"[:;.—]\s.*\b(" + "|".join(ACTIONS) + r")\b", re.IGNORECASE | re.DOTALL)


def problems_for_people(text: str, also_forbidden=()) -> list[str]:
    problems = []
    if not text or not text.strip():
        return ["empty message"]
    if ROUTE.search(text):
        problems.append(f"names an HTTP route: {ROUTE.search(text).group(0)!r}")
    if HEX_ID.search(text):
        problems.append(f"shows a hex id: {HEX_ID.search(text).group(0)!r}")
    if FUNCTION.search(text):
        problems.append(f"names a Python function or module: {FUNCTION.search(text).group(0)!r}")
    for forbidden in also_forbidden:
        if forbidden and str(forbidden) in text:
            problems.append(f"shows {forbidden!r}")
    if not ADVICE.search(text):
        problems.append("does not say what to do")
    return problems


def documented_error_codes() -> list[str]:
    """The `code` column of the error table in docs/protocol.md."""
    text = (REPO_ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    codes = re.findall(r"^\| `([a-z_]+)` \| [0-9–-]+ \|", text, flags=re.MULTILINE)
    return sorted(set(codes))
