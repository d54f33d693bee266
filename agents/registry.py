"""The registry actor: who is published now, and how each individual stands. Hot state only;
MongoDB holds the record.

A player's calls cost the same whatever the population's size: each live entry carries its standing,
refreshed only when a match touches it, and `opponents`, `round_pool` and `parents` make the draws of
`arena/selection.py` and `arena/rounds.py` here, next to the data, with a seed from the player (so a
player stays reproducible), and send back only the entries drawn. For random matchmaking, rounds and
tournaments they draw through a view of the pool that leaves an entry out without copying the rest:
the same draws as the pure functions (tests hold them to it), without their pass over every entry.
`candidates` still sends the whole pool, genomes and weight references included, for the end of a run.
"""

from __future__ import annotations

import gc
import time
from typing import Sequence

import numpy as np

from arena.fitness import Standing
from arena.ratings import Ratings
from arena.selection import choose_opponents, tournament
from genome.effects import OPERATOR_PROBABILITY
from storage.records import ACTOR_PATIENCE_MS, connect


class _Without(Sequence):
    """`items` less the one at index `skip` (None: none left out), then `extra` (None: nothing), as a
    view: what `[c for c in items if c is not items[skip]] + [extra]` would hold, without the copy."""

    __slots__ = ("items", "skip", "extra")

    def __init__(self, items: list, skip: int | None = None, extra: dict | None = None):
        self.items, self.skip, self.extra = items, skip, extra

    def __len__(self) -> int:
        return len(self.items) - (self.skip is not None) + (self.extra is not None)

    def __getitem__(self, i: int):
        if not 0 <= i < len(self):
            raise IndexError(i)
        if self.skip is not None and i >= self.skip:
            i += 1
        return self.items[i] if i < len(self.items) else self.extra


