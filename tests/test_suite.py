"""The suite's own machinery: the grouping that the README's test command relies on."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

GROUPED = '''
import os
import pytest

def record(name):
    with open(os.path.join(os.environ["WORKERS_OUT"], name), "w") as out:
        out.write(os.environ["PYTEST_XDIST_WORKER"])

@pytest.mark.parametrize("i", range(6))
@pytest.mark.xdist_group("shared")
def test_grouped(i):
    record(f"grouped-{i}")

@pytest.mark.parametrize("i", range(6))
def test_free(i):
    record(f"free-{i}")
'''


@pytest.mark.slow
def test_loadgroup_sends_a_group_to_one_worker(tmp_path):
    """Tests sharing an `xdist_group` run on one worker, so their costly fixture (the report's finished run) is
    built once. pytest 9.2 with pytest-xdist 3.8 drops the group silently (pyproject.toml says why)."""
    (tmp_path / "test_grouped.py").write_text(GROUPED)
    out = tmp_path / "workers"
    out.mkdir()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}  # not this worker's
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", "--dist",
                           "loadgroup", "--no-loadscope-reorder", "test_grouped.py"], cwd=tmp_path,
                          env={**clean, "WORKERS_OUT": str(out)}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    workers = {path.name: path.read_text() for path in out.iterdir()}
    assert len(workers) == 12
    assert len({w for name, w in workers.items() if name.startswith("grouped")}) == 1, workers
