"""`python -m experiments.report RUN_ID`: an HTML report of a run, with its figures, from MongoDB and the
traces: standings over time, each player's loops, elimination and lineage, samples of the best generators,
quality, what mutations did, and a leaderboard. Works on a finished, an interrupted or a running run."""

from __future__ import annotations

import datetime as dt
import html
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pymongo
import torch
import typer

from arena import epidemiology
from arena.analysis import lineage_elimination, lineage_prevalence
from arena.datasets import GaussianMixture, load_dataset
from arena.ensemble import Mixture
from experiments import cli, figures
from experiments.sample import choose_source
from experiments.summaries import summarize_network, summarize_optimizer
from genome.effects import CONTROL, QUANTILES, operator_changes, operator_effects
from storage import records
from storage.checkpoints import CheckpointError, load_pair
from storage.files import is_uri, join, upload_folder
from storage.store import open_run_store
from storage.traces import read_traces

app = cli.new_app(help=__doc__)
LEADERBOARD = 10
SNAPSHOTS = 5  # samples of the best generator of this many stretches of the run, and of the final best
PROJECTION = {"genome": 0, "inherited": 0}
FIGURES = ("standings", "timeline", "losses", "elimination", "prevalence", "lineage", "samples", "quality",
           "hacking", "effects", "epidemic")
SIDES = ("generator", "discriminator")


