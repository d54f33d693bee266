"""The live view of a run: a table redrawn in a terminal, or a summary line now and then (logs, CI, --quiet).

What is shown is computed by pure functions of the players' heartbeats (`registry.players()`: player ->
generation, steps, fitness, phase, loop_seconds, buffered, outages, at), the time elapsed and the loop rates, so
it tests without Ray; `LiveView` fetches the heartbeats and hands the result to one of two outputs.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Callable

import ray
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

MODES = ("table", "log")
RATE_WINDOW = 60.0  # seconds of heartbeats the loops per minute are counted over
TABLE_CHROME = 5  # lines of a table besides its rows and caption: title, top edge, header, rule, bottom edge

Status = dict[str, dict]


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _index(name: str) -> int:
    tail = name.rpartition("-")[2]
    return int(tail) if tail.isdigit() else 1 << 30


class LoopRates:
    """Loops per minute of each player over the last `window` seconds, from its heartbeats: one comes
    after every finished loop, and when several loops pass between two looks the generation tells how
    many. Counting starts at `since`, so a rate is never diluted by time nobody was watching."""

    def __init__(self, since: float, window: float = RATE_WINDOW):
        self.since, self.window = since, window
        self._last: dict[str, tuple[float, int]] = {}  # player -> (at, generation) of its latest heartbeat seen
        self._loops: dict[str, deque[tuple[float, int]]] = {}  # player -> (at, loops finished) within the window

    def observe(self, players: Status, now: float) -> None:
        for name, status in players.items():
            at, generation = status.get("at"), status.get("generation")
            if at is None or generation is None:
                continue
            last = self._last.get(name)
            if last is not None and at <= last[0]:
                continue  # the heartbeat seen already
            # The first heartbeat seen is one loop; a later one counts the generations since the one before
            # (none for the last heartbeat of a player that is done; a restarted player may go back).
            loops = 1 if last is None else max(generation - last[1], 0)
            self._last[name] = (at, generation)
            if loops:
                self._loops.setdefault(name, deque()).append((at, loops))
        for recent in self._loops.values():
            while recent and recent[0][0] <= now - self.window:
                recent.popleft()

    def seen(self) -> int:
        """Players whose heartbeat has been seen: loops are counted from each one's first."""
        return len(self._last)

    def per_minute(self, now: float) -> dict[str, float]:
        """Each player seen so far -> its loops per minute over the window (0 for one that stopped)."""
        span = min(self.window, now - self.since)
        if span <= 0:
            return {}
        return {name: 60 * sum(n for at, n in self._loops.get(name, ()) if at > now - self.window) / span
                for name in self._last}


def ranked(players: Status, size: int) -> list[tuple[str, dict]]:
    """Every player, `player-0` to `player-<size - 1>` and any other with a heartbeat: the fittest first,
    then those with a loop but no fitness yet, then those with no loop yet; ties by player number."""
    everyone = {f"player-{i}": {} for i in range(size)} | players

    def key(item: tuple[str, dict]):
        name, status = item
        looped, fitness = status.get("generation") is not None, status.get("fitness")
        return (not looped, fitness is None, -(fitness or 0.0), _index(name), name)

    return sorted(everyone.items(), key=key)


def outage_counts(players: Status) -> dict[str, int]:
    """Each player's count of the store outages it has met (a restarted player counts from 0 again)."""
    return {name: status.get("outages") or 0 for name, status in players.items()}


def outage_note(players: Status, passed: bool = False) -> str:
    """The store's state: writes buffered now, or with `passed`, an outage that began and ended since the
    last line (a log line every 10 s would otherwise miss one shorter than that)."""
    buffered = sum(status.get("buffered") or 0 for status in players.values())
    if buffered:
        return f"store unreachable: {buffered} writes buffered, training goes on"
    return "store unreachable since the last line, answers again: buffered writes sent" if passed else ""


def rest_summary(hidden: list[tuple[str, dict]]) -> str:
    """The line standing for the players a table has no room for."""
    looped = [s for _, s in hidden if s.get("generation") is not None]
    fitness = [s["fitness"] for s in looped if s.get("fitness") is not None]
    noun = "player" if len(hidden) == 1 else "players"
    if not looped:
        return f"… {len(hidden)} more {noun} (no loop finished yet)"
    mean = sum(s["generation"] for s in looped) / len(looped)
    best = f", best fitness {max(fitness):.2f}" if fitness else ""
    waiting = f", {len(hidden) - len(looped)} starting" if len(looped) < len(hidden) else ""
    return f"… {len(hidden)} more {noun} (mean generation {mean:.1f}{best}{waiting})"


def population_table(players: Status, elapsed: float, rates: dict[str, float], *, dataset: str, budget: float,
                     size: int, height: int) -> Table:
    """The players as a table of at most `height` lines, the fittest first; those it has no room for are
    summed up in one caption line. The title carries the population's loops per minute."""
    rows = ranked(players, size)
    notes = [note for note in [outage_note(players)] if note]
    room = max(0, height - TABLE_CHROME - len(notes))
    if len(rows) > room:
        room = max(0, room - 1)
        notes.insert(0, rest_summary(rows[room:]))
        rows = rows[:room]
    rate = f"{sum(rates.values()):.1f} loops/min" if rates else "- loops/min"
    # Title and notes are cut rather than wrapped: a wrapped line would push the table past `height`.
    table = Table(title=Text(f"{dataset}: {elapsed:.0f} of {budget:g} s, {size} players, {rate}", no_wrap=True,
                             overflow="ellipsis"),
                  caption=Text("\n".join(notes), no_wrap=True, overflow="ellipsis") if notes else None,
                  caption_justify="left")
    for column in ("player", "generation", "steps", "fitness", "s/loop", "loops/min", "phase"):
        table.add_column(column, justify="left" if column in ("player", "phase") else "right", no_wrap=True,
                         overflow="ellipsis")
    for name, status in rows:
        table.add_row(name, _fmt(status.get("generation"), "d"), _fmt(status.get("steps"), "d"),
                      _fmt(status.get("fitness"), ".3f"), _fmt(status.get("loop_seconds"), ".2f"),
                      _fmt(rates.get(name), ".1f"), status.get("phase", "starting"))
    return table


