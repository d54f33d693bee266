"""`python -m experiments.bench quality`: final quality of the arena against plain GANs at equal CPU time."""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.console import Console

from arena.datasets import load_dataset
from arena.metrics import Judge
from arena.refine import check, refinable
from experiments.bench import baselines, results
from experiments.bench.common import (Workspace, measured, run_arena, run_config, settings, spent_elsewhere,
                                      trained_steps, training)
from experiments.bench.rejudge import rejudge
from experiments.bench.scores import MODES, brief, metric_columns, screened_rows, target_met, training_note
from experiments.evaluate import loadable
from experiments.options import Sets
from experiments.summaries import screen_words, screened

DATASETS = {"ring8": 600.0, "grid25": 600.0, "mnist": 1800.0}  # the budgets issue 7 states targets for
METHODS = ("arena", "single", "independent", "barrier")
# The arena's rows: its products, then the judge's own pick, which is a diagnostic (scored on fresh samples).
# Under `arena.champion = "real"` the champion is checked against real data, and the first by standing
# alone (`by_standing`) is scored beside it, so the same runs compare both ways of choosing.
ARENA_ROWS = (("champion", "champion by its standing"), ("champion_unscreened", "the same champion unscreened"),
              ("by_standing", "champion by standing alone"), ("ensemble", "mixture of the first by standing"),
              ("ensemble_unscreened", "the same mixture unscreened"), ("best", "judge's pick (diagnostic)"))


def _label(kind: str, label: str, entry: dict) -> str:
    label = "champion by standing, then nearest real data" if kind == "champion" and "mmd" in entry else label
    return label + screened(entry)


def _trajectory(runs: list[dict[str, list]]) -> str:
    """Mean over seeds of each slice's population quality, as `modes 12.0 → 20.5 → …; KL …`."""
    out = []
    for key, spec in (("modes", ".1f"), ("kl", ".2f"), ("fid", ".1f")):
        series = [r[key] for r in runs if r.get(key)]
        if series:
            means = [np.mean([v for v in column if v is not None]) if any(v is not None for v in column) else None
                     for column in zip(*series)]
            out.append(f"{key} " + " → ".join("-" if v is None else f"{v:{spec}}" for v in means))
    return "; ".join(out) or "-"


