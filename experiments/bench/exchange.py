"""`python -m experiments.bench exchange`: how fast a player gets an opponent's weights, three ways."""

from __future__ import annotations

import base64
import json
import shutil
import statistics
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import List

import ray
import torch
import typer

from experiments.bench import results
from experiments.bench.common import ray_session
from storage.checkpoints import load_checkpoint, save_checkpoint

METHODS = ("object store", "object store, zero-copy", "checkpoint file", "json over http")
# Ray serializes torch tensors by copying them unless this is set in the process that puts them;
# then a reader maps the stored bytes (read-only) instead of copying them.
ZERO_COPY = {"env_vars": {"RAY_ENABLE_ZERO_COPY_TORCH_TENSORS": "1"}}
TENSORS = 4  # per network


def state_dict(megabytes: float) -> dict:
    """Two networks' state dicts of float32 tensors totalling `megabytes` (10^6 bytes)."""
    numel = max(1, int(megabytes * 1e6 / 4) // (2 * TENSORS))
    generator = torch.Generator().manual_seed(0)
    return {net: {f"{i}.weight": torch.randn(numel, generator=generator) for i in range(TENSORS)}
            for net in ("generator", "discriminator")}


def encode(states: dict) -> bytes:
    """Lipizzaner's wire format: each tensor as its dtype, shape and base64-encoded bytes, in JSON."""
    return json.dumps({net: {name: {"dtype": "float32", "shape": list(t.shape),
                                    "data": base64.b64encode(t.numpy().tobytes()).decode("ascii")}
                             for name, t in tensors.items()}
                       for net, tensors in states.items()}).encode()


def decode(payload: bytes) -> dict:
    return {net: {name: torch.frombuffer(bytearray(base64.b64decode(t["data"])), dtype=torch.float32)
                  .reshape(t["shape"]) for name, t in tensors.items()}
            for net, tensors in json.loads(payload).items()}


def total_bytes(states: dict) -> int:
    return sum(t.numel() * t.element_size() for tensors in states.values() for t in tensors.values())


def checksum(states: dict) -> float:
    return sum(float(t.double().sum()) for tensors in states.values() for t in tensors.values())


class Opponent:
    """Holds a state dict and publishes it each way; serves the JSON from a thread of its own."""

    def __init__(self):
        self.states, self.payload = {}, b""
        opponent = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(opponent.payload)))
                self.end_headers()
                self.wfile.write(opponent.payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def hold(self, megabytes: float) -> tuple[int, float]:
        """Hold a state dict of `megabytes` from now on; returns its size in bytes and its checksum."""
        self.states, self.payload = {}, b""
        self.states = state_dict(megabytes)
        return total_bytes(self.states), checksum(self.states)

    def put(self) -> tuple[list, float]:
        started = time.perf_counter()
        ref = ray.put(self.states)
        return [ref], time.perf_counter() - started

    def save(self, location: str) -> tuple[str, float]:
        started = time.perf_counter()
        sha256 = save_checkpoint(location, {"genome": {}, **self.states, "step": 0})
        return sha256, time.perf_counter() - started

    def serve(self) -> tuple[str, float]:
        started = time.perf_counter()
        self.payload = encode(self.states)
        return f"http://127.0.0.1:{self.server.server_address[1]}/weights", time.perf_counter() - started


class Fetcher:
    """The player's side: fetches into tensors of its own, as `load_state_dict` copies into a module's."""

    def __init__(self):
        self.own: dict = {}

    def hold(self, megabytes: float) -> None:
        self.own = {}
        self.own = {net: {name: torch.zeros_like(t) for name, t in tensors.items()}
                    for net, tensors in state_dict(megabytes).items()}

    def fetch(self, method: str, where, sha256: str | None = None) -> tuple[float, int, float]:
        """Seconds from asking until its own tensors hold the weights; bytes and checksum of what they hold."""
        for tensors in self.own.values():
            for tensor in tensors.values():
                tensor.zero_()
        started = time.perf_counter()
        if method.startswith("object store"):
            states = ray.get(where[0])
        elif method == "checkpoint file":
            states = load_checkpoint(where, sha256=sha256)
        elif method == "json over http":
            with urllib.request.urlopen(where, timeout=600) as answer:
                states = decode(answer.read())
        else:
            raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
        for net, tensors in self.own.items():
            for name, tensor in tensors.items():
                tensor.copy_(states[net][name])
        seconds = time.perf_counter() - started
        return seconds, total_bytes({net: states[net] for net in self.own}), checksum(self.own)


def measure(opponent, zero_copy, fetcher, megabytes: float, repeats: int, directory: str) -> list[dict]:
    """One size: the opponents hold it, the fetcher fetches it `repeats` times each way. Needs Ray started."""
    (size, total), _, _ = ray.get([opponent.hold.remote(megabytes), zero_copy.hold.remote(megabytes),
                                   fetcher.hold.remote(megabytes)])
    timings: dict[str, tuple[list, list]] = {method: ([], []) for method in METHODS}
    for repeat in range(repeats):
        for method in METHODS:
            sha256 = None
            if method == "object store":
                where, published = ray.get(opponent.put.remote())
            elif method == "object store, zero-copy":
                where, published = ray.get(zero_copy.put.remote())
            elif method == "checkpoint file":
                where = f"{directory}/{megabytes:g}MB-{repeat}.pt"
                sha256, published = ray.get(opponent.save.remote(where))
            else:
                where, published = ray.get(opponent.serve.remote())
            fetched, got, sums = ray.get(fetcher.fetch.remote(method, where, sha256))
            if got != size or sums != total:
                raise RuntimeError(f"{method}: fetched {got} bytes of tensors summing to {sums}, "
                                   f"published {size} summing to {total}")
            timings[method][0].append(published)
            timings[method][1].append(fetched)
            del where
    json_fetch = statistics.median(timings["json over http"][1])
    rows = []
    for method, (published, fetched) in timings.items():
        fetch = statistics.median(fetched)
        rows.append({"megabytes": size / 1e6, "method": method, "repeats": repeats,
                     "publish_s": statistics.median(published), "fetch_s": fetch, "MB_per_s": size / 1e6 / fetch,
                     "json_vs_this": json_fetch / fetch})
    return rows


def bench(sizes: list[float], repeats: int, num_cpus: int) -> list[dict]:
    if not sizes or any(s <= 0 for s in sizes) or repeats < 1:
        raise ValueError("sizes must be positive megabytes and repeats at least 1")
    directory = tempfile.mkdtemp(prefix="arena-exchange-")
    rows = []
    try:
        with ray_session(num_cpus, object_store_memory=max(2**28, int(3 * max(sizes) * 1e6))):
            opponent = ray.remote(Opponent).options(num_cpus=0).remote()
            zero_copy = ray.remote(Opponent).options(num_cpus=0, runtime_env=ZERO_COPY).remote()
            fetcher = ray.remote(Fetcher).options(num_cpus=0).remote()
            try:
                for megabytes in sizes:
                    rows += measure(opponent, zero_copy, fetcher, megabytes, repeats, directory)
                    for row in rows[-len(METHODS):]:
                        typer.echo(f"{row['megabytes']:7.2f} MB {row['method']:24s} fetch {row['fetch_s']:.4f} s "
                                   f"({row['MB_per_s']:.0f} MB/s), publish {row['publish_s']:.4f} s, "
                                   f"JSON/this {row['json_vs_this']:.1f}")
            finally:
                for actor in (opponent, zero_copy, fetcher):
                    ray.kill(actor)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return rows


def command(
    megabytes: List[float] = typer.Option([1, 10, 100], help="State dict sizes in MB (repeat the flag)."),
    repeats: int = typer.Option(5, help="Fetches per size and method; the median is recorded."),
    num_cpus: int = typer.Option(2, help="CPUs of the local Ray cluster the benchmark starts."),
    notes: str = typer.Option("", help="A note recorded with the rows (e.g. what else ran on the machine)."),
) -> None:
    """Fetching an opponent's weights: Ray object store, checkpoint file, base64 JSON over HTTP."""
    try:
        rows = bench(megabytes, repeats, num_cpus)
    except ValueError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)
    path = results.record("exchange", rows, notes)
    typer.echo(f"recorded {path}")
