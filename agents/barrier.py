"""The generation barrier of a synchronous arena (`[arena] schedule = "barrier"`): the baseline the
asynchronous arena is measured against, where every player waits for the slowest each generation."""

from __future__ import annotations

import asyncio
import time


class Barrier:
    """An async actor: each `arrive` call waits, without blocking the others, until every player still
    in the run has arrived as many times. Counting arrivals per player, not generation numbers, keeps a
    restarted player (which resumes at its next generation) from waiting for a generation nobody reaches."""

    def __init__(self, players: list[str]):
        self.arrivals = {player: 0 for player in players}
        self.changed: asyncio.Condition | None = None  # made in the actor's event loop, on first use
        self.waited = 0.0

    def _condition(self) -> asyncio.Condition:
        if self.changed is None:
            self.changed = asyncio.Condition()
        return self.changed

    async def arrive(self, player: str, deadline: float) -> bool:
        """True once all have arrived; False if the wall-clock `deadline` passes first."""
        changed = self._condition()
        async with changed:
            self.arrivals[player] = self.arrivals.get(player, 0) + 1
            mine = self.arrivals[player]
            changed.notify_all()
            started = time.time()
            try:
                await asyncio.wait_for(changed.wait_for(lambda: min(self.arrivals.values()) >= mine),
                                       timeout=max(0.0, deadline - time.time()))
                return True
            except asyncio.TimeoutError:
                return False
            finally:
                self.waited += time.time() - started

    async def leave(self, player: str) -> None:
        """A player that stops no longer holds the others back."""
        changed = self._condition()
        async with changed:
            self.arrivals.pop(player, None)
            changed.notify_all()

    def waiting(self) -> dict[str, int]:
        """Arrivals per player still in the run."""
        return dict(self.arrivals)

    def __repr__(self) -> str:  # what the Ray dashboard shows
        return f"Barrier(players={len(self.arrivals)}, waited={self.waited:.0f} s)"
