"""The report's figures, drawn with matplotlib (Agg) from plain records: each function writes one PNG, or
raises `NoData` saying why there is nothing to draw, so a report never shows a blank picture.

Times are seconds since the run started; players keep one colour in every figure."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402

PHASE_COLOURS = {"train": "#4c72b0", "cross": "#64b5cd", "save": "#8c8c8c", "publish": "#937860",
                 "fight": "#c44e52", "round": "#e17c7e", "distance": "#da8bc3", "measure": "#8172b2",
                 "settle": "#cccccc", "heartbeat": "#cccccc", "breed": "#55a868", "wait": "#dd8452"}
QUALITY_LABELS = {"modes": "modes captured", "high_quality": "high-quality share", "kl": "KL from uniform modes",
                  "fid": "FID", "tvd": "class TVD"}


class NoData(Exception):
    """A figure with nothing to show; the message says why, for the report to print instead."""


def player_colours(players: Sequence[str]) -> dict[str, tuple]:
    players = sorted(set(players))
    palette = plt.get_cmap("tab10" if len(players) <= 10 else "tab20")
    return {p: palette(i % palette.N) for i, p in enumerate(players)}


def _save(figure, path: Path) -> None:
    figure.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(figure)


def standings(path: Path, points: Sequence[dict], colours: dict) -> None:
    """Fitness and rating over time, per player (left) and as population quantiles over each player's
    latest standing (right). `points`: `t`, `player`, `fitness`, `rating` (either may be None)."""
    points = sorted(points, key=lambda p: p["t"])
    keys = [k for k in ("fitness", "rating") if any(p[k] is not None for p in points)]
    if not keys:
        raise NoData("no individual has fought yet, so there is no fitness or rating")
    figure, grid = plt.subplots(len(keys), 2, figsize=(12, 3.6 * len(keys)), squeeze=False,
                                layout="constrained")
    for row, key in zip(grid, keys):
        for player in sorted({p["player"] for p in points}):
            mine = [p for p in points if p["player"] == player and p[key] is not None]
            if mine:
                row[0].plot([p["t"] for p in mine], [p[key] for p in mine], marker=".", ms=4, lw=1,
                            color=colours[player], label=player, drawstyle="steps-post")
        latest: dict[str, float] = {}
        times, bands = [], []
        for p in points:
            if p[key] is not None:
                latest[p["player"]] = p[key]
                times.append(p["t"])
                bands.append(np.quantile(list(latest.values()), [0.0, 0.25, 0.5, 0.75, 1.0]))
        bands = np.array(bands)
        row[1].fill_between(times, bands[:, 0], bands[:, 4], step="post", alpha=0.15, color="k", label="min–max")
        row[1].fill_between(times, bands[:, 1], bands[:, 3], step="post", alpha=0.3, color="k", label="quartiles")
        row[1].plot(times, bands[:, 2], drawstyle="steps-post", color="k", lw=1.5, label="median")
        for axes, title in zip(row, ("per player", "population (each player's latest)")):
            axes.set_title(f"{key}, {title}")
            axes.set_xlabel("seconds since start")
            axes.set_ylabel(key)
            axes.legend(fontsize=7, loc="best")
    _save(figure, path)


def loop_timeline(path: Path, spans: Sequence[dict], colours: dict) -> None:
    """Each player's loops as coloured phase bars on its own lane. `spans`: `player`, `phase`, `start`, `end`."""
    if not spans:
        raise NoData("no loop was timed")
    players = sorted({s["player"] for s in spans})
    figure, axes = plt.subplots(figsize=(12, 0.6 * len(players) + 1.6))
    by_lane: dict[tuple, list] = defaultdict(list)
    for s in spans:
        by_lane[(players.index(s["player"]), s["phase"])].append((s["start"], max(s["end"] - s["start"], 1e-3)))
    phases = [p for p in PHASE_COLOURS if any(k[1] == p for k in by_lane)]
    phases += sorted({k[1] for k in by_lane} - set(phases))
    for (lane, phase), bars in by_lane.items():
        axes.broken_barh(bars, (lane - 0.35, 0.7), facecolors=PHASE_COLOURS.get(phase, "#000000"))
        if phase == "train":  # where each loop starts: the lanes' ticks never line up when nobody waits
            axes.vlines([b[0] for b in bars], lane - 0.45, lane + 0.45, colors="k", linewidths=0.6)
    axes.set_yticks(range(len(players)), players)
    for label in axes.get_yticklabels():
        label.set_color(colours.get(label.get_text(), "k"))
    axes.invert_yaxis()
    axes.set_xlabel("seconds since start")
    axes.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=PHASE_COLOURS.get(p, "#000000")) for p in phases],
                labels=phases, ncol=len(phases), fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.25))
    axes.set_title("each player's loops")
    _save(figure, path)


