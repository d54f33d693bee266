"""The quality and throughput benchmarks: their plain-GAN baselines, the figures they read from a run's
timelines, and both commands end to end on tiny budgets, writing only under tmp_path; what the benchmarks
share (settings, the CPU meter) and the report's prose, which no benchmark has to be imported for."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import math
import re
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from arena.datasets import ring8
from arena.ensemble import quality_loss
from arena.founders import found
from arena.metrics import Judge, mixture_quality
from experiments import cli
from arena.metrics import IMAGE_SAMPLES, MIXTURE_SAMPLES
from experiments.bench import baselines, common, quality, results, scores, throughput
from arena.config import ArenaConfig
from experiments.summaries import screen_words
from genome import Genome, MutationConfig, random_genome


@pytest.fixture
def bench(tmp_path, monkeypatch):
    """The bench command line, its results and BENCHMARKS.md redirected under tmp_path."""
    monkeypatch.setattr(results, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(results, "REPORT", tmp_path / "BENCHMARKS.md")
    app = importlib.import_module("experiments.bench.__main__").app
    repository = results.ROOT / "benchmarks" / "results"

    def ours() -> list[str]:  # other benchmarks may be writing there meanwhile
        return sorted(p.name for pattern in ("quality-*", "throughput-*") for p in repository.glob(pattern))

    before = ours()

    def run(*args: str) -> dict:  # without the dashboard of its runs: seconds of start-up each
        assert cli.run_app(app, [*args, "--set", "dashboard=false"]) == 0
        written = list((tmp_path / "results").glob("*.json"))
        assert len(written) == 1, written
        return json.loads(written[0].read_text())

    yield run
    assert ours() == before, "a test wrote into the repository's benchmarks/results"


def test_the_independent_gans_start_from_the_players_first_genomes_and_seeds():
    """Both start from `arena.founders.found`; its draws are the ones players made before it existed."""
    cfg, arena = MutationConfig(), ArenaConfig(batch_size=128, steps=100, steps_spread=4.0, lr_final=0.5,
                                               founders="random")
    for run_seed in (0, 7):
        jobs = baselines.independent_jobs(run_seed, 3, "ring8", 1.0, cfg, arena)
        assert [Genome.from_dict(j.genome).steps for j in jobs] == [100, 200, 400]  # the players' spread of costs
        for index, job in enumerate(jobs):
            founding = found(run_seed, index, 3, (2,), cfg, arena)
            assert Genome.from_dict(job.genome) == founding.genome
            assert (job.init_seed, job.rng_seed) == (founding.init_seed, founding.noise_seed)
            assert job.lr_final == 0.5  # the arena's learning-rate schedule, as its players follow it
            seed = np.random.SeedSequence([run_seed, index])
            rng = np.random.default_rng(seed)
            assert founding.genome == random_genome(rng, cfg, 128, arena.first_steps(index, 3), (2,), "auto",
                                                    arena.pack)
            assert founding.rng.integers(2**63) == rng.integers(2**63)  # the player's stream goes on from there
            assert (founding.init_seed, founding.noise_seed) == (int(seed.generate_state(2)[1]),
                                                                 int(seed.generate_state(1)[0]))
        assert len({j.genome.__repr__() for j in jobs}) == 3  # three players, three genomes


def test_one_gan_trains_for_its_cpu_budget_and_learns():
    data = ring8()
    torch.set_num_threads(1)
    genome = baselines.single_genome(data.shape)
    pair, spent = baselines.train_gan(genome, data, 1.5, init_seed=1, rng_seed=2)
    generator = pair.generator
    assert 1.5 <= spent["cpu_seconds"] < 1.8 and spent["steps"] > 10
    untrained, one = baselines.train_gan(genome, data, 0.0, init_seed=1, rng_seed=2)
    untrained = untrained.generator
    assert one["steps"] == 1
    with torch.no_grad():
        radius = [float(g.eval().sample(2000, torch.Generator().manual_seed(0)).norm(dim=1).sub(1).abs().mean())
                  for g in (generator, untrained)]
    assert radius[0] < radius[1]  # nearer the ring of modes after its budget than after one step
    quality_ = baselines.evaluate(generator, Judge(data), seed=3)
    assert 0 <= quality_["modes"] <= 8 and 0 <= quality_["high_quality"] <= 1 and 0 <= quality_["kl"] <= math.log(8)


def test_evaluation_follows_the_arenas_final_one():
    data = ring8()
    generator = baselines.train_gan(baselines.single_genome(data.shape), data, 0.0, 1, 2)[0].generator
    seen = {}

    class Spy:
        samples = 123

        def quality(self, samples):
            seen["shape"], seen["training"] = tuple(samples.shape), generator.training
            return mixture_quality(samples.numpy(), data)

    generator.train()
    metrics = baselines.evaluate(generator, Spy(), seed=5)
    assert seen == {"shape": (123, 2), "training": False}
    expected = mixture_quality(generator.sample(123, torch.Generator().manual_seed(5)).detach().numpy(), data)
    assert metrics == expected


def test_each_seeds_figures_are_named_by_that_seed_where_a_product_is_missing_from_another(monkeypatch, tmp_path):
    """A row that only some seeds have (a mixture one run could not make) names the seeds it came from, not the
    first seeds of the range."""
    def figures(modes: float) -> dict:
        return {"modes": modes, "high_quality": 0.5, "kl": 0.1}

    def run_arena(ws, cfg, name):
        quality = {"champion": figures(cfg.seed)}
        if cfg.seed == 6:
            quality["ensemble"] = figures(60)
        return {"summary": {"quality": quality}, "cpu_players": 1.0, "individuals": [], "over_time": {},
                "run_id": name, "cpu_by_process": {}}

    monkeypatch.setattr(quality, "run_arena", run_arena)
    ws = common.Workspace(tmp_path, "mongodb://unused")
    rows, notes = quality.benchmark("ring8", 2, 1.0, 2, 1, ["arena"], {}, ws, say=lambda _: None, first_seed=5)
    assert {row["method"]: row["seeds"] for row in rows} == {
        "arena, champion by its standing": 2, "arena, mixture of the first by standing": 1}
    assert "champion by its standing: seed 5: 5 modes" in notes and "seed 6: 6 modes" in notes
    assert "mixture of the first by standing: seed 6: 60 modes" in notes and "seed 5: 60" not in notes


def test_the_judges_pick_is_scored_on_fresh_samples_and_the_mean_is_the_mean():
    runs = [{"label": "a", "modes": 8, "high_quality": 0.9, "kl": 0.2, "steps": 10},
            {"label": "b", "modes": 6, "high_quality": 0.99, "kl": 0.05, "steps": 30},
            {"label": "c", "modes": 8, "high_quality": 0.5, "kl": 0.01, "steps": 20}]
    fresh = [{"modes": 8, "high_quality": 0.8, "kl": 0.3}, {"modes": 7, "high_quality": 0.97, "kl": 0.06},
             {"modes": 8, "high_quality": 0.6, "kl": 0.02}]
    best, mean = baselines.best_and_mean(runs, fresh)
    # Picked on the first judgement, scored on the second: the pick's luck on its own samples is not counted.
    assert quality_loss(runs[1]) == min(map(quality_loss, runs)) < min(map(quality_loss, fresh))
    assert best["label"] == "b" and (best["modes"], best["high_quality"], best["kl"]) == (7, 0.97, 0.06)
    assert mean == pytest.approx({"modes": 22 / 3, "high_quality": 2.39 / 3, "kl": 0.26 / 3, "steps": 20})
    with pytest.raises(ValueError, match="3 generators judged but 2"):
        baselines.best_and_mean(runs, fresh[:2])


def test_the_bare_loop_trains_the_pair_and_is_timed_on_both_clocks():
    genome = Genome.from_dict({**baselines.single_genome((2,)).to_dict(), "steps": 20})
    wall, cpu = baselines.bare_step_seconds(genome, ring8(), min_seconds=0.1)
    assert 0 < wall < 1 and 0 < cpu < 1
    wall, cpu = baselines.bare_step_seconds(genome, ring8(), min_seconds=0.1, replay_share=0.25)  # the replay's arithmetic
    assert 0 < wall < 1 and 0 < cpu < 1


def test_target_met_says_by_how_much_each_metric_misses():
    perfect = [{"modes": 8, "high_quality": 0.99, "kl": 0.01}] * 2
    assert scores.target_met("ring8", perfect, None) == "modes yes, HQ yes, KL yes"
    short = [{"modes": 7, "high_quality": 0.95, "kl": 0.05}, {"modes": 8, "high_quality": 0.93, "kl": 0.03}]
    assert scores.target_met("ring8", short, None) == "modes no (−0.5), HQ no (−3.0 pts), KL no (+0.020)"
    images = [{"fid": 6.0, "tvd": 0.04}]
    assert scores.target_met("mnist", images, 10.0) == "TVD yes, FID yes (0.60× the one GAN's)"
    assert scores.target_met("mnist", images, 8.0).startswith("TVD yes, FID no (0.75×")
    assert "n/a" in scores.target_met("mnist", images, None)


def test_settings_take_a_file_and_sets_and_refuse_what_the_benchmark_sets(tmp_path):
    toml = tmp_path / "arena.toml"
    toml.write_text("[arena]\nsteps = 50\n[mutation]\nmax_layers = 3\n")
    base = common.settings(toml, ["arena.opponents=2", "arena.matchmaking=k_best", "mutation.adapt=true"])
    assert base == {"arena": {"steps": 50, "opponents": 2, "matchmaking": "k_best"},
                    "mutation": {"max_layers": 3, "adapt": True}}
    cfg = common.run_config(base, dataset="grid25", players=3, seconds=5, seed=1, cpus=2, schedule="barrier")
    assert (cfg.arena.steps, cfg.arena.schedule, cfg.players, cfg.num_cpus, cfg.mutation.adapt) == \
        (50, "barrier", 3, 2, True)
    for bad in (["players=3"], ["arena.schedule=barrier"], ["noequals"]):
        with pytest.raises(ValueError):
            common.settings(None, bad)
    with pytest.raises(ValueError, match="arena.bogus"):
        common.run_config(common.settings(None, ["arena.bogus=1"]), dataset="ring8", players=2, seconds=1,
                          seed=0, cpus=1)


def test_the_cpu_meter_counts_a_child_process_and_tells_players_apart():
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < {}: pass\ntime.sleep(0.5)"
    with common.CpuMeter(every=0.1) as meter:
        started = time.time()
        subprocess.run([sys.executable, "-c", burn.format(1.0)], check=True)
        ended = time.time()
        # A command line as Ray gives a Player actor's process: counted apart from the others.
        subprocess.run(["ray::Player.loop", "-c", burn.format(0.5)], executable=sys.executable, check=True)
    assert 0.8 <= meter.used(players=False) <= 1.6
    assert 0.4 <= meter.used(players=True) <= 1.0
    assert meter.used(players=True, end=ended) == pytest.approx(0, abs=0.05)
    assert meter.used(players=False, start=ended, end=ended + 10) == pytest.approx(0, abs=0.05)
    assert meter.used(players=False, start=started, end=ended) >= 0.8
    by_name = meter.used_by()  # the same time, told apart by process
    assert by_name["ray::Player"] == pytest.approx(meter.used(players=True))
    assert sum(s for n, s in by_name.items() if n not in ("ray::Player", "driver")) == \
        pytest.approx(meter.used(players=False))
    assert list(by_name.values()) == sorted(by_name.values(), reverse=True)


@pytest.mark.parametrize("command, name", [
    ("ray::Player.run", "ray::Player"), ("ray::Registry", "ray::Registry"), ("ray::IDLE", "ray::IDLE"),
    ("/v/lib/ray/core/src/ray/raylet/raylet --raylet_socket_name=/tmp/x", "raylet"),
    ("/v/bin/python /v/lib/ray/dashboard/dashboard.py --host=127.0.0.1", "dashboard"),
    ("/v/bin/python -u /v/lib/ray/_private/log_monitor.py --logs-dir=/tmp", "log_monitor"),
    ("/v/bin/python3 /v/bin/secantusd-py --port 1", "secantusd-py"),
    ("/usr/bin/python3.11 -m experiments.run --players 4", "experiments.run"),
    ("/v/bin/python -B -c from multiprocessing.forkserver import main", "python-c"),
    ("/v/bin/python -X importtime -W ignore s.py", "s"), ("python -mexperiments.run --players 4", "experiments.run"),
    ("python -cimport x", "python-c"), ("python --check-hash-based-pycs always s.py", "s"),
    ("/usr/bin/mongod --dbpath /tmp/db", "mongod"), ("python", "python"), ("", "(exited)")])
def test_a_process_is_named_by_what_it_runs(command, name):
    assert common.process_name(command) == name


def test_the_cpu_outside_the_players_is_told_largest_first_and_the_rest_summed():
    used = {"ray::Player": 160.0, "dashboard": 2.5, "raylet": 4.0, "secantusd-py": 1.3, "gcs_server": 0.5,
            "log_monitor": 0.25, "ray::IDLE": 0.125, "monitor": 0.125}
    assert common.spent_elsewhere(used, top=3) == \
        "8.8 s (raylet 4.0 s, dashboard 2.5 s, secantusd-py 1.3 s, 4 others 1.0 s)"
    assert common.spent_elsewhere({"ray::Player": 1.0}) == "0.0 s"
    assert common.spent_elsewhere({}) == "-"  # not measured, which is not "nothing elsewhere"


def test_a_process_counts_under_the_name_ray_gives_it_last(monkeypatch):
    """Ray starts a worker as `default_worker.py`, names it `ray::IDLE`, then after its actor once placed: all of
    its time is that actor's. A process that turns zombie keeps its name; the driver (this process) stands apart."""
    meter = common.CpuMeter()
    worker, zombie = (101, 7), (102, 7)
    readings = iter([
        {worker: (0.0, "/v/bin/python -u /v/lib/ray/_private/workers/default_worker.py", 0, 0),
         zombie: (0.0, "/v/bin/python3 /v/bin/secantusd-py", 0, 0), meter.driver: (0.0, "pytest", 0, 0)},
        {worker: (1.0, "ray::IDLE", 0, 0), zombie: (0.5, "/v/bin/python3 /v/bin/secantusd-py", 0, 0),
         meter.driver: (2.0, "pytest", 0, 0)},
        {worker: (3.0, "ray::Player.run", 0, 0), zombie: (0.75, "", 0, 0), meter.driver: (4.0, "pytest", 0, 0)}])
    monkeypatch.setattr(common.CpuMeter, "_read", staticmethod(lambda: next(readings)))
    for _ in range(3):
        meter._take()
    assert meter.used(players=True) == pytest.approx(3.0) and meter.used(players=False) == pytest.approx(0.75)
    assert meter.used_by() == {"driver": 4.0, "ray::Player": 3.0, "secantusd-py": 0.75}


