"""`python -m experiments.chaos`: a run with faults injected for real, then an audit of its record.

It starts its own MongoDB-protocol server (so it can stop it), runs `python -m experiments.run`
against it, and during the budget kills player processes and the registry's process with SIGKILL and
takes the database away for a while. Afterwards it counts what each individual says it recorded
(its matches, its trace rows; its generation number, since numbering has no gaps) against what is
found in MongoDB and the Parquet traces, and checks that everything seen before a fault is still there.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Optional

import numpy as np
import pyarrow.compute as pc
import pymongo
import typer
from rich.console import Console
from rich.table import Table

from experiments import cli
from experiments.config import load_config
from experiments.options import ConfigFile, Sets
from storage.embedded import EmbeddedMongo
from storage.traces import read_traces

app = cli.new_app()
FAULTS = ("player_kill", "registry_kill", "outage")


def fault_plan(player_kills: int, registry_kills: int, outages: int, budget: float,
               rng: np.random.Generator) -> list[tuple[float, str]]:
    """When each fault strikes, in seconds from the start: spread evenly over the middle of the budget
    (the first records exist, and the run has time to recover before it ends), in a shuffled order."""
    kinds = ["player_kill"] * player_kills + ["registry_kill"] * registry_kills + ["outage"] * outages
    rng.shuffle(kinds)
    if not kinds:
        return []
    times = np.linspace(0.15 * budget, 0.8 * budget, len(kinds))
    return list(zip(times.tolist(), kinds))


def audit(db, run_id: str, trace_dir: str) -> dict:
    """Expected versus found. Expected comes from the individuals' own claims, written after the facts
    they claim: generation numbers run 0..n-1 per player, each individual names how many matches it
    recorded and how many trace rows it wrote. Found is what the store and the Parquet files hold."""
    individuals = list(db.individuals.find({"run_id": run_id},
                                           projection={"player": 1, "generation": 1, "matches": 1, "trace_rows": 1}))
    last = Counter()
    for doc in individuals:
        last[doc["player"]] = max(last[doc["player"]], doc["generation"] + 1)
    claimed = [d for d in individuals if "matches" in d]
    claimed_ids = [d["_id"] for d in claimed]
    traces = read_traces(trace_dir)
    traces = traces.filter(pc.equal(traces["run_id"], run_id))
    rows = Counter(traces.column("individual").to_pylist())
    return {
        "individuals": {"expected": sum(last.values()), "found": len(individuals)},
        "matches": {"expected": sum(d["matches"] for d in claimed),
                    "found": db.matches.count_documents({"run_id": run_id, "by": {"$in": claimed_ids}})},
        "trace_rows": {"expected": sum(d["trace_rows"] for d in claimed),
                       "found": sum(rows[_id] for _id in claimed_ids)},
        # Killed between recording itself and recording its fight: it claims nothing.
        "unclaimed_individuals": len(individuals) - len(claimed),
        "orphan_matches": db.matches.count_documents({"run_id": run_id, "by": {"$nin": [
            d["_id"] for d in individuals]}}),
        "orphan_trace_rows": sum(n for _id, n in rows.items() if _id not in {d["_id"] for d in individuals}),
    }


def _snapshot(db, run_id: str) -> dict[str, set]:
    return {"individuals": {d["_id"] for d in db.individuals.find({"run_id": run_id}, projection={"_id": 1})},
            "matches": {d["_id"] for d in db.matches.find({"run_id": run_id}, projection={"_id": 1})}}


# Run in a child process: a cluster that `ray.init` started (Ray 2.5x) wants its token from every other
# driver, and Ray reads RAY_AUTH_MODE once per process, before this module could set it.
_LIST_ACTORS = """
import json, sys
import ray
from ray.util.state import list_actors
ray.init(address=sys.argv[1], namespace=sys.argv[2], log_to_driver=False, logging_level="ERROR")
print(json.dumps({a.name: a.pid for a in list_actors(filters=[("state", "=", "ALIVE")]) if a.name}))
"""


def actor_pids(address: str, run_id: str) -> dict[str, int]:
    """Names and pids of the run's live actors, from Ray's state API."""
    listed = subprocess.run([sys.executable, "-c", _LIST_ACTORS, address, run_id], capture_output=True, text=True,
                            env={**os.environ, "RAY_AUTH_MODE": "token", "RAY_ADDRESS": address}, timeout=120)
    if listed.returncode:
        raise RuntimeError(f"cannot list the actors of {address}: {listed.stderr.strip().splitlines()[-1]}")
    return json.loads(listed.stdout.strip().splitlines()[-1])


def _kill(address: str, run_id: str, target: str | None, rng: np.random.Generator) -> str:
    pids = actor_pids(address, run_id)
    if target is None:
        players = sorted(name for name in pids if name.startswith("player-"))
        if not players:
            raise RuntimeError("no live player to kill")
        target = players[rng.integers(len(players))]
    os.kill(pids[target], signal.SIGKILL)
    return target


def _check(players: int, player_kills: int, registry_kills: int, outages: int, outage_seconds: float,
           budget_seconds: float) -> None:
    if players < 1:
        raise ValueError(f"--players must be at least 1; got {players!r}")
    for name, value in (("player-kills", player_kills), ("registry-kills", registry_kills), ("outages", outages)):
        if value < 0:
            raise ValueError(f"--{name} must be non-negative; got {value!r}")
    for name, value in (("outage-seconds", outage_seconds), ("budget-seconds", budget_seconds)):
        if not value > 0:
            raise ValueError(f"--{name} must be positive; got {value!r}")


@app.command()
def main(
    players: int = typer.Option(6, help="Players of the run."),
    budget_seconds: float = typer.Option(300.0, help="Budget of the run."),
    player_kills: int = typer.Option(6, help="Player processes killed with SIGKILL."),
    registry_kills: int = typer.Option(2, help="Registry processes killed with SIGKILL."),
    outages: int = typer.Option(2, help="Times the database server is stopped and started again."),
    outage_seconds: float = typer.Option(15.0, help="How long each outage lasts."),
    dataset: str = typer.Option("ring8", help="Data set of the run."),
    num_cpus: int = typer.Option(2, help="CPUs of the run's local Ray cluster."),
    seed: int = typer.Option(0, help="Seed of the run and of the fault plan."),
    run_id: Optional[str] = typer.Option(None, help="Name of the run [default: chaos-<seed>]."),
    out: Path = typer.Option(Path("runs"), help="Folder of the run."),
    config: ConfigFile = None,
    sets: Sets = None,
) -> None:
    """Run the arena while injecting faults, then audit that nothing recorded was lost."""
    try:
        _check(players, player_kills, registry_kills, outages, outage_seconds, budget_seconds)
        load_config(config, {"players": players, "dataset": dataset}, sets)  # a bad key fails here, not in the run
    except ValueError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)
    run_id = run_id or f"chaos-{seed}"
    run_dir = out.resolve() / run_id
    if run_dir.exists():
        typer.echo(f"error: {str(run_dir)!r} exists already; choose another --run-id or --out", err=True)
        raise typer.Exit(2)
    console, rng = Console(), np.random.default_rng(seed)
    plan = fault_plan(player_kills, registry_kills, outages, budget_seconds, rng)
    server = EmbeddedMongo(run_dir / "chaos-db", log_path=run_dir / "chaos-db.log")
    run_dir.mkdir(parents=True)
    uri = server.start()
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "ARENA_MONGO_URI")}
    command = [sys.executable, "-m", "experiments.run", "--players", str(players), "--dataset", dataset,
               "--budget-seconds", str(budget_seconds), "--seed", str(seed), "--run-id", run_id,
               "--out", str(out.resolve()), "--mongo-uri", uri, "--num-cpus", str(num_cpus), "--quiet",
               "--dashboard",  # over the file's: the kills find the players' processes through it
               *(["--config", str(config.resolve())] if config else []),
               *[part for item in sets or [] for part in ("--set", item)]]  # the run parses and checks them
    log = open(run_dir / "run.log", "w")
    run = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    db = pymongo.MongoClient(uri, tz_aware=True)["arena"]
    injected, seen, lost_before = Counter(), {"individuals": set(), "matches": set()}, []
    try:
        # The clock starts once every player has recorded its first individual: faults strike a run
        # that is under way, not its start-up.
        while db.individuals.count_documents({"run_id": run_id}) < players and run.poll() is None:
            time.sleep(0.5)
        if run.poll() is not None:  # it never got going: a bad flag, or a cluster it could not start
            lines = (run_dir / "run.log").read_text().strip().splitlines()
            raise RuntimeError(f"the run ended before every player recorded: {lines[-1] if lines else 'no output'}")
        started, address = time.time(), db.runs.find_one({"_id": run_id})["ray"]["address"]
        for at, kind in plan:
            time.sleep(max(0.0, started + at - time.time()))
            if run.poll() is not None:
                break
            snapshot = _snapshot(db, run_id)
            for key in seen:
                seen[key] |= snapshot[key]
            if kind == "outage":
                server.stop()
                time.sleep(outage_seconds)
                server.start()
                what = f"database away for {outage_seconds:g} s"
            else:
                what = "killed " + _kill(address, run_id, "registry" if kind == "registry_kill" else None, rng)
            injected[kind] += 1
            console.print(f"[{time.time() - started:5.0f}s] {what}")
        code = run.wait(timeout=budget_seconds + 900)
        final = _snapshot(db, run_id)
        for key in seen:
            lost_before += sorted(seen[key] - final[key])
        status = db.runs.find_one({"_id": run_id})["status"]
        counts = audit(db, run_id, str(run_dir / "traces"))
    except RuntimeError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)
    finally:
        if run.poll() is None:
            run.send_signal(signal.SIGINT)
            run.wait(timeout=120)
        log.close()
        server.stop()
    result = {"run_id": run_id, "exit_code": code, "status": status, "players": players,
              "budget_seconds": budget_seconds, "injected": {k: injected[k] for k in FAULTS},
              "lost_since_a_fault": lost_before, **counts}
    (run_dir / "chaos.json").write_text(json.dumps(result, indent=1) + "\n")
    table = Table(title=f"{run_id}: exit {code}, status {status}, injected " +
                  ", ".join(f"{injected[k]} {k.replace('_', ' ')}s" for k in FAULTS))
    for column in ("record", "expected", "found"):
        table.add_column(column, justify="left" if column == "record" else "right")
    for key in ("individuals", "matches", "trace_rows"):
        table.add_row(key, str(counts[key]["expected"]), str(counts[key]["found"]))
    console.print(table)
    console.print(f"Seen before a fault and missing at the end: {len(lost_before)}; individuals that claim "
                  f"nothing (killed mid-loop): {counts['unclaimed_individuals']}; orphan matches: "
                  f"{counts['orphan_matches']}; orphan trace rows: {counts['orphan_trace_rows']}. "
                  f"Log: {run_dir / 'run.log'}; result: {run_dir / 'chaos.json'}")
    whole = all(counts[k]["expected"] == counts[k]["found"] for k in ("individuals", "matches", "trace_rows"))
    raise typer.Exit(0 if whole and not lost_before and code == 0 and status == "finished" else 1)


if __name__ == "__main__":
    cli.main(app)
