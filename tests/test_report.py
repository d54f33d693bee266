"""The report: every figure drawn from a real run's records (finished, still running, interrupted),
figures without data left out with a sentence, never a blank picture, and one-line errors; the traces
folder read as one data set, by our code and by a plain Parquet reader."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pymongo
import pytest
from matplotlib import image

from agents import turns
from arena.config import ArenaConfig
from experiments import cli, report, sections
from genome.effects import CONTROL, OPERATOR_PROBABILITY
from storage.store import read_run_store
from storage.traces import TRACE_SCHEMA, TraceWriter, read_traces, trace_dataset
from tests.test_run import arena_run, background_run, check_records, finish

ROOT = Path(__file__).resolve().parents[1]
EVERY = set(report.FIGURES)


def make_report(run_id: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "ARENA_MONGO_URI"}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "experiments.report", run_id, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=180)


def check_report(folder: Path) -> tuple[set[str], str]:
    """The figures the page shows, each a decodable, non-blank PNG that exists; every figure it leaves
    out is explained. Returns the names shown and the page."""
    page = (folder / "index.html").read_text()
    references = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page)
    for reference in references:
        assert (folder / reference).is_file(), f"the page refers to a missing {reference}"
        pixels = image.imread(folder / reference)
        assert pixels.ndim == 3 and pixels.shape[0] > 50 and pixels.std() > 0, f"{reference} is blank"
    shown = {Path(r).stem for r in references}
    assert shown <= EVERY and len(references) == len(shown)
    assert page.count("No figure:") == len(EVERY - shown), "a figure is missing without a reason"
    return shown, page


def count(db_uri: str, database: str, run_id: str) -> int:
    with pymongo.MongoClient(db_uri, serverSelectionTimeoutMS=2000) as client:
        return client[database].individuals.count_documents({"run_id": run_id})


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A short run into its own embedded database, reported once while it runs (its budget outlasts the
    report on a loaded machine); then it finishes. Three players on 2 CPUs, whose loops cost 1, 2 and 4 times
    the steps (as when architectures differ: with equal costs players can finish as many generations by
    chance), breeding under truncation (the seed's crossover and mutation, culling by fitness) so that children
    are shown (a pair can be replaced after one loop: at three, on a loaded machine the slowest player, last in the
    standings, finished its third loop as the run ended, and nobody was bred);
    `test_three_players_evolve_asynchronously` checks its records, and the players tune their learning rates in
    windows of two loops. One run for all three tests (`xdist_group`): each run costs half a minute of a loaded
    machine's start-up."""
    out = tmp_path_factory.mktemp("report")
    run = arena_run("--players", "3", "--dataset", "ring8", "--budget-seconds", "35", "--seed", "3",
                    "--run-id", "rep", "--out", str(out), "--set", 'arena.exploit="truncation"',
                    "--set", 'arena.explore="breed"', "--set", 'arena.cull="fitness"',
                    "--set", "arena.steps_spread=4.0", "--set", "arena.tune=2", "--set", "arena.ready=1", cwd=out)
    uri_file, deadline = out / "rep" / "db.uri", time.time() + 120
    while not (uri_file.exists() and count(uri_file.read_text(), "arena", "rep") >= 4):
        assert time.time() < deadline and run.poll() is None, "the run recorded nothing"
        time.sleep(0.5)
    running = make_report("rep", "--out", str(out), "--report-dir", str(out / "while-running"), cwd=out)
    output = finish(run)
    assert run.returncode == 0, output
    assert not uri_file.exists(), "the run left the address of its stopped database behind"
    return out, running, output


@pytest.mark.slow
@pytest.mark.xdist_group("finished_run")  # one worker sets the shared finished_run up once
def test_a_running_run_is_reported_from_what_is_recorded(finished_run):
    out, running, _ = finished_run
    assert running.returncode == 0, running.stderr
    shown, page = check_report(out / "while-running")
    assert "still running" in page
    assert {"standings", "timeline", "losses", "elimination", "prevalence", "lineage", "samples"} <= shown


