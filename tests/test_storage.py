"""Storage against the real embedded server: records, indexes, batching, checkpoints, traces."""

from __future__ import annotations

import threading
import time

import pyarrow.dataset as ds
import pymongo
import pyarrow.parquet as pq
import pytest
import torch

from genome import build_pair
from genome.genes import Genome, Layer, OptimizerGene
from storage import records
from storage.checkpoints import checkpoint_location, load_checkpoint, save_checkpoint, superseded
from storage.embedded import EmbeddedMongo
from storage.store import read_run_store
from storage.traces import TraceWriter, read_traces


def small_genome() -> Genome:
    layer = Layer(kind="dense", width=16, norm="batch")
    return Genome(generator=(layer,), discriminator=(layer, layer), latent_dim=4, latent_dist="normal",
                  g_optimizer=OptimizerGene("adam", 1e-3), d_optimizer=OptimizerGene("sgd", 1e-3),
                  batch_size=8, steps=2)


def test_connect_creates_the_indexes_the_queries_need(mongo_uri, db_name, raw_db):
    records.connect(mongo_uri, db_name)
    individuals = [list(ix["key"].items()) for ix in raw_db.individuals.list_indexes()]
    matches = [list(ix["key"].items()) for ix in raw_db.matches.list_indexes()]
    assert [("run_id", 1), ("player", 1), ("generation", -1)] in individuals
    assert [("run_id", 1), ("fitness", -1)] in individuals
    assert [("run_id", 1), ("generator", 1)] in matches
    assert [("run_id", 1), ("discriminator", 1)] in matches


def test_unreachable_and_malformed_uris_fail_with_the_uri_redacted():
    with pytest.raises(ConnectionError, match=r"mongodb://user:\*\*\*@127.0.0.1:1"):
        records.connect("mongodb://user:secret@127.0.0.1:1/", "x", timeout_ms=300)
    with pytest.raises(ValueError, match="bad MongoDB URI"):
        records.connect("notmongo://here", "x")


def test_redact_hides_only_the_password():
    assert records.redact("mongodb://ann:pw@h:1/db") == "mongodb://ann:***@h:1/db"
    assert records.redact("mongodb://h:1/") == "mongodb://h:1/"


def test_recorder_batches_until_its_threshold_and_flushes_on_close(mongo_uri, db_name, raw_db):
    recorder = records.Recorder(records.connect(mongo_uri, db_name), flush_ops=5, flush_seconds=3600)
    for i in range(4):
        recorder.record({"_id": f"r/p/{i}", "run_id": "r", "fitness": None})
    assert raw_db.individuals.count_documents({}) == 0, "written before the batch was full"
    recorder.record({"_id": "r/p/4", "run_id": "r"},
                    [{"_id": "m0", "run_id": "r", "generator": "r/p/0", "discriminator": "r/p/4", "fooled": 0.5}])
    assert raw_db.individuals.count_documents({}) == 5 and raw_db.matches.count_documents({}) == 1
    recorder.record({"_id": "r/p/9", "run_id": "r"})
    assert raw_db.individuals.count_documents({}) == 5
    recorder.close()
    assert raw_db.individuals.count_documents({}) == 6
    assert recorder.written == {"individuals": 6, "matches": 1, "metrics": 0}
    assert raw_db.individuals.find_one({"_id": "r/p/0"})["created_at"] <= raw_db.matches.find_one()["at"]


def test_one_loop_is_queued_whole_so_no_flush_sends_a_part_of_it(mongo_uri, db_name, raw_db):
    """A flush sends the traces first: one due in the middle of a loop's writes would put the trace rows
    of an individual on disk with its record not even queued (killed then, they would belong to nobody)."""
    recorder = records.Recorder(records.connect(mongo_uri, db_name), flush_ops=1, flush_seconds=3600,
                                before_flush=lambda: flushed.append(recorder.pending))
    flushed = []
    recorder.record({"_id": "r/p/0", "run_id": "r", "matches": 3},
                    [{"_id": f"m{k}", "run_id": "r", "at": k} for k in range(3)],
                    [{"_id": "r/p/0|during", "run_id": "r", "kind": "during"}])
    assert flushed == [5] and recorder.pending == 0
    assert raw_db.matches.count_documents({}) == 3 and raw_db.metrics.count_documents({}) == 1
    assert [m["at"] for m in raw_db.matches.find(sort=[("_id", 1)])] == [0, 1, 2], "a time of its own was replaced"
    assert raw_db.individuals.find_one({"_id": "r/p/0"})["matches"] == 3


