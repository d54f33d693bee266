"""The record of a run in MongoDB: runs, individuals (genomes, lineage, checkpoint pointers), matches.

All writes go through pymongo. Players write through a `Recorder`, which batches them: the store
answers a few hundred single writes a second but thousands batched, and training must not wait.
Every document has a deterministic `_id` and is written as an upsert, so writing twice is harmless.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Callable, Sequence

import pymongo
from pymongo import ReplaceOne, UpdateOne
from pymongo.database import Database

from arena.selection import champion
from storage.files import delete_file
from genome.effects import operator_counts, operator_effects

# Every query the code makes has its index: unindexed lookups are orders of magnitude slower.
INDEXES = {
    "runs": [[("status", 1)]],
    "individuals": [[("run_id", 1), ("player", 1), ("generation", -1)], [("run_id", 1), ("fitness", -1)]],
    "matches": [[("run_id", 1), ("generator", 1)], [("run_id", 1), ("discriminator", 1)]],
    "metrics": [[("run_id", 1), ("kind", 1), ("at", 1)], [("run_id", 1), ("individual", 1)]],
}


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def redact(uri: str) -> str:
    """The URI with any password removed, for messages and logs."""
    return re.sub(r"(?<=://)([^:@/]+):([^@/]*)@", r"\1:***@", uri)


def where_recorded(mongo_uri: str, database: str) -> str:
    """Database and server in words: appending the name to the URI gives no address when the URI has no
    trailing slash, nor when it has options."""
    return f"database {database} at {redact(mongo_uri)}"


# How long an actor (re)starting during a database outage waits for the store: it cannot resume
# without reading the record, and failing would end it for good (Ray restarts no failed constructor).
ACTOR_PATIENCE_MS = 15 * 60 * 1000


def connect(uri: str, database: str, timeout_ms: int = 5000) -> Database:
    """A checked connection: fails within `timeout_ms` with the (redacted) URI named if nobody answers."""
    try:
        client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=timeout_ms, tz_aware=True)
    except (pymongo.errors.ConfigurationError, pymongo.errors.InvalidURI, ValueError) as err:
        raise ValueError(f"bad MongoDB URI {redact(uri)!r}: {err}") from None
    try:
        client.admin.command("ping")
    except pymongo.errors.PyMongoError:
        client.close()
        raise ConnectionError(f"no MongoDB server answered at {redact(uri)}") from None
    db = client[database]
    ensure_indexes(db)
    return db


def ensure_indexes(db: Database) -> None:
    for collection, indexes in INDEXES.items():
        for keys in indexes:
            db[collection].create_index(keys)


def start_run(db: Database, run_id: str, config: dict) -> None:
    at = now()
    db.runs.update_one(
        {"_id": run_id},
        {"$set": {"config": config, "status": "running", "started_at": at, "finished_at": None, "alive_at": at}},
        upsert=True)


def resume_run(db: Database, run_id: str) -> None:
    at = now()
    db.runs.update_one({"_id": run_id}, {"$set": {"status": "running", "resumed_at": at, "finished_at": None,
                                                  "alive_at": at},
                                         "$inc": {"resumes": 1}})


def note_cluster(db: Database, run_id: str, address: str, namespace: str) -> None:
    """The Ray cluster and namespace a run's actors live in, so tools can find them (by name) while it goes."""
    db.runs.update_one({"_id": run_id}, {"$set": {"ray": {"address": address, "namespace": namespace}}})


def drop_unclaimed(db: Database, run_id: str, player: str, last_recorded: int) -> int:
    """Delete the matches and metrics of `player`'s individuals after generation `last_recorded`, and
    return how many: a flush sends an individual's matches and metrics before its record, so a player
    killed in between leaves documents no record claims, and its restart reuses that individual's number."""
    prefix = f"{run_id}/{player}/"
    mine = {"$regex": f"^{re.escape(prefix)}[0-9]+$"}
    dropped = 0
    for collection, field in (("matches", "by"), ("metrics", "individual")):
        unclaimed = [i for i in db[collection].distinct(field, {"run_id": run_id, field: mine})
                     if int(i[len(prefix):]) > last_recorded]
        if unclaimed:
            dropped += db[collection].delete_many({"run_id": run_id, field: {"$in": unclaimed}}).deleted_count
    return dropped


