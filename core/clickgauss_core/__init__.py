"""ClickGauss core: pure Python + numpy + plyfile, shared by the Blender add-on and the backend.

Modules: `ply` (INRIA 3DGS PLY read/write, `read_splat_file` for every supported splat format),
`splat_formats` (SuperSplat compressed PLY, antimatter15 .splat), `spz` (Niantic SPZ read and
write), `gaussians` (GaussianCloud), `cameras` (Camera, OpenCV axes), `colmap` / `datasets`
(training views), `images` (image sizes from headers), `wire` (JSON wire formats), `errors`
(every input error names its file).
"""