def elimination(path: Path, sides: dict[str, dict[str, list[dict]]], highlight: dict[str, tuple]) -> None:
    """Elimination curves of every lineage, one panel per side: for generator lineages the share of the
    discriminators met still fooled, for discriminator lineages the share of the generators met still
    caught, as they accumulate; every lineage in grey, the median in black, `highlight` ({root: (label,
    colour)}) in colour. `sides`: {side: {root: curve}}."""
    panels = {side: {g: c for g, c in curves.items() if c} for side, curves in sides.items() if curves}
    panels = {side: curves for side, curves in panels.items() if curves}
    if not panels:
        raise NoData("no generator has met a discriminator yet (no match is recorded)")
    figure, grid = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4), squeeze=False, layout="constrained")
    for axes, (side, curves) in zip(grid[0], panels.items()):
        key = "fooled_share" if side == "generator" else "caught_share"
        axes.add_collection(LineCollection([[(c["met"], c[key]) for c in curve] for curve in curves.values()],
                                           colors="0.8", linewidths=0.7))
        by_met: dict[int, list[float]] = defaultdict(list)
        for curve in curves.values():
            last = {c["met"]: c[key] for c in curve}
            for met, share in last.items():
                by_met[met].append(share)
        mets = sorted(by_met)
        axes.plot(mets, [np.median(by_met[m]) for m in mets], color="k", lw=2, label=f"median of {len(curves)}")
        for root, (label, colour) in highlight.items():
            if root in curves:
                axes.plot([c["met"] for c in curves[root]], [c[key] for c in curves[root]], color=colour, lw=1.5,
                          label=label)
        axes.autoscale()
        other = "discriminators" if side == "generator" else "generators"
        axes.set(xlabel=f"opposing {other} met", ylabel=f"share still {key.split('_')[0]}", ylim=(-0.05, 1.05),
                 title=f"{side} lineages")
        axes.legend(fontsize=7)
    _save(figure, path)


def _steps(rows: Sequence[dict], end: float) -> dict[str, list[tuple]]:
    """Change-point rows (`t`, `lineage`, `prevalence`) as step series per lineage, held to `end`."""
    series: dict[str, list[tuple]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: r["t"]):
        series[row["lineage"]].append((row["t"], row["prevalence"]))
    return {k: v + [(end, v[-1][1])] for k, v in series.items()}


