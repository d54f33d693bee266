"""`python -m experiments.runs`: the runs in a store (`list`, the default), or one run's summary (`show RUN_ID`).

With no --mongo-uri the store is the embedded databases under --out: every run started without
--mongo-uri keeps its own at <out>/<run_id>/db.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Annotated, Optional

import typer
from pymongo.database import Database
from rich.console import Console
from rich.table import Table

from experiments import cli
from experiments.summaries import report_lineage, report_quality, summarize_genome
from storage import records
from storage.store import read_embedded_runs, read_run_store

SILENT = (f"marked running, but its driver has noted nothing for over {records.SILENT_AFTER:.0f} s (killed, or its "
          "machine lost); `python -m experiments.run --resume RUN_ID` continues it")
COLUMNS = ("id", "status", "started", "players", "individuals", "champion fitness")
OPEN_AT_ONCE = 8  # embedded servers started together: each takes ~1 s to start and ~2 s to stop

app = cli.new_app(help=__doc__, invoke_without_command=True)


@dataclass(frozen=True)
class Where:
    """The store of the runs: a MongoDB server, or the embedded databases under `out`."""
    out: str = "runs"
    mongo_uri: str | None = None
    mongo_db: str = "arena"

    def named(self) -> str:
        return records.where_recorded(self.mongo_uri, self.mongo_db) if self.mongo_uri else f"{self.out}/*/db"


def _finished(run: dict) -> bool:
    """Whether the run's summary holds its final counts (written when it ended, however it ended)."""
    return run.get("status") != "running" and bool(run.get("summary"))


def best_individual(db: Database, run: dict, projection: dict | None = None) -> dict | None:
    """An ended run's champion, as it recorded; a running one's champion so far, by its selection."""
    best = (run.get("summary") or {}).get("best") if _finished(run) else None
    if best:
        return db.individuals.find_one({"_id": best}, projection=projection)
    key = ((run.get("config") or {}).get("arena") or {}).get("selection", "fitness")
    return records.champion_of(db, run["_id"], key=key, projection=projection)


def run_row(db: Database, run: dict) -> dict:
    """One line of the listing: counts from the summary of an ended run, counted live for a running one."""
    summary = run.get("summary") or {}
    individuals = summary.get("individuals") if _finished(run) else None
    if individuals is None:
        individuals = db.individuals.count_documents({"run_id": run["_id"]})
    best = best_individual(db, run, projection={"fitness": 1})
    return {"id": run["_id"], "status": records.shown_status(run), "started": run.get("started_at"),
            "players": (run.get("config") or {}).get("players"), "individuals": individuals,
            "champion_fitness": best.get("fitness") if best else None}


def store_rows(db: Database) -> list[dict]:
    return [run_row(db, run) for run in db.runs.find({}, projection={"config.players": 1, "status": 1, "alive_at": 1,
                                                                         "started_at": 1, "summary.individuals": 1,
                                                                         "summary.best": 1})]


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _when(moment: dt.datetime | None) -> str:
    if moment is None:
        return "-"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return f"{moment.astimezone():%Y-%m-%d %H:%M:%S}"


def cells(row: dict) -> list[str]:
    return [row["id"], row["status"] or "-", _when(row["started"]), _fmt(row["players"], "d"),
            _fmt(row["individuals"], "d"), _fmt(row["champion_fitness"], ".3f")]


def print_rows(console: Console, rows: list[dict]) -> None:
    """A table in a terminal; elsewhere plain columns, one run a line, for grep and awk."""
    rows = sorted(rows, key=lambda r: (r["started"] is None, r["started"] or 0, r["id"]))
    if console.is_terminal:
        table = Table()
        for column in COLUMNS:
            table.add_column(column, justify="left" if column in ("id", "status", "started") else "right")
        for row in rows:
            table.add_row(*cells(row))
        console.print(table)
    else:
        lines = [list(COLUMNS)] + [cells(row) for row in rows]
        widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
        for line in lines:
            typer.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())
    if any(row["status"] == "silent" for row in rows):
        typer.echo(f"silent: {SILENT}")


def list_rows(where: Where) -> tuple[list[dict], dict[str, str]]:
    """Every run in the store, and the embedded databases that could not be read (run id -> why)."""
    if where.mongo_uri:
        db = records.connect(where.mongo_uri, where.mongo_db)
        try:
            return store_rows(db), {}
        finally:
            db.client.close()
    found, failed = read_embedded_runs(where.out, where.mongo_db,
                                       lambda db, run_id: store_rows(db), workers=OPEN_AT_ONCE)
    rows = {row["id"]: row for rows in found.values() for row in rows}  # a run's database holds that run
    return list(rows.values()), failed


