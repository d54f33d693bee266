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


CHUNK = 4096  # candidates a discriminator reads at once: bounded memory for any number of samples


@torch.no_grad()
def realness(discriminator: Discriminator, x: torch.Tensor, data: GaussianMixture | ImageDataset,
             rng: torch.Generator) -> torch.Tensor:
    """One score per sample. A packing discriminator reads each sample beside `pack − 1` real training
    samples of its own, so its score is about that sample (and, a little, the company it keeps)."""
    discriminator.eval()
    pack = discriminator.pack
    scores = []
    for part in x.split(CHUNK):
        if pack > 1:
            partners = data.sample(len(part) * (pack - 1), rng).reshape(len(part), pack - 1, *x.shape[1:])
            packs = torch.cat([part.unsqueeze(1), partners.to(x.device)], dim=1)
            part = packs.reshape(len(part) * pack, *x.shape[1:])
        scores.append(discriminator(part).float().cpu())
    return torch.cat(scores)


def _ranks(scores: torch.Tensor) -> torch.Tensor:
    """Each score's rank among its batch, scaled to [0, 1]: losses score on different scales. A score that
    is not a number (a diverged discriminator) ranks least real."""
    scores = torch.nan_to_num(scores, nan=-torch.inf)
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
