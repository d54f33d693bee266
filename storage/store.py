"""Opening the store of an existing run: a given MongoDB server, or the run's embedded database."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import pymongo
from pymongo.database import Database
from pymongo.errors import PyMongoError

from storage import records
from storage.embedded import EmbeddedMongo
from storage.files import is_uri

T = TypeVar("T")


@contextmanager
def open_run_store(run_id: str, out: str, mongo_uri: str | None, mongo_db: str) -> Iterator[Database]:
    """The database holding `run_id`; with no `mongo_uri`, the embedded one under <out>/<run_id>/db: the
    run's own server while the run goes, else one started for the duration and stopped after."""
    if mongo_uri:
        db = records.connect(mongo_uri, mongo_db)
        _check_run(db, run_id, records.redact(mongo_uri))
        yield db
        return
    folder = Path(out) / run_id / "db"
    if is_uri(out) or not folder.is_dir():
        raise ValueError(f"no embedded database for run {run_id!r} under {str(folder)!r}; name the folder the run "
                         f"wrote to, or its --mongo-uri")
    server = EmbeddedMongo(folder, log_path=folder.with_name("secantusd.log"))
    running = _answering(server.uri_file, run_id, mongo_db)
    if running:  # the run is still going: its own server holds the storage, read through it
        db = records.connect(running, mongo_db)
        _check_run(db, run_id, str(folder))
        yield db
        return
    with server:
        db = records.connect(server.uri, mongo_db)
        _check_run(db, run_id, str(folder))
        yield db


def read_run_store(run_id: str, out: str, mongo_uri: str | None, mongo_db: str, read: Callable[[Database], T]) -> T:
    """`read(db)` on the database `open_run_store` opens. A run that ends while it is read stops its own
    server, and a server started beside another may have drawn the same free port: either way the read is
    made once more, from the folder the run left (so it sees the run finished)."""
    def once() -> T:
        with open_run_store(run_id, out, mongo_uri, mongo_db) as db:
            try:
                return read(db)
            finally:
                db.client.close()

    try:
        return once()
    except (pymongo.errors.ConnectionFailure, RuntimeError):
        if mongo_uri:  # a server the user named: nothing of ours to fall back on
            raise
    return once()


def _answering(uri_file: Path, run_id: str, mongo_db: str) -> str | None:
    """The address in `uri_file` when a server holding `run_id` answers there (a stale file, left by a
    killed run, is ignored)."""
    try:
        uri = uri_file.read_text().strip()
    except OSError:
        return None
    try:
        with pymongo.MongoClient(uri, serverSelectionTimeoutMS=1000) as client:
            found = client[mongo_db].runs.find_one({"_id": run_id}, projection={"_id": 1})
    except (pymongo.errors.PyMongoError, ValueError):
        return None
    return uri if found else None


def _check_run(db: Database, run_id: str, where: str) -> None:
    if db.runs.find_one({"_id": run_id}, projection={"_id": 1}) is None:
        raise ValueError(f"run {run_id!r} not found in {where} (database {db.name!r})")


def read_embedded_runs(out: str, mongo_db: str, read: Callable[[Database, str], T],
                       workers: int = 4) -> tuple[dict[str, T], dict[str, str]]:
    """`read(db, run_id)` on the embedded database of every run under <out> (<out>/<run_id>/db), each opened
    as `open_run_store` opens it. A server takes about a second to start and two to stop, so `workers` of
    them are open at once. Returns run id -> what `read` returned, and run id -> why its database could
    not be read (no record of it; held by a process that gives no address)."""
    if is_uri(out):
        raise ValueError(f"embedded databases live in a local folder, not {out!r}; give --mongo-uri")
    if not Path(out).is_dir():
        raise ValueError(f"no folder {out!r}; name the folder the runs wrote to (--out), or their --mongo-uri")
    run_ids = sorted(folder.parent.name for folder in Path(out).glob("*/db") if folder.is_dir())

    def one(run_id: str) -> T:
        return read_run_store(run_id, out, None, mongo_db, lambda db: read(db, run_id))

    found, failed = {}, {}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {run_id: pool.submit(one, run_id) for run_id in run_ids}
        for run_id, future in futures.items():
            try:
                found[run_id] = future.result()
            except (ValueError, RuntimeError, ConnectionError, PyMongoError) as err:
                failed[run_id] = str(err)
    return found, failed
