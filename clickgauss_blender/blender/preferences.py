"""Add-on preferences (backend URL, token, interpreter for a local backend) and the settings
stored in the .blend: per splat object (dataset, masks, backend scene) and per scene (click options)."""

from __future__ import annotations

import os

import bpy
from bpy.props import (BoolProperty, EnumProperty, FloatProperty, FloatVectorProperty, IntProperty, PointerProperty,
                       StringProperty)

from ..client import DEFAULT_TIMEOUT, DEFAULT_URL, BackendClient

ADDON_PACKAGE = __package__.rpartition(".")[0]  # this file lives in <add-on>/blender/


class ClickGaussPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_PACKAGE

    backend_url: StringProperty(name="Backend URL", default=DEFAULT_URL,
                                description="Address of the ClickGauss backend service")
    token: StringProperty(name="Token", subtype="PASSWORD", default="",
                          description="Bearer token, when the backend was started with --token")
    backend_python: StringProperty(name="Backend Python", subtype="FILE_PATH",
                                   default=os.environ.get("CLICKGAUSS_BACKEND_PYTHON", ""),
                                   description="Python interpreter of the backend environment "
                                               "(the one with clickgauss_backend installed), for 'Start local backend'")
    local_data_root: StringProperty(name="Data Root", subtype="DIR_PATH", default="",
                                    description="Folder a local backend may read scenes from (default: home folder)")
    request_timeout: FloatProperty(name="Request Timeout (s)", default=DEFAULT_TIMEOUT, min=0.1, max=3600.0,
                                   description="Seconds a backend request may take in all (connecting, waiting, the "
                                               "whole answer; uploads and downloads get extra time for their size)")

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "backend_url")
        layout.prop(self, "token")
        layout.prop(self, "backend_python")
        layout.prop(self, "local_data_root")
        layout.prop(self, "request_timeout")


def preferences(context=None) -> ClickGaussPreferences:
    return (context or bpy.context).preferences.addons[ADDON_PACKAGE].preferences


def client_from_preferences(context=None) -> BackendClient:
    prefs = preferences(context)
    return BackendClient(prefs.backend_url, prefs.token or None, timeout=prefs.request_timeout)


class ClickGaussObjectSettings(bpy.types.PropertyGroup):
    dataset_path: StringProperty(name="Dataset", subtype="DIR_PATH", default="",
                                 description="Cameras + images (COLMAP, INRIA output, nerfstudio); "
                                             "empty: detected next to the PLY by the backend")
    masks_source: EnumProperty(name="Masks", default="FOLDER", items=(
        ("FOLDER", "Mask Folder", "Precomputed two-level masks (<image>_coarse.png / _fine.png)"),
        ("SAM", "SAM", "Segment Anything on the backend (needs its --sam-checkpoint)")))
    masks_path: StringProperty(name="Mask Folder", subtype="DIR_PATH", default="")
    preset: EnumProperty(name="Preset", default="AUTO", items=(
        ("AUTO", "Auto", "The backend's default for its device"),
        ("tiny", "Tiny", "Seconds; for trying things out"),
        ("cpu-fast", "CPU Fast", "Shorter training that runs on a CPU"),
        ("gpu", "GPU", "The paper's schedule with our changes for SAM-like masks (GPU)"),
        ("paper", "Paper", "The paper's settings, exactly (GPU)")))
    view_count: IntProperty(name="Views", default=48, min=1, max=1000,
                            description="Without photos: how many views are rendered from the splat to train on")
    use_scene_cameras: BoolProperty(name="Use Scene Cameras", default=False,
                                    description="Without photos: render the splat from this scene's cameras "
                                                "instead of views planned around it")
    scene_id: StringProperty(name="Backend Scene", default="", description="The scene's id on the backend")
    dataset_found: StringProperty(default="", description="Dataset the backend uses for this scene")
    has_features: BoolProperty(default=False)
    job_id: StringProperty(default="")


class ClickGaussSceneSettings(bpy.types.PropertyGroup):
    level: EnumProperty(name="Level", default="coarse", items=(
        ("coarse", "Coarse", "Whole objects"),
        ("fine", "Fine", "Parts of objects")))
    use_threshold: BoolProperty(name="Custom Threshold", default=False,
                                description="Off: the backend's calibrated default")
    threshold: FloatProperty(name="Threshold", default=0.8, min=-1.0, max=1.0,
                             description="Cosine similarity a Gaussian's feature needs to be selected")
    click_mode: EnumProperty(name="Click", default="NEW", items=(
        ("NEW", "New", "A click replaces the selection"),
        ("ADD", "Add", "A click adds to the selection"),
        ("SUBTRACT", "Subtract", "A click removes from the selection")))
    recolor: FloatVectorProperty(name="Colour", subtype="COLOR_GAMMA", size=3, min=0.0, max=1.0,
                                 default=(0.8, 0.1, 0.1))
    recolor_zero_rest: BoolProperty(name="Flat Colour", default=True,
                                    description="Also zero the view-dependent colour (f_rest) of recoloured Gaussians")


CLASSES = (ClickGaussPreferences, ClickGaussObjectSettings, ClickGaussSceneSettings)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Object.clickgauss = PointerProperty(type=ClickGaussObjectSettings)
    bpy.types.Scene.clickgauss = PointerProperty(type=ClickGaussSceneSettings)


def unregister():
    del bpy.types.Scene.clickgauss
    del bpy.types.Object.clickgauss
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
