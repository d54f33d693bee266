"""`python -m experiments.run`: evolve a population of GAN players on a Ray cluster.

With no flags it starts (or attaches to) a local Ray cluster and an embedded MongoDB-protocol
server, so a fresh machine needs nothing else.
"""

from __future__ import annotations

import datetime as dt
import math
import secrets
import signal
import socket
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import ray
import typer
from pymongo.database import Database
from rich.console import Console

from agents import turns
from agents.barrier import Barrier
from agents.player import Player, PlayerSpec
from agents.registry import Registry
from arena.datasets import load_dataset
from arena.founders import found
from arena.metrics import Judge
from experiments import cli
from experiments.cluster import check_reach, dashboard_note
from experiments.config import RunConfig, apply_sets, check_resume_flags, load_config, resumed_config
from experiments.evaluate import evaluate_final
from experiments.live import LiveView, registry_status
from experiments.options import ConfigFile, Sets, section_keys, with_config_flags
from experiments.summaries import report_lineage, report_quality, summarize_genome
from storage import records
from storage.embedded import EmbeddedMongo
from storage.files import is_uri, join

READY_SECONDS = 120
ELAPSED_EVERY = 5.0  # seconds between notes of the time spent, which a resumed run's budget counts from
app = cli.new_app(help=__doc__)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def new_run_id(dataset: str) -> str:
    return f"{dataset}-{dt.datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


DASHBOARD_PORT = 8265  # Ray's default


def free_port(preferred: int = 0) -> int:
    """`preferred` if nothing listens on it, else a port the system has free. Ray gives a second local
    cluster on one machine no dashboard at all when the default port is taken, and without one neither
    the dashboard nor the state API (`ray list actors`, experiments.chaos) can see the run."""
    for port in (preferred, 0):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise OSError("no free port on 127.0.0.1")


