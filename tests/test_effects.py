"""Beneficial versus nefarious mutations, and operator probabilities that adapt to them."""

from __future__ import annotations

import math

import pytest

from genome.effects import OPERATOR_PROBABILITY, adapted, operator_effects
from genome.operators import MutationConfig


def record(change, *ops):
    return {"ops": [{"op": op} for op in ops], "fitness_change": change}


def test_effects_count_helped_hurt_and_mean_changes_per_operator():
    effects = operator_effects([
        record(0.2, "add_layer", "change_lr"), record(-0.1, "add_layer"), record(0.0, "change_lr"),
        record(None, "add_layer"),  # has not fought: not counted
        record(0.4, "random"),  # a first-generation individual: no operator to credit
        record(-0.3, "crossover", "crossover"),  # an operator applied twice counts once for that child
    ])
    assert set(effects) == {"add_layer", "change_lr", "crossover"}
    assert effects["add_layer"] == {"count": 2, "helped": 1, "hurt": 1, "neutral": 0,
                                    "mean_change": pytest.approx(0.05), "mean_gain": 0.2, "mean_loss": -0.1}
    assert effects["change_lr"]["neutral"] == 1 and effects["change_lr"]["mean_change"] == pytest.approx(0.1)
    assert effects["crossover"]["count"] == 1 and effects["crossover"]["mean_gain"] == 0.0


def test_every_operator_the_mutation_records_maps_to_a_probability():
    fields = set(MutationConfig.__dataclass_fields__)
    assert set(OPERATOR_PROBABILITY.values()) <= fields


def test_adaptation_is_off_by_default():
    effects = operator_effects([record(1.0, "add_layer")] * 50)
    assert adapted(MutationConfig(), effects) == MutationConfig()


def test_adaptation_raises_helpful_and_lowers_harmful_operators_from_the_configured_base():
    cfg = MutationConfig(adapt=True, adapt_rate=0.5, adapt_min_count=5)
    effects = operator_effects([record(0.1, "add_layer")] * 6 + [record(-0.1, "delete_layer")] * 6
                               + [record(0.1, "change_width")] * 4  # too few results to adapt
                               + [record(0.1, "change_lr")] * 3 + [record(-0.1, "change_lr")] * 3)
    new = adapted(cfg, effects)
    assert new.p_add_layer == pytest.approx(cfg.p_add_layer * math.e ** 0.5)
    assert new.p_delete_layer == pytest.approx(cfg.p_delete_layer * math.e ** -0.5)
    assert new.p_width == cfg.p_width and new.p_lr == pytest.approx(cfg.p_lr)
    assert adapted(cfg, effects) == new, "adaptation compounds"
    capped = adapted(MutationConfig(adapt=True, p_crossover=0.9, adapt_rate=3, adapt_min_count=1),
                     operator_effects([record(0.1, "crossover")]))
    assert capped.p_crossover == 1.0


@pytest.mark.parametrize("bad", [{"adapt_rate": -1}, {"adapt_rate": math.inf}, {"adapt_min_count": 0}])
def test_bad_adaptation_settings_are_refused_naming_them(bad):
    with pytest.raises(ValueError, match=f"mutation.{next(iter(bad))}"):
        MutationConfig(**bad)
