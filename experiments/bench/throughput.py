"""`python -m experiments.bench throughput`: how much of the arena's time is training, read from the
players' timelines, against a bare torch loop and against a synchronous (barrier) arena."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.console import Console

from arena.datasets import load_dataset
from experiments.bench import baselines, results
from experiments.bench.common import (Workspace, mean_std, measured, run_arena, run_config, settings,
                                      spent_elsewhere, trained_steps)
from experiments.options import Sets
from genome import Genome

COMPUTE = ("train", "distance", "save", "fight", "round", "breed", "measure")
WAITING = ("publish", "settle", "wait")  # settle: report, heartbeat and next move, one call
OVERHEAD, COMPUTE_SHARE, SPEEDUP = 0.10, 0.95, 1.5

def genome_key(genome: dict) -> str:
    """The architecture and genes, without the layers' origins (which record inheritance, not cost)."""
    plain = {**genome, **{net: [{**layer, "origin": None} for layer in genome[net]]
                          for net in ("generator", "discriminator")}}
    return json.dumps(plain, sort_keys=True)


def _span(timeline: dict, phase: str) -> float:
    start, end = timeline.get(phase, (0.0, 0.0))
    return end - start


def bare_costs(runs: list[dict], dataset: str, limit: int, processes: int, say=print, replay_share: float = 0.0,
               seconds: float = 10.0, cores: int = 0, turn_ms: float = 0.0) -> dict[str, dict]:
    """Bare wall and CPU seconds per step of the distinct genomes of `runs` (one seed's, which start from the same
    genomes: every first-generation one, then the most trained, `limit` in all at least), the discriminator judging
    `replay_share` of a batch more when the runs replayed fakes (the same arithmetic), by stage: `alone`, one
    single-thread process on an otherwise idle machine; `per_core`, with 1 < `cores` < `processes`, one process on
    each core at once; `together`, `processes` of them at once (as many as the runs' players, sharing the cores as
    they did, time-sliced by the OS); `in_turns`, where they take turns (`baselines.takes_turns`), `processes` at
    once taking turns of `turn_ms` on `cores` cores, as the players did: `baselines.time_bare_loops`, at least
    `seconds` each; and by stage, `preempted`, the bare threads' preemptions a CPU-second, and `stolen`, the share
    of the machine's busy time its host took. Timed right after the runs, not once after every seed's: this
    machine's speed drifts by a fifth from hour to hour (BENCHMARKS.md, row 2026-12-04T17:19:31)."""
    steps, first = defaultdict(int), set()
    genomes = {}
    for doc in (doc for run in runs for doc in run["individuals"]):
        key = genome_key(doc["genome"])
        genomes[key] = doc["genome"]
        steps[key] += doc.get("trained_steps") or 0
        if doc["generation"] == 0:
            first.add(key)
    chosen = list(first) + [k for k in sorted(steps, key=steps.get, reverse=True) if k not in first]
    chosen = chosen[:max(limit, len(first))]
    if not chosen:  # nothing recorded: `analyse` says so
        return {"alone": {}, "together": {}, "preempted": {}, "stolen": {}}
    per_core = f", {cores} at once (one a core)" if 1 < cores < processes else ""
    in_turns = f", then in turns of {turn_ms:g} ms" if baselines.takes_turns(turn_ms, cores, processes) else ""
    say(f"timing {len(chosen)} of {len(genomes)} distinct genomes in a bare torch loop, alone{per_core} and "
        f"{processes} at once{in_turns}, one thread each")
    timed, measured = baselines.time_bare_loops([Genome.from_dict(genomes[k]) for k in chosen], dataset, processes,
                                                replay_share, seconds / len(chosen), cores, turn_ms)
    return {**{stage: dict(zip(chosen, costs)) for stage, costs in timed.items()}, **measured}


