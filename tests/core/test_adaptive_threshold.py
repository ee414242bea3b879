"""clickgauss_core.click.adaptive_threshold on constructed similarity distributions: the valley
right below the clicked segment, whatever the segments' sizes, and the fixed threshold where
there is no valley; `select` with and without an explicit threshold."""

import numpy as np
import pytest

from clickgauss_core.click import DEFAULT_THRESHOLDS, adaptive_threshold, select, unit_rows
from clickgauss_core.protocol import COARSE, FINE


def _segments(rng, *segments):
    """Similarities of several segments, each (count, mean, spread), and the segment index of each value."""
    values = [np.clip(rng.normal(mean, spread, count), -1.0, 1.0) for count, mean, spread in segments]
    return np.concatenate(values), np.repeat(np.arange(len(segments)), [s[0] for s in segments])


CASES = {
    # the clicked part spreads down to ~0.86, under the fixed 0.90; its sibling sits at 0.72
    "gap below a spread-out part": (FINE, ((400, 0.94, 0.022), (3000, 0.72, 0.012), (15000, 0.3, 0.1)), 1, (0.76, 0.86)),
    # a big sibling at 0.87 and a wider, emptier band 0.75-0.84 below it: the gap right below
    # the clicked part wins
    "the highest valley": (FINE, ((150, 0.975, 0.008), (2500, 0.87, 0.01), (4000, 0.72, 0.01)), 1, (0.9, 0.96)),
    "a small part among many": (FINE, ((40, 0.97, 0.01), (50_000, 0.6, 0.05)), 1, (0.7, 0.96)),
    # an object whose small part sits at 0.83 (parts are not pushed apart at the coarse level),
    # other objects around 0.4
    "an object's lower part": (COARSE, ((2000, 0.98, 0.01), (300, 0.83, 0.01), (8000, 0.4, 0.05)), 2, (0.5, 0.8)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_threshold_falls_in_the_valley_below_the_clicked_segment(case):
    level, segments, clicked_segments, (low, high) = CASES[case]
    rng = np.random.default_rng(len(case))
    similarity, segment = _segments(rng, *segments)
    threshold = adaptive_threshold(similarity, level)
    assert low < threshold <= high
    assert np.array_equal(similarity >= threshold, segment < clicked_segments)


def test_the_fixed_threshold_would_cut_the_spread_out_part():
    _, segments, _, _ = CASES["gap below a spread-out part"]
    similarity, segment = _segments(np.random.default_rng(len("gap below a spread-out part")), *segments)
    assert (similarity[segment == 0] < DEFAULT_THRESHOLDS[FINE]).sum() > 10


@pytest.mark.parametrize("level", [COARSE, FINE])
def test_no_valley_falls_back_to_the_fixed_threshold(level):
    rng = np.random.default_rng(4)
    uniform = rng.uniform(0.0, 1.0, 20_000)  # one spread-out mass: no gap anywhere
    assert adaptive_threshold(uniform, level) == DEFAULT_THRESHOLDS[level]
    assert adaptive_threshold(uniform, level, fallback=0.77) == 0.77
    assert adaptive_threshold(np.zeros(0), level, fallback=0.5) == 0.5  # nothing near 1 at all
    assert adaptive_threshold(np.full(100, 0.2), level) == DEFAULT_THRESHOLDS[level]


def test_unknown_level_is_an_error():
    with pytest.raises(ValueError, match="unknown level 'medium'"):
        adaptive_threshold(np.ones(3), "medium")


def test_select_uses_an_explicit_threshold_else_the_adaptive_one():
    rng = np.random.default_rng(5)
    clicked = rng.normal([1.0, 0.0, 0.0], 0.12, (300, 3))     # cosines ~0.98 to the query, down to ~0.93
    sibling = rng.normal([0.6, 0.8, 0.0], 0.02, (2000, 3))    # cosines ~0.6
    features = unit_rows(np.concatenate([clicked, sibling]))
    query = np.array([1.0, 0.0, 0.0])
    selected, similarity, used = select(features, query, None, FINE)
    assert 0.65 < used < 0.93 and selected[:300].all() and not selected[300:].any()
    explicit, _, used_explicit = select(features, query, 0.99, FINE)
    assert used_explicit == 0.99 and 0 < explicit.sum() < 300
    assert np.array_equal(explicit, similarity >= 0.99)
