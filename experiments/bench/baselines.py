"""The non-arena baselines of the benchmarks: plain GANs trained with the arena's own `bout()` (or, for
the throughput benchmark, a bare torch loop), on a CPU-time budget, in plain processes. No Ray.

Budgets are CPU-seconds of the training process (`time.process_time`, so a loaded machine slows a
baseline down without shortening what it gets); evaluation is outside the budget and follows the
arena's final evaluation (`experiments/evaluate.py`): the generator in eval mode, `judge.samples`
samples drawn with `torch.Generator().manual_seed(seed)`; with a screen, also those samples screened by the
GAN's own discriminator (`arena.screen`), as the arena screens its products by its population's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from agents.turns import CoreTurns, OwnCore, preempted
from arena.average import Average
from arena.bout import bout, discriminator_loss, generator_loss
from arena.datasets import GaussianMixture, ImageDataset, load_dataset
from arena.ensemble import Mixture, fit_weights, quality_loss
from arena.metrics import Judge
from arena.config import ArenaConfig, lr_scale
from arena.founders import found
from arena.refine import refinable
from arena.screen import REGIONS, treated
from experiments.bench.common import host_times, stolen_share
from experiments.bench.results import ROOT
from experiments.evaluate import screened_quality
from storage.checkpoints import save_checkpoint
from genome import Genome, Layer, OptimizerGene, build_pair, make_optimizer
from genome.build import Generator, Pair
from genome.operators import MutationConfig


def single_genome(data_shape: tuple[int, ...]) -> Genome:
    """The one conventional GAN of baseline (b), fixed so every seed trains the same architecture.

    2-D: generator and discriminator of 3×256 ReLU layers, Adam 1e-4 with β (0.5, 0.999), batch 256,
    latent 8 (the plain MLP GAN of the design notes' measurement). Images: DCGAN's shape (a linear map
    to 64×7×7, two stride-2 transposed convolutions with batch norm, tanh head; a discriminator of two
    stride-2 convolutions with leaky ReLU), Adam 2e-4 with β (0.5, 0.999), batch 64, latent 32.
    """
    adam = OptimizerGene("adam", 1e-4, (0.5, 0.999))
    if len(data_shape) == 1:
        dense = tuple(Layer("dense", 256, "relu") for _ in range(3))
        return Genome(dense, dense, 8, "normal", adam, adam, 256, 100, data_shape=tuple(data_shape))
    side = data_shape[1]
    if side % 4:
        raise ValueError(f"the image baseline needs a side divisible by 4; got {data_shape}")
    generator = (Layer("reshape", 64, size=side // 4),
                 Layer("deconv", 32, "relu", "batch", kernel=4, stride=2, padding=1),
                 Layer("deconv", 16, "relu", "batch", kernel=4, stride=2, padding=1))
    discriminator = (Layer("conv", 32, "leaky_relu", kernel=4, stride=2, padding=1),
                     Layer("conv", 64, "leaky_relu", "layer", kernel=4, stride=2, padding=1))
    adam = OptimizerGene("adam", 2e-4, (0.5, 0.999))
    return Genome(generator, discriminator, 32, "normal", adam, adam, 64, 100, data_shape=tuple(data_shape))


FRESH = 1_000_003  # added to a job's evaluation seed: the stream of its second judgement, apart from every run's


@dataclass(frozen=True)
class Job:
    """One plain GAN to train and judge: picklable, for worker processes."""

    label: str
    genome: dict
    dataset: str
    cpu_seconds: float
    init_seed: int  # torch's global generator, which module initialisation draws from
    rng_seed: int  # the torch.Generator of noise and real batches
    eval_seed: int
    lr_final: float = 1.0  # learning rates decay linearly over the budget to this share, as the arena's
    screen: float = 1.0  # below 1 (or with `refine`), the samples are also judged screened by the GAN's own discriminator
    regions: int = REGIONS  # the screen's regions (`arena.screen_regions`)
    refine: int = 0  # the screened samples' refinement steps (`arena.refine`)
    save: str = ""  # where to save the trained pair (a checkpoint, as a player's), for screens across jobs
    average: float = 0.0  # the decay of its generator's weight average (`arena.average`; 0: none), given out


def independent_jobs(run_seed: int, players: int, dataset: str, cpu_seconds: float, mutation: MutationConfig,
                     arena: ArenaConfig) -> list[Job]:
    """Baseline (c): the arena's first-generation players, each alone, `cpu_seconds` each, with the arena's
    learning-rate schedule and weight average: the arena less its fights and breeding."""
    shape = load_dataset(dataset).shape
    founders = [found(run_seed, i, players, shape, mutation, arena) for i in range(players)]
    return [Job(f"independent-{run_seed}-{i}", f.genome.to_dict(), dataset, cpu_seconds, f.init_seed, f.noise_seed,
                run_seed, arena.lr_final, arena.screen, arena.screen_regions, arena.refine, average=arena.average)
            for i, f in enumerate(founders)]


def single_job(run_seed: int, dataset: str, cpu_seconds: float, screen: float = 1.0, regions: int = REGIONS,
               refine: int = 0) -> Job:
    """Baseline (b): the fixed conventional GAN with seeds derived from the run seed, `cpu_seconds`."""
    seed = np.random.SeedSequence([run_seed, 1_000_000])  # apart from every player's [run_seed, i]
    init, rng = (int(v) for v in seed.generate_state(2))
    return Job(f"single-{run_seed}", single_genome(load_dataset(dataset).shape).to_dict(), dataset, cpu_seconds,
               init, rng, run_seed, screen=screen, regions=regions, refine=refine)


def train_gan(genome: Genome, data: GaussianMixture | ImageDataset, cpu_seconds: float, init_seed: int,
              rng_seed: int, lr_final: float = 1.0, average: float = 0.0) -> tuple[Pair, dict]:
    """One pair trained by `bout()` with both optimizers (kept for the whole run, as a plain GAN does)
    until this process has used `cpu_seconds` of CPU time (at most one step more); at least one step.
    Learning rates decay linearly over that budget to `lr_final` of the genes' (1: constant). With an
    `average` decay, the pair returned holds its generator's weight average, as a player gives it out."""
    torch.manual_seed(init_seed)
    pair = build_pair(genome)
    rng = torch.Generator().manual_seed(rng_seed)
    g_optimizer = make_optimizer(genome.g_optimizer, pair.generator.parameters())
    d_optimizer = make_optimizer(genome.d_optimizer, pair.discriminator.parameters())
    averaging = Average(pair.generator, average) if average else None
    cpu, wall, steps = time.process_time(), time.perf_counter(), 0
    while True:
        left = cpu_seconds - (time.process_time() - cpu)
        if left <= 0 and steps:
            break
        for optimizer, gene in ((g_optimizer, genome.g_optimizer), (d_optimizer, genome.d_optimizer)):
            for group in optimizer.param_groups:
                group["lr"] = gene.lr * lr_scale(1 - left / cpu_seconds if cpu_seconds else 1.0, lr_final)
        # A single thread's CPU time passes no faster than wall time, so this deadline never lets the bout
        # overspend by more than its last step; on a busy machine it ends early and the loop goes on.
        steps += len(bout([pair.generator], [pair.discriminator], data, genome.steps, genome.batch_size, rng,
                          g_optimizer=g_optimizer, d_optimizer=d_optimizer, loss=genome.loss, first_step=steps,
                          deadline=time.time() + max(left, 0.0), average=averaging).rows)
    if averaging is not None:
        pair.generator.load_state_dict(averaging.state)
    return pair, {"steps": steps, "cpu_seconds": time.process_time() - cpu,
                            "wall_seconds": time.perf_counter() - wall}


@torch.no_grad()
def evaluate(generator: Generator, judge: Judge, seed: int) -> dict:
    """As the arena's final evaluation: eval mode, `judge.samples` samples from a generator seeded `seed`."""
    generator.eval()
    return judge.quality(generator.sample(judge.samples, torch.Generator().manual_seed(seed)))


def run_job(job: Job) -> dict:
    """Train and judge one job in this process; the metrics, steps and CPU time spent, and under a screen
    the metrics of the screened samples (`screened`). Saves the pair where the job says."""
    data = load_dataset(job.dataset)
    pair, spent = train_gan(Genome.from_dict(job.genome), data, job.cpu_seconds, job.init_seed, job.rng_seed,
                            job.lr_final, job.average)
    judge = Judge(data)
    # Each judged twice, on samples of its own and on fresh ones (`best_and_mean`: the judge's pick among
    # several is scored on the second).
    result = {"label": job.label, **spent, **evaluate(pair.generator, judge, job.eval_seed),
              "fresh": evaluate(pair.generator, judge, job.eval_seed + FRESH)}
    refine = refinable(data, job.refine)
    if treated(job.screen, refine):
        result["screened"], result["screened_fresh"] = (
            screened_quality(pair.generator, [pair.discriminator], judge, job.screen, seed, job.regions, refine)
            for seed in (job.eval_seed, job.eval_seed + FRESH))
    if job.save:
        save_checkpoint(job.save, {"genome": job.genome, **pair.state_dicts()})
    return result


@dataclass(frozen=True)
class BareJob:
    """Genomes to time in a bare torch loop (`bare_step_seconds`) by process `rank` of `together`: rank 0 first
    times them alone while the others wait; then, with 1 < `cores` < `together`, ranks below `cores` time them at
    once, one process a core, while the rest wait; then all time them at once, and keep the machine as busy until
    the last is done; then, where they take turns (`takes_turns`), all at once again, taking turns of `turn_ms`
    on `cores` cores as players do (`agents.turns.CoreTurns`). Each writes a file into
    `folder`/<stage> when it reaches a stage and waits for all (at most `patience` s)."""

    genomes: list
    dataset: str
    replay_share: float
    min_seconds: float
    together: int
    folder: str
    rank: int = 0
    patience: float = 300.0
    cores: int = 0
    turn_ms: float = 0.0


def time_bare(job: BareJob) -> dict:
    """Wall and CPU seconds per step of each of `job.genomes`, in order: `together`, timed while all the job's
    processes are; for rank 0 `alone` too, timed before the others start; for ranks below `job.cores`
    `per_core`, timed while only those are; and `in_turns`, all at once in turns (see `BareJob`). Under
    `preempted`, the times the OS preempted this process's thread a CPU-second in each stage (None where not
    counted); under `stolen`, the share of the machine's busy time its host took in each stage
    (`common.stolen_share`)."""
    data = load_dataset(job.dataset)
    genomes = [Genome.from_dict(g) for g in job.genomes]
    rates: dict[str, float | None] = {}
    stolen: dict[str, float | None] = {}

    def timed(stage: str, turns=OwnCore()) -> list[tuple[float, float]]:
        switched, cpu, machine = preempted(), time.thread_time(), host_times()
        with turns:  # a turn held across the genomes' timings, given up at step boundaries as a player does
            costs = [bare_step_seconds(g, data, min_seconds=job.min_seconds, replay_share=job.replay_share,
                                       between=turns.between) for g in genomes]
        spent = time.thread_time() - cpu
        rates[stage] = None if switched is None or not spent else (preempted() - switched) / spent
        stolen[stage] = stolen_share(machine, host_times())
        return costs

    def all_there(stage: str, meanwhile=lambda: time.sleep(0.01)) -> None:
        folder = Path(job.folder) / stage
        folder.mkdir(exist_ok=True)
        (folder / str(job.rank)).touch()
        waited = time.monotonic()
        while (there := len(list(folder.iterdir()))) < job.together:
            if time.monotonic() - waited > job.patience:  # a sibling died: fail rather than hang
                raise SystemExit(f"error: {there} of {job.together} bare timers reached '{stage}' "
                                 f"in {job.patience:g} s")
            meanwhile()

    def busy(turns=OwnCore()) -> None:  # an untimed round: a straggler's last genomes are timed on a machine as
        with turns:  # busy as the rest, sharing it as they were
            bare_step_seconds(genomes[-1], data, min_seconds=0, min_steps=1, warmup=0, between=turns.between)

    out = {}
    all_there("start")
    if job.rank == 0:
        out["alone"] = timed("alone")
    all_there("alone")
    if 1 < job.cores < job.together:
        if job.rank < job.cores:
            out["per_core"] = timed("per_core")
            all_there("per_core", busy)
        else:
            all_there("per_core")
    out["together"] = timed("together")
    all_there("done", busy)
    if takes_turns(job.turn_ms, job.cores, job.together):
        all_there("turns")  # every process out of its busy rounds (time-sliced, not in turns) before any is timed
        turns = CoreTurns("bare", job.cores, job.turn_ms / 1000, directory=job.folder)
        try:
            out["in_turns"] = timed("in_turns", turns)
            all_there("in_turns", lambda: busy(turns))
        finally:
            turns.close()
    return {**out, "preempted": rates, "stolen": stolen}


def single_thread_env() -> dict[str, str]:
    """The environment of a fresh interpreter that runs this project's code on one thread."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def _in_process(job: Job | BareJob):
    """`run_job` or `time_bare` in a fresh single-thread interpreter: nothing of this process (Ray, torch
    threads) carried over."""
    done = subprocess.run([sys.executable, "-m", "experiments.bench.baselines"],
                          input=json.dumps({"kind": type(job).__name__, **asdict(job)}),
                          capture_output=True, text=True, cwd=ROOT, env=single_thread_env())
    if done.returncode != 0:
        raise RuntimeError(f"{getattr(job, 'label', 'bare timing')} failed (exit code {done.returncode}): "
                           f"{done.stderr.strip().splitlines()[-1] if done.stderr.strip() else 'no output'}")
    return json.loads(done.stdout.strip().splitlines()[-1])


STAGES = ("alone", "per_core", "together", "in_turns")


def takes_turns(turn_ms: float, cores: int, processes: int) -> bool:
    """Whether bare loops, `processes` single-thread ones on `cores` cores, are also timed in turns of `turn_ms`:
    where players would take them (more players than cores; `experiments.run.new_player`)."""
    return turn_ms > 0 and 1 <= cores < processes


def time_bare_loops(genomes: list[Genome], dataset: str, processes: int, replay_share: float = 0.0,
                    min_seconds: float = 0.5, cores: int = 0,
                    turn_ms: float = 0.0) -> tuple[dict[str, list[tuple[float, float]]], dict[str, dict[str, float]]]:
    """`bare_step_seconds` of each genome in fresh single-thread processes, wall and CPU seconds per step, by
    stage: `alone`, one process on an idle machine; with 1 < `cores` < `processes`, `per_core`, as many at once
    as the machine has cores (the same arithmetic on every core, none shared: a bare loop's best use of the
    machine); `together`, `processes` at once (as many as a run has players, sharing the cores as the OS slices
    them); and where they take turns (`takes_turns`), `in_turns`, `processes` at once taking turns of `turn_ms`
    on `cores` cores, as the players did. Per genome, the mean over the processes of a stage; and, under
    `preempted` and `stolen`, by stage, the mean of the processes' preemptions a CPU-second and of the shares of
    the machine's CPU its host took while they ran (stages where the OS counts them)."""
    with tempfile.TemporaryDirectory(prefix="bare-") as folder:
        jobs = [BareJob([g.to_dict() for g in genomes], dataset, replay_share, min_seconds, processes, folder, rank,
                        cores=cores, turn_ms=turn_ms) for rank in range(processes)]
        with ThreadPoolExecutor(max_workers=processes) as pool:
            timed = list(pool.map(_in_process, jobs))
    stages = {stage: [t[stage] for t in timed if stage in t] for stage in STAGES}
    measured = {kind: {stage: [r for t in timed if (r := t[kind].get(stage)) is not None] for stage in STAGES}
                for kind in ("preempted", "stolen")}
    return ({stage: [(float(np.mean([t[i][0] for t in found])), float(np.mean([t[i][1] for t in found])))
                     for i in range(len(genomes))]
             for stage, found in stages.items() if found},
            {kind: {stage: float(np.mean(found)) for stage, found in by_stage.items() if found}
             for kind, by_stage in measured.items()})


def run_jobs(jobs: list[Job], workers: int) -> list[dict]:
    """Each job in its own single-thread process, `workers` at a time, longest budgets first; results in
    the order of `jobs`."""
    if not jobs:
        return []
    for name in {job.dataset for job in jobs}:
        Judge(load_dataset(name))  # an image classifier is trained and cached once, not by every worker
    order = sorted(range(len(jobs)), key=lambda i: -jobs[i].cpu_seconds)
    with ThreadPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        results = list(pool.map(_in_process, [jobs[i] for i in order]))
    out: list[dict] = [{}] * len(jobs)
    for i, result in zip(order, results):
        out[i] = result
    return out


@torch.no_grad()
def pooled(pairs: list[Pair], data: GaussianMixture | ImageDataset, judge: Judge, seed: int,
           screen: float, regions: int = REGIONS, refine: int = 0,
           drawn: int | None = None) -> tuple[dict, dict | None]:
    """The independent GANs as the arena's products are made: a mixture of their generators with weights
    fitted on real training data (drawn by `seed`), judged as it is and, under a screen or refinement, screened
    and refined by all their discriminators (the arena's screen without its fights), on the stream of samples
    `drawn` (by default `seed`'s)."""
    refine = refinable(data, refine)
    rng = torch.Generator().manual_seed(seed)
    mixture = Mixture([p.generator for p in pairs])
    fit_weights(mixture, data.sample(judge.samples, rng), rng)
    drawn = seed if drawn is None else drawn
    raw = screened_quality(mixture, [], judge, 1.0, drawn)
    if not treated(screen, refine):
        return raw, None
    return raw, screened_quality(mixture, [p.discriminator for p in pairs], judge, screen, drawn, regions, refine)


def best_and_mean(results: list[dict], fresh: list[dict]) -> tuple[dict, dict]:
    """The judge's pick of several generators (`quality_loss`: FID; or KL plus the low-quality share, a metric
    that knows the true modes or labels: a diagnostic) scored on `fresh`, the same generators' metrics on other
    samples than those that picked it (the best of several noisy estimates flatters, by as much as they vary);
    and the mean of every metric of `results`."""
    if len(fresh) != len(results):
        raise ValueError(f"{len(results)} generators judged but {len(fresh)} judged again on fresh samples")
    picked = min(range(len(results)), key=lambda i: quality_loss(results[i]))
    keys = [k for k in results[0] if k != "label" and isinstance(results[0][k], (int, float))]
    return {**results[picked], **fresh[picked]}, {k: float(np.mean([r[k] for r in results])) for k in keys}


def bare_step_seconds(genome: Genome, data: GaussianMixture | ImageDataset, seed: int = 0,
                      min_seconds: float = 1.0, min_steps: int = 10, warmup: int = 5,
                      replay_share: float = 0.0, between=lambda: None) -> tuple[float, float]:
    """Wall and CPU seconds per training step of `genome`'s pair in a bare torch loop on this process's
    threads: the step `bout()` takes (fakes, discriminator on real and detached fakes, generator on the
    same fakes, the genome's loss, batch and optimizers), without its trace rows, `.item()` calls or clock
    reads. With `replay_share`, the discriminator also judges that share of a batch of older fakes (the
    previous step's), the arithmetic of the arena's replay without its buffer. Runs `genome.steps` steps,
    or more until `min_seconds` have passed, after `warmup` steps; `between` is called after each step, as
    `bout()` calls a player's turns (`agents.turns.CoreTurns.between`)."""
    torch.manual_seed(seed)
    pair = build_pair(genome)
    generator, discriminator = pair.generator.train(), pair.discriminator.train()
    g_optimizer = make_optimizer(genome.g_optimizer, generator.parameters())
    d_optimizer = make_optimizer(genome.d_optimizer, discriminator.parameters())
    rng, batch, loss = torch.Generator().manual_seed(seed), genome.batch_size, genome.loss
    replayed = int(batch * replay_share)
    older = [generator.sample(batch, rng).detach() if replayed else None]

    def step() -> None:
        fakes = generator.sample(batch, rng)
        caught = torch.cat([fakes.detach(), older[0][:replayed]]) if replayed else fakes.detach()
        d_loss = discriminator_loss(loss, discriminator(data.sample(batch, rng)), discriminator(caught))
        older[0] = fakes.detach()
        d_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        d_optimizer.step()
        g_loss = generator_loss(loss, discriminator(fakes))
        g_optimizer.zero_grad(set_to_none=True)
        g_loss.backward()
        g_optimizer.step()
        between()

    for _ in range(warmup):
        step()
    steps, started, cpu = 0, time.perf_counter(), time.process_time()
    while steps < max(min_steps, genome.steps) or time.perf_counter() - started < min_seconds:
        step()
        steps += 1
    return (time.perf_counter() - started) / steps, (time.process_time() - cpu) / steps


if __name__ == "__main__":  # one job from stdin (JSON), its result to stdout: how `_in_process` runs each
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)  # as a player does (`agents.player.Player`): equal arithmetic
    torch.set_num_interop_threads(1)
    payload = json.loads(sys.stdin.read())
    kinds = {"Job": (Job, run_job), "BareJob": (BareJob, time_bare)}
    kind = payload.pop("kind")
    if kind not in kinds:
        raise SystemExit(f"error: unknown job kind {kind!r}; known: {', '.join(kinds)}")
    cls, work = kinds[kind]
    print(json.dumps(work(cls(**payload))))
