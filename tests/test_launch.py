"""The run's driver step by step, with Ray's part replaced and the real test server: whatever fails at the
end of a run, its status is recorded first, and the cause the user sees is the run's own."""

from __future__ import annotations

import pytest

from arena.config import ArenaConfig
from arena.founders import found
from genome.operators import MutationConfig
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


def test_the_champion_the_final_evaluation_chose_is_the_one_recorded_and_sampled(driver, monkeypatch, raw_db, capsys):
    """Under `arena.champion = "real"` the evaluation may choose another than the first by standing: the
    run's summary, its printout and `experiments.sample` all give that one."""
    from experiments.sample import choose_source

    genome = found(0, 0, 2, (2,), MutationConfig(), ArenaConfig()).genome.to_dict()

    def evolve(cfg, db, run_id, registry, players, elapsed, console, outcome):
        outcome.status, outcome.started = "finished", 0.0
        db.individuals.insert_many([{"_id": f"r/p{i}/0", "run_id": "r", "fitness": f, "generation": 0,
                                     "genome": genome, "player": f"p{i}", "checkpoint": f"p{i}.pt"} for i, f in enumerate((0.9, 0.4))])

    def evaluate(db, run_id, judge, population, ensemble, seed, key, choice, screen, regions, refine):
        assert (population, key, choice, screen, regions, refine) == (["r/p0/0", "r/p1/0"], "fitness", "real", 0.125,
                                                                       128, ArenaConfig().refine)
        champion = {"individual": "r/p1/0", "by": "fitness, then nearest real data", "modes": 8,
                    "high_quality": 0.9, "kl": 0.01}
        return {"champion": champion, "by_standing": {**champion, "individual": "r/p0/0", "by": "fitness"}}

    monkeypatch.setattr(run_module, "evolve", evolve)
    monkeypatch.setattr(run_module, "final_population", lambda registry, db: ["r/p0/0", "r/p1/0"])
    monkeypatch.setattr(run_module, "evaluate_final", evaluate)
    assert driver() == 0
    out = capsys.readouterr().out
    assert "Champion of the final population by fitness, then nearest real data: r/p1/0 (fitness 0.400" in out
    assert "first by fitness alone (r/p0/0)" in out
    assert raw_db.runs.find_one({"_id": "r"})["summary"]["best"] == "r/p1/0"
    assert choose_source(raw_db, "r", None, None) == (["r/p1/0"], [1.0])


def test_a_running_runs_champion_and_a_named_individual_are_read_only_from_kept_checkpoints(raw_db):
    """A player deletes old checkpoints (`keep_checkpoints`): sampling a run still going takes the first by
    standing among those it kept, and naming one whose checkpoint went is refused in one line."""
    from experiments.sample import choose_source

    raw_db.runs.insert_one({"_id": "k", "status": "running", "config": {"arena": {"selection": "fitness"}}})
    raw_db.individuals.insert_many([
        {"_id": "k/p0/1", "run_id": "k", "fitness": 0.9, "checkpoint_pruned": True},
        {"_id": "k/p0/3", "run_id": "k", "fitness": 0.5},
        {"_id": "k/p1/3", "run_id": "k", "fitness": 0.7}])
    assert choose_source(raw_db, "k", None, None) == (["k/p1/3"], [1.0])
    assert choose_source(raw_db, "k", None, 2) == (["k/p1/3", "k/p0/3"], [0.5, 0.5])
    with pytest.raises(ValueError, match="^individual 'k/p0/1''s checkpoint was deleted") as err:
        choose_source(raw_db, "k", "k/p0/1", None)
    assert "\n" not in str(err.value)