def analyse(run: dict, bare: dict[str, tuple[float, float]], players: int, cpus: int, shared: bool = False) -> dict:
    """(i), (ii) and (iii)'s figures of one run. Rates are per core: a player's seconds times its share of one.
    `bare` walls are of a process alone on a core, or with `shared`, of `players` processes at once on the
    machine's cores (each then gets its share, as a player did)."""
    docs = [d for d in run["individuals"] if d.get("timeline")]
    if not docs:
        raise RuntimeError(f"run {run['run_id']} recorded no timeline; see {run['log']}")
    share = min(1.0, cpus / players)  # of a core, per player, when all are busy
    known = [(d["trained_steps"] or 0, bare[k]) for d in docs if (k := genome_key(d["genome"])) in bare]
    counted = max(1, sum(n for n, _ in known))
    mean_cost = (sum(n * w for n, (w, _) in known) / counted, sum(n * c for n, (_, c) in known) / counted)
    steps = trained_steps(docs)
    cost = [(d["trained_steps"] or 0, bare.get(genome_key(d["genome"]), mean_cost)) for d in docs]
    bare_seconds = sum(n * w for n, (w, _) in cost) * (share if shared else 1.0)
    bare_cpu = sum(n * c for n, (_, c) in cost)
    # The training thread's own CPU in the train phase (`step_cpu_ms`): what the step costs in the player's
    # process, apart from the share of a core the machine gave it and from the loop's other phases.
    # One torch thread a player only (`cpus // players` of them otherwise): a thread's clock misses the others'.
    threaded = [(d["trained_steps"], d["step_cpu_ms"] / 1000, c) for d, (_, (_, c)) in zip(docs, cost)
                if d.get("trained_steps") and d.get("step_cpu_ms") is not None] if cpus < 2 * players else []
    threaded_steps = sum(n for n, _, _ in threaded)
    train_cpu, threaded_bare = sum(n * s for n, s, _ in threaded), sum(n * c for n, _, c in threaded)
    # The OS's preemptions of that thread in training, a CPU-second of it, where counted.
    switches = [(d["train_preempted"], d["trained_steps"] * d["step_cpu_ms"] / 1000) for d in docs
                if d.get("train_preempted") is not None and d.get("step_cpu_ms") and d.get("trained_steps")] \
        if threaded else []
    preempted_cpu = sum(c for _, c in switches)
    by_player = defaultdict(list)
    for d in docs:
        by_player[d["player"]].append(d["timeline"])
    phases = defaultdict(float)  # seconds of every phase clocked, of all players
    for d in docs:
        for phase, (start, end) in d["timeline"].items():
            phases[phase] += end - start
    train = phases.get("train", 0.0)
    walls, compute = {}, {}
    for player, timelines in by_player.items():
        spans = [span for t in timelines for span in t.values()]
        walls[player] = max(e for _, e in spans) - min(s for s, _ in spans)
        compute[player] = sum(_span(t, p) for t in timelines for p in COMPUTE)
    loop = sum(walls.values())
    shares = {p: compute[p] / walls[p] for p in walls if walls[p] > 0}
    window = max(e for d in docs for _, e in d["timeline"].values()) - \
        min(s for d in docs for s, _ in d["timeline"].values())
    first = sorted((d for d in docs if d["generation"] == 0), key=lambda d: d["player"])
    costs = [d["genome"]["steps"] * bare[genome_key(d["genome"])][0] for d in first
             if genome_key(d["genome"]) in bare]
    wall_total = sum(walls.values())
    return {
        "steps": steps, "coverage": sum(n for n, _ in known) / max(1, steps),
        "bare_rate": steps / bare_seconds, "train_rate": steps / (train * share), "loop_rate": steps / (loop * share),
        "train_overhead": train * share / bare_seconds - 1, "loop_overhead": loop * share / bare_seconds - 1,
        "bare_cpu_rate": steps / bare_cpu,
        "cpu_rate": steps / run["cpu_players"] if run["cpu_players"] else None,
        "cpu_overhead": run["cpu_players"] / bare_cpu - 1 if run["cpu_players"] else None,
        "train_cpu_rate": threaded_steps / train_cpu if train_cpu else None,
        "threaded_bare_cpu_rate": threaded_steps / threaded_bare if threaded_bare else None,
        "train_cpu_overhead": train_cpu / threaded_bare - 1 if train_cpu and threaded_bare else None,
        "train_cpu_coverage": threaded_steps / max(1, steps),
        "train_preempted_rate": sum(n for n, _ in switches) / preempted_cpu if preempted_cpu else None,
        "compute_share": float(np.mean(list(shares.values()))), "compute_share_min": min(shares.values()),
        "waiting": {p: phases.get(p, 0.0) / wall_total for p in WAITING},
        "phases": {p: v / wall_total for p, v in phases.items()},
        "generations_per_hour": len(docs) / window * 3600, "individuals": len(docs),
        "cost_spread": max(costs) / min(costs) if costs else None,
        "ideal_ratio": float(np.mean([1 / c for c in costs]) * max(costs)) if costs else None,
        "cpu_players": run["cpu_players"], "cpu_other": run["cpu_other"], "window": window,
        "cpu_by_process": run["cpu_by_process"], "stolen": run.get("stolen"),
    }


