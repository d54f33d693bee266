"""The registry actor: who is published now, and how each individual stands. Hot state only;
MongoDB holds the record.

Every decision is a pure function of `arena/` (`choose_opponents`, `round_pool`, `next_move`,
`operator_effects`) called here on the registry's own pool, with a seed from the player (so a player
stays reproducible); only the entries chosen travel back. Each live entry carries its standing,
refreshed when a match touches it. A player's loop makes two calls: `enter` (publish, then draw
its opponents) and `settle` (report its matches and heartbeat, then its next move).
"""

from __future__ import annotations

import copy
import gc
import itertools
import time

import numpy as np
import torch

from arena.fitness import Standing
from arena.ratings import Ratings
from arena.replay import ReplayBuffer
from arena.rounds import SECOND_ROUND, round_pool
from arena.selection import Move, choose_opponents, next_move
from genome.effects import WENT_ON, operator_effects
from storage.records import ACTOR_PATIENCE_MS, connect

# Retired individuals whose standing stays whole, at least (eight per live player on larger runs): a match
# against one of them still counts while an opponent that fought its last publication reports. Older ones
# keep only what their standing says (`FINAL`), not the standing, two ratings and the lineage entry: over an
# hour a registry sees ten thousands of individuals (the soak row of 2026-12-04T14:59:39: 318 to 382 MB).
RETIRED_WHOLE = 256
FINAL = ("fitness", "d_fitness", "d_round_fitness", "fitness_change", "g_matches", "d_matches", "mu", "sigma", "rating",
         "d_rating")  # the fields of `_fitness`, in the order a compacted individual keeps their values


