"""scripts/gpu-check in its tiny CPU mode (`--device cpu --quick`): the GPU check cannot rot between
GPU runs. One full run (every step recorded with a status and numbers, in JSON and markdown), and
one where a step runs out of its time box and another fails, while the rest still run."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
STEPS = ["scenes", "gsplat", "parity", "train", "train_steps", "clicks", "sam"]


def run_check(out: Path, work: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("OUT", None)
    return subprocess.run([str(REPO_ROOT / "scripts" / "gpu-check"), "--python", sys.executable, "--no-install",
                           "--device", "cpu", "--quick", "--out", str(out), "--work", str(work), *extra],
                          capture_output=True, text=True, env=env, timeout=300)


def finite_numbers(numbers: dict) -> list[float]:
    values = []
    for value in numbers.values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, (int, float)) and not isinstance(item, bool):
                assert math.isfinite(item), numbers
                values.append(float(item))
    return values


def test_quick_cpu_check_records_every_step_with_status_and_numbers(tmp_path):
    done = run_check(tmp_path / "out", tmp_path / "work")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    markdown = (tmp_path / "out" / "gpu_check.md").read_text()
    assert report["mode"] == "quick" and report["rasterizer"].startswith("torch")
    for name in STEPS:
        step = report["steps"][name]
        # gsplat cannot run on a CPU: recorded as a fallback with the reason, the others ran
        assert step["status"] == ("fallback" if name == "gsplat" else "ok"), (name, step)
        assert finite_numbers(step["numbers"]), (name, step["numbers"])
        assert f"| {step['title']} | {step['status']}" in markdown
    assert "CUDA only" in report["steps"]["gsplat"]["reason"]
    # our rasterizer in float32 agrees with itself in float64, features and gradients, both projections
    parity = report["steps"]["parity"]["tables"]["parity"]
    precision = [row for row in parity if row["compared"] == "torch fp32 vs fp64"]
    clicks = [row for row in parity if row["compared"] == "click pixels: torch pixels= vs torch image"]
    assert {row["projection"] for row in precision} == {row["projection"] for row in clicks} == {"perspective", "orthographic"}
    assert all(row["features_rel_diff"] < 1e-4 and row["grad_rel_diff"] < 1e-4 for row in precision), parity
    assert all(row["features_rel_diff"] < 1e-5 for row in clicks), parity  # pixels= is exact
    (train,) = report["steps"]["train"]["tables"]["train"]
    assert train["train_s"] > 0 and all(0.0 <= train[k] <= 1.0 for k in ("coarse_3d", "coarse_2d", "fine_3d", "fine_2d"))
    steps = report["steps"]["train_steps"]["tables"]["steps"]
    assert [row["gaussians"] for row in steps] == [3_000, 6_000] and all(row["step_ms_median"] > 0 for row in steps)
    clicks = report["steps"]["clicks"]["tables"]["clicks"]
    assert [row["gaussians"] for row in clicks] == [2_000, 20_000]
    assert all(0 < row["floor_p50_ms"] and 0 < row["server_p50_ms"] <= row["server_p99_ms"] for row in clicks)
    (sam,) = report["steps"]["sam"]["tables"]["sam"]
    assert sam["warm_per_view_s"] > 0 and sam["views"] == 2
    assert "| gaussians | server_p50_ms |" in markdown


def test_a_step_that_times_out_or_fails_is_recorded_and_the_rest_still_run(tmp_path):
    done = run_check(tmp_path / "out", tmp_path / "work", "--steps", "gsplat", "clicks", "sam",
                     "--set", "click_repeats=1000000", "--time-box", "clicks=3",
                     "--set", 'sam_models=["vit_unknown"]')
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    markdown = (tmp_path / "out" / "gpu_check.md").read_text()
    assert set(report["steps"]) == {"gsplat", "clicks", "sam"}  # sam ran after clicks timed out
    clicks, sam = report["steps"]["clicks"], report["steps"]["sam"]
    assert clicks["status"] == "timeout" and "time box (3 s)" in clicks["reason"]
    assert clicks["numbers"]["rasterizer"] == "torch"  # what it had recorded before the kill
    assert sam["status"] == "failed" and "vit_unknown" in sam["reason"]
    assert report["steps"]["gsplat"]["status"] == "fallback"
    assert "| 4 click latency | timeout: killed at its time box" in markdown
    assert "| 5 SAM automatic masks | failed: ValueError: unknown SAM model 'vit_unknown'" in markdown
    assert "vit_unknown" in (tmp_path / "out" / "gpu_check.log").read_text()  # the traceback