def benchmark(dataset: str, seeds: int, seconds: float, players: int, cpus: int, methods: list[str], base: dict,
              ws: Workspace, say=print, screens: tuple[float, ...] = (),
              regions: tuple[int, ...] = (), refines: tuple[int, ...] = (),
              first_seed: int = 0) -> tuple[list[dict], str]:
    """Every method over seeds first_seed…first_seed+seeds−1; the table's rows and the notes (per-seed figures).
    With `screens`, each arena run's products are also judged screened at those shares (the same runs, evaluated
    again), with each number of `regions` and of refinement steps `refines` (by default the configuration's)."""
    budget = cpus * seconds  # CPU-seconds every method gets
    run_seeds = range(first_seed, first_seed + seeds)
    data = load_dataset(dataset)
    per_seed: dict[str, list[tuple[int, dict]]] = defaultdict(list)  # row label -> (seed, metrics) of each run
    cpu: dict[str, list[float]] = defaultdict(list)
    extra: dict[str, list[float]] = defaultdict(list)
    steps: dict[str, list[float]] = defaultdict(list)  # arena rows -> each run's training steps, all players'
    over: dict[str, list[dict]] = defaultdict(list)  # arena rows -> each seed's population quality over time
    labels = {"arena": "arena", "barrier": "barrier arena"}
    elsewhere: list[str] = []  # each arena run's CPU outside its players, by process
    trained: list[str] = []  # each arena run's training steps and CPU per step
    for method in ("arena", "barrier"):
        if method not in methods:
            continue
        for seed in run_seeds:
            cfg = run_config(base, dataset=dataset, players=players, seconds=seconds, seed=seed, cpus=cpus,
                             schedule="async" if method == "arena" else "barrier")
            run = run_arena(ws, cfg, f"q-{method}-{dataset}-s{seed}")
            quality = run["summary"]["quality"]
            run_steps = trained_steps(run["individuals"])  # once a run, for each of its rows

            def add_run(name: str, metrics: dict) -> None:
                per_seed[name].append((seed, metrics))
                cpu[name].append(run["cpu_players"] if run["cpu_players"] is not None else float("nan"))
                extra[name].append(len(run["individuals"]))
                steps[name].append(run_steps)
                over[name].append(run["over_time"])

            for kind, label in ARENA_ROWS:
                if kind in quality:
                    add_run(f"{labels[method]}, {_label(kind, label, quality[kind])}", quality[kind])
            if screens:
                for name, metrics in screened_rows(ws.db, run["run_id"], Judge(data), screens, seed,
                                            regions or (cfg.arena.screen_regions,),
                                            refines or (refinable(data, cfg.arena.refine),)):
                    add_run(f"{labels[method]}, {name}", metrics)
            what = training(run["individuals"])
            say(f"{labels[method]}, seed {seed}: " + "; ".join(f"{_label(kind, label, quality[kind])} {brief(dataset, quality[kind])}"
                                                              for kind, label in ARENA_ROWS if kind in quality)
                + f" ({len(run['individuals'])} individuals, {what}, players used {run['cpu_players'] or 0:.0f} CPU-s)")
            elsewhere.append(f"{labels[method]} seed {seed}: {spent_elsewhere(run['cpu_by_process'])}")
            trained.append(f"{labels[method]} seed {seed}: {what}")
    cfg = run_config(base, dataset=dataset, players=players, seconds=seconds, seed=0, cpus=cpus)
    screen, regions, refine = cfg.arena.screen, cfg.arena.screen_regions, refinable(data, cfg.arena.refine)
    jobs: list[baselines.Job] = []
    if "single" in methods:
        jobs += [replace(baselines.single_job(seed, dataset, budget, screen, regions, refine),
                         save=str(ws.path / "single" / f"single-{seed}.pt")) for seed in run_seeds]
    if "independent" in methods:
        for seed in run_seeds:
            jobs += [replace(job, save=str(ws.path / "independent" / f"{job.label}.pt"))
                     for job in baselines.independent_jobs(seed, players, dataset, budget / players, cfg.mutation,
                                                           cfg.arena)]
    if jobs:
        say(f"training {len(jobs)} plain GANs, {cpus} at a time in single-thread processes "
            f"(about {sum(j.cpu_seconds for j in jobs) / cpus:.0f} s)")
    done = baselines.run_jobs(jobs, cpus)
    single_name, best_name, mean_name = "one GAN", f"{players} independent GANs, judge's pick (diagnostic)", \
        f"{players} independent GANs, mean"
    kept = screen_words(screen, regions, refine)
    screened = f", screened by its own discriminator ({kept})"

    def add(name: str, value: dict, group: list[dict], seed: int) -> None:
        per_seed[name].append((seed, value))
        cpu[name].append(sum(r["cpu_seconds"] for r in group))
        extra[name].append(sum(r["steps"] for r in group))

    for seed in run_seeds:
        mine = [r for r in done if r["label"] == f"single-{seed}"]
        if mine:
            add(single_name, mine[0], mine, seed)
            if "screened" in mine[0]:
                add(single_name + screened, mine[0]["screened"], mine, seed)
            say(f"one GAN, seed {seed}: {brief(dataset, mine[0])} ({mine[0]['steps']} steps)")
        group = [r for r in done if r["label"].startswith(f"independent-{seed}-")]
        if group:
            best, mean = baselines.best_and_mean(group, [r["fresh"] for r in group])
            add(best_name, best, group, seed)
            add(mean_name, mean, group, seed)
            if "screened" in group[0]:
                for name, value in zip((best_name, mean_name), baselines.best_and_mean(
                        [r["screened"] for r in group], [r["screened_fresh"] for r in group])):
                    add(name + screened, value, group, seed)
            saved = loadable({job.save: (job.save, None) for job in jobs
                              if job.label.startswith(f"independent-{seed}-")})
            mixture, screened_mixture = baselines.pooled(list(saved.values()), data, Judge(data), seed, screen, regions,
                                                         refine)
            add(f"{players} independent GANs, mixture (weights fitted on real data)", mixture, group, seed)
            if screened_mixture is not None:
                add(f"{players} independent GANs, mixture screened by their discriminators ({kept})",
                    screened_mixture, group, seed)
            say(f"{players} independent GANs, seed {seed}: judge's pick {brief(dataset, best)}; "
                f"mean {brief(dataset, mean)}; mixture {brief(dataset, mixture)}")
    single_fid = float(np.mean([r["fid"] for _, r in per_seed[single_name]])) \
        if dataset not in MODES and per_seed.get(single_name) else None
    rows, notes = [], []
    for name, seeded in per_seed.items():
        runs = [metrics for _, metrics in seeded]
        counted = "individuals" if "arena" in name else "steps"
        rows.append({"method": name, "dataset": dataset, "seeds": len(runs), "seconds": seconds, "players": players,
                     "cpus": cpus, "cpu_budget_s": budget, "cpu_s": round(float(np.nanmean(cpu[name])), 1),
                     **metric_columns(dataset, runs), counted: round(float(np.mean(extra[name])), 1),
                     **({"steps": round(float(np.mean(steps[name])), 1)} if name in steps else {}),
                     "target met": target_met(dataset, runs, single_fid),
                     "population over time": _trajectory(over[name]) if name in over else "-"})
        notes.append(f"{name}: " + "; ".join(f"seed {s}: {brief(dataset, r)}" for s, r in seeded))
    budget_note = "" if seconds == DATASETS[dataset] else \
        f"Budget {seconds:g} s, not the {DATASETS[dataset]:g} s the targets are stated for. "
    cpu_note = (f" | CPU of the other processes (the driver's included) in the players' window — "
                f"{'; '.join(elsewhere)}") if elsewhere else ""
    return rows, budget_note + "Per seed — " + " | ".join(notes) + training_note(trained) + cpu_note