def describe(db: Database, run_id: str, console: Console) -> None:
    """One run's summary: its configuration, status and times, counts, best individual, quality, lineage."""
    run = db.runs.find_one({"_id": run_id})
    cfg, summary, finished = run.get("config") or {}, run.get("summary") or {}, _finished(run)
    arena = cfg.get("arena") or {}

    def say(text: str) -> None:
        console.print(text, markup=False, highlight=False)

    status = records.shown_status(run)
    say(f"Run {run_id}: {status}")
    if status == "silent":
        say(f"  {SILENT}")
    elapsed = run.get("elapsed_seconds")  # evolution time, noted as the run goes
    if elapsed is None and run.get("finished_at") and run.get("started_at"):
        elapsed = (run["finished_at"] - run["started_at"]).total_seconds()
    resumed = f", resumed {run['resumes']}×" if run.get("resumes") else ""
    say(f"  started {_when(run.get('started_at'))}, ended {_when(run.get('finished_at'))}, evolved "
        f"{_fmt(elapsed, '.0f')} of {_fmt(cfg.get('budget_seconds'), 'g')} s{resumed}")
    say(f"  {cfg.get('players')} players on {cfg.get('dataset')}, seed {cfg.get('seed')}; matchmaking "
        f"{arena.get('matchmaking')}, selection {arena.get('selection')}, {arena.get('opponents')} opponents, "
        f"{arena.get('steps')} steps a loop, schedule {arena.get('schedule', 'async')}; records in "
        f"{cfg.get('mongo_uri') or 'its embedded database'}")
    if finished and "individuals" in summary:
        counts = summary["individuals"], summary.get("matches")
    else:
        counts = (db.individuals.count_documents({"run_id": run_id}), db.matches.count_documents({"run_id": run_id}))
    say(f"  {counts[0]} individuals, {counts[1]} matches{'' if finished else ' so far'}")
    players = summary.get("players") or []
    if players:
        generations = [p["generations"] for p in players]
        loops = [p["mean_loop_seconds"] for p in players if p.get("mean_loop_seconds")]
        say(f"  players: {len(players)} finished with {min(generations)}–{max(generations)} generations each"
            + (f", {sum(loops) / len(loops):.2f} s a loop on average" if loops else ""))
    best = best_individual(db, run)
    if best:
        label = "Champion of the final population" if finished and summary.get("best") else "Fittest so far"
        say(f"{label}: {best['_id']} (fitness {_fmt(best.get('fitness'), '.3f')}, generation {best['generation']}): "
            f"{summarize_genome(best['genome'])}")
        if best.get("checkpoint"):
            say(f"  weights: {best['checkpoint']}")
    else:
        say("No individual has a fitness yet.")
    report_quality(console, summary.get("quality") or {})
    report_lineage(console, summary.get("lineage") or records.lineage_summary(db, run_id))


def _fail(err: Exception) -> typer.Exit:
    typer.echo(f"error: {err}", err=True)
    return typer.Exit(2)


def _where(ctx: typer.Context, out: str | None, mongo_uri: str | None, mongo_db: str | None) -> Where:
    """The options given after the command name, over those given before it."""
    given = {k: v for k, v in {"out": out, "mongo_uri": mongo_uri, "mongo_db": mongo_db}.items() if v is not None}
    return replace(ctx.obj if isinstance(ctx.obj, Where) else Where(), **given)


OUT_HELP = "The --out folder of the runs, whose embedded databases are read when no --mongo-uri is given."
URI_HELP = "MongoDB server the runs recorded into; none reads the embedded databases under --out."
# The store's options again after a command's name (`runs show X --out ...`), over those given before it.
OutAfter = Annotated[Optional[str], typer.Option("--out", help=OUT_HELP + " [default: runs]")]
UriAfter = Annotated[Optional[str], typer.Option("--mongo-uri", help=URI_HELP)]
DbAfter = Annotated[Optional[str], typer.Option("--mongo-db", help="Database name [default: arena].")]


@app.callback()
def store(
    ctx: typer.Context,
    out: str = typer.Option("runs", help=OUT_HELP),
    mongo_uri: Optional[str] = typer.Option(None, envvar="ARENA_MONGO_URI", help=URI_HELP),
    mongo_db: str = typer.Option("arena", help="Database name."),
) -> None:
    """List the runs in a store (the default), or show one."""
    ctx.obj = Where(out, mongo_uri, mongo_db)
    if ctx.invoked_subcommand is None:
        list_runs(ctx, None, None, None)


@app.command("list")
def list_runs(
    ctx: typer.Context,
    out: OutAfter = None,
    mongo_uri: UriAfter = None,
    mongo_db: DbAfter = None,
) -> None:
    """Every run: id, status, started, players, individuals, the champion's fitness (oldest first)."""
    where = _where(ctx, out, mongo_uri, mongo_db)
    try:
        rows, failed = list_rows(where)
    except (ValueError, ConnectionError, RuntimeError) as err:
        raise _fail(err)
    console = Console()
    if not rows and not failed:
        typer.echo(f"no runs in {where.named()}")
        return
    print_rows(console, rows + [{"id": run_id, "status": "unreadable", "started": None, "players": None,
                                 "individuals": None, "champion_fitness": None} for run_id in failed])
    for run_id, why in sorted(failed.items()):
        typer.echo(f"{run_id}: {why}", err=True)


@app.command()
def show(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="The run to summarise."),
    out: OutAfter = None,
    mongo_uri: UriAfter = None,
    mongo_db: DbAfter = None,
) -> None:
    """One run: configuration, status, time spent, counts, best individual and its genome, quality, lineage."""
    where = _where(ctx, out, mongo_uri, mongo_db)
    try:
        # lines as long as they are, for logs and grep
        read_run_store(run_id, where.out, where.mongo_uri, where.mongo_db,
                       lambda db: describe(db, run_id, Console(soft_wrap=True)))
    except (ValueError, ConnectionError, RuntimeError) as err:
        raise _fail(err)


if __name__ == "__main__":
    cli.main(app)
