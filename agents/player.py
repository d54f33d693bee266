"""The player actor: owns one individual at a time and loops on its own, never waiting for others:
train, save, publish, fight, breed. Decisions come from `arena/` and `genome/`; this only carries them out."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import ray
import torch

from arena.bout import duel, judged_real, train_bout
from arena.datasets import load_dataset
from arena.metrics import Judge
from arena.selection import choose_opponents, choose_parents
from experiments.config import RunConfig
from genome import Genome, Pair, build_pair, breed, inherit, make_optimizer, random_genome
from genome.effects import adapted
from storage.checkpoints import checkpoint_location, save_checkpoint
from storage.records import Recorder, connect
from storage.traces import TraceWriter


BUILD_ATTEMPTS = 5


def player_seed(run_seed: int, index: int) -> np.random.SeedSequence:
    """Each player's seed derives from the run seed and its index: a run is reproducible player by player."""
    return np.random.SeedSequence([run_seed, index])


@dataclass
class Offspring:
    """The individual in hand before it is recorded: its genes, modules and where it came from."""

    genome: Genome
    pair: Pair
    parents: list[str] = field(default_factory=list)
    ops: list[dict] = field(default_factory=lambda: [{"op": "random"}])
    inherited: dict | None = None
    parent_fitness: float | None = None  # mean fitness of its parents when chosen, for the mutation record


