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
killed player never keeps a core from the others, and there is nothing to clean up after a crash. A player that finds
every core taken sleeps on the run's bell (a named pipe) until a core is given up: a sleeper on one slot's lock would
not see another slot freed, and that core would stand idle until the next turn ended: on ring8 under PBT, 4 players on
2 cores, the cores stood idle 3.5 % of the time with sleepers on one slot's lock and 1.6 % with the bell (BENCHMARKS.md
throughput rows 2026-12-07T11:17:04 and 14:06:29, the notes' CPU-seconds).
"""

from __future__ import annotations

import fcntl
import os
import random
import resource
import select
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


def preempted() -> int | None:
    """Times the OS has taken the calling thread off its core while it could run (its involuntary context
    switches), or None where the OS does not count them per thread (`RUSAGE_THREAD`: Linux). Turns are meant
    to keep this low: each such switch costs the thread's next slice its caches."""
    who = getattr(resource, "RUSAGE_THREAD", None)
    return None if who is None else resource.getrusage(who).ru_nivcsw


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
    slot, in a random order; when all are taken it sleeps in the kernel on the run's bell, which every player
    that gives a core up rings (a byte into a named pipe), and tries again when it rings: a waiter that polled
    would wake every millisecond and preempt the players at work, the very switching that turns avoid (a polling
    version trained 13 % fewer steps than none in the run above), and one asleep on a single slot's lock (the
    version before the bell) missed a core given up at the end of another's phase. One that has just given a
    core up stays off it for `HANDOVER_SECONDS`, then tries the other slots before its own, so a waiter takes it
    and turns go round. Rings nobody was waiting for are drained by the next waiter before it sleeps (one rung
    again when it took a core, in case another was for a waiter asleep by then); a ring lost (its ringer killed
    between giving the core and ringing) costs at most `patience` seconds.

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
        bell = os.path.join(slots, "bell")
        try:
            try:
                os.mkfifo(bell, 0o600)
            except FileExistsError:
                pass
            # Read and write ends at once: opening a named pipe so never blocks, and it never reports an end of file.
            self.bell = os.open(bell, os.O_RDWR | os.O_NONBLOCK)
        except OSError:
            for slot in self.slots:
                os.close(slot)
            raise
        self.listening = select.poll()
        self.listening.register(self.bell, select.POLLIN)
        self.turn_seconds = turn_seconds
        self.patience = max(2 * turn_seconds, 0.1)  # the longest sleep between two looks at the slots
        self.held: int | None = None
        self.since = 0.0
        self.waited = 0.0  # seconds spent waiting for a core, over this object's life
        self.turns = 0
        self.wakes = 0  # times woken from the bell (or its patience) to look at the slots again

    def _try(self, order: list[int]) -> int | None:
        for slot in order:
            try:
                fcntl.flock(slot, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return slot
            except BlockingIOError:
                continue
        return None

    def _take(self, last: int | None = None) -> None:
        """A core: a free slot (the one given up `last` tried last), else a sleep on the bell until one is given up."""
        started = time.perf_counter()
        order = random.sample(self.slots, len(self.slots))
        order.sort(key=lambda slot: slot == last)
        slot = self._try(order)
        if slot is None:
            stale = self._drain()  # rings nobody waited for: each would wake this waiter for nothing
            slot = self._try(order)
            if slot is not None and stale > 1:  # one of them may have been for a waiter asleep now: ring it again
                self._ring()
        while slot is None:
            self.listening.poll(1000 * self.patience)
            self.wakes += 1
            # One ring claimed: a second core given up meanwhile keeps its ring for another waiter.
            self._drain(1)
            slot = self._try(random.sample(self.slots, len(self.slots)))
        self.held, self.since = slot, time.perf_counter()
        self.waited += self.since - started
        self.turns += 1

    def _drain(self, rings: int | None = None) -> int:
        """Read up to `rings` rings off the bell, every one pending by default; returns how many."""
        read = 0
        try:
            while rings is None or read < rings:
                read += len(os.read(self.bell, 65_536 if rings is None else rings - read))
        except BlockingIOError:
            pass
        return read

    def _ring(self) -> None:
        try:
            os.write(self.bell, b".")
        except BlockingIOError:  # the pipe full of rings nobody waited for: a waiter is woken anyway
            pass

    def _give(self) -> None:
        if self.held is not None:
            fcntl.flock(self.held, fcntl.LOCK_UN)
            self.held = None
            self._ring()

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
        if self.bell >= 0:  # closed once: a second close of its number could close another file's
            os.close(self.bell)
            self.bell = -1
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
