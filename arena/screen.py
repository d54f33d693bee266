"""Screening: the arena's discriminators pass judgement on each sample of its product, and only the samples
they find most real are given out (a discriminator's rejection of a generator's errors, as in Azadi et al.
2019, "Discriminator Rejection Sampling"; here by rank, since the population's losses score on different
scales). A screen uses discriminators and real training data only, never a metric that knows the true modes
or labels.

A screen that keeps the samples ranked most real over all candidates keeps the discriminators' favourite regions
and thins the rest: on grid25 it raised high quality and also KL (a good generator's 0.006 to 0.176, BENCHMARKS.md
row 2026-12-04T13:30:28). So the screen works within regions: each candidate belongs to the nearest of
`regions` real training samples and is ranked among its region's candidates, and the regions take turns, each
giving out its best first, then its next. They take turns at the pace of their real mass (the share of `MASS`
real training samples per region, drawn afresh, that fall in it): Webster's apportionment, a region's k-th best
going out at (k + 1/2) / its mass. So the samples given out spread over the data as real data does, as far as
the generator has candidates there: a generator that draws one mode (or digit) twice as often as another is given
out nearer even; each region's worst is dropped where it has candidates to spare; a region the generator never
reaches stays empty and the others fill in. Runs recorded before this (`balanced` false) took turns at the pace
of each region's candidates, which keeps the generator's own proportions."""

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
MASS = 64  # real training samples per region that measure its real mass: about ±12 % (Poisson), ample for turns
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


def turns(rank: torch.Tensor, region: torch.Tensor, mass: torch.Tensor | None = None) -> torch.Tensor:
    """When each candidate is given out (lowest first), its region's k-th best by `rank` (k from 0): at
    (k + 1/2) / the region's real `mass` (a region without any: infinity, last); without `mass`, at k / (the
    region's candidates − 1), so that every region gives out the same share of its candidates (a lone one at 0)."""
    order = torch.argsort(rank, descending=True, stable=True)
    order = order[torch.argsort(region[order], stable=True)]  # grouped by region, best first within each
    counts = torch.bincount(region, minlength=0 if mass is None else len(mass))
    group = region[order]
    position = (torch.arange(len(rank)) - (torch.cumsum(counts, 0) - counts)[group]).double()
    out = torch.empty_like(rank, dtype=torch.float64)
    if mass is None:
        out[order] = position / (counts[group] - 1).clamp(min=1).double()
    else:
        out[order] = (position + 0.5) / mass.double()[group]
    return out


def treated(share: float, refine: int) -> bool:
    """Whether products are screened or refined at all: keeping every candidate and refining none is neither."""
    return share < 1 or refine > 0


class Screened:
    """Samples of `source` that the `discriminators` rank highest: `ceil(n / keep)` candidates are drawn,
    ranked by each discriminator (the mean of their ranks, leaving out one that judges none), and `n` are kept,
    in random order: with `regions`, by `turns` (the nearest of `regions` real training samples, drawn afresh each
    time; with `balanced`, at the pace of each region's real mass; the module says why), ties by their rank over
    all; with 0, those ranked highest over all; a candidate no discriminator judges goes last. With `refine`, the
    kept samples then climb the discriminators' scores for at most that many steps (`arena.refine`), as many as
    `settled` finds once per product, on its first draw (or on a draw of `SETTLE` samples first, when that one
    is smaller)."""

    def __init__(self, source: Source, discriminators: list[Discriminator], data: GaussianMixture | ImageDataset,
                 keep: float, regions: int = REGIONS, refine: int = 0, balanced: bool = True):
        if not discriminators:
            raise ValueError("a screen needs at least one discriminator")
        if not 0 < keep <= 1:
            raise ValueError(f"the share of samples a screen keeps must be in (0, 1]; got {keep}")
        if isinstance(regions, bool) or not isinstance(regions, int) or regions < 0:
            raise ValueError(f"a screen's regions must be a non-negative integer; got {regions!r}")
        check(data, refine)
        self.source, self.discriminators, self.data, self.keep = source, discriminators, data, keep
        self.regions, self.refine, self.balanced = regions, refine, balanced
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
            anchors = self.data.sample(self.regions, rng).to(candidates.device)
            region = nearest(candidates, anchors).cpu()  # as rank
            mass = None
            if self.balanced:
                real = nearest(self.data.sample(MASS * self.regions, rng).to(candidates.device), anchors).cpu()
                mass = torch.bincount(real, minlength=len(anchors)).double() / len(real)
            turn = turns(rank, region, mass)
            turn[scores.isnan().all(0)] = torch.nan  # judged by none: after every other, even a region's without mass
            best = best[torch.argsort(turn[best], stable=True)]  # ties: by rank over all
        best = best[:n]
        return candidates[best[torch.randperm(n, generator=rng)]]
