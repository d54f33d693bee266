"""The registry, exchange and gpu benchmarks at tiny sizes, end to end, writing only under tmp_path;
and the registry's choosing calls against the pure functions they stand for."""

from __future__ import annotations

import json

import numpy as np
import pytest
import ray
import torch
import typer

from agents.registry import Registry
from arena.rounds import round_pool
from arena.selection import MATCHMAKING, choose_opponents, next_move
from experiments import cli
from experiments.bench import exchange, gpu, registry, results
from genome.effects import operator_effects


def bench_app() -> typer.Typer:
    """The three commands under their names, as `python -m experiments.bench` registers them."""
    app = cli.new_app()

    @app.callback()
    def root() -> None:
        pass

    for module, name in ((registry, "registry"), (exchange, "exchange"), (gpu, "gpu")):
        app.command(name)(module.command)
    return app


@pytest.fixture
def recorded(tmp_path, monkeypatch):
    """Results go to tmp_path, never into the repository's benchmarks/results or BENCHMARKS.md."""
    monkeypatch.setattr(results, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(results, "REPORT", tmp_path / "BENCHMARKS.md")

    def read(name: str) -> list[dict]:
        [path] = sorted((tmp_path / "results").glob(f"{name}-*.json"))
        return json.loads(path.read_text())["rows"]

    return read


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(address="local", num_cpus=2, object_store_memory=2**28, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR")
    yield
    ray.shutdown()


@pytest.mark.slow
@pytest.mark.xdist_group("ray_cluster")  # one worker sets the shared ray_cluster up once
def test_registry_benchmark_runs_both_apis_and_reports_sane_latencies(ray_cluster, recorded, tmp_path):
    code = cli.run_app(bench_app(), ["registry", "--players", "4", "--players", "16", "--iterations", "12",
                                     "--callers", "1"])
    assert code == 0
    rows = recorded("registry")
    assert [(r["api"], r["players"]) for r in rows] == [("candidates", 4), ("candidates", 16), ("select", 4),
                                                        ("select", 16)]
    for row in rows:
        assert row["calls"] >= 12 * 4
        assert 0 < row["p50_ms"] <= row["p99_ms"] < 10_000
        assert 0 < row["pick_p50_ms"] <= row["pick_p99_ms"]
        assert 0 < row["iteration_p50_ms"] <= row["iteration_p99_ms"]
        assert row["iteration_p50_ms"] >= row["p50_ms"], "an iteration is several calls"
        assert row["code"].startswith("registry.py ")
    assert "## registry" in (tmp_path / "BENCHMARKS.md").read_text()


@pytest.mark.slow
@pytest.mark.xdist_group("ray_cluster")  # one worker sets the shared ray_cluster up once
def test_exchange_benchmark_fetches_every_byte_each_way(ray_cluster, recorded):
    assert cli.run_app(bench_app(), ["exchange", "--megabytes", "0.1", "--repeats", "2"]) == 0
    rows = recorded("exchange")
    assert [r["method"] for r in rows] == list(exchange.METHODS)
    for row in rows:
        assert row["megabytes"] == pytest.approx(0.1, rel=1e-3)
        assert row["fetch_s"] > 0 and row["publish_s"] > 0 and row["MB_per_s"] > 0
        assert row["json_vs_this"] == pytest.approx(
            next(r["fetch_s"] for r in rows if r["method"] == "json over http") / row["fetch_s"])


def test_json_wire_format_round_trips_tensors():
    states = exchange.state_dict(0.01)
    back = exchange.decode(exchange.encode(states))
    assert exchange.total_bytes(back) == exchange.total_bytes(states) > 0
    for net, tensors in states.items():
        for name, tensor in tensors.items():
            assert torch.equal(back[net][name], tensor)


def test_gpu_benchmark_refuses_without_a_gpu_and_records_nothing(recorded, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cli.run_app(bench_app(), ["gpu", "--players", "1"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [gpu.NO_GPU]
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("bad", [["--players", "0"], ["--api", "nope"]])
def test_registry_benchmark_refuses_bad_options_in_one_line(bad, recorded, tmp_path, capsys):
    assert cli.run_app(bench_app(), ["registry", *bad]) == 2
    assert capsys.readouterr().err.strip().startswith("error: ")
    assert not (tmp_path / "results").exists()


# The registry's choosing calls, without Ray: they must choose what the pure functions choose over
# candidates(), from the same seed, and keep standings and effects as a fresh computation has them.

def populated(seed: int = 0, players: int = 12, steps: int = 400) -> tuple[Registry, list[dict]]:
    rng = np.random.default_rng(seed)
    reg, ops = Registry("t", window=4), ["add_layer", "change_lr", "crossover", "random"]
    for step in range(steps):
        player = f"player-{rng.integers(players)}"
        if step < players or rng.random() < 0.3:
            player = f"player-{step}" if step < players else player
            reg.publish({"id": f"t/{player}/{step}", "player": player, "generation": step,
                         "dataset": "ring8" if step % 3 else "mnist", "genome": {"n": step},
                         "ops": [{"op": str(rng.choice(ops))}], "parent_fitness": float(rng.random())},
                        ["weights"])
        else:
            ids = list(reg.standings)
            reg.report([{"generator": str(rng.choice(ids)), "discriminator": str(rng.choice(ids)),
                         "fooled": float(rng.choice([0.0, 0.5, rng.random()])), "real_accepted": float(rng.random())}
                        for _ in range(int(rng.integers(1, 6)))])
    return reg, ops


@pytest.mark.parametrize("seed", range(4))
def test_registry_draws_what_the_pure_functions_draw_from_the_same_seed(seed):
    reg, _ = populated(seed)
    for dataset in ("ring8", "mnist", None, "nothing here"):
        pool = reg.candidates(dataset)
        for player in [c["player"] for c in pool[:3]] + ["nobody"]:
            for k in (1, 3, 50):  # 50: more than there are, so every other one
                for mode in MATCHMAKING:
                    want = choose_opponents(pool, player, k, np.random.default_rng(seed), mode)
                    got = reg.opponents(dataset, player, k, mode, seed)
                    assert [c["id"] for c in got] == [c["id"] for c in want], (dataset, player, k, mode)
        for me in [c["id"] for c in pool[:3]] + ["t/not-published/0"]:
            for size in (2, 4, 50):
                want = round_pool(pool, me, size, np.random.default_rng(seed)) if len(pool) > 1 else []
                assert [c["id"] for c in reg.round_pool(dataset, me, size, seed)] == [c["id"] for c in want]
        unpublished = {"id": "t/player-0/unpublished", "player": "player-0", "genome": {}, "fitness": None,
                       "age": 9}
        for own in (unpublished, *map(dict, pool[:2])):  # own joins only when not published there
            for exploit, size, selection in (("always", 1, "fitness"), ("always", 3, "rating"),
                                             ("truncation", 3, "fitness"), ("never", 3, "fitness")):
                game = {"exploit": exploit, "tournament_size": size, "key": selection, "ready": 0}
                me = own if own is unpublished else reg.candidates(dataset)[pool.index(own)]
                want = next_move(me, pool, np.random.default_rng(seed), **game)
                got = reg.move(dataset, own, seed, **game)
                assert [[c["id"] for c in side] for side in (got.parents, got.d_parents)] == \
                    [[c["id"] for c in side] for side in (want.parents, want.d_parents)], (dataset, exploit)


def test_registry_keeps_standings_and_effects_as_a_fresh_computation_has_them():
    reg, _ = populated(seed=3)
    fresh = Registry("t", window=4)
    fresh.standings, fresh.ratings, fresh.lineage = reg.standings, reg.ratings, reg.lineage
    for entry in reg.candidates():
        assert {k: entry[k] for k in fresh._fitness(entry["id"])} == fresh._fitness(entry["id"])
    assert reg.effects() == operator_effects({"ops": reg.lineage[i]["ops"], **fresh._fitness(i)}
                                             for i in reg.lineage)
