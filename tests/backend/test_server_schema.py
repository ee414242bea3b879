"""Property-based fuzzing of the published OpenAPI schema: no input may produce a 5xx.

Schemathesis generates requests for every operation in /openapi.json, both schema-valid
(positive) and schema-violating (negative) ones, and sends them in-process to the ASGI app; for
operations on a scene, half the cases target a scene that really exists (so camera, pixel and
upload handling are reached, not only the unknown-scene check). Every answer must be a non-5xx,
and every error must have the protocol's shape. (Schemathesis' pytest decorators rely on pytest
internals that pytest 9 removed, so each operation's Hypothesis strategy is driven directly.)
"""

from __future__ import annotations

import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from clickgauss_backend.server.app import create_app
from clickgauss_backend.server.settings import ServerSettings
from clickgauss_core.gaussians import GaussianCloud
from clickgauss_core.ply import write_gaussian_ply

EXAMPLES_PER_OPERATION = 40


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz_root")
    (root / "not_a_ply.ply").write_text("hello")
    rng = np.random.default_rng(0)
    count = 64
    cloud = GaussianCloud.from_arrays(positions=rng.normal(size=(count, 3)), log_scales=np.full((count, 3), -3.0),
                                      rotations=np.tile([1.0, 0, 0, 0], (count, 1)), opacity_logits=np.zeros(count),
                                      sh_dc=rng.normal(size=(count, 3)))
    write_gaussian_ply(root / "scene.ply", cloud)
    app = create_app(ServerSettings(cache_dir=root / "cache", data_roots=[root], device="cpu", max_upload_mb=1))
    scene_id = app.state.scenes.open(root / "scene.ply", None, None, None).scene_id
    return schemathesis.openapi.from_asgi("/openapi.json", app), scene_id


def check_response(case) -> None:
    response = case.call()
    where = f"{case.method} {case.formatted_path}"
    assert response.status_code < 500, f"{where}: {response.status_code} {response.text}"
    if response.status_code >= 400:
        error = response.json()["error"]
        assert isinstance(error["code"], str) and error["message"], f"{where}: {response.text}"


def test_no_input_causes_a_server_error(fuzz_target):
    schema, scene_id = fuzz_target
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12  # every endpoint of docs/protocol.md is in the schema
    for operation in operations:
        strategies = [operation.as_strategy(mode) for mode in GenerationMode]
        if "{scene_id}" in operation.path:
            strategies += [operation.as_strategy(mode, path_parameters={"scene_id": scene_id}) for mode in GenerationMode]

        @given(case=st.one_of(strategies))
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case):
            check_response(case)

        fuzz()
