"""Data sets, generated from a seed, tagged by name so only like meets like."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class GaussianMixture:
    """Equal-weight isotropic Gaussians: the 2-D mode-collapse benchmarks (VEEGAN, PacGAN)."""

    name: str
    means: np.ndarray  # (modes, dim)
    sigma: float

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    def sample(self, n: int, rng: torch.Generator) -> torch.Tensor:
        means = torch.as_tensor(self.means, dtype=torch.float32)
        modes = torch.randint(len(means), (n,), generator=rng)
        return means[modes] + self.sigma * torch.randn(n, self.dim, generator=rng)


def ring8() -> GaussianMixture:
    k = np.arange(8)
    means = np.stack([np.cos(2 * math.pi * k / 8), np.sin(2 * math.pi * k / 8)], axis=1)
    return GaussianMixture("ring8", means, 0.01)


def grid25() -> GaussianMixture:
    axis = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])
    means = np.array([(x, y) for x in axis for y in axis])
    return GaussianMixture("grid25", means, 0.05)


DATASETS = {"ring8": ring8, "grid25": grid25}


def load_dataset(name: str) -> GaussianMixture:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    return DATASETS[name]()
