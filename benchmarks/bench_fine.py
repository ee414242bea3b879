"""Fine-level accuracy on scenes nobody tuned on: the synthetic "hard" preset, several seeds.

    OMP_NUM_THREADS=1 backend/.venv/bin/python benchmarks/bench_fine.py [--seeds evaluation|tuning|diagnosed|N ...] \
        [--variants full ...] [--work DIR] [--out benchmarks/results/bench_fine_cpu.json] [--reuse]

Every seed is another scene of the "hard" preset (`synthetic.scene.PRESETS["hard"]`): 5-8 objects
picked from `synthetic.varied_objects` with thin parts touching larger siblings (rings, handles,
drawers, stems, bases), ~19k Gaussians, 40 training + 8 held-out views at 192x144, masks noisier
than the demo's. Two fixed lists of seeds:

- TUNING_SEEDS: the only scenes on which the method's defaults and the adaptive threshold were
  chosen (diagnostics, ablations).
- EVALUATION_SEEDS: never looked at while developing; only run to report the numbers
  (benchmarks/RESULTS.md). Add no seed to the other lists from here.
- DIAGNOSED_SEEDS: the evaluation seeds of sessions 5-8, whose failures sessions 8 and 9 read to
  find causes (no setting was chosen on them); reported apart, no longer untouched.

Per seed and variant: train with the `cpu-fast` preset (training seed `--train-seed`) plus the
variant's settings, then evaluate with `features.evaluate.evaluate_field` on the held-out views
(one click per visible object (coarse) and part (fine), 3D IoU over the visible Gaussians, 2D IoU
of the rendered selection) twice: at the fixed default thresholds and at each click's adaptive
threshold (`clickgauss_core.click.adaptive_threshold`, the default of a click without an explicit
threshold). Prints a table per seed, one per part, and the mean over the seeds; writes JSON.
`--reuse` evaluates a field already trained into the work folder instead of training it again;
`--tables JSON` prints the tables of an earlier run's JSON (no training, no evaluation).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from clickgauss_core.click import DEFAULT_THRESHOLDS
from clickgauss_core.protocol import COARSE, FINE, LEVELS, PRESET_CPU_FAST

from clickgauss_backend.features.evaluate import evaluate_field, visible_gaussians
from clickgauss_backend.features.field import FeatureField
from clickgauss_backend.features.pipeline import TrainingPlaces, TrainingRequest, run_training, training_config
from clickgauss_backend.splat_scene import SplatScene
from clickgauss_backend.synthetic.scene import PRESETS, SCENE_JSON, generate_scene, load_synthetic

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import training_inputs  # noqa: E402  (a sibling script, not a package)

REPO_ROOT = Path(__file__).resolve().parents[1]
SCENE_PRESET = "hard"
TUNING_SEEDS = (1, 2, 3, 4, 5, 6)  # 3 and 4 from session 8 on, 5 and 6 from session 10 on
EVALUATION_SEEDS = (104, 105, 106)  # from session 9 on
DIAGNOSED_SEEDS = (101, 102, 103)
# The preset as it is ("full"), and changes measured against it (TrainConfig overrides on top of
# the preset): "masks as given": the masks not snapped to the image's colours (the preset before
# session 7); "paper's equal mask shares": every coarse mask the same share of the samples (the
# preset before issue 17: `sampling_exponent_coarse` 1); "GFL coherent segments": HDBSCAN groups
# only segments whose pixels agree (`gfl_min_segment_coherence`, off in every preset); "no noise
# votes", "no cluster split": the preset without one of session 9's two GFL changes; "session 8's
# preset": without both; "GFL captures from 0.95": GFL pulls a Gaussian into a cluster only from
# cosine 0.95 (`tau_global`; the paper's 0.9 is a rest-dims cosine of 0.8 between sibling parts;
# session 10's candidate, not adopted); "clusters from 25 % of the views": HDBSCAN's minimum
# cluster size as before session 11 (0.25 of the views instead of the preset's 0.2); "gradient
# only where the pixel reaches": a pixel's loss moves only the Gaussians it reaches with
# transmittance >= 0.5 (`gradient_min_transmittance`; session 11's candidate, not adopted);
# "colour-blind spatial term": the paper's spatial term, every neighbour pulling alike (the preset
# before session 12's `spatial_colour_sigma`).
VARIANTS: dict[str, dict] = {"full": {}, "masks as given": {"snap_masks_to_colours": False},
                             "paper's equal mask shares": {"sampling_exponent_coarse": 1.0},
                             "GFL coherent segments": {"gfl_min_segment_coherence": 0.9},
                             "no noise votes": {"gfl_noise_vote_ratio": 0.0},
                             "no cluster split": {"gfl_split_below": 0.0},
                             "session 8's preset": {"gfl_noise_vote_ratio": 0.0, "gfl_split_below": 0.0},
                             "GFL captures from 0.95": {"tau_global": 0.95},
                             "clusters from 25 % of the views": {"min_cluster_size_per_view": 0.25},
                             "gradient only where the pixel reaches": {"gradient_min_transmittance": 0.5},
                             "colour-blind spatial term": {"spatial_colour_sigma": 0.0}}
THRESHOLD_MODES = ("fixed", "adaptive")


def seed_list(values: list[str]) -> list[int]:
    if values == ["evaluation"]:
        return list(EVALUATION_SEEDS)
    if values == ["tuning"]:
        return list(TUNING_SEEDS)
    if values == ["diagnosed"]:
        return list(DIAGNOSED_SEEDS)
    return [int(v) for v in values]


def field_path(work: Path, variant: str, train_seed: int) -> Path:
    return work / f"field_{''.join(c if c.isalnum() else '_' for c in variant)}_seed{train_seed}.npz"


def run_seed(work: Path, seed: int, variants: list[str], settings: dict, train_seed: int, reuse: bool,
             device: str) -> dict:
    """Generate (once) and train + evaluate every variant on the scene of `seed`."""
    if not (work / SCENE_JSON).is_file() or load_synthetic(work).config != PRESETS[SCENE_PRESET]:
        # A scene generated by an earlier version of the preset (session 11 left out the hidden
        # surfaces) is generated again, and its fields with it.
        for stale in work.glob("field_*.npz"):
            stale.unlink()
        started = time.perf_counter()
        generate_scene(work, preset=SCENE_PRESET, seed=seed)
        print(f"seed {seed}: generated in {time.perf_counter() - started:.0f} s", flush=True)
    synthetic = load_synthetic(work)
    scene = SplatScene.load(synthetic.ply_path, dataset_path=synthetic.dataset_path, device=device)
    counted = visible_gaussians(scene.gaussians, synthetic.cameras)
    train_views, mask_source = None, None
    places = TrainingPlaces(view_cache_dir=work / "views_cache", mask_cache_dir=work / "mask_cache", device=device)
    results = {"scene": {"objects": synthetic.object_names, "parts": synthetic.part_names,
                         "part_objects": synthetic.part_objects.tolist(), "gaussians": len(scene.cloud),
                         "size": f"{synthetic.config.width}x{synthetic.config.height}",
                         "train_views": len(synthetic.train_views), "test_views": len(synthetic.test_views)},
               "variants": {}}
    for name in variants:
        request = TrainingRequest(masks=None, preset=PRESET_CPU_FAST, overrides={**settings, **VARIANTS[name]},
                                  seed=train_seed)
        config = training_config(request.preset, request.overrides)
        path = field_path(work, name, train_seed)
        seconds = None
        if reuse and path.is_file():
            field = FeatureField.load(path, expected_gaussians=len(scene.cloud))
        else:
            if train_views is None:
                train_views, mask_source = training_inputs(work, synthetic, scene, None)
            started = time.perf_counter()
            field = run_training(request, scene, places, views=train_views, masks=mask_source)
            seconds = time.perf_counter() - started
            field.save(path)
        entry = {"train_seconds": seconds, "settings": config.to_dict()}
        for mode in THRESHOLD_MODES:
            evaluation = evaluate_field(field, scene.gaussians, synthetic, DEFAULT_THRESHOLDS,
                                        adaptive=mode == "adaptive", counted=counted)
            entry[mode] = {level: r.to_dict() for level, r in evaluation.items()}
        results["variants"][name] = entry
        summary = "; ".join(f"{mode}: " + ", ".join(f"{level} {entry[mode][level]['iou_3d']:.3f}/"
                                                    f"{entry[mode][level]['iou_2d']:.3f}" for level in LEVELS)
                            for mode in THRESHOLD_MODES)
        took = "reused" if seconds is None else f"trained in {seconds:.0f} s"
        print(f"seed {seed} [{name}] {took}: {summary}", flush=True)
    return results


def shown(value: float | None) -> str:
    """A table cell: '-' where a part is nowhere large enough in the held-out views for a 2D score."""
    return "-" if value is None else f"{value:.3f}"


def target_name(seed_result: dict, level: str, label: str) -> str:
    scene = seed_result["scene"]
    if level == COARSE:
        return scene["objects"][int(label) - 1]
    return scene["parts"][int(label) - 1]


def print_tables(report: dict) -> None:
    seeds = report["seeds"]
    print("\n| seed | variant | thresholds | coarse 3D | coarse 2D | fine 3D | fine 2D | worst fine part (3D) |")
    print("|---|---|---|---|---|---|---|---|")
    for seed, seed_result in seeds.items():
        for name, entry in seed_result["variants"].items():
            for mode in THRESHOLD_MODES:
                c, f = entry[mode][COARSE], entry[mode][FINE]
                worst = min(f["per_target_3d"].items(), key=lambda kv: kv[1])
                print(f"| {seed} | {name} | {mode} | {c['iou_3d']:.3f} | {c['iou_2d']:.3f} | {f['iou_3d']:.3f} | "
                      f"{f['iou_2d']:.3f} | {target_name(seed_result, FINE, worst[0])} {worst[1]:.2f} |")
    print("\nmean over the seeds:")
    print("| variant | thresholds | coarse 3D | coarse 2D | fine 3D | fine 2D | parts < 0.5 (3D or 2D) |")
    print("|---|---|---|---|---|---|---|")
    for name, mode, values in mean_rows(report):
        print(f"| {name} | {mode} | " + " | ".join(f"{v:.3f}" for v in values[:4]) + f" | {values[4]} |")
    print("\nper part (variant full): 3D / 2D IoU at the fixed and the adaptive threshold, the adaptive value")
    print("| seed | level | target | fixed 3D | fixed 2D | adaptive 3D | adaptive 2D | adaptive threshold |")
    print("|---|---|---|---|---|---|---|---|")
    for seed, seed_result in seeds.items():
        entry = seed_result["variants"].get("full")
        if entry is None:
            continue
        for level in LEVELS:
            fixed, adaptive = entry["fixed"][level], entry["adaptive"][level]
            for label, value in fixed["per_target_3d"].items():
                print(f"| {seed} | {level} | {target_name(seed_result, level, label)} | {value:.3f} | "
                      f"{shown(fixed['per_target_2d'].get(label))} | {adaptive['per_target_3d'][label]:.3f} | "
                      f"{shown(adaptive['per_target_2d'].get(label))} | {adaptive['per_target_threshold'][label]:.3f} |")


def mean_rows(report: dict) -> list[tuple[str, str, list]]:
    """(variant, threshold mode, [coarse 3D, coarse 2D, fine 3D, fine 2D, parts under 0.5]) over the seeds."""
    rows = []
    variants = [v for v in VARIANTS if any(v in s["variants"] for s in report["seeds"].values())]
    for name in variants:
        for mode in THRESHOLD_MODES:
            entries = [s["variants"][name][mode] for s in report["seeds"].values() if name in s["variants"]]
            means = [float(np.mean([e[level][key] for e in entries])) for level in LEVELS for key in ("iou_3d", "iou_2d")]
            low = sum(1 for e in entries for label, v in e[FINE]["per_target_3d"].items()
                      if v < 0.5 or e[FINE]["per_target_2d"].get(label, 1.0) < 0.5)
            rows.append((name, mode, [*means, low]))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", nargs="+", default=["evaluation"],
                        help="'evaluation' (default), 'tuning', 'diagnosed', or scene seeds")
    parser.add_argument("--variants", nargs="+", default=["full"], choices=list(VARIANTS), metavar="NAME",
                        help=f"which variants to train (default: full; known: {', '.join(VARIANTS)})")
    parser.add_argument("--settings", type=json.loads, default={},
                        help="TrainConfig overrides for every variant, as JSON")
    parser.add_argument("--train-seed", type=int, default=0)
    parser.add_argument("--work", default="/tmp/clickgauss-bench-fine")
    parser.add_argument("--out", default=str(REPO_ROOT / "benchmarks" / "results" / "bench_fine_cpu.json"))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--reuse", action="store_true", help="evaluate fields already trained into --work")
    parser.add_argument("--tables", metavar="JSON", help="only print the tables of an earlier run's JSON")
    args = parser.parse_args(argv)
    if args.tables:
        print_tables(json.loads(Path(args.tables).read_text()))
        return 0

    seeds = seed_list(args.seeds)
    report = {"machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                          "torch_threads": torch.get_num_threads(), "device": args.device,
                          "load_average": os.getloadavg()},
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "command": " ".join(["benchmarks/bench_fine.py", *(argv if argv is not None else sys.argv[1:])]),
              "scene_preset": SCENE_PRESET, "train_preset": PRESET_CPU_FAST, "train_seed": args.train_seed,
              "settings": args.settings, "fixed_thresholds": DEFAULT_THRESHOLDS,
              "tuning_seeds": list(TUNING_SEEDS), "evaluation_seeds": list(EVALUATION_SEEDS),
              "diagnosed_seeds": list(DIAGNOSED_SEEDS), "seeds": {}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        report["seeds"][str(seed)] = run_seed(Path(args.work) / f"seed{seed}", seed, args.variants, args.settings,
                                              args.train_seed, args.reuse, args.device)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")  # after every seed: a long run keeps what it has
    print_tables(report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
