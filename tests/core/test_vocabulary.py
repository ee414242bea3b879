"""The protocol's words live in `clickgauss_core/protocol.py` only (issue 11).

Every string constant in the scanned folders (found with `ast`, so comments and docstrings do not
count) that equals a job state, a level, a preset name or an error code is a failure: import the
name from `clickgauss_core.protocol` instead. A word that means something else on its line (a
synthetic scene called "tiny", a benchmark step that "failed") is marked there with a
`# not vocabulary: <what it is>` comment.
"""

from __future__ import annotations

import ast
from pathlib import Path

from clickgauss_core import protocol

REPOSITORY = Path(__file__).resolve().parents[2]
# The folders whose code must import the vocabulary (the add-on joins when its half is merged).
SCANNED_FOLDERS = ("backend/clickgauss_backend", "core/clickgauss_core", "clickgauss_blender", "benchmarks", "demo")
HOME = REPOSITORY / "core" / "clickgauss_core" / "protocol.py"
OTHER_MEANING_MARK = "not vocabulary"
VOCABULARY = frozenset(protocol.JOB_STATES + protocol.LEVELS + protocol.PRESET_NAMES
                       + protocol.SERVER_ERROR_CODES + protocol.CLIENT_ERROR_CODES)


def _docstrings(tree: ast.AST) -> set[int]:
    nodes = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, nodes) and node.body and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)}


def vocabulary_literals(path: Path) -> list[tuple[int, str]]:
    """(line, word) for every protocol word written as a string literal in the Python file `path`."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    tree = ast.parse(source, filename=str(path))
    docstrings = _docstrings(tree)
    return sorted((node.lineno, node.value) for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in VOCABULARY
                  and id(node) not in docstrings and OTHER_MEANING_MARK not in lines[node.lineno - 1])


def scanned_files() -> list[Path]:
    return sorted(path for folder in SCANNED_FOLDERS for path in (REPOSITORY / folder).rglob("*.py")
                  if path != HOME)


def test_no_protocol_word_is_written_outside_its_home():
    files = scanned_files()
    assert len(files) > 50, f"the scan found only {len(files)} files: are SCANNED_FOLDERS right?"
    found = [f"{path.relative_to(REPOSITORY)}:{line}: {word!r}"
             for path in files for line, word in vocabulary_literals(path)]
    assert not found, ("protocol words written as literals; import them from clickgauss_core.protocol:\n"
                       + "\n".join(found))


def test_the_scan_catches_a_planted_literal(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text('"""A docstring may say done, coarse and bad_token."""\n'
                       "# a comment may say failed\n"
                       "def f(job):\n"
                       '    """So may this one: running."""\n'
                       '    if job.state == "done":\n'
                       '        return {"level": "coarse", "preset": "cpu-fast"}\n'
                       '    raise ValueError(f"{job[\'bad_token\']}")\n'
                       '    size = "tiny"  # not vocabulary: a synthetic scene size\n',
                       encoding="utf-8")
    assert vocabulary_literals(planted) == [(5, "done"), (6, "coarse"), (6, "cpu-fast"), (7, "bad_token")]


def test_the_vocabulary_is_one_set_of_distinct_words():
    groups = (protocol.JOB_STATES, protocol.LEVELS, protocol.PRESET_NAMES, protocol.SERVER_ERROR_CODES,
              protocol.CLIENT_ERROR_CODES)
    assert sum(len(group) for group in groups) == len(VOCABULARY)
    assert set(protocol.ACTIVE_STATES) | set(protocol.FINISHED_STATES) == set(protocol.JOB_STATES)
    assert not set(protocol.ACTIVE_STATES) & set(protocol.FINISHED_STATES)
    assert set(protocol.RESUMABLE_STATES) <= set(protocol.FINISHED_STATES)
