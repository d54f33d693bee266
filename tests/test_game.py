"""The arena game: the one bout in each of its uses, all-versus-all scoring, ratings, matchmaking,
fake replay, sliding-window fitness, elimination curve and lineage prevalence."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import torch

from arena.analysis import elimination_curve, lineage_prevalence
from arena.bout import bout, judge
from arena.datasets import ring8
from arena.fitness import Standing
from arena.ratings import Ratings
from arena.replay import ReplayBuffer
from arena.rounds import match_records, round_pool
from arena.selection import choose_opponents, tournament
from genome.build import build_pair, make_optimizer
from genome.genes import Genome, Layer, OptimizerGene


def pair(seed=0):
    torch.manual_seed(seed)
    layers = (Layer("dense", 16),)
    genome = Genome(generator=layers, discriminator=layers, latent_dim=4, latent_dist="normal",
                    g_optimizer=OptimizerGene("adam", 1e-2), d_optimizer=OptimizerGene("adam", 1e-2),
                    batch_size=16, steps=5)
    return build_pair(genome), genome


def constant(score: float):
    p, _ = pair()
    with torch.no_grad():
        p.discriminator.head[-1].weight.zero_()
        p.discriminator.head[-1].bias.fill_(score)
    return p.discriminator


def params(module):
    return [t.detach().clone() for t in module.parameters()]


def changed(before, module):
    return any(not torch.equal(a, b) for a, b in zip(before, module.parameters()))


RNG = torch.Generator


def test_training_a_pair_changes_both_networks_and_traces_every_step():
    p, genome = pair()
    g0, d0 = params(p.generator), params(p.discriminator)
    result = bout([p.generator], [p.discriminator], ring8(), 7, 16, RNG().manual_seed(0),
                  g_optimizer=make_optimizer(genome.g_optimizer, p.generator.parameters()),
                  d_optimizer=make_optimizer(genome.d_optimizer, p.discriminator.parameters()), first_step=40)
    assert [r["step"] for r in result.rows] == list(range(40, 47)) and result.fooled is None
    assert changed(g0, p.generator) and changed(d0, p.discriminator)


def test_cross_training_changes_only_the_side_with_an_optimizer():
    own, genome = pair(0)
    others = [pair(s)[0] for s in (1, 2)]
    before = [params(o.discriminator) for o in others]
    g0, d0 = params(own.generator), params(own.discriminator)
    bout([own.generator], [o.discriminator for o in others], ring8(), 5, 16, RNG().manual_seed(0),
         g_optimizer=make_optimizer(genome.g_optimizer, own.generator.parameters()))
    assert changed(g0, own.generator) and not changed(d0, own.discriminator)
    assert not any(changed(b, o.discriminator) for b, o in zip(before, others))
    gens = [params(o.generator) for o in others]
    bout([o.generator for o in others], [own.discriminator], ring8(), 5, 16, RNG().manual_seed(0),
         d_optimizer=make_optimizer(genome.d_optimizer, own.discriminator.parameters()))
    assert changed(d0, own.discriminator)
    assert not any(changed(b, o.generator) for b, o in zip(gens, others))


def test_two_phase_training_holds_the_discriminator_back_at_first():
    p, genome = pair()
    d0 = params(p.discriminator)
    optimizers = dict(g_optimizer=make_optimizer(genome.g_optimizer, p.generator.parameters()),
                      d_optimizer=make_optimizer(genome.d_optimizer, p.discriminator.parameters()))
    rows = bout([p.generator], [p.discriminator], ring8(), 4, 16, RNG().manual_seed(0), generator_first=4,
                **optimizers).rows
    assert not changed(d0, p.discriminator) and all(r["d_loss"] == 0.0 for r in rows)
    bout([p.generator], [p.discriminator], ring8(), 5, 16, RNG().manual_seed(0), generator_first=4, **optimizers)
    assert changed(d0, p.discriminator)


def test_replayed_fakes_reach_the_discriminator_as_fakes():
    p, genome = pair()
    buffer = ReplayBuffer(64)
    buffer.add(torch.full((64, 2), 3.0), RNG().manual_seed(0))
    d_optimizer = make_optimizer(genome.d_optimizer, p.discriminator.parameters())
    probe = torch.full((1, 2), 3.0)
    start = p.discriminator(probe).item()
    bout([p.generator], [p.discriminator], ring8(), 60, 16, RNG().manual_seed(0), d_optimizer=d_optimizer,
         replay=buffer, replay_share=1.0)
    assert p.discriminator(probe).item() < start - 1  # it learned that the replayed point is fake


def test_a_judged_bout_scores_every_generator_against_every_discriminator():
    generators = [pair(s)[0].generator for s in range(3)]
    result = judge(generators, [constant(5.0), constant(-5.0)], 50, RNG().manual_seed(0))
    assert result.fooled.shape == (3, 2)
    assert (result.fooled[:, 0] == 1.0).all() and (result.fooled[:, 1] == 0.0).all()
    assert len(result.fooling[0]) == 150 and len(result.fooling[1]) == 0


def test_match_records_leave_out_self_matches_and_have_stable_ids():
    fooled = np.array([[0.1, 0.2], [0.3, 0.4]])
    records = match_records(fooled, ["a", "b"], ["a", "b"], [0.9, 0.8], "r", "a", "round", 10)
    assert [(r["generator"], r["discriminator"], r["fooled"]) for r in records] == [("a", "b", 0.2), ("b", "a", 0.3)]
    assert records[0]["real_accepted"] == 0.8 and len({r["_id"] for r in records}) == 2
    assert records == match_records(fooled, ["a", "b"], ["a", "b"], [0.9, 0.8], "r", "a", "round", 10)


def test_round_pool_is_bounded_and_leaves_out_the_player():
    candidates = [{"id": f"i{k}"} for k in range(10)]
    pool = round_pool(candidates, "i3", 4, np.random.default_rng(0))
    assert len(pool) == 3 and "i3" not in {c["id"] for c in pool}


def test_ratings_move_the_winner_up_and_the_loser_down_in_their_own_roles():
    ratings = Ratings()
    before = ratings.standing("g"), ratings.standing("d")
    ratings.record("g", "d", fooled=0.9)
    after_g, after_d = ratings.standing("g"), ratings.standing("d")
    assert after_g["mu"] > before[0]["mu"] and after_g["sigma"] < 25 / 3
    assert after_d["d_rating"] < before[1]["d_rating"]
    # each individual is rated apart as generator and as discriminator: g's discriminator and d's
    # generator took no part
    assert after_g["d_rating"] == before[0]["d_rating"] and after_d["rating"] == before[1]["rating"]
    for _ in range(5):
        ratings.record("g", "d", fooled=0.8)
    assert ratings.standing("g")["rating"] > ratings.standing("d")["d_rating"]
    even = Ratings()
    even.record("a", "b", fooled=0.5)
    assert even.standing("a")["rating"] == pytest.approx(even.standing("b")["d_rating"])


def test_fooling_a_strong_discriminator_rates_higher_than_fooling_a_weak_one():
    ratings = Ratings()
    for k in range(6):  # "strong" catches six generators, "weak" is fooled by six
        ratings.record(f"caught{k}", "strong", fooled=0.1)
        ratings.record(f"fooler{k}", "weak", fooled=0.9)
    ratings.record("a", "strong", fooled=0.9)
    ratings.record("b", "weak", fooled=0.9)
    assert ratings.standing("a")["rating"] > ratings.standing("b")["rating"]


def test_a_continued_pair_inherits_its_ratings():
    ratings = Ratings()
    for _ in range(4):
        ratings.record("p", "other", fooled=0.9)
        ratings.record("other", "p", fooled=0.1)
    ratings.inherit("p2", "p")
    assert ratings.standing("p2") == {**ratings.standing("p")}
    ratings.inherit("q2", "never-rated")  # nothing to inherit: a fresh rating
    assert ratings.standing("q2") == Ratings().standing("x")


def test_fitness_reads_a_sliding_window_of_recent_matches():
    standing = Standing(window=3)
    for fooled in (1.0, 1.0, 0.0, 0.0, 0.0):
        standing.as_generator(fooled)
    assert standing.fitness == 0.0 and standing.g_matches == 5
    standing.as_discriminator(0.2, 0.6)
    assert standing.d_fitness == pytest.approx(0.5 * 0.8 + 0.5 * 0.6)
    with pytest.raises(ValueError, match="window"):
        Standing(window=0)


def test_replay_buffer_stays_within_its_capacity():
    buffer, rng = ReplayBuffer(10), RNG().manual_seed(0)
    assert buffer.sample(4, rng) is None
    for k in range(5):
        buffer.add(torch.full((4, 2), float(k)), rng)
    assert len(buffer) == 10 and buffer.sample(6, rng).shape == (6, 2)
    assert (buffer.samples == 4.0).any(), "the newest fakes never got in"
    off = ReplayBuffer(0)
    off.add(torch.ones(3, 2), rng)
    assert len(off) == 0
    with pytest.raises(ValueError, match="-1"):
        ReplayBuffer(-1)


CANDIDATES = [{"id": f"i{k}", "player": f"p{k}", "rating": float(k), "mu": 20.0 + k, "sigma": 8.0 - k}
              for k in range(6)]


@pytest.mark.parametrize("mode", ["random", "all", "k_best", "prioritized"])
def test_matchmaking_never_picks_the_player_itself(mode):
    picks = choose_opponents(CANDIDATES, "p0", 2, np.random.default_rng(0), mode)
    assert "p0" not in {p["player"] for p in picks}
    assert len(picks) == (5 if mode == "all" else 2) and len({p["id"] for p in picks}) == len(picks)


def test_k_best_picks_the_highest_rated_and_prioritized_prefers_even_uncertain_matches():
    picks = choose_opponents(CANDIDATES, "p0", 2, np.random.default_rng(0), "k_best")
    assert [p["id"] for p in picks] == ["i5", "i4"]
    counts = {c["id"]: 0 for c in CANDIDATES}
    rng = np.random.default_rng(0)
    for _ in range(400):
        counts[choose_opponents(CANDIDATES, "p2", 1, rng, "prioritized")[0]["id"]] += 1
    assert counts["i1"] > counts["i5"]  # close in rating and more uncertain
    with pytest.raises(ValueError, match="'swiss'"):
        choose_opponents(CANDIDATES, "p0", 2, np.random.default_rng(0), "swiss")


def test_tournament_by_rating():
    assert tournament(CANDIDATES, 6, np.random.default_rng(0), key="rating")["id"] == "i5"
    with pytest.raises(ValueError, match="'age'"):
        tournament(CANDIDATES, 2, np.random.default_rng(0), key="age")


def at(seconds):
    return dt.datetime(2026, 1, 1) + dt.timedelta(seconds=seconds)


def test_elimination_curve_counts_discriminators_still_fooled():
    matches = [{"discriminator": "a", "fooled": 0.9, "at": at(1)}, {"discriminator": "b", "fooled": 0.2, "at": at(2)},
               {"discriminator": "a", "fooled": 0.3, "at": at(3)}, {"discriminator": "c", "fooled": 0.7, "at": at(4)}]
    curve = elimination_curve(matches)
    assert [c["met"] for c in curve] == [1, 2, 2, 3]
    assert [c["fooled_share"] for c in curve] == [1.0, 0.5, 0.5, pytest.approx(2 / 3)]


def test_lineage_prevalence_follows_descent_through_either_parent():
    individuals = [
        {"_id": "a0", "player": "p0", "parents": [], "created_at": at(0)},
        {"_id": "b0", "player": "p1", "parents": [], "created_at": at(1)},
        {"_id": "a1", "player": "p0", "parents": ["b0"], "created_at": at(2)},
        {"_id": "b1", "player": "p1", "parents": ["b0", "a0"], "created_at": at(3)},
    ]
    rows = lineage_prevalence(individuals, roots=["a0", "b0"])  # change points: a share lasts to its next row
    latest = {}
    for row in rows:
        latest[row["lineage"], row["at"]] = row["prevalence"]
    assert {k: v for k, v in latest.items() if k[1] == at(3)} == {("a0", at(3)): 0.5}  # b0's stays 1
    assert {k: v for k, v in latest.items() if k[1] == at(2)} == {("a0", at(2)): 0.0, ("b0", at(2)): 1.0}
