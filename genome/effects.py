"""Beneficial versus nefarious mutations: what each operator did to fitness, against the control of
children that were not varied (clones), and operator probabilities that follow that record when the
configuration asks for it."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace
from typing import Iterable

import numpy as np

from genome.operators import MutationConfig

# Which probability of the configuration each recorded operator draws on.
OPERATOR_PROBABILITY = {
    "add_layer": "p_add_layer", "delete_layer": "p_delete_layer", "add_noise": "p_add_noise", "change_width": "p_width",
    "change_kernel": "p_kernel", "change_stride": "p_stride", "change_dropout": "p_dropout", "change_noise": "p_noise",
    "change_activation": "p_activation", "change_norm": "p_norm", "change_optimizer": "p_optimizer",
    "change_lr": "p_lr", "change_betas": "p_betas", "change_latent_dim": "p_latent",
    "change_latent_dist": "p_latent", "change_loss": "p_loss", "crossover": "p_crossover",
}
CONTROL = "clone"  # a child that is its parent, trained on: what fitness does with no variation at all
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
WENT_ON = ("continue", "resume")  # a loop whose pair trained on: nothing was bred


def operator_counts(children: Iterable[dict]) -> dict[str, int]:
    """Per recorded operator, how many of these children it made (a child made by several counts for each)."""
    return dict(sorted(Counter(op["op"] for child in children for op in child.get("ops") or []).items()))


def bred_none(n_children: int, operators: dict[str, int]) -> bool:
    """Whether a run's loops after each player's first all went on training their pairs (exploit never, or
    nobody culled yet): what its records say, whatever its configuration asked. A player restarted from its
    founder, every checkpoint refused (op `random`), counts as bred."""
    return n_children > 0 and sum(operators.get(op, 0) for op in WENT_ON) == n_children


def went_on_words(n_children: int) -> str:
    """What a run that `bred_none` did, in the words the run's summary and its report both use."""
    return f"every pair went on training ({n_children} loops after each player's first)"


def operator_changes(records: Iterable[dict]) -> dict[str, list[float]]:
    """Per operator (and the `clone` control), the fitness changes of the children it made. Each record
    has `ops` and `fitness_change` (child fitness minus its parents' mean, None before it has fought);
    a child made by several operators counts once for each of them."""
    changes: dict[str, list[float]] = {}
    for record in records:
        change = record.get("fitness_change")
        if change is None:
            continue
        names = {op["op"] for op in record.get("ops") or []}
        for name in names & (set(OPERATOR_PROBABILITY) | {CONTROL}):
            changes.setdefault(name, []).append(float(change))
    return changes


def _bootstrap(values: np.ndarray, control: np.ndarray, resamples: int, rng: np.random.Generator) -> tuple:
    """95 % percentile bootstrap interval of mean(values) − mean(control), each resampled on its own; every
    operator draws from the same seed, so its interval does not depend on which others are there."""
    diffs = [rng.choice(values, (n, len(values))).mean(1) - rng.choice(control, (n, len(control))).mean(1)
             for n in [200] * (resamples // 200) + [resamples % 200] if n]
    low, high = np.quantile(np.concatenate(diffs), [0.025, 0.975])
    return float(low), float(high)


def operator_effects(records: Iterable[dict], resamples: int = 0, seed: int = 0) -> dict[str, dict]:
    """Per operator and for the clone control: how many children have a fitness change, how many it
    helped (> 0) or hurt (< 0), the mean change, gain and loss, the `quantiles` (at QUANTILES) of the
    changes, and `vs_control`: the difference of its mean change from the clone control's with a 95 %
    bootstrap interval (`low`, `high`; None when `resamples` is 0, the default: the registry asks on every
    breeding, and the report asks for 1,000), the two-sided Mann–Whitney `p`, and
    `superiority`, the chance that one of its children's changes beats one of the control's (ties
    half): 0.5 is no different from cloning. `vs_control` is None without a control or for the control.
    Opponents improve while children train, so every change leans negative; the control carries the
    same lean, which is why operators are judged against it rather than against zero."""
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 0:
        raise ValueError(f"resamples must be a non-negative integer; got {resamples!r}")
    changes = operator_changes(records)
    control = np.array(changes.get(CONTROL, []))
    effects = {}
    for name, values in sorted(changes.items()):
        gains = [v for v in values if v > 0]
        losses = [v for v in values if v < 0]
        array = np.array(values)
        effect = {
            "count": len(values), "helped": len(gains), "hurt": len(losses),
            "neutral": len(values) - len(gains) - len(losses),
            "mean_change": sum(values) / len(values),
            "mean_gain": sum(gains) / len(gains) if gains else 0.0,
            "mean_loss": sum(losses) / len(losses) if losses else 0.0,
            "quantiles": [float(q) for q in np.quantile(array, QUANTILES)], "vs_control": None,
        }
        if name != CONTROL and len(control):
            from scipy.stats import mannwhitneyu  # here: scipy.stats takes a second to import in every player

            u, p = mannwhitneyu(array, control, alternative="two-sided")
            low, high = (None, None) if not resamples else \
                _bootstrap(array, control, resamples, np.random.default_rng(seed))
            effect["vs_control"] = {"difference": float(array.mean() - control.mean()), "low": low, "high": high,
                                    "p": float(p), "superiority": float(u) / (len(array) * len(control)),
                                    "control_count": len(control)}
        effects[name] = effect
    return effects


def adapted(cfg: MutationConfig, effects: dict[str, dict]) -> MutationConfig:
    """`cfg` with each operator's probability scaled by how its children fared: × e^rate when they
    always beat the clone control, × e^-rate when they always lost to it, unchanged at even odds or
    before `adapt_min_count` results (of the operator and of the control). Without enough clones, by
    how often its children's fitness rose rather than fell. Always from the configured probabilities,
    so nothing compounds."""
    if not cfg.adapt:
        return cfg
    factors: dict[str, list[float]] = {}
    for name, effect in effects.items():
        if name not in OPERATOR_PROBABILITY or effect["count"] < cfg.adapt_min_count:
            continue
        versus = effect.get("vs_control")
        decided = effect["helped"] + effect["hurt"]
        if versus and versus["control_count"] >= cfg.adapt_min_count:
            score = 2 * versus["superiority"] - 1  # -1 always worse than cloning .. +1 always better
        elif decided:
            score = 2 * effect["helped"] / decided - 1  # -1 always hurt .. +1 always helped
        else:
            continue
        factors.setdefault(OPERATOR_PROBABILITY[name], []).append(math.exp(cfg.adapt_rate * score))
    changes = {field: min(1.0, getattr(cfg, field) * sum(f) / len(f)) for field, f in factors.items()}
    return replace(cfg, **changes)
