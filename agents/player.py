"""The player actor: owns one individual at a time and loops on its own, never waiting for others:
train, measure its distance to real data (when due), save, publish, fight, hold a round (when due), breed.
Decisions come from `arena/` and `genome/`; this only carries them out."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import ray
import torch

from agents.opponents import Opponents
from agents.resume import resume
from agents.telemetry import PhaseClock, PlayerGauges
from agents.turns import CoreTurns, OwnCore, turn_seconds
from arena.average import Average, averaged
from arena.bout import bout
from arena.config import ArenaConfig
from arena.datasets import load_dataset
from arena.ensemble import RealReference
from arena.founders import found
from arena.offspring import Offspring, bred, continued, optimizers_for, perturbed, with_rates
from arena.metrics import Judge
from arena.replay import ReplayBuffer
from arena.rounds import FIRST_ROUND, SECOND_ROUND, all_versus_all, duels
from arena.tuning import Tuning, retune
from genome import build_pair
from genome.effects import adapted
from genome.operators import MutationConfig
from storage.checkpoints import checkpoint_location, save_checkpoint, superseded
from storage.records import ACTOR_PATIENCE_MS, Recorder, connect, now
from storage.traces import TraceWriter


REAL_SAMPLES = 512  # real training samples a generator's distance to real data is measured on


@dataclass(frozen=True)
class PlayerSpec:
    """What one player needs of the run beside the game's settings: who it is, where it writes, its share
    of the machine. Not the site's configuration (Ray address, the cluster's CPUs)."""

    index: int
    players: int  # in the run: the spread of loop costs depends on it
    run_id: str
    dataset: str
    seed: int  # the run's; the player's own derives from it (arena.founders)
    budget_seconds: float  # the learning-rate schedule's clock
    mongo_uri: str
    mongo_db: str
    checkpoint_dir: str
    trace_dir: str
    threads: int = 1
    gpu: bool = False  # a share of a GPU was reserved for it
    turn_ms: float = 0.0  # turns on its node's cores, with others that share them (0: the OS time-slices;
    # -1: by the data, agents.turns.turn_seconds)
    keep_checkpoints: int = 0  # of its latest generations (0: every one; storage.checkpoints.superseded)
    keep_every: int = 1  # generations whose checkpoints are kept for good


def node_cpus() -> int:
    """The CPUs Ray counts on this actor's node: the cores its players share."""
    node = ray.get_runtime_context().get_node_id()
    return max(1, int(next(n for n in ray.nodes() if n["NodeID"] == node)["Resources"].get("CPU", 1)))


