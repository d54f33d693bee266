"""Quality of what generators produce, by the protocols published systems report.

- 2-D mixtures, the VEEGAN/PacGAN protocol: a sample is high quality within 3σ of its nearest mean;
  a mode is captured when it is the nearest mean of at least one high-quality sample; the KL
  divergence of the generated mode histogram (high-quality samples) from the true, uniform one.
- Images, the Lipizzaner protocol: FID on the 10-dimensional penultimate features of a small CNN
  classifier trained on the real training split, and the total variation distance between the
  class distribution of generated samples and that of real data.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from arena.datasets import GaussianMixture, ImageDataset

MIXTURE_SAMPLES = 2500  # VEEGAN and PacGAN evaluate on 2,500 samples
IMAGE_SAMPLES = 2000


def mixture_quality(samples: np.ndarray, data: GaussianMixture) -> dict:
    """Modes captured, high-quality share and KL(generated mode histogram ‖ uniform)."""
    samples = np.asarray(samples, dtype=np.float64).reshape(len(samples), -1)
    distances = np.linalg.norm(samples[:, None, :] - data.means[None, :, :], axis=2)
    nearest = distances.argmin(axis=1)
    high_quality = distances.min(axis=1) <= 3 * data.sigma
    modes = len(data.means)
    counts = np.bincount(nearest[high_quality], minlength=modes)
    if counts.sum():
        p = counts / counts.sum()
        kl = float(np.sum(p[p > 0] * np.log(p[p > 0] * modes)))
    else:
        kl = float(np.log(modes))  # nothing near any mode: as far from uniform as a single mode
    return {"modes": int((counts > 0).sum()), "high_quality": float(high_quality.mean()), "kl": kl}


class DigitClassifier(nn.Module):
    """A small CNN whose penultimate layer has 10 units: the feature space of Lipizzaner's FID."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
            nn.Linear(64 * 16, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 10))
        self.out = nn.Linear(10, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x))


def _data_hash(data: ImageDataset) -> str:
    digest = hashlib.sha256(data.images.numpy().tobytes())
    digest.update(data.labels.numpy().tobytes())
    return digest.hexdigest()[:16]


def cache_dir() -> Path:
    return Path(os.environ.get("ARENA_CACHE", Path.home() / ".cache" / "arena"))


def train_classifier(data: ImageDataset, epochs: int = 12, seed: int = 0) -> tuple[DigitClassifier, float]:
    """Train on the training split; returns the classifier and its accuracy on the held-out split.

    Initialisation and dropout draw from a fork of the global random state, restored on return: a player
    that calls this keeps the random stream it had (issue 12), and the classifier is the one a seeded
    global state gave before."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        rng = torch.Generator().manual_seed(seed)
        model = DigitClassifier(data.shape[0])
        optimizer = torch.optim.Adam(model.parameters(), 1e-3)
        images, labels = data.split("train")
        model.train()
        for _ in range(epochs):
            for batch in torch.randperm(len(images), generator=rng).split(64):
                loss = F.cross_entropy(model(images[batch]), labels[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    model.eval()
    test_images, test_labels = data.split("test")
    with torch.no_grad():
        accuracy = float((model(test_images).argmax(1) == test_labels).float().mean())
    return model, accuracy


def load_classifier(data: ImageDataset) -> tuple[DigitClassifier, float]:
    """The data set's classifier, trained once and cached by a hash of the data."""
    path = cache_dir() / f"classifier-{data.name}-{_data_hash(data)}.pt"
    if path.exists():
        with torch.random.fork_rng(devices=[]):  # its first weights, replaced by the cached ones, draw no player's stream
            model = DigitClassifier(data.shape[0])
        saved = torch.load(path, weights_only=True)
        model.load_state_dict(saved["state"])
        model.eval()
        return model, float(saved["test_accuracy"])
    model, accuracy = train_classifier(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    torch.save({"state": model.state_dict(), "test_accuracy": accuracy}, temporary)
    temporary.replace(path)  # atomic: players starting together never read half a file
    return model, accuracy


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (the FID formula)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    # A small ridge keeps the square root defined when a generator's features collapse.
    ridge = 1e-6 * np.eye(a.shape[1])
    cov_a, cov_b = np.cov(a, rowvar=False) + ridge, np.cov(b, rowvar=False) + ridge
    from scipy import linalg  # here: only image runs need it, and every player imports this module

    root = linalg.sqrtm(cov_a @ cov_b)
    root = root.real
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2 * root))


class ImageJudge:
    """FID and TVD of generated images against the held-out real images, through the classifier."""

    def __init__(self, data: ImageDataset):
        self.classifier, self.test_accuracy = load_classifier(data)
        real, _ = data.split("test")
        with torch.no_grad():
            self.real_features = self.classifier.features(real).numpy()
            real_classes = self.classifier.out(torch.as_tensor(self.real_features)).argmax(1)
        self.real_distribution = np.bincount(real_classes.numpy(), minlength=10) / len(real_classes)

    @torch.no_grad()
    def quality(self, images: torch.Tensor) -> dict:
        features = self.classifier.features(images.float().cpu())
        classes = self.classifier.out(features).argmax(1).numpy()
        distribution = np.bincount(classes, minlength=10) / len(classes)
        return {"fid": frechet_distance(features.numpy(), self.real_features),
                "tvd": float(0.5 * np.abs(distribution - self.real_distribution).sum()),
                "classifier_accuracy": self.test_accuracy}


class Judge:
    """Quality of samples for any data set, by the protocol that fits it."""

    def __init__(self, data: GaussianMixture | ImageDataset):
        self.data = data
        self.images = ImageJudge(data) if isinstance(data, ImageDataset) else None
        self.samples = IMAGE_SAMPLES if self.images else MIXTURE_SAMPLES

    def quality(self, samples: torch.Tensor) -> dict:
        if self.images:
            return self.images.quality(samples)
        return mixture_quality(samples.detach().cpu().numpy(), self.data)
