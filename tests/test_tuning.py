"""A player's search over its own learning rates (arena/tuning.py): a trial's window between two at the rates in
hand, kept or undone, and the rates the pair goes on with."""

import numpy as np
import pytest

from arena.offspring import with_rates
from arena.tuning import FACTORS, VERDICTS, Tuning, retune
from genome.population import conventional_genome
from genome.operators import MutationConfig


def _window(state, distances, rates, rng, limits=(0.0, np.inf)):
    """Feed a window's distances; every loop but the last leaves the rates as they are."""
    for distance in distances[:-1]:
        step = retune(state, distance, rates, rng, limits)
        assert step.rates == rates and step.verdict is None
        state = step.state
    return retune(state, distances[-1], rates, rng, limits)


def _perturbed(new, old):
    """Each rate the old one times a factor of PBT's."""
    return all(any(n == pytest.approx(o * f) for f in FACTORS) for n, o in zip(new, old))


def _trial(rng, rates, before, tried, after, every=2):
    """A window at `rates`, one at a trial, one at `rates` again: each step's decision."""
    start = _window(Tuning(every), [before] * every, rates, rng)
    back = _window(start.state, [tried] * every, start.rates, rng)
    return start, back, _window(back.state, [after] * every, back.rates, rng)


def test_a_window_at_the_rates_in_hand_starts_a_trial_from_them():
    rng, rates = np.random.default_rng(0), (2e-4, 3e-4)
    step = _window(Tuning(4), [9.0, 9.0, 1.0, 3.0], rates, rng)
    assert step.verdict == "tried"
    assert step.state.base == rates and step.state.before == 2.0  # the second half: the first settles
    assert step.state.window == ()
    assert _perturbed(step.rates, rates)


def test_after_a_trials_window_the_rates_in_hand_are_measured_again():
    rng, rates = np.random.default_rng(1), (2e-4, 2e-4)
    start, back, _ = _trial(rng, rates, 0.5, 0.4, 0.5)
    assert back.verdict == "back" and back.rates == rates  # the very rates, not a product of factors
    assert back.state.trial == start.rates and back.state.tried == 0.4 and back.state.before == 0.5


def test_a_trial_nearer_than_the_windows_around_it_is_kept_though_the_run_improves_throughout():
    rng, rates = np.random.default_rng(2), (2e-4, 2e-4)
    start, _, kept = _trial(rng, rates, 0.6, 0.45, 0.4)  # mean of the two around it: 0.5
    assert kept.verdict == "kept" and kept.rates == start.rates
    assert kept.state == Tuning(2)  # its rates are measured afresh before the next trial
    again = _window(kept.state, [0.4, 0.4], kept.rates, rng)
    assert again.verdict == "tried" and again.state.base == start.rates


@pytest.mark.parametrize("tried", [0.45, 0.5, 0.55])
def test_a_trial_that_only_rode_the_runs_progress_is_undone_and_the_next_starts_from_the_rates_in_hand(tried):
    """Nearer than the window before it, as any later window of an improving run is, but not than the two around
    it: undone; the window just measured at the rates in hand is the next trial's before."""
    rng, rates = np.random.default_rng(3), (1.1e-4, 3.7e-4)
    _, _, undone = _trial(rng, rates, 0.6, tried, 0.3)  # mean of the two around it: 0.45
    assert undone.verdict == "undone"
    assert undone.state.base == rates and undone.state.before == 0.3 and undone.state.trial is None
    assert _perturbed(undone.rates, rates)


def test_a_search_decides_only_with_the_verdicts_it_names():
    rng, rates, state, seen = np.random.default_rng(5), (2e-4, 2e-4), Tuning(2), []
    for distance in np.random.default_rng(6).random(60):
        step = retune(state, distance, rates, rng)
        state, rates = step.state, step.rates
        seen += [step.verdict] if step.verdict else []
    assert set(seen) <= set(VERDICTS) and {"tried", "back"} <= set(seen)
    # Every trial is followed by its way back, and a way back by a decision: kept or undone.
    for verdict, after in zip(seen, seen[1:]):
        assert after == {"tried": "back", "undone": "back", "back": after if after in ("kept", "undone") else None,
                         "kept": "tried"}[verdict]


def test_trials_stay_within_the_limits_and_every_factor_is_drawn():
    rng, limits = np.random.default_rng(3), (1e-4, 1e-3)
    seen = set()
    for _ in range(40):
        step = _window(Tuning(2), [1.0, 1.0], (1e-4, 1e-3), rng, limits)
        assert all(limits[0] <= rate <= limits[1] for rate in step.rates)
        seen.add(step.rates)
    assert seen == {(1e-4, 8e-4), (1.25e-4, 8e-4), (1e-4, 1e-3), (1.25e-4, 1e-3)}


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
