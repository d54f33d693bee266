"""Standings: what an individual's matches say of it, and the fitness read from them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Standing:
    """Running sums over an individual's matches against opponents (never against itself)."""

    g_fooled: float = 0.0  # sum over opposing discriminators met of the share of its fakes they took for real
    g_matches: int = 0
    d_fooled: float = 0.0  # sum over opposing generators met of the share of their fakes it took for real
    d_real: float = 0.0  # sum over those matches of the share of real samples it accepted
    d_matches: int = 0

    def as_generator(self, fooled: float) -> None:
        self.g_fooled += fooled
        self.g_matches += 1

    def as_discriminator(self, fooled: float, real_accepted: float) -> None:
        self.d_fooled += fooled
        self.d_real += real_accepted
        self.d_matches += 1

    @property
    def fitness(self) -> float | None:
        """Generator fitness: mean share of opposing discriminators fooled; 0 when every one catches
        it, 1 when none does; None before its first match."""
        return self.g_fooled / self.g_matches if self.g_matches else None

    @property
    def d_fitness(self) -> float | None:
        """Discriminator fitness: balanced accuracy, opposing fakes rejected and real data accepted."""
        if not self.d_matches:
            return None
        return 0.5 * (1 - self.d_fooled / self.d_matches) + 0.5 * (self.d_real / self.d_matches)