def prevalence(path: Path, sides: dict[str, list[dict]], labels: dict[str, tuple], top: int = 5) -> None:
    """Every lineage's share of the live population over time, one panel per side: all in grey, the
    founders' in `labels` ({root: (label, colour)}), and the `top` other lineages that held the most of
    the population over time in colour. `sides`: {side: change-point rows `t`, `lineage`, `prevalence`}."""
    sides = {side: rows for side, rows in (sides or {}).items() if rows}
    if not sides:
        raise NoData("no individual is recorded")
    end = max(r["t"] for rows in sides.values() for r in rows)
    figure, grid = plt.subplots(1, len(sides), figsize=(6.5 * len(sides), 4), squeeze=False, layout="constrained")
    for axes, (side, rows) in zip(grid[0], sides.items()):
        series = _steps(rows, end)
        held = {k: sum((b[0] - a[0]) * a[1] for a, b in zip(v, v[1:])) for k, v in series.items() if k not in labels}
        # steps drawn as vertices in one collection: a long run has thousands of lineages
        axes.add_collection(LineCollection(
            [[p for a, b in zip(v, v[1:]) for p in (a, (b[0], a[1]))] + [v[-1]] for v in series.values()],
            colors="0.85", linewidths=0.6))
        for i, lineage in enumerate(sorted(held, key=lambda k: -held[k])[:top]):
            axes.step(*zip(*series[lineage]), where="post", color=plt.get_cmap("Set1")(i), lw=1.3,
                      label=f"lineage of {lineage.split('/', 1)[-1]}")
        for lineage, (label, colour) in labels.items():
            if lineage in series:
                axes.step(*zip(*series[lineage]), where="post", color=colour, lw=1.8, ls="--", label=label)
        axes.set(xlabel="seconds since start", ylabel="share of live population descended", ylim=(-0.05, 1.05),
                 title=f"{side} lineages ({len(series)})")
        axes.legend(fontsize=6)
    _save(figure, path)


def lineage_tree(path: Path, nodes: Sequence[dict], colours: dict) -> None:
    """Parents to children: x the time of birth, y the player's lane, colour the player, size the fitness
    (hollow: no fitness), a black ring for the final population. `nodes`: `_id`, `player`, `t`,
    `parents`, `fitness`, `final`."""
    if not nodes:
        raise NoData("no individual is recorded")
    players = sorted({n["player"] for n in nodes})
    where = {n["_id"]: (n["t"], players.index(n["player"])) for n in nodes}
    figure, axes = plt.subplots(figsize=(12, 0.7 * len(players) + 1.5))
    edges = [(where[p], where[n["_id"]]) for n in nodes for p in n["parents"] or [] if p in where]
    axes.add_collection(LineCollection(edges, colors="0.55", linewidths=0.6, alpha=0.6, zorder=1))
    for player in players:
        mine = [n for n in nodes if n["player"] == player]
        fought = [n for n in mine if n["fitness"] is not None]
        unfought = [n for n in mine if n["fitness"] is None]
        axes.scatter([n["t"] for n in fought], [where[n["_id"]][1] for n in fought],
                     s=[12 + 150 * n["fitness"] for n in fought], color=colours[player], zorder=2,
                     edgecolors=["k" if n["final"] else "none" for n in fought])
        axes.scatter([n["t"] for n in unfought], [where[n["_id"]][1] for n in unfought], s=12, zorder=2,
                     facecolors="none", edgecolors=colours[player])
    axes.set_yticks(range(len(players)), players)
    axes.invert_yaxis()
    axes.autoscale()
    axes.set_xlabel("seconds since start (birth)")
    axes.set_title("lineage: parents to children (size: fitness; black ring: final population)")
    _save(figure, path)


def _mosaic(images: np.ndarray, side: int) -> np.ndarray:
    """`side`×`side` images (N, C, H, W), first channel, tiled into one array with a 1-pixel border."""
    count, (height, width) = len(images), images.shape[-2:]
    tiles = np.full((side * (height + 1) + 1, side * (width + 1) + 1), -1.0)
    for i in range(min(count, side * side)):
        r, c = divmod(i, side)
        tiles[1 + r * (height + 1):1 + r * (height + 1) + height, 1 + c * (width + 1):1 + c * (width + 1) + width] = \
            images[i, 0]
    return tiles


