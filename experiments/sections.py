"""The report's sections, read from a run's records: the data behind each figure (standings at each
fight, loop spans, losses, samples of the best generators, the epidemic) and the tables (the run, the
loops, what mutations did, the leaderboard). `experiments.figures` draws; `experiments.report` lays
out the page."""

from __future__ import annotations

import datetime as dt
import html
from collections import defaultdict
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from arena import epidemiology
from arena.datasets import GaussianMixture
from arena.ensemble import Mixture
from experiments import figures
from experiments.sample import choose_source
from experiments.summaries import screened, summarize_network, summarize_optimizer
from genome.effects import CONTROL, QUANTILES
from storage.checkpoints import CheckpointError, load_pair

LEADERBOARD = 10
SNAPSHOTS = 5  # samples of the best generator of this many stretches of the run, and of the final best
SIDES = ("generator", "discriminator")


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
    of the run, among those whose checkpoint is kept, then of the best of the final population; checkpoints are
    sha256-checked."""
    by_id = {i["_id"]: i for i in individuals}
    ranked = [(p["t"], p["fitness"], by_id[p["_id"]]) for p in points
              if p["fitness"] is not None and not by_id[p["_id"]].get("checkpoint_pruned")]
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
                     fmt(i.get("d_fitness")), fmt(i.get("rating"), 2), fmt(i.get("real_distance"), 4),
                     f"{i.get('parameters') or 0:,}",
                     fmt(i.get("step_ms"), 1), fmt(i.get("step_cpu_ms"), 1), *genes,
                     measured])
    if not rows:
        return "<p class='none'>No individual has a fitness yet.</p>"
    return table(["#", "individual", "final pop.", "fitness", "D fitness", "rating", "MMD² to real", "parameters", "ms/step",
                  "CPU ms/step", "G layers", "G optimizer", "D layers", "D optimizer", "latent", "quality"], rows, left=2)


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
    champion = ((run.get("summary") or {}).get("quality") or {}).get("champion")
    if champion:  # the product as screened (`arena.screen`); its `final` row gives it unscreened
        finals = [*finals, {**champion, "kind": "champion"}]
    if finals:
        fields = [f for f in figures.QUALITY_LABELS if any(f in m for m in finals)]
        text += "<p>Quality at the end (final population, the champion and the ensemble of the fittest):</p>" + table(
            ["kind", "individual(s)"] + [figures.QUALITY_LABELS[f] for f in fields],
            [[m["kind"] + screened(m),
              ", ".join(short(x) for x in m.get("members") or [m.get("individual", "")])] +
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
