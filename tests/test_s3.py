"""`--out s3://…` end to end against a real S3-protocol server on loopback (moto's server mode, started by
the `s3_bucket` fixture): a run, its resume, its report and samples, read back through pyarrow and pymongo."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pyarrow.fs as pafs
import pytest

from tests.test_run import ROOT, arena_run, check_records, finish, read_file

pytestmark = pytest.mark.slow


def command(module: str, *args: str, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=240)


def test_a_run_in_a_bucket_resumes_reports_and_samples_from_it(tmp_path, s3_bucket, mongo_uri, db_name, raw_db):
    out = f"{s3_bucket}/runs"
    store = ["--mongo-uri", mongo_uri, "--mongo-db", db_name]
    first = arena_run("--players", "2", "--budget-seconds", "6", "--run-id", "s3", "--quiet", "--out", out, *store,
                      cwd=tmp_path)
    outputs = [finish(first)]
    assert first.returncode == 0, outputs[-1]
    before = raw_db.individuals.count_documents({"run_id": "s3"})

    # Six seconds more than the first part spent, however long a loaded machine made it (CI saw 18 s of 6).
    budget = raw_db.runs.find_one({"_id": "s3"})["elapsed_seconds"] + 6
    resumed = arena_run("--resume", "s3", "--budget-seconds", f"{budget:.0f}", "--quiet", "--out", out, *store,
                        cwd=tmp_path)
    outputs.append(finish(resumed))
    assert resumed.returncode == 0 and "Resuming s3" in outputs[-1], outputs[-1]
    record = raw_db.runs.find_one({"_id": "s3"})
    assert record["status"] == "finished" and record["resumes"] == 1
    individuals = check_records(raw_db, "s3", f"{out}/s3/traces")  # checkpoints and traces read from the bucket
    assert len(individuals) > before, "the resumed run added nothing"
    assert all(i["checkpoint"].startswith(f"{out}/s3/checkpoints/player-") for i in individuals)

    report = command("experiments.report", "s3", "--out", out, *store, cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert report.stdout.startswith(f"{out}/s3/report/index.html"), report.stdout
    assert b"Run s3" in read_file(f"{out}/s3/report/index.html")
    bucket = pafs.FileSystem.from_uri(out)[0]
    figures = bucket.get_file_info(pafs.FileSelector(f"{s3_bucket[5:]}/runs/s3/report"))
    assert sum(f.path.endswith(".png") for f in figures) >= 5, [f.path for f in figures]

    sample = command("experiments.sample", "s3", "--n", "64", "--out", str(tmp_path / "x.npy"), "--runs", out,
                     *store, cwd=tmp_path)
    assert sample.returncode == 0, sample.stderr
    assert np.load(tmp_path / "x.npy").shape == (64, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"], "a run in a bucket wrote to local disk"
    printed = "".join(outputs) + report.stdout + report.stderr + sample.stdout + sample.stderr
    assert os.environ["AWS_SECRET_ACCESS_KEY"] not in printed, "a credential was printed"