def test_writing_the_same_records_twice_keeps_one_copy(mongo_uri, db_name, raw_db):
    recorder = records.Recorder(records.connect(mongo_uri, db_name), flush_ops=1)
    for _ in range(2):
        recorder.record({"_id": "r/p/0", "run_id": "r"}, [{"_id": "a|b|a", "run_id": "r"}])
    recorder.close()
    assert raw_db.individuals.count_documents({}) == 1 and raw_db.matches.count_documents({}) == 1


def test_a_player_keeps_its_latest_checkpoints_and_every_kth_for_good():
    def kept(latest: int, keep: int, every: int) -> list[int]:
        deleted = {superseded(g, keep, every) for g in range(latest + 1)} - {None}
        return sorted(set(range(latest + 1)) - deleted)

    assert kept(60, 3, 25) == [0, 25, 50, 58, 59, 60]
    assert kept(2, 3, 25) == [0, 1, 2]  # nothing old enough yet
    assert kept(60, 1, 25) == [0, 25, 50, 60]
    assert kept(9, 0, 25) == list(range(10))  # 0: every checkpoint kept
    assert kept(9, 3, 1) == list(range(10))  # every generation kept for good


def test_a_pruned_checkpoint_goes_only_once_its_mark_is_stored(mongo_uri, db_name, raw_db, tmp_path):
    recorder = records.Recorder(records.connect(mongo_uri, db_name), flush_ops=100, flush_seconds=3600)
    files = [tmp_path / f"{g}.pt" for g in range(2)]
    for g, file in enumerate(files):
        file.write_bytes(b"weights")
        recorder.record({"_id": f"r/p/{g}", "run_id": "r", "checkpoint": str(file)})
    recorder.prune("r/p/0", str(files[0]))
    recorder.prune("r/p/7", str(tmp_path / "7.pt"))  # a record dropped at a restart, its file already gone
    assert files[0].exists(), "deleted while its record did not say so"
    recorder.close()
    assert not files[0].exists() and files[1].exists()
    assert raw_db.individuals.find_one({"_id": "r/p/0"})["checkpoint_pruned"] is True
    assert "checkpoint_pruned" not in raw_db.individuals.find_one({"_id": "r/p/1"})
    assert raw_db.individuals.find_one({"_id": "r/p/7"}) is None, "the mark made a record of its own"


def test_run_lifecycle_and_summary(mongo_uri, db_name, raw_db):
    db = records.connect(mongo_uri, db_name)
    records.start_run(db, "r", {"players": 2})
    assert raw_db.runs.find_one({"_id": "r"})["status"] == "running"
    db.individuals.insert_many([{"_id": "r/p/0", "run_id": "r", "fitness": 0.2},
                                {"_id": "r/p/1", "run_id": "r", "fitness": None}])
    records.set_fitness(db, {"r/p/1": {"fitness": 0.9}})
    summary = records.run_summary(db, "r")
    assert summary["individuals"] == 2 and summary["best"]["_id"] == "r/p/1"
    assert records.run_summary(db, "r", chosen="r/p/0")["best"]["_id"] == "r/p/0"  # the final evaluation's choice
    records.end_run(db, "r", "interrupted")
    run = raw_db.runs.find_one({"_id": "r"})
    assert run["status"] == "interrupted" and run["finished_at"] >= run["started_at"]
    with pytest.raises(ValueError, match="'paused'"):
        records.end_run(db, "r", "paused")