def test_the_cpu_meter_knows_a_process_again_after_the_system_clock_is_set(monkeypatch):
    """psutil gives a start time since the epoch from the boot time the clock gives now: a clock set forward
    (a virtual machine's, synchronised) must not make a process new, or its CPU time is counted twice."""
    import psutil
    linux = pytest.importorskip("psutil._pslinux")  # the platform whose clock the machines here keep

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        before = {key for key in common.CpuMeter._read() if key[0] == child.pid}
        booted = psutil.boot_time()
        monkeypatch.setattr(linux, "boot_time", lambda: booted + 100.0)
        after = {key for key in common.CpuMeter._read() if key[0] == child.pid}
        assert len(before) == 1 and after == before
    finally:
        child.kill()
        child.wait()


def test_the_cpu_meter_reads_nothing_before_it_is_entered():
    assert common.CpuMeter().used(players=False) is None
    assert common.CpuMeter().stolen() is None


def test_the_share_of_the_machines_busy_time_its_host_took_is_read_between_any_two_moments(monkeypatch):
    """Steal: time this machine's cores had work while its host ran something else, as a share of the time they had
    work, between two moments, interpolated between the meter's readings; None where the OS does not count it."""
    host_times = common.host_times
    counted = host_times()
    assert (counted is None) == (sys.platform != "linux")  # Linux, CI's OS, counts it
    assert counted is None or counted[0] >= counted[1] >= 0
    machine, clock = iter([(100.0, 1.0), (200.0, 11.0), (300.0, 11.0)]), iter([10.0, 11.0, 12.0])
    monkeypatch.setattr(common, "host_times", lambda: next(machine))  # a tenth stolen, then none
    monkeypatch.setattr(common.CpuMeter, "_read", staticmethod(lambda: {}))
    monkeypatch.setattr(common, "time", SimpleNamespace(time=lambda: next(clock)))  # this module's clock only
    meter = common.CpuMeter()
    for _ in range(3):
        meter._take()
    assert meter.stolen() == pytest.approx(0.05) and meter.stolen(0.0, 100.0) == pytest.approx(0.05)
    assert meter.stolen(10.0, 11.0) == pytest.approx(0.1) and meter.stolen(11.0, 12.0) == 0
    assert meter.stolen(10.5, 11.5) == pytest.approx(0.05)  # half a second of each
    assert meter.stolen(0.0, 5.0) is None  # before the first reading: no busy time to take a share of
    assert common.stolen_share(None, (1.0, 0.0)) is None and common.stolen_share((1.0, 0.0), (1.0, 0.0)) is None
    assert common.stolen_share((1.0, 2.0), (3.0, 1.0)) is None  # a counter that went back
    # Busy time: every field but idle and iowait; guest time is inside user time already.
    fields = "user nice system idle iowait irq softirq steal guest guest_nice"
    times = namedtuple("Times", fields)(*(2.0 ** i for i in range(10)))
    monkeypatch.setattr(common.psutil, "cpu_times", lambda: times)
    assert host_times() == (1 + 2 + 4 + 32 + 64 + 128, 128)
    monkeypatch.setattr(common.psutil, "cpu_times", lambda: namedtuple("Times", "user system idle")(1.0, 1.0, 1.0))
    assert host_times() is None


