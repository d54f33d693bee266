"""A player's search over its own learning rates, in place: PBT's explore without its exploit.

Why: on grid25 a player's generator holds a steady state all run, and what sets it is its founder's learning
rates (a discriminator's rate above 8e-4 kept its player at 14 to 18 modes; near 1e-4 on both sides, blurred
between the modes). Copying the best pair over the others (PBT's exploit) made the population one lineage and
lost (`arena.exploit`); this moves each player's rates while it goes on training its own pair.

How: the player measures its generator's distance to real training samples after every loop (MMD²,
`arena.ensemble.RealReference`: blind to the true modes). Loops are taken in windows of `every`; a window's
distance is the mean over its second half, the first being the pair settling after a change. A trial is a window
between two at the rates in hand (an A-B-A design): each of the two rates multiplied by 0.8 or 1.25 (PBT's
factors), then the rates in hand again. It is kept when its window came nearer real data than the mean of the
two around it, so that the run's own progress (and the slowly decaying schedule, `arena.lr_final`), which favours
any later window, cancels out; the window after an undone trial is the one before the next. Comparing a trial
with the window before it alone kept most trials while the run improved, and the rates drifted as a random walk,
into blur in one run of three (BENCHMARKS.md, 2026-12-05T10:10:30 and 11:25:17). Nothing is copied or rolled
back: the weights and the optimizers' moments train on throughout."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

FACTORS = (0.8, 1.25)  # Ray Tune PBT's perturbation of a continuous hyperparameter


@dataclass(frozen=True)
class Tuning:
    """Where a player's search stands."""

    every: int  # loops per window
    base: tuple[float, float] | None = None  # the rates (generator, discriminator) in hand while a trial is on
    before: float | None = None  # the distance of the window at them before the trial
    trial: tuple[float, float] | None = None  # the trial's rates, once its window is measured
    tried: float | None = None  # the distance of the trial's window
    window: tuple[float, ...] = ()  # the distances measured so far in the current window

    def __post_init__(self) -> None:
        if self.every < 2:
            raise ValueError(f"a tuning window needs at least 2 loops; got {self.every!r}")


VERDICTS = ("tried", "back", "kept", "undone")


@dataclass(frozen=True)
class Decision:
    """One loop's decision: the search's new state, the rates (generator, discriminator) to train with from now,
    and what was decided when a window closed (None mid-window): `tried` (a trial starts from the rates in hand),
    `back` (its window is measured: the rates in hand again), `kept` (it came nearer real data than the windows
    around it: its rates are now the ones in hand) or `undone` (it did not: the next trial starts from the rates in
    hand, the window just measured at them before it)."""

    state: Tuning
    rates: tuple[float, float]
    verdict: str | None = None


def retune(state: Tuning, distance: float, rates: tuple[float, float], rng: np.random.Generator,
           limits: tuple[float, float] = (0.0, np.inf)) -> Decision:
    """Take the distance measured after this loop, trained at `rates`, into the search and decide (the module's
    docstring says how); a trial's rates stay within `limits`."""
    window = state.window + (float(distance),)
    if len(window) < state.every:
        return Decision(replace(state, window=window), rates)
    settled = float(np.mean(window[len(window) // 2:]))

    def trial(base: tuple[float, float], verdict: str) -> Decision:
        tried = tuple(float(np.clip(rate * rng.choice(FACTORS), *limits)) for rate in base)
        return Decision(Tuning(state.every, base, settled), tried, verdict)

    if state.base is None:  # a window at the rates in hand: the one before a trial
        return trial(tuple(rates), "tried")
    if state.trial is None:  # the trial's window: back to the rates in hand for the one after it
        return Decision(replace(state, trial=tuple(rates), tried=settled, window=()), state.base, "back")
    if state.tried < (state.before + settled) / 2:
        return Decision(Tuning(state.every), state.trial, "kept")  # its rates are measured afresh before the next
    return trial(state.base, "undone")
