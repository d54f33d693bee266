"""The live view of a run: a table in a terminal, a plain progress line elsewhere (logs, CI)."""

from __future__ import annotations

import time

import ray
from rich.console import Console
from rich.live import Live
from rich.table import Table


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


class LiveView:
    def __init__(self, console: Console, registry, cfg, started: float, log_every: float = 10.0):
        self.console, self.registry, self.cfg, self.started = console, registry, cfg, started
        self.log_every, self._last_log = log_every, started
        self._live = Live(console=console, auto_refresh=False) if console.is_terminal else None

    def __enter__(self) -> LiveView:
        if self._live:
            self._live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._live:
            self.refresh()
            self._live.__exit__(*exc)

    def _players(self) -> dict[str, dict]:
        try:
            return ray.get(self.registry.players.remote(), timeout=5)
        except ray.exceptions.GetTimeoutError:
            return {}

    def refresh(self) -> None:
        now = time.time()
        if not self._live and now - self._last_log < self.log_every:
            return
        players = self._players()
        elapsed = now - self.started
        if self._live:
            self._live.update(self._table(players, elapsed), refresh=True)
        else:
            self._last_log = now
            parts = [f"{name} g{s['generation']} f{_fmt(s['fitness'], '.2f')}" for name, s in sorted(
                players.items(), key=lambda kv: int(kv[0].split("-")[1]))]
            self.console.print(f"[{elapsed:5.0f}s] " + (", ".join(parts) or "no player has finished a loop yet")
                               + self._outage(players))

    @staticmethod
    def _outage(players: dict[str, dict]) -> str:
        buffered = sum(s.get("buffered", 0) for s in players.values())
        return f" (store unreachable: {buffered} writes buffered, training goes on)" if buffered else ""

    def _table(self, players: dict[str, dict], elapsed: float) -> Table:
        table = Table(title=f"{self.cfg.dataset}: {elapsed:.0f} of {self.cfg.budget_seconds:g} s",
                      caption=self._outage(players).strip(" ()") or None)
        for column in ("player", "generation", "steps", "fitness", "s/loop", "phase"):
            table.add_column(column, justify="left" if column in ("player", "phase") else "right")
        for i in range(self.cfg.players):
            s = players.get(f"player-{i}", {})
            table.add_row(f"player-{i}", _fmt(s.get("generation"), "d"), _fmt(s.get("steps"), "d"),
                          _fmt(s.get("fitness"), ".3f"), _fmt(s.get("loop_seconds"), ".2f"),
                          s.get("phase", "starting"))
        return table