def samples(path: Path, panels: Sequence[tuple[str, np.ndarray]], means: np.ndarray | None) -> None:
    """One panel per generator: a scatter against the true modes (`means`, 2-D data) or an image grid."""
    if not panels:
        raise NoData("no generator could be sampled")
    columns = min(len(panels), 4)
    rows = -(-len(panels) // columns)
    figure, grid = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.4 * rows), squeeze=False,
                                layout="constrained")
    for axes in grid.ravel()[len(panels):]:
        axes.axis("off")
    for axes, (title, values) in zip(grid.ravel(), panels):
        if means is not None:
            axes.scatter(values[:, 0], values[:, 1], s=2, alpha=0.4)
            axes.scatter(means[:, 0], means[:, 1], s=30, c="red", marker="x")
            span = np.abs(means).max() * 1.6
            axes.set_xlim(-span, span)
            axes.set_ylim(-span, span)
            axes.set_aspect("equal")
        else:
            axes.imshow(_mosaic(values, int(np.ceil(np.sqrt(min(len(values), 36))))), cmap="gray", vmin=-1, vmax=1)
            axes.axis("off")
        axes.set_title(title, fontsize=8)
    _save(figure, path)


def quality(path: Path, rows: Sequence[dict], colours: dict) -> None:
    """Quality metrics over time per player. `rows`: `t`, `player` and any of the `QUALITY_LABELS` fields."""
    fields = [f for f in QUALITY_LABELS if any(r.get(f) is not None for r in rows)]
    if not fields:
        raise NoData("no quality metric was recorded during the run (see [arena] metrics_every)")
    figure, grid = plt.subplots(1, len(fields), figsize=(4.2 * len(fields), 3.4), squeeze=False, layout="constrained")
    for axes, field in zip(grid[0], fields):
        for player in sorted({r["player"] for r in rows}):
            mine = sorted((r["t"], r[field]) for r in rows if r["player"] == player and r.get(field) is not None)
            if mine:
                axes.plot(*zip(*mine), marker="o", ms=3, lw=1, color=colours[player], label=player)
        axes.set_title(QUALITY_LABELS[field])
        axes.set_xlabel("seconds since start")
    grid[0][0].legend(fontsize=7)
    _save(figure, path)


def hacking(path: Path, rows: Sequence[dict], colours: dict) -> None:
    """The seed's hacking over time: per individual, the share of its generator's fakes its own discriminator
    took for real minus the share opposing ones did (`gap`; above 0, its own is the easier to fool). `rows`:
    `t`, `player`, `gap`."""
    if not rows:
        raise NoData("no individual recorded its hacking measure (no duel yet, or a run from before it existed)")
    figure, axes = plt.subplots(figsize=(7.5, 3.4), layout="constrained")
    for player in sorted({r["player"] for r in rows}):
        mine = sorted((r["t"], r["gap"]) for r in rows if r["player"] == player)
        axes.plot(*zip(*mine), marker="o", ms=2, lw=0.8, color=colours[player], label=player)
    axes.axhline(0.0, color="grey", ls="--", lw=0.8)
    axes.set_xlabel("seconds since start")
    axes.set_ylabel("fooled own − fooled opposing")
    axes.legend(fontsize=7)
    _save(figure, path)


def effects(path: Path, changes: dict[str, list[float]], table: dict[str, dict] | None = None,
            control: str = "clone") -> None:
    """Beneficial versus nefarious mutations: per operator, the distribution of its children's fitness
    changes (box: quartiles, whiskers: 10 % and 90 %, points beyond), the clone control at the bottom
    and its median as a dashed line; at the right, from `table` (`genome.effects.operator_effects`),
    the difference of the mean from the control's with its 95 % interval and the Mann–Whitney p."""
    changes = {name: values for name, values in changes.items() if values}
    if not changes:
        raise NoData("no child made by an operator has a fitness change yet")
    names = sorted((n for n in changes if n != control), key=lambda n: len(changes[n])) + \
        ([control] if control in changes else [])
    names.reverse()  # the control lowest, the most frequent operators just above it
    figure, axes = plt.subplots(figsize=(9, 0.38 * len(names) + 1.6))
    boxes = axes.boxplot([changes[n] for n in names], orientation="horizontal", whis=(10, 90), widths=0.6,
                         patch_artist=True, flierprops={"markersize": 2}, medianprops={"color": "k"})
    for name, box in zip(names, boxes["boxes"]):
        box.set_facecolor("#cccccc" if name == control else "#8fb3d9")
    if control in changes:
        axes.axvline(np.median(changes[control]), color="0.3", ls="--", lw=1, label="clone control median")
        axes.legend(fontsize=7, loc="lower left")
    axes.axvline(0, color="k", lw=0.6)
    low, high = axes.get_xlim()
    for y, name in enumerate(names, 1):
        versus = (table or {}).get(name, {}).get("vs_control")
        text = f"n={len(changes[name])}"
        if versus:
            interval = f" [{versus['low']:+.3f}, {versus['high']:+.3f}]" if versus["low"] is not None else ""
            text += f"  Δ {versus['difference']:+.3f}{interval}  p={versus['p']:.2g}"
        axes.text(high + (high - low) * 0.02, y, text, va="center", fontsize=7)
    axes.set_yticks(range(1, len(names) + 1), names)
    axes.set_xlabel("fitness change of a child from its parents' mean")
    axes.set_title("beneficial versus nefarious mutations, against the clone control")
    _save(figure, path)