class Player:
    def __init__(self, spec: PlayerSpec, arena: ArenaConfig, mutation: MutationConfig):
        torch.set_num_threads(spec.threads)  # this actor's share of the node's cores, no more
        # Denormal floats (below 1.2e-38) take a slow path on CPUs: the Adam moments of a unit that no longer gets
        # gradients decay through them over thousands of steps. Flushed to zero, a step keeps its cost.
        torch.set_flush_denormal(True)
        self.spec, self.arena, self.mutation = spec, arena, mutation
        self.index, self.name, self.run_id = spec.index, f"player-{spec.index}", spec.run_id
        # By name, not by a handle passed in: a restarted player finds the registry again (Ray cannot
        # restart an actor whose constructor was given another actor's handle, ray#53727).
        self.registry = ray.get_actor("registry")
        self.barrier = ray.get_actor("barrier") if arena.schedule == "barrier" else None
        # Ray hides every GPU but the ones this actor was given; a share of one is a whole device here.
        self.device = torch.device("cuda" if spec.gpu and torch.cuda.is_available() else "cpu")
        self.gauges = PlayerGauges(spec.run_id, self.name)
        self.checkpoint_dir = spec.checkpoint_dir
        self.data = load_dataset(spec.dataset)
        self.founding = found(spec.seed, spec.index, spec.players, self.data.shape, mutation, arena)
        self.rng = self.founding.rng
        self.torch_rng = torch.Generator().manual_seed(self.founding.noise_seed)
        torch.manual_seed(self.founding.init_seed)  # module initialisation draws from the global generator
        self.judge = Judge(self.data) if arena.metrics_every else None
        # Every player compares its generator with the same real training samples (drawn from the run's
        # seed), so the distances the registry ranks are comparable.
        self.reference = RealReference(self.data.sample(REAL_SAMPLES, torch.Generator().manual_seed(spec.seed)))
        self.real_distance: float | None = None  # of the generator in hand, after its training, when measured
        self.step_cpu_ms: float | None = None  # its training's CPU per step, this loop
        self.tuning = Tuning(arena.tune) if arena.tune else None  # its search over its own learning rates
        self.replay = ReplayBuffer(arena.replay_on(self.data.shape))
        self.turns = CoreTurns(spec.run_id, node_cpus(), turn_seconds(spec.turn_ms, self.data.shape)) \
            if spec.turn_ms else OwnCore()
        # Trace rows are written when the records are, never on their own: an individual in the store
        # always has its rows on disk, and a killed player leaves no rows of an unrecorded one.
        self.traces = TraceWriter(spec.trace_dir, spec.run_id, self.name, flush_rows=10**9,
                                  flush_seconds=float("inf"))
        self.recorder = Recorder(connect(spec.mongo_uri, spec.mongo_db, ACTOR_PATIENCE_MS),
                                 before_flush=self.traces.flush)
        self.entry: dict | None = None  # the individual in hand as published, for this loop's registry calls
        self.opponents = Opponents(self.device)
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
        resumed = resume(self.recorder.db, self.traces, self.run_id, self.name, self.device, self.arena.average)
        self.generation, self.steps, self.individuals = resumed.generation, resumed.steps, resumed.individuals
        child = resumed.child or Offspring(self.founding.genome, build_pair(self.founding.genome, self.device))
        loop_times = []
        try:
            while True:
                started = time.perf_counter()
                individual = f"{self.run_id}/{self.name}/{self.generation}"
                clock = PhaseClock()
                self.loop_rows = 0  # trace rows of this individual: training and cross-training
                with clock("train"):
                    trained = self._train(child, individual, deadline)
                # Published with the individual: what a copy of its genome costs (`arena.copy_cost`).
                self.step_cpu_ms = 1000 * clock.cpu["train"] / trained if trained else None
                self.real_distance = None
                # The last loop of a run ends at the deadline, mostly inside training: its individual is measured
                # then too, on the weights its checkpoint holds (a fight's cross-training moves them).
                tuning = self.tuning is not None and self.tuning.due
                if self.arena.distance_due(self.generation, self.data.shape, tuning) or time.time() >= deadline:
                    with clock("distance"):
                        self._distance(child)
                with clock("save"):
                    # Taken once: the checkpoint and the object store get the same tensors.
                    weights, moments = child.pair.state_dicts(), child.optimizer_states()
                    record = self._save(child, trained, individual, weights, moments)
                with clock("publish"):
                    opponents = self._enter(child, individual, weights, moments)
                with clock("fight"):
                    matches = self._fight(child, individual, opponents)
                # The round, its own phase: its share of a loop is seen apart.
                if self.arena.round_due(self.generation, self.data.shape):
                    with clock("round"):
                        matches += self._round(child, individual)
                # Recorded at the end of the loop, timed now: a restarted registry replays births and
                # matches in the order of their times.
                fought_at = now()
                self.status.update(generation=self.generation, steps=self.steps, phase="running",
                                   loop_seconds=time.perf_counter() - started,
                                   buffered=self.recorder.pending if self.recorder.outage_since else 0,
                                   outages=self.recorder.outages)
                with clock("settle"):
                    settled = self._settle(matches)
                mine = settled["standings"].get(individual, {})
                fitness = {key: mine.get(key) for key in ("fitness", "d_fitness", "fitness_change", "mu", "sigma",
                                                          "rating", "d_rating")}
                record.update(fitness, at_fight={**fitness, "at": now()}, matches=len(matches),
                              trace_rows=self.loop_rows, hacking=self.hacking,
                              step_ms=1000 * clock.seconds("train") / trained if trained else None,
                              step_cpu_ms=self.step_cpu_ms, train_preempted=clock.preemptions["train"])
                measured = []
                if self.judge and self.arena.metrics_due(self.generation, self.data.shape):
                    with clock("measure"):
                        measured.append(self._measure(child, individual))
                self.individuals += 1
                self.status.update(fitness=fitness["fitness"])
                self.gauges.show(fitness, self.generation, trained / max(clock.seconds("train"), 1e-9))
                done = settled["stopping"] or time.time() >= deadline
                if not done and self.barrier is not None:
                    with clock("wait"):  # a synchronous arena: nobody breeds before all have fought
                        done = not ray.get(self.barrier.arrive.remote(self.name, deadline))
                        if not done:  # the others' standings moved while this one waited
                            settled["move"] = self._move()
                if done and self.real_distance is None:  # stopped by the registry: the last one measured too
                    with clock("distance"):
                        record["real_distance"] = self._distance(child)
                if not done:
                    with clock("breed"):
                        child = self._next(child, individual, settled["move"], fitness["fitness"])
                    self.generation += 1
                # The individual's whole record, once (`Recorder.record` says what each field holds).
                self.recorder.record({**record, "timeline": clock.spans},
                                     [{**match, "at": fought_at} for match in matches], measured)
                old = superseded(record["generation"], self.spec.keep_checkpoints, self.spec.keep_every)
                if old is not None:  # queued after the record that supersedes it
                    self.recorder.prune(f"{self.run_id}/{self.name}/{old}",
                                        checkpoint_location(self.checkpoint_dir, self.name, old))
                loop_times.append(time.perf_counter() - started)
                if done:
                    break
        finally:
            if self.barrier is not None:
                self.barrier.leave.remote(self.name)  # the others stop waiting for this player
            self.turns.close()
            self.recorder.close()
        summary = {"player": self.name, "generations": self.individuals, "steps": self.steps,
                   "store_outages": self.recorder.outages,
                   "mean_loop_seconds": float(np.mean(loop_times)) if loop_times else None,
                   "trace_rows": self.traces.rows_written,
                   # Turns taken on the node's cores, and the time spent waiting for one (0 with a core of its own).
                   "core_turns": self.turns.turns, "core_wait_seconds": self.turns.waited}
        self.status["phase"] = "done"
        self.registry.heartbeat.remote(self.name, self.status)
        return summary

    def _distance(self, child: Offspring) -> float:
        """The generator's MMD² to the run's real reference samples, from the same latent batch every time (its
        own stream, not the training one): a change of distance is the generator's, not the draw's."""
        with self.turns:
            # Of the live weights: culling by it (`arena.cull`) keeps or copies them, not their average.
            self.real_distance = self.reference.distance(child.pair.generator,
                                                         torch.Generator().manual_seed(self.founding.noise_seed))
        return self.real_distance

    def _tuned(self, child: Offspring) -> Offspring:
        """The pair going on with the learning rates the player's search gives it (`arena.tune`); the change,
        when a window closed, is the op `tune` in the child's record."""
        if self.tuning is None:
            return child
        genome, limits = child.genome, (self.mutation.min_lr, self.mutation.max_lr)
        step = retune(self.tuning, self.real_distance, (genome.g_optimizer.lr, genome.d_optimizer.lr), self.rng,
                      limits)
        self.tuning = step.state
        if step.verdict is not None:
            child.genome, op = with_rates(genome, step.rates, {"op": "tune", "verdict": step.verdict})
            child.ops.append(op)
        return child

    def _train(self, child: Offspring, individual: str, deadline: float) -> int:
        genome, pair = child.genome, child.pair
        if child.optimizers is None:
            child.optimizers = optimizers_for(genome, pair)
        if child.average is None and self.arena.average:
            child.average = Average(pair.generator, self.arena.average)
        # The learning rate follows the run's schedule (decaying over the budget for precision), from
        # the genes each time: a continued pair and a resumed one stand where the clock says.
        scale = self.arena.lr_scale(1 - (deadline - time.time()) / self.spec.budget_seconds)
        for optimizer, gene in zip(child.optimizers, (genome.g_optimizer, genome.d_optimizer)):
            for group in optimizer.param_groups:
                group["lr"] = gene.lr * scale
        with self.turns:
            rows = bout([pair.generator], [pair.discriminator], self.data, genome.steps, genome.batch_size,
                        self.torch_rng, g_optimizer=child.optimizers[0], d_optimizer=child.optimizers[1],
                        loss=genome.loss, generator_first=self.arena.generator_first, replay=self.replay,
                        replay_share=self.arena.replay_share, first_step=self.steps, deadline=deadline,
                        between=self.turns.between, average=child.average).rows
        self.steps += len(rows)
        self._trace(individual, rows, "train")
        return len(rows)  # fewer steps than the genome's when the budget ran out mid-round

    def _save(self, child: Offspring, trained: int, individual: str, weights: dict, moments: dict) -> dict:
        """Write the checkpoint (the pair's `weights`, its optimizers' `moments`); returns the individual's
        record as far as it is known now (its birth)."""
        location = checkpoint_location(self.checkpoint_dir, self.name, self.generation)
        average = {} if child.average is None else {"generator_average": child.average.state_dict(),
                                                     "average_updates": child.average.updates}
        sha256 = save_checkpoint(location, {"genome": child.genome.to_dict(), **weights, **moments, **average,
                                            "step": self.steps})
        return {"_id": individual, "run_id": self.run_id, "player": self.name, "generation": self.generation,
                "dataset": self.spec.dataset, "parents": child.parents, "g_parents": child.g_parents,
                "d_parents": child.d_parents, "genome": child.genome.to_dict(), "age": child.age,
                "ops": child.ops, "inherited": child.inherited, "parameters": child.pair.parameter_count(),
                "checkpoint": location, "checkpoint_sha256": sha256, "steps": self.steps, "trained_steps": trained,
                "parent_fitness": child.parent_fitness, "real_distance": self.real_distance, "created_at": now()}

    def _measure(self, child: Offspring, individual: str) -> dict:
        """Quality of the own generator by the data set's protocol, for the `metrics` collection."""
        with torch.no_grad(), self.turns:
            samples = averaged(child.pair.generator, child.average).sample(self.judge.samples, self.torch_rng)
            quality = self.judge.quality(samples)
        return {"_id": f"{individual}|during", "run_id": self.run_id, "kind": "during", "individual": individual,
                "player": self.name, "generation": self.generation, "at": now(), **quality}

    def _entry(self, child: Offspring, individual: str) -> dict:
        return {"id": individual, "player": self.name, "generation": self.generation, "dataset": self.spec.dataset,
                "genome": child.genome.to_dict(), "ops": child.ops, "parent_fitness": child.parent_fitness,
                "age": child.age, "real_distance": self.real_distance, "step_cpu_ms": self.step_cpu_ms}

    def _enter(self, child: Offspring, individual: str, weights: dict, moments: dict) -> list[dict]:
        """Publish the individual and get the opponents the registry draws for it. The pair's weights and, where
        the game breeds, its optimizers' moments go through the object store as two objects: an opponent needs only
        the weights (Adam's moments are twice their size), a child bred from the individual carries both. Under
        exploit never nobody is bred, and nobody reads the moments (a resumed player reads its checkpoint's)."""
        cfg = self.arena
        self.entry = self._entry(child, individual)  # the genome is serialised once a loop, not per call
        published = [ray.put(state) for state in self._published(weights, moments)]
        return ray.get(self.registry.enter.remote(self.entry, published, cfg.opponents, cfg.matchmaking,
                                                  self._seed()))

    def _published(self, weights: dict, moments: dict) -> list[dict]:
        """What goes to the object store of the individual in hand (`_enter`): its weights, and its moments where
        the game breeds."""
        return [weights, moments] if self.arena.exploit_on(self.data.shape) != "never" else [weights]

    def _game(self) -> dict:
        """The settings of `arena.selection.next_move`, from the configuration."""
        cfg = self.arena
        return {"exploit": cfg.exploit_on(self.data.shape), "truncation": cfg.truncation,
                "ready": cfg.ready_on(self.data.shape),
                "tournament_size": cfg.tournament_size, "key": cfg.selection, "cull": cfg.cull,
                "explore": cfg.explore, "copy_cost": cfg.copy_cost,
                "d_key": None if cfg.keep_pairs else "d_round_fitness"}

    def _settle(self, matches: list[dict]) -> dict:
        """Report the matches and the heartbeat, get the next move and trade fakes, in one call."""
        share = self.arena.shared_fakes_on(self.data.shape)
        fakes = self.fooling if share and self.fooling is not None and len(self.fooling) else None
        settled = ray.get(self.registry.settle.remote(matches, self.name, self.status, self.entry, self._seed(),
                                                      fakes, **self._game()))
        if settled["fakes"] is not None:  # what fooled others' discriminators, for own to learn from
            self.replay.add(settled["fakes"], self.torch_rng)
        return settled

    def _move(self):
        return ray.get(self.registry.move.remote(self.spec.dataset, self.entry, self._seed(), **self._game()))

    def _fight(self, child: Offspring, individual: str, picked: list[dict]) -> list[dict]:
        """The duels with the opponents drawn, cross-training against them when configured; returns the match
        records."""
        cfg = self.arena
        fetched = self.opponents.pairs(picked)
        chosen, opponents = [entry for entry, _ in fetched], [opponent for _, opponent in fetched]
        matches, self.hacking, self.fooling = [], None, None
        if opponents:
            with self.turns:
                fought = duels(child.pair, individual, [entry["id"] for entry in chosen], opponents, self.data,
                               cfg.duel_samples, self.torch_rng, self.run_id)
            matches, self.hacking, self.fooling = fought.matches, fought.hacking, fought.fooling
            self.replay.add(self.fooling, self.torch_rng)
            if cfg.cross_steps:
                self._cross_train(child, opponents, individual, cfg.cross_steps, "cross")
        return matches

    def _round(self, child: Offspring, individual: str) -> list[dict]:
        """The seed's second round: the own individual and the fittest others the registry draws, all
        versus all, judged; then trained once against each other (the own generator against every
        discriminator of the round, the own discriminator against every generator); then judged again.
        Discriminators are chosen on that second judgement. None when fewer than two are published."""
        cfg = self.arena
        drawn = ray.get(self.registry.round_pool.remote(self.spec.dataset, individual, cfg.round_size,
                                                        self._seed(), cfg.selection))
        pool = self.opponents.pairs(drawn)
        if not pool:
            return []
        pairs = [child.pair] + [opponent for _, opponent in pool]
        ids = [individual] + [entry["id"] for entry, _ in pool]
        def judged(kind: str) -> list[dict]:
            return all_versus_all(pairs, ids, self.data, cfg.duel_samples, self.torch_rng, self.run_id, kind,
                                  own_only=kind == SECOND_ROUND)

        with self.turns:
            matches = judged(FIRST_ROUND)
        if cfg.round_steps:
            self._cross_train(child, [opponent for _, opponent in pool], individual, cfg.round_steps, "round")
            with self.turns:
                matches += judged(SECOND_ROUND)
        return matches

    def _seed(self) -> int:
        """A seed for a draw the registry makes for this player, from the player's own generator."""
        return int(self.rng.integers(2**63))

    def _cross_train(self, child: Offspring, opponents: list, individual: str, steps: int, phase: str) -> None:
        """Own generator against the opponents' discriminators, then own discriminator against their
        generators (the multi-generator pull of one bout); only the own side learns."""
        genome = child.genome
        for net in opponents:
            net.generator.requires_grad_(False)
            net.discriminator.requires_grad_(False)
        common = dict(loss=genome.loss, first_step=self.steps, between=self.turns.between)
        with self.turns:
            rows = bout([child.pair.generator], [o.discriminator for o in opponents], self.data, steps,
                        genome.batch_size, self.torch_rng, g_optimizer=child.optimizers[0], average=child.average,
                        **common).rows
            rows += bout([o.generator for o in opponents], [child.pair.discriminator], self.data, steps,
                         genome.batch_size, self.torch_rng, d_optimizer=child.optimizers[1], replay=self.replay,
                         replay_share=self.arena.replay_share, **common).rows
        self._trace(individual, rows, phase)

    def _trace(self, individual: str, rows: list[dict], phase: str) -> None:
        self.traces.add(individual, self.generation, rows, phase=phase)
        self.loop_rows += len(rows)

    def _next(self, current: Offspring, individual: str, move, fitness: float | None) -> Offspring:
        """The pair of the next loop: the same one, trained on (its optimizers with it), or a child of the
        parents the move names, built from their weights and optimizer states."""
        if move is None or not move.breeds:
            return self._tuned(continued(current, individual, fitness))
        if self.tuning is not None:  # a new pair: its search over its rates starts afresh
            self.tuning = Tuning(self.arena.tune)
        chosen, d_chosen = list(move.parents), list(move.d_parents)
        own = {"id": individual, "genome": current.genome.to_dict()}
        mine = {**current.pair.state_dicts(), **current.optimizer_states()}
        states = []
        for group in (chosen, d_chosen):
            for k, parent in enumerate(group):
                weights = mine if parent["id"] == individual else self.opponents.fetch(parent)
                if weights is None:  # lost with its node: the own individual stands in
                    group[k], weights = own, mine
                states.append(weights)
        # Under steps_spread the player's loop cost stays its own, whoever the parents were.
        steps = self.arena.first_steps(self.index, self.spec.players) if self.arena.steps_spread != 1 else None
        if self.arena.explore == "perturb":
            return perturbed(chosen[0], states[0], self.rng, self.mutation, self.device, steps)
        mutation = self.mutation
        if mutation.adapt:
            mutation = adapted(mutation, ray.get(self.registry.effects.remote()))
        return bred(chosen, d_chosen, states, self.rng, mutation, self.device, steps,
                    say=lambda text: print(f"{self.name}: {text}"))