SILENT_AFTER = 60.0  # seconds without a note from its driver after which a "running" run is shown as silent


def note_elapsed(db: Database, run_id: str, seconds: float) -> None:
    """Evolution time spent so far, so a resumed run's budget counts on from it, and when its driver was
    last alive; skipped while the store is away (the next note carries the total)."""
    try:
        with pymongo.timeout(2.0):
            db.runs.update_one({"_id": run_id}, {"$set": {"elapsed_seconds": seconds, "alive_at": now()}})
    except (pymongo.errors.ConnectionFailure, pymongo.errors.ExecutionTimeout):
        pass


def shown_status(run: dict) -> str | None:
    """The run's status as recorded, except that a run still marked running whose driver has noted
    nothing for `SILENT_AFTER` seconds is "silent": its driver was killed, or its machine lost."""
    alive = run.get("alive_at")
    if run.get("status") != "running" or alive is None:  # runs recorded before `alive_at` existed: as recorded
        return run.get("status")
    alive = alive if alive.tzinfo else alive.replace(tzinfo=dt.timezone.utc)
    return "silent" if (now() - alive).total_seconds() > SILENT_AFTER else "running"


def end_run(db: Database, run_id: str, status: str, summary: dict | None = None) -> None:
    if status not in ("finished", "failed", "interrupted"):
        raise ValueError(f"unknown run status {status!r}")
    fields = {"status": status, "finished_at": now()}
    if summary is not None:
        fields["summary"] = summary
    db.runs.update_one({"_id": run_id}, {"$set": fields})


def set_fitness(db: Database, standings: dict[str, dict]) -> None:
    """Write the final standing of every individual at once, over its latest standing; its standing at its
    fight stays in `at_fight` (`Recorder.record` says what each field holds)."""
    requests = [UpdateOne({"_id": _id}, {"$set": fields}) for _id, fields in standings.items()]
    if requests:
        db.individuals.bulk_write(requests, ordered=False)


