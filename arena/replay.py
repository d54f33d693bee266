"""Fake replay: the seed's expert who labels the images and sends them back. Fakes that fooled a
player's discriminator join its training data, labelled fake, from a bounded buffer."""

from __future__ import annotations

import torch


class ReplayBuffer:
    """Keeps at most `capacity` samples; when full, new fakes replace random old ones (reservoir-like),
    so the buffer covers the run's history rather than only its last fights."""

    def __init__(self, capacity: int):
        if capacity < 0:
            raise ValueError(f"replay capacity must be non-negative; got {capacity!r}")
        self.capacity = capacity
        self.samples: torch.Tensor | None = None

    def __len__(self) -> int:
        return 0 if self.samples is None else len(self.samples)

    def add(self, fakes: torch.Tensor, rng: torch.Generator) -> None:
        if not self.capacity or not len(fakes):
            return
        fakes = fakes.detach().cpu()[: self.capacity]
        if self.samples is None:
            self.samples = fakes.clone()
            return
        room = self.capacity - len(self.samples)
        if room > 0:
            self.samples = torch.cat([self.samples, fakes[:room]])
            fakes = fakes[room:]
        if len(fakes):
            slots = torch.randperm(len(self.samples), generator=rng)[: len(fakes)]
            self.samples[slots] = fakes

    def sample(self, n: int, rng: torch.Generator) -> torch.Tensor | None:
        if not len(self) or n <= 0:
            return None
        return self.samples[torch.randint(len(self), (n,), generator=rng)]
