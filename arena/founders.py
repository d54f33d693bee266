"""Where each player starts: its seeds, derived from the run's, and its first genome. One pure function
that the player and the benchmarks' independent GANs both call, so the baselines start where the arena does."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from arena.config import ArenaConfig
from genome import Genome, random_genome
from genome.population import conventional_genome
from genome.operators import MutationConfig


@dataclass
class Founding:
    """A player's first genome and its random state after drawing it."""

    genome: Genome
    rng: np.random.Generator  # the player's own draws (genes, registry seeds), after the genome's
    init_seed: int  # torch's global generator, which module initialisation draws from
    noise_seed: int  # the player's torch.Generator of latent noise and real batches


def player_seed(run_seed: int, index: int) -> np.random.SeedSequence:
    """Each player's seed derives from the run seed and its index: a run is reproducible player by player."""
    return np.random.SeedSequence([run_seed, index])


def found(run_seed: int, index: int, players: int, data_shape: tuple[int, ...], mutation: MutationConfig,
          arena: ArenaConfig) -> Founding:
    """Player `index` of `players`: its first genome (`arena.founders`) drawn first from
    `default_rng(player_seed)`, torch's seeds from the seed's state words."""
    seed = player_seed(run_seed, index)
    rng = np.random.default_rng(seed)
    steps, batch = arena.first_steps(index, players), arena.first_batch(data_shape)
    if arena.founders == "conventional":
        genome = conventional_genome(rng, mutation, batch, steps, data_shape, arena.pack, arena.first_d_lr(data_shape))
    else:
        genome = random_genome(rng, mutation, batch, steps, data_shape, arena.architecture, arena.pack)
    return Founding(genome, rng, int(seed.generate_state(2)[1]), int(seed.generate_state(1)[0]))
