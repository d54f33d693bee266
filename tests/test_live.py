"""The live view of a run with 32 players, from heartbeats made up here: no Ray, no run."""

from __future__ import annotations

import io
import random
import re
from types import SimpleNamespace

import pytest
from rich.console import Console

from experiments import cli
from experiments import run as run_module
from experiments.live import LiveView, LoopRates, population_table, progress_line

SIZE = 32
CFG = SimpleNamespace(players=SIZE, dataset="ring8", budget_seconds=300.0)


def heartbeats(seed: int = 0, looped: int = 28, buffered: int = 0) -> dict[str, dict]:
    """`looped` of the 32 players have finished a loop (the others have sent no heartbeat); every fifth
    of those has no fitness yet."""
    rng = random.Random(seed)
    players = {}
    for i in rng.sample(range(SIZE), looped):
        players[f"player-{i}"] = {"generation": rng.randint(3, 9), "steps": rng.randint(100, 9000),
                                  "fitness": None if i % 5 == 0 else round(rng.random(), 4), "phase": "fight",
                                  "loop_seconds": rng.uniform(1, 10), "buffered": 0, "at": 1000.0}
    if buffered:
        next(iter(players.values()))["buffered"] = buffered
    return players


def rendered(renderable, height: int, width: int = 100) -> list[str]:
    console = Console(width=width, height=height, record=True, file=io.StringIO(), force_terminal=True)
    console.print(renderable)
    return console.export_text().rstrip("\n").split("\n")


def names(lines: list[str]) -> list[str]:
    return [m.group(1) for line in lines if (m := re.match(r"│ (player-\d+) ", line))]


def expected_order(players: dict[str, dict]) -> list[str]:
    fit = sorted((n for n, s in players.items() if s["fitness"] is not None),
                 key=lambda n: (-players[n]["fitness"], int(n.split("-")[1])))
    unfit = sorted((n for n, s in players.items() if s["fitness"] is None), key=lambda n: int(n.split("-")[1]))
    waiting = sorted((f"player-{i}" for i in range(SIZE) if f"player-{i}" not in players),
                     key=lambda n: int(n.split("-")[1]))
    return fit + unfit + waiting


@pytest.mark.parametrize("height", [8, 12, 20, 30, 36, 37, 38, 50])
@pytest.mark.parametrize("buffered", [0, 1234])
def test_the_table_of_32_players_fits_the_height_fittest_first(height, buffered):
    players = heartbeats(buffered=buffered)
    rates = {name: 2.5 for name in players}
    lines = rendered(population_table(players, 120, rates, dataset="ring8", budget=300, size=SIZE, height=height),
                     height)
    assert len(lines) <= height, "\n".join(lines)
    shown = names(lines)
    assert shown == expected_order(players)[:len(shown)]
    assert len(shown) >= min(SIZE, height - 8)  # the room is used: title, edges, header and two notes at most
    more = [line for line in lines if "more player" in line]
    if len(shown) < SIZE:
        assert len(more) == 1 and f"… {SIZE - len(shown)} more players (" in more[0], lines
    else:
        assert not more
    assert ("store unreachable: 1234 writes buffered" in "\n".join(lines)) == bool(buffered)
    assert "70.0 loops/min" in lines[0]  # 28 players × 2.5


def test_the_summary_of_the_hidden_players_is_theirs():
    players = {f"player-{i}": {"generation": i, "fitness": i / 100, "at": 1.0} for i in range(SIZE)}
    lines = rendered(population_table(players, 5, {}, dataset="ring8", budget=60, size=SIZE, height=16), 16)
    assert names(lines) == [f"player-{i}" for i in range(31, 21, -1)]  # 10 rows: 16 - 5 lines - 1 note
    assert "… 22 more players (mean generation 10.5, best fitness 0.21)" in lines[-1]
    assert "- loops/min" in lines[0]


def test_loops_per_minute_are_counted_over_the_last_minute_from_generations():
    rates = LoopRates(since=0.0, window=60.0)
    fast = slow = 0
    for now in range(1, 181):
        if now % 2 == 0:
            fast += 1
        if now % 6 == 0:
            slow += 1
        players = {"player-0": {"generation": fast, "at": float(now - now % 2)},
                   "player-1": {"generation": slow, "at": float(now - now % 6)}}
        if now % 10 == 0:  # looked at every 10 s only: the generations tell the loops in between
            rates.observe(players, float(now))
    per_minute = rates.per_minute(180.0)
    assert per_minute["player-0"] == pytest.approx(30, abs=3) and per_minute["player-1"] == pytest.approx(10, abs=1)
    assert "[  180s] 2 players, " in progress_line(players, 180, per_minute, 2)
    rates.observe({**players, "player-0": {**players["player-0"], "phase": "done", "at": 200.0}}, 200.0)
    assert rates.per_minute(300.0) == {"player-0": 0.0, "player-1": 0.0}  # nothing in the last minute


