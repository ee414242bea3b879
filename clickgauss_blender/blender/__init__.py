"""The bpy side of the add-on: mesh <-> Gaussian cloud, display, operators, panel, preferences."""