def epidemic(path: Path, strains: dict[str, list[dict]], coinfected: Sequence[dict], curve: Sequence[dict],
             labels: dict[str, tuple], exposed: int) -> None:
    """Three panels: each founder strain's prevalence among the live generators and discriminators, the
    co-infected share of the live population, and the cumulative (discriminator, strain) pairs infected,
    immune and re-infected. `strains`: {side: change-point rows}; `coinfected`: `t`, `coinfected`;
    `curve`: `t` and the counts; `exposed`: how many pairs met at all."""
    if not exposed:
        raise NoData("no discriminator met a generator with a recorded lineage (no match is recorded)")
    figure, grid = plt.subplots(1, 3, figsize=(15, 3.8), layout="constrained")
    end = max([r["t"] for r in curve] + [r["t"] for rows in strains.values() for r in rows] +
              [r["t"] for r in coinfected])
    for (side, rows), style in zip(strains.items(), ("-", ":")):
        for lineage, values in _steps(rows, end).items():
            label, colour = labels.get(lineage, (lineage, None))
            grid[0].step(*zip(*values), where="post", color=colour, ls=style, label=f"{label} ({side}s)")
    grid[0].set(title="prevalence of each founder's strain", ylabel="share of live population", ylim=(-0.05, 1.05))
    grid[1].step([r["t"] for r in coinfected], [r["coinfected"] for r in coinfected], where="post", color="k")
    grid[1].set(title="co-infected: carrying two founders or more", ylabel="share of live population",
                ylim=(-0.05, 1.05))
    for key, colour in (("infected", "#c44e52"), ("immune", "#55a868"), ("reinfected", "#8172b2")):
        grid[2].step([r["t"] for r in curve], [r[key] for r in curve], where="post", color=colour, label=key)
    grid[2].set(title="discriminator–strain pairs", ylabel="pairs (cumulative)")
    for axes in grid:
        axes.set_xlabel("seconds since start")
    for axes in (grid[0], grid[2]):
        axes.legend(fontsize=6)
    _save(figure, path)


def losses(path: Path, rows: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], colours: dict) -> None:
    """Training losses over time, a moving mean per player. `rows`: {player: (t, g_loss, d_loss)}."""
    rows = {p: r for p, r in rows.items() if len(r[0])}
    if not rows:
        raise NoData("no trace row is written yet")
    figure, grid = plt.subplots(1, 2, figsize=(12, 3.4), layout="constrained")
    for player, (t, g, d) in sorted(rows.items()):
        window = max(1, len(t) // 100)
        kernel = np.ones(window) / window
        for axes, values in zip(grid, (g, d)):
            axes.plot(t[window - 1:], np.convolve(values, kernel, "valid"), color=colours[player], lw=1, label=player)
    for axes, title in zip(grid, ("generator loss", "discriminator loss")):
        axes.set_title(f"{title} (training steps, moving mean)")
        axes.set_xlabel("seconds since start")
    grid[0].legend(fontsize=7)
    _save(figure, path)