def _timeline(start: float, **durations: float) -> dict:
    spans, at = {}, start
    for phase, seconds in durations.items():
        spans[phase] = [at, at + seconds]
        at += seconds
    return spans


def test_throughput_figures_from_known_timelines():
    cheap = random_genome(np.random.default_rng(0), MutationConfig(), 128, 100, (2,)).to_dict()
    dear = {**cheap, "batch_size": 256}
    key_cheap, key_dear = throughput.genome_key(cheap), throughput.genome_key(dear)
    t0 = 1_000.0
    loop = dict(train=4.0, save=0.5, publish=0.2, fight=1.0, settle=0.3)
    docs = [  # player-0: two cheap loops of 100 steps; player-1: one dear loop of 100 steps
        {"player": "player-0", "generation": 0, "trained_steps": 100, "genome": cheap, "step_cpu_ms": 25.0,
         "train_preempted": 10, "timeline": _timeline(t0, **loop, breed=0.0)},
        {"player": "player-0", "generation": 1, "trained_steps": 100, "genome": cheap,  # its CPU unrecorded
         "timeline": _timeline(t0 + 6.0, **loop)},
        {"player": "player-1", "generation": 0, "trained_steps": 100, "genome": dear, "step_cpu_ms": 100.0,
         "train_preempted": 30, "timeline": _timeline(t0, train=10.0, save=0.5, publish=0.2, fight=1.0, settle=0.3)},
    ]
    run = {"run_id": "r", "log": "-", "individuals": docs, "cpu_players": 20.0, "cpu_other": 1.0,
           "cpu_by_process": {"ray::Player": 20.0, "raylet": 1.0}}
    bare = {key_cheap: (0.03, 0.02), key_dear: (0.09, 0.08)}
    found = throughput.analyse(run, bare, players=2, cpus=2)
    bare_seconds = 200 * 0.03 + 100 * 0.09
    assert found["bare_rate"] == pytest.approx(300 / bare_seconds)
    assert found["train_overhead"] == pytest.approx(18.0 / bare_seconds - 1)
    assert found["loop_overhead"] == pytest.approx((12.0 + 12.0) / bare_seconds - 1)
    assert found["cpu_overhead"] == pytest.approx(20.0 / (200 * 0.02 + 100 * 0.08) - 1)
    assert found["compute_share"] == pytest.approx(np.mean([11.0 / 12.0, 11.5 / 12.0]))
    assert found["compute_share_min"] == pytest.approx(11.0 / 12.0)
    assert found["waiting"]["publish"] == pytest.approx(0.6 / 24.0)
    assert found["phases"]["train"] == pytest.approx(18 / 24) and found["phases"]["fight"] == pytest.approx(3 / 24)
    assert found["generations_per_hour"] == pytest.approx(3 / 12.0 * 3600)
    costs = [100 * 0.03, 100 * 0.09]
    assert found["cost_spread"] == pytest.approx(3.0)
    assert found["ideal_ratio"] == pytest.approx(np.mean([1 / c for c in costs]) * max(costs))
    assert found["coverage"] == 1.0
    # The training thread's CPU against the bare loop's, over the individuals that recorded it only.
    assert found["train_cpu_overhead"] == pytest.approx((100 * 0.025 + 100 * 0.1) / (100 * 0.02 + 100 * 0.08) - 1)
    assert found["train_cpu_rate"] == pytest.approx(200 / 12.5) and found["train_cpu_coverage"] == pytest.approx(2 / 3)
    # Its preemptions a CPU-second of it: 10 in 2.5 s and 30 in 10 s.
    assert found["train_preempted_rate"] == pytest.approx(40 / 12.5)
    # Two torch threads a player (4 CPUs, 2 players): one thread's clock would miss the other's.
    assert throughput.analyse(run, bare, players=2, cpus=4)["train_cpu_overhead"] is None

    # Four players on two cores: bare loops timed four at once take twice as long a step as one alone, and
    # both references then give the same overheads.
    halved = throughput.analyse(run, bare, players=4, cpus=2)
    shared = throughput.analyse(run, {k: (2 * w, c) for k, (w, c) in bare.items()}, players=4, cpus=2, shared=True)
    for key in ("bare_rate", "train_overhead", "loop_overhead", "cpu_overhead"):
        assert shared[key] == pytest.approx(halved[key]), key
    assert halved["loop_overhead"] == pytest.approx(12.0 / bare_seconds - 1)

    slower = throughput.analyse({**run, "individuals": docs[:1] + docs[2:]}, bare, players=2, cpus=2)
    rows = throughput.rows_of({"async": [{**found, "together": shared}], "barrier": [slower]},
                              {"dataset": "ring8", "players": 4, "cpus": 2})
    measures = [(r["measure"], r["schedule"]) for r in rows]
    assert measures[-1] == ("(iii) generations per hour", "async vs barrier")
    assert rows[-1]["result"].startswith(f"ratio {found['generations_per_hour'] / slower['generations_per_hour']:.2f}")
    whole = rows[0]
    thread = next(r for r in rows if r["measure"].endswith("of the train phase's thread"))
    assert thread["result"].startswith("overhead 25.0 ± 0.0 %") and thread["target"] == "-"
    assert whole["measure"].endswith("whole loop") and whole["target met"].startswith("no (+")
    # Where the time goes: training, then the rest largest first, and nothing unclocked (loops back to back).
    phases = next(r for r in rows if r["measure"] == "(i) share of the players' wall time in training, by phase")
    assert phases["value"] == "75.0 ± 0.0 %"
    named = [part.split(" ")[0] for part in phases["reference"].split(", ")]
    assert named == ["fight", "save", "settle", "publish", "between", "breed"]  # ties by name
    assert phases["reference"].startswith("fight 12.5 ± 0.0 %") and "between 0.0 ± 0.0 %" in phases["reference"]
    assert whole["reference"].endswith(" 4 at once") and whole["result"].endswith(" against 4 at once)")
    assert "one a core" not in whole["reference"]
    # Timed one a core too (each process a whole core: its wall is per core, not shared), a quarter dearer a step
    # than alone: that reference comes between alone and all at once, in the reference and in the result.
    # In turns, all at once again, three quarters of the OS-sliced wall (shared as the players' was).
    preempted = {"alone": 1.0, "per_core": 2.0, "together": 50.0, "in_turns": 5.0}
    stages = {"alone": bare, "per_core": {k: (1.25 * w, c) for k, (w, c) in bare.items()},
              "together": {k: (2 * w, c) for k, (w, c) in bare.items()},
              "in_turns": {k: (1.5 * w, c) for k, (w, c) in bare.items()}, "preempted": preempted,
              "stolen": {"alone": 0.0, "per_core": 0.01, "together": 0.02, "in_turns": 0.125}}
    every = throughput.against_every_reference({**run, "stolen": 0.05}, stages, players=4, cpus=2)
    per_core, turns = every["per_core"], every["in_turns"]
    assert turns["loop_overhead"] == pytest.approx((1 + halved["loop_overhead"]) / 0.75 - 1)
    assert every["bare_preempted"] == preempted and every["bare_stolen"] == stages["stolen"]
    assert every["stolen"] == 0.05
    assert every["together"]["loop_overhead"] == pytest.approx(shared["loop_overhead"])  # shared, as the players
    assert every["loop_overhead"] == pytest.approx(halved["loop_overhead"])  # alone
    assert "per_core" not in throughput.against_every_reference(run, {"alone": bare, "together": bare}, 4, 2)
    assert per_core["bare_rate"] == pytest.approx(halved["bare_rate"] / 1.25)
    assert per_core["loop_overhead"] == pytest.approx((1 + halved["loop_overhead"]) / 1.25 - 1)
    rows = throughput.rows_of({"async": [{**halved, "per_core": per_core, "together": shared, "in_turns": turns,
                                          "bare_preempted": preempted, "stolen": every["stolen"],
                                          "bare_stolen": every["bare_stolen"]}]},
                              {"dataset": "ring8", "players": 4, "cpus": 2})
    assert rows[0]["reference"].endswith(f"{per_core['bare_rate']:.0f} ± 0 2 at once (one a core), "
                                         f"{shared['bare_rate']:.0f} ± 0 4 at once, "
                                         f"{turns['bare_rate']:.0f} ± 0 4 at once in turns")
    assert rows[0]["result"].endswith(f"{per_core['loop_overhead'] * 100:.1f} ± 0.0 % against 2 at once (one a core); "
                                      f"{shared['loop_overhead'] * 100:.1f} ± 0.0 % against 4 at once; "
                                      f"{turns['loop_overhead'] * 100:.1f} ± 0.0 % against 4 at once in turns)")
    # The training thread's preemptions against the bare threads' in each stage, then the share of the machine's
    # CPU its host took in the runs against in each bare stage, before where the time goes.
    switched = next(i for i, r in enumerate(rows) if r["measure"].startswith("(i) preemptions"))
    assert [r["measure"] for r in rows[switched + 1:switched + 3]] == [
        "(i) share of the machine's busy CPU its host took (steal)",
        "(i) share of the players' wall time in training, by phase"]
    assert rows[switched]["value"] == "3.2 ± 0.0"
    assert rows[switched]["reference"] == ("bare torch loop 1.0 ± 0.0 alone, 2.0 ± 0.0 2 at once (one a core), "
                                           "50.0 ± 0.0 4 at once, 5.0 ± 0.0 4 at once in turns")
    assert rows[switched + 1]["value"] == "5.0 ± 0.0 %"
    assert rows[switched + 1]["reference"] == ("bare torch loop 0.0 ± 0.0 % alone, 1.0 ± 0.0 % 2 at once (one a "
                                               "core), 2.0 ± 0.0 % 4 at once, 12.5 ± 0.0 % 4 at once in turns")
    assert rows[0]["result"].startswith(f"overhead {halved['loop_overhead'] * 100:.1f} ± 0.0 %")  # alone is judged


