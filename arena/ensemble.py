"""Mixtures of generators, as Lipizzaner's: sample from the top-k with weights that improve quality."""

from __future__ import annotations

import numpy as np
import torch

from genome.build import Generator


class Mixture:
    def __init__(self, generators: list[Generator], weights: np.ndarray | None = None):
        if not generators:
            raise ValueError("a mixture needs at least one generator")
        self.generators = generators
        self.weights = np.full(len(generators), 1 / len(generators)) if weights is None else np.asarray(weights)

    @torch.no_grad()
    def sample(self, n: int, rng: torch.Generator) -> torch.Tensor:
        """n samples; component i contributes a share drawn with probability weights[i]."""
        choice = torch.multinomial(torch.as_tensor(self.weights, dtype=torch.float), n, replacement=True,
                                   generator=rng)
        parts = []
        for i, generator in enumerate(self.generators):
            count = int((choice == i).sum())
            if count:
                generator.eval()
                parts.append(generator.sample(count, rng))
        samples = torch.cat(parts)
        return samples[torch.randperm(n, generator=rng)]


def quality_loss(metrics: dict) -> float:
    """One number to minimise: FID for images; for 2-D mixtures, KL plus the share of low-quality samples."""
    if "fid" in metrics:
        return metrics["fid"]
    return metrics["kl"] + (1 - metrics["high_quality"])


def fit_weights(mixture: Mixture, judge, rng: np.random.Generator, torch_rng: torch.Generator,
                iterations: int = 20) -> dict:
    """Random search on the simplex (Dirichlet steps around the current weights), keeping improvements;
    starts from uniform weights. Returns the metrics of the final weights on a fresh sample, since
    the best of several noisy estimates flatters."""
    best = judge.quality(mixture.sample(judge.samples, torch_rng))
    if len(mixture.generators) == 1:
        return best
    for _ in range(iterations):
        previous = mixture.weights
        mixture.weights = rng.dirichlet(previous * 20 + 0.5)
        metrics = judge.quality(mixture.sample(judge.samples, torch_rng))
        if quality_loss(metrics) < quality_loss(best):
            best = metrics
        else:
            mixture.weights = previous
    return judge.quality(mixture.sample(judge.samples, torch_rng))