@pytest.mark.slow
@pytest.mark.xdist_group("finished_run")  # one worker sets the shared finished_run up once
def test_a_finished_run_has_every_figure(finished_run):
    out, _, _ = finished_run
    started = time.time()
    result = make_report("rep", "--out", str(out), cwd=out)
    assert result.returncode == 0, result.stderr
    folder = out / "rep" / "report"
    assert result.stdout.startswith(str(folder / "index.html")) and re.search(r"\(\d+\.\d s\)", result.stdout)
    assert time.time() - started < 90
    shown, page = check_report(folder)
    assert shown == EVERY, f"missing: {EVERY - shown}"
    assert "finished" in page and "still running" not in page
    leaderboard = page[page.index("Leaderboard"):]
    assert leaderboard.count("<tr>") == sections.LEADERBOARD + 1 and "adam" in leaderboard
    # What each genome costs: its training's wall and CPU time per step, in the columns after its parameters,
    # the CPU time never above the wall time (one thread trains).
    steps = re.findall(r"<td>[\d,]+</td><td>(\d+\.\d)</td><td>(\d+\.\d)</td>", leaderboard)
    assert "<th>ms/step</th><th>CPU ms/step</th>" in leaderboard and len(steps) == sections.LEADERBOARD
    assert all(0 < float(cpu) <= float(wall) + 0.1 for wall, cpu in steps)
    # How far each generator was from real data after its training, before its parameters: where it was measured
    # (with the quality metrics and for each player's last individual), else an empty cell.
    assert "<th>MMD² to real</th>" in leaderboard
    measured = len(re.findall(r"<td>\d+\.\d{4}</td><td>[\d,]+</td>", leaderboard))
    unmeasured = len(re.findall(r"<td></td><td>[\d,]+</td>", leaderboard))
    assert measured + unmeasured == sections.LEADERBOARD
    # The loop timeline of both players, with their share of each phase.
    assert re.search(r"<td class=l>player-0</td><td>\d+</td>", page) and "player-1" in page