@pytest.mark.slow
def test_quality_runs_the_baselines_end_to_end_into_tmp_only(bench, tmp_path):
    # Three CPUs for the three baseline processes, so they start together (budgets are CPU time, not wall).
    result = bench("quality", "--dataset", "ring8", "--seeds", "1", "--first-seed", "2", "--seconds", "0.5",
                   "--players", "2", "--cpus", "3", "--methods", "single,independent", "--work", str(tmp_path / "kept"))
    # Every baseline's pair is kept, for --rejudge to screen again; seeds from --first-seed.
    assert [p.name for p in sorted((tmp_path / "kept").glob("*/*.pt"))] == \
        ["independent-2-0.pt", "independent-2-1.pt", "single-2.pt"]
    assert "seed 2: " in result["notes"] and "seed 0: " not in result["notes"]
    rows = {row["method"]: row for row in result["rows"]}
    words = screen_words(0.125, 128, ArenaConfig().refine)  # the defaults: "keeps 0.125, …, refined 100 steps"
    screened = f", screened by its own discriminator ({words})"
    pick = "2 independent GANs, judge's pick (diagnostic)"
    assert set(rows) == {"one GAN", pick, "2 independent GANs, mean", "one GAN" + screened, pick + screened,
                         "2 independent GANs, mean" + screened,
                         "2 independent GANs, mixture (weights fitted on real data)",
                         f"2 independent GANs, mixture screened by their discriminators ({words})"}
    for row in rows.values():
        assert row["seconds"] == 0.5 and row["cpu_budget_s"] == 1.5 and row["seeds"] == 1
        assert 1.5 <= row["cpu_s"] < 4
        assert row["target met"].startswith("modes ")
        modes, std = row["modes"].split(" ± ")
        assert 0 <= float(modes) <= 8 and float(std) == 0
    report = (tmp_path / "BENCHMARKS.md").read_text()
    assert "## quality" in report and "95.6 %" in report and "28.74" in report and "| one GAN | ring8 |" in report


