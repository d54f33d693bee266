"""Bouts: lists of generators against lists of discriminators, trained or only judged."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn import functional as F

from arena.average import Average
from arena.replay import ReplayBuffer
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


def _combined(parts: list[torch.Tensor], join: Callable | None = None) -> torch.Tensor:
    """One part as it is; several joined (`join`) or averaged. A pair's own training has one of each, and
    the sum and division by one, or a concatenation of one, would be ops (and autograd nodes) of every step
    that change nothing."""
    if len(parts) == 1:
        return parts[0]
    return join(parts) if join is not None else sum(parts) / len(parts)


@dataclass
class Bout:
    rows: list[dict] = field(default_factory=list)  # one trace row per training step
    fooled: np.ndarray | None = None  # judge(): share of generator i's fakes that discriminator j took for real
    fooling: list[torch.Tensor] | None = None  # judge(): for each discriminator, the fakes that fooled it


def bout(generators: list[Generator], discriminators: list[Discriminator], data, steps: int, batch_size: int,
         rng: torch.Generator, *, g_optimizer: torch.optim.Optimizer | None = None,
         d_optimizer: torch.optim.Optimizer | None = None, loss: str = "non_saturating", generator_first: int = 0,
         replay: ReplayBuffer | None = None, replay_share: float = 0.0, first_step: int = 0,
         deadline: float | None = None, between: Callable[[], None] | None = None,
         average: Average | None = None) -> Bout:
    """Training: generators against discriminators, the one function behind a pair's own training and
    cross-training (matches are `judge`, over the same lists).

    - With an optimizer on either side it trains for `steps` steps (fewer if the wall-clock
      `deadline` passes): each discriminator with `d_optimizer` learns from real data and every
      generator's fakes (plus `replay_share` of a batch drawn from `replay`, fakes that fooled it
      before, labelled fake); each generator with
      `g_optimizer` learns to fool every discriminator. Training a pair is `bout([G], [D])` with both
      optimizers; cross-training gives one side's optimizer only. For the first `generator_first`
      steps only the generator learns (two-phase training: then the discriminator chases it).
    - `average`, of the one generator, is updated after each of its steps.
    """
    if g_optimizer is None and d_optimizer is None:
        raise ValueError("a bout trains: give g_optimizer, d_optimizer or both (a match is judge())")
    for net in generators:
        net.train(g_optimizer is not None)
    for net in discriminators:
        net.train(d_optimizer is not None)
    device = generators[0].device
    share = max(1, batch_size // len(generators))
    # Losses stay tensors until the bout ends: a `.item()` per step would wait for the device every step.
    done, g_losses, d_losses, times = [], [], [], []
    idle = torch.zeros((), device=device)  # the loss of a side that does not learn this step
    for step in range(first_step, first_step + steps):
        if deadline is not None and done and time.time() >= deadline:
            break
        if between is not None and done:
            between()
        fakes = _combined([g.sample(share, rng) for g in generators], torch.cat)
        d_loss = idle
        if d_optimizer is not None and step - first_step >= generator_first:
            real = data.sample(batch_size, rng).to(device)
            replayed = replay.sample(int(batch_size * replay_share), rng) if replay is not None else None
            caught = fakes.detach() if replayed is None else torch.cat([fakes.detach(), replayed.to(device)])
            d_loss = _combined([discriminator_loss(loss, d(real), d(caught)) for d in discriminators])
            d_optimizer.zero_grad(set_to_none=True)
            d_loss.backward()
            d_optimizer.step()
        g_loss = idle
        if g_optimizer is not None:
            g_loss = _combined([generator_loss(loss, d(fakes)) for d in discriminators])
            g_optimizer.zero_grad(set_to_none=True)
            g_loss.backward()
            g_optimizer.step()
            if average is not None:
                average.update()
        done.append(step)
        g_losses.append(g_loss.detach())
        d_losses.append(d_loss.detach())
        times.append(time.time())
    if not done:
        return Bout(rows=[])
    losses = torch.stack([torch.stack(g_losses), torch.stack(d_losses)]).cpu().tolist()
    return Bout(rows=[{"step": step, "g_loss": g, "d_loss": d, "time": t}
                      for step, g, d, t in zip(done, *losses, times)])


@torch.no_grad()
def judge(generators: list[Generator], discriminators: list[Discriminator], n: int, rng: torch.Generator) -> Bout:
    """A match: each generator draws n fakes, each discriminator judges them all; the result holds the
    fooled matrix and, for each discriminator, the fakes that fooled it."""
    for net in [*generators, *discriminators]:
        net.eval()
    fakes = [g.sample(n, rng) for g in generators]
    fooled = np.zeros((len(generators), len(discriminators)))
    fooling = []
    for j, d in enumerate(discriminators):
        caught = []
        for i, samples in enumerate(fakes):
            judged = d.judges_real(samples)
            fooled[i, j] = float(judged.float().mean())
            caught.append(samples[judged])
        fooling.append(torch.cat(caught))
    return Bout(fooled=fooled, fooling=fooling)


@torch.no_grad()
def judged_real(discriminator: Discriminator, samples: torch.Tensor) -> float:
    """Share of `samples` the discriminator scores as real (above its threshold)."""
    discriminator.eval()
    return float(discriminator.judges_real(samples).float().mean())

