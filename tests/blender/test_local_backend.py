"""Where the add-on finds a backend by itself (local_backend.find_backend, no bpy), in its order:
the preferences, PATH, the checkout the add-on was built from, the one Install Backend made; and
which folders a running backend cannot read yet (covering_roots)."""

from __future__ import annotations

import json
import os


def _program(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return str(path)


def test_the_order_of_the_places_looked_in(addon_module, tmp_path):
    local_backend = addon_module("local_backend")
    chosen = _program(tmp_path / "chosen" / "python")
    on_path = _program(tmp_path / "bin" / "clickgauss-backend")
    checkout = tmp_path / "checkout"
    checkout_python = _program(checkout / "backend" / ".venv" / "bin" / "python")
    installed = tmp_path / "user" / "backend-env"
    installed_python = _program(installed / "bin" / "python")
    path = str(tmp_path / "bin")

    def find(configured="", search_path=path, checkout_dir=str(checkout), installed_dir=str(installed)):
        found = local_backend.find_backend(configured, installed_dir, checkout_dir, search_path)
        return None if found is None else (found.program, found.source)

    assert find(chosen) == (chosen, "preferences")
    assert find(str(tmp_path / "missing")) is None  # a wrong preference is said, not silently replaced
    assert find() == (on_path, "PATH")
    assert find(search_path=str(tmp_path / "empty")) == (checkout_python, "checkout")
    assert find(search_path=str(tmp_path / "empty"), checkout_dir=None) == (installed_python, "installed")
    assert find(search_path=str(tmp_path / "empty"), checkout_dir=None, installed_dir=None) is None
    # The command runs as itself, an interpreter runs the CLI module.
    assert local_backend.FoundBackend(on_path, "PATH").command() == [on_path]
    assert local_backend.FoundBackend(chosen, "preferences").command() == [chosen, "-m", "clickgauss_backend.cli"]


def test_the_checkout_is_read_from_the_build_info(addon_module, tmp_path):
    local_backend = addon_module("local_backend")
    info = tmp_path / "build_info.json"
    info.write_text(json.dumps({"checkout": "/somewhere/clickgauss"}))
    assert local_backend.checkout_root(str(info)) == "/somewhere/clickgauss"
    assert local_backend.checkout_root(str(tmp_path / "none.json")) is None
    # The installed add-on carries the build info of the checkout it was built from.
    assert os.path.isdir(local_backend.checkout_root() or "")


def test_folders_a_backend_cannot_read_yet(addon_module, tmp_path):
    covering_roots = addon_module("local_backend").covering_roots
    roots = [str(tmp_path / "home")]
    inside, beside = str(tmp_path / "home" / "scans" / "chair"), str(tmp_path / "homework")
    assert covering_roots([inside, beside], roots) == [beside]  # a name that only starts like a root is outside
    assert covering_roots([str(tmp_path / "home")], roots) == []