class Report:
    """Sections of the page, in order: a title, one figure (or the sentence why there is none), and HTML."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.sections: list[tuple[str, str]] = []

    def figure(self, title: str, name: str, draw: Callable, *args, note: str = "") -> None:
        path = self.folder / f"{name}.png"
        try:
            draw(path, *args)
        except figures.NoData as why:
            self.add(title, f"<p class='none'>No figure: {html.escape(str(why))}.</p>{note}")
            return
        self.add(title, f"<img src='{path.name}' alt='{html.escape(title)}'>{note}")

    def add(self, title: str, body: str) -> None:
        self.sections.append((title, body))

    def write(self, heading: str) -> Path:
        body = "\n".join(f"<h2>{html.escape(t)}</h2>\n{b}" for t, b in self.sections)
        page = (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(heading)}</title>"
                f"<style>{STYLE}</style></head>\n<body><h1>{html.escape(heading)}</h1>\n{body}\n</body></html>\n")
        index = self.folder / "index.html"
        index.write_text(page)
        return index


STYLE = ("body{font-family:sans-serif;max-width:1150px;margin:1em auto;color:#222}img{max-width:100%}"
         "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
         "td.l,th.l{text-align:left}.none{color:#a33}")


def table(header: list[str] | None, rows: list[list], left: int = 1) -> str:
    """An HTML table; the first `left` columns aligned left. Cells are escaped."""
    def cells(tag, values):
        return "".join(f"<{tag}{' class=l' if i < left else ''}>{html.escape(str(v))}</{tag}>"
                       for i, v in enumerate(values))
    head = f"<tr>{cells('th', header)}</tr>" if header else ""
    return f"<table>{head}" + "".join(f"<tr>{cells('td', r)}</tr>" for r in rows) + "</table>"


def fmt(value, digits: int = 3) -> str:
    if isinstance(value, dt.datetime):
        return f"{value.astimezone(dt.timezone.utc):%Y-%m-%d %H:%M:%S} UTC"
    return "" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def seconds_since(start: dt.datetime) -> Callable:
    origin = start.timestamp()
    return lambda t: (t.timestamp() if isinstance(t, dt.datetime) else float(t)) - origin


def short(individual: str) -> str:
    return individual.split("/", 1)[-1]


def standing_points(individuals: list[dict], since: Callable) -> tuple[list[dict], bool]:
    """Each individual's standing right after its own fight; individuals recorded without it (older
    runs) contribute their final standing at their birth, and those that have not fought yet nothing.
    Returns the points and whether any fell back."""
    points, fallback = [], False
    for i in individuals:
        fight = i.get("at_fight")
        if fight is None:
            if i.get("fitness") is None and i.get("rating") is None:
                continue
            fallback = True
            fight = {"at": i["created_at"], "fitness": i.get("fitness"), "rating": i.get("rating")}
        points.append({"_id": i["_id"], "t": since(fight["at"]), "player": i["player"],
                       "fitness": fight.get("fitness"), "rating": fight.get("rating")})
    return points, fallback


def loop_spans(individuals: list[dict], traces: pa.Table, since: Callable) -> tuple[list[dict], bool]:
    """Phase spans from each individual's recorded timeline; for individuals without one (older runs, a
    loop still under way), their train and cross phases from their first and last trace rows. Returns
    them and whether traces were used."""
    spans, untimed = [], set()
    for i in individuals:
        if i.get("timeline"):
            spans += [{"player": i["player"], "phase": phase, "start": since(a), "end": since(b)}
                      for phase, (a, b) in i["timeline"].items()]
        else:
            untimed.add(i["_id"])
    if untimed and traces.num_rows:
        rows = traces.filter(pc.is_in(traces["individual"], pa.array(sorted(untimed))))
        grouped = rows.group_by(["individual", "player", "phase"]).aggregate([("time", "min"), ("time", "max")])
        for row in grouped.to_pylist():
            spans.append({"player": row["player"], "phase": row["phase"], "start": since(row["time_min"]),
                          "end": since(row["time_max"])})
        return spans, bool(grouped.num_rows)
    return spans, False


def loop_table(individuals: list[dict]) -> str:
    """Per player: loops timed, seconds per loop and the share of its time in each phase."""
    totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    loops: dict[str, list[float]] = defaultdict(list)
    for i in individuals:
        timeline = i.get("timeline")
        if timeline:
            loops[i["player"]].append(max(b for _, b in timeline.values()) - min(a for a, _ in timeline.values()))
            for phase, (a, b) in timeline.items():
                totals[i["player"]][phase] += b - a
    if not loops:
        return ""
    phases = [p for p in figures.PHASE_COLOURS if any(p in t for t in totals.values())]
    rows = [[player, len(spans), f"{np.mean(spans):.2f}"] +
            [f"{totals[player][p] / sum(spans):.1%}" for p in phases] for player, spans in sorted(loops.items())]
    return table(["player", "loops", "s/loop"] + phases, rows)


def training_losses(traces: pa.Table, since: Callable) -> dict[str, tuple]:
    """Per player, the time (run seconds), generator and discriminator losses of its training steps."""
    losses = {}
    train = traces.filter(pc.equal(traces["phase"], "train")) if traces.num_rows else traces
    for player in sorted(set(train["player"].to_pylist())):
        mine = train.filter(pc.equal(train["player"], player)).sort_by("time")
        t = since(0.0) + mine["time"].cast(pa.int64()).to_numpy() / 1e6  # epoch microseconds to run seconds
        losses[player] = (t, mine["g_loss"].to_numpy(), mine["d_loss"].to_numpy())
    return losses


def sample_panels(db, run_id: str, individuals: list[dict], points: list[dict], data,
                  population: set[str]) -> tuple[list, list[str]]:
    """Samples of the best generator (by its standing at its fight) born in each of SNAPSHOTS stretches
    of the run, then of the best of the final population; checkpoints are sha256-checked."""
    by_id = {i["_id"]: i for i in individuals}
    ranked = [(p["t"], p["fitness"], by_id[p["_id"]]) for p in points if p["fitness"] is not None]
    chosen: list[tuple[str, dict]] = []
    if ranked:
        edges = np.linspace(min(r[0] for r in ranked), max(r[0] for r in ranked), SNAPSHOTS + 1)
        for lo, hi in zip(edges[:-1], edges[1:]):
            stretch = [r for r in ranked if lo <= r[0] <= hi and all(r[2] is not c for _, c in chosen)]
            if stretch:
                t, fitness, best = max(stretch, key=lambda r: r[1])
                chosen.append((f"{short(best['_id'])}, {t:.0f} s, fitness {fitness:.2f}", best))
    try:
        final = choose_source(db, run_id, None, None)[0][0]
        best = by_id[final]
        which = "best of the final population" if population else "best so far"
        chosen = [(title, c) for title, c in chosen if c is not best]  # shown once, as the final best
        chosen.append((f"{short(final)}: {which}, fitness {fmt(best.get('fitness'), 2)}", best))
    except (ValueError, KeyError):  # nobody has a fitness yet
        pass
    n = 600 if isinstance(data, GaussianMixture) else 36
    panels, problems = [], []
    for title, individual in chosen:
        try:
            _, pair = load_pair(individual["checkpoint"], sha256=individual.get("checkpoint_sha256"))
        except CheckpointError as err:
            problems.append(str(err))
            continue
        generator = Mixture([pair.generator], np.ones(1))
        panels.append((title, generator.sample(n, torch.Generator().manual_seed(0)).numpy()))
    return panels, list(dict.fromkeys(problems))


def leaderboard(db, individuals: list[dict], population: set[str], quality: dict[str, dict]) -> str:
    ranked = sorted((i for i in individuals if i.get("fitness") is not None), key=lambda i: -i["fitness"])
    top = ranked[:LEADERBOARD]
    genomes = {d["_id"]: d.get("genome") for d in db.individuals.find({"_id": {"$in": [i["_id"] for i in top]}},
                                                                 projection={"genome": 1})}
    rows = []
    for rank, i in enumerate(top, 1):
        g = genomes.get(i["_id"])
        genes = [summarize_network(g["generator"]), summarize_optimizer(g["g_optimizer"]),
                 summarize_network(g["discriminator"]), summarize_optimizer(g["d_optimizer"]),
                 f"{g['latent_dim']} {g['latent_dist']}"] if g else ["(no genome recorded)", "", "", "", ""]
        q = quality.get(i["_id"], {})
        measured = f"FID {q['fid']:.1f}" if "fid" in q else f"{q['modes']} modes, {q['high_quality']:.1%} HQ" \
            if "modes" in q else ""
        rows.append([rank, short(i["_id"]), "yes" if i["_id"] in population else "", fmt(i["fitness"]),
                     fmt(i.get("d_fitness")), fmt(i.get("rating"), 2), f"{i.get('parameters') or 0:,}", *genes,
                     measured])
    if not rows:
        return "<p class='none'>No individual has a fitness yet.</p>"
    return table(["#", "individual", "final pop.", "fitness", "D fitness", "rating", "parameters", "G layers",
                  "G optimizer", "D layers", "D optimizer", "latent", "quality"], rows, left=2)


def overview(run: dict, individuals: list[dict], matches: int, trace_rows: int, finals: list[dict]) -> str:
    config = run.get("config") or {}
    status = run.get("status", "unknown")
    note = {"running": " (still running: this report shows what is recorded so far)",
            "interrupted": " (stopped early: everything recorded until then)"}.get(status, "")
    rows = [["status", status + note], ["dataset", config.get("dataset")], ["players", config.get("players")],
            ["budget", f"{config.get('budget_seconds')} s"], ["started", fmt(run.get("started_at"))],
            ["finished", fmt(run.get("finished_at"))], ["evolution time", f"{fmt(run.get('elapsed_seconds'), 0)} s"],
            ["individuals", len(individuals)], ["matches", matches], ["trace rows", trace_rows]]
    text = table(None, rows, left=2)
    if finals:
        fields = [f for f in figures.QUALITY_LABELS if any(f in m for m in finals)]
        text += "<p>Quality at the end (final population, and the ensemble of the fittest):</p>" + table(
            ["kind", "individual(s)"] + [figures.QUALITY_LABELS[f] for f in fields],
            [[m["kind"], ", ".join(short(x) for x in m.get("members") or [m.get("individual", "")])] +
             [fmt(m.get(f)) for f in fields] for m in finals], left=2)
    return text


def effects_table(effects: dict[str, dict]) -> str:
    rows = []
    for name, e in sorted(effects.items(), key=lambda kv: (kv[0] != CONTROL, -kv[1]["count"])):
        versus = e.get("vs_control") or {}
        interval = f"[{versus['low']:+.3f}, {versus['high']:+.3f}]" if versus.get("low") is not None else ""
        rows.append([name + (" (control)" if name == CONTROL else ""), e["count"], e["helped"], e["hurt"],
                     f"{e['mean_change']:+.3f}", *(f"{q:+.3f}" for q in e["quantiles"]),
                     f"{versus['difference']:+.3f}" if versus else "", interval,
                     f"{versus['p']:.3g}" if versus else "", fmt(versus.get("superiority"), 2)])
    if not rows:
        return ""
    return table(["operator", "children", "helped", "hurt", "mean"] + [f"q{round(100 * q)}" for q in QUANTILES] +
                 ["Δ vs clones", "95 % interval", "p", "superiority"], rows)


def epidemic_figure(individuals: list[dict], matches: list[dict], since: Callable, founders: dict) -> tuple:
    """The epidemic figure's arguments, and its note: the definitions and the counts."""
    histories = epidemiology.exposures(individuals, matches)
    summary = epidemiology.epidemic_summary(histories)
    shares = {side: [{**r, "t": since(r["at"])} for r in epidemiology.strain_prevalence(individuals, side)]
              for side in SIDES}
    coinfected = [{**r, "t": since(r["at"])} for r in epidemiology.coinfection(individuals)]
    curve = [{**r, "t": since(r["at"])} for r in epidemiology.epidemic_curve(histories)]
    note = ("<p>Generators are the pathogens, discriminators the hosts, and each founder's lineage is a strain; "
            "a generator carries the strains its generator side descends from. A match <i>infects</i> its "
            "discriminator when the fooled share is above one half (a win for the generator in the ratings). "
            "<i>Prevalence</i>: a strain's share of the live population (solid: generators, dotted: "
            "discriminators). <i>Co-infection</i>: a live individual carries material of two founders or more "
            "through any parent. <i>Immunity</i> (vaccination): a discriminator catches a strain's generators "
            "after having been infected by them. <i>Re-infection</i>: the strain infects it again after it "
            "became immune.</p>")
    last = coinfected[-1]["coinfected"] if coinfected else None
    note += table(None, [["discriminator–strain pairs that met", summary["exposed"]],
                         ["infected", summary["infected"]],
                         ["immune after infection", f"{summary['immune']} ({fmt(summary['immune_share'], 2)})"],
                         ["re-infected after immunity",
                          f"{summary['reinfected']} ({fmt(summary['reinfected_share'], 2)})"],
                         ["co-infected share of the live population at the end", fmt(last, 2)]], left=1)
    return (shares, coinfected, curve, founders, summary["exposed"]), note


