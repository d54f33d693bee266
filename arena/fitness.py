"""Standings: what an individual's matches say of it, and the fitness read from them."""

from __future__ import annotations

from dataclasses import dataclass, field

WINDOWS = ("g_fooled", "d_fooled", "d_real", "d_round_fooled", "d_round_real")


# Slots and plain lists, not deques: the registry keeps every individual's standing for the run's record,
# and a deque's block is about 600 bytes even when empty (a one-hour soak's registry grew 62 MB, +19.5 %).
@dataclass(slots=True)
class Standing:
    """An individual's recent matches against opponents (never against itself): fitness is read over
    a sliding window of the last `window` matches in each role, since opponents keep improving."""

    window: int = 16
    g_fooled: list = field(default_factory=list)  # share of its fakes each opposing discriminator took for real
    d_fooled: list = field(default_factory=list)  # share of each opposing generator's fakes it took for real
    d_real: list = field(default_factory=list)  # share of real samples it accepted in those matches
    # The same two, from the second judgement of all-versus-all rounds only (after the round's training):
    # the seed selects discriminators there.
    d_round_fooled: list = field(default_factory=list)
    d_round_real: list = field(default_factory=list)
    g_matches: int = 0  # all matches, beyond the window
    d_matches: int = 0

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError(f"fitness window must be at least 1; got {self.window!r}")
        for name in WINDOWS:
            setattr(self, name, list(getattr(self, name))[-self.window:])

    def _push(self, values: list, value: float) -> None:
        values.append(value)
        del values[:-self.window]

    def as_generator(self, fooled: float) -> None:
        self._push(self.g_fooled, fooled)
        self.g_matches += 1

    def as_discriminator(self, fooled: float, real_accepted: float, second_round: bool = False) -> None:
        self._push(self.d_fooled, fooled)
        self._push(self.d_real, real_accepted)
        self.d_matches += 1
        if second_round:
            self._push(self.d_round_fooled, fooled)
            self._push(self.d_round_real, real_accepted)

    @property
    def fitness(self) -> float | None:
        """Generator fitness: mean share of opposing discriminators fooled over the window; 0 when
        every one catches it, 1 when none does; None before its first match."""
        return sum(self.g_fooled) / len(self.g_fooled) if self.g_fooled else None

    @property
    def d_fitness(self) -> float | None:
        """Discriminator fitness: balanced accuracy, opposing fakes rejected and real data accepted."""
        return _balanced(self.d_fooled, self.d_real)

    @property
    def d_round_fitness(self) -> float | None:
        """Discriminator fitness on the second judgement of rounds alone; before its first round, over
        every match (a discriminator is chosen on rounds once it has been in one)."""
        return _balanced(self.d_round_fooled, self.d_round_real) if self.d_round_fooled else self.d_fitness


def _balanced(fooled: list, real: list) -> float | None:
    """Balanced accuracy: opposing fakes rejected and real data accepted, half each."""
    if not fooled:
        return None
    return 0.5 * (1 - sum(fooled) / len(fooled)) + 0.5 * (sum(real) / len(real))