def _check_address(address: str | None) -> None:
    """Refuse an address nobody answers at, in seconds: ray.init would wait for minutes."""
    if address in (None, "auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=5):
            pass
    except (OSError, ValueError):
        raise ConnectionError(f"no Ray cluster answered at {address!r}") from None


def _connect_ray(cfg: RunConfig, run_id: str, console: Console) -> str:
    """Returns the cluster's address."""
    # address None: Ray attaches to a cluster started with `ray start` on this machine, else starts one.
    sizing = {"address": cfg.address}
    if cfg.num_cpus:  # a cluster of its own, with a dashboard of its own even beside another local cluster
        sizing = {"address": "local", "num_cpus": cfg.num_cpus,
                  **({"dashboard_port": free_port(DASHBOARD_PORT)} if cfg.dashboard else {})}
    # Ray ignores include_dashboard when it attaches to a running cluster.
    context = ray.init(**sizing, include_dashboard=cfg.dashboard, namespace=run_id, log_to_driver=False,
                       logging_level="WARNING")
    dashboard = f", dashboard http://{context.dashboard_url}" if context.dashboard_url else ""
    console.print(f"Ray: {context.address_info['address']}{dashboard}{dashboard_note()}, namespace {run_id}")
    return context.address_info["address"]


def _cpus_per_player(cfg: RunConfig) -> float:
    total = ray.cluster_resources().get("CPU", 0.0)
    # Rounded down: 3 × 0.6667 would ask for more than 2 CPUs and leave a player unplaced.
    cpus = cfg.cpus_per_player if cfg.cpus_per_player is not None else math.floor(min(1.0, total / cfg.players) * 1e4) / 1e4
    if cpus * cfg.players > total + 1e-9 or cpus <= 0:
        raise ValueError(f"{cfg.players} players × {cpus:g} CPUs each need {cfg.players * cpus:g} CPUs, "
                         f"but the Ray cluster has {total:g}; lower --cpus-per-player or --players")
    return cpus


# Weights put in the object store are read in place by the players that fetch them, not copied: 7-58× faster
# than JSON instead of 4-10× (BENCHMARKS.md, exchange). Safe here: fetched weights are only read, never changed.
ZERO_COPY = {"env_vars": {"RAY_ENABLE_ZERO_COPY_TORCH_TENSORS": "1"}}


def _check_gpus(cfg: RunConfig) -> None:
    """Refuse GPU shares the cluster cannot give, before players wait forever to be placed."""
    total = ray.cluster_resources().get("GPU", 0.0)
    if cfg.gpus_per_player * cfg.players > total + 1e-9:
        raise ValueError(f"{cfg.players} players × {cfg.gpus_per_player:g} GPUs each need "
                         f"{cfg.players * cfg.gpus_per_player:g} GPUs, but the Ray cluster has {total:g}; "
                         f"lower --gpus-per-player or --players")


def preflight(cfg: RunConfig) -> None:
    """Checks before anything is started or written: each refuses in seconds what would fail late."""
    _check_address(cfg.address)  # ray.init would wait for minutes
    # A first genome that cannot be drawn within the limits would fail inside every player's constructor.
    found(cfg.seed, 0, cfg.players, load_dataset(cfg.dataset).shape, cfg.mutation, cfg.arena)


def open_records(cfg: RunConfig, run_id: str, run_dir: str, resuming: bool, stack: ExitStack) -> tuple[str, Database]:
    """The run's store, `--mongo-uri` or an embedded server under the run's folder (stopped with `stack`)."""
    if cfg.mongo_uri:
        return cfg.mongo_uri, records.connect(cfg.mongo_uri, cfg.mongo_db)
    if is_uri(cfg.out):
        raise ValueError(f"the embedded database needs a local --out, not {cfg.out!r}; give --mongo-uri")
    if resuming and not (Path(run_dir) / "db").is_dir():
        raise ValueError(f"run {run_id!r} does not exist under {cfg.out!r}; nothing to resume")
    embedded = EmbeddedMongo(Path(run_dir) / "db", log_path=Path(run_dir) / "secantusd.log")
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    mongo_uri = embedded.start()
    stack.callback(embedded.stop)
    return mongo_uri, records.connect(mongo_uri, cfg.mongo_db)


def recorded_config(db: Database, cfg: RunConfig, run_id: str, resume: dict | None) -> tuple[RunConfig, float]:
    """The configuration to run and the evolution time already spent: a new run's own, or a resumed
    run's recorded one on this site."""
    recorded = db.runs.find_one({"_id": run_id})
    if resume is None:
        if recorded is not None:
            raise ValueError(f"run {run_id!r} already exists in database {cfg.mongo_db!r}; choose another "
                             f"--run-id or --resume it")
        return cfg, 0.0
    if recorded is None:
        raise ValueError(f"run {run_id!r} does not exist in database {cfg.mongo_db!r}; nothing to resume")
    cfg = resumed_config(recorded["config"], cfg, resume)
    elapsed = recorded.get("elapsed_seconds") or 0.0
    if elapsed >= cfg.budget_seconds:
        raise ValueError(f"run {run_id!r} has spent its budget ({elapsed:.0f} of {cfg.budget_seconds:g} s); "
                         f"give a larger --budget-seconds to go on")
    return cfg, elapsed


def join_cluster(cfg: RunConfig, run_id: str, console: Console, stack: ExitStack) -> tuple[str, float]:
    """Connects to Ray (left with `stack`); returns the cluster's address and the CPUs each player gets."""
    address = _connect_ray(cfg, run_id, console)
    stack.callback(ray.shutdown)
    # A scheduler's SIGTERM stops the run as Ctrl-C does: marked interrupted, nothing recorded lost.
    # Set after ray.init, whose own handler would otherwise end the process on the spot.
    signal.signal(signal.SIGTERM, _interrupt)
    cpus = _cpus_per_player(cfg)
    _check_gpus(cfg)
    return address, cpus


def record_start(db: Database, cfg: RunConfig, run_id: str, cpus: float, address: str, resumed: bool) -> None:
    if resumed:
        records.resume_run(db, run_id)
    else:
        # The recorded configuration keeps no password: a resumed run takes its URI from its command line.
        records.start_run(db, run_id, {**cfg.to_dict(), "run_id": run_id, "cpus_per_player": cpus,
                                       "mongo_uri": cfg.mongo_uri and records.redact(cfg.mongo_uri)})
    records.note_cluster(db, run_id, address, run_id)  # where its actors can be found while it goes


# Both kinds of actor come back if their process dies (max_restarts), and calls to them are retried
# (max_task_retries): a restarted player resumes from its last recorded individual, a restarted
# registry rebuilds its standings from the record.
REVIVE = dict(max_restarts=-1, max_task_retries=-1)


def start_actors(cfg: RunConfig, run_id: str, mongo_uri: str, run_dir: str, cpus: float) -> tuple[object, list, object]:
    """The registry, the barrier of the synchronous schedule, and the players, under `cfg` as played on its data
    (`RunConfig.for_data`); returns the registry, the players and the barrier when there is one (the caller holds
    its handle: Ray ends an actor whose every handle is gone, and players look it up by name)."""
    registry = ray.remote(Registry).options(name="registry", num_cpus=0, **REVIVE).remote(
        run_id, cfg.arena.fitness_window, mongo_uri, cfg.mongo_db, cfg.arena.shared_fakes)
    ray.get(registry.players.remote())  # alive and named before any player looks it up
    barrier = None
    if cfg.arena.schedule == "barrier":
        barrier = ray.remote(Barrier).options(name="barrier", num_cpus=0, **REVIVE).remote(
            [f"player-{i}" for i in range(cfg.players)])
        ray.get(barrier.waiting.remote())  # alive and named before any player looks it up
    return registry, [new_player(i, cfg, run_id, mongo_uri, run_dir, cpus) for i in range(cfg.players)], barrier


def new_player(index: int, cfg: RunConfig, run_id: str, mongo_uri: str, run_dir: str, cpus: float):
    """Player `index` as a named, restartable actor with its share of the cluster."""
    spec = PlayerSpec(index, cfg.players, run_id, cfg.dataset, cfg.seed, cfg.budget_seconds, mongo_uri, cfg.mongo_db,
                      join(run_dir, "checkpoints"), join(run_dir, "traces"), max(1, int(cpus)), bool(cfg.gpus_per_player),
                      cfg.turn_ms if cpus < 1 and not cfg.gpus_per_player else 0.0, cfg.keep_checkpoints, cfg.keep_every)
    return ray.remote(Player).options(name=f"player-{index}", num_cpus=cpus, num_gpus=cfg.gpus_per_player,
                                      runtime_env=ZERO_COPY, **REVIVE).remote(spec, cfg.arena, cfg.mutation)


@dataclass
class Outcome:
    """How the evolution ended: the run's recorded status, each player's own summary, a player's error."""
    status: str = "failed"
    players: list[dict] = field(default_factory=list)
    error: str | None = None
    started: float | None = None  # when the budget's clock started, a resumed run's spent time before now


def evolve(cfg: RunConfig, db: Database, run_id: str, registry, players: list, elapsed: float,
           console: Console, outcome: Outcome) -> None:
    """Players evolve until the budget is spent, Ctrl-C or a player fails; `outcome` says which."""
    try:
        ray.get([p.ready.remote() for p in players], timeout=READY_SECONDS)
    except ray.exceptions.GetTimeoutError:
        raise RuntimeError(f"players were not placed within {READY_SECONDS} s: does the cluster have "
                           f"{cfg.players} free CPUs and GPUs at the shares asked?") from None
    outcome.started = time.time() - elapsed  # a resumed run's budget counts on
    runs = [p.run.remote(outcome.started + cfg.budget_seconds) for p in players]
    try:
        with LiveView(console, registry_status(registry), cfg, outcome.started) as view:
            pending, noted = runs, time.time()
            while pending:
                _, pending = ray.wait(pending, num_returns=len(pending), timeout=1.0)
                view.refresh()
                if time.time() - noted >= ELAPSED_EVERY:
                    noted = time.time()
                    records.note_elapsed(db, run_id, noted - outcome.started)
        outcome.players, outcome.status = ray.get(runs), "finished"
    except KeyboardInterrupt:
        outcome.status = "interrupted"
        console.print("Interrupted: players finish their current loop and stop; records so far are kept.")
        try:
            outcome.players = _stop(registry, runs)
        except KeyboardInterrupt:
            pass  # a second Ctrl-C: stop waiting, still record what there is
    except (ray.exceptions.RayError, ray.exceptions.GetTimeoutError) as err:
        outcome.error = str(err).strip().splitlines()[-1]
        # The others stop too: a player still writing while the run concludes could replace a final standing.
        outcome.players = _stop(registry, runs)


def _stop(registry, runs: list) -> list:
    """Tell every player to stop after its current loop; what those that stopped within a minute return."""
    registry.stop.remote()
    done, _ = ray.wait(runs, num_returns=len(runs), timeout=60)
    return _results(done)


def final_population(registry, db: Database) -> list[str]:
    """The final standing of every individual, written to its record over its latest one (its standing at
    its fight stays in `at_fight`: `records.Recorder.record`); returns the live population."""
    records.set_fitness(db, ray.get(registry.fitness.remote()))
    return [c["id"] for c in ray.get(registry.candidates.remote())]


def _attempt(console: Console, what: str, step: Callable, fallback=None):
    """A summary step after the status is recorded: a failure is one warning line, never the run's cause."""
    try:
        return step()
    except Exception as err:  # noqa: BLE001 - whatever it was, the run's own outcome matters more
        message = " ".join(str(err).split()) or type(err).__name__
        console.print(f"warning: {what} failed: {message}", markup=False, highlight=False)
        return fallback


def conclude(db: Database, run_id: str, cfg: RunConfig, outcome: Outcome, registry, judge: Judge,
             console: Console) -> dict:
    """Record how the run ended, first; then, best effort, its standings, counts, quality and lineage."""
    def status() -> bool:
        records.end_run(db, run_id, outcome.status, {"players": outcome.players})
        return True

    recorded = _attempt(console, "recording the run's status", status, False)
    if outcome.started is not None:
        _attempt(console, "noting the time spent",
                 lambda: records.note_elapsed(db, run_id, time.time() - outcome.started))
    population = registry and _attempt(console, "reading the final standings", lambda: final_population(registry, db))
    quality = population and _attempt(console, "the final evaluation", lambda: evaluate_final(
        db, run_id, judge, population, cfg.arena.ensemble, cfg.seed, cfg.arena.selection, cfg.arena.champion,
        cfg.arena.screen, cfg.arena.screen_regions, cfg.arena.refine))
    chosen = (quality or {}).get("champion") or {}
    summary = _attempt(console, "counting the records", lambda: records.run_summary(
        db, run_id, among=population, key=cfg.arena.selection, chosen=chosen.get("individual")))
    if summary is not None and summary["best"]:
        summary["best"]["by"] = chosen.get("by", cfg.arena.selection)
    lineage = _attempt(console, "the lineage summary", lambda: records.lineage_summary(db, run_id))
    if recorded and summary is not None:
        _attempt(console, "recording the summary", lambda: records.end_run(db, run_id, outcome.status, {
            "individuals": summary["individuals"], "matches": summary["matches"],
            "best": summary["best"]["_id"] if summary["best"] else None,
            "players": outcome.players, "lineage": lineage, "quality": quality or {}, "population": population}))
    return {"summary": summary, "quality": quality or {}, "lineage": lineage}


def launch(cfg: RunConfig, console: Console, resume: dict | None = None) -> int:
    """Run the experiment described by `cfg`; with `resume` (the flags given), continue the recorded
    run `cfg.run_id` instead. Returns the process exit code."""
    run_id = cfg.run_id or new_run_id(cfg.dataset)
    run_dir = join(cfg.out, run_id)
    preflight(cfg)
    with ExitStack() as stack:
        mongo_uri, db = open_records(cfg, run_id, run_dir, resume is not None, stack)
        cfg, elapsed = recorded_config(db, cfg, run_id, resume)
        console.print(f"Run {run_id}: {cfg.players} players on {cfg.dataset} for {cfg.budget_seconds:g} s; "
                      f"records in {records.where_recorded(mongo_uri, cfg.mongo_db)}")
        judge = Judge(load_dataset(cfg.dataset))  # for images this trains the FID classifier once, before players
        # The game as played on this data: a new run records it, so a resume plays it whatever a later default
        # says (a run recorded before kept what was left to the data, resolved here alike).
        cfg = cfg.for_data(judge.data.shape)
        address, cpus = join_cluster(cfg, run_id, console, stack)
        check_reach(run_dir, embedded=not cfg.mongo_uri)  # several nodes: refused unless every node reaches both
        record_start(db, cfg, run_id, cpus, address, resumed=resume is not None)
        if resume is not None:
            console.print(f"Resuming {run_id}: {elapsed:.0f} of {cfg.budget_seconds:g} s spent")
        outcome, registry = Outcome(), None
        try:
            registry, players, _barrier = start_actors(cfg, run_id, mongo_uri, run_dir, cpus)
            evolve(cfg, db, run_id, registry, players, elapsed, console, outcome)
        finally:  # on any end, even an error on its way to the user: the status first, the rest best effort
            ended = conclude(db, run_id, cfg, outcome, registry, judge, console)
            turns.remove(run_id)  # this node's; another node's are a few empty files in its temporary folder
        _report(console, run_id, outcome, ended["summary"], run_dir, mongo_uri, cfg)
        report_quality(console, ended["quality"])
        if ended["lineage"]:
            report_lineage(console, ended["lineage"])
        if outcome.error:
            console.print(f"[red]error[/red]: a player failed: {outcome.error}")
        return {"finished": 0, "interrupted": 130, "failed": 1}[outcome.status]


def _results(refs) -> list:
    out = []
    for ref in refs:
        try:
            out.append(ray.get(ref))
        except ray.exceptions.RayError:
            pass
    return out


def _report(console: Console, run_id: str, outcome: Outcome, summary: dict | None, run_dir: str, mongo_uri: str,
            cfg: RunConfig) -> None:
    counts = f": {summary['individuals']} individuals, {summary['matches']} matches" if summary else ""
    console.print(f"\nRun {run_id} {outcome.status}{counts}.")
    for s in sorted(outcome.players, key=lambda s: s["player"]):
        loop = f"{s['mean_loop_seconds']:.2f} s/loop" if s["mean_loop_seconds"] else "no loop finished"
        console.print(f"  {s['player']}: {s['generations']} generations, {s['steps']} steps, {loop}")
    best = summary and summary["best"]
    if best:
        key = cfg.arena.selection
        standing = "no standing" if best.get(key) is None else f"{key} {best[key]:.3f}"  # e.g. a lone player
        console.print(f"Champion of the final population by {best['by']}: {best['_id']} ({standing}, "
                      f"generation {best['generation']}): {summarize_genome(best['genome'])}")
        console.print(f"  weights: {best['checkpoint']}")
    where = records.where_recorded(mongo_uri, cfg.mongo_db) if cfg.mongo_uri else \
        f"{join(run_dir, 'db')} (embedded; reopen with: secantusd-py --storage-path {join(run_dir, 'db')})"
    console.print(f"Records: {where}\nCheckpoints: {join(run_dir, 'checkpoints')}\n"
                  f"Traces: {join(run_dir, 'traces')}")


@app.command(epilog=section_keys())
@with_config_flags
def main(
    given: dict,
    config: ConfigFile = None,
    set_: Sets = None,
    resume: Optional[str] = typer.Option(None, help="Continue this recorded run: same players, lineage and "
                                                     "counters; its budget counts on."),
    quiet: bool = typer.Option(False, "--quiet", help="No live table and no colour: a plain progress line every "
                                                      "10 s, for batch jobs and logs."),
) -> None:
    """Evolve GAN pairs: every player trains, publishes, fights and breeds at its own pace. Flags override
    --set, which overrides the --config file."""
    # --quiet: a console that is no terminal, so the live view writes log lines (experiments/live.py).
    console = Console(force_terminal=False, no_color=True, highlight=False, soft_wrap=True) if quiet else Console()
    try:
        if resume is not None:
            if config is not None or "run_id" in given:
                raise ValueError("--resume continues a recorded run: give neither --config nor --run-id")
            given = {**apply_sets({}, set_), **given}
            check_resume_flags(given)
            code = launch(load_config(None, {**given, "run_id": resume}), console, resume=given)
        else:
            code = launch(load_config(config, given, set_), console)
    except (ValueError, ConnectionError, RuntimeError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)
    raise typer.Exit(code)


if __name__ == "__main__":
    cli.main(app)
