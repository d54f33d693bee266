"""Pure decisions of the asynchronous game: whom to fight, whom to breed from."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

MATCHMAKING = ("random", "all", "k_best", "prioritized")
STANDINGS = ("fitness", "rating", "d_fitness", "d_round_fitness", "d_rating", "real_distance")
LOWER_IS_BETTER = ("real_distance",)  # a generator's MMD² to real training samples (arena.ensemble.RealReference)
CULLS = ("fitness", "real")  # the standing truncation reads: the selection's own, or real_distance


def choose_opponents(candidates: Sequence[dict], player: str, k: int, rng: np.random.Generator,
                     mode: str = "random") -> list[dict]:
    """Published individuals of other players to fight:

    - `random`: k drawn uniformly; `all`: every one;
    - `k_best`: the k with the highest rating;
    - `prioritized`: k drawn with weights favouring even matches and uncertain ratings, as
      AlphaStar's league prioritises opponents: weight = p(1 − p)·σ, p the chance of winning.
    """
    others = [c for c in candidates if c["player"] != player]
    if mode == "all" or len(others) <= k:
        return list(others)
    if mode == "random":
        picks = rng.choice(len(others), size=k, replace=False)
    elif mode == "k_best":
        picks = np.argsort([-(c.get("rating") or 0.0) for c in others], kind="stable")[:k]
    elif mode == "prioritized":
        me = next((c for c in candidates if c["player"] == player), None)
        weights = np.array([_priority(me, c) for c in others])
        picks = rng.choice(len(others), size=k, replace=False, p=weights / weights.sum())
    else:
        raise ValueError(f"unknown matchmaking {mode!r}; choose from {', '.join(MATCHMAKING)}")
    return [others[int(i)] for i in picks]


def _priority(me: dict | None, other: dict) -> float:
    sigma = other.get("sigma") or 1.0
    if not me or me.get("mu") is None or other.get("mu") is None:
        return sigma
    # Win chance from the rating difference (a logistic on mu, scaled by both uncertainties).
    scale = np.sqrt(me["sigma"] ** 2 + other["sigma"] ** 2) or 1.0
    p = 1 / (1 + np.exp(-(me["mu"] - other["mu"]) / scale))
    return float(p * (1 - p) * sigma) + 1e-9


def tournament(candidates: Sequence[dict], size: int, rng: np.random.Generator, key: str = "fitness") -> dict:
    """Draw `size` candidates uniformly and return the best by the standing `key` (`ranked`); those not yet
    rated count as worst, so a fresh individual can still win a tournament of unrated ones."""
    if not candidates:
        raise ValueError("tournament needs at least one candidate")
    if key not in STANDINGS:
        raise ValueError(f"unknown standing {key!r}; choose from {', '.join(STANDINGS)}")
    picks = rng.choice(len(candidates), size=min(size, len(candidates)), replace=False)
    return ranked([candidates[int(i)] for i in picks], key)[0]


def choose_parents(candidates: Sequence[dict], size: int, rng: np.random.Generator, key: str = "fitness") -> list[dict]:
    """Two tournament winners (distinct when there are two candidates or more)."""
    first = tournament(candidates, size, rng, key)
    rest = [c for c in candidates if c["id"] != first["id"]]
    return [first, tournament(rest, size, rng, key)] if rest else [first]


EXPLOITS = ("always", "truncation", "never")
EXPLORES = ("breed", "perturb")


@dataclass(frozen=True)
class Move:
    """What a player does after its fight: go on training its pair (no parents), or breed a new one."""

    parents: tuple = ()  # generator side, one or two
    d_parents: tuple = ()  # discriminator side; empty: from the generator-side parents

    @property
    def breeds(self) -> bool:
        return bool(self.parents)


def ranked(candidates: Sequence[dict], key: str) -> list[dict]:
    """Best first by the standing `key` (highest, or lowest for a distance); the unrated last, ties and
    the unrated in their given order."""
    if key not in STANDINGS:
        raise ValueError(f"unknown standing {key!r}; choose from {', '.join(STANDINGS)}")
    sign = 1 if key in LOWER_IS_BETTER else -1
    return sorted(candidates, key=lambda c: sign * c[key] if c.get(key) is not None else np.inf)


CHAMPIONS = ("standing", "real")


def champion(candidates: Sequence[dict], key: str = "fitness", distances: dict | None = None) -> dict:
    """The run's product, never one picked by a metric that knows the true modes or labels: the individual
    the arena's own standing puts first (by `key`, fitness or rating); with `distances` (individual id →
    the distance of its product, its samples as given out, to held-out real training data, measured for the
    first few by standing), the
    nearest of those, ties to the better standing. Fooling discriminators is relative to how strong they
    are: a generator collapsed onto one mode can top the standing of a population whose discriminators
    have grown weak, and real data, which no player can hack, catches it."""
    if not candidates:
        raise ValueError("no individual to choose a champion from")
    first = ranked(candidates, key)
    name = (lambda c: c["_id"]) if "_id" in first[0] else (lambda c: c["id"])  # a record, or a registry entry
    measured = [c for c in first if (distances or {}).get(name(c)) is not None]
    return min(measured, key=lambda c: distances[name(c)]) if measured else first[0]  # min keeps the first of ties


def affordable(survivors: Sequence[dict], own_cost: float | None, copy_cost: float) -> list[dict]:
    """The survivors whose step costs at most `copy_cost` times `own_cost` (all when `copy_cost` is 0 or
    `own_cost` unknown; a survivor whose cost is unknown stays)."""
    if not copy_cost or own_cost is None:
        return list(survivors)
    return [c for c in survivors if c.get("step_cpu_ms") is None or c["step_cpu_ms"] <= copy_cost * own_cost]


def next_move(me: dict, candidates: Sequence[dict], rng: np.random.Generator, *, exploit: str = "truncation",
              truncation: float = 0.25, ready: int = 3, tournament_size: int = 3, key: str = "fitness",
              d_key: str | None = "d_round_fitness", cull: str = "fitness", explore: str = "breed",
              copy_cost: float = 0.0) -> Move:
    """The asynchronous game's one decision, for the player whose individual is `me` (in `candidates`
    or not yet published there):

    - `always`: every loop breeds, from two tournament winners over everyone (each pair lives one loop);
    - `truncation` (Ray Tune's PBT, Lipizzaner's elitism): a pair that has trained `ready` loops and stands
      in the bottom `truncation` share (rounded up: one of two, three or four) is replaced by a child of two
      tournament winners by `key` over the rest; every other pair goes on training, its weights and
      optimizer state intact. The bottom is read by `key` (`cull` fitness) or by the generators' distance
      to real training data (`cull` real: fooling is relative to the discriminators met, and a
      population whose discriminators grew weak would otherwise cull its best generator);
    - `never`: nobody breeds (independent GANs that only fight).

    The child's discriminator side comes from tournaments by `d_key` over everyone (the seed: select
    discriminators apart, on the second judgement of rounds, since a generator can hack its own); `d_key`
    None keeps each pair together. With `explore` perturb (PBT) the move names one parent whose pair is
    copied whole (no crossover, no separate discriminator): under truncation the winner of a tournament by
    the standing that culls, under always one by `key` over everyone. Under truncation, `copy_cost` > 0 leaves
    out survivors whose `step_cpu_ms` exceeds that multiple of `me`'s (either unknown: kept), and a pair with
    no survivor left goes on training: a copy costs at most that multiple of the culled pair's step.
    """
    if explore not in EXPLORES:
        raise ValueError(f"unknown explore {explore!r}; choose from {', '.join(EXPLORES)}")
    if exploit not in EXPLOITS:
        raise ValueError(f"unknown exploit {exploit!r}; choose from {', '.join(EXPLOITS)}")
    if cull not in CULLS:
        raise ValueError(f"unknown cull {cull!r}; choose from {', '.join(CULLS)}")
    if ready < 0:  # the configuration's -1 (by the data) resolved here would cull from birth
        raise ValueError(f"ready must be a number of loops (0 or more); got {ready!r}")
    everyone = [c for c in candidates if c["id"] != me["id"]] + [me]
    if exploit == "never":
        return Move()
    if exploit == "always":
        if explore == "perturb":
            return Move((tournament(everyone, tournament_size, rng, key),))
        parents = choose_parents(everyone, tournament_size, rng, key)
    else:
        by = "real_distance" if cull == "real" else key
        if (me.get("age") or 0) < ready or me.get(by) is None:
            return Move()
        rated = [c for c in everyone if c.get(by) is not None]
        rated = [rated[int(i)] for i in rng.permutation(len(rated))]  # ties: nobody culled for its place in the pool
        bottom = {c["id"] for c in ranked(rated, by)[-math.ceil(len(rated) * truncation):]}
        if len(rated) < 2 or me["id"] not in bottom:
            return Move()
        survivors = [c for c in everyone if c["id"] not in bottom]
        if explore == "perturb":
            survivors = affordable(survivors, me.get("step_cpu_ms"), copy_cost)
            return Move((tournament(survivors, tournament_size, rng, by),)) if survivors else Move()
        parents = choose_parents(survivors, tournament_size, rng, key)
    d_parents = choose_parents(everyone, tournament_size, rng, d_key) if d_key else []
    return Move(tuple(parents), tuple(d_parents))
