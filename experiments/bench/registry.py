"""`python -m experiments.bench registry`: how long a player waits on the registry actor, and what one
player iteration's registry calls cost, as the population grows. No training: simulated players
publish fake entries (a real genome, a small weights ObjectRef wrapped in a list) and make the calls a
player makes in one loop."""

from __future__ import annotations

import hashlib
import subprocess
import time
from typing import List, Optional

import numpy as np
import ray
import torch
import typer

from agents.registry import Registry
from arena.rounds import match_records, round_pool
from arena.selection import choose_opponents, choose_parents
from experiments.bench import results
from experiments.bench.common import ray_session
from genome import MutationConfig, random_genome

DATASET = "ring8"
OPPONENTS, ROUND_EVERY, ROUND_SIZE, TOURNAMENT = 3, 4, 6, 3  # the defaults of arena/config.py
APIS = ("candidates", "select")


def code_identity() -> str:
    """Which agents/registry.py was measured: its sha256 prefix, and whether it is the committed one."""
    path = results.ROOT / "agents" / "registry.py"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=path.parent, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        changed = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", str(path)], cwd=path.parent,
                                 timeout=10).returncode != 0
    except (OSError, subprocess.SubprocessError):
        return f"registry.py {digest}"
    return f"registry.py {digest} ({'working tree' if changed else 'HEAD ' + head})"


