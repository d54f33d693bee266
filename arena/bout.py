"""Bouts: a generator against a discriminator, trained (both optimizers) or only judged (a duel)."""

from __future__ import annotations

import time

import torch
from torch.nn import functional as F

from genome.build import Discriminator, Generator


def train_bout(generator: Generator, discriminator: Discriminator, data, steps: int, batch_size: int,
               g_optimizer: torch.optim.Optimizer, d_optimizer: torch.optim.Optimizer,
               rng: torch.Generator, first_step: int = 0) -> list[dict]:
    """Alternate one discriminator and one generator step, `steps` times, with the
    non-saturating loss; returns one trace row per step."""
    generator.train()
    discriminator.train()
    device = generator.head.weight.device
    ones = torch.ones(batch_size, device=device)
    zeros = torch.zeros(batch_size, device=device)
    rows = []
    for step in range(first_step, first_step + steps):
        real = data.sample(batch_size, rng).to(device)
        fake = generator.sample(batch_size, rng)
        d_loss = (F.binary_cross_entropy_with_logits(discriminator(real), ones)
                  + F.binary_cross_entropy_with_logits(discriminator(fake.detach()), zeros))
        d_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        d_optimizer.step()

        g_loss = F.binary_cross_entropy_with_logits(discriminator(fake), ones)
        g_optimizer.zero_grad(set_to_none=True)
        g_loss.backward()
        g_optimizer.step()
        rows.append({"step": step, "g_loss": g_loss.item(), "d_loss": d_loss.item(), "time": time.time()})
    return rows


@torch.no_grad()
def judged_real(discriminator: Discriminator, samples: torch.Tensor) -> float:
    """Share of `samples` the discriminator scores as real (logit > 0)."""
    discriminator.eval()
    return float((discriminator(samples) > 0).float().mean())


@torch.no_grad()
def duel(generator: Generator, discriminator: Discriminator, n: int, rng: torch.Generator) -> float:
    """How often `generator` fools `discriminator`: the share of n generated samples scored as real."""
    generator.eval()
    return judged_real(discriminator, generator.sample(n, rng))
