"""The synchronous baseline: a generation barrier that holds every player until all have fought,
and lets go of those still waiting when a player leaves or the budget ends."""

from __future__ import annotations

import time
from collections import Counter

import pytest
import ray

from agents.barrier import Barrier
from tests.test_run import arena_run, check_records, finish

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=1, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


def test_the_barrier_waits_for_all_and_a_leaving_player_releases_the_rest(local_ray):
    barrier = ray.remote(Barrier).remote(["a", "b", "c"])
    later = time.time() + 60
    waiting = [barrier.arrive.remote("a", later), barrier.arrive.remote("b", later)]
    ready, _ = ray.wait(waiting, num_returns=2, timeout=1.0)
    assert not ready, "released before c arrived"
    barrier.leave.remote("c")
    assert ray.get(waiting, timeout=10) == [True, True]
    # A second round: each has arrived once; a goes ahead alone and meets its deadline.
    assert ray.get(barrier.arrive.remote("a", time.time() + 0.5), timeout=10) is False
    assert ray.get(barrier.arrive.remote("b", later), timeout=10) is True  # a is two rounds in, b catches up
    assert ray.get(barrier.waiting.remote()) == {"a": 2, "b": 2}


def test_a_barrier_run_keeps_every_player_within_one_generation(tmp_path, mongo_uri, db_name, raw_db):
    config = tmp_path / "barrier.toml"
    config.write_text('[arena]\nschedule = "barrier"\nsteps = 40\nsteps_spread = 2.0\n')
    run = arena_run("--config", str(config), "--players", "3", "--budget-seconds", "10", "--run-id", "sync",
                    "--out", str(tmp_path), "--mongo-uri", mongo_uri, "--mongo-db", db_name, cwd=tmp_path)
    output = finish(run)
    assert run.returncode == 0, output
    assert not (tmp_path / "sync" / "db").exists(), "an embedded database was started despite --mongo-uri"
    individuals = check_records(raw_db, "sync", tmp_path / "sync" / "traces")
    steps = {(i["player"], i["genome"]["steps"]) for i in individuals}  # each player keeps its own loop cost
    assert steps == {("player-0", 40), ("player-1", 57), ("player-2", 80)}, steps
    generations = Counter(i["player"] for i in individuals)
    assert len(generations) == 3 and max(generations.values()) - min(generations.values()) <= 1, generations
    # A wait that ended at the deadline let nobody breed: only waits followed by breeding were released by all.
    waited = [i for i in individuals if {"wait", "breed"} <= set(i.get("timeline", {}))]
    assert len(waited) >= len(individuals) - 3, "players did not wait at the barrier"
    for i in waited:  # nobody bred its next child before the slowest had fought this generation
        others = [j for j in individuals if j["generation"] == i["generation"]]
        fought = [j["timeline"].get("round", j["timeline"]["fight"])[1] for j in others]  # the round comes last
        assert i["timeline"]["wait"][1] >= max(fought) - 0.05, i["_id"]
