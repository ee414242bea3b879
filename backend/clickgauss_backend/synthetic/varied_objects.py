"""The "hard" preset's objects: a catalogue of templates with thin parts touching larger siblings,
5-8 of them per scene, picked and placed by the scene's seed.

Every template is built at a floor position (x, y) and a size factor; its parts are the small,
thin ones the demo room lacks or has once: a mushroom's ring around its stem, a cabinet's drawers
flush with its body, an office chair's flat base under its column, a mug's and a bucket's
handles, a bottle's neck, a stool's foot ring, a lamp's base disc. Colours vary per scene a
little around each part's own colour, so two scenes never look the same.
"""

from __future__ import annotations

import numpy as np

from .geometry import Box, Ellipsoid, Frustum, Part, SceneObject, TorusArc, _legs

# Floor slots (x, y) the objects stand on: apart enough that footprints of up to ~0.6 never
# overlap, within the cameras' ring. A scene takes a random subset.
SLOTS = ((-1.25, 0.95), (0.0, 1.2), (1.25, 0.95), (-1.35, -0.1), (1.35, -0.1),
         (-1.2, -1.15), (0.0, -1.2), (1.2, -1.15), (0.0, 0.0))
MIN_OBJECTS, MAX_OBJECTS = 5, 8


def _mushroom(x, y, s):
    stem_h = 0.55 * s
    return SceneObject("mushroom", (
        Part("mushroom stem", (0.93, 0.90, 0.80), (Frustum((x, y, 0.0), 0.055 * s, 0.045 * s, stem_h, True, False),)),
        Part("mushroom ring", (0.70, 0.62, 0.50),
             (Frustum((x, y, 0.62 * stem_h), 0.10 * s, 0.09 * s, 0.03 * s),)),
        Part("mushroom cap", (0.80, 0.15, 0.10), (Ellipsoid((x, y, stem_h), (0.26 * s, 0.26 * s, 0.14 * s)),)),
    ))


def _cabinet(x, y, s):
    width, depth, height = 0.6 * s, 0.4 * s, 0.7 * s
    front = y - depth / 2
    drawer = (0.5 * width, 0.02 * s, 0.2 * height)
    return SceneObject("cabinet", (
        Part("cabinet body", (0.55, 0.40, 0.28), (Box((x, y, height / 2), (width, depth, height)),)),
        Part("cabinet top drawer", (0.80, 0.66, 0.45),
             (Box((x, front - drawer[1] / 2, 0.72 * height), (width * 0.85, drawer[1], drawer[2])),)),
        Part("cabinet bottom drawer", (0.70, 0.56, 0.38),
             (Box((x, front - drawer[1] / 2, 0.38 * height), (width * 0.85, drawer[1], drawer[2])),)),
    ))


def _office_chair(x, y, s):
    seat_z = 0.48 * s
    return SceneObject("office chair", (
        Part("office chair base", (0.15, 0.15, 0.18), (Frustum((x, y, 0.0), 0.28 * s, 0.26 * s, 0.04 * s),)),
        Part("office chair column", (0.62, 0.64, 0.68),
             (Frustum((x, y, 0.04 * s), 0.035 * s, 0.035 * s, seat_z - 0.07 * s, False, False),)),
        Part("office chair seat", (0.10, 0.30, 0.70), (Box((x, y, seat_z - 0.015 * s), (0.42 * s, 0.42 * s, 0.06 * s)),)),
        Part("office chair back", (0.08, 0.22, 0.55),
             (Box((x, y + 0.19 * s, seat_z + 0.28 * s), (0.40 * s, 0.04 * s, 0.45 * s)),)),
    ))


def _mug(x, y, s):
    return SceneObject("mug", (
        Part("mug body", (0.20, 0.55, 0.80), (Frustum((x, y, 0.0), 0.13 * s, 0.13 * s, 0.28 * s, True, False),)),
        Part("mug handle", (0.95, 0.75, 0.15), (TorusArc((x + 0.13 * s, y, 0.14 * s), 0.09 * s, 0.025 * s, -1.4, 1.4),)),
    ))


def _bucket(x, y, s):
    height = 0.34 * s
    return SceneObject("bucket", (
        Part("bucket body", (0.30, 0.62, 0.40), (Frustum((x, y, 0.0), 0.16 * s, 0.21 * s, height, True, False),)),
        Part("bucket handle", (0.30, 0.30, 0.32), (TorusArc((x, y, height), 0.21 * s, 0.014 * s, 0.0, np.pi),)),
    ))