def against_every_reference(run: dict, bare: dict[str, dict[str, tuple[float, float]]], players: int,
                            cpus: int) -> dict:
    """`analyse` of one run against the bare loop alone, and under `per_core` and `together` against those
    references where `bare` (`bare_costs`) has them."""
    # One process a core had a whole core, so its wall is per core already; `players` at once (time-sliced or in
    # turns) got cpus / players of one each, as the players did.
    return {**analyse(run, bare["alone"], players, cpus),
            **{stage: analyse(run, bare[stage], players, cpus, shared=stage != "per_core")
               for stage in ("per_core", "together", "in_turns") if stage in bare},
            "bare_preempted": bare.get("preempted", {}), "bare_stolen": bare.get("stolen", {})}


def rows_of(found: dict[str, list[dict]], common: dict) -> list[dict]:
    """The table: one row per measure, means over seeds; overheads judged against the bare loop alone."""
    rows = []
    a, b = found.get("async", []), found.get("barrier", [])
    if a:
        for kind, rate, bare, overhead in (
                ("training steps/s per core, whole loop", "loop_rate", "bare_rate", "loop_overhead"),
                ("training steps/s per core, train phase", "train_rate", "bare_rate", "train_overhead"),
                ("training steps per CPU-second of the players", "cpu_rate", "bare_cpu_rate", "cpu_overhead"),
                ("training steps per CPU-second of the train phase's thread", "train_cpu_rate",
                 "threaded_bare_cpu_rate", "train_cpu_overhead")):
            if any(r[overhead] is None for r in a):
                continue
            mean = float(np.mean([r[overhead] for r in a]))
            judged = rate == "loop_rate"
            reference, result = (f"bare torch loop {mean_std([r[bare] for r in a], '.0f')}",
                                 f"overhead {mean_std([r[overhead] for r in a], '.1f', 100, ' %')}")
            others = [(label, [r[stage] for r in a]) for stage, label in _stage_labels(common).items()
                      if stage != "alone" and all(stage in r for r in a)]
            # Alone is judged; the others tell how much of the overhead is the machine's: its cores slow each
            # other down (one a core), more processes than cores add the OS's time slicing (P at once) or the
            # players' turns (in turns), and what is left over the last is the players' own and their company's.
            if others:
                reference += " alone, " + ", ".join(f"{mean_std([r[bare] for r in runs], '.0f')} {label}"
                                                   for label, runs in others)
                result += " (" + "; ".join(f"{mean_std([r[overhead] for r in runs], '.1f', 100, ' %')} against "
                                           f"{label}" for label, runs in others) + ")"
            rows.append({"measure": f"(i) {kind}", "schedule": "async",
                         "value": mean_std([r[rate] for r in a], ".0f"), "reference": reference, "result": result,
                         "target": f"overhead ≤ {OVERHEAD:.0%}" if judged else "-",
                         "target met": ("yes" if mean <= OVERHEAD else f"no (+{(mean - OVERHEAD) * 100:.1f} pts)")
                         if judged else "-", **common})
    if a and all(r.get("train_preempted_rate") is not None for r in a):
        # What turns cannot keep out (other processes' threads waking on the players' cores) shows as the excess
        # over the bare loops in turns.
        rows.append(_against_stages(a, common, "(i) preemptions of the train phase's thread per CPU-second",
                                    "train_preempted_rate", "bare_preempted", ".1f"))
    if a and all(r.get("stolen") is not None for r in a):
        # A virtual machine's host takes its cores at times: an overhead between runs and bare timings that the host
        # robbed unequally is partly the host's.
        rows.append(_against_stages(a, common, "(i) share of the machine's busy CPU its host took (steal)",
                                    "stolen", "bare_stolen", ".1f", 100, " %"))
    if a:
        rows.append(_where_time_goes(a, common))
    for schedule, runs in (("async", a), ("barrier", b)):
        if not runs:
            continue
        mean = float(np.mean([r["compute_share"] for r in runs]))
        judged = schedule == "async"
        waits = ", ".join(f"{p} {mean_std([r['waiting'][p] for r in runs], '.1f', 100, ' %')}" for p in WAITING
                          if any(r["waiting"][p] for r in runs))
        rows.append({"measure": "(ii) compute share of player wall time", "schedule": schedule,
                     "value": mean_std([r["compute_share"] for r in runs], ".1f", 100, " %"),
                     "reference": f"waiting: {waits or 'none'}",
                     "result": f"lowest player {mean_std([r['compute_share_min'] for r in runs], '.1f', 100, ' %')}",
                     "target": f"≥ {COMPUTE_SHARE:.0%}" if judged else "-",
                     "target met": ("yes" if mean >= COMPUTE_SHARE else
                                    f"no (−{(COMPUTE_SHARE - mean) * 100:.1f} pts)") if judged else "-", **common})
    if a and b:
        ratios = [x["generations_per_hour"] / y["generations_per_hour"] for x, y in zip(a, b)]
        mean = float(np.mean(ratios))
        rows.append({"measure": "(iii) generations per hour", "schedule": "async vs barrier",
                     "value": mean_std([r["generations_per_hour"] for r in a], ".0f"),
                     "reference": f"barrier {mean_std([r['generations_per_hour'] for r in b], '.0f')}; "
                                  f"cost spread {mean_std([r['cost_spread'] for r in a], '.2f', unit='×')}, "
                                  f"ideal {mean_std([r['ideal_ratio'] for r in a], '.2f', unit='×')}",
                     "result": f"ratio {mean_std(ratios, '.2f', unit='×')}", "target": f"≥ {SPEEDUP}×",
                     "target met": "yes" if mean >= SPEEDUP else f"no ({mean:.2f}×)", **common})
    return rows


