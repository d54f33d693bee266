"""Standings: what an individual's matches say of it, and the fitness read from them."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class Standing:
    """An individual's recent matches against opponents (never against itself): fitness is read over
    a sliding window of the last `window` matches in each role, since opponents keep improving."""

    window: int = 16
    g_fooled: deque = field(default_factory=deque)  # share of its fakes each opposing discriminator took for real
    d_fooled: deque = field(default_factory=deque)  # share of each opposing generator's fakes it took for real
    d_real: deque = field(default_factory=deque)  # share of real samples it accepted in those matches
    g_matches: int = 0  # all matches, beyond the window
    d_matches: int = 0

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError(f"fitness window must be at least 1; got {self.window!r}")
        for name in ("g_fooled", "d_fooled", "d_real"):
            setattr(self, name, deque(getattr(self, name), maxlen=self.window))

    def as_generator(self, fooled: float) -> None:
        self.g_fooled.append(fooled)
        self.g_matches += 1

    def as_discriminator(self, fooled: float, real_accepted: float) -> None:
        self.d_fooled.append(fooled)
        self.d_real.append(real_accepted)
        self.d_matches += 1

    @property
    def fitness(self) -> float | None:
        """Generator fitness: mean share of opposing discriminators fooled over the window; 0 when
        every one catches it, 1 when none does; None before its first match."""
        return sum(self.g_fooled) / len(self.g_fooled) if self.g_fooled else None

    @property
    def d_fitness(self) -> float | None:
        """Discriminator fitness: balanced accuracy, opposing fakes rejected and real data accepted."""
        if not self.d_fooled:
            return None
        return 0.5 * (1 - sum(self.d_fooled) / len(self.d_fooled)) + 0.5 * (sum(self.d_real) / len(self.d_real))
