"""A player's search over its own learning rates (arena/tuning.py): windows, trials kept or undone, and the
rates the pair goes on with."""

import numpy as np
import pytest

from arena.offspring import with_rates
from arena.tuning import FACTORS, Tuning, retune
from genome.population import conventional_genome
from genome.operators import MutationConfig


def _window(state, distances, rates, rng, limits=(0.0, np.inf)):
    """Feed a window's distances; every loop but the last leaves the rates as they are."""
    for distance in distances[:-1]:
        step = retune(state, distance, rates, rng, limits)
        assert step.rates == rates and step.verdict is None
        state = step.state
    return retune(state, distances[-1], rates, rng, limits)


def test_a_window_at_the_rates_in_hand_starts_a_trial_from_them():
    rng, rates = np.random.default_rng(0), (2e-4, 3e-4)
    step = _window(Tuning(4), [9.0, 9.0, 1.0, 3.0], rates, rng)
    assert step.verdict == "tried"
    assert step.state.base == rates and step.state.before == 2.0  # the second half: the first settles
    assert step.state.window == ()
    assert all(new / old in FACTORS for new, old in zip(step.rates, rates))


def test_a_trial_that_came_nearer_real_data_is_kept_and_the_next_starts_from_it():
    rng = np.random.default_rng(1)
    tried = _window(Tuning(2), [0.5, 0.5], (2e-4, 2e-4), rng)
    kept = _window(tried.state, [0.9, 0.4], tried.rates, rng)  # only the second half counts: 0.4 < 0.5
    assert kept.verdict == "kept"
    assert kept.state.base == tried.rates and kept.state.before == 0.4
    assert all(new / old in FACTORS for new, old in zip(kept.rates, tried.rates))


@pytest.mark.parametrize("settled", [0.5, 0.7])
def test_a_trial_no_nearer_is_undone_exactly_and_the_rates_in_hand_are_measured_again(settled):
    rng, rates = np.random.default_rng(2), (1.1e-4, 3.7e-4)
    tried = _window(Tuning(2), [0.5, 0.5], rates, rng)
    undone = _window(tried.state, [0.1, settled], tried.rates, rng)
    assert undone.verdict == "undone" and undone.rates == rates  # the very rates, not a product of factors
    assert undone.state == Tuning(2)
    again = _window(undone.state, [0.6, 0.6], rates, rng)
    assert again.verdict == "tried" and again.state.before == 0.6  # compared with the window just measured


def test_a_trial_after_a_kept_one_is_undone_to_the_kept_rates():
    rng = np.random.default_rng(4)
    tried = _window(Tuning(2), [0.5, 0.5], (2e-4, 2e-4), rng)
    kept = _window(tried.state, [0.4, 0.4], tried.rates, rng)
    undone = _window(kept.state, [0.3, 0.45], kept.rates, rng)
    assert undone.verdict == "undone" and undone.rates == tried.rates != (2e-4, 2e-4)


def test_every_factor_is_drawn_and_a_rate_at_a_limit_moves_inwards():
    """Clipped onto the limit, a trial at it would be the rates in hand, compared with themselves."""
    rng, limits = np.random.default_rng(3), (1e-4, 1e-3)
    inside, at_limits = set(), set()
    for _ in range(40):
        inside.add(_window(Tuning(2), [1.0, 1.0], (2e-4, 5e-4), rng, limits).rates)
        at_limits.add(_window(Tuning(2), [1.0, 1.0], (1e-4, 1e-3), rng, limits).rates)
    assert inside == {(1.6e-4, 4e-4), (2.5e-4, 4e-4), (1.6e-4, 6.25e-4), (2.5e-4, 6.25e-4)}
    assert at_limits == {(1.25e-4, 8e-4)}


def test_only_a_windows_second_half_is_measured_and_the_first_half_unmeasured_decides_alike():
    due, state = [], Tuning(5)
    for distance in (None, None, 0.3, 0.2, 0.1):
        due.append(state.due)
        step = retune(state, distance, (2e-4, 2e-4), np.random.default_rng(3))
        state = step.state
    assert due == [False, False, True, True, True]  # 5 // 2: the second half is the last three
    measured = _window(Tuning(5), [9.0, 9.0, 0.3, 0.2, 0.1], (2e-4, 2e-4), np.random.default_rng(3))
    assert (step.verdict, step.rates, step.state.before) == (measured.verdict, measured.rates, measured.state.before)
    with pytest.raises(ValueError, match="loop 2 of a tuning window of 5 is read but was not measured"):
        retune(Tuning(5, window=(None, None)), None, (2e-4, 2e-4), np.random.default_rng(3))


def test_a_window_is_at_least_two_loops():
    with pytest.raises(ValueError, match="a tuning window needs at least 2 loops; got 1"):
        Tuning(1)


def test_new_rates_change_only_the_two_learning_rates_and_say_so():
    genome = conventional_genome(np.random.default_rng(0), MutationConfig(), 128, 100)
    changed, op = with_rates(genome, (3e-4, 1.5e-4), {"op": "tune", "verdict": "kept"})
    assert (changed.g_optimizer.lr, changed.d_optimizer.lr) == (3e-4, 1.5e-4)
    assert changed.g_optimizer.betas == genome.g_optimizer.betas and changed.generator == genome.generator
    assert op == {"op": "tune", "verdict": "kept", "g_lr": [genome.g_optimizer.lr, 3e-4],
                  "d_lr": [genome.d_optimizer.lr, 1.5e-4]}
