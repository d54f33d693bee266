"""The command line end to end, on a local Ray cluster of 2 CPUs, checked through pymongo and
pyarrow only (never through our own classes), as a user would read a run."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pymongo
import pytest
import torch

from arena.config import BY_DATA_INTEGERS, ArenaConfig
from arena.selection import EXPLOITS
from arena.datasets import load_dataset
from experiments.summaries import screen_words
from storage.embedded import EmbeddedMongo

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def arena_run(*args: str, cwd: Path, **popen) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "ARENA_MONGO_URI")}
    env["PYTHONPATH"] = str(ROOT)
    # No dashboard unless a test asks for one (`--dashboard` among its arguments, the last flag winning):
    # seconds of start-up on every run of the suite, and nothing here looks at it.
    return subprocess.Popen([sys.executable, "-m", "experiments.run", "--num-cpus", "2", "--no-dashboard", *args],
                            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def background_run(*args: str, cwd: Path) -> subprocess.Popen:
    """`arena_run` as a non-interactive shell starts `cmd &`: with SIGINT ignored, which the child inherits.
    The run must undo that itself to stop on SIGINT, so a test that sends it passes however the suite started."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return arena_run(*args, cwd=cwd)
    finally:
        signal.signal(signal.SIGINT, previous)


def finish(process: subprocess.Popen, timeout: float = 240) -> str:
    output, _ = process.communicate(timeout=timeout)
    return output


def read_file(location: str) -> bytes:
    """A file's bytes through pyarrow alone, on local disk or in a bucket (s3://…)."""
    filesystem, path = pafs.FileSystem.from_uri(location)
    with filesystem.open_input_stream(path) as stream:
        return stream.read()


