"""The generator's weights averaged over its training steps, an exponential moving average: what BigGAN and
StyleGAN give out, and what Yazıcı et al. (2019, "The unusual effectiveness of averaging in GAN training")
measure. A GAN's iterates circle its equilibrium, so a generator's mass on each mode swings from step to step;
their average sits nearer the equilibrium. The live weights train and fight; the average is what a run gives out
(its champion and mixture) and what its quality records measure."""

from __future__ import annotations

from copy import deepcopy

import torch

from genome.build import Generator


class Average:
    """An average of `generator`'s state, updated after each of its optimizer's steps. Floating-point entries
    (weights, running statistics) are averaged; the others (step counters) and spectral normalisation's power-
    iteration vectors (`_u`, `_v`: unit vectors, which an average would shorten, and an evaluation divides by
    what they give) follow the live ones. After n updates the average keeps `min(decay, (1 + n) / (10 + n))` of
    itself and takes the rest from the live weights, so a new generator's initial weights do not linger."""

    def __init__(self, generator: Generator, decay: float, state: dict | None = None, updates: int = 0):
        if not 0 < decay < 1:
            raise ValueError(f"an average's decay must be in (0, 1); got {decay!r}")
        self.decay, self.updates = decay, updates
        live = generator.state_dict()
        self.state = {key: value.detach().clone() for key, value in live.items()}
        if state is not None:
            self.state.update({key: value.to(live[key].device) for key, value in state.items() if key in live})
        # The live tensors share storage with the module's: listed once, not rebuilt every step.
        averaged = [key for key, value in live.items() if value.is_floating_point() and not _power_vector(key)]
        followed = [key for key in live if key not in averaged]
        self._averaged = ([self.state[k] for k in averaged], [live[k] for k in averaged])
        self._followed = ([self.state[k] for k in followed], [live[k] for k in followed])

    def update(self) -> None:
        weight = 1 - min(self.decay, (1 + self.updates) / (10 + self.updates))
        with torch.no_grad():
            if self._averaged[0]:
                torch._foreach_lerp_(*self._averaged, weight)
            if self._followed[0]:
                torch._foreach_copy_(*self._followed)
        self.updates += 1

    def state_dict(self) -> dict:
        """On the CPU, as `Pair.state_dicts`: for checkpoints."""
        return {key: value.cpu() for key, value in self.state.items()}


def _power_vector(key: str) -> bool:
    return key.rsplit(".", 1)[-1] in ("_u", "_v")


def averaged(generator: Generator, average: Average | None) -> Generator:
    """A copy of `generator` holding the average's weights (the live one trains on), or itself without one."""
    if average is None:
        return generator
    copy = deepcopy(generator)
    copy.load_state_dict(average.state)
    return copy
