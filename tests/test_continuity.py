"""The game's continuity: who breeds (next_move), what a continued pair keeps (standing, ratings,
optimizer state), and the learning-rate schedule. Pure functions and the registry without Ray."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pytest
import torch

from agents.registry import Registry
from arena.config import ArenaConfig
from arena.offspring import optimizers_for, perturbed
from arena.selection import Move, affordable, champion, choose_parents, next_move, ranked, tournament
from genome.build import build_pair, make_optimizer
from genome.genes import OptimizerGene
from genome.optimizer_state import carry_optimizer_state
from genome.population import random_genome
from genome.operators import MutationConfig


def population(n: int, age: int = 5) -> list[dict]:
    """n entries, i-th with fitness i / n (so e0 is the worst), every one `age` loops old."""
    return [{"id": f"e{i}", "player": f"p{i}", "fitness": i / n, "d_fitness": 1 - i / n,
             "d_round_fitness": 1 - i / n, "rating": float(i), "age": age} for i in range(n)]


@pytest.mark.parametrize("n, truncation, replaced", [(4, 0.25, 1), (8, 0.25, 2), (8, 0.5, 4), (3, 0.25, 1), (2, 0.25, 1), (1, 0.5, 0)])
def test_truncation_replaces_exactly_the_bottom_share_and_only_from_the_rest(n, truncation, replaced):
    pool = population(n)
    for seed in range(20):
        moves = [next_move(me, pool, np.random.default_rng(seed), truncation=truncation) for me in pool]
        assert [m.breeds for m in moves] == [i < replaced for i in range(n)]
        for move in moves[:replaced]:
            assert all(int(p["id"][1:]) >= replaced for p in move.parents)
            assert move.d_parents  # discriminators chosen apart by default


def test_a_young_pair_or_an_unjudged_one_goes_on_training():
    pool = population(4)
    young = {**pool[0], "age": 2}
    assert not next_move(young, pool[1:] + [young], np.random.default_rng(0), ready=3).breeds
    unjudged = {**pool[0], "fitness": None}
    assert not next_move(unjudged, pool[1:] + [unjudged], np.random.default_rng(0)).breeds
    assert next_move(pool[0], pool, np.random.default_rng(0), ready=3).breeds
    with pytest.raises(ValueError, match="ready must be a number of loops \\(0 or more\\); got -1"):
        next_move(pool[0], pool, np.random.default_rng(0), ready=-1)


def player_game(arena: ArenaConfig, shape: tuple[int, ...]) -> dict:
    """The settings of next_move a player with `arena` on data of `shape` passes (`Player._game`)."""
    from types import SimpleNamespace
    from agents.player import Player
    return Player._game(SimpleNamespace(arena=arena, data=SimpleNamespace(shape=shape)))


@pytest.mark.parametrize("exploit, shape, ready", [("auto", (2,), 60), ("truncation", (1, 28, 28), 10)])
def test_the_game_culls_the_last_pair_once_it_has_trained_the_datas_ready_loops(exploit, shape, ready):
    """The game a player passes (`Player._game`; auto on vector data, truncation asked for on images):
    the pair nearest real data last goes on training until its age reaches `ready`, then it is replaced by a
    copy."""
    game = player_game(ArenaConfig(exploit=exploit), shape)
    pool = [{**c, "real_distance": 0.1 * (4 - i)} for i, c in enumerate(population(4))]  # e0 farthest
    for age, breeds in ((ready - 1, False), (ready, True)):
        me = {**pool[0], "age": age}
        move = next_move(me, pool[1:] + [me], np.random.default_rng(0), **game)
        assert move.breeds == breeds and (not breeds or move.parents[0]["id"] != "e0"), (age, move)


@pytest.mark.parametrize("shape", [(1, 28, 28), (2,)])
def test_by_default_no_pair_on_any_data_is_ever_replaced(shape):
    game = player_game(ArenaConfig(), shape)
    pool = [{**c, "real_distance": 0.1 * (4 - i)} for i, c in enumerate(population(4))]
    for age in (0, 10, 60, 1000):
        me = {**pool[0], "age": age}
        assert next_move(me, pool[1:] + [me], np.random.default_rng(0), **game) == Move()


def test_never_and_always_and_pairs_kept_together():
    pool = population(6)
    rng = np.random.default_rng(0)
    assert all(next_move(me, pool, rng, exploit="never") == Move() for me in pool)
    for seed in range(10):  # always: the old game, two tournaments over everyone, then two by d_fitness
        move = next_move(pool[5], pool, np.random.default_rng(seed), exploit="always")
        rng = np.random.default_rng(seed)
        assert [p["id"] for p in move.parents] == [p["id"] for p in choose_parents(pool, 3, rng, "fitness")]
        assert [p["id"] for p in move.d_parents] == [p["id"] for p in choose_parents(pool, 3, rng,
                                                                                      "d_round_fitness")]
    kept = next_move(pool[0], pool, np.random.default_rng(0), d_key=None)
    assert kept.breeds and kept.d_parents == ()
    with pytest.raises(ValueError, match="unknown exploit 'sometimes'"):
        next_move(pool[0], pool, rng, exploit="sometimes")


def test_culling_by_real_data_replaces_the_generator_furthest_from_it_whatever_its_fitness():
    pool = population(4)
    for i, entry in enumerate(pool):
        entry["real_distance"] = 0.1 * (i + 1)  # e3, the fittest, is the furthest from real data
    for seed in range(10):
        moves = [next_move(me, pool, np.random.default_rng(seed), cull="real") for me in pool]
        assert [m.breeds for m in moves] == [False, False, False, True]
        # Its parents are still the winners of tournaments by fitness (of 3, over the 3 others: e2, then e1).
        assert [p["id"] for p in moves[3].parents] == ["e2", "e1"]
    unmeasured = {**pool[3], "real_distance": None}
    assert not next_move(unmeasured, pool[:3] + [unmeasured], np.random.default_rng(0), cull="real").breeds
    with pytest.raises(ValueError, match="unknown cull 'oracle'"):
        next_move(pool[0], pool, np.random.default_rng(0), cull="oracle")
    with pytest.raises(ValueError, match="arena.cull must be one of fitness, real; got 'modes'"):
        ArenaConfig(cull="modes")


def test_a_distance_ranks_lowest_first_and_the_unmeasured_last():
    entries = [{"id": "a", "real_distance": 0.3}, {"id": "b", "real_distance": None}, {"id": "c", "real_distance": 0.1}]
    assert [c["id"] for c in ranked(entries, "real_distance")] == ["c", "a", "b"]
    assert tournament(entries, 3, np.random.default_rng(0), "real_distance")["id"] == "c"


def test_selection_by_rating_ranks_by_rating():
    pool = population(4)
    pool[3]["rating"] = -10.0  # the fittest by fitness is the worst by rating
    assert next_move(pool[3], pool, np.random.default_rng(0), key="rating").breeds
    assert not next_move(pool[0], pool, np.random.default_rng(0), key="rating").breeds


def pair_and_adam(seed: int, lr: float = 1e-3):
    torch.manual_seed(seed)
    genome = random_genome(np.random.default_rng(seed), MutationConfig(), 16, 5)
    pair = build_pair(genome)
    optimizer = make_optimizer(OptimizerGene("adam", lr), pair.generator.parameters())
    pair.generator.sample(16, torch.Generator().manual_seed(0)).pow(2).mean().backward()
    optimizer.step()
    return genome, pair, optimizer


def test_optimizer_state_is_carried_where_shapes_fit_and_the_childs_learning_rate_kept():
    genome, pair, optimizer = pair_and_adam(0, lr=1e-3)
    child = build_pair(genome)
    fresh = make_optimizer(OptimizerGene("adam", 5e-4), child.generator.parameters())
    assert carry_optimizer_state(fresh, optimizer.state_dict())
    assert fresh.param_groups[0]["lr"] == 5e-4
    for a, b in zip(optimizer.state_dict()["state"].values(), fresh.state_dict()["state"].values()):
        assert torch.equal(a["exp_avg"], b["exp_avg"])
    other_genome = next(g for s in range(1, 50) if (g := random_genome(np.random.default_rng(s), MutationConfig(),
                                                                         16, 5)).generator != genome.generator)
    other = make_optimizer(OptimizerGene("adam", 1e-3), build_pair(other_genome).generator.parameters())
    assert not carry_optimizer_state(other, optimizer.state_dict())  # another architecture: fresh state
    assert not other.state_dict()["state"]
    assert not carry_optimizer_state(other, None)


def test_the_learning_rate_decays_linearly_over_the_budget():
    cfg = ArenaConfig(lr_final=0.1)
    assert [cfg.lr_scale(p) for p in (-1, 0, 0.5, 1, 2)] == pytest.approx([1, 1, 0.55, 0.1, 0.1])
    assert ArenaConfig(lr_final=1.0).lr_scale(0.7) == 1 and ArenaConfig().lr_final == 0.1  # default: to 10 %
    with pytest.raises(ValueError, match="arena.lr_final must be in \\(0, 1\\]; got 0"):
        ArenaConfig(lr_final=0)


def entry(_id: str, player: str, ops: list[dict] | None = None, **more) -> dict:
    return {"id": _id, "player": player, "generation": 0, "dataset": "ring8", "genome": {}, "ops": ops or [],
            "parent_fitness": None, "age": 0, **more}


def test_a_continued_pair_keeps_its_standing_in_the_registry_and_a_bred_one_starts_afresh():
    reg = Registry("t", window=4)
    reg.publish(entry("a0", "a"), ["w"])
    reg.publish(entry("b0", "b"), ["w"])
    reg.report([{"generator": "a0", "discriminator": "b0", "fooled": 0.9, "real_accepted": 0.5}] * 3)
    reg.publish(entry("a1", "a", [{"op": "continue", "from": "a0"}]), ["w"])
    reg.publish(entry("b1", "b", [{"op": "crossover"}]), ["w"])
    standings = reg.fitness()
    assert standings["a1"]["fitness"] == pytest.approx(0.9) and standings["a1"]["g_matches"] == 3
    assert standings["a1"]["rating"] == standings["a0"]["rating"]
    assert standings["b1"]["fitness"] is None and standings["b1"]["d_matches"] == 0
    assert [c["id"] for c in reg.candidates("ring8")] == ["a1", "b1"]  # a player's place is kept


def test_the_registry_keeps_recently_retired_standings_whole_but_caches_only_the_live_ones():
    """Memory per individual stays small over hours: recently retired individuals (fewer than `retired_whole`)
    keep their standing (the run's record reads it at the end), not a cached copy of what it says; a late match
    still counts for them."""
    reg = Registry("t", window=4)
    for g in range(50):
        reg.publish(entry(f"a{g}", "a", [{"op": "continue", "from": f"a{g - 1}"}] if g else []), ["w"])
        reg.publish(entry(f"b{g}", "b"), ["w"])
        reg.report([{"generator": f"a{g}", "discriminator": f"b{g}", "fooled": 0.25, "real_accepted": 1.0}])
    assert set(reg._fitness_of) <= {"a49", "b49"} and len(reg.standings) == 100
    reg.report([{"generator": "a3", "discriminator": "b3", "fooled": 1.0, "real_accepted": 1.0}])  # a late one
    assert set(reg._fitness_of) <= {"a49", "b49"}
    standings = reg.fitness()
    assert standings["a49"]["g_matches"] == 50 and standings["a49"]["fitness"] == pytest.approx(0.25)
    # a3 went on from a0…a2: its window of 4 holds three of their 0.25s and the late 1.0
    assert standings["a3"]["g_matches"] == 5 and standings["a3"]["fitness"] == pytest.approx(0.4375)


def test_individuals_retired_long_ago_keep_only_their_final_standing():
    """Past `retired_whole` retirements an individual keeps only what its standing says: the final standings
    and the mutation effects stay what a registry that keeps every standing whole gives; a late match against a
    compacted one is counted, and moves only its other side, whose standing is whole."""
    def played(retired_whole: int) -> Registry:
        reg = Registry("t", window=4, retired_whole=retired_whole)
        for g in range(30):
            reg.publish(entry(f"a{g}", "a", [{"op": "continue", "from": f"a{g - 1}"}] if g else []), ["w"])
            reg.publish(entry(f"b{g}", "b", [{"op": "change_lr" if g % 2 else "clone"}], parent_fitness=0.5), ["w"])
            reg.report([{"generator": f"a{g}", "discriminator": f"b{g}", "fooled": (g % 5) / 4, "real_accepted": 1.0},
                        {"generator": f"b{g}", "discriminator": f"a{g}", "fooled": (g % 3) / 2, "real_accepted": 0.5}])
        return reg

    whole, compact = played(10**6), played(16)
    assert len(compact.standings) == 18 and len(compact.final) == 42 and len(compact.retired) == 16
    assert compact.fitness() == whole.fitness() and len(compact.fitness()) == 60
    assert compact.effects() == whole.effects()
    assert set(compact.ratings.generators) == set(compact.standings) and set(compact.lineage) == set(compact.standings)
    compact.report([{"generator": "a3", "discriminator": "b29", "fooled": 1.0, "real_accepted": 1.0}])
    assert compact.late == 1 and compact.fitness()["a3"] == whole.fitness()["a3"]
    assert compact.fitness()["b29"]["d_matches"] == whole.fitness()["b29"]["d_matches"] + 1
    assert compact.fitness()["b29"]["d_rating"] == whole.fitness()["b29"]["d_rating"]  # no rating against a final one
    assert "late matches=1" in repr(compact)
    compact.report([{"generator": "a25", "discriminator": "b29", "fooled": 1.0, "real_accepted": 1.0}])
    assert compact.late == 1 and compact.fitness()["a25"]["g_matches"] == whole.fitness()["a25"]["g_matches"] + 1


def test_settle_reports_beats_and_decides_in_one_call():
    reg = Registry("t", window=4)
    for i in range(4):
        reg.publish(entry(f"e{i}", f"p{i}", age=5), ["w"])
    matches = [{"generator": f"e{i}", "discriminator": f"e{j}", "fooled": i / 4, "real_accepted": 0.5}
               for i in range(4) for j in range(4) if i != j]
    settled = reg.settle(matches, "p0", {"generation": 3}, entry("e0", "p0", age=5), seed=1)
    assert set(settled["standings"]) == {f"e{i}" for i in range(4)}
    assert settled["stopping"] is False and reg.players()["p0"]["generation"] == 3
    assert settled["move"].breeds and "e0" not in {p["id"] for p in settled["move"].parents}
    assert not reg.settle([], "p3", {}, entry("e3", "p3", age=5), seed=1)["move"].breeds
    reg.stop()
    assert reg.settle([], "p0", {}, entry("e0", "p0", age=5))["move"] is None


def test_the_champion_is_first_by_the_arenas_own_standing():
    pool = population(5)
    assert champion(pool, "fitness")["id"] == "e4"
    pool[4]["rating"] = -1.0
    assert champion(pool, "rating")["id"] == "e3"
    unrated = [{"id": "u", "fitness": None}, {"id": "r", "fitness": 0.1}]
    assert champion(unrated)["id"] == "r"  # the unrated come last
    with pytest.raises(ValueError, match="no individual"):
        champion([])
    with pytest.raises(ValueError, match="unknown standing 'modes'"):
        champion(pool, "modes")  # a judge's metric is no standing


def test_real_data_overrules_a_standing_topped_by_a_collapsed_generator():
    """Of those measured (the first few by standing), the nearest to real data; ties to the better
    standing; nobody measured: the standing alone."""
    pool = population(5)  # e4 first by fitness, then e3, e2
    assert champion(pool, "fitness", {"e4": 0.09, "e3": 0.004, "e2": 0.006})["id"] == "e3"
    assert champion(pool, "fitness", {"e4": 0.01, "e3": 0.01})["id"] == "e4"
    assert champion(pool, "fitness", {})["id"] == "e4"
    records = [{"_id": "a", "fitness": 0.9}, {"_id": "b", "fitness": 0.1}]
    assert champion(records, "fitness", {"a": 0.5, "b": 0.1})["_id"] == "b"


def test_the_round_is_fitness_filtered_and_discriminators_are_chosen_on_its_second_judgement():
    from arena.rounds import round_pool

    pool = population(8)
    drawn = round_pool(pool, "e7", 4, np.random.default_rng(0))
    assert [c["id"] for c in drawn] == ["e6", "e5", "e4"]  # the fittest others, the player's own left out
    unrated = [{"id": f"u{i}"} for i in range(6)]
    assert len({tuple(c["id"] for c in round_pool(unrated, "u0", 3, np.random.default_rng(s))) for s in range(8)}) > 1

    reg = Registry("t", window=8)
    for name in ("a", "b", "c"):
        reg.publish(entry(name, name), ["w"])
    # b catches everything in duels, but a catches more on the round's second judgement
    reg.report([{"generator": "c", "discriminator": "b", "fooled": 0.0, "real_accepted": 1.0, "kind": "duel"}] * 3 +
               [{"generator": "c", "discriminator": "a", "fooled": 0.4, "real_accepted": 1.0, "kind": "duel"},
                {"generator": "c", "discriminator": "a", "fooled": 0.1, "real_accepted": 1.0, "kind": "round2"},
                {"generator": "c", "discriminator": "b", "fooled": 0.6, "real_accepted": 1.0, "kind": "round2"},
                {"generator": "a", "discriminator": "c", "fooled": 0.5, "real_accepted": 1.0, "kind": "round"}])
    standings = reg.fitness()
    assert standings["b"]["d_fitness"] > standings["a"]["d_fitness"]
    assert standings["a"]["d_round_fitness"] > standings["b"]["d_round_fitness"]
    assert standings["c"]["d_round_fitness"] == standings["c"]["d_fitness"]  # no second round yet: all matches
    for seed in range(10):
        move = next_move({"id": "c", "fitness": 0.0, "age": 9},
                         [{**e, **standings[e["id"]], "age": 9} for e in reg.candidates()],
                         np.random.default_rng(seed), tournament_size=3)
        assert move.breeds and move.d_parents[0]["id"] == "a"


def test_fakes_that_fooled_one_discriminator_reach_the_others_through_the_registry():
    reg = Registry("t", shared_fakes=8)
    mine, theirs = torch.zeros(3, 2), torch.ones(5, 2)
    back = reg.settle([], "p0", {}, None, seed=1, fakes=theirs)["fakes"]
    assert back.shape == (5, 2) and torch.equal(back, theirs[:5])  # only theirs so far
    back = reg.settle([], "p1", {}, None, seed=2, fakes=mine)["fakes"]
    assert back.shape == (3, 2) and len(reg.fakes[None]) == 8  # bounded: at capacity
    assert Registry("t").settle([], "p0", {}, None, fakes=mine)["fakes"] is None  # sharing off
    with pytest.raises(ValueError, match=r"arena.shared_fakes \(64\) needs a replay buffer"):
        ArenaConfig(shared_fakes=64, replay=0)


def test_a_continued_pair_is_the_same_pair_and_a_clone_child_carries_its_parents_optimizer_state():
    from arena.offspring import Offspring, bred, continued, optimizers_for

    genome, pair, optimizer = pair_and_adam(3)
    current = Offspring(genome, pair, optimizers=optimizers_for(genome, pair), age=4)
    going_on = continued(current, "r/p/7", 0.4)
    assert going_on.pair is pair and going_on.optimizers is current.optimizers and going_on.age == 5
    assert going_on.ops == [{"op": "continue", "from": "r/p/7"}] and going_on.inherited["share"] == 1.0
    assert going_on.g_parents == going_on.d_parents == ["r/p/7"] and going_on.parent_fitness == 0.4

    states = {**pair.state_dicts(), "g_optimizer": optimizer.state_dict(), "d_optimizer": None}
    parent = {"id": "r/q/2", "genome": genome.to_dict(), "fitness": 0.5}
    clone = bred([parent], [], [states], np.random.default_rng(0),
                 MutationConfig(p_mutate=0.0, p_crossover=0.0))
    assert clone.ops == [{"op": "clone"}] and clone.genome == genome.stamped(0)
    assert clone.inherited["share"] == 1.0 and clone.parent_fitness == 0.5 and clone.age == 0
    assert clone.g_parents == clone.d_parents == ["r/q/2"]
    carried = clone.optimizers[0].state_dict()["state"]
    assert len(carried) == len(optimizer.state_dict()["state"]) > 0
    for a, b in zip(optimizer.state_dict()["state"].values(), carried.values()):
        assert torch.equal(a["exp_avg"], b["exp_avg"])  # the generator's moments came along
        assert a["exp_avg"].data_ptr() != b["exp_avg"].data_ptr()  # copied: the parent's may be shared memory
    before = [t.clone() for t in (v["exp_avg"] for v in states["g_optimizer"]["state"].values())]
    clone.pair.generator.sample(16, torch.Generator().manual_seed(1)).pow(2).mean().backward()
    clone.optimizers[0].step()  # the child learns; its parent's published state stays as it was
    assert all(torch.equal(b, v["exp_avg"]) for b, v in zip(before, states["g_optimizer"]["state"].values()))
    assert not clone.optimizers[1].state_dict()["state"]  # the parent had none for its discriminator


def test_the_second_judgement_records_only_the_own_pairs_cells():
    from arena.datasets import ring8
    from arena.rounds import all_versus_all

    pairs = [pair_and_adam(seed)[1] for seed in range(3)]
    ids = ["me", "b", "c"]
    rng = torch.Generator().manual_seed(0)
    first = all_versus_all(pairs, ids, ring8(), 16, rng, "r", "round")
    second = all_versus_all(pairs, ids, ring8(), 16, rng, "r", "round2", own_only=True)
    assert len(first) == 6 and {(m["generator"], m["discriminator"]) for m in second} == \
        {("me", "b"), ("me", "c"), ("b", "me"), ("c", "me")}


def test_settle_returns_the_own_standing_and_a_resumed_or_late_born_pair_keeps_its_standing():
    reg = Registry("t", window=4)
    reg.publish(entry("a0", "a"), ["w"])
    reg.publish(entry("b0", "b"), ["w"])
    reg.report([{"generator": "a0", "discriminator": "b0", "fooled": 0.75, "real_accepted": 0.5}])
    mine = reg.settle([], "a", {}, entry("a0", "a"), seed=0)["standings"]["a0"]  # untouched, still there
    assert mine["fitness"] == 0.75
    reg.publish(entry("a1", "a", [{"op": "resume", "from": "a0"}]), ["w"])
    assert reg.fitness()["a1"]["fitness"] == 0.75  # a resumed pair is the same pair
    # after a registry restart, the continued pair's matches may arrive before its birth
    reg.report([{"generator": "x", "discriminator": "a2", "fooled": 0.0, "real_accepted": 1.0}])
    reg.settle([], "a", {}, entry("a2", "a", [{"op": "continue", "from": "a1"}]), seed=0)
    kept = reg.fitness()["a2"]
    assert kept["d_matches"] == 1 and kept["fitness"] is None  # it had matches of its own: those are kept
    reg.settle([], "a", {}, entry("a3", "a", [{"op": "continue", "from": "a1"}]), seed=0)
    assert reg.fitness()["a3"]["fitness"] == 0.75  # born at settle, before its publish: inherited


def test_a_restarted_registry_rebuilds_standings_and_second_round_judgements_from_the_record(mongo_uri, db_name):
    from storage import records

    db = records.connect(mongo_uri, db_name)

    def at(seconds: float) -> dt.datetime:
        return dt.datetime(2026, 1, 1) + dt.timedelta(seconds=seconds)

    db.individuals.insert_many([
        {"_id": "a0", "run_id": "rb", "player": "a", "generation": 0, "ops": [], "created_at": at(0)},
        {"_id": "b0", "run_id": "rb", "player": "b", "generation": 0, "ops": [], "created_at": at(0)},
        {"_id": "a1", "run_id": "rb", "player": "a", "generation": 1, "ops": [{"op": "continue", "from": "a0"}],
         "created_at": at(5)}])
    db.matches.insert_many([
        {"_id": "m1", "run_id": "rb", "generator": "a0", "discriminator": "b0", "fooled": 0.5, "real_accepted": 1.0,
         "kind": "duel", "at": at(1)},
        {"_id": "m2", "run_id": "rb", "generator": "b0", "discriminator": "a1", "fooled": 0.25, "real_accepted": 1.0,
         "kind": "round2", "at": at(6)}])
    live = Registry("rb", window=4)
    for doc in db.individuals.find({}, sort=[("created_at", 1)]):
        live._born(doc["_id"], doc["ops"], None)
        if doc["_id"] == "a0":
            live.report([db.matches.find_one({"_id": "m1"})])
    live.report([db.matches.find_one({"_id": "m2"})])
    rebuilt = Registry("rb", window=4, mongo_uri=mongo_uri, mongo_db=db_name).fitness()
    assert rebuilt == live.fitness()
    assert rebuilt["a1"]["fitness"] == 0.5 and rebuilt["a1"]["d_round_fitness"] == pytest.approx(0.875)
    # Rebuilt with no retired standing kept whole: each player's newest goes on whole, the rest is compacted.
    compact = Registry("rb", window=4, mongo_uri=mongo_uri, mongo_db=db_name, retired_whole=0)
    assert set(compact.final) == {"a0"} and set(compact.standings) == {"b0", "a1"} and compact.fitness() == rebuilt
    # The newest goes on until its player publishes its successor: then it is retired as any other.
    compact.publish(entry("a2", "a", [{"op": "continue", "from": "a1"}]), ["w"])
    compact.publish(entry("b0", "b"), ["w"])  # b re-publishes its newest after the restart: it goes on
    assert set(compact.final) == {"a0", "a1"} and set(compact.standings) == {"b0", "a2"}


def test_perturb_copies_one_survivor_chosen_by_the_culling_standing():
    pool = population(5)  # 5 rated: the bottom 2 are culled, a tournament of 2 of the 3 survivors
    for i, entry in enumerate(pool):
        entry["real_distance"] = 0.1 * (5 - i)  # e0, the least fit, is also the furthest from real data
    pool[2]["real_distance"] = 0.01  # e2, a middling fitness, is the nearest
    picked = set()
    for seed in range(20):
        move = next_move(pool[0], pool, np.random.default_rng(seed), cull="real", explore="perturb",
                         tournament_size=2)
        assert move.breeds and len(move.parents) == 1 and move.d_parents == ()
        picked.add(move.parents[0]["id"])
    # Survivors e2, e3, e4 at distances 0.01, 0.2, 0.1: e3 loses every tournament of two by distance (and
    # by fitness it would win against e2).
    assert picked == {"e2", "e4"}
    assert not next_move(pool[4], pool, np.random.default_rng(0), cull="real", explore="perturb").breeds
    by_fitness = next_move(pool[0], pool, np.random.default_rng(0), explore="perturb", tournament_size=3)
    assert [p["id"] for p in by_fitness.parents] == ["e4"]  # all 3 survivors by fitness: the fittest
    for seed in range(10):  # always: a tournament over everyone by the selection's key, not by distance
        always = next_move(pool[0], pool, np.random.default_rng(seed), exploit="always", explore="perturb",
                           tournament_size=5)
        assert [p["id"] for p in always.parents] == ["e4"] and always.d_parents == ()
    with pytest.raises(ValueError, match="unknown explore 'mutate'"):
        next_move(pool[0], pool, np.random.default_rng(0), explore="mutate")
    with pytest.raises(ValueError, match="arena.explore must be one of breed, perturb; got 'pbt'"):
        ArenaConfig(explore="pbt")


def test_a_copy_costs_at_most_copy_cost_times_the_culled_pairs_step_and_none_affordable_trains_on():
    pool = population(5)
    for i, entry in enumerate(pool):
        entry["real_distance"] = 0.1 * (5 - i)  # e0 and e1 are culled; e2, e3, e4 survive
    pool[0]["step_cpu_ms"] = 2.0
    pool[2]["step_cpu_ms"], pool[3]["step_cpu_ms"], pool[4]["step_cpu_ms"] = 2.5, 6.0, None  # e4: not measured
    picked = set()
    for seed in range(20):
        move = next_move(pool[0], pool, np.random.default_rng(seed), cull="real", explore="perturb",
                         tournament_size=1, copy_cost=1.5)  # a tournament of one: any entrant can be copied
        picked.add(move.parents[0]["id"])
    assert picked == {"e2", "e4"}  # e3's step costs 3 times e0's; e4's unknown cost does not rule it out
    anyone = {next_move(pool[0], pool, np.random.default_rng(seed), cull="real", explore="perturb",
                        tournament_size=1).parents[0]["id"] for seed in range(30)}
    assert anyone == {"e2", "e3", "e4"}  # copy_cost 0: any survivor
    pool[4]["step_cpu_ms"] = 9.0
    assert not next_move(pool[0], pool, np.random.default_rng(0), cull="real", explore="perturb",
                         copy_cost=1.0).breeds  # nobody affordable: the culled pair trains on
    assert affordable(pool[2:], None, 1.0) == pool[2:]  # its own cost unknown: any survivor
    for good in (0, 1, 1.25, 100):
        assert ArenaConfig(copy_cost=good).copy_cost == good
    for bad in (0.5, -1, 101, True, "2"):
        with pytest.raises(ValueError, match=rf"arena.copy_cost must be 0 \(any survivor\) or between 1 and 100; "
                                             rf"got {re.escape(repr(bad))}"):
            ArenaConfig(copy_cost=bad)


def test_the_player_publishes_its_step_cost_and_passes_copy_cost_to_the_game():
    """The wiring the pure test above cannot see: the player's settings of next_move and its published entry."""
    from types import SimpleNamespace
    import inspect
    from agents.player import Player
    game = player_game(ArenaConfig(copy_cost=1.25), (1, 28, 28))
    assert game["copy_cost"] == 1.25 and game["explore"] == "perturb" and game["exploit"] == "never"
    assert game["ready"] == 10  # by the data: images
    vector = player_game(ArenaConfig(exploit="auto", copy_cost=1.25), (2,))
    assert (vector["exploit"], vector["ready"]) == ("truncation", 60)
    assert set(game) <= set(inspect.signature(next_move).parameters)  # each setting is one next_move reads
    player = SimpleNamespace(name="p0", generation=3, spec=SimpleNamespace(dataset="ring8"), real_distance=0.2,
                             step_cpu_ms=4.5)
    child = SimpleNamespace(genome=SimpleNamespace(to_dict=dict), ops=[], parent_fitness=None, age=2)
    assert Player._entry(player, child, "r/p0/3")["step_cpu_ms"] == 4.5


def test_a_player_shares_its_fooling_fakes_on_vector_data_and_not_on_images_by_default(monkeypatch):
    """The wiring of `shared_fakes` by the data (`Player._settle`): what the player sends the registry."""
    from types import SimpleNamespace
    import ray
    from agents.player import Player
    sent = []

    def settle(matches, name, status, entry, seed, fakes, **game):
        sent.append(fakes)
        return {"fakes": None}
    monkeypatch.setattr(ray, "get", lambda ref: ref)
    for shape in ((1, 28, 28), (2,)):
        player = SimpleNamespace(arena=ArenaConfig(), data=SimpleNamespace(shape=shape), fooling=torch.zeros(3, 2),
                                 registry=SimpleNamespace(settle=SimpleNamespace(remote=settle)), name="p0", status={},
                                 entry={}, _seed=lambda: 0, _game=dict)
        Player._settle(player, [])
    assert sent[0] is None and sent[1] is not None and len(sent[1]) == 3
    with pytest.raises(ValueError, match="pool of shared fakes needs a capacity"):
        Registry("t", shared_fakes=-1)


def test_a_perturbed_child_is_its_parent_whole_at_a_perturbed_learning_rate():
    genome, pair, _ = pair_and_adam(3)
    optimizers = optimizers_for(genome, pair)
    # A step for each network, so both optimizers have state to carry.
    pair.generator.sample(16, torch.Generator().manual_seed(0)).pow(2).mean().backward()
    pair.discriminator(torch.randn(16, *genome.data_shape)).pow(2).mean().backward()
    for optimizer in optimizers:
        optimizer.step()
    state = {**pair.state_dicts(), "g_optimizer": optimizers[0].state_dict(), "d_optimizer": optimizers[1].state_dict()}
    seen = set()
    for seed in range(20):
        child = perturbed({"id": "p/7", "genome": genome.to_dict(), "fitness": 0.4}, state,
                          np.random.default_rng(seed), MutationConfig())
        (op,) = child.ops
        assert op["op"] == "perturb"
        for side, parent_opt, child_opt in (("g", optimizers[0], child.optimizers[0]),
                                            ("d", optimizers[1], child.optimizers[1])):
            before, after = op[f"{side}_lr"]
            assert before == getattr(genome, f"{side}_optimizer").lr == parent_opt.param_groups[0]["lr"]
            assert after == getattr(child.genome, f"{side}_optimizer").lr == child_opt.param_groups[0]["lr"]
            seen.add(round(after / before, 3))
            parent_moments = [s["exp_avg"] for s in parent_opt.state_dict()["state"].values()]
            child_moments = [s["exp_avg"] for s in child_opt.state_dict()["state"].values()]
            assert parent_moments and len(child_moments) == len(parent_moments)
            assert all(torch.equal(a, b) and a.data_ptr() != b.data_ptr() for a, b in zip(parent_moments, child_moments))
        assert child.genome.generator == genome.generator and child.genome.discriminator == genome.discriminator
        for a, b in zip(pair.generator.state_dict().values(), child.pair.generator.state_dict().values()):
            assert torch.equal(a, b) and a.data_ptr() != b.data_ptr()
        assert child.parents == child.g_parents == child.d_parents == ["p/7"] and child.age == 0
    assert seen == {0.8, 1.25}
    lr = genome.g_optimizer.lr
    capped = perturbed({"id": "p/7", "genome": genome.to_dict()}, state, np.random.default_rng(0),
                       MutationConfig(min_lr=lr, max_lr=lr), steps=37)
    assert capped.genome.g_optimizer.lr == lr and capped.ops[0]["g_lr"] == [lr, lr]  # within the mutation limits
    assert capped.genome.steps == 37  # a player's own loop cost under steps_spread
