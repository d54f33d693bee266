"""Before a run starts on a Ray cluster of several nodes: can every node reach what the run will use?

On one machine everything is reachable. Across machines the embedded database listens on the driver's
loopback only, and a local `--out` is a different folder on each node's own disk: players would write their
checkpoints and traces where the driver never reads them. So the run refuses to start, in one line that
says what to give instead, rather than break quietly later.
"""

from __future__ import annotations

import os
import secrets

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from storage.files import is_uri, join, read_bytes, resolve, write_atomically

PROBE_SECONDS = 60  # a node that cannot answer within this is as unreachable as one that cannot read
SHARED = "--out s3://BUCKET/PREFIX (or gs://…) or a folder on a file system every node mounts"


def dashboard_note() -> str:
    """How to get past the dashboard's login, for the start line: Ray 2.60 asks a browser for the
    cluster's token before it lists anything."""
    if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
        return ""
    return " (its token: `ray get-auth-token`)"


@ray.remote(num_cpus=0, max_retries=0)
def _read_probe(location: str) -> str:
    """What one node sees at `location`: its contents, or why it cannot read them."""
    try:
        return read_bytes(location).decode(errors="replace")
    except Exception as err:  # pyarrow raises several types for a missing file or an unreachable store
        reason = str(err).strip().splitlines()
        return f"cannot read it ({type(err).__name__}{': ' + reason[0] if reason else ''})"


def _alive_nodes() -> list[dict]:
    return [n for n in ray.nodes() if n.get("Alive")]


def check_reach(run_dir: str, embedded: bool) -> None:
    """Refuse, with a ValueError of one line, a run on several nodes that would use the embedded database
    or a `run_dir` that some node cannot read. The driver writes a probe into `run_dir`; a task pinned to
    each node reads it back. Call after connecting to Ray, before any player starts."""
    nodes = _alive_nodes()
    if len(nodes) <= 1:
        return
    if embedded:
        raise ValueError(f"the Ray cluster has {len(nodes)} nodes, but the embedded database listens on this "
                         f"machine's loopback only; give --mongo-uri mongodb://HOST:PORT/ of a server every node "
                         f"reaches")
    token = secrets.token_hex(16)
    probe = join(run_dir, f".reach-{token[:8]}")  # a leading dot: no reader of the run's files lists it
    write_atomically(probe, token.encode())
    try:
        refs = {_read_probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
                .remote(probe): n for n in nodes}
        done, _ = ray.wait(list(refs), num_returns=len(refs), timeout=PROBE_SECONDS)
        seen = {ref: _answer(ref) for ref in done}
    finally:
        _remove(probe)
    for ref, node in refs.items():
        found = seen.get(ref, f"did not answer within {PROBE_SECONDS} s")
        if found != token:
            why = found if found.startswith(("cannot", "did not")) else "found another file there"
            where = run_dir if is_uri(run_dir) else f"{run_dir} (a local folder)"
            raise ValueError(f"node {node['NodeManagerAddress']} ({node['NodeID'][:8]}) of the Ray cluster "
                             f"cannot read {where}: {why}; give {SHARED}")


def _answer(ref) -> str:
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as err:  # the node died, or no worker could start there
        return f"cannot run a task there ({type(err).__name__})"


def _remove(location: str) -> None:
    filesystem, path = resolve(location)
    try:
        filesystem.delete_file(path)
    except OSError:
        pass  # a probe left behind is a few bytes under a hidden name, and the refusal matters more
