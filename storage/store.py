"""Opening the store of an existing run: a given MongoDB server, or the run's embedded database."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from pymongo.database import Database

from storage import records
from storage.embedded import EmbeddedMongo
from storage.files import is_uri


@contextmanager
def open_run_store(run_id: str, out: str, mongo_uri: str | None, mongo_db: str) -> Iterator[Database]:
    """The database holding `run_id`; with no `mongo_uri`, the embedded one under <out>/<run_id>/db is
    started for the duration and stopped after."""
    if mongo_uri:
        db = records.connect(mongo_uri, mongo_db)
        _check_run(db, run_id, records.redact(mongo_uri))
        yield db
        return
    folder = Path(out) / run_id / "db"
    if is_uri(out) or not folder.is_dir():
        raise ValueError(f"no embedded database for run {run_id!r} under {str(folder)!r}; name the folder the run "
                         f"wrote to, or its --mongo-uri")
    with EmbeddedMongo(folder, log_path=folder.with_name("secantusd.log")) as server:
        db = records.connect(server.uri, mongo_db)
        _check_run(db, run_id, str(folder))
        yield db


def _check_run(db: Database, run_id: str, where: str) -> None:
    if db.runs.find_one({"_id": run_id}, projection={"_id": 1}) is None:
        raise ValueError(f"run {run_id!r} not found in {where} (database {db.name!r})")
