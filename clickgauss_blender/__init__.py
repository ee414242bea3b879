"""ClickGauss: select objects in 3D Gaussian Splatting scenes by clicking (Click-Gaussian)."""
def register():
    pass
def unregister():
    pass