def _stage_labels(common: dict) -> dict[str, str]:
    """How the rows name each stage of the bare loop's timing (`bare_costs`)."""
    return {"alone": "alone", "per_core": f"{common.get('cpus')} at once (one a core)",
            "together": f"{common.get('players')} at once", "in_turns": f"{common.get('players')} at once in turns"}


def _against_stages(runs: list[dict], common: dict, measure: str, key: str, bare_key: str, spec: str,
                    scale: float = 1.0, unit: str = "") -> dict:
    """A row of the runs' `key` against the same measure of the bare loops in each stage timed (`bare_key`, by
    stage): the preemptions of the players' training thread a CPU-second against the bare threads', or the share
    of the machine's CPU its host took while the runs went against while the bare loops were timed."""
    bare = [f"{mean_std([r[bare_key][stage] for r in runs], spec, scale, unit)} {label}"
            for stage, label in _stage_labels(common).items() if all(stage in r.get(bare_key, {}) for r in runs)]
    return {"measure": measure, "schedule": "async", "value": mean_std([r[key] for r in runs], spec, scale, unit),
            "reference": f"bare torch loop {', '.join(bare)}" if bare else "-",
            "result": "-", "target": "-", "target met": "-", **common}


def _where_time_goes(runs: list[dict], common: dict) -> dict:
    """The async players' wall time in training (the value) and in each other phase of their loops (the
    reference, largest first); what no phase clocks is `between`."""
    shares = {p: [r["phases"].get(p, 0.0) for r in runs] for p in {p for r in runs for p in r["phases"]}}
    shares["between"] = [1 - sum(r["phases"].values()) for r in runs]
    rest = sorted((p for p in shares if p != "train"), key=lambda p: (-np.mean(shares[p]), p))
    return {"measure": "(i) share of the players' wall time in training, by phase", "schedule": "async",
            "value": mean_std(shares.get("train", [0.0]), ".1f", 100, " %"),
            "reference": ", ".join(f"{p} {mean_std(shares[p], '.1f', 100, ' %')}" for p in rest),
            "result": "-", "target": "-", "target met": "-", **common}