class Recorder:
    """Buffers a player's writes, one loop at a time (`record`), and sends them in bulk once
    `flush_ops` writes or `flush_seconds` seconds have gathered, and on `close()`.

    When the store cannot be reached the writes stay buffered and training goes on; sending is
    retried every `retry_seconds`. Past `max_pending` buffered writes the recorder waits for the
    store instead, so nothing is dropped. Every write is an upsert of a whole document by `_id` (or the
    `$set` of a pruned checkpoint's mark), so a batch re-sent after a connection broke half-way through is written
    once."""

    def __init__(self, db: Database, flush_ops: int = 100, flush_seconds: float = 2.0,
                 before_flush: Callable[[], None] | None = None, max_pending: int = 200_000,
                 retry_seconds: float = 5.0, attempt_seconds: float = 2.0):
        self.db = db
        self.before_flush = before_flush
        self.flush_ops, self.flush_seconds = flush_ops, flush_seconds
        self.max_pending, self.retry_seconds, self.attempt_seconds = max_pending, retry_seconds, attempt_seconds
        # Sent in this order: an individual's record claims its matches (their count), so they land first.
        self._pending: dict[str, list] = {"matches": [], "metrics": [], "individuals": []}
        self._last_flush = time.monotonic()
        self.written = {"individuals": 0, "matches": 0, "metrics": 0}
        self._doomed: list[str] = []  # checkpoints to delete once their marks are stored (`prune`)
        self.outage_since: float | None = None  # monotonic time the store stopped answering
        self.outages = 0

    @property
    def pending(self) -> int:
        return sum(len(v) for v in self._pending.values())

    def record(self, individual: dict, matches: Sequence[dict] = (), metrics: Sequence[dict] = ()) -> None:
        """One loop of a player, queued at once so that no flush sends a part of it, nor (through
        `before_flush`) the trace rows of an individual whose record is not queued yet: its matches and
        metrics (each stamped `at` when it has no time of its own), then the individual's record, which
        claims them and is sent after them.

        An individual's record is written once, whole, by its player at the end of its loop: who it is
        (`player`, `generation`, `dataset`, `genome`, `parameters`), where it came from (`parents`,
        `g_parents`, `d_parents`, `ops`, `inherited`, `age`, `parent_fitness`), when it was saved
        (`created_at`), its checkpoint (`checkpoint`, `checkpoint_sha256`; `checkpoint_pruned` set later once its
        player deleted the file, `Recorder.prune`), its training (`steps`, the
        player's total; `trained_steps`; `step_ms`, the train phase's wall milliseconds per step, and
        `step_cpu_ms`, its CPU milliseconds per step (the player thread's): what the genome costs, apart from
        the share of a core the machine gave; `train_preempted`, the times the OS preempted that thread in the
        train phase (null where not counted); `real_distance`, its generator's MMD² to the run's real reference
        samples after training, what `arena.cull = "real"` ranks by; null where not measured, see
        `ArenaConfig.distance_due`), and its fight (`matches` and `trace_rows`, the counts it claims; `hacking`;
        `timeline`, the loop's phases). Its standing, in two places with one meaning each:
        - `at_fight`: its standing right after its own fight, with its time `at`; never rewritten, so the
          record keeps the history of the run (the report's standings over time).
        - `fitness`, `d_fitness`, `fitness_change`, `mu`, `sigma`, `rating`, `d_rating`: its latest standing,
          what every reader ranks by (`champion_of`, the leaderboard, the effects of operators): written as
          at its fight, replaced once by its final standing when the run ends (`set_fitness`, which adds
          `d_round_fitness`, `g_matches` and `d_matches`). A run whose driver died keeps the first."""
        for doc in matches:
            self._pending["matches"].append(ReplaceOne({"_id": doc["_id"]}, {"at": now(), **doc}, upsert=True))
        for doc in metrics:
            self._pending["metrics"].append(ReplaceOne({"_id": doc["_id"]}, {"at": now(), **doc}, upsert=True))
        doc = {"created_at": now(), **individual}
        self._pending["individuals"].append(ReplaceOne({"_id": doc["_id"]}, doc, upsert=True))
        waited = time.monotonic() - self._last_flush
        due = self.retry_seconds if self.outage_since is not None else self.flush_seconds
        if waited >= due or (self.outage_since is None and self.pending >= self.flush_ops):
            self.flush()
        elif self.pending > self.max_pending:
            self.flush(wait=True)

    def prune(self, individual: str, location: str) -> None:
        """Delete an individual's checkpoint at `location` and mark its record (`checkpoint_pruned`): the mark is
        queued after its record (no upsert: a record dropped at a restart stays dropped), and the file goes only
        once the mark is stored, so a record never points at a missing file unmarked; a player killed in between
        leaves a marked record whose file lingers, which nothing reads."""
        self._pending["individuals"].append(UpdateOne({"_id": individual}, {"$set": {"checkpoint_pruned": True}}))
        self._doomed.append(location)

    def flush(self, wait: bool = False, timeout: float = float("inf")) -> None:
        """Send what is pending; `before_flush` first (a player's traces), so whatever is recorded
        here has its trace rows on disk already. With `wait`, keep trying until the store answers
        (or `timeout` seconds pass, then raise naming what would be lost)."""
        self._last_flush = time.monotonic()
        if self.before_flush is not None:
            self.before_flush()
        backoff, deadline = 0.5, time.monotonic() + timeout
        while True:
            try:
                self._send()
            except (pymongo.errors.ConnectionFailure, pymongo.errors.ExecutionTimeout) as err:
                if self.outage_since is None:
                    self.outage_since = time.monotonic()
                    self.outages += 1
                    print(f"warning: the store does not answer ({type(err).__name__}); "
                          f"{self.pending} writes buffered, at most {self.max_pending} before waiting for it")
                if not wait and self.pending <= self.max_pending:
                    return
                if time.monotonic() >= deadline:
                    raise ConnectionError(f"the store did not answer for {timeout:.0f} s; "
                                          f"{self.pending} buffered writes were not recorded") from None
                time.sleep(backoff)
                backoff = min(2 * backoff, 10.0)
                continue
            if self.outage_since is not None:
                print(f"the store answers again after {time.monotonic() - self.outage_since:.0f} s; "
                      "buffered writes sent")
                self.outage_since = None
            return

    def _send(self) -> None:
        for collection, requests in self._pending.items():
            if requests:
                with pymongo.timeout(self.attempt_seconds):
                    # Ordered: requests are written in the order they were queued.
                    self.db[collection].bulk_write(requests, ordered=True)
                self.written[collection] += len(requests)
                self._pending[collection] = []
        for location in self._doomed:  # their marks, queued with the individuals, are stored now
            try:
                delete_file(location)
            except OSError as err:  # a lingering file costs disk, not records: training goes on
                print(f"warning: checkpoint {location!r} could not be deleted: {err}")
        self._doomed = []

    def close(self, timeout: float = 600.0) -> None:
        self.flush(wait=True, timeout=timeout)