def test_checkpoint_loads_with_weights_only_and_rebuilds_the_pair(tmp_path):
    genome = small_genome()
    pair = build_pair(genome)
    optimizer = torch.optim.Adam(pair.generator.parameters())
    pair.generator.sample(8, torch.Generator().manual_seed(0)).sum().backward()
    optimizer.step()
    location = checkpoint_location(str(tmp_path), "player-0", 3)
    save_checkpoint(location, {"genome": genome.to_dict(), **pair.state_dicts(),
                               "g_optimizer": optimizer.state_dict(), "step": 7})
    assert location.endswith("player-0/000003.pt")
    payload = torch.load(location, weights_only=True)  # as a user would, without our code
    assert payload["step"] == 7 and payload["genome"] == genome.to_dict()
    rebuilt = build_pair(Genome.from_dict(load_checkpoint(location)["genome"]))
    rebuilt.load_state_dicts(payload)
    for name, tensor in pair.generator.state_dict().items():
        assert torch.equal(tensor, rebuilt.generator.state_dict()[name]), name
    assert [p.name for p in tmp_path.rglob("*")] == ["player-0", "000003.pt"], "temporary files left behind"


def test_traces_append_files_and_read_back_with_plain_pyarrow(tmp_path):
    writer = TraceWriter(str(tmp_path / "traces"), "r", "player-1", flush_rows=3, flush_seconds=3600)
    rows = [{"step": s, "g_loss": 0.5 + s, "d_loss": 1.0, "time": 1_700_000_000 + s} for s in range(5)]
    writer.add("r/player-1/0", 0, rows[:2])
    assert not list((tmp_path / "traces").glob("*.parquet")), "written before the threshold"
    writer.add("r/player-1/1", 1, rows[2:4])
    assert len(list((tmp_path / "traces").glob("*.parquet"))) == 1
    writer.add("r/player-1/1", 1, rows[4:])
    writer.close()
    files = sorted((tmp_path / "traces").glob("*.parquet"))
    assert len(files) == 2 and all(f.name.startswith("player-1-") for f in files)
    table = ds.dataset(str(tmp_path / "traces"), format="parquet").to_table().sort_by("step")
    assert table.column("step").to_pylist() == [0, 1, 2, 3, 4]
    assert set(table.column_names) >= {"run_id", "player", "individual", "step", "g_loss", "d_loss", "time"}
    assert table.column("individual").to_pylist()[2:] == ["r/player-1/1"] * 3
    assert sorted(pq.read_table(f).num_rows for f in files) == [1, 4] and writer.rows_written == 5
    assert read_traces(str(tmp_path / "traces")).num_rows == 5


def test_embedded_server_keeps_its_data_across_a_restart(tmp_path):
    with EmbeddedMongo(tmp_path / "db") as server:
        records.connect(server.uri, "arena").runs.insert_one({"_id": "kept"})
    with EmbeddedMongo(tmp_path / "db") as server:
        assert records.connect(server.uri, "arena").runs.find_one({"_id": "kept"}) is not None
    assert server.process.poll() is not None, "server still running after exit"


def test_an_outage_buffers_writes_and_sends_each_once_when_the_store_returns(tmp_path):
    server = EmbeddedMongo(tmp_path / "db")
    server.start()
    try:
        recorder = records.Recorder(records.connect(server.uri, "arena"), flush_ops=1, retry_seconds=0.0,
                                    attempt_seconds=0.5)
        recorder.record({"_id": "r/p/0", "run_id": "r"})
        server.stop()
        started = time.monotonic()
        for i in range(1, 4):  # the store is away: writes are kept, nothing raises, nobody waits long
            recorder.record({"_id": f"r/p/{i}", "run_id": "r", "fitness": 0.5}, [{"_id": f"m{i}", "run_id": "r"}])
        assert recorder.outage_since is not None and recorder.pending == 6 and recorder.outages == 1
        assert time.monotonic() - started < 15
        server.start()  # same port, same data
        recorder.close()
        assert recorder.outage_since is None and recorder.pending == 0
        db = pymongo.MongoClient(server.uri)["arena"]
        assert sorted(d["_id"] for d in db.individuals.find()) == [f"r/p/{i}" for i in range(4)]
        assert db.matches.count_documents({}) == 3 and db.individuals.find_one({"_id": "r/p/3"})["fitness"] == 0.5
    finally:
        server.stop()


