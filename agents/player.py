"""The player actor: owns one individual at a time and loops on its own, never waiting for others:
train, save, publish, fight, breed. Decisions come from `arena/` and `genome/`; this only carries them out."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np
import ray
import torch

from agents.telemetry import PhaseClock, PlayerGauges
from arena.bout import bout, judged_real
from arena.datasets import load_dataset
from arena.metrics import Judge
from arena.replay import ReplayBuffer
from arena.rounds import match_records
from experiments.config import RunConfig
from genome import Genome, Pair, build_pair, breed, inherit, make_optimizer, random_genome
from genome.effects import adapted
from storage.checkpoints import CheckpointError, checkpoint_location, load_pair, save_checkpoint
from storage.records import ACTOR_PATIENCE_MS, Recorder, connect, now
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
    def __init__(self, index: int, config: RunConfig, run_id: str, mongo_uri: str, checkpoint_dir: str,
                 trace_dir: str, threads: int):
        torch.set_num_threads(threads)  # this actor's share of the node's cores, no more
        self.index, self.name = index, f"player-{index}"
        self.config, self.run_id = config, run_id
        # By name, not by a handle passed in: a restarted player finds the registry again (Ray cannot
        # restart an actor whose constructor was given another actor's handle, ray#53727).
        self.registry = ray.get_actor("registry")
        self.barrier = ray.get_actor("barrier") if config.arena.schedule == "barrier" else None
        # Ray hides every GPU but the ones this actor was given; a share of one is a whole device here.
        self.device = torch.device("cuda" if config.gpus_per_player and torch.cuda.is_available() else "cpu")
        self.gauges = PlayerGauges(run_id, self.name)
        self.checkpoint_dir = checkpoint_dir
        seed = player_seed(config.seed, index)
        self.rng = np.random.default_rng(seed)
        self.torch_rng = torch.Generator().manual_seed(int(seed.generate_state(1)[0]))
        torch.manual_seed(int(seed.generate_state(2)[1]))  # module initialisation draws from the global generator
        self.data = load_dataset(config.dataset)
        self.judge = Judge(self.data) if config.arena.metrics_every else None
        self.replay = ReplayBuffer(config.arena.replay)
        # Trace rows are written when the records are, never on their own: an individual in the store
        # always has its rows on disk, and a killed player leaves no rows of an unrecorded one.
        self.traces = TraceWriter(trace_dir, run_id, self.name, flush_rows=10**9, flush_seconds=float("inf"))
        self.recorder = Recorder(connect(mongo_uri, config.mongo_db, ACTOR_PATIENCE_MS), before_flush=self.traces.flush)
        self.generation = 0  # of the individual in hand
        self.individuals = 0  # recorded so far
        self.steps = 0
        self.status = {"generation": 0, "steps": 0, "fitness": None, "phase": "starting", "loop_seconds": None}

    def __repr__(self) -> str:  # what the Ray dashboard shows
        # Also called by Ray on a constructor that failed half-way: read only what may be missing.
        return f"Player({self.name}, generation={getattr(self, 'generation', None)}, steps={getattr(self, 'steps', None)})"

    def ready(self) -> str:
        return self.name

    def run(self, deadline: float) -> dict:
        """Loop until the wall-clock `deadline` or until the registry says stop; returns a summary."""
        cfg = self.config
        child = self._resume()
        if child is None:
            genome = random_genome(self.rng, cfg.mutation, cfg.arena.batch_size,
                                   cfg.arena.first_steps(self.index, cfg.players), self.data.shape,
                                   cfg.arena.architecture, cfg.arena.pack)
            child = Offspring(genome, build_pair(genome, self.device))
        loop_times = []
        try:
            while True:
                started = time.perf_counter()
                individual = f"{self.run_id}/{self.name}/{self.generation}"
                clock = PhaseClock()
                self.loop_rows = 0  # trace rows of this individual: training and cross-training
                with clock("train"):
                    optimizers, trained = self._train(child, individual, deadline)
                with clock("save"):
                    self._save(child, optimizers, trained, individual)
                with clock("publish"):
                    self._publish(child, individual)
                with clock("fight"):
                    fitness, matches = self._fight(child, optimizers, individual)
                # The standing right after its own fight, kept as it was: the final standings
                # overwrite `fitness` at the end of the run, this is its history.
                self.recorder.update_individual(individual, {
                    **fitness, "at_fight": {**fitness, "at": now()}, "matches": matches,
                    "trace_rows": self.loop_rows})
                if self.judge and self.generation % self.config.arena.metrics_every == 0:
                    with clock("measure"):
                        self._measure(child, individual)
                self.individuals += 1
                self.status.update(generation=self.generation, steps=self.steps, fitness=fitness["fitness"],
                                   phase="running", loop_seconds=time.perf_counter() - started,
                                   buffered=self.recorder.pending if self.recorder.outage_since else 0)
                self.gauges.show(fitness, self.generation, trained / max(clock.seconds("train"), 1e-9))
                with clock("heartbeat"):
                    stopping = ray.get(self.registry.heartbeat.remote(self.name, self.status))
                done = stopping or time.time() >= deadline
                if not done and self.barrier is not None:
                    with clock("wait"):  # a synchronous arena: nobody breeds before all have fought
                        done = not ray.get(self.barrier.arrive.remote(self.name, deadline))
                if not done:
                    with clock("breed"):
                        child = self._breed(child, individual)
                    self.generation += 1
                self.recorder.update_individual(individual, {"timeline": clock.spans})
                loop_times.append(time.perf_counter() - started)
                if done:
                    break
        finally:
            if self.barrier is not None:
                self.barrier.leave.remote(self.name)  # the others stop waiting for this player
            self.recorder.close()
        summary = {"player": self.name, "generations": self.individuals, "steps": self.steps,
                   "store_outages": self.recorder.outages,
                   "mean_loop_seconds": float(np.mean(loop_times)) if loop_times else None,
                   "trace_rows": self.traces.rows_written}
        self.status["phase"] = "done"
        self.registry.heartbeat.remote(self.name, self.status)
        return summary

    def _resume(self) -> Offspring | None:
        """After a restart (of this actor, or of the run with --resume): carry on from the latest
        recorded individual whose checkpoint is intact, as its next generation; a checkpoint that is
        missing or does not match its sha256 is refused and the one before it is tried."""
        recorded = self.recorder.db.individuals.find(
            {"run_id": self.run_id, "player": self.name}, sort=[("generation", -1)],
            projection={"checkpoint": 1, "checkpoint_sha256": 1, "generation": 1, "steps": 1, "fitness": 1})
        latest = None
        for doc in recorded:
            latest = latest if latest is not None else doc["generation"]
            try:
                genome, pair = load_pair(doc["checkpoint"], self.device, sha256=doc.get("checkpoint_sha256"))
            except CheckpointError as err:
                print(f"{self.name}: {err}; falling back to the individual before it")
                continue
            # Numbering goes on after the latest record, refused ones included: no record is overwritten.
            self.generation, self.steps = latest + 1, doc.get("steps", 0)
            self.individuals = self.recorder.db.individuals.count_documents(
                {"run_id": self.run_id, "player": self.name})
            total = pair.parameter_count()
            inherited = {"inherited": total, "total": total, "share": 1.0, "build_attempts": 1,
                         "from": [{"parent": doc["_id"], "parameters": total}]}
            return Offspring(genome, pair, [doc["_id"]], [{"op": "resume", "from": doc["_id"]}], inherited,
                             parent_fitness=doc.get("fitness"))
        return None

    def _train(self, child: Offspring, individual: str, deadline: float) -> tuple[tuple, int]:
        genome, pair = child.genome, child.pair
        # Optimizer state is not inherited: a child's optimizers start fresh with its genes.
        optimizers = (make_optimizer(genome.g_optimizer, pair.generator.parameters()),
                      make_optimizer(genome.d_optimizer, pair.discriminator.parameters()))
        rows = bout([pair.generator], [pair.discriminator], self.data, genome.steps, genome.batch_size,
                    self.torch_rng, g_optimizer=optimizers[0], d_optimizer=optimizers[1], loss=genome.loss,
                    generator_first=self.config.arena.generator_first, replay=self.replay,
                    replay_share=self.config.arena.replay_share,
                    first_step=self.steps, deadline=deadline).rows
        self.steps += len(rows)
        self._trace(individual, rows, "train")
        return optimizers, len(rows)  # fewer steps than the genome's when the budget ran out mid-round

    def _save(self, child: Offspring, optimizers: tuple, trained: int, individual: str) -> None:
        location = checkpoint_location(self.checkpoint_dir, self.name, self.generation)
        sha256 = save_checkpoint(location, {
            "genome": child.genome.to_dict(), **child.pair.state_dicts(),
            "g_optimizer": optimizers[0].state_dict(), "d_optimizer": optimizers[1].state_dict(),
            "step": self.steps})
        self.recorder.individual({
            "_id": individual, "run_id": self.run_id, "player": self.name, "generation": self.generation,
            "dataset": self.config.dataset, "parents": child.parents, "genome": child.genome.to_dict(),
            "ops": child.ops, "inherited": child.inherited, "parameters": child.pair.parameter_count(),
            "checkpoint": location, "checkpoint_sha256": sha256, "steps": self.steps, "trained_steps": trained,
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
        entry = {"id": individual, "player": self.name, "generation": self.generation, "dataset": self.config.dataset,
                 "genome": child.genome.to_dict(), "ops": child.ops, "parent_fitness": child.parent_fitness}
        self.registry.publish.remote(entry, [weights])

    def _fetch(self, entry: dict) -> dict | None:
        """A published individual's weights, or None when they are lost: a player whose node went
        down leaves references nobody can read until it publishes again."""
        try:
            return ray.get(entry["weights"][0], timeout=60)
        except (ray.exceptions.ObjectLostError, ray.exceptions.GetTimeoutError):
            return None

    def _opponent(self, entry: dict):
        states = self._fetch(entry)
        if states is None:
            return None
        opponent = build_pair(Genome.from_dict(entry["genome"]), self.device)
        opponent.load_state_dicts(states)
        return opponent

    def _fight(self, child: Offspring, optimizers: tuple, individual: str) -> tuple[dict, int]:
        """One-to-one: own generator against each opponent's discriminator and theirs against own.
        Then, as configured, cross-training against the same opponents, and every `round_every`
        generations an all-versus-all round that the next child's discriminator is chosen on.
        Returns its standing and the number of matches recorded."""
        cfg = self.config.arena
        pair, n = child.pair, cfg.duel_samples
        # The registry draws, as choose_opponents would over its candidates, and sends only those drawn.
        picked = ray.get(self.registry.opponents.remote(self.config.dataset, self.name, cfg.opponents,
                                                        cfg.matchmaking, self._seed()))
        chosen, opponents = [], []
        for entry in picked:
            if (opponent := self._opponent(entry)) is not None:
                chosen.append(entry)
                opponents.append(opponent)
        ids = [entry["id"] for entry in chosen]
        matches = []
        if opponents:
            real = self.data.sample(n, self.torch_rng)
            theirs = [o.discriminator for o in opponents]
            attack = bout([pair.generator], theirs, None, 1, n, self.torch_rng)
            matches += match_records(attack.fooled, [individual], ids, [judged_real(d, real) for d in theirs],
                                     self.run_id, individual, "duel", n)
            defence = bout([o.generator for o in opponents], [pair.discriminator], None, 1, n, self.torch_rng)
            matches += match_records(defence.fooled, ids, [individual], [judged_real(pair.discriminator, real)],
                                     self.run_id, individual, "duel", n)
            self.replay.add(defence.fooling[0], self.torch_rng)  # fakes that fooled own discriminator
            if cfg.cross_steps:
                self._cross_train(child, optimizers, opponents, individual)
        drawn = ray.get(self.registry.round_pool.remote(self.config.dataset, individual, cfg.round_size,
                                                        self._seed())) \
            if cfg.round_every and self.generation % cfg.round_every == 0 else []
        if drawn:  # none when fewer than two are published
            pool = [(entry, opponent) for entry in drawn if (opponent := self._opponent(entry)) is not None]
            pairs = [pair] + [opponent for _, opponent in pool]
            ids_all = [individual] + [entry["id"] for entry, _ in pool]
            real = self.data.sample(n, self.torch_rng)
            judged = bout([p.generator for p in pairs], [p.discriminator for p in pairs], None, 1, n, self.torch_rng)
            matches += match_records(judged.fooled, ids_all, ids_all,
                                     [judged_real(p.discriminator, real) for p in pairs], self.run_id, individual,
                                     "round", n)
        for match in matches:
            self.recorder.match(dict(match))
        standings = ray.get(self.registry.report.remote(matches)) if matches else {}
        mine = standings.get(individual, {})
        return {key: mine.get(key) for key in ("fitness", "d_fitness", "fitness_change", "mu", "sigma", "rating")}, \
            len(matches)

    def _seed(self) -> int:
        """A seed for a draw the registry makes for this player, from the player's own generator."""
        return int(self.rng.integers(2**63))

    def _cross_train(self, child: Offspring, optimizers: tuple, opponents: list, individual: str) -> None:
        """Own generator against the opponents' discriminators, then own discriminator against their
        generators; only the own side learns."""
        cfg, genome = self.config.arena, child.genome
        for net in opponents:
            net.generator.requires_grad_(False)
            net.discriminator.requires_grad_(False)
        common = dict(loss=genome.loss, first_step=self.steps)
        rows = bout([child.pair.generator], [o.discriminator for o in opponents], self.data, cfg.cross_steps,
                    genome.batch_size, self.torch_rng, g_optimizer=optimizers[0], **common).rows
        rows += bout([o.generator for o in opponents], [child.pair.discriminator], self.data, cfg.cross_steps,
                     genome.batch_size, self.torch_rng, d_optimizer=optimizers[1], replay=self.replay,
                     replay_share=cfg.replay_share, **common).rows
        self._trace(individual, rows, "cross")

    def _trace(self, individual: str, rows: list[dict], phase: str) -> None:
        self.traces.add(individual, self.generation, rows, phase=phase)
        self.loop_rows += len(rows)

    def _breed(self, current: Offspring, individual: str) -> Offspring:
        """Choose parents by tournament over the published standings; build the child and let it inherit."""
        cfg = self.config.arena
        # Tournaments as choose_parents runs them, drawn by the registry; the own individual is a
        # candidate even when its publish is not seen yet. The discriminator side comes from the best
        # discriminators (judged on every match, the all-versus-all rounds included), not along with
        # the generator that may have hacked it.
        candidate = {"id": individual, "player": self.name, "genome": current.genome.to_dict(), "fitness": None}
        chosen, d_chosen = ray.get(self.registry.parents.remote(self.config.dataset, cfg.tournament_size,
                                                                cfg.selection, self._seed(), candidate))
        own = {"id": individual, "genome": current.genome.to_dict()}
        genomes, states = [], []
        for group in (chosen, d_chosen):
            for k, parent in enumerate(group):
                weights = current.pair.state_dicts() if parent["id"] == individual else self._fetch(parent)
                if weights is None:  # lost with its node: the own individual stands in
                    group[k], weights = own, current.pair.state_dicts()
                genomes.append(Genome.from_dict(group[k]["genome"]))
                states.append(weights)
        g_genomes, d_genomes = genomes[:len(chosen)], genomes[len(chosen):]
        mutation = self.config.mutation
        if mutation.adapt:
            mutation = adapted(mutation, ray.get(self.registry.effects.remote()))
        for attempt in range(1, BUILD_ATTEMPTS + 1):
            genome, ops = breed(g_genomes, self.rng, mutation, d_genomes)
            if cfg.steps_spread != 1:  # the player's loop cost stays its own, whoever the parents were
                genome = dataclasses.replace(genome, steps=cfg.first_steps(self.index, self.config.players))
            try:  # shape inference makes every child build; a failure here is a bug worth recording
                pair = build_pair(genome, self.device)
                inherited = inherit(pair, genome, states)
                break
            except (RuntimeError, ValueError) as err:
                if attempt == BUILD_ATTEMPTS:
                    raise
                print(f"{self.name}: child {genome.to_dict()} did not build ({err}); breeding again")
        inherited["build_attempts"] = attempt
        inherited["from"] = [{"parent": p["id"], "parameters": n}
                             for p, n in zip(chosen + d_chosen, inherited.pop("per_parent")) if n]
        known = [p["fitness"] for p in chosen if p.get("fitness") is not None]
        return Offspring(genome, pair, sorted({p["id"] for p in chosen + d_chosen}), ops, inherited,
                         sum(known) / len(known) if known else None)
