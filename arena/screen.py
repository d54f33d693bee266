"""Screening: the arena's discriminators pass judgement on each sample of its product, and only the samples
they find most real are given out (a discriminator's rejection of a generator's errors, as in Azadi et al.
2019, "Discriminator Rejection Sampling"; here by rank, since the population's losses score on different
scales). A screen uses discriminators and real training data only, never a metric that knows the true modes
or labels.

A screen that keeps the samples ranked most real over all candidates keeps the discriminators' favourite regions
and thins the rest: on grid25 it raised high quality and also KL (a good generator's 0.006 to 0.176, BENCHMARKS.md
row 2026-12-04T13:30:28). So the screen works within regions: each candidate belongs to the nearest of
`regions` real training samples and is ranked among its region's candidates; every region gives out its best
first, then the next of each by that rank. A region keeps about the share kept of its candidates, plus its
best, so the generator's spread over the data is kept (rare regions a little favoured) and the worst of each
region dropped; when fewer samples are asked for than there are regions, they are the bests of the regions."""

from __future__ import annotations

import math
from typing import Protocol

import torch

from arena.datasets import GaussianMixture, ImageDataset
from arena.refine import check, packed, refine, settled
from genome.build import Discriminator


class Source(Protocol):
    def sample(self, n: int, rng: torch.Generator) -> torch.Tensor: ...


CHUNK = 4096  # candidates a discriminator reads at once: bounded memory for any number of samples
REGIONS = 128  # real training samples whose nearest candidates form one region of a screen (0: one region)
SETTLE = 2048  # fewest kept samples on which a product settles how far refinement goes (arena.refine.settled)


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
            part = packed(part, partners.to(x.device))
        scores.append(discriminator(part).float().cpu())
    return torch.cat(scores)


def _ranks(scores: torch.Tensor) -> torch.Tensor:
    """Each score's rank among its batch, scaled to [0, 1]: losses score on different scales. A score that
    is not a number (a diverged discriminator) ranks least real."""
    scores = torch.nan_to_num(scores, nan=-torch.inf)
    return torch.argsort(torch.argsort(scores)).float() / max(len(scores) - 1, 1)


def nearest(x: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """The index of each sample's nearest anchor (flattened, Euclidean), in chunks of `CHUNK`."""
    anchors = anchors.flatten(1).float()
    return torch.cat([torch.cdist(part.flatten(1).float(), anchors).argmin(1) for part in x.split(CHUNK)])


def within(rank: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Each rank's rank among those of its region, scaled to [0, 1] (1: the best there; a region's only one, 1)."""
    order = torch.argsort(rank, stable=True)
    order = order[torch.argsort(region[order], stable=True)]  # grouped by region, ascending within each
    counts = torch.bincount(region)
    group = region[order]
    position = torch.arange(len(rank)) - (torch.cumsum(counts, 0) - counts)[group]
    out = torch.empty_like(rank)
    out[order] = torch.where(counts[group] > 1, position.float() / (counts[group] - 1).clamp(min=1), 1.0)
    return out


def treated(share: float, refine: int) -> bool:
    """Whether products are screened or refined at all: keeping every candidate and refining none is neither."""
    return share < 1 or refine > 0


class Screened:
    """Samples of `source` that the `discriminators` rank highest: `ceil(n / keep)` candidates are drawn,
    ranked by each discriminator (the mean of their ranks, leaving out one that judges none), and `n` are kept,
    in random order: with `regions`, those ranked highest within their region (the nearest of `regions` real
    training samples, drawn afresh each time), ties by their rank over all; with 0, those ranked highest over
    all; a candidate no discriminator judges goes last. With `refine`, the kept
    samples then climb the discriminators' scores for at most that many steps (`arena.refine`), as many as
    `settled` finds once per product, on its first draw (or on a draw of `SETTLE` samples first, when that one
    is smaller)."""

    def __init__(self, source: Source, discriminators: list[Discriminator], data: GaussianMixture | ImageDataset,
                 keep: float, regions: int = REGIONS, refine: int = 0):
        if not discriminators:
            raise ValueError("a screen needs at least one discriminator")
        if not 0 < keep <= 1:
            raise ValueError(f"the share of samples a screen keeps must be in (0, 1]; got {keep}")
        if isinstance(regions, bool) or not isinstance(regions, int) or regions < 0:
            raise ValueError(f"a screen's regions must be a non-negative integer; got {regions!r}")
        check(data, refine)
        self.source, self.discriminators, self.data, self.keep = source, discriminators, data, keep
        self.regions, self.refine = regions, refine
        self.steps: int | None = None  # refinement steps, settled at the first draw

    def sample(self, n: int, rng: torch.Generator) -> torch.Tensor:
        kept = self._kept(n, rng)
        if not self.refine:
            return kept
        if self.steps is None:
            if n >= SETTLE:  # this draw is large enough to settle on: it climbs once
                self.steps, refined = settled(kept, self.discriminators, self.data, rng, self.refine)
                return refined
            self.steps = settled(self._kept(SETTLE, rng), self.discriminators, self.data, rng, self.refine)[0]
        return refine(kept, self.discriminators, self.data, rng, self.steps)

    @torch.no_grad()
    def _kept(self, n: int, rng: torch.Generator) -> torch.Tensor:
        if isinstance(self.source, torch.nn.Module):
            self.source.eval()  # a product is sampled as it is judged: batch norm on its running statistics
        candidates = self.source.sample(math.ceil(n / self.keep), rng)
        if len(candidates) == n:
            return candidates
        scores = torch.stack([realness(d, candidates, self.data, rng) for d in self.discriminators])
        judging = ~scores.isnan().all(1)  # a diverged discriminator (all NaN) would rank by index: left out
        scores = scores[judging] if judging.any() else scores
        rank = torch.stack([_ranks(score) for score in scores]).mean(0)
        best = torch.argsort(rank, descending=True, stable=True)
        if self.regions:
            region = nearest(candidates, self.data.sample(self.regions, rng).to(candidates.device)).cpu()  # as rank
            turn = within(rank, region)
            turn[scores.isnan().all(0)] = -torch.inf  # judged by none: after every other, even a region's best
            best = best[torch.argsort(turn[best], descending=True, stable=True)]
        best = best[:n]
        return candidates[best[torch.randperm(n, generator=rng)]]
