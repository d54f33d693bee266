"""`python -m experiments.bench quality --rejudge`: what a kept `--work` folder holds (arena runs, one GAN,
independent GANs) judged again, nothing trained: at other screen settings, on several streams of samples, or with
the runs' products chosen again from their final populations."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from arena.datasets import load_dataset
from arena.metrics import Judge
from experiments.bench import baselines
from experiments.bench.common import training
from experiments.bench.scores import (MODES, SWEEP_LABELS, brief, metric_columns, screened_rows, shares_by_regions,
                                      target_met, training_note)
from experiments.evaluate import evaluate_final, loadable, screened_quality
from experiments.summaries import screen_words

STREAM_STRIDE = 7_919  # between the seeds of a product's streams of samples under --streams (apart from FRESH)
JUDGED = ("modes", "high_quality", "kl", "fid", "tvd")  # the judge's metrics, which --streams averages


def _settings(shares: tuple[float, ...], regions: tuple[int, ...],
              refines: tuple[int, ...]) -> list[tuple[float, int, int, str]]:
    """Every (share, regions, refinement steps, their words) a saved baseline is judged again at."""
    return [(share, count, refine, screen_words(share, count, refine))
            for refine in refines for count, chosen in shares_by_regions(shares, regions) for share in chosen]


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

        def products(drawn: int, run: dict = run) -> list[tuple[str, dict]]:
            return screened_rows(db, run["_id"], judge, shares, drawn, regions, refines) \
                + _ensembles(db, run, judge, ensembles, drawn, say)

        for name, metrics in judged(seed, products):
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
        rows.append({"method": name, "dataset": dataset, "seeds": len(judged_runs), **metric_columns(dataset, metrics),
                     "target met": target_met(dataset, metrics, None)})
        notes.append(f"{name}: " + "; ".join(f"seed {s}: {brief(dataset, r)}{_spread(dataset, r)}"
                                             for s, r in judged_runs))
    on = f", each product on {streams} streams of samples (its metrics their means)" if streams > 1 else ""
    return rows, f"Judged again from {work}, nothing trained{on}. Per seed — " + " | ".join(notes) \
        + training_note(trained)