@pytest.mark.slow
def test_ctrl_c_marks_the_run_interrupted_keeps_its_records_and_it_is_reported(tmp_path, mongo_uri, db_name,
                                                                                 raw_db):
    """Even a run started as a background job, with SIGINT ignored, stops on it; what it recorded is kept and
    reported. One run serves both: each costs half a minute of a loaded machine's start-up and evaluation."""
    config = tmp_path / "run.toml"  # flags override the file; adaptive operator probabilities on
    config.write_text("players = 5\nbudget_seconds = 120\n[mutation]\nadapt = true\nadapt_min_count = 1\n")
    run = background_run("--config", str(config), "--players", "2", "--run-id", "cut", "--out", str(tmp_path),
                         "--mongo-uri", mongo_uri, "--mongo-db", db_name, cwd=tmp_path)
    deadline = time.time() + 120
    while raw_db.individuals.count_documents({"run_id": "cut"}) < 4:
        assert time.time() < deadline and run.poll() is None, "the run recorded nothing"
        time.sleep(0.5)
    run.send_signal(signal.SIGINT)
    output = finish(run, timeout=120)
    assert run.returncode == 130 and "Run cut interrupted" in output, output
    run_record = raw_db.runs.find_one({"_id": "cut"})
    assert run_record["status"] == "interrupted"
    assert run_record["config"]["players"] == 2 and run_record["config"]["mutation"]["adapt"] is True
    check_records(raw_db, "cut", tmp_path / "cut" / "traces")

    result = make_report("cut", "--out", str(tmp_path), "--mongo-uri", mongo_uri, "--mongo-db", db_name, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    shown, page = check_report(tmp_path / "cut" / "report")
    assert "interrupted" in page
    assert "This run bred no child" in page  # exploit never by default: nobody is replaced
    assert {"standings", "timeline", "losses", "elimination", "prevalence", "lineage", "samples", "quality",
            "hacking"} <= shown


@pytest.mark.slow
@pytest.mark.xdist_group("finished_run")  # one worker sets the shared finished_run up once
def test_three_players_evolve_asynchronously(finished_run):
    out, _, output = finished_run
    read_run_store("rep", str(out), None, "arena", lambda db: check_three_players(db, out, output))


def check_three_players(raw_db, out: Path, output: str) -> None:
    """The records of the report fixture's run, read from the embedded database it left."""
    assert "Champion of the final population by fitness, then nearest real data: rep/player-" in " ".join(output.split())
    assert "Run rep finished" in output

    status = raw_db.runs.find_one({"_id": "rep"})
    assert status["summary"]["best"] == status["summary"]["quality"]["champion"]["individual"]  # the one evaluated
    assert status["status"] == "finished" and status["finished_at"] > status["started_at"]
    assert status["config"]["players"] == 3
    individuals = check_records(raw_db, "rep", out / "rep" / "traces")
    generations = Counter(i["player"] for i in individuals)
    assert set(generations) == {"player-0", "player-1", "player-2"}
    assert generations["player-0"] > generations["player-2"], f"nobody moved at its own pace: {generations}"
    by_id = {i["_id"]: i for i in individuals}
    for individual in individuals:  # fitness = mean share of opposing discriminators fooled, over the window
        chain, at = [], individual  # a continued pair keeps the matches its earlier ids made
        while at is not None:
            chain.append(at["_id"])
            at = by_id.get(next((op["from"] for op in at["ops"] if op["op"] == "continue"), None))
        fooled = [m["fooled"] for m in sorted(raw_db.matches.find({"generator": {"$in": chain}}),
                                              key=lambda m: m["at"])]
        if not fooled:
            assert individual["fitness"] is None, individual["_id"]
        elif len(chain) == 1 and len(fooled) <= ArenaConfig().fitness_window:
            assert individual["fitness"] == pytest.approx(sum(fooled) / len(fooled)), individual["_id"]
        else:  # inherited at its birth: its parent's later matches are not its own; arrival order is the registry's
            assert min(fooled) - 1e-9 <= individual["fitness"] <= max(fooled) + 1e-9, individual["_id"]
    assert sum(i["fitness"] is not None for i in individuals) > len(individuals) / 2
    for individual in individuals:  # the mutation record: change of fitness from the parents' mean
        if individual["fitness"] is not None and individual["parent_fitness"] is not None:
            assert individual["fitness_change"] == pytest.approx(individual["fitness"] - individual["parent_fitness"])
        else:
            assert individual["fitness_change"] is None
    # Each player tunes its rates by its distance to real data (`arena.tune`), measured in the second half of each
    # window (a pair's odd ages here, windows of two loops) and with the metrics, every 10th generation: a window
    # closes every second loop of a pair that trains on, and the next individual trains at the rates it gave.
    assert all(i["real_distance"] is not None for i in individuals if i["age"] % 2 or i["generation"] % 10 == 0)
    assert any(i["real_distance"] is None for i in individuals), "the first half of every window was measured"
    tuned = [(i, op) for i in individuals for op in i["ops"] if op["op"] == "tune"]
    assert tuned and {op["verdict"] for _, op in tuned} <= {"tried", "kept", "undone"}
    for individual, op in tuned:
        assert individual["age"] > 0 and individual["age"] % 2 == 0  # a window of two loops, afresh for a bred pair
        genome = individual["genome"]
        assert [genome["g_optimizer"]["lr"], genome["d_optimizer"]["lr"]] == [op["g_lr"][1], op["d_lr"][1]]
        parent = by_id[next(o["from"] for o in individual["ops"] if o["op"] == "continue")]["genome"]
        assert [parent["g_optimizer"]["lr"], parent["d_optimizer"]["lr"]] == [op["g_lr"][0], op["d_lr"][0]]
    for player in {i["player"] for i, _ in tuned}:  # an undone trial goes back to the rates it started from
        ops = [op for i, op in sorted(tuned, key=lambda t: t[0]["generation"]) if i["player"] == player]
        for before, op in zip(ops, ops[1:]):
            if op["verdict"] == "undone" and before["verdict"] != "undone":
                assert [op["g_lr"][1], op["d_lr"][1]] == [before["g_lr"][0], before["d_lr"][0]]
    lineage = status["summary"]["lineage"]
    assert lineage["children"] == sum(i["generation"] > 0 for i in individuals) == lineage["built_first_try"]
    # The operators' effects cover exactly the bred children that have fought, by their records (a short run on a
    # loaded machine may breed none that fought: then there are none).
    fought = Counter(op for i in individuals if i["fitness_change"] is not None
                     for op in {o["op"] for o in i["ops"]} & (set(OPERATOR_PROBABILITY) | {CONTROL}))
    effects = lineage["effects"]
    assert {name: e["count"] for name, e in effects.items()} == dict(fought)
    assert all(e["count"] == e["helped"] + e["hurt"] + e["neutral"] for e in effects.values())
    # Three players on 2 CPUs share the cores: each took turns on them, and the turns' files are gone with the run.
    assert all(p["core_turns"] > 0 for p in status["summary"]["players"]), status["summary"]["players"]
    assert not Path(turns.folder("rep")).exists()


def test_old_records_without_timelines_fall_back_and_empty_figures_are_explained(tmp_path, mongo_uri, db_name,
                                                                                  raw_db):
    """Records as older runs left them (no standing at the fight, no loop timeline, no match, no
    metric, a checkpoint gone): what can be drawn is, from the traces; the rest says why."""
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    raw_db.runs.insert_one({"_id": "old", "config": {"dataset": "ring8", "players": 2}, "status": "running",
                            "started_at": start})
    for player in ("player-0", "player-1"):
        writer = TraceWriter(str(tmp_path / "old" / "traces"), "old", player)
        for generation in range(3):
            _id = f"old/{player}/{generation}"
            parents = [f"old/{player}/{generation - 1}"] if generation else []
            raw_db.individuals.insert_one({
                "_id": _id, "run_id": "old", "player": player, "generation": generation, "parents": parents,
                "ops": [{"op": "clone"}] if generation else [], "fitness": 0.2 * generation or None,
                "rating": generation - 1.0, "created_at": start + dt.timedelta(seconds=3 * generation + 1),
                "checkpoint": str(tmp_path / "gone.pt"), "parameters": 10})
            base = start.timestamp() + 3 * generation
            writer.add(_id, generation, [{"step": s, "g_loss": 1.0 / (s + 1), "d_loss": 0.7, "time": base + 0.1 * s}
                                         for s in range(20)])
        writer.close()
    stale = tmp_path / "report" / "quality.png"
    stale.parent.mkdir()
    stale.write_bytes(b"an earlier report's figure")

    db = pymongo.MongoClient(mongo_uri, tz_aware=True)[db_name]
    index = report.build(db, "old", str(tmp_path), tmp_path / "report")
    shown, page = check_report(index.parent)
    assert shown == {"standings", "timeline", "losses", "prevalence", "lineage"}
    assert not stale.exists()
    assert "final standing at their birth" in page and "from the traces" in page
    assert "no match is recorded" in page and "no quality metric" in page and "gone.pt" in page
    assert "no individual recorded its hacking measure" in page
    assert page.count("<tr>", page.index("Leaderboard")) == 1 + 4  # header and the four with a fitness


def test_a_player_in_the_traces_before_its_first_record_is_drawn(tmp_path, mongo_uri, db_name, raw_db):
    """A running run read between a player's first traces and its first individual's record (the report reads the
    traces last): that player's losses are drawn in a colour of its own, not a KeyError."""
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    raw_db.runs.insert_one({"_id": "early", "config": {"dataset": "ring8", "players": 2}, "status": "running",
                            "started_at": start})
    raw_db.individuals.insert_one({"_id": "early/player-0/0", "run_id": "early", "player": "player-0",
                                   "generation": 0, "parents": [], "ops": [], "created_at": start,
                                   "checkpoint": str(tmp_path / "gone.pt"), "parameters": 10})
    for player in ("player-0", "player-1"):
        writer = TraceWriter(str(tmp_path / "early" / "traces"), "early", player)
        writer.add(f"early/{player}/0", 0, [{"step": s, "g_loss": 1.0, "d_loss": 0.7, "time": start.timestamp() + s}
                                             for s in range(20)])
        writer.close()
    db = pymongo.MongoClient(mongo_uri, tz_aware=True)[db_name]
    shown, _ = check_report(report.build(db, "early", str(tmp_path), tmp_path / "report").parent)
    assert "losses" in shown


def test_bad_input_is_one_line_naming_it(tmp_path, mongo_uri, db_name, raw_db, capsys, monkeypatch):
    monkeypatch.delenv("ARENA_MONGO_URI", raising=False)
    raw_db.runs.insert_one({"_id": "here", "config": {}, "status": "running"})
    cases = [(["nope", "--mongo-uri", mongo_uri, "--mongo-db", db_name], "run 'nope' not found"),
             (["here", "--mongo-uri", "mongodb://127.0.0.1:1/"], "no MongoDB server answered at mongodb://127.0.0.1:1"),
             (["here", "--out", str(tmp_path / "missing")], "no embedded database for run 'here'"),
             (["here", "--bogus"], "No such option: --bogus")]
    for args, message in cases:
        assert cli.run_app(report.app, args) == 2, args
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], (args, lines)