def check_records(db, run_id: str, trace_dir: Path | str, damaged: tuple[str, ...] = ()) -> list[dict]:
    """What every run must leave, whatever its end: lineage, checkpoints, matches, traces
    (checkpoints a test damaged on purpose are not loaded)."""
    individuals = list(db.individuals.find({"run_id": run_id}))
    ids = {i["_id"] for i in individuals}
    assert individuals, "no individual recorded"
    config = db.runs.find_one({"_id": run_id})["config"]
    rounds, shape = ArenaConfig(round_every=config["arena"]["round_every"]), load_dataset(config["dataset"]).shape
    # Recorded as played (`RunConfig.for_data`): nothing left to the data, which a later default could change.
    arena = config["arena"]
    assert arena["exploit"] in EXPLOITS and config["turn_ms"] >= 0, arena
    assert min(arena[name] for name in BY_DATA_INTEGERS) >= 0 and min(arena["batch_size"], arena["founder_d_lr"]) > 0
    latest = Counter()
    for individual in individuals:
        latest[individual["player"]] = max(latest[individual["player"]], individual["generation"])
    for individual in individuals:
        if individual["generation"] == 0:
            assert individual["parents"] == []
        else:
            assert 1 <= len(individual["parents"]) <= 4 and set(individual["parents"]) <= ids, individual["_id"]
            assert individual["ops"], individual["_id"]
        if individual["_id"] in damaged:
            continue
        if individual.get("checkpoint_pruned"):  # deleted by its player: neither kept for good nor among its latest
            # (its file may linger where the player was killed between the mark and the deletion)
            assert individual["generation"] % config["keep_every"], individual["_id"]
            assert individual["generation"] <= latest[individual["player"]] - config["keep_checkpoints"]
            continue
        payload = torch.load(io.BytesIO(read_file(individual["checkpoint"])), weights_only=True)
        assert payload["genome"] == individual["genome"]
        assert {"generator", "discriminator", "g_optimizer", "d_optimizer"} <= set(payload)
    matches = list(db.matches.find({"run_id": run_id}))
    assert matches, "no match recorded"
    for match in matches:
        assert {match["generator"], match["discriminator"]} <= ids and match["generator"] != match["discriminator"]
        assert 0.0 <= match["fooled"] <= 1.0 and match["samples"] > 0
    traces = ds.dataset(str(trace_dir), format="parquet").to_table()
    assert {"run_id", "player", "individual", "step", "g_loss", "d_loss", "time"} <= set(traces.column_names)
    rows_per_individual = Counter(traces.column("individual").to_pylist())
    matches_per_individual = Counter(m["by"] for m in matches)
    for individual in individuals:
        train_rows = traces.filter(pc.and_(pc.equal(traces["individual"], individual["_id"]),
                                           pc.equal(traces["phase"], "train"))).num_rows
        assert train_rows == individual["trained_steps"], individual["_id"]
        assert 1 <= individual["trained_steps"] <= individual["genome"]["steps"]
        # Written once, whole, at the end of its loop (a player killed mid-loop leaves none):
        # what it claims it recorded is there, no more, no less.
        assert matches_per_individual[individual["_id"]] == individual["matches"], individual["_id"]
        assert rows_per_individual[individual["_id"]] == individual["trace_rows"], individual["_id"]
        assert individual["at_fight"]["fitness"] is None or 0 <= individual["at_fight"]["fitness"] <= 1
        assert individual["step_ms"] > 0, individual["_id"]
        # Its generator measured against real data when due (with the metrics, and the last of each player):
        # a distance exactly when the loop has a distance phase.
        assert (individual["real_distance"] is not None) == ("distance" in individual["timeline"]), individual["_id"]
        assert individual["real_distance"] is None or individual["real_distance"] > 0
        # the loop's phases, in order, none overlapping
        spans = sorted(individual["timeline"].values())
        assert all(start <= end <= later for (start, end), (later, _) in zip(spans, spans[1:] + [(1e12, 0)]))
        assert {"train", "save", "publish", "fight", "settle"} <= set(individual["timeline"])
        # the round is a phase of its own, in the loops that hold one
        assert ("round" in individual["timeline"]) == rounds.round_due(individual["generation"], shape)
        train = individual["timeline"]["train"]
        assert individual["step_ms"] == pytest.approx(1000 * (train[1] - train[0]) / individual["trained_steps"])
        # The thread's CPU time in training: some, and never more than the wall time it took (one thread).
        assert 0 < individual["step_cpu_ms"] <= individual["step_ms"] * 1.01 + 0.01, individual["_id"]
        # The OS's preemptions of that thread in training, counted on Linux (CI's OS), none elsewhere.
        assert (individual["train_preempted"] is None) == (sys.platform != "linux"), individual["_id"]
        assert individual["train_preempted"] is None or individual["train_preempted"] >= 0
    assert sum(rows_per_individual.values()) == traces.num_rows
    last = {}
    for individual in individuals:
        if individual["generation"] >= last.get(individual["player"], {"generation": -1})["generation"]:
            last[individual["player"]] = individual
    assert all(i["real_distance"] is not None for i in last.values() if i["_id"] not in damaged)
    return individuals