def build(db, run_id: str, out: str, folder: Path) -> Path:
    """Gather what the run recorded, draw every figure into `folder`, and write `folder/index.html`."""
    run = db.runs.find_one({"_id": run_id})
    individuals = sorted(db.individuals.find({"run_id": run_id}, projection=PROJECTION),
                         key=lambda i: i["created_at"])
    matches = list(db.matches.find({"run_id": run_id}, projection={"generator": 1, "discriminator": 1,
                                                                    "fooled": 1, "at": 1, "kind": 1}))
    metrics = list(db.metrics.find({"run_id": run_id}))
    traces = read_traces(join(out, run_id, "traces"), ["individual", "player", "phase", "time", "g_loss", "d_loss"])
    population = set((run.get("summary") or {}).get("population") or [])
    since = seconds_since(run.get("started_at") or (individuals[0]["created_at"] if individuals else records.now()))
    colours = figures.player_colours([i["player"] for i in individuals] or ["player-0"])
    folder.mkdir(parents=True, exist_ok=True)
    for name in FIGURES:  # figures of an earlier report that now have no data must not linger
        (folder / f"{name}.png").unlink(missing_ok=True)

    report = Report(folder)
    during = [m for m in metrics if m.get("kind") == "during"]
    report.add("Run", overview(run, individuals, len(matches), traces.num_rows,
                               [m for m in metrics if m.get("kind") in ("final", "ensemble")]))

    points, fallback = standing_points(individuals, since)
    report.figure("Fitness and rating over time", "standings", figures.standings, points, colours,
                  note="<p>Each point is an individual's standing right after its own fight. Fitness: share of "
                       "opposing discriminators fooled; rating: mu − 3σ." +
                       (" Individuals recorded without that standing (older runs) show their final standing at "
                        "their birth." if fallback else "") + "</p>")

    spans, from_traces = loop_spans(individuals, traces, since)
    schedule = ((run.get("config") or {}).get("arena") or {}).get("schedule", "async")
    report.figure("Each player's loops", "timeline", figures.loop_timeline, spans, colours,
                  note=f"<p>Schedule: {html.escape(str(schedule))}. Players run at their own pace: loops start "
                       "and end whenever each player is done; the share of time in <i>wait</i> is time spent at a "
                       "barrier, absent when there is none." +
                       (" Loops with no recorded timeline (older runs, or a loop still under way) show only "
                        "their training and cross-training, from the traces." if from_traces else "") + "</p>" +
                  loop_table(individuals))
    report.figure("Training losses", "losses", figures.losses, training_losses(traces, since), colours)

    founders = {i["_id"]: (f"founder {short(i['_id'])}", colours[i["player"]]) for i in individuals
                if not i.get("parents")}
    report.figure("Elimination curves of every lineage", "elimination", figures.elimination,
                  {side: lineage_elimination(individuals, matches, side) for side in SIDES}, founders,
                  note="<p>A lineage is an individual and everyone descended from it on one side (a child's "
                       "generator from its generator-side parents, its discriminator from its discriminator-side "
                       "parents; records without them follow every parent). Left: as the opposing "
                       "discriminators met by a generator lineage accumulate, the share of them it still fools "
                       "(mean fooled share above one half); right: as the generators met by a discriminator "
                       "lineage accumulate, the share of them it still catches. Founders in colour.</p>")
    report.figure("Lineage prevalence", "prevalence", figures.prevalence,
                  {side: [{**row, "t": since(row["at"])} for row in lineage_prevalence(individuals, side)]
                   for side in SIDES}, founders,
                  note="<p>The share of the live population (each player's latest individual) descended from "
                       "each lineage, on the generator side and on the discriminator side: every lineage in grey, "
                       "the founders dashed, in colour the five others that held the most of it over time.</p>")
    nodes = [{"_id": i["_id"], "player": i["player"], "t": since(i["created_at"]), "parents": i.get("parents"),
              "fitness": next((f for f in (i.get("fitness"), (i.get("at_fight") or {}).get("fitness"))
                               if f is not None), None),
              "final": i["_id"] in population} for i in individuals]
    report.figure("Lineage tree", "lineage", figures.lineage_tree, nodes, colours)

    dataset = (run.get("config") or {}).get("dataset") or (individuals[0]["dataset"] if individuals else None)
    data = load_dataset(dataset) if dataset else None
    panels, problems = ([], []) if data is None else sample_panels(db, run_id, individuals, points, data, population)
    report.figure("Samples of the best generators over time", "samples", figures.samples, panels,
                  data.means if isinstance(data, GaussianMixture) else None,
                  note="".join(f"<p class='none'>Skipped: {html.escape(p)}</p>" for p in problems))

    report.figure("Quality during the run", "quality", figures.quality,
                  [{**m, "t": since(m["at"])} for m in during], colours)
    hacked = [{"t": since(i["created_at"]), "player": i["player"], **i["hacking"]} for i in individuals
              if i.get("hacking")]
    report.figure("Hacking: its own discriminator against opposing ones", "hacking", figures.hacking, hacked, colours,
                  note="<p>The seed: \"GANs seem to overfit by hacking the reward of their discriminator\". For each "
                       "individual, the share of its generator's fakes that its own discriminator took for real, "
                       "minus the share opposing discriminators did, in its duels; above zero its own is the easier "
                       "to fool, the hacking that competition between architectures is meant to expose." +
                       (f" Over the run: own {np.mean([h['own'] for h in hacked]):.3f}, opposing "
                        f"{np.mean([h['opposing'] for h in hacked]):.3f}, gap "
                        f"{np.mean([h['gap'] for h in hacked]):+.3f} ({len(hacked)} individuals)." if hacked else "")
                       + "</p>")
    effects = operator_effects(individuals, resamples=1000)
    report.figure("What mutations did", "effects", figures.effects, operator_changes(individuals), effects,
                  note="<p>Per operator, the fitness change of the children it made from their parents' mean. "
                       "Opponents improve meanwhile, so changes lean negative for every child; the control is the "
                       "children that were not varied (clones), and each operator is judged by the difference of "
                       "its mean change from theirs (Δ, with a 95 % bootstrap interval) and a Mann–Whitney test "
                       "(p); superiority is the chance that one of its children fared better than a clone.</p>" +
                  effects_table(effects))
    args, note = epidemic_figure(individuals, matches, since, founders)
    report.figure("Epidemiology", "epidemic", figures.epidemic, *args, note=note)
    report.add(f"Leaderboard (the {LEADERBOARD} fittest)",
               "<p>By fitness, the mean share fooled over an individual's matches: early individuals earned theirs "
               "against untrained opponents; <i>final pop.</i> marks the population at the end. Quality: as "
               "measured during the run, where it was.</p>" +
               leaderboard(db, individuals, population, {m["individual"]: m for m in during}))
    return report.write(f"Run {run_id}")