def test_the_traces_folder_is_one_dataset_for_any_parquet_reader(tmp_path):
    folder = tmp_path / "traces"
    assert read_traces(str(folder)).num_rows == 0 and trace_dataset(str(folder)).schema == TRACE_SCHEMA
    for player in ("player-0", "player-1"):
        writer = TraceWriter(str(folder), "r", player, flush_rows=4)
        rows = [{"step": s, "g_loss": 1.0, "d_loss": 2.0, "time": 1e9 + s} for s in range(6)]
        writer.add(f"r/{player}/0", 0, rows[:4])  # a file of 4 rows, then one of 2 on close
        writer.add(f"r/{player}/1", 1, rows[4:])
        writer.close()
    (folder / ".player-9-being-written.parquet.partial-1").write_bytes(b"half a file")
    dataset = trace_dataset(str(folder))
    assert dataset.schema == TRACE_SCHEMA and len(dataset.files) == 4
    assert dataset.count_rows() == 12 and read_traces(str(folder), ["player"]).column_names == ["player"]
    pandas = pytest.importorskip("pandas")
    frame = pandas.read_parquet(folder)  # no code of ours: the folder itself is the data set
    assert len(frame) == 12 and frame.groupby("player").step.max().to_dict() == {"player-0": 5, "player-1": 5}


