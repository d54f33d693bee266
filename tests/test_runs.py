"""`python -m experiments.runs`: runs recorded straight into the test server (no Ray), listed and shown
through the command line, and read back from an embedded-database folder as a run leaves it."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest

from experiments import cli
from experiments import runs as runs_module
from experiments.config import RunConfig
from genome.operators import MutationConfig
from genome.population import random_genome
from storage import records
from storage.embedded import EmbeddedMongo


def genome() -> dict:
    return random_genome(np.random.default_rng(0), MutationConfig(), batch_size=64, steps=10).to_dict()


def individual(run_id: str, player: int, generation: int, fitness: float | None) -> dict:
    return {"_id": f"{run_id}/player-{player}/{generation}", "run_id": run_id, "player": f"player-{player}",
            "generation": generation, "parents": [], "genome": genome(), "fitness": fitness,
            "checkpoint": f"/nowhere/{run_id}/{player}/{generation}.pt"}


def config(**fields) -> dict:
    return dataclasses.asdict(dataclasses.replace(RunConfig(), **fields))


def record_runs(db) -> None:
    """done: finished; its summary says 5 individuals (2 recorded here, so the listing must read the
    summary) and names as best the 0.7 one, not the 0.9 one outside its final population.
    going: running, 3 individuals so far, the fittest 0.55. broke: interrupted before any fitness."""
    records.start_run(db, "done", config(players=2, dataset="grid25", budget_seconds=90, seed=4))
    db.individuals.insert_many([individual("done", 0, 0, 0.9), individual("done", 1, 3, 0.7)])
    records.end_run(db, "done", "finished", {
        "individuals": 5, "matches": 11, "best": "done/player-1/3", "population": ["done/player-1/3"],
        "players": [{"player": "player-0", "generations": 2, "steps": 20, "mean_loop_seconds": 1.5},
                    {"player": "player-1", "generations": 4, "steps": 40, "mean_loop_seconds": 2.5}],
        "quality": {"best": {"individual": "done/player-1/3", "modes": 21, "high_quality": 0.625, "kl": 0.125}},
        "lineage": {"children": 3, "built_first_try": 3, "mean_inherited_share": 0.5, "operators": {},
                    "effects": {}}})
    records.start_run(db, "going", config(players=32))
    db.individuals.insert_many([individual("going", 0, 0, 0.25), individual("going", 1, 0, 0.55),
                                individual("going", 2, 0, None)])
    records.start_run(db, "broke", config(players=3))
    records.end_run(db, "broke", "interrupted", {"individuals": 0, "matches": 0, "best": None})


def table(text: str) -> dict[str, list[str]]:
    lines = text.strip().splitlines()
    assert lines[0].split() == ["id", "status", "started", "players", "individuals", "champion", "fitness"], lines
    rows = {}
    for line in lines[1:]:
        run_id, status, *rest = line.split()
        if rest[0] != "-":  # started: a date and a time
            day, time, *rest = rest
            assert len(day) == 10 and len(time) == 8, line
        else:
            rest = rest[1:]
        rows[run_id] = [status, *rest]
    return rows


@pytest.mark.parametrize("args", [[], ["list"]])
def test_the_listing_shows_each_run_with_its_counts(mongo_uri, db_name, raw_db, capsys, args):
    record_runs(records.connect(mongo_uri, db_name))
    code = cli.run_app(runs_module.app, ["--mongo-uri", mongo_uri, "--mongo-db", db_name, *args])
    out = capsys.readouterr().out
    assert code == 0, out
    assert table(out) == {"done": ["finished", "2", "5", "0.700"],
                          "going": ["running", "32", "3", "0.550"],
                          "broke": ["interrupted", "3", "0", "-"]}
    assert list(table(out)) == ["done", "going", "broke"]  # oldest first


def test_options_after_the_command_name_count_too(mongo_uri, db_name, raw_db, capsys):
    record_runs(records.connect(mongo_uri, db_name))
    assert cli.run_app(runs_module.app, ["--mongo-db", "elsewhere", "list", "--mongo-uri", mongo_uri,
                                         "--mongo-db", db_name]) == 0
    assert set(table(capsys.readouterr().out)) == {"done", "going", "broke"}
    assert cli.run_app(runs_module.app, ["--mongo-uri", mongo_uri, "--mongo-db", f"{db_name}_empty"]) == 0
    # The database is named apart from the server: glued on, a URI without a trailing slash reads as a port
    assert capsys.readouterr().out.strip() == f"no runs in database {db_name}_empty at {mongo_uri}"


def test_show_summarises_one_run(mongo_uri, db_name, raw_db, capsys):
    record_runs(records.connect(mongo_uri, db_name))
    assert cli.run_app(runs_module.app, ["show", "done", "--mongo-uri", mongo_uri, "--mongo-db", db_name]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Run done: finished\n")
    assert "2 players on grid25, seed 4; matchmaking random" in out
    assert "of 90 s" in out and "5 individuals, 11 matches\n" in out
    assert "players: 2 finished with 2–4 generations each, 2.00 s a loop on average" in out
    assert "Champion of the final population: done/player-1/3 (fitness 0.700, generation 3): G " in out
    assert "21 modes, 62.5% high quality, KL 0.125" in out
    assert "Children: 3, built on the first try: 3, mean share of parameters inherited: 50.0%" in out

    assert cli.run_app(runs_module.app, ["--mongo-uri", mongo_uri, "--mongo-db", db_name, "show", "going"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Run going: running\n") and "3 individuals, 0 matches so far" in out
    assert "Fittest so far: going/player-1/0 (fitness 0.550, generation 0)" in out


def test_a_running_run_whose_driver_went_silent_is_shown_as_silent(mongo_uri, db_name, raw_db, capsys):
    record_runs(records.connect(mongo_uri, db_name))
    records.note_elapsed(raw_db, "going", 12.0)  # the driver's last note ...
    last = raw_db.runs.find_one({"_id": "going"})["alive_at"]
    assert records.shown_status(raw_db.runs.find_one({"_id": "going"})) == "running"
    # ... is more than SILENT_AFTER seconds old: the driver was killed without recording an end.
    raw_db.runs.update_one({"_id": "going"}, {"$set": {
        "alive_at": last - dt.timedelta(seconds=records.SILENT_AFTER + 1)}})
    assert cli.run_app(runs_module.app, ["--mongo-uri", mongo_uri, "--mongo-db", db_name]) == 0
    out = capsys.readouterr().out
    assert table(out.split("silent:")[0])["going"][0] == "silent"
    assert "--resume RUN_ID" in out.split("silent:")[1]
    assert cli.run_app(runs_module.app, ["--mongo-uri", mongo_uri, "--mongo-db", db_name, "show", "going"]) == 0
    assert capsys.readouterr().out.startswith("Run going: silent\n  marked running, but its driver")
    assert raw_db.runs.find_one({"_id": "going"})["status"] == "running"  # shown, not rewritten
    assert records.shown_status({"status": "finished", "alive_at": last}) == "finished"
    assert records.shown_status({"status": "running"}) == "running"  # recorded before alive_at existed


@pytest.mark.parametrize("args, named", [
    (["show", "ghost"], "'ghost'"),
    (["show"], "run_id"),
    (["drop"], "drop"),
    (["--mongo-uri", "mongodb://u:secret@127.0.0.1:1/"], "127.0.0.1:1"),
])
def test_bad_input_gets_one_line_naming_it_and_exit_code_2(mongo_uri, db_name, raw_db, capsys, args, named):
    record_runs(records.connect(mongo_uri, db_name))
    code = cli.run_app(runs_module.app, ["--mongo-uri", mongo_uri, "--mongo-db", db_name, *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and named in err and "secret" not in err, err


def test_embedded_databases_under_out_are_each_read(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ARENA_MONGO_URI", raising=False)
    with EmbeddedMongo(tmp_path / "runs" / "solo" / "db") as server:  # as a run without --mongo-uri leaves it
        db = records.connect(server.uri, "arena")
        records.start_run(db, "solo", config(players=6))
        db.individuals.insert_one(individual("solo", 0, 0, 0.25))
        records.end_run(db, "solo", "finished", {"individuals": 1, "matches": 0, "best": "solo/player-0/0"})
        db.client.close()
    (tmp_path / "runs" / "stray" / "db").mkdir(parents=True)  # a folder with no record of its run
    monkeypatch.chdir(tmp_path)
    assert cli.run_app(runs_module.app, []) == 0
    captured = capsys.readouterr()
    assert table(captured.out)["solo"] == ["finished", "6", "1", "0.250"]
    assert table(captured.out)["stray"] == ["unreadable", "-", "-", "-"]
    assert "stray: run 'stray' not found" in captured.err

    assert cli.run_app(runs_module.app, ["--out", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_a_run_that_bred_nobody_says_so_rather_than_counting_continued_pairs_as_children():
    from io import StringIO

    from rich.console import Console

    from experiments.summaries import report_lineage

    out = StringIO()
    report_lineage(Console(file=out, width=200), {"children": 6, "built_first_try": 0, "mean_inherited_share": None,
                                                  "operators": {"continue": 5, "resume": 1}, "effects": {}})
    assert out.getvalue().strip() == ("No child was bred: every pair went on training (6 loops after each player's "
                                      "first)")
