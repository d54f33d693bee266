"""The generator's weight average (`arena.average`): how it moves, that training moves it once a generator
step, that a continued pair keeps it and a bred one does not, and that a checkpoint gives it out."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from arena.average import Average, averaged
from arena.bout import bout
from arena.config import ArenaConfig
from arena.datasets import load_dataset
from arena.offspring import Offspring, bred, continued, optimizers_for
from genome.build import build_pair
from genome.operators import MutationConfig
from genome.population import random_genome
from storage.checkpoints import load_pair, save_checkpoint


def pair_of(seed: int = 0):
    genome = random_genome(np.random.default_rng(seed), MutationConfig(), 32, 10, (2,))
    torch.manual_seed(seed)
    return genome, build_pair(genome)


def floats(generator) -> dict:
    return {k: v.clone() for k, v in generator.state_dict().items() if v.is_floating_point()}


def test_the_average_weighs_new_weights_by_its_warm_up_then_by_its_decay():
    _, pair = pair_of()
    average = Average(pair.generator, 0.9)
    expected = floats(pair.generator)
    for n in range(30):
        with torch.no_grad():
            for p in pair.generator.parameters():
                p.add_(torch.randn_like(p))
        average.update()
        weight = 1 - min(0.9, (1 + n) / (10 + n))
        live = floats(pair.generator)
        expected = {k: expected[k] + weight * (live[k] - expected[k]) for k in expected}
    assert average.updates == 30
    for key, value in expected.items():
        torch.testing.assert_close(average.state[key], value)
        assert not torch.equal(average.state[key], pair.generator.state_dict()[key])  # it lags the live weights


@pytest.mark.parametrize("decay", [0, 1, 1.5, -0.1])
def test_a_decay_outside_the_open_unit_interval_is_refused(decay):
    _, pair = pair_of()
    with pytest.raises(ValueError, match=str(decay)):
        Average(pair.generator, decay)


@pytest.mark.parametrize("value", [1, 1.0, -0.5, True, "0.9"])
def test_the_arenas_average_is_named_when_out_of_range(value):
    with pytest.raises(ValueError, match="arena.average"):
        ArenaConfig(average=value)
    assert ArenaConfig(average=0).average == 0  # 0: none


def test_a_bout_updates_the_average_once_per_generator_step_and_never_for_the_discriminator_alone():
    genome, pair = pair_of()
    g_opt, d_opt = optimizers_for(genome, pair)
    average = Average(pair.generator, 0.99)
    data, rng = load_dataset("ring8"), torch.Generator().manual_seed(0)
    bout([pair.generator], [pair.discriminator], data, 7, 32, rng, g_optimizer=g_opt, d_optimizer=d_opt,
         average=average)
    assert average.updates == 7
    bout([pair.generator], [pair.discriminator], data, 5, 32, rng, d_optimizer=d_opt, average=average)
    assert average.updates == 7  # the generator did not step


def test_the_averaged_generator_is_a_copy_holding_the_average_and_none_gives_the_live_one():
    _, pair = pair_of()
    average = Average(pair.generator, 0.9)
    with torch.no_grad():
        for p in pair.generator.parameters():
            p.add_(1.0)
    average.update()
    copy = averaged(pair.generator, average)
    assert copy is not pair.generator and averaged(pair.generator, None) is pair.generator
    for key, value in copy.state_dict().items():
        assert torch.equal(value, average.state[key])
    z = torch.Generator().manual_seed(3)
    assert copy.sample(4, z).shape == pair.generator.sample(4, torch.Generator().manual_seed(3)).shape


def test_a_continued_pair_keeps_its_average_and_a_bred_child_starts_without_one():
    genome, pair = pair_of()
    current = Offspring(genome, pair, optimizers=optimizers_for(genome, pair))
    current.average = Average(pair.generator, 0.99, updates=40)
    assert continued(current, "r/p/1", 0.3).average is current.average
    states = {**pair.state_dicts(), "g_optimizer": None, "d_optimizer": None}
    child = bred([{"id": "r/p/1", "genome": genome.to_dict()}], [], [states], np.random.default_rng(0),
                 MutationConfig(p_mutate=0.0, p_crossover=0.0))
    assert child.average is None


def test_a_checkpoint_with_an_average_gives_out_the_average_as_its_generator(tmp_path):
    genome, pair = pair_of()
    average = Average(pair.generator, 0.9)
    with torch.no_grad():
        for p in pair.generator.parameters():
            p.mul_(-2.0)
    average.update()
    live = floats(pair.generator)
    location = str(tmp_path / "000001.pt")
    save_checkpoint(location, {"genome": genome.to_dict(), **pair.state_dicts(),
                               "generator_average": average.state_dict()})
    _, given = load_pair(location)
    for key, value in given.generator.state_dict().items():
        torch.testing.assert_close(value, average.state[key])
        if key in live:
            assert not torch.equal(value, live[key])
    save_checkpoint(location, {"genome": genome.to_dict(), **pair.state_dicts()})  # without one: the live weights
    _, given = load_pair(location)
    for key, value in floats(given.generator).items():
        assert torch.equal(value, live[key])


def test_spectral_normalisations_power_vectors_follow_the_live_ones_and_the_rest_is_averaged():
    from torch.nn.utils.parametrizations import spectral_norm

    generator = torch.nn.Sequential(spectral_norm(torch.nn.Linear(4, 4)))
    generator.train()
    average = Average(generator, 0.9)
    for _ in range(5):
        with torch.no_grad():
            for p in generator.parameters():  # the bias and the weight's original
                p.add_(torch.randn_like(p))
        generator(torch.randn(2, 4))  # a forward pass in train mode moves the power-iteration vectors
        average.update()
    live = generator.state_dict()
    for key in live:
        if key.endswith(("_u", "_v")):
            assert torch.equal(average.state[key], live[key])
            assert torch.linalg.vector_norm(average.state[key]) == pytest.approx(1.0, abs=1e-4)
        elif live[key].is_floating_point():
            assert not torch.equal(average.state[key], live[key])


def test_a_screened_product_is_measured_against_real_data_with_its_refinement():
    """The champion's choice measures candidates as given out: a screened and refined source goes through
    `distances_to_real`, refinement climbing its discriminators' gradients although the distance takes none."""
    from arena.ensemble import distances_to_real
    from arena.screen import Screened

    data = load_dataset("ring8")
    pairs = [pair_of(seed)[1] for seed in range(2)]
    products = [Screened(p.generator, [q.discriminator for q in pairs], data, 0.5, 8, refine=8) for p in pairs]
    rng = torch.Generator().manual_seed(0)
    distances = distances_to_real([*products, pairs[0].generator], data.sample(256, rng), rng, samples=256)
    assert distances.shape == (3,) and np.isfinite(distances).all()
    assert all(product.steps is not None for product in products)  # refinement settled, so it ran
