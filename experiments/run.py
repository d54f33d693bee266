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
from pathlib import Path
from typing import Optional

import ray
import typer

from experiments import cli
from experiments.cluster import check_reach, dashboard_note
from rich.console import Console
from rich.table import Table

from agents.barrier import Barrier
from agents.player import Player
from agents.registry import Registry
from arena.datasets import load_dataset
from arena.metrics import Judge
from experiments.config import RunConfig, check_resume_flags, load_config, resumed_config
from experiments.evaluate import evaluate_final
from experiments.summaries import summarize_genome
from experiments.live import LiveView, registry_status
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
        sizing = {"address": "local", "num_cpus": cfg.num_cpus, "dashboard_port": free_port(DASHBOARD_PORT)}
    context = ray.init(**sizing, namespace=run_id, log_to_driver=False, logging_level="WARNING")
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


def launch(cfg: RunConfig, console: Console, resume: dict | None = None) -> int:
    """Run the experiment described by `cfg`; with `resume` (the flags given), continue the recorded
    run `cfg.run_id` instead. Returns the process exit code."""
    run_id = cfg.run_id or new_run_id(cfg.dataset)
    run_dir = join(cfg.out, run_id)
    _check_address(cfg.address)  # before anything is started or written
    with ExitStack() as stack:
        if cfg.mongo_uri:
            mongo_uri = cfg.mongo_uri
        else:
            if is_uri(cfg.out):
                raise ValueError(f"the embedded database needs a local --out, not {cfg.out!r}; give --mongo-uri")
            embedded = EmbeddedMongo(Path(run_dir) / "db", log_path=Path(run_dir) / "secantusd.log")
            if resume is not None and not (Path(run_dir) / "db").is_dir():
                raise ValueError(f"run {run_id!r} does not exist under {cfg.out!r}; nothing to resume")
            Path(run_dir).mkdir(parents=True, exist_ok=True)
            mongo_uri = embedded.start()
            stack.callback(embedded.stop)
        db = records.connect(mongo_uri, cfg.mongo_db)
        recorded = db.runs.find_one({"_id": run_id})
        elapsed = 0.0
        if resume is not None:
            if recorded is None:
                raise ValueError(f"run {run_id!r} does not exist in database {cfg.mongo_db!r}; nothing to resume")
            cfg = resumed_config(recorded["config"], cfg, resume)
            elapsed = recorded.get("elapsed_seconds") or 0.0
            if elapsed >= cfg.budget_seconds:
                raise ValueError(f"run {run_id!r} has spent its budget ({elapsed:.0f} of {cfg.budget_seconds:g} s); "
                                 f"give a larger --budget-seconds to go on")
        elif recorded is not None:
            raise ValueError(f"run {run_id!r} already exists in database {cfg.mongo_db!r}; choose another --run-id "
                             f"or --resume it")
        console.print(f"Run {run_id}: {cfg.players} players on {cfg.dataset} for {cfg.budget_seconds:g} s; "
                      f"records in {records.redact(mongo_uri)}{cfg.mongo_db}")

        data = load_dataset(cfg.dataset)
        judge = Judge(data)  # for images this trains the FID classifier once, before the players need it
        ray_address = _connect_ray(cfg, run_id, console)
        stack.callback(ray.shutdown)
        # A scheduler's SIGTERM stops the run as Ctrl-C does: marked interrupted, nothing recorded lost.
        # Set after ray.init, whose own handler would otherwise end the process on the spot.
        signal.signal(signal.SIGTERM, _interrupt)
        cpus = _cpus_per_player(cfg)
        _check_gpus(cfg)
        check_reach(run_dir, embedded=not cfg.mongo_uri)  # several nodes: refused unless every node reaches both
        if resume is None:
            # The recorded configuration keeps no password: a resumed run takes its URI from its command line.
            records.start_run(db, run_id, {**cfg.to_dict(), "run_id": run_id, "cpus_per_player": cpus,
                                           "mongo_uri": cfg.mongo_uri and records.redact(cfg.mongo_uri)})
        else:
            records.resume_run(db, run_id)
            console.print(f"Resuming {run_id}: {elapsed:.0f} of {cfg.budget_seconds:g} s spent")
        records.note_cluster(db, run_id, ray_address, run_id)  # where its actors can be found while it goes

        # Both kinds of actor come back if their process dies (max_restarts), and calls to them are retried
        # (max_task_retries): a restarted player resumes from its last recorded individual, a restarted
        # registry rebuilds its standings from the record.
        revive = dict(max_restarts=-1, max_task_retries=-1)
        registry = ray.remote(Registry).options(name="registry", num_cpus=0, **revive).remote(
            run_id, cfg.arena.fitness_window, mongo_uri, cfg.mongo_db)
        ray.get(registry.players.remote())  # alive and named before any player looks it up
        if cfg.arena.schedule == "barrier":
            barrier = ray.remote(Barrier).options(name="barrier", num_cpus=0, **revive).remote(
                [f"player-{i}" for i in range(cfg.players)])
            ray.get(barrier.waiting.remote())  # alive and named before any player looks it up
        players = [
            ray.remote(Player).options(name=f"player-{i}", num_cpus=cpus, num_gpus=cfg.gpus_per_player,
                                       runtime_env=ZERO_COPY, **revive).remote(
                i, cfg, run_id, mongo_uri, join(run_dir, "checkpoints"), join(run_dir, "traces"),
                max(1, int(cpus)))
            for i in range(cfg.players)]
        status, summaries, error, runs, started = "failed", [], None, [], None
        try:
            try:
                ray.get([p.ready.remote() for p in players], timeout=READY_SECONDS)
            except ray.exceptions.GetTimeoutError:
                raise RuntimeError(f"players were not placed within {READY_SECONDS} s: "
                                   f"does the cluster have {cfg.players} × {cpus:g} free CPUs?") from None
            started = time.time() - elapsed  # a resumed run's budget counts on
            runs = [p.run.remote(started + cfg.budget_seconds) for p in players]
            with LiveView(console, registry_status(registry), cfg, started) as view:
                pending, noted = runs, time.time()
                while pending:
                    _, pending = ray.wait(pending, num_returns=len(pending), timeout=1.0)
                    view.refresh()
                    if time.time() - noted >= ELAPSED_EVERY:
                        noted = time.time()
                        records.note_elapsed(db, run_id, noted - started)
            summaries = ray.get(runs)
            status = "finished"
        except KeyboardInterrupt:
            status = "interrupted"
            console.print("Interrupted: players finish their current loop and stop; records so far are kept.")
            registry.stop.remote()
            try:
                if runs:
                    done, _ = ray.wait(runs, num_returns=len(runs), timeout=60)
                    summaries = _results(done)
            except KeyboardInterrupt:
                pass  # a second Ctrl-C: stop waiting, still record what there is
        except (ray.exceptions.RayError, ray.exceptions.GetTimeoutError) as err:
            error = str(err).strip().splitlines()[-1]
        finally:
            if started is not None:
                records.note_elapsed(db, run_id, time.time() - started)
            records.set_fitness(db, ray.get(registry.fitness.remote()))
            population = [c["id"] for c in ray.get(registry.candidates.remote())]
            summary = records.run_summary(db, run_id, among=population)
            quality = evaluate_final(db, run_id, judge, population, cfg.arena.ensemble, cfg.seed)
            lineage = records.lineage_summary(db, run_id)
            records.end_run(db, run_id, status, {
                "individuals": summary["individuals"], "matches": summary["matches"],
                "best": summary["best"]["_id"] if summary["best"] else None,
                "players": summaries, "lineage": lineage, "quality": quality, "population": population})
        _report(console, run_id, status, summary, summaries, run_dir, mongo_uri, cfg)
        _report_quality(console, quality)
        _report_lineage(console, lineage)
        if error:
            console.print(f"[red]error[/red]: a player failed: {error}")
        return {"finished": 0, "interrupted": 130, "failed": 1}[status]


