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
    parts = _generated(generators, torch_rng, samples)
    real = real.flatten(1).float()[:samples]
    pooled = torch.cat([real, *[p[: max(1, samples // len(parts))] for p in parts]])
    return parts, real, float(torch.cdist(pooled, pooled).median()) or 1.0


@torch.no_grad()
def _generated(generators: list[Generator], torch_rng: torch.Generator, samples: int) -> list[torch.Tensor]:
    """`samples` of each source, flattened: a generator (put in eval mode) or anything that samples (a mixture,
    a screened product)."""
    parts = []
    for generator in generators:
        if isinstance(generator, torch.nn.Module):
            generator.eval()
        parts.append(generator.sample(samples, torch_rng).flatten(1).float())
    return parts


# Kernel bandwidths, as shares of the median distance: down to a thirty-second (0.14 on grid25, whose modes
# have a sigma of 0.05) so the distance sees how tightly samples sit on the modes, not only which modes.
SCALES = (1 / 32, 1 / 16, 0.125, 0.25, 0.5, 1.0)


class RealReference:
    """A fixed set of real training samples and the kernel to compare generators with them: each
    generator's squared maximum mean discrepancy to real data, a two-sample statistic that knows the data
    only through real samples, never the true modes or labels. A generator collapsed onto few modes is far
    from real data however many discriminators it fools. The kernel is a sum over bandwidths from `median`
    down to a thirty-second of it (`SCALES`): the median alone (about 4.5 on grid25, wider than the modes' spacing of 2)
    cannot tell 13 modes of 25 from all. With the same samples and median, distances measured apart (each
    player its own generator, after its training) are comparable."""

    def __init__(self, real: torch.Tensor, median: float | None = None):
        self.real = real.flatten(1).float()
        self.median = median or float(torch.cdist(self.real, self.real).median()) or 1.0
        self.bandwidths = [self.median * s for s in SCALES]
        self.within_real = [_kernel_means([self.real], [self.real], b)[0, 0] for b in self.bandwidths]

    @torch.no_grad()
    def distances(self, parts: list[torch.Tensor]) -> np.ndarray:
        """MMD² of each set of flattened generated samples in `parts` to the real ones (`_kernel_means`'
        arithmetic, each pair of sets' squared distances computed once for every bandwidth)."""
        out = np.zeros(len(parts))
        squared = [(torch.cdist(x, x).pow(2), torch.cdist(x, self.real).pow(2)) for x in parts]
        for bandwidth, real in zip(self.bandwidths, self.within_real):
            for i, (within, cross) in enumerate(squared):
                out[i] += float(torch.exp(-within / (2 * bandwidth ** 2)).mean()) \
                    - 2 * float(torch.exp(-cross / (2 * bandwidth ** 2)).mean()) + real
        return out

    @torch.no_grad()
    def distance(self, generator: Generator, torch_rng: torch.Generator) -> float:
        """One generator's MMD² to the real samples, from as many of its samples; leaves it in eval mode
        (its normalisations' running statistics untouched)."""
        return float(self.distances([_generated([generator], torch_rng, len(self.real))[0].to(self.real.device)])[0])


@torch.no_grad()
def distances_to_real(generators: list, real: torch.Tensor, torch_rng: torch.Generator,
                      samples: int = 1024) -> np.ndarray:
    """Each generator's (or sampling source's: a screened product) squared MMD to `real` (held-out real training
    samples; `RealReference`), the kernel's median taken over real and generated samples pooled."""
    parts, real, median = _samples_and_bandwidth(generators, real, torch_rng, samples)
    return RealReference(real, median).distances(parts)


@torch.no_grad()
def fit_weights(mixture: Mixture, real: torch.Tensor, torch_rng: torch.Generator, samples: int = 512,
                iterations: int = 500, scales: tuple[float, ...] = SCALES) -> np.ndarray:
    """Weights on the simplex that minimise the maximum mean discrepancy between the mixture and `real`
    (held-out real training samples), with the kernel of `distances_to_real`: Gaussians of the median
    pairwise distance times each of `scales`, summed (the median alone cannot tell which modes are
    covered, nor how tightly samples sit on them).

    MMD² of a mixture is quadratic in its weights, wᵀKw − 2wᵀk + const, where K holds the mean kernel
    between components' samples (within one component's, over distinct pairs: the unbiased estimate) and
    k that between each component and the real ones: the fit is an
    exact small problem, solved by exponentiated gradient, not a noisy search. Sets and returns them."""
    k = len(mixture.generators)
    if k == 1:
        mixture.weights = np.ones(1)
        return mixture.weights
    parts, real, median = _samples_and_bandwidth(mixture.generators, real, torch_rng, samples)
    gram = sum(_kernel_means(parts, parts, median * s) for s in scales)
    cross = sum(_kernel_means(parts, [real], median * s)[:, 0] for s in scales)
    # Without each sample's kernel with itself (1 per scale): that bias of 1/n on the diagonal favours
    # mixing for its own sake, and outweighs a small difference of quality.
    n = samples = parts[0].shape[0]
    gram[np.diag_indices(k)] = (gram.diagonal() * n * n - n * len(scales)) / (n * (n - 1))
    weights = np.full(k, 1 / k)
    step = 1.0 / max(np.abs(gram).max(), 1e-12)
    for _ in range(iterations):
        gradient = 2 * (gram @ weights - cross)
        weights = weights * np.exp(-step * gradient)
        weights /= weights.sum()
    mixture.weights = weights
    return weights
