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
                 "fight": "#c44e52", "measure": "#8172b2", "heartbeat": "#cccccc", "breed": "#55a868",
                 "wait": "#dd8452"}
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


def elimination(path: Path, curves: dict[str, list[dict]], highlight: dict[str, str]) -> None:
    """Elimination curves: the share of the discriminators met that a generator still fools, as they
    accumulate; every generator in grey, the median in black, `highlight` ({generator: label}) in colour."""
    curves = {g: c for g, c in curves.items() if c}
    if not curves:
        raise NoData("no generator has met a discriminator yet (no match is recorded)")
    figure, axes = plt.subplots(figsize=(7, 4))
    for curve in curves.values():
        axes.plot([c["met"] for c in curve], [c["fooled_share"] for c in curve], color="0.8", lw=0.7)
    by_met: dict[int, list[float]] = defaultdict(list)
    for curve in curves.values():
        last: dict[int, float] = {}
        for c in curve:
            last[c["met"]] = c["fooled_share"]
        for met, share in last.items():
            by_met[met].append(share)
    mets = sorted(by_met)
    axes.plot(mets, [np.median(by_met[m]) for m in mets], color="k", lw=2, label="median of all generators")
    for generator, label in highlight.items():
        colour = plt.get_cmap("Set1")(list(highlight).index(generator) % 9)
        if generator in curves:
            curve = curves[generator]
            axes.plot([c["met"] for c in curve], [c["fooled_share"] for c in curve], color=colour, lw=1.5,
                      marker=".", label=label)
    _save_shares(figure, axes, path, "opposing discriminators met", "share still fooled", "elimination curves")


def _save_shares(figure, axes, path: Path, xlabel: str, ylabel: str, title: str) -> None:
    """Label a plot of shares (0 to 1, with a margin), add its legend and save it."""
    axes.set(xlabel=xlabel, ylabel=ylabel, ylim=(-0.05, 1.05), title=title)
    axes.legend(fontsize=7)
    _save(figure, path)


def prevalence(path: Path, rows: Sequence[dict], labels: dict[str, tuple]) -> None:
    """Each founder's share of the live population over time. `rows`: `t`, `founder`, `prevalence`;
    `labels`: {founder: (label, colour)}."""
    if not rows:
        raise NoData("no individual is recorded")
    figure, axes = plt.subplots(figsize=(7, 4))
    by_founder: dict[str, list] = defaultdict(list)
    for row in rows:
        by_founder[row["founder"]].append((row["t"], row["prevalence"]))
    for founder, values in sorted(by_founder.items()):
        label, colour = labels.get(founder, (founder, None))
        axes.plot(*zip(*values), drawstyle="steps-post", color=colour, label=label)
    _save_shares(figure, axes, path, "seconds since start", "share of live population descended",
                 "lineage prevalence of each founder")


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


def effects(path: Path, table: dict[str, dict]) -> None:
    """Beneficial versus nefarious mutations: per operator, children it helped (right) and hurt (left),
    with its mean fitness change."""
    if not table:
        raise NoData("no child made by an operator has a fitness change yet")
    names = sorted(table, key=lambda n: table[n]["count"])
    y = np.arange(len(names))
    figure, axes = plt.subplots(figsize=(8, 0.35 * len(names) + 1.4))
    axes.barh(y, [table[n]["helped"] for n in names], color="#55a868", label="helped (fitness up)")
    axes.barh(y, [-table[n]["hurt"] for n in names], color="#c44e52", label="hurt (fitness down)")
    axes.axvline(0, color="k", lw=0.8)
    reach = max(max(table[n]["helped"], table[n]["hurt"]) for n in names)
    for i, name in enumerate(names):
        axes.text(reach * 1.05, i, f"{table[name]['mean_change']:+.3f}", va="center", fontsize=7)
    axes.set_xlim(-reach * 1.1, reach * 1.3)
    axes.set_yticks(y, names)
    axes.set_xlabel("children (mean fitness change at the right)")
    axes.legend(fontsize=7, loc="lower right")
    axes.set_title("beneficial versus nefarious mutations")
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
