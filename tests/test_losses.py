"""The evolvable loss and optimizer genes: each loss trains, duels judge by the loss's threshold,
and the operators that change them do so within their limits."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from arena.bout import bout, discriminator_loss, generator_loss, judged_real
from arena.datasets import ring8
from genome.build import build_pair, make_optimizer
from genome.genes import LOSSES, Genome, Layer, OptimizerGene
from genome.crossover import crossover
from genome.operators import MutationConfig, change_loss, change_optimizer


def genome(loss: str = "non_saturating") -> Genome:
    layers = (Layer("dense", 16), Layer("dense", 16))
    return Genome(generator=layers, discriminator=layers, latent_dim=4, latent_dist="normal",
                  g_optimizer=OptimizerGene("adam", 1e-3), d_optimizer=OptimizerGene("sgd", 1e-3, (0.9, 0.99)),
                  batch_size=32, steps=30, loss=loss)


@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_trains_the_discriminator_to_tell_real_from_fake(loss):
    torch.manual_seed(0)
    g = genome(loss)
    pair = build_pair(g)
    rng = torch.Generator().manual_seed(0)
    data = ring8()
    optimizers = (make_optimizer(g.g_optimizer, pair.generator.parameters()),
                  torch.optim.Adam(pair.discriminator.parameters(), 1e-2))
    g_optimizer, d_optimizer = optimizers
    rows = bout([pair.generator], [pair.discriminator], data, 30, 32, rng, g_optimizer=g_optimizer,
                d_optimizer=d_optimizer, loss=loss).rows
    assert len(rows) == 30 and all(np.isfinite([r["g_loss"], r["d_loss"]]).all() for r in rows)
    assert rows[-1]["d_loss"] < rows[0]["d_loss"], loss


def test_losses_reward_what_they_should():
    real_high, fake_low = torch.full((8,), 3.0), torch.full((8,), -3.0)
    for loss in LOSSES:
        good_d = discriminator_loss(loss, real_high, fake_low)
        bad_d = discriminator_loss(loss, fake_low, real_high)
        assert good_d < bad_d, loss
        assert generator_loss(loss, real_high) < generator_loss(loss, fake_low), loss
    with pytest.raises(ValueError, match="'wasserstein'"):
        generator_loss("wasserstein", real_high)


def test_least_squares_discriminators_split_real_from_fake_at_one_half():
    disc = build_pair(genome("least_squares")).discriminator
    with torch.no_grad():
        disc.head[-1].weight.zero_()
        disc.head[-1].bias.fill_(0.4)  # nearer the fake target (0) than the real one (1)
    assert judged_real(disc, torch.zeros(10, 2)) == 0.0
    with torch.no_grad():
        disc.head[-1].bias.fill_(0.6)
    assert judged_real(disc, torch.zeros(10, 2)) == 1.0


@pytest.mark.parametrize("name, expected", [("adam", {"betas": (0.9, 0.99)}), ("sgd", {"momentum": 0.9}),
                                            ("rmsprop", {"alpha": 0.99})])
def test_optimizer_genes_carry_their_betas(name, expected):
    optimizer = make_optimizer(OptimizerGene(name, 1e-3, (0.9, 0.99)), torch.nn.Linear(2, 2).parameters())
    for key, value in expected.items():
        assert optimizer.param_groups[0][key] == value


@pytest.mark.parametrize("betas", [(1.0, 0.9), (0.5,), (-0.1, 0.9), "ab"])
def test_bad_betas_are_refused_naming_them(betas):
    with pytest.raises(ValueError, match="betas"):
        OptimizerGene("adam", 1e-3, betas)


def test_change_betas_stays_within_limits_and_round_trips():
    cfg = MutationConfig()
    g = genome()
    changed = 0
    for seed in range(200):
        child, ops = change_optimizer(g, "generator", "betas", np.random.default_rng(seed), cfg)
        b1, b2 = child.g_optimizer.betas
        assert 0 <= b1 <= 0.99 and 0 <= b2 <= 0.9999
        assert Genome.from_dict(child.to_dict()) == child
        if ops:
            changed += 1
            assert ops[0]["op"] == "change_betas" and ops[0]["to"] == [b1, b2] and child != g
            assert child.d_optimizer == g.d_optimizer
    assert changed > 150


def test_change_loss_switches_to_another_loss_and_crossover_inherits_one():
    g = genome("hinge")
    seen = set()
    for seed in range(40):
        child, ops = change_loss(g, np.random.default_rng(seed), MutationConfig())
        assert child.loss != "hinge" and ops == [{"op": "change_loss", "from": "hinge", "to": child.loss}]
        seen.add(child.loss)
    assert seen == set(LOSSES) - {"hinge"}
    other = replace(genome("minimax"), latent_dim=6)
    losses = {crossover(g, other, np.random.default_rng(s), MutationConfig())[0].loss for s in range(30)}
    assert losses == {"hinge", "minimax"}


def test_a_pair_trains_as_against_its_own_discriminator_counted_twice():
    """A pair's own training skips averaging over one discriminator (ops that change nothing): the same
    discriminator listed twice averages two equal losses, so every step's losses and weights match."""
    def trained(discriminators: int) -> tuple[list[dict], torch.Tensor]:
        torch.manual_seed(0)
        g = genome()
        pair = build_pair(g)
        rng = torch.Generator().manual_seed(0)
        rows = bout([pair.generator], [pair.discriminator] * discriminators, ring8(), 5, 32, rng,
                    g_optimizer=make_optimizer(g.g_optimizer, pair.generator.parameters()),
                    d_optimizer=make_optimizer(g.d_optimizer, pair.discriminator.parameters())).rows
        weights = torch.cat([p.flatten() for net in (pair.generator, pair.discriminator) for p in net.parameters()])
        return [(r["g_loss"], r["d_loss"]) for r in rows], weights

    (once, weights), (twice, weights_twice) = trained(1), trained(2)
    assert len(once) == 5 and once == twice
    assert torch.equal(weights, weights_twice)


def test_a_generator_against_several_discriminators_learns_from_their_mean_loss():
    torch.manual_seed(0)
    pairs = [build_pair(genome()) for _ in range(3)]
    generator, discriminators = pairs[0].generator, [p.discriminator for p in pairs[1:]]
    fakes = generator.sample(32, torch.Generator().manual_seed(1))
    with torch.no_grad():
        each = [float(generator_loss("non_saturating", d(fakes))) for d in discriminators]
    rows = bout([generator], discriminators, ring8(), 1, 32, torch.Generator().manual_seed(1),
                g_optimizer=torch.optim.SGD(generator.parameters(), 0.0)).rows
    assert rows[0]["g_loss"] == pytest.approx(sum(each) / 2) and each[0] != pytest.approx(each[1])