class SimulatedPlayers:
    """One caller process running many simulated players in turn, as a Ray actor. It plays in several
    registries (one per api and population size, each a `world` here), kept for the whole benchmark."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.genomes: dict[str, dict] = {}
        self.weights: dict[str, ray.ObjectRef] = {}  # kept here so the references stay alive
        self.worlds: dict[str, dict] = {}  # key -> registry, names, each name's generation

    def attach(self, key: str, registry, names: list[str]) -> int:
        """Play `names` in `registry` under `key`; each publishes its first individual there."""
        small = {"generator": {"0.weight": torch.zeros(16, 8)}, "discriminator": {"0.weight": torch.zeros(16, 2)}}
        for name in names:
            if name not in self.genomes:
                self.genomes[name] = random_genome(self.rng, MutationConfig(), 64, 100, (2,)).to_dict()
                self.weights[name] = ray.put(small)
        # Generations start staggered, 0 to ROUND_EVERY − 1: one iteration in ROUND_EVERY holds a round at
        # every population size, also when each player loops only once or twice in the benchmark.
        world = self.worlds[key] = {"registry": registry, "names": list(names),
                                    "generation": {name: i % ROUND_EVERY for i, name in enumerate(names)}}
        ray.get([registry.publish.remote(self._entry(world, name), [self.weights[name]]) for name in names])
        return len(names)

    def _entry(self, world: dict, name: str) -> dict:
        generation = world["generation"][name]
        return {"id": f"bench/{name}/{generation}", "player": name, "generation": generation, "dataset": DATASET,
                "genome": self.genomes[name], "ops": [{"op": "clone"}], "parent_fitness": 0.5}

    def run(self, key: str, iterations: int, api: str, warmup: int = 0) -> dict:
        """`iterations` player loops in world `key` (round robin over its players) after `warmup` untimed
        ones; returns each call's latency in seconds, by call, each iteration's, and the count of loops."""
        if api not in APIS:
            raise ValueError(f"unknown api {api!r}; choose from {', '.join(APIS)}")
        world = self.worlds[key]
        calls: dict[str, list[float]] = {}
        loops = []
        for i in range(warmup + iterations):
            name = world["names"][(world.get("next", 0) + i) % len(world["names"])]
            timed = calls if i >= warmup else {}
            started = time.perf_counter()
            self._iteration(world, name, api, timed)
            if i >= warmup:
                loops.append(time.perf_counter() - started)
        world["next"] = world.get("next", 0) + warmup + iterations
        return {"calls": calls, "iterations": loops, "loops": warmup + iterations}

    def _call(self, timed: dict, kind: str, ref):
        started = time.perf_counter()
        value = ray.get(ref)
        timed.setdefault(kind, []).append(time.perf_counter() - started)
        return value

    def _seed(self) -> int:
        return int(self.rng.integers(2**63))

    def _iteration(self, world: dict, name: str, api: str, timed: dict) -> None:
        registry, rng = world["registry"], self.rng
        entry = self._entry(world, name)
        me, generation = entry["id"], entry["generation"]
        self._call(timed, "publish", registry.publish.remote(entry, [self.weights[name]]))
        if api == "candidates":
            candidates = self._call(timed, "candidates", registry.candidates.remote(DATASET))
            picked = choose_opponents(candidates, name, OPPONENTS, rng, "random")
            drawn = round_pool(candidates, me, ROUND_SIZE, rng) \
                if generation % ROUND_EVERY == 0 and len(candidates) > 1 else []
        else:
            picked = self._call(timed, "opponents", registry.opponents.remote(
                DATASET, name, OPPONENTS, "random", self._seed()))
            drawn = self._call(timed, "round_pool", registry.round_pool.remote(
                DATASET, me, ROUND_SIZE, self._seed())) if generation % ROUND_EVERY == 0 else []
        ids = [c["id"] for c in picked]
        matches = []
        if ids:  # own generator against their discriminators, theirs against own
            matches += match_records(rng.random((1, len(ids))), [me], ids, rng.random(len(ids)), "bench", me,
                                     "duel", 64)
            matches += match_records(rng.random((len(ids), 1)), ids, [me], rng.random(1), "bench", me, "duel", 64)
        if drawn:
            everyone = [me] + [c["id"] for c in drawn]
            matches += match_records(rng.random((len(everyone), len(everyone))), everyone, everyone,
                                     rng.random(len(everyone)), "bench", me, "round", 64)
        if matches:
            self._call(timed, "report", registry.report.remote(matches))
        status = {"generation": generation, "steps": 100 * generation, "fitness": 0.5, "phase": "running",
                  "loop_seconds": 1.0}
        self._call(timed, "heartbeat", registry.heartbeat.remote(name, status))
        if api == "candidates":
            candidates = self._call(timed, "candidates", registry.candidates.remote(DATASET))
            if not any(c["id"] == me for c in candidates):
                candidates.append({"id": me, "player": name, "genome": entry["genome"], "fitness": None})
            choose_parents(candidates, TOURNAMENT, rng, "fitness")
            choose_parents(candidates, TOURNAMENT, rng, "d_fitness")
        else:
            own = {"id": me, "player": name, "dataset": DATASET, "genome": entry["genome"], "fitness": None}
            self._call(timed, "move", registry.move.remote(DATASET, own, self._seed(), exploit="always",
                                                           tournament_size=TOURNAMENT))
        world["generation"][name] += 1


def _ms(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q) * 1e3) if values else None


def cpu_seconds(actor) -> tuple[float, float]:
    """The CPU time an actor's process has spent (every thread, Ray's own included), and the thread that
    runs its calls."""
    return ray.get(actor.__ray_call__.remote(lambda self: (time.process_time(), time.thread_time())))


def bench(players: list[int], iterations: int, callers: int, apis: list[str], num_cpus: int,
          rounds: int = 4) -> list[dict]:
    """A registry actor per (api, population size), the callers sharing each size's simulated players;
    `rounds` turns over all of them, each running a slice of the iterations. Returns a row per registry."""
    for api in apis:
        if api not in APIS:
            raise ValueError(f"unknown api {api!r}; choose from {', '.join(APIS)}")
    if not players or any(n < 1 for n in players) or iterations < 1 or callers < 1 or rounds < 1:
        raise ValueError("players, iterations, callers and rounds must be at least 1")
    keys = [(api, n) for api in dict.fromkeys(apis) for n in sorted(set(players))]
    with ray_session(num_cpus):
        sims = [ray.remote(SimulatedPlayers).options(num_cpus=0).remote(c) for c in range(callers)]
        registries = {key: ray.remote(Registry).options(num_cpus=0).remote("bench", 16) for key in keys}
        try:
            active, tallies = {}, {}
            for (api, n), registry in registries.items():
                names = [f"player-{i}" for i in range(n)]
                groups = [(sim, names[c::len(sims)]) for c, sim in enumerate(sims) if names[c::len(sims)]]
                ray.get([sim.attach.remote(f"{api}/{n}", registry, group) for sim, group in groups])
                active[api, n] = [sim for sim, _ in groups]
                tallies[api, n] = {"calls": {}, "iterations": [], "loops": 0, "wall": 0.0, "cpu": 0.0, "thread": 0.0}
            for turn in range(rounds):
                order = keys[turn % len(keys):] + keys[:turn % len(keys)]  # a different one goes first each turn
                for key in order:
                    sims_here, tally = active[key], tallies[key]
                    per_caller = max(1, iterations // len(sims_here) // rounds)
                    warmup = max(2, per_caller // 10) if turn == 0 else 0
                    cpu, thread = cpu_seconds(registries[key])
                    started = time.perf_counter()
                    outcomes = ray.get([sim.run.remote(f"{key[0]}/{key[1]}", per_caller, key[0], warmup)
                                        for sim in sims_here])
                    tally["wall"] += time.perf_counter() - started
                    cpu_after, thread_after = cpu_seconds(registries[key])
                    tally["cpu"] += cpu_after - cpu
                    tally["thread"] += thread_after - thread
                    for outcome in outcomes:
                        for kind, values in outcome["calls"].items():
                            tally["calls"].setdefault(kind, []).extend(values)
                        tally["iterations"] += outcome["iterations"]
                        tally["loops"] += outcome["loops"]
        finally:
            for actor in sims + list(registries.values()):
                ray.kill(actor)
    rows = []
    for (api, n) in keys:
        tally = tallies[api, n]
        rows.append(row := summarize(tally, api, n, len(active[api, n])))
        typer.echo(f"{api:10s} {n:5d} players: p50 {row['p50_ms']:.2f} ms, p99 {row['p99_ms']:.2f} ms, "
                   f"iteration p50 {row['iteration_p50_ms']:.2f} ms, p99 {row['iteration_p99_ms']:.2f} ms, "
                   f"registry CPU {row['registry_cpu_ms_per_iteration']:.2f} ms per iteration "
                   f"({row['registry_thread_ms_per_iteration']:.2f} ms in its calls' thread)")
    return rows


def summarize(tally: dict, api: str, players: int, callers: int) -> dict:
    calls, loops = tally["calls"], tally["iterations"]
    every = [t for values in calls.values() for t in values]
    picking = [t for kind in ("candidates", "opponents", "round_pool", "parents") for t in calls.get(kind, [])]
    return {"code": code_identity(), "api": api, "players": players, "callers": callers, "calls": len(every),
            "p50_ms": _ms(every, 50), "p99_ms": _ms(every, 99),
            "pick_p50_ms": _ms(picking, 50), "pick_p99_ms": _ms(picking, 99),
            "report_p99_ms": _ms(calls.get("report", []), 99),
            "heartbeat_p99_ms": _ms(calls.get("heartbeat", []), 99),
            "publish_p99_ms": _ms(calls.get("publish", []), 99),
            "iteration_p50_ms": _ms(loops, 50), "iteration_p99_ms": _ms(loops, 99),
            "registry_cpu_ms_per_iteration": tally["cpu"] * 1e3 / tally["loops"],
            "registry_thread_ms_per_iteration": tally["thread"] * 1e3 / tally["loops"],
            "iterations_per_s": tally["loops"] / tally["wall"]}


def command(
    players: List[int] = typer.Option([16, 64, 256, 1024], help="Population sizes (repeat the flag)."),
    iterations: int = typer.Option(400, help="Timed player iterations per population size, over all callers."),
    rounds: int = typer.Option(4, help="Turns over all the registries, each running a slice of the iterations."),
    callers: int = typer.Option(2, help="Caller actors running the simulated players concurrently."),
    api: Optional[List[str]] = typer.Option(None, help="candidates (the player's calls before issue 7) or select "
                                                       "(the registry picks) [default: both]."),
    num_cpus: int = typer.Option(2, help="CPUs of the local Ray cluster the benchmark starts."),
    notes: str = typer.Option("", help="A note recorded with the rows (e.g. what else ran on the machine)."),
) -> None:
    """Registry call latency p50/p99 and one player iteration's cost, 16 to 1,024 simulated players."""
    try:
        rows = bench(players, iterations, callers, list(api or APIS), num_cpus, rounds)
    except ValueError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)
    path = results.record("registry", rows, notes)
    typer.echo(f"recorded {path}")
