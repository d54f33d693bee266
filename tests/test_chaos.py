"""The fault-injection command's own parts: when faults strike, and the audit of expected against found
(the whole command runs for minutes; the faults themselves are tested in test_faults.py)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from experiments.chaos import audit, fault_plan
from storage.traces import TraceWriter


def test_faults_are_spread_over_the_middle_of_the_budget_in_a_shuffled_order():
    plan = fault_plan(4, 2, 2, 300.0, np.random.default_rng(0))
    times = [t for t, _ in plan]
    assert len(plan) == 8 and times == sorted(times) and times[0] == 45.0 and times[-1] == 240.0
    assert sorted(kind for _, kind in plan) == ["outage"] * 2 + ["player_kill"] * 4 + ["registry_kill"] * 2
    other = fault_plan(4, 2, 2, 300.0, np.random.default_rng(1))
    assert [k for _, k in plan] != [k for _, k in other] or [k for _, k in plan] != \
        [k for _, k in fault_plan(4, 2, 2, 300.0, np.random.default_rng(2))], "never shuffled"
    assert fault_plan(0, 0, 0, 300.0, np.random.default_rng(0)) == []


def _individual(player: str, generation: int, matches: int | None = None, rows: int | None = None) -> dict:
    doc = {"_id": f"r/{player}/{generation}", "run_id": "r", "player": player, "generation": generation}
    if matches is not None:
        doc.update(matches=matches, trace_rows=rows)
    return doc


def _rows(n: int) -> list[dict]:
    return [{"step": i, "g_loss": 0.0, "d_loss": 0.0, "time": 1.7e9 + i} for i in range(n)]


def test_the_audit_counts_claims_against_what_is_stored(raw_db, tmp_path):
    raw_db.individuals.insert_many([
        _individual("player-0", 0, 2, 3), _individual("player-0", 1, 1, 2),
        _individual("player-1", 0, 1, 1),
        _individual("player-1", 1),  # killed between recording itself and its fight: claims nothing
    ])
    raw_db.matches.insert_many([{"_id": f"m{i}", "run_id": "r", "by": by} for i, by in
                                enumerate(["r/player-0/0", "r/player-0/0", "r/player-0/1", "r/player-1/0"])])
    writer = TraceWriter(str(tmp_path), "r", "player-0")
    writer.add("r/player-0/0", 0, _rows(3))
    writer.add("r/player-0/1", 1, _rows(2))
    writer.add("r/player-1/0", 0, _rows(1))
    writer.close()
    found = audit(raw_db, "r", str(tmp_path))
    assert found["individuals"] == {"expected": 4, "found": 4}
    assert found["matches"] == {"expected": 4, "found": 4}
    assert found["trace_rows"] == {"expected": 6, "found": 6}
    assert found["unclaimed_individuals"] == 1 and found["orphan_matches"] == 0 and found["orphan_trace_rows"] == 0

    # What a lost write looks like: a generation missing, a match gone, rows of nobody.
    raw_db.individuals.delete_one({"_id": "r/player-0/0"})
    raw_db.matches.delete_one({"_id": "m3"})
    writer = TraceWriter(str(tmp_path), "r", "player-2")
    writer.add("r/player-2/0", 0, _rows(5))
    writer.close()
    lost = audit(raw_db, "r", str(tmp_path))
    assert lost["individuals"] == {"expected": 4, "found": 3}
    assert lost["matches"] == {"expected": 2, "found": 1}
    assert lost["orphan_matches"] == 2 and lost["orphan_trace_rows"] == 3 + 5


@pytest.mark.parametrize("args, named", [
    (["--player-kills", "-1"], "--player-kills"),
    (["--outage-seconds", "0"], "--outage-seconds"),
    (["--players", "0"], "--players"),
    (["--players", "x"], "'--players'"),
    (["--set", "arena.pack=0"], "arena.pack"),  # the run's own configuration, checked before any fault
])
def test_bad_chaos_flags_get_one_line(tmp_path, args, named):
    run = subprocess.run([sys.executable, "-m", "experiments.chaos", *args, "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stderr.startswith("error: ") and named in run.stderr, run.stderr
    assert run.stderr.strip().count("\n") == 0 and not any(tmp_path.iterdir())
