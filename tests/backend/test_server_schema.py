"""Property-based fuzzing of the published OpenAPI schema: no input may produce a 5xx.

Schemathesis generates requests for every operation in /openapi.json, both schema-valid
(positive) and schema-violating (negative) ones, and sends them in-process to the ASGI app; for
operations on a scene, half the cases target a scene that really exists (so camera, pixel and
upload handling are reached, not only the unknown-scene check). Every answer must be a non-5xx,
and every error must have the protocol's shape. (Schemathesis' pytest decorators rely on pytest
internals that pytest 9 removed, so each operation's Hypothesis strategy is driven directly.)

The bounds (server/limits.py, features/config.py SETTING_RANGES) are exercised on purpose:
training requests generated from the schema's bounded `settings` are sent for a scene with a
dataset and masks (so they reach the check of the whole config), and clicks with valid poses
and sizes from 1 pixel to 10^19 hit a scene with a feature field (so an allowed camera really
renders). The run prints its size (cases, seconds): benchmarks/RESULTS.md, service.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from clickgauss_backend.features.config import TrainConfig
from clickgauss_backend.features.field import FeatureField
from clickgauss_backend.server.app import create_app
from clickgauss_backend.server.limits import MAX_CAMERA_PIXELS, MAX_CAMERA_SIDE
from clickgauss_backend.server.settings import ServerSettings
from clickgauss_core.gaussians import GaussianCloud
from clickgauss_core.ply import write_gaussian_ply
from clickgauss_core.protocol import COARSE, FINE, PRESET_TINY

EXAMPLES_PER_OPERATION = 40
BOUND_EXAMPLES = 150


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory, tiny_synthetic_scene):
    root = tmp_path_factory.mktemp("fuzz_root")
    (root / "not_a_ply.ply").write_text("hello")
    rng = np.random.default_rng(0)
    count = 64
    cloud = GaussianCloud.from_arrays(positions=rng.normal(size=(count, 3)), log_scales=np.full((count, 3), -3.0),
                                      rotations=np.tile([1.0, 0, 0, 0], (count, 1)), opacity_logits=np.zeros(count),
                                      sh_dc=rng.normal(size=(count, 3)))
    write_gaussian_ply(root / "scene.ply", cloud)
    app = create_app(ServerSettings(cache_dir=root / "cache", data_roots=[root, tiny_synthetic_scene.root],
                                    device="cpu", max_upload_mb=1, max_json_kb=64))
    scenes = app.state.scenes
    scene_id = scenes.open(root / "scene.ply", None, None, None).scene_id
    field = FeatureField(rng.normal(size=(count, 24)).astype(np.float32), {},
                         {"scene_hash": scene_id, "settings": TrainConfig.preset(PRESET_TINY).to_dict()})
    scenes.install_field(scene_id, field)
    trainable = scenes.open(tiny_synthetic_scene.ply_path, tiny_synthetic_scene.dataset_path, None, None).scene_id
    return {"schema": schemathesis.openapi.from_asgi("/openapi.json", app), "scene_id": scene_id,
            "trainable": trainable, "masks": str(tiny_synthetic_scene.masks_dir)}


class Tally:
    """How many requests the run sent, and the statuses they got."""

    def __init__(self):
        self.cases = 0
        self.statuses: dict[int, int] = {}

    def check(self, case) -> None:
        response = case.call()
        self.cases += 1
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        where = f"{case.method} {case.formatted_path}"
        assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:2000]}"
        if response.status_code >= 400:
            error = response.json()["error"]
            assert isinstance(error["code"], str) and error["message"], f"{where}: {response.text[:2000]}"
            assert len(error["message"]) <= 2048, where


def run(strategy, examples: int, tally: Tally) -> None:
    @given(case=strategy)
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def fuzz(case):
        tally.check(case)

    fuzz()


def operation(schema, method: str, path: str):
    return next(op for op in (result.ok() for result in schema.get_all_operations())
                if op.method.upper() == method and op.path == path)


def camera_sizes():
    """Sides from 1 pixel past the limits to 10^19, the probes' values among them."""
    side = st.one_of(st.integers(1, 64), st.integers(MAX_CAMERA_SIDE - 2, MAX_CAMERA_SIDE + 2),
                     st.sampled_from([100_000, 2**31 - 1, 2**31, 2**63, 10**18, 10**19]),
                     st.integers(1, 10**19))
    near_pixel_limit = st.integers(1, 8).map(lambda k: (MAX_CAMERA_SIDE, MAX_CAMERA_PIXELS // MAX_CAMERA_SIDE + k - 4))
    return st.one_of(st.tuples(side, side), near_pixel_limit)


def click_cases(op, scene_id: str):
    number = st.one_of(st.floats(1e-3, 1e4), st.floats(-1e308, 1e308, allow_nan=False, allow_infinity=False))

    def case(size, intrinsics, translation, projection, pixel_fraction, level):
        width, height = size
        (fx, fy, cx, cy), (tx, ty, tz) = intrinsics, translation
        camera = {"world_to_camera": [[1, 0, 0, tx], [0, 1, 0, ty], [0, 0, 1, tz], [0, 0, 0, 1]], "width": width,
                  "height": height, "fx": fx, "fy": fy, "cx": cx, "cy": cy, "projection": projection}
        pixel = [pixel_fraction[0] * min(width, 2**53), pixel_fraction[1] * min(height, 2**53)]
        return op.Case(path_parameters={"scene_id": scene_id}, media_type="application/json",
                       body={"camera": camera, "pixel": pixel, "level": level})

    fraction = st.floats(0.0, 0.999)
    translation = st.tuples(*[st.one_of(st.just(0.0), st.floats(-10, 10), number)] * 2,
                            st.one_of(st.just(4.0), st.floats(-10, 10), number))
    return st.builds(case, camera_sizes(), st.tuples(number, number, number, number), translation,
                     st.sampled_from(["perspective", "orthographic"]), st.tuples(fraction, fraction),
                     st.sampled_from([COARSE, FINE]))


def job_cases(op, scene_id: str, masks: str):
    """Schemathesis' own job bodies (bounded `settings` from the schema, in range and out of it),
    sent for the trainable scene and its masks."""

    def retarget(case):
        if isinstance(case.body, dict):
            case.body = {**case.body, "scene_id": scene_id, "masks": {"source": "folder", "path": masks}}
        return case

    return st.one_of([op.as_strategy(mode) for mode in GenerationMode]).map(retarget)


def test_no_input_causes_a_server_error(fuzz_target):
    schema, scene_id = fuzz_target["schema"], fuzz_target["scene_id"]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12  # every endpoint of docs/protocol.md is in the schema
    tally, started = Tally(), time.monotonic()
    for op in operations:
        strategies = [op.as_strategy(mode) for mode in GenerationMode]
        if "{scene_id}" in op.path:
            strategies += [op.as_strategy(mode, path_parameters={"scene_id": scene_id}) for mode in GenerationMode]
        run(st.one_of(strategies), EXAMPLES_PER_OPERATION, tally)
    print(f"\nschema fuzz: {len(operations)} operations, {tally.cases} cases in {time.monotonic() - started:.1f} s; "
          f"statuses {dict(sorted(tally.statuses.items()))}")


def test_the_bounds_hold_under_fuzzing(fuzz_target):
    schema = fuzz_target["schema"]
    tally, started = Tally(), time.monotonic()
    run(click_cases(operation(schema, "POST", "/v1/scenes/{scene_id}/click"), fuzz_target["scene_id"]),
        BOUND_EXAMPLES, tally)
    clicks = dict(tally.statuses)
    run(job_cases(operation(schema, "POST", "/v1/jobs"), fuzz_target["trainable"], fuzz_target["masks"]),
        BOUND_EXAMPLES, tally)
    print(f"\nbounds fuzz: {tally.cases} cases in {time.monotonic() - started:.1f} s; click statuses "
          f"{dict(sorted(clicks.items()))}, all {dict(sorted(tally.statuses.items()))}")
    # Both sides of the bounds were reached: refused cameras, rendered clicks, refused settings.
    assert clicks.get(200, 0) > 0 and clicks.get(400, 0) > 0, clicks
    assert tally.statuses.get(422, 0) > 0, tally.statuses
