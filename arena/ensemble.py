"""Mixtures of generators, as Lipizzaner's: sample from several generators with weights fitted on real
training data only (never on a metric that knows the true modes or labels)."""

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
    """One number to minimise: FID for images; for 2-D mixtures, KL plus the share of low-quality samples.
    A judge's number (it knows the true modes or labels): for diagnostics, never for choosing."""
    if "fid" in metrics:
        return metrics["fid"]
    return metrics["kl"] + (1 - metrics["high_quality"])


def _kernel_means(a: list[torch.Tensor], b: list[torch.Tensor], bandwidth: float) -> np.ndarray:
    """Mean Gaussian kernel between every sample set of `a` and every one of `b`."""
    out = np.zeros((len(a), len(b)))
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            out[i, j] = float(torch.exp(-torch.cdist(x, y).pow(2) / (2 * bandwidth ** 2)).mean())
    return out


def _samples_and_bandwidth(generators: list[Generator], real: torch.Tensor, torch_rng: torch.Generator,
                           samples: int) -> tuple[list[torch.Tensor], torch.Tensor, float]:
    """`samples` of each generator, the real ones flattened, and the Gaussian kernel's bandwidth: the
    median pairwise distance of real and generated samples pooled."""
    parts = []
    for generator in generators:
        generator.eval()
        parts.append(generator.sample(samples, torch_rng).flatten(1).float())
    real = real.flatten(1).float()[:samples]
    pooled = torch.cat([real, *[p[: max(1, samples // len(parts))] for p in parts]])
    return parts, real, float(torch.cdist(pooled, pooled).median()) or 1.0


SCALES = (0.125, 0.25, 0.5, 1.0)  # kernel bandwidths, as shares of the median distance


@torch.no_grad()
def distances_to_real(generators: list[Generator], real: torch.Tensor, torch_rng: torch.Generator,
                      samples: int = 1024) -> np.ndarray:
    """Each generator's squared maximum mean discrepancy to `real` (held-out real training samples): a
    two-sample statistic that knows the data only through real samples, never the true modes or labels.
    A generator collapsed onto few modes is far from real data however many discriminators it fools.
    The kernel is a sum over bandwidths from the median distance down to an eighth of it: the median
    alone (about 4.5 on grid25, wider than the modes' spacing of 2) cannot tell 13 modes of 25 from all."""
    parts, real, median = _samples_and_bandwidth(generators, real, torch_rng, samples)
    out = np.zeros(len(parts))
    for bandwidth in (median * s for s in SCALES):
        within = np.diag(_kernel_means(parts, parts, bandwidth))
        out += within - 2 * _kernel_means(parts, [real], bandwidth)[:, 0] + _kernel_means([real], [real], bandwidth)[0, 0]
    return out


@torch.no_grad()
def fit_weights(mixture: Mixture, real: torch.Tensor, torch_rng: torch.Generator, samples: int = 512,
                iterations: int = 500) -> np.ndarray:
    """Weights on the simplex that minimise the maximum mean discrepancy between the mixture and `real`
    (held-out real training samples), with a Gaussian kernel of the median pairwise distance.

    MMD² of a mixture is quadratic in its weights, wᵀKw − 2wᵀk + const, where K holds the mean kernel
    between components' samples and k that between each component and the real ones: the fit is an
    exact small problem, solved by exponentiated gradient, not a noisy search. Sets and returns them."""
    k = len(mixture.generators)
    if k == 1:
        mixture.weights = np.ones(1)
        return mixture.weights
    parts, real, bandwidth = _samples_and_bandwidth(mixture.generators, real, torch_rng, samples)
    gram, cross = _kernel_means(parts, parts, bandwidth), _kernel_means(parts, [real], bandwidth)[:, 0]
    weights = np.full(k, 1 / k)
    step = 1.0 / max(np.abs(gram).max(), 1e-12)
    for _ in range(iterations):
        gradient = 2 * (gram @ weights - cross)
        weights = weights * np.exp(-step * gradient)
        weights /= weights.sum()
    mixture.weights = weights
    return weights
