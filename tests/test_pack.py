"""PacGAN packing: a discriminator that judges `pack` samples at once, planned, built, judged and
bred like any other, and read back from records made before packing existed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from arena.bout import bout, judge
from arena.config import ArenaConfig
from arena.datasets import load_dataset
from genome import Genome, build_pair, random_genome
from genome.crossover import compose
from genome.operators import MutationConfig
from genome.shapes import plan


@pytest.mark.parametrize("shape", [(2,), (1, 8, 8)])
@pytest.mark.parametrize("pack", [1, 2, 3])
def test_a_packed_discriminator_is_planned_as_built_and_scores_one_per_pack(shape, pack):
    genome = random_genome(np.random.default_rng(pack), MutationConfig(), 16, 5, shape, "auto", pack)
    pair = build_pair(genome)
    assert genome.pack == pack and genome.d_input_shape == (shape[0] * pack, *shape[1:])
    assert plan(genome).parameters == pair.parameter_count()
    samples = pair.generator.sample(12, torch.Generator().manual_seed(0))
    assert pair.discriminator(samples).shape == (12 // pack,)


def test_each_sample_gets_its_packs_verdict_and_a_short_pack_is_filled_up():
    genome = random_genome(np.random.default_rng(0), MutationConfig(), 16, 5, (2,), "dense", 3)
    discriminator = build_pair(genome).discriminator
    x = torch.randn(7, 2, generator=torch.Generator().manual_seed(1))
    scores = discriminator(x)
    assert scores.shape == (3,)  # 7 samples: two full packs and one filled up with the first two
    filled = torch.cat([x, x[:2]]).reshape(3, 6)
    assert torch.allclose(scores[2], super(type(discriminator), discriminator).forward(filled).squeeze(-1)[2])
    verdicts = discriminator.judges_real(x)
    assert verdicts.tolist() == (scores > discriminator.threshold).repeat_interleave(3)[:7].tolist()
    assert discriminator.judges_real(x[:1]).shape == (1,)  # one sample packed with copies of itself


def test_a_packed_pair_trains_and_is_judged():
    genome = random_genome(np.random.default_rng(3), MutationConfig(), 32, 5, (2,), "dense", 2)
    pair = build_pair(genome)
    rng = torch.Generator().manual_seed(0)
    g_opt = torch.optim.Adam(pair.generator.parameters(), 1e-3)
    d_opt = torch.optim.Adam(pair.discriminator.parameters(), 1e-3)
    rows = bout([pair.generator], [pair.discriminator], load_dataset("ring8"), 5, 32, rng, g_optimizer=g_opt,
                d_optimizer=d_opt).rows
    assert len(rows) == 5 and all(np.isfinite([r["g_loss"], r["d_loss"]]).all() for r in rows)
    judged = judge([pair.generator], [pair.discriminator], 33, rng)
    assert judged.fooled.shape == (1, 1) and len(judged.fooling[0]) <= 33


def test_the_pack_goes_with_the_discriminator_side():
    cfg = MutationConfig()
    packed = random_genome(np.random.default_rng(0), cfg, 16, 5, (2,), "dense", 4)
    plain = random_genome(np.random.default_rng(1), cfg, 16, 5, (2,), "dense", 1)
    assert compose(plain, packed).pack == 4 and compose(packed, plain).pack == 1


def test_genomes_recorded_before_packing_read_back_unpacked():
    data = random_genome(np.random.default_rng(0), MutationConfig(), 16, 5, (2,), "dense", 2).to_dict()
    assert Genome.from_dict(data).pack == 2
    del data["pack"]
    assert Genome.from_dict(data).pack == 1
    data["pack"] = 0
    with pytest.raises(ValueError, match="pack"):
        Genome.from_dict(data)


@pytest.mark.parametrize("pack", [0, 17, 2.5, True])
def test_a_bad_pack_is_refused_naming_it(pack):
    with pytest.raises(ValueError, match=f"arena.pack .*{pack!r}"):
        ArenaConfig(pack=pack)