def test_figures_without_data_raise_rather_than_draw(tmp_path):
    from experiments import figures

    for draw, args in [(figures.standings, ([{"t": 1.0, "player": "p", "fitness": None, "rating": None}], {})),
                       (figures.loop_timeline, ([], {})), (figures.elimination, ({"g": []}, {})),
                       (figures.prevalence, ([], {})), (figures.lineage_tree, ([], {})),
                       (figures.samples, ([], None)), (figures.quality, ([{"t": 1.0, "player": "p"}], {})),
                       (figures.effects, ({},)), (figures.losses, ({"p": ([], [], [])}, {})),
                       (figures.hacking, ([], {})),
                       (figures.epidemic, ({"generator": []}, [{"t": 1.0, "coinfected": 0.0}], [], {}, 0))]:
        with pytest.raises(figures.NoData):
            draw(tmp_path / f"{uuid.uuid4().hex}.png", *args)
    assert not list(tmp_path.iterdir()), "a figure without data was written"


def test_lineage_effect_and_epidemic_figures_draw_from_plain_records(tmp_path):
    """The figures of issue 15 from hand-made records: both sides' lineages, operators against clones,
    and the epidemic; each a non-blank picture, and the report's tables name the control and the counts."""
    from arena.analysis import lineage_elimination, lineage_prevalence
    from experiments import figures
    from genome.effects import operator_changes, operator_effects
    from tests.test_epidemiology import INDIVIDUALS, match

    matches = [match("a1", "b0", 0.8, 5), match("b1", "a1", 0.3, 6), match("a2", "b1", 0.9, 7),
               match("a2", "b1", 0.2, 8)]
    since = sections.seconds_since(dt.datetime(2026, 1, 1))
    founders = {"a0": ("founder a0", "C0"), "b0": ("founder b0", "C1")}
    children = [{"ops": [{"op": op}], "fitness_change": change} for op, change in
                [("clone", -0.1), ("clone", 0.0), ("clone", -0.2), ("add_noise", 0.1), ("add_noise", 0.0)]]
    effects = operator_effects(children, resamples=100)
    args, note = sections.epidemic_figure(INDIVIDUALS, matches, since, founders)
    drawings = {
        "elimination": (figures.elimination, {side: lineage_elimination(INDIVIDUALS, matches, side)
                                              for side in sections.SIDES}, founders),
        "prevalence": (figures.prevalence, {side: [{**r, "t": since(r["at"])} for r in
                                                   lineage_prevalence(INDIVIDUALS, side)] for side in sections.SIDES},
                       founders),
        "effects": (figures.effects, operator_changes(children), effects),
        "epidemic": (figures.epidemic, *args)}
    for name, (draw, *rest) in drawings.items():
        draw(tmp_path / f"{name}.png", *rest)
        pixels = image.imread(tmp_path / f"{name}.png")
        assert pixels.shape[0] > 50 and pixels.std() > 0, name
    assert "clone (control)" in sections.effects_table(effects) and "Δ vs clones" in sections.effects_table(effects)
    assert "<td class=l>infected</td><td>2</td>" in note and "re-infected after immunity" in note
