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
from experiments.bench.common import (Workspace, mean_std, measured, run_arena, run_config, settings,
                                      spent_elsewhere, trained_steps, training)
from experiments.evaluate import evaluate_final, loadable, screen_sweep, screened_quality
from experiments.options import Sets
from experiments.summaries import screen_words, screened

DATASETS = {"ring8": 600.0, "grid25": 600.0, "mnist": 1800.0}  # the budgets issue 7 states targets for
METHODS = ("arena", "single", "independent", "barrier")
MODES = {"ring8": 8, "grid25": 25}
# The arena's rows: its products, then the judge's own pick, which is a diagnostic (scored on fresh samples).
# Under `arena.champion = "real"` the champion is checked against real data, and the first by standing
# alone (`by_standing`) is scored beside it, so the same runs compare both ways of choosing.
ARENA_ROWS = (("champion", "champion by its standing"), ("champion_unscreened", "the same champion unscreened"),
              ("by_standing", "champion by standing alone"), ("ensemble", "mixture of the first by standing"),
              ("ensemble_unscreened", "the same mixture unscreened"), ("best", "judge's pick (diagnostic)"))


SWEEP_LABELS = {"champion": "champion", "ensemble": "mixture"}


def _label(kind: str, label: str, entry: dict) -> str:
    label = "champion by standing, then nearest real data" if kind == "champion" and "mmd" in entry else label
    return label + screened(entry)
HIGH_QUALITY, KL, TVD, FID_RATIO = 0.97, 0.02, 0.05, 0.7


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


def _metric_columns(dataset: str, runs: list[dict]) -> dict:
    def cell(key: str, scale: float = 1.0, spec: str = ".3f", unit: str = "") -> str:
        return mean_std([r[key] for r in runs], spec, scale, unit)

    if dataset in MODES:
        return {"modes": cell("modes", spec=".1f"), "high_quality": cell("high_quality", 100, ".1f", " %"),
                "kl": cell("kl")}
    return {"fid": cell("fid", spec=".2f"), "tvd": cell("tvd")}


def target_met(dataset: str, runs: list[dict], single_fid: float | None) -> str:
    """Per metric `yes`, or `no` and by how much the mean over seeds misses."""
    mean = {k: float(np.mean([r[k] for r in runs])) for k in runs[0] if isinstance(runs[0][k], (int, float))}
    if dataset in MODES:
        modes = MODES[dataset]
        parts = ["modes yes" if mean["modes"] >= modes else f"modes no (−{modes - mean['modes']:.1f})",
                 "HQ yes" if mean["high_quality"] >= HIGH_QUALITY
                 else f"HQ no (−{(HIGH_QUALITY - mean['high_quality']) * 100:.1f} pts)",
                 "KL yes" if mean["kl"] <= KL else f"KL no (+{mean['kl'] - KL:.3f})"]
    else:
        parts = ["TVD yes" if mean["tvd"] <= TVD else f"TVD no (+{mean['tvd'] - TVD:.3f})"]
        if single_fid is None:
            parts.append("FID n/a (no one-GAN row)")
        else:
            ratio = mean["fid"] / single_fid
            parts.append(f"FID yes ({ratio:.2f}× the one GAN's)" if ratio <= FID_RATIO
                         else f"FID no ({ratio:.2f}× the one GAN's, target ≤ {FID_RATIO}×)")
    return ", ".join(parts)


