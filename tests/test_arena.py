"""Data sets, bouts, duels, standings and selection."""

from __future__ import annotations

import math
from copy import deepcopy

import numpy as np
import pytest
import torch

from arena.bout import bout, judge, judged_real
from arena.datasets import DATASETS, IMAGE_DATASETS, GaussianMixture, ImageDataset, grid25, load_dataset, ring8
from arena.fitness import Standing
from arena.rounds import duels
from arena.selection import choose_opponents, choose_parents, tournament
from genome.build import build_pair, make_optimizer
from genome.genes import Genome, Layer, OptimizerGene


def small_genome(norm="none", latent_dist="normal", data_dim=2) -> Genome:
    layers = (Layer("dense", 16, "relu", norm), Layer("dense", 8, "elu"))
    return Genome(generator=layers, discriminator=layers, latent_dim=4, latent_dist=latent_dist,
                  g_optimizer=OptimizerGene("adam", 1e-3), d_optimizer=OptimizerGene("adam", 1e-3),
                  batch_size=16, steps=5, data_shape=(data_dim,))


def duel(generator, discriminator, n: int, rng: torch.Generator) -> float:
    """How often `generator` fools `discriminator`: a bout with no optimizer, one pair."""
    return float(judge([generator], [discriminator], n, rng).fooled[0, 0])


def train_bout(generator, discriminator, data, steps, batch_size, g_optimizer, d_optimizer, rng, **options):
    """A pair trained on its own: the bout of its generator and discriminator with both optimizers."""
    return bout([generator], [discriminator], data, steps, batch_size, rng, g_optimizer=g_optimizer,
                d_optimizer=d_optimizer, **options).rows


def constant_discriminator(logit: float):
    """A real Discriminator module whose output is `logit` whatever its input."""
    torch.manual_seed(0)
    disc = build_pair(small_genome()).discriminator
    with torch.no_grad():
        disc.head[-1].weight.zero_()
        disc.head[-1].bias.fill_(logit)
    return disc


def generator(seed=0, data_dim=2):
    torch.manual_seed(seed)
    return build_pair(small_genome(data_dim=data_dim)).generator


# ---------------------------------------------------------------------------------------------
# data sets


def nearest_mean_distance(samples: torch.Tensor, means: np.ndarray) -> torch.Tensor:
    m = torch.as_tensor(means, dtype=samples.dtype)
    return torch.cdist(samples, m).min(dim=1)


def test_ring8_means():
    data = ring8()
    assert data.name == "ring8" and data.dim == 2 and data.sigma == 0.01
    assert data.means.shape == (8, 2)
    expected = [(math.cos(2 * math.pi * k / 8), math.sin(2 * math.pi * k / 8)) for k in range(8)]
    np.testing.assert_allclose(data.means, expected, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(data.means, axis=1), 1.0)
    assert data.means[0].tolist() == pytest.approx([1.0, 0.0])
    assert data.means[2].tolist() == pytest.approx([0.0, 1.0], abs=1e-12)