@pytest.mark.slow
def test_quality_runs_the_arena_end_to_end(bench):
    result = bench("quality", "--dataset", "ring8", "--seeds", "1", "--seconds", "4", "--players", "2",
                   "--cpus", "2", "--methods", "arena", "--screens", "1,0.25")
    rows = {row["method"]: row for row in result["rows"]}
    refine = ArenaConfig().refine  # the default, at which the products and the sweep are refined
    screened = f", screened ({screen_words(0.125, 128, refine)})"
    swept = (screen_words(1, 128, refine), screen_words(0.25, 128, refine))
    assert list(rows) == ["arena, champion by standing, then nearest real data" + screened,
                          "arena, the same champion unscreened", "arena, champion by standing alone" + screened,
                          "arena, mixture of the first by standing" + screened, "arena, the same mixture unscreened",
                          "arena, judge's pick (diagnostic)"] + [
        f"arena, {product}, screen sweep: {words}" for words in swept for product in ("champion", "mixture")]
    for words in swept:
        assert 0 <= float(rows[f"arena, mixture, screen sweep: {words}"]["modes"].split(" ± ")[0]) <= 8
    best = rows["arena, champion by standing, then nearest real data" + screened]
    assert best["individuals"] >= 2 and 0 < best["cpu_s"] <= 2 * 4 + 1 and best["cpu_budget_s"] == 8
    assert best["steps"] > 0  # all players' training steps, as the baselines' rows count theirs
    assert re.search(r"Training of each arena run — arena seed 0: [\d,]+ training steps, [\d.]+ ms of CPU a step",
                     result["notes"])


