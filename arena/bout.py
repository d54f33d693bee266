"""Bouts: a generator against a discriminator, trained (both optimizers) or only judged (a duel)."""

from __future__ import annotations

import time

import torch
from torch.nn import functional as F

from genome.build import Discriminator, Generator


def discriminator_loss(loss: str, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    if loss in ("minimax", "non_saturating"):  # they differ only on the generator's side
        return F.softplus(-real_scores).mean() + F.softplus(fake_scores).mean()
    if loss == "least_squares":
        return 0.5 * ((real_scores - 1) ** 2).mean() + 0.5 * (fake_scores ** 2).mean()
    if loss == "hinge":
        return F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()
    raise ValueError(f"unknown loss {loss!r}")


def generator_loss(loss: str, fake_scores: torch.Tensor) -> torch.Tensor:
    if loss == "minimax":  # minimise log(1 - D(G(z)))
        return -F.softplus(fake_scores).mean()
    if loss == "non_saturating":  # maximise log D(G(z))
        return F.softplus(-fake_scores).mean()
    if loss == "least_squares":
        return 0.5 * ((fake_scores - 1) ** 2).mean()
    if loss == "hinge":
        return -fake_scores.mean()
    raise ValueError(f"unknown loss {loss!r}")


def train_bout(generator: Generator, discriminator: Discriminator, data, steps: int, batch_size: int,
               g_optimizer: torch.optim.Optimizer, d_optimizer: torch.optim.Optimizer,
               rng: torch.Generator, first_step: int = 0, loss: str = "non_saturating",
               deadline: float | None = None) -> list[dict]:
    """Alternate one discriminator and one generator step, `steps` times (fewer if the wall-clock
    `deadline` passes first), with the pair's `loss`; returns one trace row per step taken."""
    generator.train()
    discriminator.train()
    device = generator.device
    rows = []
    for step in range(first_step, first_step + steps):
        if deadline is not None and rows and time.time() >= deadline:
            break
        real = data.sample(batch_size, rng).to(device)
        fake = generator.sample(batch_size, rng)
        d_loss = discriminator_loss(loss, discriminator(real), discriminator(fake.detach()))
        d_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        d_optimizer.step()

        g_loss = generator_loss(loss, discriminator(fake))
        g_optimizer.zero_grad(set_to_none=True)
        g_loss.backward()
        g_optimizer.step()
        rows.append({"step": step, "g_loss": g_loss.item(), "d_loss": d_loss.item(), "time": time.time()})
    return rows


@torch.no_grad()
def judged_real(discriminator: Discriminator, samples: torch.Tensor) -> float:
    """Share of `samples` the discriminator scores as real (above its threshold)."""
    discriminator.eval()
    return float(discriminator.judges_real(samples).float().mean())


@torch.no_grad()
def duel(generator: Generator, discriminator: Discriminator, n: int, rng: torch.Generator) -> float:
    """How often `generator` fools `discriminator`: the share of n generated samples scored as real."""
    generator.eval()
    return judged_real(discriminator, generator.sample(n, rng))
