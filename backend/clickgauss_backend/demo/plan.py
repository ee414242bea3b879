"""Which clicks the demo makes: one per object (coarse) and per part (fine), each in the held-out
view where the target reaches deepest, at its deepest pixel (the evaluation protocol of
`features.evaluate`, so the demo's numbers are the benchmark's numbers)."""

from __future__ import annotations

from clickgauss_core import wire
from clickgauss_core.protocol import COARSE, FINE

from ..features.config import LEVELS
from ..features.evaluate import plan_clicks
from ..synthetic.scene import SyntheticScene


def click_plan(synthetic: SyntheticScene) -> list[dict]:
    """JSON-ready clicks: level, label, target name, view, camera (wire format), pixel (x, y)."""
    names = {COARSE: synthetic.object_names, FINE: synthetic.part_names}
    plan = []
    for level in LEVELS:
        for click in plan_clicks(synthetic, level, synthetic.test_indices):
            camera = synthetic.cameras[click.view_index]
            plan.append({"level": level, "label": click.label, "name": names[level][click.label - 1],
                         "view_index": click.view_index, "view": synthetic.view_names[click.view_index],
                         "camera": wire.camera_to_dict(camera), "pixel": list(click.pixel)})
    return plan
