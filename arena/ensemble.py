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


# The kernel's exponent is floored here: an exp whose float32 result is subnormal or zero (exponent below about
# -87.3) is many times slower on CPU (denormal arithmetic; 8.2 against 0.27 ms for 512 x 512 entries at -95, one
# thread, timed beside a benchmark on a 2-core machine), and on the 2-D mixtures, modes far apart at the data's own
# grain, most pairs are. e^-80 (2e-35) is zero beside any kernel mean this sums to.
EXPONENT_FLOOR = -80.0


def _kernel_mean(squared: torch.Tensor, bandwidth: float) -> float:
    """Mean Gaussian kernel of bandwidth `bandwidth` over squared distances `squared`. One new tensor, the rest
    in place: for 512 x 512 pairs each new one is a megabyte the allocator maps and faults in afresh, which on
    2-D data cost more than the arithmetic; the values are the same to the bit."""
    return float(torch.div(squared, -2 * bandwidth ** 2).clamp_min_(EXPONENT_FLOOR).exp_().mean())


def _kernel_means(a: list[torch.Tensor], b: list[torch.Tensor], bandwidth: float) -> np.ndarray:
    """Mean Gaussian kernel between every sample set of `a` and every one of `b`."""
    out = np.zeros((len(a), len(b)))
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            out[i, j] = _kernel_mean(torch.cdist(x, y).pow_(2), bandwidth)
    return out


def _samples_and_scale(generators: list[Generator], real: torch.Tensor, torch_rng: torch.Generator,
                       samples: int) -> tuple[list[torch.Tensor], torch.Tensor, float]:
    """`samples` of each generator, the real ones flattened, and the real data's `local_scale`."""
    parts = _generated(generators, torch_rng, samples)
    real = real.flatten(1).float()[:samples]
    return parts, real, local_scale(real)


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


# Kernel bandwidths, as multiples of the real data's `local_scale`. On the old ladder, from the median pairwise
# distance down to a thirty-second of it, the wide kernels' sampling noise swamped the difference between sharp
# and blurred modes; on this one the blur stands clear of it, and a dropped mode is seen at least as well
# (tests/test_quality.py, test_distance_to_real_sees_how_tightly_samples_sit_on_the_modes).
SCALES = (1.0, 2.0, 4.0, 8.0, 16.0)
SCALE_SAMPLES = 512  # real samples the local scale is read from, whatever the caller holds: NN distance shrinks with n


def local_scale(real: torch.Tensor) -> float:
    """The real data's own grain, known from real samples alone: the median distance from one of (the first
    `SCALE_SAMPLES`) real samples to its nearest other one: below the modes' own spread on the 2-D mixtures,
    a little under the median pairwise distance on images, so the ladder above it fits either."""
    # Without repeats: image data sets are sampled with replacement, and a sample's twin at distance 0 would pull
    # the scale down by how small the data set is.
    real = torch.unique(real.flatten(1).float()[:SCALE_SAMPLES], dim=0)
    if len(real) < 2:
        return 1.0
    distances = torch.cdist(real, real)
    distances.fill_diagonal_(float("inf"))
    return float(distances.min(1).values.median())


class RealReference:
    """A fixed set of real training samples and the kernel to compare generators with them: each
    generator's squared maximum mean discrepancy to real data, a two-sample statistic that knows the data
    only through real samples, never the true modes or labels. A generator collapsed onto few modes is far
    from real data however many discriminators it fools, and one blurred between them is far at the data's
    own grain. The kernel is a sum of Gaussians over bandwidths from the real data's `local_scale` up to
    sixteen times it (`SCALES`). With the same samples (and so the same scale), distances measured apart
    (each player its own generator, after its training) are comparable."""

    def __init__(self, real: torch.Tensor, scale: float | None = None, scales: tuple[float, ...] = SCALES):
        self.real = real.flatten(1).float()
        self.scale = scale or local_scale(self.real)
        self.bandwidths = [self.scale * s for s in scales]
        self.within_real = [_kernel_means([self.real], [self.real], b)[0, 0] for b in self.bandwidths]

    @torch.no_grad()
    def distances(self, parts: list[torch.Tensor]) -> np.ndarray:
        """MMD² of each set of flattened generated samples in `parts` to the real ones (`_kernel_means`'
        arithmetic, each pair of sets' squared distances computed once for every bandwidth)."""
        out = np.zeros(len(parts))
        squared = [(torch.cdist(x, x).pow_(2), torch.cdist(x, self.real).pow_(2)) for x in parts]
        for bandwidth, real in zip(self.bandwidths, self.within_real):
            for i, (within, cross) in enumerate(squared):
                out[i] += _kernel_mean(within, bandwidth) - 2 * _kernel_mean(cross, bandwidth) + real
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
    samples; `RealReference`, its scale read from them)."""
    parts, real, scale = _samples_and_scale(generators, real, torch_rng, samples)
    return RealReference(real, scale).distances(parts)


@torch.no_grad()
def fit_weights(mixture: Mixture, real: torch.Tensor, torch_rng: torch.Generator, samples: int = 512,
                iterations: int = 500, scales: tuple[float, ...] = SCALES) -> np.ndarray:
    """Weights on the simplex that minimise the maximum mean discrepancy between the mixture and `real`
    (held-out real training samples), with the kernel of `distances_to_real`: Gaussians of the real data's
    `local_scale` times each of `scales`, summed (a single wide kernel cannot tell which modes are covered,
    nor how tightly samples sit on them).

    MMD² of a mixture is quadratic in its weights, wᵀKw − 2wᵀk + const, where K holds the mean kernel
    between components' samples (within one component's, over distinct pairs: the unbiased estimate) and
    k that between each component and the real ones: the fit is an
    exact small problem, solved by exponentiated gradient, not a noisy search. Sets and returns them."""
    k = len(mixture.generators)
    if k == 1:
        mixture.weights = np.ones(1)
        return mixture.weights
    parts, real, scale = _samples_and_scale(mixture.generators, real, torch_rng, samples)
    gram = sum(_kernel_means(parts, parts, scale * s) for s in scales)
    cross = sum(_kernel_means(parts, [real], scale * s)[:, 0] for s in scales)
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