def test_a_full_buffer_waits_for_the_store_rather_than_dropping(tmp_path):
    server = EmbeddedMongo(tmp_path / "db")
    server.start()
    recorder = records.Recorder(records.connect(server.uri, "arena"), flush_ops=1, max_pending=2,
                                retry_seconds=3600, attempt_seconds=0.5)
    server.stop()
    recorder.record({"_id": "a", "run_id": "r"})
    recorder.record({"_id": "b", "run_id": "r"})
    with pytest.raises(ConnectionError, match="2 buffered writes were not recorded"):
        recorder.close(timeout=1)
    threading.Timer(3.0, server.start).start()  # the store comes back while the writer waits
    started = time.monotonic()
    try:
        recorder.record({"_id": "c", "run_id": "r"})  # over the bound: waits rather than dropping
        assert time.monotonic() - started >= 2.5 and recorder.pending == 0
        assert pymongo.MongoClient(server.uri)["arena"].individuals.count_documents({}) == 3
    finally:
        server.stop()


def test_a_run_that_ends_while_it_is_read_is_read_again_from_its_folder(tmp_path):
    """The run's own server answers first; it stops mid-read (the run ended), and the read is made once more
    on a server started on the folder the run left, which holds the same records."""
    run = EmbeddedMongo(tmp_path / "r" / "db")
    run.start()
    records.connect(run.uri, "arena").runs.insert_one({"_id": "r", "status": "running"})
    served = []

    def read(db):
        served.append(db.client.address)
        if len(served) == 1:
            db.runs.update_one({"_id": "r"}, {"$set": {"status": "finished"}})
            run.stop()  # as the run does at its end
        return db.runs.find_one({"_id": "r"})["status"]

    try:
        assert read_run_store("r", str(tmp_path), None, "arena", read) == "finished"
    finally:
        run.stop()
    assert len(served) == 2
    assert not (tmp_path / "r" / "db.uri").exists()


def test_a_restarted_player_drops_the_traces_of_individuals_never_recorded_and_keeps_the_rest(tmp_path):
    folder = str(tmp_path / "traces")
    rows = [{"step": s, "g_loss": 0.0, "d_loss": 0.0, "time": 1_700_000_000 + s} for s in range(3)]
    killed = TraceWriter(folder, "r", "player-1")
    for generation in range(4):
        killed.add(f"r/player-1/{generation}", generation, rows)
        if generation in (1, 2):  # flushed with the records of 0-1 and of 2; 3's rows flushed, record lost
            killed.flush()
    killed.flush()
    other = TraceWriter(folder, "r", "player-10")  # a name that starts like it is not touched
    other.add("r/player-10/5", 5, rows)
    other.flush()
    restarted = TraceWriter(folder, "r", "player-1")
    assert restarted.drop_unrecorded(2) == 3
    table = read_traces(folder)
    kept = sorted(set(zip(table.column("player").to_pylist(), table.column("generation").to_pylist())))
    assert kept == [("player-1", 0), ("player-1", 1), ("player-1", 2), ("player-10", 5)]
    assert restarted.drop_unrecorded(2) == 0
    assert restarted.drop_unrecorded(0) == 6 and len(list((tmp_path / "traces").glob("player-1-*"))) == 1
    assert restarted.drop_unrecorded(-1) == 3 and read_traces(folder).num_rows == 3  # player-10's
    assert TraceWriter(str(tmp_path / "empty"), "r", "player-1").drop_unrecorded(-1) == 0


def test_a_restarted_player_drops_matches_and_metrics_no_record_claims(mongo_uri, db_name, raw_db):
    db = records.connect(mongo_uri, db_name)
    for generation in range(4):
        by = f"r/player-1/{generation}"
        db.matches.insert_one({"_id": f"x|{by}|{by}|duel", "run_id": "r", "by": by})
        db.metrics.insert_one({"_id": f"{by}|during", "run_id": "r", "individual": by})
    db.matches.insert_one({"_id": "y", "run_id": "r", "by": "r/player-10/9"})
    db.matches.insert_one({"_id": "z", "run_id": "other", "by": "other/player-1/9"})
    assert records.drop_unclaimed(db, "r", "player-1", 1) == 4
    assert sorted(raw_db.matches.distinct("by")) == ["other/player-1/9", "r/player-1/0", "r/player-1/1",
                                                      "r/player-10/9"]
    assert sorted(raw_db.metrics.distinct("individual")) == ["r/player-1/0", "r/player-1/1"]
    assert records.drop_unclaimed(db, "r", "player-1", 1) == 0
