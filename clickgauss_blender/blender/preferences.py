"""Add-on preferences (backend URL, token, interpreter for a local backend) and the settings
stored in the .blend: per splat object (dataset, masks, backend scene) and per scene (click options)."""

from __future__ import annotations

import bpy
from bpy.props import (BoolProperty, EnumProperty, FloatProperty, FloatVectorProperty, IntProperty, PointerProperty,
                       StringProperty)

from clickgauss_core.view_planning import DEFAULT_COUNT as DEFAULT_VIEW_COUNT

from ..client import DEFAULT_TIMEOUT, DEFAULT_URL, BackendClient

ADDON_PACKAGE = __package__.rpartition(".")[0]  # this file lives in <add-on>/blender/


class ClickGaussPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_PACKAGE

    backend_url: StringProperty(name="Backend URL", default=DEFAULT_URL,
                                description="Address of the ClickGauss backend service")
    token: StringProperty(name="Token", subtype="PASSWORD", default="",
                          description="Bearer token, when the backend was started with --token")
    backend_python: StringProperty(name="Backend Python", subtype="FILE_PATH", default="",
                                   description="Only if the add-on does not find a backend by itself: the python of a "
                                               "backend environment (or the clickgauss-backend command), for Start Local")
    local_data_root: StringProperty(name="Data Root", subtype="DIR_PATH", default="",
                                    description="An extra folder a local backend may read (it may always read your "
                                                "home folder and the folders of the scenes and datasets you open)")
    sam_checkpoint: StringProperty(name="SAM Checkpoint", subtype="FILE_PATH", default="",
                                   description="Segment Anything checkpoint (.pth) for the backend that "
                                               "'Start Local' launches: masks made by SAM on the backend")
    sam_model: EnumProperty(name="SAM Model", default="vit_h", items=(
        ("vit_h", "ViT-H", "sam_vit_h_4b8939.pth: the best masks, the slowest"),
        ("vit_l", "ViT-L", "sam_vit_l_0b3195.pth"),
        ("vit_b", "ViT-B", "sam_vit_b_01ec64.pth: several times faster, for a laptop")),
        description="The SAM variant of the checkpoint")
    request_timeout: FloatProperty(name="Request Timeout (s)", default=DEFAULT_TIMEOUT, min=0.1, max=3600.0,
                                   description="Seconds a backend request may take in all (connecting, waiting, the "
                                               "whole answer; uploads and downloads get extra time for their size)")

    def draw(self, context):
        from .install_operators import draw_install

        layout = self.layout
        draw_install(layout)
        layout.prop(self, "backend_url")
        layout.prop(self, "token")
        layout.prop(self, "backend_python")
        layout.prop(self, "local_data_root")
        layout.prop(self, "sam_checkpoint")
        layout.prop(self, "sam_model")
        layout.prop(self, "request_timeout")


def preferences(context=None) -> ClickGaussPreferences:
    return (context or bpy.context).preferences.addons[ADDON_PACKAGE].preferences


def client_from_preferences(context=None) -> BackendClient:
    prefs = preferences(context)
    return BackendClient(prefs.backend_url, prefs.token or None, timeout=prefs.request_timeout)


# Folders saved relative to the .blend ("//..."): Blender 5.0+ wants path properties to say they
# accept that (else it warns); 4.2 has no such option.
RELATIVE_PATH_OPTIONS = {"ANIMATABLE"} | ({"PATH_SUPPORTS_BLEND_RELATIVE"}  # ANIMATABLE: the default
                                         if "is_path_supports_blend_relative" in bpy.types.Property.bl_rna.properties
                                         else set())


def _display_mode_changed(settings, context):
    from .display import apply_display_mode
    apply_display_mode(settings.id_data)


class ClickGaussObjectSettings(bpy.types.PropertyGroup):
    display_mode: EnumProperty(name="Display", default="GAUSSIANS", update=_display_mode_changed, items=(
        ("GAUSSIANS", "Gaussians", "Each Gaussian as what it is: an oriented quad with its opacity and Gaussian "
                                   "falloff (Material Preview and Rendered; Solid shows the colours)"),
        ("POINTS", "Points", "Each Gaussian as an opaque sphere of its largest axis: fast")))
    dataset_path: StringProperty(name="Dataset", subtype="DIR_PATH", default="", options=RELATIVE_PATH_OPTIONS,
                                 description="Cameras + images (COLMAP, INRIA output, nerfstudio); "
                                             "empty: detected next to the PLY by the backend")
    masks_source: EnumProperty(name="Masks", default="FOLDER", items=(
        ("FOLDER", "Mask Folder", "Precomputed two-level masks (<image>_coarse.png / _fine.png)"),
        ("SAM", "SAM", "Segment Anything on the backend (needs its --sam-checkpoint)")))
    masks_path: StringProperty(name="Mask Folder", subtype="DIR_PATH", default="", options=RELATIVE_PATH_OPTIONS)
    preset: EnumProperty(name="Preset", default="AUTO", items=(
        ("AUTO", "Auto", "The backend's default for its device"),
        ("tiny", "Tiny", "Seconds; for trying things out"),
        ("cpu-fast", "CPU Fast", "Shorter training that runs on a CPU"),
        ("gpu", "GPU", "The paper's schedule with our changes for SAM-like masks (GPU)"),
        ("paper", "Paper", "The paper's settings, exactly (GPU)")))
    view_count: IntProperty(name="Views", default=DEFAULT_VIEW_COUNT, min=1, max=1000,
                            description="Without photos: how many views are rendered from the splat to train on")
    use_scene_cameras: BoolProperty(name="Use Scene Cameras", default=False,
                                    description="Without photos: render the splat from this scene's cameras "
                                                "instead of views planned around it")
    scene_id: StringProperty(name="Backend Scene", default="", description="The scene's id on the backend")
    dataset_found: StringProperty(default="", description="Dataset the backend uses for this scene")
    dataset_nearby: StringProperty(default="", description="Dataset found next to the scene's file when it was "
                                                           "imported (sent to the backend when Dataset is empty)")
    has_features: BoolProperty(default=False)
    job_id: StringProperty(default="")


def _threshold_changed(settings, context):
    from .local_operators import threshold_changed  # imported late: it needs the registered operators

    threshold_changed(settings, context)


def _show_calibrated_threshold(settings, context):
    from .local_operators import calibrated_threshold_shown

    calibrated_threshold_shown(settings, context)


class ClickGaussSceneSettings(bpy.types.PropertyGroup):
    level: EnumProperty(name="Level", default="coarse", update=_show_calibrated_threshold, items=(
        ("coarse", "Coarse", "Whole objects"),
        ("fine", "Fine", "Parts of objects")))
    use_threshold: BoolProperty(name="Custom Threshold", default=False, update=_show_calibrated_threshold,
                                description="Off: the calibrated default of the level (shown on the slider)")
    threshold: FloatProperty(name="Threshold", default=0.6, min=-1.0, max=1.0, update=_threshold_changed,
                             description="Cosine similarity a Gaussian's feature needs to be selected. Shows the "
                                         "threshold of the last click; moving it re-thresholds that click live")
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
