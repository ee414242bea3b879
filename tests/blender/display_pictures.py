"""The add-on's Gaussian display rendered by EEVEE next to the backend rasterizer's reference,
from the same cameras (shared by tests/blender/test_display.py and benchmarks/bench_display.py).

The reference is `clickgauss-backend render-colors` run in the backend environment (a
subprocess: no torch in Blender): SH-DC base colour, alpha-composited over black. EEVEE renders
the imported object with the Gaussians display under `views.faithful_color_settings` (As
Trained blending: sRGB values under the Raw view transform; black world)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
BACKEND_PYTHON = os.environ.get("CLICKGAUSS_BACKEND_PYTHON", str(REPO_ROOT / "backend" / ".venv" / "bin" / "python"))
ADDON_MODULE = "bl_ext.user_default.clickgauss"
BACKGROUND = (0.0, 0.0, 0.0)


def install_addon(work: Path):
    """Build the extension zip and install it into a throw-away Blender user folder (scripts:
    the tests use conftest's fixtures). Returns addon_module(name)."""
    for variable in ("BLENDER_USER_RESOURCES", "BLENDER_USER_CONFIG", "BLENDER_USER_SCRIPTS",
                     "BLENDER_USER_DATAFILES", "BLENDER_USER_EXTENSIONS"):
        os.environ[variable] = str(work / variable.lower())
    import bpy

    zip_path = work / "clickgauss.zip"
    subprocess.run([str(REPO_ROOT / "scripts" / "build-addon"), str(zip_path)], check=True, capture_output=True)
    assert bpy.ops.extensions.package_install_files(repo="user_default", filepath=str(zip_path),
                                                    enable_on_install=True) == {"FINISHED"}
    return lambda name: importlib.import_module(f"{ADDON_MODULE}.{name}")


def reference_renders(splat: Path, cameras, out: Path) -> list[np.ndarray]:
    """The backend rasterizer's pictures (float (H, W, 3) in [0, 1]) of `splat` from `cameras`."""
    from clickgauss_core import wire
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    (out / "cameras.json").write_text(json.dumps([wire.camera_to_dict(c) for c in cameras]))
    result = subprocess.run([BACKEND_PYTHON, "-m", "clickgauss_backend.cli", "render-colors", str(splat),
                             "--cameras", str(out / "cameras.json"), "--out", str(out),
                             "--background", *map(str, BACKGROUND)],
                            capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, f"render-colors failed:\n{result.stdout}\n{result.stderr}"
    return [np.asarray(Image.open(out / f"{c.name}.png"), dtype=np.float64) / 255.0 for c in cameras]


def display_renders(addon_module, obj, cameras, out: Path, samples: int, engine: str = "BLENDER_EEVEE"
                  ) -> list[np.ndarray]:
    """Pictures of the splat object `obj` from `cameras` (its frame): EEVEE (Rendered), or
    BLENDER_WORKBENCH (what Solid shading shows, with the settings the import made)."""
    import bpy
    from PIL import Image

    views = addon_module("blender.views")
    scene = bpy.context.scene
    views.faithful_color_settings(scene, BACKGROUND)
    images = []
    for camera in cameras:
        camera_obj = views.camera_object(f"view {camera.name}", camera, obj.matrix_world)
        scene.camera = camera_obj
        views.set_render_size(scene, camera)
        path = out / f"{engine.lower()}_{camera.name}.png"
        views.render_to_file(scene, str(path), engine, samples)
        images.append(np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255.0)
        bpy.data.objects.remove(camera_obj)
    return images


def compare_display(addon_module, splat: Path, size, samples: int, work: Path | None = None,
                    engine: str = "BLENDER_EEVEE") -> dict:
    """Import `splat`, render it both ways (the display by `engine`) from two framing cameras,
    and measure the pairs."""
    import bpy
    from clickgauss_core.framing import framing_cameras
    from clickgauss_core.image_metrics import psnr, ssim
    from clickgauss_core.ply import read_splat_file

    work = Path(tempfile.mkdtemp()) if work is None else work
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj)
    obj = addon_module("blender.io_operators").import_splats(bpy.context, str(splat), z_up=False)
    cloud = read_splat_file(splat)
    cameras = framing_cameras(cloud.positions, cloud.opacities, *size)
    reference = reference_renders(splat, cameras, work / "reference")
    rendered = display_renders(addon_module, obj, cameras, work, samples, engine)
    views = [{"camera": camera.name, "psnr": round(psnr(a, b), 2), "ssim": round(ssim(a, b), 4)}
             for camera, a, b in zip(cameras, rendered, reference)]
    bpy.data.objects.remove(obj)
    return {"splat": splat.parent.name + "/" + splat.name, "gaussians": len(cloud), "views": views,
            "pairs": list(zip(rendered, reference))}


def side_by_side(pairs, path: Path) -> None:
    """One row per camera: EEVEE | backend rasterizer | 4x absolute difference."""
    from PIL import Image

    rows = [np.concatenate([a, b, np.clip(4 * np.abs(a - b), 0, 1)], axis=1) for a, b in pairs]
    picture = np.concatenate(rows, axis=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.round(picture * 255).astype(np.uint8)).save(path)
