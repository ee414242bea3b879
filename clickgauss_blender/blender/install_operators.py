"""Install Backend (in the add-on's preferences): a backend environment made with uv in the add-on's
user folder, CPU or CUDA torch, in the background with progress and a cancel. What it runs is
decided by backend_installer.py (no bpy); this is the Blender side: Blender's "Allow Online Access"
setting, the timer that moves the install on, the status bar."""

from __future__ import annotations

import os
import sys

import bpy
from bpy.props import EnumProperty

from clickgauss_core.protocol import CANCELLED, DONE, RUNNING

from ..backend_installer import (BUNDLE_DIR_NAME, INSTALLED_ENV_NAME, InstallRun, find_uv, install_steps,
                                 uv_bootstrap_step)
from .preferences_access import ADDON_PACKAGE
from .session import STATE, notify

POLL_INTERVAL = 0.5
ADDON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ONLINE_ACCESS_OFF = ("Blender's online access is off, so the add-on may not download the backend: turn on Allow "
                     "Online Access (Preferences > System > Network) and press Install Backend again, or install it "
                     "from a terminal (scripts/install-backend in the ClickGauss repository)")


def _poll_install():
    run = STATE.install
    if run is None:
        return None
    state = run.poll()
    for window in bpy.context.window_manager.windows:
        for area in window.screen.areas:
            if area.type == "PREFERENCES":
                area.tag_redraw()
    if state == RUNNING:
        return POLL_INTERVAL
    notify("INFO" if state in (DONE, CANCELLED) else "ERROR", run.message)
    return None


class CLICKGAUSS_OT_install_backend(bpy.types.Operator):
    """Download and install the ClickGauss backend (torch, SAM, ...) with uv into the add-on's own folder"""
    bl_idname = "clickgauss.install_backend"
    bl_label = "Install Backend"

    variant: EnumProperty(name="Torch", default="cuda", items=(
        ("cuda", "NVIDIA GPU (CUDA)", "Torch for NVIDIA graphics cards (about 6 GB)"),
        ("cpu", "CPU only", "Torch without GPU support (about 1.5 GB); training is slower")))

    @classmethod
    def poll(cls, context):
        return STATE.install is None or STATE.install.state != RUNNING

    def execute(self, context):
        if not bpy.app.online_access:
            STATE.install_message = ONLINE_ACCESS_OFF
            self.report({"ERROR"}, ONLINE_ACCESS_OFF)
            return {"CANCELLED"}
        folder = bpy.utils.extension_path_user(ADDON_PACKAGE, path="", create=True)
        env_dir = os.path.join(folder, INSTALLED_ENV_NAME)
        tools = os.path.join(folder, "tools")
        uv = find_uv([os.path.join(tools, "bin")])
        try:
            steps = install_steps(uv or os.path.join(tools, "bin", "uv"), env_dir,
                                  os.path.join(ADDON_DIR, BUNDLE_DIR_NAME), self.variant)
        except (FileNotFoundError, ValueError) as exc:
            STATE.install_message = str(exc)
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        if uv is None:
            steps.insert(0, uv_bootstrap_step(sys.executable, tools))
        STATE.install = InstallRun(steps, env_dir, os.path.join(folder, "install-backend.log"))
        STATE.install_message = ""
        bpy.app.timers.register(_poll_install, first_interval=POLL_INTERVAL)
        self.report({"INFO"}, f"Installing the backend: {STATE.install.message}")
        return {"FINISHED"}


class CLICKGAUSS_OT_cancel_install(bpy.types.Operator):
    """Stop installing the backend (nothing of it is kept)"""
    bl_idname = "clickgauss.cancel_install"
    bl_label = "Cancel Install"

    @classmethod
    def poll(cls, context):
        return STATE.install is not None and STATE.install.state == RUNNING

    def execute(self, context):
        STATE.install.cancel()
        self.report({"INFO"}, STATE.install.message)
        return {"FINISHED"}


def draw_install(layout) -> None:
    """The preferences' Install Backend box."""
    from ..local_backend import checkout_root, find_backend

    box = layout.box()
    prefs = bpy.context.preferences.addons[ADDON_PACKAGE].preferences
    installed = bpy.utils.extension_path_user(ADDON_PACKAGE, path=INSTALLED_ENV_NAME)
    found = find_backend(bpy.path.abspath(prefs.backend_python) if prefs.backend_python else "", installed,
                         checkout_root())
    if found is None:
        box.label(text="No backend found on this computer: install one", icon="ERROR")
    else:
        box.label(text=f"Backend: {found.program} (found in {found.source})", icon="CHECKMARK")
    run = STATE.install
    if run is not None and run.state == RUNNING:
        box.progress(factor=run.progress, type="BAR", text=run.message)
        box.operator(CLICKGAUSS_OT_cancel_install.bl_idname, icon="CANCEL")
    else:
        row = box.row(align=True)
        row.operator(CLICKGAUSS_OT_install_backend.bl_idname, text="Install Backend (NVIDIA GPU)").variant = "cuda"
        row.operator(CLICKGAUSS_OT_install_backend.bl_idname, text="Install Backend (CPU)").variant = "cpu"
        message = STATE.install_message or (run.message if run is not None else "")
        if message:
            from ..messages import wrap

            for line in wrap(message, 90):
                box.label(text=line)


CLASSES = (CLICKGAUSS_OT_install_backend, CLICKGAUSS_OT_cancel_install)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister():
    if STATE.install is not None:
        STATE.install.cancel()
    if bpy.app.timers.is_registered(_poll_install):
        bpy.app.timers.unregister(_poll_install)
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