class Player:
    def __init__(self, index: int, config: RunConfig, run_id: str, mongo_uri: str, registry,
                 checkpoint_dir: str, trace_dir: str, threads: int):
        torch.set_num_threads(threads)  # this actor's share of the node's cores, no more
        self.index, self.name = index, f"player-{index}"
        self.config, self.run_id, self.registry = config, run_id, registry
        self.checkpoint_dir = checkpoint_dir
        seed = player_seed(config.seed, index)
        self.rng = np.random.default_rng(seed)
        self.torch_rng = torch.Generator().manual_seed(int(seed.generate_state(1)[0]))
        torch.manual_seed(int(seed.generate_state(2)[1]))  # module initialisation draws from the global generator
        self.data = load_dataset(config.dataset)
        self.judge = Judge(self.data) if config.arena.metrics_every else None
        self.recorder = Recorder(connect(mongo_uri, config.mongo_db))
        self.traces = TraceWriter(trace_dir, run_id, self.name)
        self.generation = 0  # of the individual in hand
        self.individuals = 0  # recorded so far
        self.steps = 0
        self.status = {"generation": 0, "steps": 0, "fitness": None, "phase": "starting", "loop_seconds": None}

    def __repr__(self) -> str:  # what the Ray dashboard shows
        return f"Player({self.name}, generation={self.generation}, steps={self.steps})"

    def ready(self) -> str:
        return self.name

    def run(self, deadline: float) -> dict:
        """Loop until the wall-clock `deadline` or until the registry says stop; returns a summary."""
        cfg = self.config
        genome = random_genome(self.rng, cfg.mutation, cfg.arena.batch_size, cfg.arena.steps, self.data.shape,
                               cfg.arena.architecture)
        child = Offspring(genome, build_pair(genome))
        loop_times = []
        try:
            while True:
                started = time.perf_counter()
                individual = f"{self.run_id}/{self.name}/{self.generation}"
                optimizers, trained = self._train(child, individual, deadline)
                self._save(child, optimizers, trained, individual)
                self._publish(child, individual)
                fitness = self._fight(child.pair, individual)
                self.recorder.update_individual(individual, fitness)
                if self.judge and self.generation % self.config.arena.metrics_every == 0:
                    self._measure(child, individual)
                self.individuals += 1
                self.status.update(generation=self.generation, steps=self.steps, fitness=fitness["fitness"],
                                   phase="running", loop_seconds=time.perf_counter() - started)
                stopping = ray.get(self.registry.heartbeat.remote(self.name, self.status))
                done = stopping or time.time() >= deadline
                if not done:
                    child = self._breed(child, individual)
                    self.generation += 1
                loop_times.append(time.perf_counter() - started)
                if done:
                    break
        finally:
            self.recorder.close()
            self.traces.close()
        summary = {"player": self.name, "generations": self.individuals, "steps": self.steps,
                   "mean_loop_seconds": float(np.mean(loop_times)) if loop_times else None,
                   "trace_rows": self.traces.rows_written}
        self.status["phase"] = "done"
        self.registry.heartbeat.remote(self.name, self.status)
        return summary

    def _train(self, child: Offspring, individual: str, deadline: float) -> tuple[tuple, int]:
        genome, pair = child.genome, child.pair
        # Optimizer state is not inherited: a child's optimizers start fresh with its genes.
        optimizers = (make_optimizer(genome.g_optimizer, pair.generator.parameters()),
                      make_optimizer(genome.d_optimizer, pair.discriminator.parameters()))
        rows = train_bout(pair.generator, pair.discriminator, self.data, genome.steps, genome.batch_size,
                          *optimizers, self.torch_rng, first_step=self.steps, loss=genome.loss, deadline=deadline)
        self.steps += len(rows)
        self.traces.add(individual, self.generation, rows)
        return optimizers, len(rows)  # fewer steps than the genome's when the budget ran out mid-round

    def _save(self, child: Offspring, optimizers: tuple, trained: int, individual: str) -> None:
        location = checkpoint_location(self.checkpoint_dir, self.name, self.generation)
        save_checkpoint(location, {
            "genome": child.genome.to_dict(), **child.pair.state_dicts(),
            "g_optimizer": optimizers[0].state_dict(), "d_optimizer": optimizers[1].state_dict(),
            "step": self.steps})
        self.recorder.individual({
            "_id": individual, "run_id": self.run_id, "player": self.name, "generation": self.generation,
            "dataset": self.config.dataset, "parents": child.parents, "genome": child.genome.to_dict(),
            "ops": child.ops, "inherited": child.inherited, "parameters": child.pair.parameter_count(),
            "checkpoint": location, "steps": self.steps, "trained_steps": trained,
            "parent_fitness": child.parent_fitness,
            "fitness": None, "d_fitness": None, "fitness_change": None})

    def _measure(self, child: Offspring, individual: str) -> None:
        """Quality of the own generator by the data set's protocol, into the `metrics` collection."""
        with torch.no_grad():
            samples = child.pair.generator.sample(self.judge.samples, self.torch_rng)
        self.recorder.metric({"_id": f"{individual}|during", "run_id": self.run_id, "kind": "during",
                              "individual": individual, "player": self.name, "generation": self.generation,
                              **self.judge.quality(samples)})

    def _publish(self, child: Offspring, individual: str) -> None:
        weights = ray.put(child.pair.state_dicts())
        entry = {"id": individual, "player": self.name, "generation": self.generation,
                 "genome": child.genome.to_dict(), "ops": child.ops, "parent_fitness": child.parent_fitness}
        self.registry.publish.remote(entry, [weights])

    def _opponent(self, entry: dict):
        opponent = build_pair(Genome.from_dict(entry["genome"]))
        opponent.load_state_dicts(ray.get(entry["weights"][0]))
        return opponent

    def _fight(self, pair, individual: str) -> dict:
        """Duel own generator against each opponent's discriminator and theirs against own."""
        cfg = self.config.arena
        candidates = ray.get(self.registry.candidates.remote())
        matches = []
        n = cfg.duel_samples
        for entry in choose_opponents(candidates, self.name, cfg.opponents, self.rng):
            opponent = self._opponent(entry)
            real = self.data.sample(n, self.torch_rng)
            for generator, discriminator, g_id, d_id in (
                    (pair.generator, opponent.discriminator, individual, entry["id"]),
                    (opponent.generator, pair.discriminator, entry["id"], individual)):
                matches.append({
                    "_id": f"{g_id}|{d_id}|{individual}", "run_id": self.run_id, "generator": g_id,
                    "discriminator": d_id, "fooled": duel(generator, discriminator, n, self.torch_rng),
                    "real_accepted": judged_real(discriminator, real), "samples": n, "by": individual})
        for match in matches:
            self.recorder.match(dict(match))
        standings = ray.get(self.registry.report.remote(matches)) if matches else {}
        mine = standings.get(individual, {})
        return {key: mine.get(key) for key in ("fitness", "d_fitness", "fitness_change")}

    def _breed(self, current: Offspring, individual: str) -> Offspring:
        """Choose parents by tournament over the published standings; build the child and let it inherit."""
        candidates = ray.get(self.registry.candidates.remote())
        if not any(c["id"] == individual for c in candidates):  # own publish not yet seen: still a candidate
            candidates.append({"id": individual, "player": self.name, "genome": current.genome.to_dict(),
                               "fitness": None})
        chosen = choose_parents(candidates, self.config.arena.tournament_size, self.rng)
        genomes, states = [], []
        for parent in chosen:
            genomes.append(Genome.from_dict(parent["genome"]))
            states.append(current.pair.state_dicts() if parent["id"] == individual
                          else ray.get(parent["weights"][0]))
        mutation = self.config.mutation
        if mutation.adapt:
            mutation = adapted(mutation, ray.get(self.registry.effects.remote()))
        for attempt in range(1, BUILD_ATTEMPTS + 1):
            genome, ops = breed(genomes, self.rng, mutation)
            try:  # shape inference makes every child build; a failure here is a bug worth recording
                pair = build_pair(genome)
                inherited = inherit(pair, genome, states)
                break
            except (RuntimeError, ValueError) as err:
                if attempt == BUILD_ATTEMPTS:
                    raise
                print(f"{self.name}: child {genome.to_dict()} did not build ({err}); breeding again")
        inherited["build_attempts"] = attempt
        inherited["from"] = [{"parent": p["id"], "parameters": n} for p, n in zip(chosen, inherited.pop("per_parent"))]
        known = [p["fitness"] for p in chosen if p.get("fitness") is not None]
        return Offspring(genome, pair, [p["id"] for p in chosen], ops, inherited,
                         sum(known) / len(known) if known else None)