@app.command()
def main(
    run_id: str = typer.Argument(..., help="The run to report on."),
    out: str = typer.Option("runs", help="The folder holding <run_id>/traces, <run_id>/checkpoints, <run_id>/db."),
    mongo_uri: Optional[str] = typer.Option(None, envvar="ARENA_MONGO_URI",
                                            help="MongoDB server of the run; none opens its embedded database."),
    mongo_db: str = typer.Option("arena", help="Database name."),
    report_dir: Optional[Path] = typer.Option(None, help="Where to write [default: <out>/<run_id>/report]."),
) -> None:
    """Write <out>/<run_id>/report/index.html and its PNG figures."""
    started = time.perf_counter()
    try:
        with open_run_store(run_id, out, mongo_uri, mongo_db) as db:
            if report_dir is None and is_uri(out):  # drawn on local disk, then put beside the run's files
                with tempfile.TemporaryDirectory() as folder:
                    build(db, run_id, out, Path(folder))
                    index = join(upload_folder(Path(folder), join(out, run_id, "report")), "index.html")
            else:
                index = build(db, run_id, out, report_dir or Path(out) / run_id / "report")
    except (ValueError, OSError, RuntimeError, pymongo.errors.PyMongoError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)
    typer.echo(f"{index} ({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    cli.main(app)
