"""`python -m experiments.bench gpu`: training steps per second when 1, 4 or 8 players share one GPU."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List, Optional

import torch
import typer

from experiments.bench import results
from experiments.config import load_config
from experiments.options import Sets
from storage import records
from storage.embedded import EmbeddedMongo

NO_GPU = ("error: no CUDA GPU on this machine (torch.cuda.is_available() is False); run it where one is")


def run_once(players: int, budget_seconds: float, dataset: str, num_cpus: int, mongo_uri: str, out: str,
             extra: list[str]) -> dict:
    """One run with `players` sharing the GPU; returns its row."""
    run_id = f"bench-gpu-{players}-{secrets.token_hex(3)}"
    share = 1 / players
    command = [sys.executable, "-m", "experiments.run", "--players", str(players), "--gpus-per-player", repr(share),
               "--budget-seconds", repr(budget_seconds), "--dataset", dataset, "--address", "local",
               "--num-cpus", str(num_cpus), "--out", out, "--mongo-uri", mongo_uri, "--mongo-db", "bench_gpu",
               "--run-id", run_id, *extra]
    log = Path(out) / f"{run_id}.log"
    with open(log, "wb") as output:
        try:
            code = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  timeout=budget_seconds + 900, cwd=results.ROOT).returncode
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"run with {players} players did not end within {budget_seconds + 900:g} s") from None
    if code != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        raise RuntimeError(f"run with {players} players exited {code}: {' / '.join(tail)}")
    doc = records.connect(mongo_uri, "bench_gpu").runs.find_one({"_id": run_id})
    summaries = (doc or {}).get("summary", {}).get("players") or []
    if len(summaries) != players:
        raise RuntimeError(f"run {run_id} recorded {len(summaries)} player summaries, expected {players}")
    elapsed = doc.get("elapsed_seconds") or budget_seconds
    steps = [s["steps"] for s in summaries]
    return {"players": players, "gpus_per_player": share, "dataset": dataset, "budget_s": budget_seconds,
            "elapsed_s": elapsed, "steps": sum(steps), "steps_per_s": sum(steps) / elapsed,
            "steps_per_s_per_player": sum(steps) / elapsed / players,
            "slowest_player_steps_per_s": min(steps) / elapsed,
            "generations": sum(s["generations"] for s in summaries)}


def bench(players: list[int], budget_seconds: float, dataset: str, num_cpus: int, extra: list[str]) -> list[dict]:
    if any(n < 1 for n in players) or budget_seconds <= 0:
        raise ValueError("players must be at least 1 and the budget positive")
    rows = []
    with tempfile.TemporaryDirectory(prefix="arena-bench-gpu-") as out:
        database = EmbeddedMongo(Path(out) / "db")
        mongo_uri = database.start()
        try:
            for n in players:
                rows.append(run_once(n, budget_seconds, dataset, num_cpus, mongo_uri, out, extra))
                row = rows[-1]
                typer.echo(f"{n} players on one GPU: {row['steps_per_s']:.1f} steps/s in all, "
                           f"{row['steps_per_s_per_player']:.1f} per player")
        finally:
            database.stop()
    return rows


def command(
    players: List[int] = typer.Option([1, 4, 8], help="Players sharing the GPU, one run each (repeat the flag)."),
    budget_seconds: float = typer.Option(60.0, help="Budget of each run in seconds."),
    dataset: str = typer.Option("mnist", help="Data set of the runs."),
    num_cpus: Optional[int] = typer.Option(None, help="CPUs of each run's Ray cluster [default: all cores]."),
    config: Optional[Path] = typer.Option(None, help="A TOML configuration passed to every run."),
    set_: Sets = None,
    notes: str = typer.Option("", help="A note recorded with the rows."),
) -> None:
    """Steps per second with 1, 4 and 8 players sharing one CUDA GPU; needs one."""
    if not torch.cuda.is_available():
        typer.echo(NO_GPU, err=True)
        raise typer.Exit(2)
    extra = (["--config", str(config)] if config else []) + [arg for item in set_ or [] for arg in ("--set", item)]
    try:
        load_config(config, None, set_)  # refused here in one line, not by every run
        rows = bench(players, budget_seconds, dataset, num_cpus or os.cpu_count() or 1, extra)
    except (ValueError, RuntimeError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)
    path = results.record("gpu", rows, notes)
    typer.echo(f"recorded {path}")