class Registry:
    def __init__(self, run_id: str, window: int = 16, mongo_uri: str | None = None, mongo_db: str = "arena"):
        self.run_id, self.window = run_id, window
        self.ratings = Ratings()
        self.live: dict[str, dict] = {}  # player -> its published individual, with its standing
        # dataset (None: every one) -> the live entries in order of first publication, and each one's
        # player -> index there: the pools the draws are made from, kept as `candidates` orders them.
        self.pools: dict[str | None, list[dict]] = {}
        self.positions: dict[str | None, dict[str, int]] = {}
        self.live_ids: dict[str, str] = {}  # individual id -> its player, for the live ones
        self.standings: dict[str, Standing] = {}  # individual id -> standing, retired ones too
        self.lineage: dict[str, dict] = {}  # individual id -> the ops that made it and its parents' fitness
        self.status: dict[str, dict] = {}  # player -> its latest heartbeat
        self.stopping = False
        self._fitness_of: dict[str, dict] = {}  # individual id -> `_fitness` as of its latest match or publish
        # Operator effects kept as running tallies: an individual's fitness change is folded in again
        # only when it changed, so `effects` costs what changed since the last call, not the lineage.
        self._effect_ops: dict[str, tuple[str, ...]] = {}  # individual id -> operators credited for it
        self._counted: dict[str, float] = {}  # individual id -> the fitness change in the tallies
        self._tallies: dict[str, list] = {}  # operator -> [count, helped, hurt, total, gains, losses]
        self._changed: set[str] = set()  # ids whose fitness change may differ from the counted one
        if mongo_uri:
            self._rebuild(connect(mongo_uri, mongo_db, ACTOR_PATIENCE_MS))
        # What is here now (imported modules, torch's included, and the rebuilt record) lives as long as
        # the actor: kept out of the collector's full passes, which otherwise stall every call for
        # hundreds of milliseconds now and then.
        gc.freeze()

    def _rebuild(self, db) -> None:
        """Standings, ratings and lineage from the record, so a restarted registry (or a resumed run)
        carries on where the last one stopped. Published weights are not in the record: players
        publish again within a loop."""
        for doc in db.individuals.find({"run_id": self.run_id}, projection={"ops": 1, "parent_fitness": 1}):
            self._standing(doc["_id"])
            self._lineage(doc["_id"], doc.get("ops") or [], doc.get("parent_fitness"))
        matches = list(db.matches.find({"run_id": self.run_id}, projection={"generator": 1, "discriminator": 1,
                                                                            "fooled": 1, "real_accepted": 1, "at": 1}))
        self.report(sorted(matches, key=lambda m: m["at"]))

    def __repr__(self) -> str:  # what the Ray dashboard shows
        return f"Registry(run={self.run_id}, published={len(self.live)}, individuals={len(self.standings)})"

    def _lineage(self, _id: str, ops: list[dict], parent_fitness: float | None) -> None:
        counted = self._counted.pop(_id, None)
        if counted is not None:  # taken out under the operators it was counted for
            self._tally(_id, counted, -1)
        self.lineage[_id] = {"ops": ops, "parent_fitness": parent_fitness}
        self._effect_ops[_id] = tuple({op["op"] for op in ops if op["op"] in OPERATOR_PROBABILITY})
        self._changed.add(_id)
        self._fitness_of.pop(_id, None)

    def publish(self, entry: dict, weights: list) -> None:
        """`weights` is a one-element list holding an ObjectRef, so Ray passes the reference, not the data."""
        _id, player = entry["id"], entry["player"]
        self._standing(_id)
        self._lineage(_id, entry.get("ops", []), entry.get("parent_fitness"))
        previous = self.live.get(player)
        if previous is not None:
            self.live_ids.pop(previous["id"], None)
        published = {**entry, "weights": weights, "published_at": time.time(), **self._fitness(_id)}
        self.live[player] = published
        self.live_ids[_id] = player
        if previous is not None and previous["dataset"] != entry["dataset"]:  # never in a run; kept exact
            for dataset in (previous["dataset"], entry["dataset"]):
                self.pools[dataset] = [e for e in self.live.values() if e["dataset"] == dataset]
                self.positions[dataset] = {e["player"]: i for i, e in enumerate(self.pools[dataset])}
            self.pools[None][self.positions[None][player]] = published
            return
        for dataset in (None, entry["dataset"]):
            pool, positions = self.pools.setdefault(dataset, []), self.positions.setdefault(dataset, {})
            if player in positions:
                pool[positions[player]] = published
            else:
                positions[player] = len(pool)
                pool.append(published)

    def _position(self, dataset: str | None, _id: str) -> int | None:
        """Where the live individual `_id` is in the pool of `dataset`; None when it is not there."""
        player = self.live_ids.get(_id)
        return None if player is None else self.positions.get(dataset, {}).get(player)

    def candidates(self, dataset: str | None = None) -> list[dict]:
        """Every published individual of `dataset` (all when None) with its standing: the pool for
        opponents and parents. Only like meets like: a 2-D generator never faces an image discriminator.
        O(population) data per call: players draw with `opponents`, `round_pool` and `parents`."""
        return [dict(entry) for entry in self.pools.get(dataset, [])]

    def opponents(self, dataset: str | None, player: str, k: int, mode: str = "random",
                  seed: int | None = None) -> list[dict]:
        """`arena.selection.choose_opponents(candidates(dataset), player, k, rng, mode)` with
        `rng = default_rng(seed)`: up to k published individuals of other players, with their genomes,
        standings and weight references."""
        pool, rng = self.pools.get(dataset, []), np.random.default_rng(seed)
        if mode != "random":  # these weigh or rank every candidate anyway
            return [dict(entry) for entry in choose_opponents(pool, player, k, rng, mode)]
        others = _Without(pool, self.positions.get(dataset, {}).get(player))
        if len(others) <= k:
            return [dict(entry) for entry in others]
        return [dict(others[int(i)]) for i in rng.choice(len(others), size=k, replace=False)]

    def round_pool(self, dataset: str | None, me: str, size: int, seed: int | None = None) -> list[dict]:
        """`arena.rounds.round_pool(candidates(dataset), me, size, default_rng(seed))`: up to size − 1
        others for an all-versus-all round with `me`; none when fewer than two are published."""
        pool = self.pools.get(dataset, [])
        if len(pool) <= 1:
            return []
        others = _Without(pool, self._position(dataset, me))
        if len(others) <= size - 1:
            return [dict(entry) for entry in others]
        picks = np.random.default_rng(seed).choice(len(others), size=size - 1, replace=False)
        return [dict(others[int(i)]) for i in picks]

    def parents(self, dataset: str | None, size: int, selection: str = "fitness", seed: int | None = None,
                own: dict | None = None) -> tuple[list[dict], list[dict]]:
        """`arena.selection.choose_parents` twice over `candidates(dataset)`, with `rng = default_rng(seed)`:
        the parents by `selection` (fitness or rating) for the generator side, then by d_fitness for the
        discriminator side. `own` (the caller's individual) joins the pool when it is not published yet."""
        pool, rng = self.pools.get(dataset, []), np.random.default_rng(seed)
        extra = own if own is not None and self._position(dataset, own["id"]) is None else None
        everyone = _Without(pool, None, extra)

        def two(key: str) -> list[dict]:  # choose_parents, with `rest` a view
            first = tournament(everyone, size, rng, key)
            rest = _Without(pool) if first is extra else _Without(pool, self.positions[dataset][first["player"]],
                                                                 extra)
            return [dict(first), dict(tournament(rest, size, rng, key))] if len(rest) else [dict(first)]

        return two(selection), two("d_fitness")

    def report(self, matches: list[dict]) -> dict[str, dict]:
        """Fold match results into the standings; returns the new standings of the individuals involved."""
        touched = set()
        for match in matches:
            self._standing(match["generator"]).as_generator(match["fooled"])
            self._standing(match["discriminator"]).as_discriminator(match["fooled"], match["real_accepted"])
            self.ratings.record(match["generator"], match["discriminator"], match["fooled"])
            touched.update((match["generator"], match["discriminator"]))
        self._changed |= touched
        for _id in touched:
            self._fitness_of.pop(_id, None)
            player = self.live_ids.get(_id)
            if player is not None:  # the live entry carries its standing
                self.live[player].update(self._fitness(_id))
        return {_id: dict(self._fitness(_id)) for _id in touched}

    def _standing(self, _id: str) -> Standing:
        standing = self.standings.get(_id)
        if standing is None:  # not setdefault: that builds a Standing each time, found or not
            standing = self.standings[_id] = Standing(self.window)
        return standing

    def _fitness(self, _id: str) -> dict:
        known = self._fitness_of.get(_id)
        if known is not None:
            return known
        standing = self.standings[_id]
        before = self.lineage.get(_id, {}).get("parent_fitness")
        change = standing.fitness - before if standing.fitness is not None and before is not None else None
        known = {"fitness": standing.fitness, "d_fitness": standing.d_fitness, "fitness_change": change,
                 "g_matches": standing.g_matches, "d_matches": standing.d_matches, **self.ratings.standing(_id)}
        self._fitness_of[_id] = known
        return known

    def effects(self) -> dict[str, dict]:
        """Beneficial versus nefarious mutations so far, per operator: `genome.effects.operator_effects`
        over the lineage, kept as running tallies."""
        for _id in self._changed:
            old, new = self._counted.pop(_id, None), self._fitness(_id)["fitness_change"]
            if old is not None:
                self._tally(_id, old, -1)
            if new is not None:
                self._tally(_id, new, 1)
                self._counted[_id] = new
        self._changed.clear()
        effects = {}
        for name, (count, helped, hurt, total, gains, losses) in sorted(self._tallies.items()):
            if count:
                effects[name] = {"count": count, "helped": helped, "hurt": hurt, "neutral": count - helped - hurt,
                                 "mean_change": total / count, "mean_gain": gains / helped if helped else 0.0,
                                 "mean_loss": losses / hurt if hurt else 0.0}
        return effects

    def _tally(self, _id: str, change: float, sign: int) -> None:
        """Add (sign 1) or take out (sign −1) one individual's fitness change under each of its operators."""
        for name in self._effect_ops.get(_id, ()):
            tally = self._tallies.setdefault(name, [0, 0, 0, 0.0, 0.0, 0.0])
            tally[0] += sign
            tally[3] += sign * change
            if change > 0:
                tally[1] += sign
                tally[4] += sign * change
            elif change < 0:
                tally[2] += sign
                tally[5] += sign * change

    def fitness(self) -> dict[str, dict]:
        return {_id: dict(self._fitness(_id)) for _id in self.standings}

    def heartbeat(self, player: str, status: dict) -> bool:
        """Record a player's progress; the answer says whether the run is stopping."""
        self.status[player] = {**status, "at": time.time()}
        return self.stopping

    def players(self) -> dict[str, dict]:
        return dict(self.status)

    def stop(self) -> None:
        self.stopping = True
