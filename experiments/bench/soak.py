"""`python -m experiments.bench soak`: whether one long arena run keeps its pace and its memory, the
first minutes against the last (issue 14 point 2, "flat over time")."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import typer
from rich.console import Console

from experiments.bench import results
from experiments.bench.common import Workspace, measured, run_arena, run_config, settings, train_ms
from experiments.bench.probe import MachineProbe
from experiments.options import Sets

MINUTE = 60.0
# Minute 0 is skipped: no loop ends in it until each player's first training round is done, and the
# first genomes' rounds differ by design (`arena.steps_spread`), so its count is start-up, not pace.
SKIP = 1
SPAN = 2  # whole minutes compared at each end: one minute holds a few loops per player, two smooth them
FLAT = 0.10  # the largest change that counts as flat: loops per minute either way, memory upwards
WITHIN, GROWTH = f"within {FLAT:.0%}", f"growth ≤ {FLAT:.0%}"


def window(docs: list[dict]) -> tuple[float, float] | None:
    """The steady part of a run, epoch seconds: from the first loop's start to the first start of a
    player's last loop (the deadline cuts every player's last loop short, and a short loop is not pace);
    None without timelines."""
    loops: dict[str, list[tuple[float, float]]] = {}
    for doc in docs:
        if doc.get("timeline"):
            spans = doc["timeline"].values()
            loops.setdefault(doc["player"], []).append((min(s for s, _ in spans), max(e for _, e in spans)))
    if not loops:
        return None
    return min(s for spans in loops.values() for s, _ in spans), min(max(spans)[0] for spans in loops.values())


def per_minute(docs: list[dict], start: float, end: float) -> list[list[dict]]:
    """The loops (recorded individuals) that ended in each whole minute from `start` before `end`."""
    minutes: list[list[dict]] = [[] for _ in range(max(0, int((end - start) // MINUTE)))]
    for doc in docs:
        if doc.get("timeline"):
            k = int((max(e for _, e in doc["timeline"].values()) - start) // MINUTE)
            if 0 <= k < len(minutes):
                minutes[k].append(doc)
    return minutes


RSS, PRIVATE = 3, 4  # where a memory sample holds its resident and its private bytes (`CpuMeter.memory`)


def resident(memory: list[tuple], actor: str, start: float, end: float, field: int = RSS) -> float | None:
    """Mean resident (or, `field` PRIVATE, private) MB (2^20 bytes) of `actor`'s processes in the samples (epoch
    seconds, actor, pid, resident bytes, private bytes) taken in [start, end): each process is sampled at every
    reading, so the mean over its processes. A zero resident size (a zombie's) is no sample."""
    found = [sample[field] for sample in memory if sample[1] == actor and start <= sample[0] < end and sample[RSS]]
    return float(np.mean(found)) / 2**20 if found else None


def ends(start: float, minutes: int) -> list[tuple[float, float]] | None:
    """The first and the last SPAN whole minutes compared, epoch seconds; None when they would overlap."""
    if minutes < SKIP + 2 * SPAN:
        return None
    return [(start + SKIP * MINUTE, start + (SKIP + SPAN) * MINUTE),
            (start + (minutes - SPAN) * MINUTE, start + minutes * MINUTE)]


# The memory rows: resident, and private (resident less shared pages, which are a process's libraries, which the
# kernel may drop and read again, and the object-store objects it maps: the benchmark's prose says why both).
MEMORY_ROWS = (("resident memory (RSS) per player, MB, mean over players", "Player", RSS),
               ("resident memory (RSS) of the registry, MB", "Registry", RSS),
               ("private memory (RSS less shared pages) per player, MB, mean over players", "Player", PRIVATE),
               ("private memory (RSS less shared pages) of the registry, MB", "Registry", PRIVATE))


def probed(probes: list[tuple[float, float, float]], start: float, end: float) -> float | None:
    """The machine probe's mean CPU ms per step over its probes in [start, end) (`MachineProbe.samples`)."""
    found = [cpu_ms for at, _, cpu_ms in probes if start <= at < end]
    return float(np.mean(found)) if found else None


def at_first_cost(loops: float | None, docs: list[dict], first_ms: float | None, last_ms: float | None) -> float | None:
    """The `loops` a minute that counted `docs` had they cost `first_ms` of CPU a training step, not `last_ms`:
    each loop's train phase scaled by that ratio (at the share of a core it had), its other phases as they were;
    a window of fixed length holds as many more loops as they are shorter on the mean (all players' loops pooled).
    What the pace would be had the genomes kept their first cost: a fall left there is the loop's own, not the
    game's choice of dearer networks (`arena.copy_cost` says why cost is not selected against). A machine that ran
    slower raises the CPU per step too: read it beside the machine probe's rows."""
    if loops is None or not first_ms or not last_ms:
        return None
    spans = [d["timeline"] for d in docs if d.get("timeline")]
    wall = sum(max(e for _, e in t.values()) - min(s for s, _ in t.values()) for t in spans)
    train = sum(t["train"][1] - t["train"][0] for t in spans if "train" in t)
    # Each train span lies inside its loop's, so the shortened wall stays above zero; no loops, no pace.
    return loops * wall / (wall - train * (1 - first_ms / last_ms)) if wall > 0 else None


def rows_of(docs: list[dict], memory: list[tuple], common: dict,
            cpu: Callable[[bool, float, float], float | None] | None = None,
            probes: list[tuple[float, float, float]] = ()) -> tuple[list[dict], dict[str, list]]:
    """The table (loops per minute, as counted, at the first minutes' cost per step and at the machine probe's
    speed; ms and CPU ms per step; the probe's CPU ms per step; resident and private memory: first minutes, last,
    change, target) and the series behind it:
    the loops, the players' mean MB and the registry's MB, resident and private, with `cpu` (`CpuMeter.used`) the
    CPU seconds of the players and of the other processes, and the probe's CPU ms per step, in every whole minute
    (where first and last alone cannot tell a leak from a warm-up that levels off, nor steps that grew dearer from
    players that got less of the machine, or from a machine that ran slower)."""
    steady = window(docs)
    minutes = per_minute(docs, *steady) if steady else []
    compared = ends(steady[0], len(minutes)) if steady else None
    both = (minutes[SKIP:SKIP + SPAN], minutes[-SPAN:]) if compared else ([], [])
    loops = [sum(map(len, m)) / SPAN if m else None for m in both]
    speed = [probed(probes, *span) for span in compared] if compared else [None, None]
    # A loop of the last minutes counted at the first minutes' machine speed: as many more as the probe got slower.
    steady_loops = loops[1] * speed[1] / speed[0] if loops[1] is not None and all(speed) else None
    ended = [[d for minute in m for d in minute] for m in both]  # the loops of the first minutes, of the last
    cpu_ms = [train_ms(docs_, "step_cpu_ms") for docs_ in ended]
    rows = [_row("loops per minute, population", *loops, WITHIN, ".1f"),
            _row("train phase ms per step", *map(train_ms, ended), None, ".2f"),
            _row("train phase CPU ms per step", *cpu_ms, None, ".2f"),
            _row("loops per minute at the first minutes' train phase CPU ms per step", loops[0],
                 at_first_cost(loops[1], ended[1], *cpu_ms), None, ".1f")]
    for label, actor, field in MEMORY_ROWS:
        spans = compared or [(0.0, 0.0)] * 2  # empty: nothing to compare
        rows.append(_row(label, *[resident(memory, actor, *span, field) for span in spans], GROWTH, ".0f"))
    rows += [_row("machine probe, CPU ms per step of a fixed GAN", *speed, None, ".2f"),
             _row("loops per minute at the machine probe's first speed", loops[0], steady_loops, WITHIN, ".1f")]
    span = f"{SKIP}–{SKIP + SPAN - 1} vs {len(minutes) - SPAN}–{len(minutes) - 1}" if compared else "-"
    start = steady[0] if steady else 0.0
    series = {"loops": [len(m) for m in minutes]}
    for key, actor, field in (("player_mb", "Player", RSS), ("registry_mb", "Registry", RSS),
                              ("player_private_mb", "Player", PRIVATE), ("registry_private_mb", "Registry", PRIVATE)):
        series[key] = [resident(memory, actor, start + k * MINUTE, start + (k + 1) * MINUTE, field)
                       for k in range(len(minutes))]
    for key, players in (("player_cpu_s", True), ("other_cpu_s", False)):
        series[key] = [cpu(players, start + k * MINUTE, start + (k + 1) * MINUTE) if cpu else None
                       for k in range(len(minutes))]
    series["probe_cpu_ms"] = [probed(probes, start + k * MINUTE, start + (k + 1) * MINUTE) for k in range(len(minutes))]
    # Each player's own cost per step, five minutes at a time: players whose steps grow dearer all at once, each
    # with a genome of its own, point at the machine; one alone, at its genome.
    for player in sorted({d["player"] for d in docs}):
        series[f"{player}_cpu_ms"] = [train_ms([d for minute in minutes[k:k + 5] for d in minute
                                                if d["player"] == player], "step_cpu_ms")
                                      for k in range(0, len(minutes), 5)]
    return [{**row, "minutes": span, **common} for row in rows], series


def _row(measure: str, first: float | None, last: float | None, target: str | None, spec: str) -> dict:
    """One measure, first minutes against last; judged against `target` (WITHIN: either way; GROWTH: up)."""
    moved = last / first - 1 if first and last is not None else None
    shown = "-" if moved is None else f"{moved * 100:+.1f} %"
    met = "-" if target is None or moved is None else \
        "yes" if (abs(moved) if target == WITHIN else moved) <= FLAT else f"no ({shown})"
    return {"measure": measure, "first": "-" if first is None else f"{first:{spec}}",
            "last": "-" if last is None else f"{last:{spec}}", "change": shown, "target": target or "-",
            "target met": met}


def benchmark(base: dict, dataset: str, seconds: float, players: int, cpus: int, seed: int, ws: Workspace,
              say=print) -> tuple[list[dict], str]:
    cfg = run_config(base, dataset=dataset, players=players, seconds=seconds, seed=seed, cpus=cpus)
    with MachineProbe() as probe:
        run = run_arena(ws, cfg, f"soak-{dataset}-s{seed}")
    docs = list(ws.db.individuals.find({"run_id": run["run_id"]},
                                       projection={"player": 1, "timeline": 1, "trained_steps": 1, "step_ms": 1,
                                                   "step_cpu_ms": 1}))
    rows, series = rows_of(docs, run["memory"], {"dataset": dataset, "players": players, "cpus": cpus,
                                                 "seconds": seconds, "seed": seed}, run["cpu"], probe.samples)
    sampled = {actor: len({sample[2] for sample in run["memory"] if sample[1] == actor})
               for actor in ("Player", "Registry")}
    mb = {key: ", ".join("-" if v is None else f"{v:.{2 if key.endswith('cpu_ms') else 0}f}" for v in values) or "-"
          for key, values in series.items()}
    players_ms = "; ".join(f"{key.removesuffix('_cpu_ms')}'s, {mb[key]}" for key in series
                           if key.startswith("player-")) or "-"
    notes = (f"run {run['run_id']}: {len(docs)} individuals; {len(series['loops'])} whole minutes from the first "
             f"loop's start to the first start of a player's last loop; loops in each: "
             f"{', '.join(map(str, series['loops'])) or '-'}; players' mean resident MB in each: {mb['player_mb']}; "
             f"their mean private MB in each: {mb['player_private_mb']}; "
             f"the registry's resident MB in each: {mb['registry_mb']}; its private MB in each: "
             f"{mb['registry_private_mb']}; the players' CPU seconds in each: {mb['player_cpu_s']}; the other "
             f"processes' (Ray's, the database's, the registry's, the probe's): {mb['other_cpu_s']}; the machine "
             f"probe's CPU ms per step in each: {mb['probe_cpu_ms']}; each player's train phase CPU ms per step in "
             f"each five minutes: {players_ms}; "
             f"processes sampled: {sampled['Player']} players', {sampled['Registry']} registry's.")
    say(notes)
    return rows, notes


def command(
    dataset: str = typer.Option("grid25", help="ring8, grid25, mnist or digits."),
    seconds: float = typer.Option(600.0, help="Wall-seconds of the arena run (3600 for the hour's soak)."),
    players: int = typer.Option(4, help="Players of the arena."),
    cpus: Optional[int] = typer.Option(None, help="CPUs of the local Ray cluster [default: min(players, cores)]."),
    seed: int = typer.Option(0, help="The run's seed."),
    config: Optional[Path] = typer.Option(None, help="TOML of arena settings ([arena], [mutation]) for the run."),
    set_: Sets = None,
    work: Optional[Path] = typer.Option(None, help="Folder for the run [default: a temporary one, removed]."),
    keep: bool = typer.Option(False, help="Keep the temporary folder."),
) -> None:
    """Loops per minute, ms per step and the players' and registry's memory, first minutes against last."""
    console = Console()
    try:
        cpus = cpus if cpus is not None else min(players, os.cpu_count() or 1)
        if players < 1 or cpus < 1 or not seconds > 0:
            raise ValueError("players, cpus and seconds must be positive")
        base = settings(config, set_)
        run_config(base, dataset=dataset, players=players, seconds=seconds, seed=seed, cpus=cpus)
    except ValueError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)
    console.print(f"soak on {dataset}: {players} players on {cpus} CPUs, {seconds:g} s, seed {seed}")
    rows, path = measured("soak", work, keep, console, lambda ws: benchmark(
        base, dataset, seconds, players, cpus, seed, ws, console.print))
    for row in rows:
        console.print(f"{row['measure']}: minutes {row['minutes']}, {row['first']} → {row['last']} "
                      f"({row['change']}); target met: {row['target met']}")
    console.print(f"recorded in {path} and {results.REPORT}")
