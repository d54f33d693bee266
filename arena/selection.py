"""Pure decisions of the asynchronous game: whom to fight, whom to breed from."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def choose_opponents(candidates: Sequence[dict], player: str, k: int, rng: np.random.Generator) -> list[dict]:
    """Up to k published individuals of other players, drawn uniformly without replacement."""
    others = [c for c in candidates if c["player"] != player]
    if len(others) <= k:
        return list(others)
    picks = rng.choice(len(others), size=k, replace=False)
    return [others[int(i)] for i in picks]


def tournament(candidates: Sequence[dict], size: int, rng: np.random.Generator) -> dict:
    """Draw `size` candidates uniformly and return the fittest; those not yet rated count as
    fitness 0 so a fresh individual can still win a tournament of unrated ones."""
    if not candidates:
        raise ValueError("tournament needs at least one candidate")
    picks = rng.choice(len(candidates), size=min(size, len(candidates)), replace=False)
    entrants = [candidates[int(i)] for i in picks]
    return max(entrants, key=lambda c: c.get("fitness") or 0.0)


def choose_parents(candidates: Sequence[dict], size: int, rng: np.random.Generator) -> list[dict]:
    """Two tournament winners (distinct when there are two candidates or more)."""
    first = tournament(candidates, size, rng)
    rest = [c for c in candidates if c["id"] != first["id"]]
    return [first, tournament(rest, size, rng)] if rest else [first]
