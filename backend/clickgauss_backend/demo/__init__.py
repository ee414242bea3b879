"""The backend half of the newcomer demo (`run-demo`): which clicks to make on the synthetic scene,
and the report (IoU, pictures) on the selections the Blender add-on made. The Blender half is
`demo/run_demo.py` at the repository root."""