def _short(dataset: str, m: dict) -> str:
    if dataset in MODES:
        return f"{m['modes']:.3g} modes, {m['high_quality']:.1%} HQ, KL {m['kl']:.3f}"
    return f"FID {m['fid']:.2f}, TVD {m['tvd']:.3f}"


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
                for name, metrics in _sweep(ws.db, run["run_id"], Judge(data), screens, seed,
                                            regions or (cfg.arena.screen_regions,),
                                            refines or (refinable(data, cfg.arena.refine),)):
                    add_run(f"{labels[method]}, {name}", metrics)
            what = training(run["individuals"])
            say(f"{labels[method]}, seed {seed}: " + "; ".join(f"{_label(kind, label, quality[kind])} {_short(dataset, quality[kind])}"
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
            say(f"one GAN, seed {seed}: {_short(dataset, mine[0])} ({mine[0]['steps']} steps)")
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
            say(f"{players} independent GANs, seed {seed}: judge's pick {_short(dataset, best)}; "
                f"mean {_short(dataset, mean)}; mixture {_short(dataset, mixture)}")
    single_fid = float(np.mean([r["fid"] for _, r in per_seed[single_name]])) \
        if dataset not in MODES and per_seed.get(single_name) else None
    rows, notes = [], []
    for name, seeded in per_seed.items():
        runs = [metrics for _, metrics in seeded]
        counted = "individuals" if "arena" in name else "steps"
        rows.append({"method": name, "dataset": dataset, "seeds": len(runs), "seconds": seconds, "players": players,
                     "cpus": cpus, "cpu_budget_s": budget, "cpu_s": round(float(np.nanmean(cpu[name])), 1),
                     **_metric_columns(dataset, runs), counted: round(float(np.mean(extra[name])), 1),
                     **({"steps": round(float(np.mean(steps[name])), 1)} if name in steps else {}),
                     "target met": target_met(dataset, runs, single_fid),
                     "population over time": _trajectory(over[name]) if name in over else "-"})
        notes.append(f"{name}: " + "; ".join(f"seed {s}: {_short(dataset, r)}" for s, r in seeded))
    budget_note = "" if seconds == DATASETS[dataset] else \
        f"Budget {seconds:g} s, not the {DATASETS[dataset]:g} s the targets are stated for. "
    cpu_note = (f" | CPU of the other processes (the driver's included) in the players' window — "
                f"{'; '.join(elsewhere)}") if elsewhere else ""
    return rows, budget_note + "Per seed — " + " | ".join(notes) + _training_note(trained) + cpu_note


def _training_note(trained: list[str]) -> str:
    """The notes' part on what each arena run trained (`common.training`), for a row trained now or judged again."""
    return f" | Training of each arena run — {'; '.join(trained)}" if trained else ""


def _screens(shares: tuple[float, ...], regions: tuple[int, ...]) -> list[tuple[int, list[float]]]:
    """The shares to judge at for each number of regions: unscreened (1) once, with the first."""
    return [(count, [s for s in shares if s < 1 or count == regions[0]]) for count in regions]


def _settings(shares: tuple[float, ...], regions: tuple[int, ...],
              refines: tuple[int, ...]) -> list[tuple[float, int, int, str]]:
    """Every (share, regions, refinement steps, their words) a saved baseline is judged again at."""
    return [(share, count, refine, screen_words(share, count, refine))
            for refine in refines for count, chosen in _screens(shares, regions) for share in chosen]


def _sweep(db, run_id: str, judge: Judge, shares: tuple[float, ...], seed: int,
           regions: tuple[int, ...], refines: tuple[int, ...] = (0,)) -> list[tuple[str, dict]]:
    """A finished run's champion and mixture judged again at each share, number of regions and number of
    refinement steps: (label, metrics)."""
    return [(f"{SWEEP_LABELS[kind]}, screen sweep: {screen_words(share, count, refine)}", metrics)
            for refine in refines
            for count, chosen in _screens(shares, regions) if chosen
            for share, products in screen_sweep(db, run_id, judge, chosen, seed, count, refine).items()
            for kind, metrics in products.items()]


def _ensembles(db, run: dict, judge: Judge, sizes: tuple[int, ...], seed: int, say=print) -> list[tuple[str, dict]]:
    """A finished run's champion and mixture chosen again from its final population with each number of
    generators in `sizes` in the mixture and the champion's choice (`arena.ensemble`), everything else as the run
    had it, given out as it would give them: (label, metrics), chosen and judged on `seed`'s draws (the run's own
    seed: as its final evaluation drew them). Nothing is recorded."""
    arena = run["config"]["arena"]
    population = (run.get("summary") or {}).get("population") or []  # none where its final standings went unread
    if not population:
        if sizes:
            say(f"arena run {run['_id']} has no final population recorded; its products cannot be chosen again")
        return []
    out = []
    for size in sizes:
        if size > len(population):  # the mixture would hold fewer than its label says
            raise ValueError(f"--ensembles {size}: run {run['_id']} has {len(population)} in its final population")
        summary = evaluate_final(db, run["_id"], judge, population, size, seed,
                                 arena["selection"], arena["champion"], arena["screen"], arena["screen_regions"],
                                 arena["refine"], record=False)
        out += [(f"{SWEEP_LABELS[kind]}, ensemble {size}", summary[kind]) for kind in SWEEP_LABELS if kind in summary]
    return out


STREAM_STRIDE = 7_919  # between the seeds of a product's streams of samples under --streams (apart from FRESH)
JUDGED = ("modes", "high_quality", "kl", "fid", "tvd")  # the judge's metrics, which --streams averages


def _over_streams(judged: list[list[tuple[str, dict]]]) -> list[tuple[str, dict]]:
    """The same products judged on several streams of samples, one list of (label, metrics) per stream, as
    one list: each of the judge's metrics the mean over the streams, and `streams` the streams' own metrics
    (one stream: as it was judged)."""
    if len(judged) == 1:
        return judged[0]
    out = []
    for column in zip(*judged, strict=True):
        label, first = column[0]
        if any(other != label for other, _ in column):
            raise RuntimeError(f"streams judged different products: {sorted({other for other, _ in column})}")
        metrics = [m for _, m in column]
        out.append((label, {**first, **{k: float(np.mean([m[k] for m in metrics])) for k in JUDGED if k in first},
                            "streams": metrics}))
    return out


def _spread(dataset: str, metrics: dict) -> str:
    """The range over streams of a product's headline metric (FID, or KL), for the notes."""
    key = "kl" if dataset in MODES else "fid"
    values = [m[key] for m in metrics.get("streams", ())]
    spec = ".3f" if key == "kl" else ".2f"
    return f" ({key.upper()} {min(values):{spec}}–{max(values):{spec}} over " \
           f"{len(values)} streams)" if len(values) > 1 else ""


def rejudge(db, work: Path, dataset: str, shares: tuple[float, ...], regions: tuple[int, ...],
            refines: tuple[int, ...] = (0,), say=print, ensembles: tuple[int, ...] = (),
            streams: int = 1) -> tuple[list[dict], str]:
    """The rows (mean ± std over seeds) and per-seed notes of every kept run and saved one GAN and independent GAN
    of `dataset` under `work`, at every share, number of regions and number of refinement steps; and each run's
    products chosen again with each number of generators in `ensembles`. With `streams`, every product is judged
    on that many streams of samples (the first is the one a single judgement uses; products chosen again are
    chosen on each stream's draws too) and its metrics are their means: one stream's FID of a screened product
    on mnist moves by more than the settings' differences."""
    if streams < 1:
        raise ValueError(f"--streams takes a positive number; got {streams}")
    per_seed: dict[str, list[tuple[int, dict]]] = defaultdict(list)  # row label -> (seed, metrics) of each run
    runs = sorted(db.runs.find({"summary.quality": {"$exists": True}},
                               projection={"config": 1, "status": 1, "summary.population": 1}),
                  key=lambda r: (r["config"]["dataset"], r["config"]["seed"], r["_id"]))
    cut = [r for r in runs if r.get("status") == "interrupted"]
    for run in cut:  # its budget was cut short: averaged in, it would pass for a run of the stated budget
        say(f"arena run {run['_id']} was interrupted; left out")
    runs = [r for r in runs if r not in cut]
    other = next((r["config"]["dataset"] for r in runs if r["config"]["dataset"] != dataset), None)
    if other:
        raise ValueError(f"{work} holds runs of {other}, not only of --dataset {dataset}")
    saved = sorted((work / "independent").glob("independent-*-*.pt"))
    singles = sorted((work / "single").glob("single-*.pt"))
    if not runs and not saved and not singles:
        raise ValueError(f"{work} holds no finished arena run and no saved one GAN or independent GAN")
    data = load_dataset(dataset)
    judge = Judge(data)

    def judged(seed: int, judge_stream) -> list[tuple[str, dict]]:
        """`judge_stream(drawn)` on each stream's seed, averaged over the streams."""
        return _over_streams([judge_stream(seed + k * STREAM_STRIDE) for k in range(streams)])

    trained: list[str] = []  # each arena run's training steps and CPU per step, from its records
    for run in runs:
        seed = run["config"]["seed"]
        method = "barrier arena" if run["config"].get("arena", {}).get("schedule") == "barrier" else "arena"
        trained.append(f"{method} seed {seed}: " + training(list(db.individuals.find(
            {"run_id": run["_id"]}, projection={"trained_steps": 1, "step_cpu_ms": 1}))))
        for name, metrics in judged(seed, lambda drawn: _sweep(db, run["_id"], judge, shares, drawn, regions, refines)
                                    + _ensembles(db, run, judge, ensembles, drawn, say)):
            per_seed[f"{method}, {name}"].append((seed, metrics))
        say(f"{method} run {run['_id']} judged again")
    for path in singles if shares else ():  # screened by its own discriminator, as the benchmark screens it
        seed, pairs = int(path.stem.split("-")[1]), loadable({str(path): (str(path), None)})
        for pair in pairs.values():  # none when it cannot be loaded (`loadable` says why)
            for name, metrics in judged(seed, lambda drawn: [
                    (f"one GAN, by its own discriminator, screen sweep: {words}",
                     screened_quality(pair.generator, [pair.discriminator], judge, share, drawn, count, refine))
                    for share, count, refine, words in _settings(shares, regions, refines)]):
                per_seed[name].append((seed, metrics))
            say(f"one GAN of seed {seed} judged again")
    groups: dict[int, list[Path]] = defaultdict(list)
    for path in saved:
        groups[int(path.stem.split("-")[1])].append(path)
    for seed, paths in sorted(groups.items()):
        pairs = loadable({str(p): (str(p), None) for p in paths})

        def independents(drawn: int) -> list[tuple[str, dict]]:
            out = []
            for share, count, refine, words in _settings(shares, regions, refines):
                alone, fresh = ([screened_quality(pair.generator, [pair.discriminator], judge, share, stream, count,
                                                  refine) for pair in pairs.values()]
                                for stream in (drawn, drawn + baselines.FRESH))
                for which, value in zip(("judge's pick (diagnostic)", "mean"), baselines.best_and_mean(alone, fresh)):
                    out.append((f"{len(paths)} independent GANs, {which}, by its own discriminator, screen sweep: "
                                f"{words}", value))
                # The mixture's weights are fitted on the seed's draw of real data whatever the stream judged.
                raw, screened = baselines.pooled(list(pairs.values()), data, judge, seed, share, count, refine,
                                                 drawn=drawn)
                out.append((f"{len(paths)} independent GANs, mixture, by their discriminators, screen sweep: {words}",
                            screened if screened is not None else raw))
            return out

        for name, metrics in judged(seed, independents):
            per_seed[name].append((seed, metrics))
        if shares:
            say(f"independent GANs of seed {seed} judged again")
    rows, notes = [], []
    for name, judged_runs in per_seed.items():
        metrics = [m for _, m in judged_runs]
        rows.append({"method": name, "dataset": dataset, "seeds": len(judged_runs), **_metric_columns(dataset, metrics),
                     "target met": target_met(dataset, metrics, None)})
        notes.append(f"{name}: " + "; ".join(f"seed {s}: {_short(dataset, r)}{_spread(dataset, r)}"
                                             for s, r in judged_runs))
    on = f", each product on {streams} streams of samples (its metrics their means)" if streams > 1 else ""
    return rows, f"Judged again from {work}, nothing trained{on}. Per seed — " + " | ".join(notes) \
        + _training_note(trained)


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
