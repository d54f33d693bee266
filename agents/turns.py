"""Turns on a node's cores for players that share them.

With more single-thread players than cores (4 players on 2 cores), the OS time-slices them every few milliseconds,
and each switch costs the next slice its caches. Taking turns (`turn_ms`, by default 500 ms on images and 50 on
vector data; its docstring in experiments/config.py cites the rows that chose them), at most one player per core,
gives that time back. Turns of 50 ms did so on grid25: two pairs of 90 s grid25 runs, 4 players on 2 CPUs, trained
28,283 and 28,014 steps with turns against 24,381 and 26,416 without, each player's CPU time per step 5-18 % lower
(`python -m experiments.run --players 4 --dataset grid25 --budget-seconds 90 --num-cpus 2 --turn-ms 50`, then
`--turn-ms 0`, alternately; waiters then slept on a fixed slot each). With the slot drawn at random, as now, one
such run trained 26,716 steps: between the two, not separated from either.

A turn is an exclusive `flock` on one of the node's slot files: the OS releases it when its holder dies, so a
killed player never keeps a core from the others, and there is nothing to clean up after a crash.
"""

from __future__ import annotations

import fcntl
import os
import random
import shutil
import tempfile
import time

from genome.genes import is_image

HANDOVER_SECONDS = 0.0005  # how long a player that gave a core up stays off it: the one waiting wakes first
BY_THE_DATA = -1.0  # a `turn_ms` that leaves a turn's length to the data (`turn_seconds`)
IMAGE_TURN_MS, VECTOR_TURN_MS = 500.0, 50.0  # experiments/config.py `turn_ms` cites the rows behind each


def turn_seconds(turn_ms: float, data_shape: tuple[int, ...]) -> float:
    """A turn's length in seconds: `turn_ms`, or by the data when it is `BY_THE_DATA` (a turn of many steps of
    an image GAN, of a few tens of milliseconds of a vector one's)."""
    if turn_ms == BY_THE_DATA:
        turn_ms = IMAGE_TURN_MS if is_image(data_shape) else VECTOR_TURN_MS
    return turn_ms / 1000


def folder(run_id: str, directory: str | None = None) -> str:
    """Where a run's slot files live on this node: its temporary folder, never a shared filesystem, where
    `flock` may not hold across machines."""
    return os.path.join(directory or tempfile.gettempdir(), f"arena-turns-{os.getuid()}-{run_id}")


def remove(run_id: str, directory: str | None = None) -> None:
    """The run's slot files on this node, once its players are done (a player still holding one keeps its
    lock on the removed file; nobody new opens it)."""
    shutil.rmtree(folder(run_id, directory), ignore_errors=True)


class CoreTurns:
    """Turns of `turn_seconds` on `cores` slots shared by the players of one run on one node.

    `with turns:` holds a core for a phase of work; inside it, `turns.between()` at a step boundary gives the
    core up once the turn has lasted its time, and waits for the next. A player asking for a core tries every
    slot, in a random order, then sleeps in the kernel on one of them, drawn at random, until it is given up:
    a waiter that polled would wake every millisecond and preempt the players at work, the very switching
    that turns avoid (a polling version trained 13 % fewer steps than none in the run above); a fixed slot per
    player would give a player alone on its slot a whole core while others share one (3 players on 2 cores).
    One that has just given a core up stays off it for `HANDOVER_SECONDS`, then tries the other slots before
    its own, so the player sleeping on it takes it and turns go round.

    The slots are per run and per user on a node: two runs on one node each count on all of its cores.
    """

    def __init__(self, run_id: str, cores: int, turn_seconds: float, directory: str | None = None):
        if cores < 1:
            raise ValueError(f"turns need at least one core; got {cores!r}")
        if not turn_seconds > 0:
            raise ValueError(f"a turn must last a positive time; got {turn_seconds!r} s")
        slots = folder(run_id, directory)
        os.makedirs(slots, exist_ok=True)
        self.slots = [os.open(os.path.join(slots, f"core-{i}.lock"), os.O_CREAT | os.O_RDWR, 0o600)
                      for i in range(cores)]
        self.turn_seconds = turn_seconds
        self.held: int | None = None
        self.since = 0.0
        self.waited = 0.0  # seconds spent waiting for a core, over this object's life
        self.turns = 0

    def _take(self, last: int | None = None) -> None:
        """A core: a free slot (the one given up `last` tried last), else a sleep on a random one until it is free."""
        started = time.perf_counter()
        order = random.sample(self.slots, len(self.slots))
        order.sort(key=lambda slot: slot == last)
        for slot in order:
            try:
                fcntl.flock(slot, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                continue
        else:
            slot = random.choice(self.slots)
            fcntl.flock(slot, fcntl.LOCK_EX)
        self.held, self.since = slot, time.perf_counter()
        self.waited += self.since - started
        self.turns += 1

    def _give(self) -> None:
        if self.held is not None:
            fcntl.flock(self.held, fcntl.LOCK_UN)
            self.held = None

    def __enter__(self) -> CoreTurns:
        if self.held is not None:
            raise RuntimeError("a core is already held: turns do not nest")
        self._take()
        return self

    def __exit__(self, *exc) -> None:
        self._give()

    def between(self) -> None:
        """At a step boundary inside `with`: give the core up if the turn is over, then wait for one."""
        if self.held is not None and time.perf_counter() - self.since >= self.turn_seconds:
            given = self.held
            self._give()
            time.sleep(HANDOVER_SECONDS)
            self._take(last=given)

    def close(self) -> None:
        self._give()
        for slot in self.slots:
            os.close(slot)
        self.slots = []


class OwnCore:
    """What a player with a core of its own holds instead of turns: nothing to wait for, nothing counted."""

    turns, waited = 0, 0.0

    def __enter__(self) -> OwnCore:
        return self

    def __exit__(self, *exc) -> None:
        pass

    def between(self) -> None:
        pass

    def close(self) -> None:
        pass
