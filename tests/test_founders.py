"""Where players start: seeds and first genomes (arena.founders), random or conventional."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from arena.config import ArenaConfig
from arena.founders import found
from genome import build_pair
from genome.operators import MutationConfig, within_limits
from genome.population import conventional_genome


@pytest.mark.parametrize("shape", [(2,), (1, 8, 8), (1, 28, 28)])
def test_conventional_founders_build_differ_in_their_draws_and_fit_the_limits(shape):
    cfg, arena = MutationConfig(), ArenaConfig(founders="conventional")
    founders = [found(3, i, 4, shape, cfg, arena).genome for i in range(4)]
    for genome in founders:
        assert within_limits(genome, cfg) and genome.pack == arena.pack
        assert genome.g_optimizer.betas == (0.5, 0.999)
        assert 1e-4 <= genome.d_optimizer.lr <= 4e-4
        # On 2-D data a generator's rate from twice as high up: one slower than its discriminator blurs or drops modes.
        low, high = (1e-4, 4e-4) if len(shape) == 3 else (2e-4, 8e-4)
        assert low <= genome.g_optimizer.lr <= high
        pair = build_pair(genome)
        fakes = pair.generator.sample(4, torch.Generator().manual_seed(0))
        assert fakes.shape == (4, *shape) and pair.discriminator(fakes).shape[0] == 2  # packs of two
    assert len({g.g_optimizer.lr for g in founders}) == 4  # hyperparameters drawn per player
    assert ArenaConfig().founders == "conventional"  # the default
    if len(shape) == 1:
        assert all(len(g.generator) == len(g.discriminator) == 3 for g in founders)
        assert len({g.generator[0].width for g in founders}) > 1


def test_founder_d_lr_caps_the_discriminators_rates_and_keeps_each_players_draw():
    cfg = MutationConfig()
    wide = [found(3, i, 4, (2,), cfg, ArenaConfig(founder_d_lr=4e-4)).genome for i in range(4)]
    narrow = [found(3, i, 4, (2,), cfg, ArenaConfig(founder_d_lr=2e-4)).genome for i in range(4)]
    assert all(1e-4 <= g.d_optimizer.lr <= 2e-4 for g in narrow)
    assert any(g.d_optimizer.lr > 2e-4 for g in wide)  # the cap changes something at this seed
    # The same draws mapped onto the narrower range: players keep their order, and all else is as it was.
    # log-uniform: each rate sits as far up its range, in log, as before
    for w, n in zip(wide, narrow):
        assert np.log(n.d_optimizer.lr / 1e-4) / np.log(2) == pytest.approx(np.log(w.d_optimizer.lr / 1e-4) / np.log(4))
    same = [(g.generator, g.discriminator, g.g_optimizer, g.latent_dim) for g in wide]
    assert same == [(g.generator, g.discriminator, g.g_optimizer, g.latent_dim) for g in narrow]
    with pytest.raises(ValueError, match=r"arena.founder_d_lr must be 0 \(by the data\) or between 1e-4 and 1e-2; "
                                         r"got 0.5"):
        ArenaConfig(founder_d_lr=0.5)


def test_founders_batch_and_discriminator_rate_by_default_follow_the_data():
    cfg, arena, image = MutationConfig(), ArenaConfig(), (1, 28, 28)
    assert ArenaConfig(founder_d_lr=0, batch_size=0) == arena  # 0, given or not: by the data
    # The batch: 64 on images, 128 on vectors, for either kind of founder; a batch given is taken on any data.
    assert (arena.first_batch((2,)), arena.first_batch(image)) == (128, 64)
    assert (ArenaConfig(batch_size=32).first_batch(image), ArenaConfig(batch_size=32).first_batch((2,))) == (32, 32)
    for founders in ("conventional", "random"):
        chosen = ArenaConfig(founders=founders)
        assert {found(3, i, 4, image, cfg, chosen).genome.batch_size for i in range(4)} == {64}
        assert {found(3, i, 4, (2,), cfg, chosen).genome.batch_size for i in range(4)} == {128}
    with pytest.raises(ValueError, match=r"arena.batch_size must be 0 \(by the data\) or a positive integer; got -1"):
        ArenaConfig(batch_size=-1)
    # The discriminator's highest rate: 4e-4 on images, 2e-4 on vectors; a rate given is taken on any data.
    assert (arena.first_d_lr((2,)), arena.first_d_lr(image)) == (2e-4, 4e-4)
    assert ArenaConfig(founder_d_lr=3e-4).first_d_lr(image) == 3e-4
    images = [found(3, i, 8, image, cfg, arena).genome.d_optimizer.lr for i in range(8)]
    vectors = [found(3, i, 8, (2,), cfg, arena).genome.d_optimizer.lr for i in range(8)]
    assert all(1e-4 <= lr <= 4e-4 for lr in images) and any(lr > 2e-4 for lr in images)
    assert all(1e-4 <= lr <= 2e-4 for lr in vectors)


def test_rounds_are_off_by_default_and_by_the_data_as_before_when_asked():
    arena, image = ArenaConfig(), (1, 28, 28)
    assert not any(arena.round_due(g, shape) for g in range(9) for shape in (image, (2,)))
    # -1, the default of 6 and 7 December: every 4 generations on images, never on vectors; a number given is taken
    # on any data (0: never).
    before = ArenaConfig(round_every=-1)
    assert (before.rounds_every(image), before.rounds_every((2,))) == (4, 0)
    assert [g for g in range(9) if before.round_due(g, image)] == [0, 4, 8]
    assert not any(before.round_due(g, (2,)) for g in range(9))
    assert ArenaConfig(round_every=3).rounds_every((2,)) == 3 and ArenaConfig(round_every=0).rounds_every(image) == 0
    for bad in (-2, 1.5, True):
        with pytest.raises(ValueError, match=rf"arena.round_every must be -1 \(by the data\), 0 \(never\) or a "
                                             rf"positive integer; got {bad!r}"):
            ArenaConfig(round_every=bad)


def test_conventional_founders_refuse_what_they_cannot_build_in_one_line():
    with pytest.raises(ValueError, match=r"side divisible by 4; got \(1, 10, 10\)"):
        conventional_genome(np.random.default_rng(0), MutationConfig(), 16, 5, (1, 10, 10))
    with pytest.raises(ValueError, match="does not fit the limits"):
        conventional_genome(np.random.default_rng(0), MutationConfig(max_parameters=1000), 16, 5, (2,))
    with pytest.raises(ValueError, match="arena.founders must be one of random, conventional; got 'famous'"):
        ArenaConfig(founders="famous")


def test_random_founders_are_the_draws_players_always_made():
    from genome import random_genome

    cfg, arena = MutationConfig(), ArenaConfig(founders="random")
    seed = np.random.SeedSequence([5, 2])
    assert found(5, 2, 4, (2,), cfg, arena).genome == random_genome(np.random.default_rng(seed), cfg, 128,
                                                                    arena.steps, (2,), "auto", arena.pack)