@pytest.mark.slow
def test_throughput_runs_both_schedules_end_to_end(bench):
    """Which rows come, in which order, each with numbers in range: a 4 s run on a loaded machine gives no rate
    worth asserting on, not even a non-zero one (issue 14)."""
    result = bench("throughput", "--dataset", "ring8", "--seeds", "1", "--seconds", "4", "--players", "2",
                   "--cpus", "2", "--genomes", "3", "--bare-seconds", "0.2", "--set", "arena.round_every=4")
    rows = result["rows"]
    share = "(ii) compute share of player wall time"
    assert [(r["measure"], r["schedule"]) for r in rows][-3:] == \
        [(share, "async"), (share, "barrier"), ("(iii) generations per hour", "async vs barrier")]
    # (i) rows, each async, come first: one per rate the async run had the records to time, then its phases
    phases = "(i) share of the players' wall time in training, by phase"
    assert all(r["measure"].startswith("(i) ") and r["schedule"] == "async" for r in rows[:-3])
    assert rows[-4]["measure"] == phases
    # The training thread's preemptions, then the share of the machine's CPU its host took, counted on Linux (CI's
    # OS), come before the phases.
    counted = ["(i) preemptions of the train phase's thread per CPU-second",
               "(i) share of the machine's busy CPU its host took (steal)"]
    assert ([r["measure"] for r in rows[-6:-4]] == counted) == (sys.platform == "linux")
    assert {"fight", "round", "between"} <= {part.split(" ")[0] for part in rows[-4]["reference"].split(", ")}
    # Both bare references: alone and as many at once as players (as many as cores here: no stage one a core
    # apart from it; `test_throughput_figures_from_known_timelines` and the bare loops' test cover that stage).
    assert all(" alone, " in r["reference"] and r["reference"].endswith(" 2 at once") for r in rows[:-4])
    for row in rows:
        assert (row["dataset"], row["players"], row["cpus"], row["seeds"]) == ("ring8", 2, 2, 1), row
        mean = float(row["value"].split(" ± ")[0])
        assert 0 <= mean <= (100 if row["measure"] in (share, phases, counted[1]) else math.inf), row
    assert rows[-2]["reference"].startswith("waiting: ")