def test_a_young_run_is_not_diluted_by_the_whole_window():
    rates = LoopRates(since=100.0, window=60.0)
    for at in (105.0, 110.0, 115.0, 120.0):
        rates.observe({"player-0": {"generation": int(at - 105) // 5, "at": at}}, at)
    assert rates.per_minute(120.0)["player-0"] == pytest.approx(12.0)  # 4 loops in 20 s


def test_the_progress_line_of_32_players_is_one_readable_line():
    players = heartbeats(looped=32)
    players["player-7"]["fitness"] = 0.999
    line = progress_line(players, 120, {name: 1.25 for name in players}, SIZE)
    assert "\n" not in line and len(line) < 120, line
    assert line == "[  120s] 32 players, 40.0 loops/min, generations 3–9, best fitness 1.00 (player-7)"
    partial = progress_line(heartbeats(looped=20, buffered=7), 30, {}, SIZE)
    assert partial.startswith("[   30s] 32 players (20 with a loop), - loops/min, generations ")
    assert partial.endswith("; store unreachable: 7 writes buffered, training goes on")
    assert progress_line({}, 3, {}, SIZE) == "[    3s] 32 players, no loop finished yet"


class Heartbeats:
    """Stands in for the registry: the statuses it is given, one per call; None for no answer."""

    def __init__(self, *answers):
        self.answers = list(answers)

    def __call__(self):
        return self.answers.pop(0)


def test_the_log_mode_writes_one_plain_line_every_interval_and_keeps_the_last_answer():
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=60)
    players = heartbeats(looped=32)
    answers = Heartbeats({}, players, players, None, players)
    view = LiveView(console, answers, CFG, started=0.0, log_every=10.0)
    assert view.mode == "log"
    with view:
        view.refresh(now=1.0)  # not due, asked: no player seen yet
        view.refresh(now=5.0)  # not due, asked: every player seen now
        view.refresh(now=8.0)  # not due: the registry is not asked
        view.refresh(now=11.0)
        view.refresh(now=15.0)
        view.refresh(now=22.0)  # no answer: the last heartbeats stand
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and all(line.startswith(f"[   {at}s] 32 players, ") for line, at in zip(lines, (11, 22))), \
        lines  # not wrapped at 60 columns
    # Asked until all were seen, then when due, not at every look; at the end once more, for an outage the lines
    # missed (none here, so no line).
    assert answers.answers == []
    assert "\x1b" not in out.getvalue()


def test_an_outage_that_began_and_ended_between_two_lines_is_shown_once():
    out = io.StringIO()
    calm = {"generation": 3, "fitness": 0.5, "at": 1.0, "buffered": 0, "outages": 0}

    def look(at, zero=None, one=None):  # both players' heartbeats at `at`, player-0's and player-1's changes
        return {"player-0": {**calm, "at": at, **(zero or {})}, "player-1": {**calm, "at": at, **(one or {})}}

    looks = [(1.0, look(1.0)), (11.0, look(10.0)), (21.0, look(20.0, {"buffered": 40, "outages": 1})),
             (31.0, look(30.0, {"outages": 1})),  # the outage seen by the line before
             (41.0, look(40.0, {"outages": 2})),  # one that began and ended between two lines
             (51.0, look(50.0, {"outages": 0}, {"outages": 1}))]  # player-0 restarted, player-1's first outage
    cfg = SimpleNamespace(players=2, dataset="ring8", budget_seconds=60)
    answers = Heartbeats(*(status for _, status in looks), looks[-1][1])  # at the end nothing new: no line
    with LiveView(Console(file=out, force_terminal=False, width=200), answers, cfg, started=0.0) as view:
        for now, _ in looks:
            view.refresh(now=now)
    notes = [line.partition("; ")[2] for line in out.getvalue().splitlines()]
    passed = "store unreachable since the last line, answers again: buffered writes sent"
    assert notes == ["", "store unreachable: 40 writes buffered, training goes on", "", passed, passed], notes


def test_a_run_that_stops_after_an_outage_its_lines_missed_ends_with_a_line_that_shows_it():
    """A store that went down and came back after the last line, and a stop before the next: the end says so
    (the faults test stops its run as soon as the records have come back)."""
    calm = {"generation": 3, "fitness": 0.5, "at": 1.0, "buffered": 0, "outages": 0}
    cfg = SimpleNamespace(players=1, dataset="ring8", budget_seconds=60)
    for last, shown in (({**calm, "outages": 1}, True), (calm, False)):
        out = io.StringIO()
        answers = Heartbeats({"player-0": calm}, {"player-0": last})
        with LiveView(Console(file=out, force_terminal=False, width=200), answers, cfg, started=0.0) as view:
            view.refresh(now=11.0)
        lines = out.getvalue().splitlines()
        assert len(lines) == 1 + shown, lines
        assert lines[-1].endswith("store unreachable since the last line, answers again: buffered writes sent") == shown


def test_the_table_mode_draws_the_table_and_an_unknown_mode_is_refused():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, height=20)
    with LiveView(console, Heartbeats(heartbeats(), heartbeats()), CFG, started=0.0) as view:
        assert view.mode == "table"
        view.refresh(now=30.0)
    assert "player-" in out.getvalue() and "more players" in out.getvalue()
    with pytest.raises(ValueError, match="'fancy'"):
        LiveView(console, Heartbeats(), CFG, started=0.0, mode="fancy")


@pytest.mark.parametrize("flags, terminal", [(["--quiet"], False), ([], None)])
def test_quiet_gives_the_run_a_plain_console(monkeypatch, flags, terminal):
    seen = []
    monkeypatch.setattr(run_module, "launch", lambda cfg, console, resume=None: seen.append(console) or 0)
    assert cli.run_app(run_module.app, flags) == 0
    console = seen[-1]
    if terminal is False:
        assert not console.is_terminal and console.no_color
        assert LiveView(console, Heartbeats(), CFG, started=0.0).mode == "log"
    else:
        assert console._force_terminal is None  # left to the terminal
