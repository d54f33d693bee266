"""Across machines: a run on several Ray nodes refuses storage some node cannot reach, and the run goes as a
Ray Job (`ray job submit`), the way drivers run on Ray clusters. Nodes are simulated on this machine, as in
Ray's own tests; a node with its own environment stands for a machine with no way to the bucket."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import pyarrow.fs as pafs
import pytest
import ray

from experiments.cluster import check_reach
from experiments.run import free_port
from tests.test_run import ROOT

pytestmark = pytest.mark.slow


def clean_env(**extra: str) -> dict:
    """This process's environment without another cluster's or database's address."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "ARENA_MONGO_URI")}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def test_a_run_on_several_nodes_is_refused_where_a_node_cannot_reach_its_storage(
        tmp_path, s3_bucket, mongo_uri, db_name, raw_db):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        ray.init(address=cluster.address, log_to_driver=False, logging_level="ERROR")
        try:
            check_reach(str(tmp_path / "run"), embedded=False)  # one disk: every node reads the probe
            check_reach(f"{s3_bucket}/run", embedded=False)
            bucket, root = pafs.FileSystem.from_uri(s3_bucket)
            left = [f.path for f in bucket.get_file_info(pafs.FileSelector(root, recursive=True))]
            assert not [p for p in left if ".reach-" in p], f"a probe was left behind: {left}"
            with pytest.raises(ValueError, match="embedded database.*give --mongo-uri"):
                check_reach(str(tmp_path / "run"), embedded=True)
        finally:
            ray.shutdown()
        # A node whose machine has no way to the bucket: its processes see another endpoint.
        cut_off = cluster.add_node(num_cpus=1, env_vars={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
        refused = subprocess.run(
            [sys.executable, "-m", "experiments.run", "--address", cluster.address, "--players", "2", "--run-id",
             "far", "--out", f"{s3_bucket}/runs", "--mongo-uri", mongo_uri, "--mongo-db", db_name, "--quiet"],
            cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=240)
    finally:
        cluster.shutdown()
    assert refused.returncode == 2, refused.stdout + refused.stderr
    line = refused.stderr.strip()
    assert line.count("\n") == 0 and line.startswith("error: node "), line
    assert cut_off.node_id[:8] in line and f"{s3_bucket}/runs/far" in line and "give --out s3://" in line, line
    assert raw_db.runs.count_documents({}) == 0 and raw_db.individuals.count_documents({}) == 0, "the run started"


def http_ready(url: str, token: str) -> bool:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status == 200
    except OSError:
        return False


def test_the_run_goes_as_a_ray_job_on_a_cluster_from_ray_start(tmp_path):
    """`ray start --head` (token authentication on, as Ray 2.60 sets it), then `ray job submit --working-dir .
    -- python -m experiments.run …`: the job runs the arena to its end and is listed among the jobs."""
    token = secrets.token_hex(16)  # a token of this cluster's own: ~/.ray/auth_token is left as it is
    env = clean_env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token,
                    PATH=f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get('PATH', '')}")
    dashboard = f"http://127.0.0.1:{free_port()}"
    # A short private temp folder (Ray's socket paths have a length limit), and ports of its own: other
    # clusters may run on this machine, and `ray stop` would stop them all, so this one is stopped by its pid.
    temp = tempfile.mkdtemp(prefix="rayjob-", dir="/tmp")
    head = subprocess.Popen(
        ["ray", "start", "--head", "--block", "--num-cpus", "2", "--node-ip-address", "127.0.0.1",
         "--port", str(free_port()), "--dashboard-host", "127.0.0.1", "--dashboard-port", dashboard.rsplit(":", 1)[1],
         "--ray-client-server-port", str(free_port()), "--dashboard-agent-listen-port", str(free_port()),
         "--temp-dir", temp, "--disable-usage-stats"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 120
        while not http_ready(f"{dashboard}/api/jobs/", token):
            assert head.poll() is None and time.time() < deadline, "the head node did not come up"
            time.sleep(1)
        submit = subprocess.run(
            ["ray", "job", "submit", "--address", dashboard, "--submission-id", "arena-job", "--working-dir", ".",
             "--", "python", "-m", "experiments.run", "--players", "2", "--budget-seconds", "6", "--quiet",
             "--run-id", "job", "--out", str(tmp_path)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        output = submit.stdout + submit.stderr
        assert submit.returncode == 0 and "Job 'arena-job' succeeded" in output, output
        assert "Run job finished" in output and "player-1" in output, output
        assert len(list((tmp_path / "job" / "checkpoints").glob("player-*/*.pt"))) >= 2
        request = urllib.request.Request(f"{dashboard}/api/jobs/", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=10) as answer:  # what the dashboard's Jobs view lists
            jobs = {j.get("submission_id"): j for j in json.load(answer)}
        assert jobs["arena-job"]["status"] == "SUCCEEDED" and "experiments.run" in jobs["arena-job"]["entrypoint"]
    finally:
        head.send_signal(signal.SIGTERM)  # --block: the head stops every process it started, and only those
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        shutil.rmtree(temp, ignore_errors=True)