def test_population_quality_over_time_is_read_in_equal_slices_of_the_window():
    import datetime as dt

    from experiments.bench.common import over_time
    from experiments.bench.quality import _trajectory

    at = [dt.datetime.fromtimestamp(100 + 10 * i, dt.timezone.utc).replace(tzinfo=None) for i in range(10)]
    during = [{"at": at[i], "modes": i, "high_quality": 0.5, "kl": 1.0} for i in range(9)]  # nothing in the last
    slices = over_time(during, 100.0, 200.0, parts=5)
    assert slices["modes"] == [0.5, 2.5, 4.5, 6.5, 8.0]
    assert _trajectory([slices, {**slices, "modes": [1.5, 3.5, 5.5, 7.5, None]}]).startswith(
        "modes 1.0 → 3.0 → 5.0 → 7.0 → 8.0; kl 1.00")
    assert over_time([], 100.0, 200.0) == {} and _trajectory([]) == "-"


BENCHMARK_MODULES = [f"experiments.bench.{name}" for name in importlib.import_module("experiments.bench.__main__")
                     .BENCHMARKS]


def test_the_report_is_written_without_importing_a_benchmark(tmp_path):
    script = ("import sys, pathlib\nfrom experiments.bench import results\n"
              f"results.RESULTS = pathlib.Path({str(tmp_path / 'results')!r})\n"
              f"results.REPORT = pathlib.Path({str(tmp_path / 'BENCHMARKS.md')!r})\n"
              "results.write_report()\nprint(sorted(m for m in sys.modules if m.startswith('experiments.bench')))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                          cwd=results.ROOT)
    assert done.stdout.split("\n")[-2] == str(["experiments.bench", "experiments.bench.results"])
    report = (tmp_path / "BENCHMARKS.md").read_text()
    for name, text in results.sections().items():
        assert f"## {name}\n\n{text}\n\nNo result recorded yet.\n" in report


def test_every_command_has_its_prose_in_the_reports_order_and_no_benchmark_imports_another():
    names = importlib.import_module("experiments.bench.__main__").BENCHMARKS
    assert list(results.sections()) == list(names)
    assert all(text and not text.startswith("#") for text in results.sections().values())
    for module in BENCHMARK_MODULES:
        tree = ast.parse(Path(importlib.util.find_spec(module).origin).read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        imported |= {f"{node.module}.{alias.name}" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                     for alias in node.names}
        assert not imported & (set(BENCHMARK_MODULES) - {module}), module
    with pytest.raises(ValueError, match="unknown benchmark"):
        results.record("nope", [])


def test_the_prose_names_the_codes_numbers():
    prose = {name: " ".join(text.split()) for name, text in results.sections().items()}
    assert f"{MIXTURE_SAMPLES:,} samples" in prose["quality"] and f"{IMAGE_SAMPLES:,} on mnist" in prose["quality"]
    for phases in (throughput.COMPUTE + throughput.WAITING, throughput.COMPUTE, throughput.WAITING):
        assert ", ".join(phases) in prose["throughput"]
    for target in (f"overhead ≤ {throughput.OVERHEAD:.0%}", f"≥ {throughput.COMPUTE_SHARE:.0%}",
                   f"≥ {throughput.SPEEDUP}×"):
        assert target in prose["throughput"]
    assert f"≥ {scores.HIGH_QUALITY * 100:.0f} % high quality, KL ≤ {scores.KL}" in prose["quality"]
    assert f"TVD ≤ {scores.TVD} and FID ≤ {scores.FID_RATIO} ×" in prose["quality"]


@pytest.mark.slow  # fresh interpreters, each importing torch
def test_bare_loops_are_timed_alone_then_one_a_core_then_together_and_wait_for_each_other(tmp_path):
    cheap = Genome.from_dict({**baselines.single_genome((2,)).to_dict(), "steps": 2})
    dear = Genome.from_dict({**cheap.to_dict(), "batch_size": 2048})
    stages, measured = baselines.time_bare_loops([cheap, dear], "ring8", processes=3, min_seconds=0.05, cores=2,
                                                 turn_ms=20)
    # Last, all three at once taking turns of 20 ms on the two cores, as players would.
    assert list(stages) == ["alone", "per_core", "together", "in_turns"]
    for timed in stages.values():
        assert len(timed) == 2 and all(0 < wall and 0 < cpu for wall, cpu in timed)
        assert timed[1][1] > timed[0][1]  # eight times the batch: more CPU a step, on any machine
    # The threads' preemptions a CPU-second and the share of the machine's CPU its host took, in each stage, where
    # the OS counts them (Linux: CI's).
    for kind in ("preempted", "stolen"):
        assert list(measured[kind]) == (list(stages) if sys.platform == "linux" else []), kind
    assert all(rate >= 0 for rate in measured["preempted"].values())
    assert all(0 <= share <= 1 for share in measured["stolen"].values())
    # One of two timers alone never starts: it waits for the other, then gives up in one line.
    lonely = baselines.BareJob([cheap.to_dict()], "ring8", 0.0, 0.05, 2, str(tmp_path), rank=1, patience=0.2)
    with pytest.raises(SystemExit, match="1 of 2 bare timers reached 'start' in 0.2 s"):
        baselines.time_bare(lonely)
    assert [p.name for p in (tmp_path / "start").iterdir()] == ["1"]
    # As many cores as processes: nothing to time one a core apart from all at once.
    # Turns asked for where every process has a core of its own: none taken, as players take none.
    assert list(baselines.time_bare_loops([cheap], "ring8", processes=2, min_seconds=0.05, cores=2, turn_ms=20)[0]) \
        == ["alone", "together"]