class Registry:
    def __init__(self, run_id: str, window: int = 16, mongo_uri: str | None = None, mongo_db: str = "arena",
                 shared_fakes: int = 0, retired_whole: int = RETIRED_WHOLE):
        self.run_id, self.window, self.retired_whole = run_id, window, retired_whole
        if shared_fakes < 0:  # the configuration's -1 (by the data) is resolved by the caller
            raise ValueError(f"the registry's pool of shared fakes needs a capacity (0 or more); got {shared_fakes!r}")
        self.shared_fakes = shared_fakes
        self.fakes: dict[str | None, ReplayBuffer] = {}  # dataset -> fakes that fooled some discriminator
        self.ratings = Ratings()
        self.live: dict[str, dict] = {}  # player -> its published individual, with its standing
        # dataset (None: every one) -> player -> its live entry, in order of first publication: the pools
        # the draws are made from (dicts keep insertion order, and a re-publish keeps the player's place).
        self.pools: dict[str | None, dict[str, dict]] = {}
        self.live_ids: dict[str, str] = {}  # individual id -> its player, for the live ones
        self.standings: dict[str, Standing] = {}  # individual id -> standing, of the live and recently retired
        self.lineage: dict[str, dict] = {}  # individual id -> the ops that made it and its parents' fitness
        self.retired: dict[str, None] = {}  # ids retired with their standing whole, oldest first
        # id -> (its `_fitness` values in FINAL's order, the names of the ops that made it): retired longer ago
        self.final: dict[str, tuple] = {}
        self.late = 0  # matches with a side compacted into `final`: only the other side's standing counts them
        self.going_on: dict[str, str] = {}  # player -> its newest individual in the record, when rebuilt
        self.status: dict[str, dict] = {}  # player -> its latest heartbeat
        self.stopping = False
        self._fitness_of: dict[str, dict] = {}  # individual id -> `_fitness` as of its latest match or publish
        if mongo_uri:
            self._rebuild(connect(mongo_uri, mongo_db, ACTOR_PATIENCE_MS))
        # What is here now (imported modules, torch's included, and the rebuilt record) lives as long as
        # the actor: kept out of the collector's full passes, which otherwise stall every call for
        # hundreds of milliseconds now and then.
        gc.freeze()

    def _rebuild(self, db) -> None:
        """Standings, ratings and lineage from the record, so a restarted registry (or a resumed run)
        carries on where the last one stopped: births and matches replayed in the order they happened,
        so a pair that went on training inherits the standing its matches had made. Published weights
        are not in the record: players publish again within a loop."""
        events = [(doc.get("created_at"), 0, doc) for doc in db.individuals.find(
            {"run_id": self.run_id}, projection={"ops": 1, "parent_fitness": 1, "created_at": 1, "player": 1,
                                                 "generation": 1})]
        events += [(doc.get("at"), 1, doc) for doc in db.matches.find(
            {"run_id": self.run_id}, projection={"generator": 1, "discriminator": 1, "fooled": 1,
                                                 "real_accepted": 1, "at": 1, "kind": 1})]
        events.sort(key=lambda e: (e[0] is None, e[0] or 0, e[1]))
        for _, kind, doc in events:
            if kind == 0:
                self._born(doc["_id"], doc.get("ops") or [], doc.get("parent_fitness"))
            else:
                self.report([doc])
        # Each player's newest goes on (its next publication continues it); the others are retired, in order.
        newest: dict[str, tuple[int, str]] = {}
        for _, kind, doc in events:
            if kind == 0 and doc.get("generation", -1) >= newest.get(doc.get("player"), (-2, ""))[0]:
                newest[doc.get("player")] = (doc.get("generation", -1), doc["_id"])
        self.going_on = {player: _id for player, (_, _id) in newest.items()}
        going_on = set(self.going_on.values())
        for _, kind, doc in events:
            if kind == 0 and doc["_id"] not in going_on:
                self._retire(doc["_id"])

    def __repr__(self) -> str:  # what the Ray dashboard shows
        return (f"Registry(run={self.run_id}, published={len(self.live)}, "
                f"individuals={len(self.standings) + len(self.final)}, late matches={self.late})")

    def _born(self, _id: str, ops: list[dict], parent_fitness: float | None) -> None:
        """A new individual's standing: its own, or, for a pair that goes on training under a new id
        (op `continue`, or `resume` after a restart), what its matches so far said of it."""
        known = self.standings.get(_id)
        if known is None or not (known.g_matches or known.d_matches):  # a blank one: its matches came first
            parent = next((op["from"] for op in ops if op.get("op") in WENT_ON), None)
            if parent in self.standings:
                self.standings[_id] = copy.deepcopy(self.standings[parent])
                self.ratings.inherit(_id, parent)
            else:
                self.standings[_id] = Standing(self.window)
        self.lineage[_id] = {"ops": ops, "parent_fitness": parent_fitness}
        self._fitness_of.pop(_id, None)

    def publish(self, entry: dict, weights: list) -> None:
        """`weights` holds ObjectRefs (a player's: its pair's weights, then its optimizers' moments where the game
        breeds), in a list so Ray passes the references, not the data."""
        _id, player = entry["id"], entry["player"]
        self._born(_id, entry.get("ops", []), entry.get("parent_fitness"))
        previous = self.live.get(player)
        before = self.going_on.pop(player, None)  # its newest in the record, when the registry was rebuilt
        if before is not None and before != _id and (previous is None or previous["id"] != before):
            self._retire(before)
        if previous is not None:
            self.live_ids.pop(previous["id"], None)
            if previous["id"] != _id:
                self._retire(previous["id"])
            self._fitness_of.pop(previous["id"], None)  # retired: `_fitness` caches only the live
            if previous["dataset"] != entry["dataset"]:  # never in a run; kept exact
                self.pools[previous["dataset"]].pop(player)
        published = {**entry, "weights": weights, "published_at": time.time(), **self._fitness(_id)}
        self.live[player] = published
        self.live_ids[_id] = player
        for dataset in (None, entry["dataset"]):
            self.pools.setdefault(dataset, {})[player] = published

    def _retire(self, _id: str) -> None:
        """`_id` is no longer published; the oldest retired beyond the ones kept whole are compacted."""
        self.retired[_id] = None
        while len(self.retired) > max(self.retired_whole, 8 * len(self.live)):
            oldest = next(iter(self.retired))
            del self.retired[oldest]
            if oldest in self.standings and oldest not in self.live_ids:
                known = self._fitness(oldest)
                names = tuple(sorted({op["op"] for op in self.lineage.get(oldest, {}).get("ops") or []}))
                self.final[oldest] = (tuple(known[key] for key in FINAL), names)
                del self.standings[oldest]
                self.lineage.pop(oldest, None)
                self.ratings.forget(oldest)

    def enter(self, entry: dict, weights: list, k: int, mode: str = "random", seed: int | None = None) -> list[dict]:
        """Publish `entry`, then draw up to k opponents for it (`opponents`)."""
        self.publish(entry, weights)
        return self.opponents(entry["dataset"], entry["player"], k, mode, seed)

    def _pool(self, dataset: str | None) -> list[dict]:
        return list(self.pools.get(dataset, {}).values())

    def candidates(self, dataset: str | None = None) -> list[dict]:
        """Every published individual of `dataset` (all when None) with its standing: the pool for
        opponents and parents. Only like meets like: a 2-D generator never faces an image discriminator."""
        return [dict(entry) for entry in self._pool(dataset)]

    def opponents(self, dataset: str | None, player: str, k: int, mode: str = "random",
                  seed: int | None = None) -> list[dict]:
        """`choose_opponents` over the pool of `dataset` with `default_rng(seed)`: up to k published
        individuals of other players, with their genomes, standings and weight references."""
        return [dict(c) for c in choose_opponents(self._pool(dataset), player, k, np.random.default_rng(seed), mode)]

    def round_pool(self, dataset: str | None, me: str, size: int, seed: int | None = None,
                   key: str = "fitness") -> list[dict]:
        """`arena.rounds.round_pool` over the pool of `dataset`: the size − 1 others first by `key` for an
        all-versus-all round with `me`; none when fewer than two are published."""
        pool = self._pool(dataset)
        return [dict(c) for c in round_pool(pool, me, size, np.random.default_rng(seed), key)] if len(pool) > 1 else []

    def move(self, dataset: str | None, me: dict, seed: int | None = None, **game) -> Move:
        """`next_move` for the individual `me` (its live entry when published, else `me` as given) over
        the pool of `dataset`, with `default_rng(seed)`; `game` holds next_move's keyword settings."""
        pool = self._pool(dataset)
        player = self.live_ids.get(me["id"])
        mine = self.live[player] if player is not None else {**me, **self._fitness(me["id"])} \
            if self._known(me["id"]) else me
        chosen = next_move(dict(mine), pool, np.random.default_rng(seed), **game)
        return Move(tuple(map(dict, chosen.parents)), tuple(map(dict, chosen.d_parents)))

    def settle(self, matches: list[dict], player: str, status: dict, me: dict | None = None,
               seed: int | None = None, fakes=None, **game) -> dict:
        """The end of a player's fight in one call: fold its matches in (`report`), note its progress
        (`heartbeat`), unless the run is stopping or `me` is None decide its next move (`move`), and trade
        `fakes` (that fooled its discriminator) for as many from the shared pool (`share_fakes`)."""
        if me is not None and not self._known(me["id"]):  # its publish may reach a restarted registry later
            self._born(me["id"], me.get("ops", []), me.get("parent_fitness"))
        standings = self.report(matches)
        if me is not None:  # its own standing, touched by this report or not
            standings[me["id"]] = dict(self._fitness(me["id"]))
        stopping = self.heartbeat(player, status)
        move = self.move(me.get("dataset"), me, seed, **game) if me is not None and not stopping else None
        shared = self.share_fakes(me.get("dataset") if me else None, fakes, seed) if fakes is not None else None
        return {"standings": standings, "stopping": stopping, "move": move, "fakes": shared}

    def share_fakes(self, dataset: str | None, fakes, seed: int | None = None):
        """Add `fakes` to the pool of `dataset` (bounded, as a replay buffer) and return as many drawn from it;
        None when sharing is off."""
        if not self.shared_fakes:
            return None
        pool = self.fakes.setdefault(dataset, ReplayBuffer(self.shared_fakes))
        rng = torch.Generator().manual_seed((seed or 0) % 2**63)
        pool.add(fakes, rng)
        return pool.sample(len(fakes), rng)

    def report(self, matches: list[dict]) -> dict[str, dict]:
        """Fold match results into the standings; returns the new standings of the individuals involved."""
        touched = set()
        for match in matches:
            g, d = match["generator"], match["discriminator"]
            if g in self.final or d in self.final:  # against one retired long ago: its standing is final
                self.late += 1
            if g not in self.final:
                self._standing(g).as_generator(match["fooled"])
                touched.add(g)
            if d not in self.final:
                self._standing(d).as_discriminator(match["fooled"], match["real_accepted"],
                                                   match.get("kind") == SECOND_ROUND)
                touched.add(d)
            if g not in self.final and d not in self.final:  # a rating moves against a rating
                self.ratings.record(g, d, match["fooled"])
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

    def _known(self, _id: str) -> bool:
        return _id in self.standings or _id in self.final

    def _fitness(self, _id: str) -> dict:
        known = self._fitness_of.get(_id)
        if known is not None:
            return known
        if _id in self.final:
            return dict(zip(FINAL, self.final[_id][0]))
        standing = self.standings[_id]
        before = self.lineage.get(_id, {}).get("parent_fitness")
        change = standing.fitness - before if standing.fitness is not None and before is not None else None
        known = {"fitness": standing.fitness, "d_fitness": standing.d_fitness,
                 "d_round_fitness": standing.d_round_fitness, "fitness_change": change,
                 "g_matches": standing.g_matches, "d_matches": standing.d_matches, **self.ratings.standing(_id)}
        if _id in self.live_ids:  # a retired one is read again only by a late match, its compaction or the end
            self._fitness_of[_id] = known
        return known

    def effects(self) -> dict[str, dict]:
        """Beneficial versus nefarious mutations so far: `genome.effects.operator_effects` over the lineage, the
        individuals compacted into `final` included."""
        whole = ({"ops": self.lineage[_id]["ops"], **self._fitness(_id)} for _id in self.lineage)
        compacted = ({"ops": [{"op": name} for name in names], "fitness_change": values[FINAL.index("fitness_change")]}
                     for values, names in self.final.values())
        return operator_effects(itertools.chain(whole, compacted))

    def fitness(self) -> dict[str, dict]:
        """Every individual's standing: the final one of those retired long ago, as it was when compacted."""
        return {_id: dict(self._fitness(_id)) for _id in itertools.chain(self.standings, self.final)}

    def heartbeat(self, player: str, status: dict) -> bool:
        """Record a player's progress; the answer says whether the run is stopping."""
        self.status[player] = {**status, "at": time.time()}
        return self.stopping

    def players(self) -> dict[str, dict]:
        return dict(self.status)

    def stop(self) -> None:
        self.stopping = True
