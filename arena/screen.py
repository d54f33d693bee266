"""Screening: the arena's discriminators pass judgement on each sample of its product, and only the samples
they find most real are given out (a discriminator's rejection of a generator's errors, as in Azadi et al.
2019, "Discriminator Rejection Sampling"; here by rank, since the population's losses score on different
scales). A screen uses discriminators and real training data only, never a metric that knows the true modes
or labels."""

from __future__ import annotations

import math
from typing import Protocol

import torch

from arena.datasets import GaussianMixture, ImageDataset
from genome.build import Discriminator


class Source(Protocol):
    def sample(self, n: int, rng: torch.Generator) -> torch.Tensor: ...


@torch.no_grad()
def realness(discriminator: Discriminator, x: torch.Tensor, data: GaussianMixture | ImageDataset,
             rng: torch.Generator) -> torch.Tensor:
    """One score per sample. A packing discriminator reads each sample beside `pack − 1` real training
    samples, so its score is about that one sample."""
    discriminator.eval()
    pack = discriminator.pack
    if pack == 1:
        return discriminator(x).float().cpu()
    partners = data.sample(len(x) * (pack - 1), rng).reshape(len(x), pack - 1, *x.shape[1:])
    packs = torch.cat([x.unsqueeze(1), partners.to(x.device)], dim=1).reshape(len(x) * pack, *x.shape[1:])
    return discriminator(packs).float().cpu()


def _ranks(scores: torch.Tensor) -> torch.Tensor:
    """Each score's rank among its batch, scaled to [0, 1]: losses score on different scales."""
    return torch.argsort(torch.argsort(scores)).float() / max(len(scores) - 1, 1)


class Screened:
    """Samples of `source` that the `discriminators` rank highest: `ceil(n / keep)` candidates are drawn,
    ranked by each discriminator, and the `n` with the best mean rank are kept, in random order."""

    def __init__(self, source: Source, discriminators: list[Discriminator], data: GaussianMixture | ImageDataset,
                 keep: float):
        if not discriminators:
            raise ValueError("a screen needs at least one discriminator")
        if not 0 < keep <= 1:
            raise ValueError(f"the share of samples a screen keeps must be in (0, 1]; got {keep}")
        self.source, self.discriminators, self.data, self.keep = source, discriminators, data, keep

    @torch.no_grad()
    def sample(self, n: int, rng: torch.Generator) -> torch.Tensor:
        if isinstance(self.source, torch.nn.Module):
            self.source.eval()  # a product is sampled as it is judged: batch norm on its running statistics
        candidates = self.source.sample(math.ceil(n / self.keep), rng)
        if len(candidates) == n:
            return candidates
        rank = torch.stack([_ranks(realness(d, candidates, self.data, rng)) for d in self.discriminators]).mean(0)
        best = torch.argsort(rank, descending=True)[:n]
        return candidates[best[torch.randperm(n, generator=rng)]]