def benchmark(dataset: str, seeds: int, seconds: float, players: int, cpus: int, schedules: list[str], base: dict,
              genomes: int, ws: Workspace, say=print, bare_seconds: float = 10.0) -> tuple[list[dict], str]:
    found: dict[str, list[dict]] = defaultdict(list)
    first = run_config(base, dataset=dataset, players=players, seconds=seconds, seed=0, cpus=cpus)
    shape = load_dataset(dataset).shape
    replay_share = first.arena.replay_share if first.arena.replay_on(shape) else 0.0  # as the players'
    turn_ms = first.for_data(shape).turn_ms  # the players' turns, timed where they take them (baselines.takes_turns)
    for seed in range(seeds):
        runs = {}
        for schedule in schedules:
            cfg = run_config(base, dataset=dataset, players=players, seconds=seconds, seed=seed, cpus=cpus,
                             schedule=schedule)
            run = runs[schedule] = run_arena(ws, cfg, f"t-{schedule}-{dataset}-s{seed}")
            say(f"{schedule}, seed {seed}: {len(run['individuals'])} individuals, "
                f"{sum(d.get('trained_steps') or 0 for d in run['individuals'])} steps, "
                f"players used {run['cpu_players'] or 0:.0f} CPU-s, the rest {run['cpu_other'] or 0:.0f}")
        bare = bare_costs(list(runs.values()), dataset, genomes, players, say, replay_share, bare_seconds, cpus,
                          turn_ms)
        for schedule, run in runs.items():
            found[schedule].append(against_every_reference(run, bare, players, cpus))
    common = {"dataset": dataset, "players": players, "cpus": cpus, "seconds": seconds, "seeds": seeds}
    notes = []
    for schedule, analysed in found.items():
        for seed, r in enumerate(analysed):
            cpu = "" if r["cpu_players"] is None else (
                f", players' CPU {r['cpu_players']:.0f} s of {cpus * r['window']:.0f} available, other processes "
                f"(the driver's included) {spent_elsewhere(r['cpu_by_process'])}")
            notes.append(f"{schedule} seed {seed}: {r['individuals']} individuals, {r['steps']} steps "
                         f"({r['coverage']:.0%} timed bare, {r['train_cpu_coverage']:.0%} with the training "
                         f"thread's CPU){cpu}")
    return rows_of(found, common), "; ".join(notes) + "."


def command(
    dataset: str = typer.Option("ring8", help="ring8, grid25, mnist or digits."),
    seconds: float = typer.Option(300.0, help="Wall-seconds of each arena run."),
    seeds: int = typer.Option(2, help="Seeds 0…N−1; each runs both schedules."),
    players: Optional[int] = typer.Option(None, help="Players [default: --cpus, one core each]."),
    cpus: Optional[int] = typer.Option(None, help="CPUs of the local Ray cluster [default: the machine's cores]."),
    schedules: str = typer.Option("async,barrier", help="Comma-separated: async, barrier."),
    genomes: int = typer.Option(30, help="Distinct genomes of each seed's runs timed in the bare loop "
                                         "(first-generation ones always)."),
    bare_seconds: float = typer.Option(10.0, help="Seconds each bare timing of a seed's genomes lasts at least "
                                                  "(alone, as many at once as cores, as many at once as players, "
                                                  "those in the players' turns)."),
    config: Optional[Path] = typer.Option(None, help="TOML of arena settings ([arena], [mutation]) for every run."),
    set_: Sets = None,
    work: Optional[Path] = typer.Option(None, help="Folder for the runs [default: a temporary one, removed]."),
    keep: bool = typer.Option(False, help="Keep the temporary folder."),
) -> None:
    """Steps per second per core against a bare loop, compute share, and async against barrier."""
    console = Console()
    try:
        chosen = [s.strip() for s in schedules.split(",") if s.strip()]
        if not chosen or set(chosen) - {"async", "barrier"}:
            raise ValueError(f"schedules must be async, barrier or both; got {schedules!r}")
        cpus = cpus if cpus is not None else os.cpu_count() or 1
        players = players if players is not None else cpus
        if seeds < 1 or players < 1 or cpus < 1 or genomes < 1 or not seconds > 0 or not bare_seconds > 0:
            raise ValueError(f"seeds, players, cpus, genomes, seconds and bare-seconds must be positive; got "
                             f"{seeds}, {players}, {cpus}, {genomes}, {seconds:g} and {bare_seconds:g}")
        base = settings(config, set_)
        run_config(base, dataset=dataset, players=players, seconds=seconds, seed=0, cpus=cpus)
    except ValueError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)
    console.print(f"throughput on {dataset}: {', '.join(chosen)}; {seeds} seeds, {players} players on {cpus} CPUs, "
                  f"{seconds:g} s each")
    rows, path = measured("throughput", work, keep, console, lambda ws: benchmark(
        dataset, seeds, seconds, players, cpus, chosen, base, genomes, ws, console.print, bare_seconds))
    for row in rows:
        console.print(f"{row['measure']} ({row['schedule']}): {row['value']}; {row['reference']}; {row['result']}; "
                      f"target met: {row['target met']}")
    console.print(f"recorded in {path} and {results.REPORT}")
