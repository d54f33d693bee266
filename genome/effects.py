"""Beneficial versus nefarious mutations: what each operator did to fitness, and operator
probabilities that follow that record when the configuration asks for it."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Iterable

from genome.operators import MutationConfig

# Which probability of the configuration each recorded operator draws on.
OPERATOR_PROBABILITY = {
    "add_layer": "p_add_layer", "delete_layer": "p_delete_layer", "add_noise": "p_add_noise",
    "change_width": "p_width",
    "change_kernel": "p_kernel", "change_stride": "p_stride", "change_dropout": "p_dropout", "change_noise": "p_noise",
    "change_activation": "p_activation", "change_norm": "p_norm", "change_optimizer": "p_optimizer",
    "change_lr": "p_lr", "change_betas": "p_betas", "change_latent_dim": "p_latent",
    "change_latent_dist": "p_latent", "change_loss": "p_loss", "crossover": "p_crossover",
}


def operator_effects(records: Iterable[dict]) -> dict[str, dict]:
    """Per operator: how many children it made that have a fitness change, how many it helped
    (change > 0) or hurt (< 0), and by how much on average. Each `record` has `ops` and
    `fitness_change` (child fitness minus its parents' mean); a child made by several operators
    counts for each of them."""
    changes: dict[str, list[float]] = {}
    for record in records:
        change = record.get("fitness_change")
        if change is None:
            continue
        for name in {op["op"] for op in record.get("ops") or [] if op["op"] in OPERATOR_PROBABILITY}:
            changes.setdefault(name, []).append(float(change))
    effects = {}
    for name, values in sorted(changes.items()):
        gains = [v for v in values if v > 0]
        losses = [v for v in values if v < 0]
        effects[name] = {
            "count": len(values), "helped": len(gains), "hurt": len(losses),
            "neutral": len(values) - len(gains) - len(losses),
            "mean_change": sum(values) / len(values),
            "mean_gain": sum(gains) / len(gains) if gains else 0.0,
            "mean_loss": sum(losses) / len(losses) if losses else 0.0,
        }
    return effects


def adapted(cfg: MutationConfig, effects: dict[str, dict]) -> MutationConfig:
    """`cfg` with each operator's probability scaled by how often it helped: × e^rate when it
    always helped, × e^-rate when it always hurt, unchanged at even odds or before
    `adapt_min_count` results. Always from the configured probabilities, so nothing compounds."""
    if not cfg.adapt:
        return cfg
    factors: dict[str, list[float]] = {}
    for name, effect in effects.items():
        decided = effect["helped"] + effect["hurt"]
        if name in OPERATOR_PROBABILITY and effect["count"] >= cfg.adapt_min_count and decided:
            score = 2 * effect["helped"] / decided - 1  # -1 always hurt .. +1 always helped
            factors.setdefault(OPERATOR_PROBABILITY[name], []).append(math.exp(cfg.adapt_rate * score))
    changes = {field: min(1.0, getattr(cfg, field) * sum(f) / len(f)) for field, f in factors.items()}
    return replace(cfg, **changes)