def progress_line(players: Status, elapsed: float, rates: dict[str, float], size: int, passed: bool = False) -> str:
    """One line for the whole population, however large, e.g.
    `[  120s] 32 players, 41.2 loops/min, generations 3–9, best fitness 0.81 (player-7)`."""
    looped = {name: s for name, s in players.items() if s.get("generation") is not None}
    parts = [f"[{elapsed:5.0f}s] {size} players"]
    if not looped:
        parts.append("no loop finished yet")
    else:
        if len(looped) < size:
            parts[0] += f" ({len(looped)} with a loop)"
        parts.append(f"{sum(rates.values()):.1f} loops/min" if rates else "- loops/min")
        low, high = min(s["generation"] for s in looped.values()), max(s["generation"] for s in looped.values())
        parts.append(f"generation {low}" if low == high else f"generations {low}–{high}")
        best = [item for item in ranked(looped, 0) if item[1].get("fitness") is not None]
        parts.append(f"best fitness {best[0][1]['fitness']:.2f} ({best[0][0]})" if best else "no fitness yet")
    note = outage_note(players, passed)
    return ", ".join(parts) + (f"; {note}" if note else "")


class TableOutput:
    """A table redrawn in place, cut to the terminal's height."""

    def __init__(self, console: Console, cfg):
        self.console, self.cfg = console, cfg
        self.live = Live(console=console, auto_refresh=False)

    def __enter__(self) -> None:
        self.live.__enter__()

    def __exit__(self, *exc) -> None:
        self.live.__exit__(*exc)

    def due(self, now: float, final: bool) -> bool:
        return True  # redrawn at every look: a terminal's user watches it

    def show(self, players: Status, elapsed: float, rates: dict[str, float], now: float, final: bool) -> None:
        # One line less than the terminal, so the cursor below the table never scrolls it.
        self.live.update(population_table(players, elapsed, rates, dataset=self.cfg.dataset,
                                          budget=self.cfg.budget_seconds, size=self.cfg.players,
                                          height=self.console.size.height - 1), refresh=True)


class LogOutput:
    """A plain summary line every `every` seconds: no table, no colour, one line however many players."""

    def __init__(self, console: Console, cfg, every: float, started: float):
        self.console, self.cfg, self.every, self.last = console, cfg, every, started
        self.outages: dict[str, int] = {}  # each player's outage count as of the last line

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc) -> None:
        pass

    def due(self, now: float, final: bool) -> bool:
        return final or now - self.last >= self.every

    def show(self, players: Status, elapsed: float, rates: dict[str, float], now: float, final: bool) -> None:
        if not self.due(now, final):
            return
        # Per player: one restarted (its count back to 0) must not hide another's new outage.
        counts = outage_counts(players)
        passed = any(count > self.outages.get(name, 0) for name, count in counts.items())
        # At the end, a line only for the store: an outage since the last line, which a run stopped soon after it
        # would otherwise leave out of the log, or writes still buffered.
        if final and not outage_note(players, passed):
            return
        self.last, self.outages = now, counts
        self.console.print(progress_line(players, elapsed, rates, self.cfg.players, passed), markup=False,
                           highlight=False, soft_wrap=True)


def registry_status(registry) -> Callable[[], Status | None]:
    """The players' heartbeats from the run's registry actor; None when it does not answer in 5 s or has failed
    (it restarts; the run's end must not be lost to a look at its progress)."""

    def fetch() -> Status | None:
        try:
            return ray.get(registry.players.remote(), timeout=5)
        except ray.exceptions.RayError:  # GetTimeoutError among them
            return None

    return fetch


class LiveView:
    """A run's progress while it goes. `status` returns the players' heartbeats (None: no answer this
    time, the last ones stay shown). `mode` is "table" (a terminal) or "log" (a line every `log_every`
    seconds); by default a table exactly when the console is a terminal (`--quiet` gives a console that
    is not)."""

    def __init__(self, console: Console, status: Callable[[], Status | None], cfg, started: float,
                 log_every: float = 10.0, mode: str | None = None):
        self.console, self.status, self.cfg, self.started = console, status, cfg, started
        self.mode = mode or ("table" if console.is_terminal else "log")
        if self.mode == "table":
            self.output = TableOutput(console, cfg)
        elif self.mode == "log":
            self.output = LogOutput(console, cfg, log_every, started)
        else:
            raise ValueError(f"unknown live view mode {self.mode!r}; choose from {', '.join(MODES)}")
        self.rates = LoopRates(since=time.time())
        self.players: Status = {}

    def __enter__(self) -> LiveView:
        self.output.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.refresh(final=True)
        self.output.__exit__(*exc)

    def refresh(self, now: float | None = None, final: bool = False) -> None:
        """Fetch the heartbeats, count loops, and show them; in the log mode, once every player has been seen,
        only when a line is due: the registry is not asked every second for lines nobody sees (the heartbeats'
        generations count the loops between two looks)."""
        now = time.time() if now is None else now
        if not self.output.due(now, final) and self.rates.seen() >= self.cfg.players:
            return
        players = self.status()
        if players is not None:
            self.players = players
        self.rates.observe(self.players, now)
        self.output.show(self.players, now - self.started, self.rates.per_minute(now), now, final)
