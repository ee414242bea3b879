"""Add-on preferences (backend URL, token, interpreter for a local backend) and the settings
stored in the .blend: per splat object (dataset, masks, backend scene) and per scene (click options)."""

from __future__ import annotations

import bpy
from bpy.props import (BoolProperty, EnumProperty, FloatProperty, FloatVectorProperty, IntProperty, PointerProperty,
                       StringProperty)
from clickgauss_core.protocol import COARSE
from clickgauss_core.view_planning import DEFAULT_COUNT as DEFAULT_VIEW_COUNT

from ..client import DEFAULT_TIMEOUT, DEFAULT_URL
from .click import auto_threshold_shown, threshold_changed
from .display import apply_blending, apply_display_mode, apply_transparency
from .install_operators import draw_install
from .preferences_access import ADDON_PACKAGE, AUTO_PRESET, LEVEL_ITEMS, PRESET_ITEMS


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
        layout = self.layout
        draw_install(layout)
        layout.prop(self, "backend_url")
        layout.prop(self, "token")
        layout.prop(self, "backend_python")
        layout.prop(self, "local_data_root")
        layout.prop(self, "sam_checkpoint")
        layout.prop(self, "sam_model")
        layout.prop(self, "request_timeout")


# Folders saved relative to the .blend ("//..."): Blender 5.0+ wants path properties to say they
# accept that (else it warns); 4.2 has no such option.
RELATIVE_PATH_OPTIONS = {"ANIMATABLE"} | ({"PATH_SUPPORTS_BLEND_RELATIVE"}  # ANIMATABLE: the default
                                         if "is_path_supports_blend_relative" in bpy.types.Property.bl_rna.properties
                                         else set())


def _display_mode_changed(settings, context):
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
    preset: EnumProperty(name="Preset", default=AUTO_PRESET, items=PRESET_ITEMS)
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


def _blending_changed(settings, context):
    apply_blending(settings.id_data)


def _transparency_changed(settings, context):
    apply_transparency(settings.id_data)


class ClickGaussSceneSettings(bpy.types.PropertyGroup):
    transparency: EnumProperty(name="Transparency", default="DITHERED", update=_transparency_changed, items=(
        ("DITHERED", "Dithered", "Order-independent: right from any view, grainy until the samples settle"),
        ("SORTED", "Sorted", "Quads sorted back to front from the scene camera and blended: exact and noise-free "
                             "through the camera (F12); a viewport looking from elsewhere sees some out of order")))
    blending: EnumProperty(name="Blending", default="LINEAR", update=_blending_changed, items=(
        ("TRAINED", "As Trained", "Blend splat colours as 3DGS does (sRGB values): the picture the splat was "
                                  "trained to make. Sets the Raw view transform: other objects show unencoded"),
        ("LINEAR", "Linear", "Blend in linear light under the Standard view transform: other objects as usual, "
                             "faint overlapping Gaussians brighter than trained")))
    level: EnumProperty(name="Level", default=COARSE, update=auto_threshold_shown, items=LEVEL_ITEMS)
    use_threshold: BoolProperty(name="Custom Threshold", default=False, update=auto_threshold_shown,
                                description="Off: each click chooses its own threshold from its similarities "
                                            "(the slider shows the one the last click used)")
    threshold: FloatProperty(name="Threshold", default=0.6, min=-1.0, max=1.0, update=threshold_changed,
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
