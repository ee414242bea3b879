"""The bounds of the training settings (features/config.py): one table, every numeric field in it."""

from __future__ import annotations

import pytest

from clickgauss_backend.features.config import (PRESETS, SETTING_RANGES, SETTING_TYPES, TrainConfig,
                                                check_setting_names)


def test_every_numeric_setting_has_a_range_and_every_preset_is_inside():
    numeric = {name for name, kind in SETTING_TYPES.items() if kind is not bool}
    assert numeric == set(SETTING_RANGES)
    for name in PRESETS:
        TrainConfig.preset(name).check()


@pytest.mark.parametrize("name", sorted(SETTING_RANGES))
def test_each_bound_is_inclusive_and_a_step_past_it_is_refused(name):
    low, high = SETTING_RANGES[name]
    integer = SETTING_TYPES[name] is int
    config = TrainConfig(feature_dim=64) if name == "coarse_dim" else TrainConfig(coarse_dim=1)
    for edge in (low, high):
        config.with_changes(**{name: int(edge) if integer else edge}).check()
    step = 1 if integer else max(abs(high), 1) * 1e-6
    for outside in (low - step, high + step, float("nan"), float("inf"), True):
        with pytest.raises(ValueError, match=f"^{name}: "):
            config.with_changes(**{name: outside}).check()


def test_settings_that_do_not_fit_together_and_unknown_names():
    with pytest.raises(ValueError, match="coarse_dim: 30 must be smaller than feature_dim \\(24\\)"):
        TrainConfig(coarse_dim=30).check()
    with pytest.raises(ValueError, match="gfl: expected true/false"):
        TrainConfig(gfl=1).check()
    with pytest.raises(ValueError, match="iterations: expected an integer, got 2.5"):
        TrainConfig(iterations=2.5).check()
    with pytest.raises(ValueError) as info:
        check_setting_names({f"s{index}": 1 for index in range(10_000)} | {"iterations": 3})
    assert "s0, s1, s10, s100, s1000 and 9995 more" in str(info.value) and len(str(info.value)) < 1000
