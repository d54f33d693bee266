"""A player's search over its own learning rates, in place: PBT's explore without its exploit.

Why: on grid25 a player's generator holds a steady state all run, and what sets it is its founder's learning
rates (a discriminator's rate above 8e-4 kept its player at 14 to 18 modes; near 1e-4 on both sides, blurred
between the modes). Copying the best pair over the others (PBT's exploit) made the population one lineage and
lost there, in the first game, with random founders (with the first cull after 60 loops it was the default on
vector data on 7 December, until at two grid25 seeds of six the population's single lineage gave a champion whose KL
was above 0.05: `arena.exploit`); this moves each player's rates while it goes on training its own pair.

How: the player measures its generator's distance to real training samples after a loop (MMD²,
`arena.ensemble.RealReference`: blind to the true modes, and on grid25 its correlation with KL over a run is 0.8).
Loops are taken in windows of `every`; a window's distance is the mean over its second half, the first being the
pair settling after a change, so only the second half's loops are measured (`Tuning.due`). A window at the
rates in hand is followed by a trial: each of the two rates multiplied by 0.8 or 1.25 (PBT's factors). A trial
whose window came nearer real data than the window before it is kept and the next trial starts from it; one that
did not is undone, and the rates in hand are measured again before the next trial, since the pair has moved on
meanwhile (a comparison is only ever between two adjacent windows). Nothing is copied or rolled back: the weights
and the optimizers' moments train on throughout.

What it does not correct for: the later window of a comparison also has the run's own progress and a slightly
lower rate schedule (`arena.lr_final`) on its side, so early in a run trials are kept more easily than they earn;
and a trial may walk the rates anywhere within the mutation limits, towards blur included (one run of three in
the row that turned it on). Judging a trial against the windows before and after it (A-B-A) removes the first
bias but not the second: a window is a short horizon, and a greedy search over short horizons prefers small
steps (Wu et al., "Understanding Short-Horizon Bias in Stochastic Meta-Optimization", ICLR 2018); on grid25 at
600 s the rates still walked down, and its first two seeds' champions were worse than this judging's (commit
7387011 gives the numbers)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

FACTORS = (0.8, 1.25)  # Ray Tune PBT's perturbation of a continuous hyperparameter


@dataclass(frozen=True)
class Tuning:
    """Where a player's search stands."""

    every: int  # loops per window
    base: tuple[float, float] | None = None  # the rates (generator, discriminator) a trial under way started from
    before: float | None = None  # the distance of the window before the trial
    window: tuple[float | None, ...] = ()  # the current window's loops so far: their distances, None unmeasured

    def __post_init__(self) -> None:
        if self.every < 2:
            raise ValueError(f"a tuning window needs at least 2 loops; got {self.every!r}")

    @property
    def due(self) -> bool:
        """Whether the loop under way must be measured: only a window's second half is read, so the first
        half's loops go unmeasured, which halves what the search costs (its share of a loop is the `distance`
        column of the report's table of loop phases)."""
        return len(self.window) >= self.every // 2


@dataclass(frozen=True)
class Decision:
    """One loop's decision: the search's new state, the rates (generator, discriminator) to train with from now,
    and what was decided when a window closed (`tried`, `kept`, `undone`; None mid-window)."""

    state: Tuning
    rates: tuple[float, float]
    verdict: str | None = None


def _perturbed(rate: float, factor: float, limits: tuple[float, float]) -> float:
    """The rate times `factor`, or times the other factor where that one would leave the limits: a trial at a limit
    still moves (clipped back onto the limit, a window would compare the rates in hand with themselves)."""
    if not limits[0] <= rate * factor <= limits[1]:
        factor = FACTORS[1] if factor == FACTORS[0] else FACTORS[0]
    return float(np.clip(rate * factor, *limits))


def retune(state: Tuning, distance: float | None, rates: tuple[float, float], rng: np.random.Generator,
           limits: tuple[float, float] = (0.0, np.inf)) -> Decision:
    """Take this loop, trained at `rates`, into the search with the distance measured after it (None where it
    was not due: `Tuning.due`) and decide (the module's docstring says how); a trial's rates stay within
    `limits`."""
    if distance is None and state.due:
        raise ValueError(f"loop {len(state.window)} of a tuning window of {state.every} is read but was not measured")
    window = state.window + (None if distance is None else float(distance),)
    if len(window) < state.every:
        return Decision(replace(state, window=window), rates)
    settled = float(np.mean(window[len(window) // 2:]))
    if state.base is not None and not settled < state.before:  # farther, or no nearer: undo it, measure again
        return Decision(Tuning(state.every), state.base, "undone")
    trial = tuple(_perturbed(rate, rng.choice(FACTORS), limits) for rate in rates)
    return Decision(Tuning(state.every, tuple(rates), settled), trial, "tried" if state.base is None else "kept")
