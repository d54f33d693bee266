"""What a player tells about itself while it runs: the timeline of each loop (for the report and the
throughput benchmark) and gauges in the Ray dashboard's metrics view."""

from __future__ import annotations

import time
from contextlib import contextmanager

from ray.util import metrics

from agents.turns import preempted


class PhaseClock:
    """Wall-clock spans of one loop's phases, `{phase: [start, end]}` in epoch seconds, the CPU time this
    thread spent in each, and the times the OS preempted it in each (`agents.turns.preempted`; None where not
    counted): a player's torch runs on its own thread, so wall time over CPU time is the share of a core the
    machine gave it, CPU time per step is what its arithmetic costs, and preemptions a CPU-second tell how
    often other threads broke into its turns."""

    def __init__(self):
        self.spans: dict[str, list[float]] = {}
        self.cpu: dict[str, float] = {}
        self.preemptions: dict[str, int | None] = {}

    @contextmanager
    def __call__(self, phase: str):
        if phase in self.spans:
            raise ValueError(f"phase {phase!r} timed twice in one loop")
        start, cpu, switched = time.time(), time.thread_time(), preempted()
        try:
            yield
        finally:
            self.spans[phase] = [start, time.time()]
            self.cpu[phase] = time.thread_time() - cpu
            self.preemptions[phase] = None if switched is None else preempted() - switched

    def seconds(self, phase: str) -> float:
        start, end = self.spans[phase]
        return end - start


class PlayerGauges:
    """Fitness, rating, generation and training speed of one player, exported through
    ray.util.metrics: the dashboard's metrics view (and its Prometheus endpoint) plots them per player."""

    TAGS = ("run", "player")

    def __init__(self, run_id: str, player: str):
        self.tags = {"run": run_id, "player": player}
        self.fitness = metrics.Gauge("arena_player_fitness", "Share of opposing discriminators fooled by the "
                                     "player's current generator.", tag_keys=self.TAGS)
        self.rating = metrics.Gauge("arena_player_rating", "Conservative skill rating (mu - 3 sigma) of the "
                                    "player's current individual.", tag_keys=self.TAGS)
        self.generation = metrics.Gauge("arena_player_generation", "Generation of the player's current "
                                        "individual.", tag_keys=self.TAGS)
        self.speed = metrics.Gauge("arena_player_steps_per_second", "Training steps per second of the "
                                   "player's last loop.", tag_keys=self.TAGS)
        self.loops = metrics.Counter("arena_player_loops", "Loops (individuals) the player has finished.",
                                     tag_keys=self.TAGS)

    def show(self, standing: dict, generation: int, steps_per_second: float) -> None:
        for gauge, value in ((self.fitness, standing.get("fitness")), (self.rating, standing.get("rating")),
                             (self.generation, generation), (self.speed, steps_per_second)):
            if value is not None:
                gauge.set(float(value), tags=self.tags)
        self.loops.inc(1.0, tags=self.tags)