def _count(text: str, option: str = "--regions") -> int:
    if not text.strip().isdigit():
        raise ValueError(f"{option} takes non-negative integers; got {text.strip()!r}")
    return int(text)


def _share(text: str) -> float:
    try:
        share = float(text)
    except ValueError:
        share = float("nan")
    if not 0 < share <= 1:
        raise ValueError(f"--screens takes shares in (0, 1]; got {text.strip()!r}")
    return share


def command(
    dataset: str = typer.Option("ring8", help="ring8, grid25 or mnist."),
    seeds: int = typer.Option(3, help="Seeds F…F+N−1 for every method (F: --first-seed)."),
    first_seed: int = typer.Option(0, help="The first seed: another draw of runs beside a row's seeds 0…N−1."),
    seconds: Optional[float] = typer.Option(None, help="Wall-seconds of the arena; every method gets "
                                                       "cpus × seconds CPU-seconds [default: 600, mnist 1800]."),
    players: int = typer.Option(4, help="Players of the arena, and number of independent GANs."),
    cpus: Optional[int] = typer.Option(None, help="CPUs of the arena's Ray cluster and baseline processes at a time "
                                                  "[default: min(players, cores)]."),
    methods: str = typer.Option(",".join(METHODS), help="Comma-separated subset of: " + ", ".join(METHODS) + "."),
    config: Optional[Path] = typer.Option(None, help="TOML of arena settings ([arena], [mutation]) for every run."),
    set_: Sets = None,
    screens: str = typer.Option("", help="Comma-separated shares (in (0, 1]; 1: unscreened) at which each arena "
                                         "run's products are also judged screened, to choose arena.screen."),
    regions: str = typer.Option("", help="Comma-separated numbers of a screen's regions for --screens (0: the "
                                         "best over all) [default: arena.screen_regions]."),
    refines: str = typer.Option("", help="Comma-separated numbers of refinement steps (0: none; 2-D data only) at "
                                         "which each arena run's products are also judged, at each of --screens "
                                         "[default: arena.refine; alone, at arena.screen]."),
    ensembles: str = typer.Option("", help="With --rejudge: comma-separated numbers of generators (at least 2) in "
                                           "each arena run's mixture and its champion's choice (arena.ensemble), "
                                           "its products chosen again from its final population with each."),
    streams: int = typer.Option(1, help="With --rejudge: judge each product on this many streams of samples and "
                                        "average (one stream's FID of a screened product on mnist moves by more "
                                        "than 1)."),
    rejudge_: bool = typer.Option(False, "--rejudge", help="Train nothing: judge the arena runs, one GAN and "
                                  "independent GANs that --work kept (of --dataset) again, at --screens, --regions and "
                                  "--refines, or choose the runs' products again at --ensembles; the "
                                  "options that shape runs are not read."),
    work: Optional[Path] = typer.Option(None, help="Folder for the runs' checkpoints, logs and database "
                                                   "[default: a temporary one, removed at the end]."),
    keep: bool = typer.Option(False, help="Keep the temporary folder."),
) -> None:
    """Final quality of the arena, one GAN, P independent GANs and a barrier arena at equal CPU time."""
    console = Console()
    try:
        if dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {', '.join(DATASETS)}; got {dataset!r}")
        chosen = [m.strip() for m in methods.split(",") if m.strip()]
        unknown = sorted(set(chosen) - set(METHODS))
        if unknown or not chosen:
            raise ValueError(f"unknown method {unknown[0] if unknown else methods!r}; choose from {', '.join(METHODS)}")
        shares = tuple(_share(v) for v in screens.split(",") if v.strip())
        counts = tuple(_count(v) for v in regions.split(",") if v.strip())
        steps = tuple(_count(v, "--refines") for v in refines.split(",") if v.strip())
        sizes = tuple(_count(v, "--ensembles") for v in ensembles.split(",") if v.strip())
        for size in sizes:
            if size < 2:
                raise ValueError(f"--ensembles takes numbers of at least 2; got {size}")
        if streams < 1:
            raise ValueError(f"--streams takes a positive number; got {streams}")
        if first_seed < 0:
            raise ValueError(f"--first-seed must be 0 or more; got {first_seed}")
        if first_seed and rejudge_:
            raise ValueError(f"--first-seed {first_seed} draws new runs; --rejudge judges the kept ones of every seed")
        if streams != 1 and not rejudge_:
            raise ValueError(f"--streams {streams} judges a kept run's products again: it needs --rejudge")
        if sizes and not rejudge_:
            raise ValueError(f"--ensembles {ensembles} chooses a kept run's products again: it needs --rejudge")
        if rejudge_ and (work is None or not (work / "db").is_dir() or not (shares or steps or sizes)):
            raise ValueError("--rejudge judges again what a kept --work folder holds (its database and runs), at "
                             f"--screens, --refines or --ensembles; got --work {str(work)!r} and --screens "
                             f"{screens!r}")
        seconds = DATASETS[dataset] if seconds is None else seconds
        cpus = cpus if cpus is not None else min(players, os.cpu_count() or 1)
        if seeds < 1 or players < 1 or cpus < 1 or not seconds > 0:
            raise ValueError("seeds, players, cpus and seconds must be positive")
        base = settings(config, set_)
        arena = run_config(base, dataset=dataset, players=players, seconds=seconds, seed=0, cpus=cpus).arena
        data = load_dataset(dataset)
        for refine in steps:  # asked for: refused on images; the configuration's is dropped there, as a run drops it
            check(data, refine)
        counts = counts or (arena.screen_regions,)
        shares = shares or ((arena.screen,) if steps else ())  # --refines alone: at the configuration's screen
        steps = steps or (refinable(data, arena.refine),)
    except ValueError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)
    if rejudge_:
        try:
            rows, path = measured("quality", work, True, console,
                                  lambda ws: rejudge(ws.db, work, dataset, shares, counts, steps,
                                                     say=console.print, ensembles=sizes, streams=streams))
        except (ValueError, RuntimeError) as err:  # RuntimeError: its database held by a process still running
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2)
    else:
        first = f" from seed {first_seed}" if first_seed else ""
        console.print(f"quality on {dataset}: {', '.join(chosen)}; {seeds} seeds{first}, {players} players on {cpus} "
                      f"CPUs, {seconds:g} s = {cpus * seconds:g} CPU-s per method")
        rows, path = measured("quality", work, keep, console, lambda ws: benchmark(
            dataset, seeds, seconds, players, cpus, chosen, base, ws, say=console.print, screens=shares,
            regions=counts, refines=steps, first_seed=first_seed))
    for row in rows:
        console.print(f"{row['method']}: " + ", ".join(f"{k} {row[k]}" for k in ("modes", "high_quality", "kl",
                                                                                  "fid", "tvd") if k in row)
                      + f"; target met: {row['target met']}")
    console.print(f"recorded in {path} and {results.REPORT}")