def test_no_flags_starts_and_stops_an_embedded_database(tmp_path):
    run = arena_run("--players", "2", "--budget-seconds", "4", "--run-id", "local", cwd=tmp_path)
    output = finish(run)
    assert run.returncode == 0, output
    run_dir = tmp_path / "runs" / "local"
    assert (run_dir / "db").is_dir() and (run_dir / "checkpoints").is_dir()
    with EmbeddedMongo(run_dir / "db") as server:  # the run stopped its server; its data stays
        db = pymongo.MongoClient(server.uri)["arena"]
        run_record = db.runs.find_one({"_id": "local"})
        assert run_record["status"] == "finished"
        check_records(db, "local", run_dir / "traces")
        population = run_record["summary"]["population"]
        assert sorted(i.split("/")[1] for i in population) == ["player-0", "player-1"]
        final = {m["individual"]: m for m in db.metrics.find({"run_id": "local", "kind": "final"})}
        assert set(final) == set(population)
        assert all(0 <= m["modes"] <= 8 and 0 <= m["high_quality"] <= 1 and m["kl"] >= 0 for m in final.values())
        assert db.metrics.count_documents({"run_id": "local", "kind": "during"}) >= 2  # generation 0 of each
        ensemble = db.metrics.find_one({"_id": "local|ensemble"})
        assert sorted(ensemble["members"]) == sorted(population) and sum(ensemble["weights"]) == pytest.approx(1)
        quality = run_record["summary"]["quality"]  # the products screened, as they come beside them
        assert ensemble["screen"] == quality["champion"]["screen"] == 0.125
        assert ensemble["screen_regions"] == quality["champion"]["screen_regions"] == 128
        assert {"champion_unscreened", "ensemble_unscreened"} <= set(quality)

    env = {k: v for k, v in os.environ.items() if k != "ARENA_MONGO_URI"}
    sample = subprocess.run([sys.executable, "-m", "experiments.sample", "local", "--n", "300", "--out", "s.npy",
                             "--png", "s.png", "--ensemble", "2"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120)
    assert sample.returncode == 0, sample.stderr
    words = screen_words(0.125, 128, ArenaConfig().refine)  # the defaults: "keeps 0.125, …, refined 100 steps"
    assert f"screened by 2 discriminators ({words})" in sample.stdout
    assert np.load(tmp_path / "s.npy").shape == (300, 2)
    unscreened = subprocess.run([sys.executable, "-m", "experiments.sample", "local", "--n", "300", "--out", "u.npy",
                                 "--unscreened"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert unscreened.returncode == 0 and "screened" not in unscreened.stdout, unscreened.stderr
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args, named", [
    (["--dataset", "mnist9"], "'mnist9'"),
    (["--players", "0"], "players"),
    (["--run-id", "a/b"], "'a/b'"),
    (["--mongo-uri", "mongodb://u:secret@127.0.0.1:1/"], "127.0.0.1:1"),
    (["--address", "127.0.0.1:1"], "'127.0.0.1:1'"),
    (["--config", "missing.toml"], "missing.toml"),
])
def test_bad_input_gets_one_line_naming_it_and_exit_code_2(tmp_path, args, named):
    run = arena_run(*args, "--budget-seconds", "1", cwd=tmp_path)
    output = finish(run, timeout=120)
    assert run.returncode == 2, output
    assert output.strip().count("\n") == 0 and output.startswith("error: ") and named in output, output
    assert "secret" not in output


def test_gpu_shares_the_cluster_cannot_give_are_refused_before_anything_is_recorded(tmp_path):
    run = arena_run("--gpus-per-player", "0.5", "--players", "2", "--budget-seconds", "1", "--run-id", "gpu",
                    cwd=tmp_path)  # CI has no GPU; where there is one, 2 × 0.5 fits and the run would go
    output = finish(run, timeout=120)
    if run.returncode == 0:
        pytest.skip("this machine has a GPU for both players")
    assert run.returncode == 2, output
    last = output.strip().splitlines()[-1]
    assert last.startswith("error: 2 players × 0.5 GPUs each need 1 GPUs") and "--gpus-per-player" in last, output
    with EmbeddedMongo(tmp_path / "runs" / "gpu" / "db") as server:
        assert pymongo.MongoClient(server.uri)["arena"].runs.count_documents({}) == 0


def test_an_image_run_evolves_conv_pairs_and_records_fid(tmp_path, mongo_uri, db_name, raw_db, monkeypatch):
    monkeypatch.setenv("ARENA_CACHE", str(tmp_path / "cache"))  # the FID classifier is trained afresh, once
    run = arena_run("--players", "2", "--dataset", "digits", "--budget-seconds", "10", "--run-id", "img",
                    "--out", str(tmp_path), "--mongo-uri", mongo_uri, "--mongo-db", db_name, cwd=tmp_path)
    output = finish(run)
    assert run.returncode == 0, output
    assert list((tmp_path / "cache").glob("classifier-digits-*.pt")), "classifier not cached"
    individuals = check_records(raw_db, "img", tmp_path / "img" / "traces")
    assert all(i["genome"]["data_shape"] == [1, 8, 8] for i in individuals)
    assert any(layer["kind"] == "deconv" for i in individuals for layer in i["genome"]["generator"])
    final = list(raw_db.metrics.find({"run_id": "img", "kind": "final"}))
    assert len(final) == 2 and all(m["fid"] >= 0 and 0 <= m["tvd"] <= 1 for m in final)
    assert all(m["classifier_accuracy"] > 0.9 for m in final)
    assert "FID" in output
