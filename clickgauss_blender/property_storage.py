"""How PLY vertex properties are stored as Blender point attributes without losing anything
(pure Python + numpy, no bpy).

Names: Blender refuses or repurposes some attribute names (its built-in ones such as `id`,
`material_index`, `sharp_face`, `position`; hidden `.`-names; names over 63 bytes), and the
add-on keeps its own under `cg_`. Such a property is stored under a safe name (`ply_<name>`,
shortened and numbered as needed) and written back under its original name on export.

float64: Blender attributes are float32 at most. A double property is stored as its float32
value (what the user sees and edits) plus its exact 64 bits in two int32 attributes; on export a
value the user did not change comes back bit for bit, an edited one as the edited float32 value.
"""

from __future__ import annotations

import numpy as np

# Blender's built-in mesh attribute names (creating a point attribute with them fails or means
# something else), and the prefix of the add-on's own attributes.
BLENDER_BUILTIN_NAMES = frozenset({"position", "id", "material_index", "sharp_face", "sharp_edge",
                                   "crease_vert", "crease_edge", "uv_seam"})
ADDON_PREFIX = "cg_"
MAX_NAME_BYTES = 63  # Blender's attribute names are 64-byte C strings
SAFE_PREFIX = "ply_"


def needs_safe_name(name: str) -> bool:
    return (name in BLENDER_BUILTIN_NAMES or name.startswith(".") or name.startswith(ADDON_PREFIX)
            or len(name.encode("utf-8")) > MAX_NAME_BYTES or not name)


def _truncate_utf8(text: str, max_bytes: int) -> str:
    return text.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore")


def safe_name(name: str, taken: set[str]) -> str:
    """A name Blender keeps as given, not in `taken`, that still reads like `name`."""
    candidate = _truncate_utf8(SAFE_PREFIX + name, MAX_NAME_BYTES)
    number = 2
    while candidate in taken or needs_safe_name(candidate):
        suffix = f"_{number}"
        candidate = _truncate_utf8(SAFE_PREFIX + name, MAX_NAME_BYTES - len(suffix)) + suffix
        number += 1
    return candidate


def attribute_names(properties) -> dict[str, str]:
    """PLY property -> Blender attribute name for every property (most keep their own name)."""
    properties = list(properties)
    taken = {name for name in properties if not needs_safe_name(name)}
    names = {}
    for name in properties:
        if needs_safe_name(name):
            names[name] = safe_name(name, taken)
            taken.add(names[name])
        else:
            names[name] = name
    return names


def exact_bits_names(index: int) -> tuple[str, str]:
    """The two int32 attributes holding the exact float64 bits of the layout's property `index`."""
    return f"{ADDON_PREFIX}f64_{index}_lo", f"{ADDON_PREFIX}f64_{index}_hi"


def float64_bits(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float64 values -> their low and high 32 bits as int32 arrays."""
    halves = np.ascontiguousarray(values, dtype="<f8").view("<i4").reshape(-1, 2)
    return halves[:, 0].copy(), halves[:, 1].copy()


def merge_float64(current: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """The exact float64 values where the float32 `current` is still their float32 approximation
    (bitwise, so NaN and -0.0 count), the edited `current` values elsewhere."""
    exact = np.stack([np.asarray(low, "<i4"), np.asarray(high, "<i4")], axis=1).reshape(-1).view("<f8")
    current = np.ascontiguousarray(current, dtype=np.float32)
    with np.errstate(over="ignore"):  # beyond float32's range the stored approximation is +-inf too
        approximation = exact.astype(np.float32)
    untouched = approximation.view(np.int32) == current.view(np.int32)
    return np.where(untouched, exact, current.astype(np.float64))