def lineage_summary(db: Database, run_id: str) -> dict:
    """What breeding did in a run, from the records: how children built, what they inherited,
    which operators made them and how each changed fitness."""
    children = list(db.individuals.find({"run_id": run_id, "generation": {"$gt": 0}},
                                        projection={"ops": 1, "inherited": 1, "fitness_change": 1}))
    attempts = [c["inherited"]["build_attempts"] for c in children if c.get("inherited")]
    shares = [c["inherited"]["share"] for c in children if c.get("inherited")]
    return {"children": len(children),
            "built_first_try": sum(a == 1 for a in attempts),
            "mean_inherited_share": sum(shares) / len(shares) if shares else None,
            "operators": operator_counts(children),
            "effects": operator_effects(children)}


KEPT = {"checkpoint_pruned": {"$ne": True}}  # the individuals whose checkpoints their players kept (`Recorder.prune`)
CHAMPION_FIELDS = {"genome": 1, "fitness": 1, "rating": 1, "d_fitness": 1, "player": 1, "generation": 1, "checkpoint": 1}


def run_summary(db: Database, run_id: str, among: list[str] | None = None, key: str = "fitness",
                chosen: str | None = None) -> dict:
    """Counts and the champion of a run (`best`: the individual `chosen` when the final evaluation chose
    one, else `arena.selection.champion` by the standing `key`, fitness or rating), read back from the
    store; `among` limits it to those ids (the final population: early fitness was earned against
    untrained opponents)."""
    best = chosen and db.individuals.find_one({"_id": chosen, "run_id": run_id}, projection=CHAMPION_FIELDS)
    return {"individuals": db.individuals.count_documents({"run_id": run_id}),
            "matches": db.matches.count_documents({"run_id": run_id}),
            "best": best or champion_of(db, run_id, among, key)}


def champion_of(db: Database, run_id: str, among: list[str] | None = None, key: str = "fitness",
                projection: dict | None = None) -> dict | None:
    """The run's champion by `key` among `among` (or all its individuals whose checkpoint is kept), None before
    any has a standing. Read in id order, so every caller that asks the same question gets the same individual."""
    query = {"run_id": run_id, key: {"$ne": None}, **KEPT}
    if among is not None:
        query["_id"] = {"$in": among}
    fields = projection or CHAMPION_FIELDS
    docs = list(db.individuals.find(query, projection={**fields, key: 1}, sort=[("_id", 1)]))
    return champion(docs, key) if docs else None