def _results(refs) -> list:
    out = []
    for ref in refs:
        try:
            out.append(ray.get(ref))
        except ray.exceptions.RayError:
            pass
    return out


def _quality_line(metrics: dict) -> str:
    if "fid" in metrics:
        return f"FID {metrics['fid']:.2f}, TVD {metrics['tvd']:.3f}"
    return f"{metrics['modes']} modes, {metrics['high_quality']:.1%} high quality, KL {metrics['kl']:.3f}"


def _report_quality(console: Console, quality: dict) -> None:
    if "best" in quality:
        console.print(f"Quality, best of the final population ({quality['best']['individual']}): "
                      f"{_quality_line(quality['best'])}")
    if "ensemble" in quality:
        weights = ", ".join(f"{w:.2f}" for w in quality["ensemble"]["weights"])
        console.print(f"Quality, ensemble of the {len(quality['ensemble']['members'])} fittest (weights {weights}): "
                      f"{_quality_line(quality['ensemble'])}")


def _report_lineage(console: Console, lineage: dict) -> None:
    if not lineage["children"]:
        return
    console.print(f"Children: {lineage['children']}, built on the first try: {lineage['built_first_try']}, "
                  f"mean share of parameters inherited: {lineage['mean_inherited_share']:.1%}")
    effects = lineage["effects"]
    if not effects:
        return
    table = Table(title="Mutations: fitness change of children from their parents")
    for column in ("operator", "children", "helped", "hurt", "mean", "gain", "loss"):
        table.add_column(column, justify="left" if column == "operator" else "right", no_wrap=True)
    for name, e in sorted(effects.items(), key=lambda kv: -kv[1]["count"]):
        table.add_row(name, str(e["count"]), str(e["helped"]), str(e["hurt"]), f"{e['mean_change']:+.3f}",
                      f"{e['mean_gain']:+.3f}", f"{e['mean_loss']:+.3f}")
    console.print(table)


