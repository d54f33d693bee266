"""`python -m experiments.report RUN_ID`: an HTML report of a run, with its figures, from MongoDB and the
traces: standings over time, each player's loops, elimination and lineage, samples of the best generators,
quality, what mutations did, and a leaderboard. Works on a finished, an interrupted or a running run.
This lays out the page; `experiments.sections` reads what each section shows, `experiments.figures` draws."""

from __future__ import annotations

import html
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pyarrow.compute as pc
import pymongo
from pymongo.database import Database
import typer

from arena.analysis import lineage_elimination, lineage_prevalence
from arena.datasets import GaussianMixture, load_dataset
from experiments import cli, figures
from experiments.sections import (LEADERBOARD, SIDES, effects_table, epidemic_figure, leaderboard, loop_spans,
                                  loop_table, overview, sample_panels, seconds_since, short, standing_points,
                                  training_losses)
from genome.effects import bred_none, operator_changes, operator_counts, operator_effects, went_on_words
from storage import records
from storage.files import is_uri, join, upload_folder
from storage.store import read_run_store
from storage.traces import read_traces

app = cli.new_app(help=__doc__)
PROJECTION = {"genome": 0, "inherited": 0}
FIGURES = ("standings", "timeline", "losses", "elimination", "prevalence", "lineage", "samples", "quality",
           "hacking", "effects", "epidemic")


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
    # Every player anything names: of a running run, the traces (read last) can hold a player whose first
    # individual was not recorded when the individuals were read.
    named = [i["player"] for i in individuals] + [m["player"] for m in metrics if m.get("player")]
    colours = figures.player_colours(named + (pc.unique(traces["player"]).to_pylist() if traces.num_rows else [])
                                     or ["player-0"])
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
    children = [i for i in individuals if i.get("generation", 0) > 0]
    # From the records, as the run's summary says it: what was played, not what the configuration named.
    loops_on = len(children) if bred_none(len(children), operator_counts(children)) else None
    report.figure("What mutations did", "effects", figures.effects, operator_changes(individuals), effects,
                  note=(f"<p>This run bred no child: {went_on_words(loops_on)}.</p>" if loops_on is not None else "") +
                  "<p>Per operator, the fitness change of the children it made from their parents' mean. "
                  "Opponents improve meanwhile, so changes lean negative for every child; the control is the "
                  "children that were not varied (clones), and each operator is judged by the difference of "
                  "its mean change from theirs (Δ, with a 95 % bootstrap interval) and a Mann–Whitney test "
                  "(p); superiority is the chance that one of its children fared better than a clone.</p>" +
                  effects_table(effects))
    args, note = epidemic_figure(individuals, matches, since, founders)
    report.figure("Epidemiology", "epidemic", figures.epidemic, *args, note=note)
    report.add(f"Leaderboard (the {LEADERBOARD} fittest)",
               "<p>By fitness, the mean share fooled over an individual's matches: early individuals earned theirs "
               "against untrained opponents; <i>final pop.</i> marks the population at the end; <i>ms/step</i>: "
               "its training's wall time per step, and <i>CPU ms/step</i> the CPU time, what its genome costs apart "
               "from the share of a core the machine gave it (each empty in records older than it); <i>MMD² to "
               "real</i>: its generator's distance to real training samples, where measured (with the quality "
               "metrics, every loop when culling or the player's tuning of its rates reads it, and each player's last). Quality: "
               "as measured during the run, where it was.</p>" +
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
        def draw(db: Database) -> str:
            if report_dir is None and is_uri(out):  # drawn on local disk, then put beside the run's files
                with tempfile.TemporaryDirectory() as folder:
                    build(db, run_id, out, Path(folder))
                    return join(upload_folder(Path(folder), join(out, run_id, "report")), "index.html")
            return str(build(db, run_id, out, report_dir or Path(out) / run_id / "report"))

        index = read_run_store(run_id, out, mongo_uri, mongo_db, draw)
    except (ValueError, OSError, RuntimeError, pymongo.errors.PyMongoError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)
    typer.echo(f"{index} ({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    cli.main(app)
