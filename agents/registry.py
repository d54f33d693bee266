"""The registry actor: who is published now, and how each individual stands. Hot state only;
MongoDB holds the record."""

from __future__ import annotations

import time

from arena.fitness import Standing
from arena.ratings import Ratings
from genome.effects import operator_effects
from storage.records import connect


class Registry:
    def __init__(self, run_id: str, window: int = 16, mongo_uri: str | None = None, mongo_db: str = "arena"):
        self.run_id, self.window = run_id, window
        self.ratings = Ratings()
        self.live: dict[str, dict] = {}  # player -> its published individual
        self.standings: dict[str, Standing] = {}  # individual id -> standing, retired ones too
        self.lineage: dict[str, dict] = {}  # individual id -> the ops that made it and its parents' fitness
        self.status: dict[str, dict] = {}  # player -> its latest heartbeat
        self.stopping = False
        if mongo_uri:
            self._rebuild(connect(mongo_uri, mongo_db))

    def _rebuild(self, db) -> None:
        """Standings, ratings and lineage from the record, so a restarted registry (or a resumed run)
        carries on where the last one stopped. Published weights are not in the record: players
        publish again within a loop."""
        for doc in db.individuals.find({"run_id": self.run_id}, projection={"ops": 1, "parent_fitness": 1}):
            self.standings.setdefault(doc["_id"], Standing(self.window))
            self.lineage[doc["_id"]] = {"ops": doc.get("ops") or [], "parent_fitness": doc.get("parent_fitness")}
        matches = list(db.matches.find({"run_id": self.run_id}, projection={"generator": 1, "discriminator": 1,
                                                                            "fooled": 1, "real_accepted": 1, "at": 1}))
        self.report(sorted(matches, key=lambda m: m["at"]))

    def __repr__(self) -> str:  # what the Ray dashboard shows
        return f"Registry(run={self.run_id}, published={len(self.live)}, individuals={len(self.standings)})"

    def publish(self, entry: dict, weights: list) -> None:
        """`weights` is a one-element list holding an ObjectRef, so Ray passes the reference, not the data."""
        self.standings.setdefault(entry["id"], Standing(self.window))
        self.lineage[entry["id"]] = {"ops": entry.get("ops", []), "parent_fitness": entry.get("parent_fitness")}
        self.live[entry["player"]] = {**entry, "weights": weights, "published_at": time.time()}

    def candidates(self, dataset: str | None = None) -> list[dict]:
        """Every published individual of `dataset` (all when None) with its standing: the pool for
        opponents and parents. Only like meets like: a 2-D generator never faces an image discriminator."""
        return [{**entry, **self._fitness(entry["id"])} for entry in self.live.values()
                if dataset is None or entry["dataset"] == dataset]

    def report(self, matches: list[dict]) -> dict[str, dict]:
        """Fold match results into the standings; returns the new standings of the individuals involved."""
        touched = set()
        for match in matches:
            self.standings.setdefault(match["generator"], Standing(self.window)).as_generator(match["fooled"])
            self.standings.setdefault(match["discriminator"], Standing(self.window)).as_discriminator(
                match["fooled"], match["real_accepted"])
            self.ratings.record(match["generator"], match["discriminator"], match["fooled"])
            touched.update((match["generator"], match["discriminator"]))
        return {_id: self._fitness(_id) for _id in touched}

    def _fitness(self, _id: str) -> dict:
        standing = self.standings[_id]
        before = self.lineage.get(_id, {}).get("parent_fitness")
        change = standing.fitness - before if standing.fitness is not None and before is not None else None
        return {"fitness": standing.fitness, "d_fitness": standing.d_fitness, "fitness_change": change,
                "g_matches": standing.g_matches, "d_matches": standing.d_matches, **self.ratings.standing(_id)}

    def effects(self) -> dict[str, dict]:
        """Beneficial versus nefarious mutations so far, per operator."""
        return operator_effects({"ops": self.lineage[_id]["ops"], **self._fitness(_id)} for _id in self.lineage)

    def fitness(self) -> dict[str, dict]:
        return {_id: self._fitness(_id) for _id in self.standings}

    def heartbeat(self, player: str, status: dict) -> bool:
        """Record a player's progress; the answer says whether the run is stopping."""
        self.status[player] = {**status, "at": time.time()}
        return self.stopping

    def players(self) -> dict[str, dict]:
        return dict(self.status)

    def stop(self) -> None:
        self.stopping = True

    def is_stopping(self) -> bool:
        return self.stopping