def test_grid25_means():
    data = grid25()
    assert data.name == "grid25" and data.dim == 2 and data.sigma == 0.05
    assert data.means.shape == (25, 2)
    expected = {(float(x), float(y)) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)}
    assert {tuple(float(v) for v in m) for m in data.means} == expected


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_samples_lie_near_a_mean_and_cover_every_mode(name):
    data = load_dataset(name)
    samples = data.sample(4000, torch.Generator().manual_seed(0))
    assert samples.shape == (4000, 2) and samples.dtype == torch.float32
    distance, mode = nearest_mean_distance(samples, data.means)
    assert float(distance.max()) < 5 * data.sigma
    assert set(mode.tolist()) == set(range(len(data.means)))  # no mode left out
    counts = torch.bincount(mode, minlength=len(data.means)).float()
    expected = 4000 / len(data.means)
    assert float(counts.min()) > 0.5 * expected and float(counts.max()) < 1.5 * expected  # equal weights
    # the spread around each mean is sigma, not zero and not larger
    spread = (samples - torch.as_tensor(data.means, dtype=torch.float32)[mode]).std()
    assert 0.8 * data.sigma < float(spread) < 1.2 * data.sigma


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_samples_are_reproducible(name):
    data = load_dataset(name)
    a = data.sample(64, torch.Generator().manual_seed(3))
    b = data.sample(64, torch.Generator().manual_seed(3))
    c = data.sample(64, torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_load_dataset():
    assert set(DATASETS) == {"ring8", "grid25", *IMAGE_DATASETS}
    for name in DATASETS:
        data = load_dataset(name)
        assert data.name == name
        if name in IMAGE_DATASETS:
            assert isinstance(data, ImageDataset) and len(data.shape) == 3
        else:
            assert isinstance(data, GaussianMixture) and data.shape == (2,)
    with pytest.raises(ValueError, match="'nope'"):
        load_dataset("nope")


# ---------------------------------------------------------------------------------------------
# duels


def test_always_real_discriminator_is_fooled_completely():
    disc = constant_discriminator(10.0)
    share = duel(generator(), disc, 64, torch.Generator().manual_seed(0))
    assert share == 1.0
    standing = Standing()
    assert standing.fitness is None
    standing.as_generator(share)
    assert standing.fitness == 1.0


def test_always_fake_discriminator_is_never_fooled():
    disc = constant_discriminator(-10.0)
    share = duel(generator(), disc, 64, torch.Generator().manual_seed(0))
    assert share == 0.0
    standing = Standing()
    standing.as_generator(share)
    assert standing.fitness == 0.0


def test_duel_against_a_threshold_discriminator():
    """A discriminator that accepts x[0] > c is fooled by the share of fakes with x[0] > c."""
    gen = generator(1)
    gen.eval()
    with torch.no_grad():
        fakes = gen.sample(200, torch.Generator().manual_seed(5))
    c = float(fakes[:, 0].quantile(0.3))
    torch.manual_seed(0)
    disc = build_pair(small_genome()).discriminator
    disc.forward = lambda x: (x[:, 0] - c) * 100
    expected = float((fakes[:, 0] > c).float().mean())
    assert 0 < expected < 1, expected  # a case that tells the two answers apart
    assert duel(gen, disc, 200, torch.Generator().manual_seed(5)) == pytest.approx(expected)


def test_duel_is_reproducible_and_does_not_train():
    gen = generator(2)
    disc = build_pair(small_genome(norm="batch")).discriminator
    before = {k: v.clone() for k, v in disc.state_dict().items()}
    a = duel(gen, disc, 100, torch.Generator().manual_seed(9))
    b = duel(gen, disc, 100, torch.Generator().manual_seed(9))
    assert a == b and 0.0 <= a <= 1.0
    after = disc.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # eval mode: no batch-norm update


def test_judged_real_on_real_data():
    data = ring8()
    real = data.sample(128, torch.Generator().manual_seed(0))
    assert judged_real(constant_discriminator(10.0), real) == 1.0
    assert judged_real(constant_discriminator(-10.0), real) == 0.0
    assert judged_real(constant_discriminator(0.0), real) == 0.0  # real means logit > 0, strictly
    disc = constant_discriminator(0.0)
    disc.forward = lambda x: x[:, 1]  # real if above the x axis
    expected = float((real[:, 1] > 0).float().mean())
    assert judged_real(disc, real) == pytest.approx(expected)
    assert 0.2 < expected < 0.8


def test_standing_against_both_constant_discriminators():
    gen = generator()
    rng = torch.Generator().manual_seed(0)
    standing = Standing()
    standing.as_generator(duel(gen, constant_discriminator(10.0), 32, rng))
    standing.as_generator(duel(gen, constant_discriminator(-10.0), 32, rng))
    assert standing.g_matches == 2
    assert standing.fitness == 0.5


# ---------------------------------------------------------------------------------------------
# standings


def test_standing_none_before_matches():
    standing = Standing()
    assert standing.fitness is None
    assert standing.d_fitness is None
    standing.as_discriminator(0.5, 0.5)
    assert standing.fitness is None  # discriminator matches say nothing of the generator
    assert standing.d_fitness is not None
    other = Standing()
    other.as_generator(0.25)
    assert other.d_fitness is None and other.fitness == 0.25


def test_d_fitness_balanced_accuracy():
    standing = Standing()
    matches = [(0.1, 0.6), (0.3, 1.0), (0.2, 0.8)]  # (share of fakes accepted, share of real accepted)
    for fooled, real in matches:
        standing.as_discriminator(fooled, real)
    assert standing.d_matches == 3
    # fakes rejected: 1 - 0.2 = 0.8 on average; real accepted: 0.8 on average
    assert standing.d_fitness == pytest.approx(0.5 * 0.8 + 0.5 * 0.8)
    other = Standing()
    other.as_discriminator(0.5, 0.9)
    other.as_discriminator(0.1, 0.3)
    # fakes rejected: mean(0.5, 0.9) = 0.7; real accepted: mean(0.9, 0.3) = 0.6
    assert other.d_fitness == pytest.approx(0.65)


@pytest.mark.parametrize("fooled, real, expected", [
    (0.0, 1.0, 1.0),  # perfect
    (1.0, 0.0, 0.0),  # perfectly wrong
    (1.0, 1.0, 0.5),  # says real always
    (0.0, 0.0, 0.5),  # says fake always
])
def test_d_fitness_extremes(fooled, real, expected):
    standing = Standing()
    standing.as_discriminator(fooled, real)
    standing.as_discriminator(fooled, real)
    assert standing.d_fitness == pytest.approx(expected)


def test_d_fitness_of_constant_discriminators_from_duels():
    gen = generator()
    real = ring8().sample(64, torch.Generator().manual_seed(1))
    for logit in (10.0, -10.0):
        disc = constant_discriminator(logit)
        standing = Standing()
        standing.as_discriminator(duel(gen, disc, 64, torch.Generator().manual_seed(0)), judged_real(disc, real))
        assert standing.d_fitness == 0.5


def test_a_duel_judges_one_draw_of_the_own_fakes_by_the_own_and_the_opposing_discriminators():
    """The hacking gap compares discriminators, not two draws: an opponent whose discriminator is a copy of the
    own one gives the own verdict to the sample, and the own generator samples once; every opponent's column is
    its own."""
    torch.manual_seed(0)
    pair = build_pair(small_genome())
    with torch.no_grad():  # a threshold at the median score: about half its fakes fool it, a draw's share varies
        scores = pair.discriminator(pair.generator.sample(4096, torch.Generator()))
        pair.discriminator.threshold = float(scores.median())
    opponents = [deepcopy(pair) for _ in range(3)]
    opponents[1].discriminator.threshold, opponents[2].discriminator.threshold = math.inf, -math.inf
    sampled = []
    draw = pair.generator.sample
    pair.generator.sample = lambda n, rng: sampled.append(n) or draw(n, rng)
    fought = duels(pair, "me", ["a", "b", "c"], opponents, ring8(), 256, torch.Generator().manual_seed(1), "run")
    assert sampled == [256]
    own = fought.hacking["own"]
    assert 0.3 < own < 0.7
    attacks = [m for m in fought.matches if m["generator"] == "me"]
    assert [(m["discriminator"], m["fooled"]) for m in attacks] == [("a", own), ("b", 0.0), ("c", 1.0)]
    assert fought.hacking["opposing"] == pytest.approx((own + 1) / 3)
    assert fought.hacking["gap"] == pytest.approx(own - (own + 1) / 3)
    assert sorted(m["generator"] for m in fought.matches if m["discriminator"] == "me") == ["a", "b", "c"]


def test_generator_fitness_is_mean():
    standing = Standing()
    for share in (0.2, 0.4, 0.9):
        standing.as_generator(share)
    assert standing.fitness == pytest.approx(0.5)
    assert standing.g_matches == 3


# ---------------------------------------------------------------------------------------------
# training bouts


@pytest.mark.parametrize("norm", ["none", "batch", "layer"])
def test_train_bout_rows_and_updates(norm):
    torch.manual_seed(0)
    genome = small_genome(norm=norm)
    pair = build_pair(genome)
    before = {net: {k: v.clone() for k, v in sd.items()} for net, sd in pair.state_dicts().items()}
    g_opt = make_optimizer(genome.g_optimizer, pair.generator.parameters())
    d_opt = make_optimizer(genome.d_optimizer, pair.discriminator.parameters())
    rows = train_bout(pair.generator, pair.discriminator, ring8(), steps=6, batch_size=16, g_optimizer=g_opt,
                      d_optimizer=d_opt, rng=torch.Generator().manual_seed(0), first_step=10)
    assert len(rows) == 6
    assert [row["step"] for row in rows] == list(range(10, 16))
    for row in rows:
        assert math.isfinite(row["g_loss"]) and math.isfinite(row["d_loss"])
        assert row["g_loss"] > 0 and row["d_loss"] > 0
    assert [row["time"] for row in rows] == sorted(row["time"] for row in rows)
    after = pair.state_dicts()
    for net in ("generator", "discriminator"):
        changed = [k for k in before[net] if not torch.equal(before[net][k], after[net][k])]
        weights = [k for k in before[net] if k.endswith("weight")]
        assert all(k in changed for k in weights), (net, set(weights) - set(changed))


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rmsprop"])
def test_train_bout_with_each_optimizer(optimizer):
    torch.manual_seed(1)
    genome = small_genome()
    pair = build_pair(genome)
    gene = OptimizerGene(optimizer, 1e-3)
    head = pair.generator.head.linear.weight.detach().clone()
    rows = train_bout(pair.generator, pair.discriminator, grid25(), 3, 8,
                      make_optimizer(gene, pair.generator.parameters()),
                      make_optimizer(gene, pair.discriminator.parameters()), torch.Generator().manual_seed(0))
    assert [row["step"] for row in rows] == [0, 1, 2]
    assert all(math.isfinite(row["g_loss"]) and math.isfinite(row["d_loss"]) for row in rows)
    assert not torch.equal(head, pair.generator.head.linear.weight)


def test_a_bout_calls_between_between_its_steps():
    torch.manual_seed(0)
    genome = small_genome()
    pair = build_pair(genome)
    calls = []
    rows = bout([pair.generator], [pair.discriminator], ring8(), 5, 8, torch.Generator().manual_seed(0),
                g_optimizer=make_optimizer(genome.g_optimizer, pair.generator.parameters()),
                d_optimizer=make_optimizer(genome.d_optimizer, pair.discriminator.parameters()),
                between=lambda: calls.append(len(calls))).rows
    assert len(rows) == 5 and calls == [0, 1, 2, 3]  # where a player gives its core up between steps


def test_train_bout_zero_steps():
    torch.manual_seed(0)
    pair = build_pair(small_genome())
    opt = torch.optim.SGD(pair.generator.parameters(), lr=0.1)
    before = pair.generator.head.linear.weight.detach().clone()
    assert train_bout(pair.generator, pair.discriminator, ring8(), 0, 8, opt, opt,
                      torch.Generator().manual_seed(0)) == []
    assert torch.equal(before, pair.generator.head.linear.weight)


# ---------------------------------------------------------------------------------------------
# selection


def entries(players: int, per_player: int, fitness=None):
    out = []
    for p in range(players):
        for g in range(per_player):
            value = fitness(p, g) if fitness else None
            out.append({"id": f"run/p{p}/{g}", "player": f"p{p}", "fitness": value})
    return out


@pytest.mark.parametrize("k", [0, 1, 2, 3, 5, 20])
def test_choose_opponents_excludes_self_and_caps(k):
    candidates = entries(4, 3)
    for seed in range(20):
        picked = choose_opponents(candidates, "p1", k, np.random.default_rng(seed))
        assert len(picked) == min(k, 9)
        assert all(c["player"] != "p1" for c in picked)
        ids = [c["id"] for c in picked]
        assert len(set(ids)) == len(ids)
        assert all(c in candidates for c in picked)


def test_choose_opponents_varies_and_covers():
    candidates = entries(5, 1)
    seen = set()
    for seed in range(50):
        picked = choose_opponents(candidates, "p0", 2, np.random.default_rng(seed))
        seen |= {c["id"] for c in picked}
    assert seen == {c["id"] for c in candidates if c["player"] != "p0"}


def test_choose_opponents_with_no_others():
    assert choose_opponents(entries(1, 3), "p0", 3, np.random.default_rng(0)) == []
    assert choose_opponents([], "p0", 3, np.random.default_rng(0)) == []


def test_tournament_full_size_returns_global_best():
    candidates = entries(3, 4, fitness=lambda p, g: ((p * 7 + g * 5) % 11) / 10)
    best = max(candidates, key=lambda c: c["fitness"])
    for seed in range(20):
        assert tournament(candidates, len(candidates), np.random.default_rng(seed)) is best
        assert tournament(candidates, 100, np.random.default_rng(seed)) is best


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_tournament_returns_fittest_of_entrants(size):
    candidates = entries(4, 2, fitness=lambda p, g: (p * 2 + g) / 10)
    candidates[3]["fitness"] = None  # unrated counts as 0
    fitness = [c["fitness"] or 0.0 for c in candidates]
    ranked = sorted(range(len(candidates)), key=lambda i: fitness[i])
    winners = set()
    for seed in range(40):
        drawn = []
        winner = tournament(candidates, size, _Spy(np.random.default_rng(seed), drawn))
        (entrants,) = drawn
        assert len(entrants) == size and len(set(entrants)) == size
        assert winner is candidates[max(entrants, key=lambda i: fitness[i])]
        # the winner beats at least size - 1 others
        assert ranked.index(candidates.index(winner)) >= size - 1
        winners.add(winner["id"])
    if size == 1:
        assert len(winners) > 3  # a one-entrant tournament is a uniform draw


class _Spy:
    """Wraps a numpy Generator, recording the indices choice() returns."""

    def __init__(self, rng, drawn):
        self.rng, self.drawn = rng, drawn

    def choice(self, *args, **kwargs):
        picks = self.rng.choice(*args, **kwargs)
        self.drawn.append([int(i) for i in np.atleast_1d(picks)])
        return picks

    def __getattr__(self, name):
        return getattr(self.rng, name)


def test_tournament_counts_unrated_as_zero():
    candidates = [{"id": "a", "player": "p0", "fitness": None}, {"id": "b", "player": "p1", "fitness": 0.05},
                  {"id": "c", "player": "p2", "fitness": None}]
    for seed in range(10):
        assert tournament(candidates, 3, np.random.default_rng(seed))["id"] == "b"
    unrated = [dict(c, fitness=None) for c in candidates]
    assert tournament(unrated, 3, np.random.default_rng(0)) in unrated
    missing = [{"id": "x", "player": "p0"}, {"id": "y", "player": "p1", "fitness": 0.3}]
    assert tournament(missing, 2, np.random.default_rng(0))["id"] == "y"


def test_tournament_empty_raises():
    with pytest.raises(ValueError, match="candidate"):
        tournament([], 3, np.random.default_rng(0))


def test_choose_parents_distinct():
    candidates = entries(3, 2, fitness=lambda p, g: 0.5)  # all tied: distinctness cannot come from fitness
    for size in (1, 2, 6):
        for seed in range(20):
            parents = choose_parents(candidates, size, np.random.default_rng(seed))
            assert len(parents) == 2
            assert parents[0]["id"] != parents[1]["id"]
            assert all(p in candidates for p in parents)


def test_choose_parents_best_two_with_full_tournaments():
    candidates = entries(3, 2, fitness=lambda p, g: p / 10 + g / 100)
    parents = choose_parents(candidates, len(candidates), np.random.default_rng(0))
    assert [p["id"] for p in parents] == ["run/p2/1", "run/p2/0"]


def test_choose_parents_single_candidate():
    only = [{"id": "a", "player": "p0", "fitness": 0.3}]
    assert choose_parents(only, 3, np.random.default_rng(0)) == only


def test_choose_parents_two_candidates_same_fitness_both_returned():
    pair = [{"id": "a", "player": "p0", "fitness": None}, {"id": "b", "player": "p0", "fitness": None}]
    for seed in range(10):
        assert {p["id"] for p in choose_parents(pair, 3, np.random.default_rng(seed))} == {"a", "b"}