def _report(console: Console, run_id: str, status: str, summary: dict, summaries: list[dict], run_dir: str,
            mongo_uri: str, cfg: RunConfig) -> None:
    console.print(f"\nRun {run_id} {status}: {summary['individuals']} individuals, {summary['matches']} matches.")
    for s in sorted(summaries, key=lambda s: s["player"]):
        loop = f"{s['mean_loop_seconds']:.2f} s/loop" if s["mean_loop_seconds"] else "no loop finished"
        console.print(f"  {s['player']}: {s['generations']} generations, {s['steps']} steps, {loop}")
    best = summary["best"]
    if best:
        console.print(f"Best individual of the final population: {best['_id']} (fitness {best['fitness']:.3f}, "
                      f"generation {best['generation']}): {summarize_genome(best['genome'])}")
        console.print(f"  weights: {best['checkpoint']}")
    where = f"{records.redact(mongo_uri)}{cfg.mongo_db}" if cfg.mongo_uri else \
        f"{join(run_dir, 'db')} (embedded; reopen with: secantusd-py --storage-path {join(run_dir, 'db')})"
    console.print(f"Records: {where}\nCheckpoints: {join(run_dir, 'checkpoints')}\n"
                  f"Traces: {join(run_dir, 'traces')}")


@app.command()
def main(
    players: Optional[int] = typer.Option(None, help="Number of players [default: 4]."),
    dataset: Optional[str] = typer.Option(None, help="Data set: ring8, grid25, mnist or digits [default: ring8]."),
    budget_seconds: Optional[float] = typer.Option(None, help="Wall-clock seconds of evolution [default: 60]."),
    seed: Optional[int] = typer.Option(None, help="Run seed [default: 0]."),
    run_id: Optional[str] = typer.Option(None, help="Name of the run [default: generated]."),
    out: Optional[str] = typer.Option(None, help="Folder for checkpoints, traces and the embedded db [default: runs]."),
    mongo_uri: Optional[str] = typer.Option(None, envvar="ARENA_MONGO_URI",
                                            help="MongoDB server; none starts an embedded one."),
    mongo_db: Optional[str] = typer.Option(None, help="Database name [default: arena]."),
    address: Optional[str] = typer.Option(None, help="Ray cluster address; 'local' always starts a new one."),
    cpus_per_player: Optional[float] = typer.Option(None, help="Ray CPUs per player [default: shared evenly]."),
    num_cpus: Optional[int] = typer.Option(None, help="Start a new local Ray cluster with this many CPUs."),
    gpus_per_player: Optional[float] = typer.Option(None, help="Ray GPUs per player; fractions share a GPU "
                                                                "[default: 0, CPU only]."),
    config: Optional[Path] = typer.Option(None, help="TOML configuration file; flags override it."),
    resume: Optional[str] = typer.Option(None, help="Continue this recorded run: same players, lineage and "
                                                     "counters; its budget counts on."),
    quiet: bool = typer.Option(False, "--quiet", help="No live table and no colour: a plain progress line every "
                                                      "10 s, for batch jobs and logs."),
) -> None:
    """Evolve GAN pairs: every player trains, publishes, fights and breeds at its own pace."""
    flags = {"players": players, "dataset": dataset, "budget_seconds": budget_seconds, "seed": seed,
             "run_id": run_id, "out": out, "mongo_uri": mongo_uri, "mongo_db": mongo_db, "address": address,
             "cpus_per_player": cpus_per_player, "num_cpus": num_cpus, "gpus_per_player": gpus_per_player}
    # --quiet: a console that is no terminal, so the live view writes log lines (experiments/live.py).
    console = Console(force_terminal=False, no_color=True, highlight=False, soft_wrap=True) if quiet else Console()
    given = {k: v for k, v in flags.items() if v is not None}
    try:
        if resume is not None:
            if config is not None or run_id is not None:
                raise ValueError("--resume continues a recorded run: give neither --config nor --run-id")
            check_resume_flags(given)
            code = launch(load_config(None, {**given, "run_id": resume}), console, resume=given)
        else:
            code = launch(load_config(config, given), console)
    except (ValueError, ConnectionError, RuntimeError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)
    raise typer.Exit(code)


if __name__ == "__main__":
    cli.main(app)
