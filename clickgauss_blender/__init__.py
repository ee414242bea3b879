"""ClickGauss: select objects in 3D Gaussian Splatting scenes by clicking (Click-Gaussian).

The Blender side of ClickGauss: import/export splats as point meshes, display them, and talk to
the out-of-process backend (client.py) that trains the features and resolves clicks.
"""

from __future__ import annotations

from .blender import (backend_operators, click, edit_operators, install_operators, io_operators, local_operators,
                      panel, planned_views, preferences, selection_sync)

# Registered in this order, unregistered in reverse.
MODULES = (preferences, io_operators, local_operators, backend_operators, click, install_operators, edit_operators,
           planned_views, panel, selection_sync)


def register():
    for module in MODULES:
        module.register()


def unregister():
    for module in reversed(MODULES):
        module.unregister()
