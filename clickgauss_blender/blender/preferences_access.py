"""The add-on's preferences as the rest of the add-on reads them: its package name, the choice lists
the panels share, and the backend client the preferences configure. Kept apart from the property
definitions (`preferences.py`), whose update callbacks and drawing call up into the operators."""

from __future__ import annotations

import bpy
from clickgauss_core.protocol import COARSE, FINE, PRESET_CPU_FAST, PRESET_GPU, PRESET_PAPER, PRESET_TINY

from ..client import BackendClient

ADDON_PACKAGE = __package__.rpartition(".")[0]  # this file lives in <add-on>/blender/
LEVEL_ITEMS = ((COARSE, "Coarse", "Whole objects"), (FINE, "Fine", "Parts of objects"))
AUTO_PRESET = "AUTO"  # no preset sent: the backend's default for its device
PRESET_ITEMS = (
    (AUTO_PRESET, "Auto", "The backend's default for its device"),
    (PRESET_TINY, "Tiny", "Seconds; for trying things out"),
    (PRESET_CPU_FAST, "CPU Fast", "Shorter training that runs on a CPU"),
    (PRESET_GPU, "GPU", "The paper's schedule with our changes for SAM-like masks (GPU)"),
    (PRESET_PAPER, "Paper", "The paper's settings, exactly (GPU)"))


def preferences(context=None):
    return (context or bpy.context).preferences.addons[ADDON_PACKAGE].preferences


def client_from_preferences(context=None) -> BackendClient:
    prefs = preferences(context)
    return BackendClient(prefs.backend_url, prefs.token or None, timeout=prefs.request_timeout)