def _bottle(x, y, s):
    body_h, neck_h = 0.42 * s, 0.2 * s
    return SceneObject("bottle", (
        Part("bottle body", (0.12, 0.45, 0.25), (Frustum((x, y, 0.0), 0.11 * s, 0.11 * s, body_h, True, False),
                                                   Frustum((x, y, body_h), 0.11 * s, 0.04 * s, 0.08 * s, False, False))),
        Part("bottle neck", (0.45, 0.70, 0.50), (Frustum((x, y, body_h + 0.08 * s), 0.04 * s, 0.04 * s, neck_h,
                                                         False, False),)),
        Part("bottle cap", (0.85, 0.75, 0.20), (Frustum((x, y, body_h + 0.08 * s + neck_h), 0.05 * s, 0.05 * s,
                                                        0.05 * s),)),
    ))


def _stool(x, y, s):
    seat_z = 0.6 * s
    offset = 0.13 * s
    return SceneObject("stool", (
        Part("stool seat", (0.85, 0.55, 0.20), (Frustum((x, y, seat_z), 0.2 * s, 0.2 * s, 0.05 * s),)),
        _legs((x - offset, x + offset), (y - offset, y + offset), 0.0, seat_z, 0.035 * s, "stool legs",
              (0.25, 0.18, 0.12)),
        Part("stool foot ring", (0.75, 0.75, 0.78),
             (Frustum((x, y, 0.25 * s), 0.2 * s, 0.2 * s, 0.025 * s, False, False),)),
    ))


def _lamp(x, y, s):
    return SceneObject("floor lamp", (
        Part("floor lamp base", (0.32, 0.32, 0.36), (Frustum((x, y, 0.0), 0.18 * s, 0.15 * s, 0.04 * s),)),
        Part("floor lamp pole", (0.82, 0.82, 0.86),
             (Frustum((x, y, 0.04 * s), 0.025 * s, 0.025 * s, 1.0 * s, False, False),)),
        Part("floor lamp shade", (0.98, 0.90, 0.65),
             (Frustum((x, y, 1.0 * s), 0.26 * s, 0.12 * s, 0.28 * s, False, True),)),
    ))


def _flower(x, y, s):
    pot_h = 0.3 * s
    return SceneObject("flower", (
        Part("flower pot", (0.75, 0.35, 0.20), (Frustum((x, y, 0.0), 0.14 * s, 0.18 * s, pot_h),)),
        Part("flower stem", (0.20, 0.55, 0.15),
             (Frustum((x, y, pot_h), 0.02 * s, 0.02 * s, 0.45 * s, False, False),)),
        Part("flower head", (0.95, 0.80, 0.20), (Ellipsoid((x, y, pot_h + 0.5 * s), (0.12 * s, 0.12 * s, 0.07 * s)),)),
    ))


TEMPLATES = {"mushroom": _mushroom, "cabinet": _cabinet, "office chair": _office_chair, "mug": _mug,
             "bucket": _bucket, "bottle": _bottle, "stool": _stool, "floor lamp": _lamp, "flower": _flower}


def _tinted(obj: SceneObject, rng: np.random.Generator) -> SceneObject:
    """The object with every part's colour moved a little (per scene), kept in range."""
    parts = tuple(Part(p.name, tuple(np.clip(np.asarray(p.color) + rng.uniform(-0.06, 0.06, 3), 0.03, 0.97).tolist()),
                       p.surfaces) for p in obj.parts)
    return SceneObject(obj.name, parts)


def varied_objects(rng: np.random.Generator) -> tuple[SceneObject, ...]:
    """5-8 distinct templates at distinct slots, each 0.9-1.15 times its size, tinted."""
    count = int(rng.integers(MIN_OBJECTS, MAX_OBJECTS + 1))
    names = rng.choice(sorted(TEMPLATES), size=count, replace=False)
    slots = rng.choice(len(SLOTS), size=count, replace=False)
    objects = []
    for name, slot in zip(names, slots):
        x, y = SLOTS[int(slot)]
        jitter = rng.uniform(-0.08, 0.08, 2)
        objects.append(_tinted(TEMPLATES[str(name)](x + jitter[0], y + jitter[1], float(rng.uniform(0.9, 1.15))), rng))
    return tuple(objects)
