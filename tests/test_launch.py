"""The run's driver step by step, with Ray's part replaced and the real test server: whatever fails at the
end of a run, its status is recorded first, and the cause the user sees is the run's own."""

from __future__ import annotations

import pytest

from experiments import cli
from experiments import run as run_module


class Broken(Exception):
    pass


def fail(message: str):
    def step(*args, **kwargs):
        raise Broken(message)
    return step


@pytest.fixture
def driver(monkeypatch, mongo_uri, db_name):
    """`python -m experiments.run` in process, with no Ray: a cluster, actors and an evolution replaced."""
    monkeypatch.setattr(run_module, "join_cluster", lambda cfg, run_id, console, stack: ("127.0.0.1:1", 1.0))
    monkeypatch.setattr(run_module, "check_reach", lambda run_dir, embedded: None)
    monkeypatch.setattr(run_module, "start_actors", lambda *args: ("registry", [], None))

    def run(*flags: str) -> int:
        return cli.run_app(run_module.app, ["--players", "2", "--run-id", "r", "--mongo-uri", mongo_uri.rstrip("/"),
                                            "--mongo-db", db_name, "--quiet", *flags])
    return run


def evolved(status: str):
    def evolve(cfg, db, run_id, registry, players, elapsed, console, outcome):
        outcome.status, outcome.started = status, 0.0
    return evolve


@pytest.mark.parametrize("status, code", [("finished", 0), ("interrupted", 130)])
def test_a_failing_summary_leaves_the_status_and_the_exit_code(driver, monkeypatch, raw_db, capsys, status, code):
    monkeypatch.setattr(run_module, "evolve", evolved(status))
    monkeypatch.setattr(run_module, "final_population", fail("registry gone"))
    monkeypatch.setattr(run_module, "evaluate_final", fail("checkpoint unreadable"))
    assert driver() == code
    out = capsys.readouterr().out
    assert "warning: reading the final standings failed: registry gone" in out
    assert f"Run r {status}: 0 individuals, 0 matches." in out  # the steps that work still report
    record = raw_db.runs.find_one({"_id": "r"})
    assert record["status"] == status and record["finished_at"] >= record["started_at"]
    assert record["summary"]["individuals"] == 0


def test_the_run_s_own_error_is_what_the_user_sees(driver, monkeypatch, raw_db, capsys):
    monkeypatch.setattr(run_module, "evolve", fail("players were not placed"))
    monkeypatch.setattr(run_module, "final_population", fail("registry gone"))
    monkeypatch.setattr(run_module.records, "run_summary", fail("database gone"))
    with pytest.raises(Broken, match="players were not placed"):
        driver()
    assert raw_db.runs.find_one({"_id": "r"})["status"] == "failed"
    assert "warning: counting the records failed: database gone" in capsys.readouterr().out


def test_an_error_on_the_way_out_is_one_line_and_exit_code_2(driver, monkeypatch, raw_db, capsys):
    def evolve(*args):
        raise RuntimeError("players were not placed within 120 s")

    monkeypatch.setattr(run_module, "evolve", evolve)
    monkeypatch.setattr(run_module, "final_population", fail("registry gone"))
    assert driver() == 2
    assert capsys.readouterr().err.strip() == "error: players were not placed within 120 s"
    assert raw_db.runs.find_one({"_id": "r"})["status"] == "failed"


def test_a_status_that_cannot_be_recorded_does_not_hide_the_outcome(driver, monkeypatch, capsys):
    monkeypatch.setattr(run_module, "evolve", evolved("finished"))
    monkeypatch.setattr(run_module.records, "end_run", fail("database gone"))
    assert driver() == 0
    assert "warning: recording the run's status failed: database gone" in capsys.readouterr().out


def test_records_are_named_by_database_and_server(driver, monkeypatch, mongo_uri, db_name, capsys):
    monkeypatch.setattr(run_module, "evolve", evolved("finished"))
    assert driver() == 0
    out = capsys.readouterr().out
    assert f"Records: database {db_name} at {mongo_uri.rstrip('/')}" in out
    assert f"{mongo_uri.rstrip('/')}{db_name}" not in out
