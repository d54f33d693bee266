"""Beneficial versus nefarious mutations, and operator probabilities that adapt to them."""

from __future__ import annotations

import math

import pytest

import numpy as np

from genome.effects import (CONTROL, OPERATOR_PROBABILITY, QUANTILES, adapted, bred_none, operator_counts,
                            operator_effects)
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
    assert {k: v for k, v in effects["add_layer"].items() if k not in ("quantiles", "vs_control")} == {
        "count": 2, "helped": 1, "hurt": 1, "neutral": 0, "mean_change": pytest.approx(0.05), "mean_gain": 0.2,
        "mean_loss": -0.1}
    assert effects["add_layer"]["vs_control"] is None  # no clone to compare with
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


def test_clones_are_the_control_and_each_operator_is_compared_with_them():
    rng = np.random.default_rng(0)
    clones = [record(float(c), "choose_discriminator", CONTROL) for c in rng.normal(-0.05, 0.05, 60)]
    better = [record(float(c), "change_lr") for c in rng.normal(0.05, 0.05, 60)]
    same = [record(float(c), "add_layer") for c in rng.normal(-0.05, 0.05, 60)]
    effects = operator_effects(clones + better + same, resamples=1000)
    assert set(effects) == {CONTROL, "change_lr", "add_layer"}  # choose_discriminator is no variation
    assert effects[CONTROL]["count"] == 60 and effects[CONTROL]["vs_control"] is None
    lr, layer = effects["change_lr"]["vs_control"], effects["add_layer"]["vs_control"]
    assert lr["difference"] == pytest.approx(effects["change_lr"]["mean_change"] - effects[CONTROL]["mean_change"])
    assert lr["low"] < lr["difference"] < lr["high"] and lr["low"] > 0.05  # true difference 0.1
    assert lr["p"] < 1e-6 and lr["superiority"] > 0.8 and lr["control_count"] == 60
    assert layer["low"] < 0 < layer["high"] and layer["p"] > 0.01 and 0.3 < layer["superiority"] < 0.7
    values = sorted(r["fitness_change"] for r in better)
    assert effects["change_lr"]["quantiles"] == pytest.approx(list(np.quantile(values, QUANTILES)))
    assert operator_effects(clones + better, resamples=0)["change_lr"]["vs_control"]["low"] is None
    again = operator_effects(clones + better, resamples=1000)
    assert again == effects_without(effects, "add_layer"), "not reproducible, or depends on the other operators"


def effects_without(effects: dict, name: str) -> dict:
    return {k: v for k, v in effects.items() if k != name}


def test_adaptation_judges_operators_against_the_clone_control_when_there_are_enough_clones():
    cfg = MutationConfig(adapt=True, adapt_rate=0.5, adapt_min_count=5)
    # Every child lost fitness, the clones most: against zero both operators look harmful.
    clones = [record(-0.3, "clone")] * 6
    effects = operator_effects(clones + [record(-0.1, "add_layer")] * 6 + [record(-0.5, "delete_layer")] * 6)
    new = adapted(cfg, effects)
    assert new.p_add_layer == pytest.approx(cfg.p_add_layer * math.e ** 0.5)
    assert new.p_delete_layer == pytest.approx(cfg.p_delete_layer * math.e ** -0.5)
    few = operator_effects(clones[:4] + [record(-0.1, "add_layer")] * 6)  # too few clones: against zero
    assert adapted(cfg, few).p_add_layer == pytest.approx(cfg.p_add_layer * math.e ** -0.5)


@pytest.mark.parametrize("bad", [-1, 2.5, True])
def test_a_bad_number_of_resamples_is_refused_naming_it(bad):
    with pytest.raises(ValueError, match=f"resamples .*got {bad!r}$"):
        operator_effects([record(0.1, "clone"), record(0.2, "add_layer")], resamples=bad)


def test_a_run_bred_no_child_only_when_every_loop_after_the_first_went_on_training():
    went_on = [{"ops": [{"op": "continue"}]}, {"ops": [{"op": "resume"}]}, {"ops": [{"op": "continue"}]}]
    bred = went_on + [{"ops": [{"op": "copy"}, {"op": "change_lr"}]}]
    assert operator_counts(bred) == {"change_lr": 1, "continue": 2, "copy": 1, "resume": 1}
    assert bred_none(len(went_on), operator_counts(went_on))
    assert not bred_none(len(bred), operator_counts(bred))
    assert not bred_none(0, {})  # founders only: nothing to say yet
