"""Nothing lost: a player's or the registry's process killed mid-run, the database stopped mid-run, a run
interrupted and resumed, a damaged checkpoint refused, a node removed.
Faults are injected for real; records are checked through pymongo."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pymongo
import pytest
import ray
from ray.util.state import list_actors

from experiments.chaos import actor_pids
from experiments.run import free_port
from storage.embedded import EmbeddedMongo
from tests.test_run import arena_run, check_records, finish

pytestmark = pytest.mark.slow


def wait_for(predicate, what: str, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def generations(db, run_id: str, player: str) -> list[int]:
    return sorted(d["generation"] for d in db.individuals.find({"run_id": run_id, "player": player}))


def test_killed_processes_and_a_database_outage_in_one_run_lose_nothing(tmp_path):
    """Three faults in turn, injected for real into one run (one run, not two: most of a run's time in the suite
    is its start and stop):
    player-0's and the registry's processes killed, and once the killed player has resumed, the database
    stopped for 14 s while the players keep training, their writes buffered. The run's budget is far longer than
    the test needs, and the test stops it (SIGTERM, as a scheduler does) once the resumed player has gone on: on a
    loaded machine a restart may take a minute, and a budget sized to a quiet one would end the run first."""
    server, run = EmbeddedMongo(tmp_path / "db"), None
    server.start()
    try:
        db = pymongo.MongoClient(server.uri)["arena"]
        run = arena_run("--players", "2", "--budget-seconds", "900", "--run-id", "faults", "--out", str(tmp_path),
                        "--mongo-uri", server.uri, "--dashboard", cwd=tmp_path)  # the dashboard for actor_pids
        wait_for(lambda: db.individuals.count_documents({"player": "player-0"}) >= 5, "player-0's first records")
        pids = actor_pids(db.runs.find_one({"_id": "faults"})["ray"]["address"], "faults")  # this run's cluster
        before = {d["_id"] for d in db.individuals.find({"run_id": "faults"})}
        os.kill(pids["player-0"], signal.SIGKILL)
        os.kill(pids["registry"], signal.SIGKILL)
        wait_for(lambda: db.individuals.count_documents({"run_id": "faults", "ops.0.op": "resume"}) >= 1,
                 "the killed player's resume")
        before |= {d["_id"] for d in db.individuals.find({"run_id": "faults"})}
        resumed_at = db.individuals.find_one({"run_id": "faults", "ops.0.op": "resume"})["generation"]
        assert run.poll() is None, "the run ended before the outage"  # its budget is far from spent
        server.stop()
        # Players keep training meanwhile; a live line every 10 s, and one at the stop for an outage they missed.
        time.sleep(14)
        server.start()  # same port, same data
        restarted = time.time()
        # Progress after both faults, then the stop: the buffered writes reach the store as it comes back. A loop
        # begun after the restart has sent its player's heartbeat, outage counted, to the registry before its record.
        wait_for(lambda: generations(db, "faults", "player-0")[-1] > resumed_at + 1, "player-0's progress")
        for player in ("player-0", "player-1"):
            wait_for(lambda: db.individuals.count_documents({"run_id": "faults", "player": player,
                                                             "timeline.train.0": {"$gt": restarted}}) >= 1,
                     f"{player}'s first loop after the outage")
        run.send_signal(signal.SIGTERM)
        output = finish(run)
        assert run.returncode == 130, output
        assert "store unreachable" in output, f"the outage was not shown:\n{output[-4000:]}"
        record = db.runs.find_one({"_id": "faults"})
        assert record["status"] == "interrupted"
        assert sum(s["store_outages"] for s in record["summary"]["players"]) >= 1
        individuals = check_records(db, "faults", tmp_path / "faults" / "traces")
        assert before <= {i["_id"] for i in individuals}, "a record written before a fault is gone"
        resumed = [i for i in individuals if i["ops"][0]["op"] == "resume"]
        assert [i["player"] for i in resumed] == ["player-0"], "the killed player did not resume from the record"
        for player in ("player-0", "player-1"):
            found = generations(db, "faults", player)
            assert found == list(range(len(found))), f"{player}'s generations have gaps: {found}"
        assert generations(db, "faults", "player-0")[-1] > resumed[0]["generation"], "no progress after the kill"
    finally:
        if run is not None and run.poll() is None:  # a wait that timed out leaves no run behind
            run.kill()
        server.stop()


def test_an_interrupted_run_resumes_past_a_damaged_checkpoint(tmp_path, mongo_uri, db_name, raw_db):
    common = ["--out", str(tmp_path), "--mongo-uri", mongo_uri, "--mongo-db", db_name]
    run = arena_run("--players", "2", "--budget-seconds", "30", "--run-id", "res", *common, cwd=tmp_path)
    wait_for(lambda: raw_db.individuals.count_documents({"player": "player-1"}) >= 4, "first records")
    run.send_signal(signal.SIGTERM)  # as a scheduler stops a job
    output = finish(run)
    assert run.returncode == 130, output
    first = raw_db.runs.find_one({"_id": "res"})
    assert first["status"] == "interrupted" and 0 < first["elapsed_seconds"] < 30

    last = {p: generations(raw_db, "res", p)[-1] for p in ("player-0", "player-1")}
    damaged = raw_db.individuals.find_one({"_id": f"res/player-0/{last['player-0']}"})
    with open(damaged["checkpoint"], "r+b") as handle:  # flip bytes in the middle of the file
        handle.seek(200)
        handle.write(b"\x00garbage\x00")

    refused = subprocess.run([sys.executable, "-m", "experiments.sample", "res", "--individual", damaged["_id"],
                              "--out", "x.npy", "--mongo-uri", mongo_uri, "--mongo-db", db_name], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "sha256" in refused.stderr and refused.stderr.count("\n") == 1

    budget = int(first["elapsed_seconds"]) + 10  # the new total: ten seconds more of evolution
    resumed = arena_run("--resume", "res", "--budget-seconds", str(budget), *common, cwd=tmp_path)
    output = finish(resumed)
    assert resumed.returncode == 0, output
    assert "Resuming res" in output
    record = raw_db.runs.find_one({"_id": "res"})
    assert record["status"] == "finished" and record["resumes"] == 1 and record["config"]["players"] == 2
    assert first["elapsed_seconds"] < record["elapsed_seconds"] <= budget + 15
    check_records(raw_db, "res", tmp_path / "res" / "traces", damaged=(damaged["_id"],))
    for player, previous in last.items():
        found = generations(raw_db, "res", player)
        # the resumed generation previous + 1 is trained before it is recorded: it is the progress shown, as
        # a loaded machine may give the rest of the budget no further generation
        assert found == list(range(len(found))) and found[-1] > previous, player
        continued = raw_db.individuals.find_one({"_id": f"res/{player}/{previous + 1}"})
        expected = previous - 1 if player == "player-0" else previous  # the damaged one is skipped
        assert continued["ops"] == [{"op": "resume", "from": f"res/{player}/{expected}"}], continued["ops"]
    # Both parts stopped in order, so every checkpoint a player marked deleted is gone (player-1 recorded at
    # least generation 4, which supersedes generation 1's under keep_checkpoints = 3).
    pruned = [i["checkpoint"] for i in raw_db.individuals.find({"run_id": "res", "checkpoint_pruned": True})]
    assert f"{tmp_path}/res/checkpoints/player-1/000001.pt" in pruned
    assert not [p for p in pruned if os.path.exists(p)], "a deleted checkpoint's file is still there"


@pytest.mark.parametrize("args, named", [
    (["--resume", "ghost"], "'ghost'"),
    (["--resume", "ghost", "--players", "3"], "players"),
])
def test_resume_refuses_what_it_cannot_do_in_one_line(tmp_path, mongo_uri, db_name, args, named):
    run = arena_run(*args, "--mongo-uri", mongo_uri, "--mongo-db", db_name, cwd=tmp_path)
    output = finish(run, timeout=120)
    assert run.returncode == 2 and output.startswith("error: ") and named in output, output
    assert output.strip().count("\n") == 0, output


def test_a_node_removed_mid_run_loses_only_its_players_progress_since_their_checkpoints(
        tmp_path, s3_bucket, mongo_uri, db_name, raw_db):
    """Two worker nodes on one machine, as Ray's own tests do, each with a scratch folder of its own for
    its local files; checkpoints and traces go to a bucket, records to a server every node reaches. One
    node is removed and its folder deleted, as a lost machine takes its disk; a fresh node joins. The
    players that lived on the removed node resume from their checkpoints in the bucket."""
    from ray.cluster_utils import Cluster

    def node(name: str):
        (tmp_path / name).mkdir()
        return cluster.add_node(num_cpus=1, env_vars={"TMPDIR": str(tmp_path / name)})

    out = f"{s3_bucket}/runs"
    # A dashboard port of its own: the state API below needs this cluster's dashboard, and another test's
    # cluster may hold Ray's default port.
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "dashboard_port": free_port()})
    try:
        node("node-a")
        doomed = node("node-b")
        env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "ARENA_MONGO_URI")}
        run = subprocess.Popen(
            [sys.executable, "-m", "experiments.run", "--players", "2", "--budget-seconds", "40", "--address",
             cluster.address, "--cpus-per-player", "1", "--run-id", "nodes", "--out", out, "--mongo-uri",
             mongo_uri, "--mongo-db", db_name, "--quiet"],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wait_for(lambda: all(raw_db.individuals.count_documents({"player": p}) >= 3 for p in ("player-0", "player-1")),
                 "records of both players")
        ray.init(address=cluster.address, namespace="nodes", log_to_driver=False, logging_level="ERROR")
        try:
            placed = {a.name: a.node_id for a in list_actors(filters=[("state", "=", "ALIVE")])}
        finally:
            ray.shutdown()
        on_doomed = sorted(name for name, node_id in placed.items()
                           if node_id == doomed.node_id and name != "registry")
        assert len({placed["player-0"], placed["player-1"]}) == 2, f"players not spread over the nodes: {placed}"
        cluster.remove_node(doomed)
        shutil.rmtree(tmp_path / "node-b")  # the machine's disk is gone with it
        saved = {p: generations(raw_db, "nodes", p)[-1] for p in on_doomed}
        node("node-c")
        output = finish(run, timeout=300)
        assert run.returncode == 0, output
    finally:
        cluster.shutdown()
    assert raw_db.runs.find_one({"_id": "nodes"})["status"] == "finished"
    individuals = check_records(raw_db, "nodes", f"{out}/nodes/traces")  # checkpoints read from the bucket
    resumed = sorted((i for i in individuals if i["ops"][0]["op"] == "resume"), key=lambda i: i["player"])
    assert [i["player"] for i in resumed] == on_doomed, (resumed, on_doomed)
    for individual in resumed:  # from its latest record: nothing saved before the loss is lost
        source = individual["ops"][0]["from"]
        assert source == f"nodes/{individual['player']}/{individual['generation'] - 1}", source
        assert individual["generation"] - 1 >= saved[individual["player"]], (individual["_id"], saved)
    for player in ("player-0", "player-1"):
        found = generations(raw_db, "nodes", player)
        assert found == list(range(len(found))), f"{player}'s generations have gaps: {found}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["node-a", "node-c"], "run files written to local disk"
