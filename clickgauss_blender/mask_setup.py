"""Whether Train Features has masks to train on, and if not, the one sentence that says what to
do: shown in the panel and refused by Train Features before any request is sent. Pure Python (no
bpy), so tests call it directly."""

from __future__ import annotations

import os

NO_MASKS = ("No masks to train on: choose a Mask Folder of precomputed masks, or set a SAM checkpoint "
            "in the add-on preferences (Edit > Preferences > Add-ons > ClickGauss) and press Start Local.")
CHOOSE_FOLDER = "Choose the Mask Folder, or switch Masks to SAM (the backend has it)."
RESTART_FOR_SAM = ("The running backend was started without SAM: stop it and press Start Local to load "
                   "the SAM checkpoint set in the add-on preferences, or switch Masks to Mask Folder.")
NO_SAM = ("The backend has no SAM: set a SAM checkpoint in the add-on preferences and press Start Local, "
          "or switch Masks to Mask Folder.")


def sam_available(backend_health: dict | None, sam_checkpoint: str) -> bool:
    """SAM is there when the connected backend says so; with none connected yet, when the
    preferences name a checkpoint file (Start Local passes it on)."""
    if backend_health:
        return bool(backend_health.get("sam_checkpoint_configured"))
    return bool(sam_checkpoint) and os.path.isfile(sam_checkpoint)


def masks_problem(source: str, masks_path: str, backend_health: dict | None, sam_checkpoint: str) -> str | None:
    """None when the masks are set up (a folder chosen, or SAM asked for and there); else one
    sentence. `source` is "FOLDER" or "SAM" (the panel's Masks setting)."""
    has_sam = sam_available(backend_health, sam_checkpoint)
    if (source == "FOLDER" and masks_path) or (source == "SAM" and has_sam):
        return None
    if source == "FOLDER" and has_sam:
        return CHOOSE_FOLDER
    if source == "SAM" and backend_health and sam_checkpoint:
        return RESTART_FOR_SAM
    if source == "SAM" and masks_path:
        return NO_SAM
    return NO_MASKS
