"""What the benchmarks share: the arena settings they take from `--config`/`--set`, a workspace (a
folder and an embedded database) for their arena runs, one arena run with the CPU time its processes
used, a local Ray cluster for those that run actors of their own, and the mean ± std of their tables."""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import shutil
import signal
import tempfile
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import psutil
from rich.console import Console

from experiments.bench import results
from experiments.config import RunConfig, apply_sets, load_config, read_toml
from storage import records
from storage.embedded import EmbeddedMongo

# What a benchmark running the arena sets itself; a --config file or --set may give anything else.
BENCH_KEYS = ("players", "dataset", "budget_seconds", "seed", "run_id", "out", "mongo_uri", "mongo_db", "address",
              "num_cpus", "cpus_per_player", "gpus_per_player", "arena.schedule")


# A Ray worker's command line: `ray::Player.loop`, `ray::Registry`, `ray::IDLE`, …
RAY_WORKER = re.compile(r"ray::(\w+)")


PLAYER = "ray::Player"  # what `process_name` calls a Player actor's process


def process_name(command: str) -> str:
    """What a process is, from its command line: a Ray worker's actor class (`ray::Player`, `ray::Registry`,
    `ray::IDLE`), a Python program's script or module (`dashboard`, `secantusd-py`), else the executable's name
    (`raylet`, `gcs_server`, `mongod`); `(exited)` for a process with no command line (a zombie)."""
    if worker := RAY_WORKER.match(command):
        return f"ray::{worker[1]}"
    words = command.split()
    if not words:
        return "(exited)"
    program, rest = os.path.basename(words[0]), iter(words[1:])
    if not program.startswith("python"):
        return program
    for word in rest:
        if word.startswith("-m"):  # `-m module` or `-mmodule`
            return word[2:] or next(rest, program)
        if word.startswith("-c"):
            return f"{program}-c"
        if word in ("-W", "-X", "--check-hash-based-pycs"):  # options that take a value
            next(rest, None)
        elif not word.startswith("-"):
            return os.path.basename(word).removesuffix(".py")
    return program


def spent_elsewhere(used: dict[str, float], top: int = 5) -> str:
    """The CPU seconds outside the players, the driver's included (`CpuMeter.used_by`): their total, then the `top`
    largest names and the other names' sum, `8.4 s (raylet 3.1 s, …, 4 others 0.9 s)`; `-` where nothing was
    measured."""
    others = sorted(((s, n) for n, s in used.items() if n != PLAYER), key=lambda item: (-item[0], item[1]))
    if not used:
        return "-"
    words = [f"{name} {seconds:.1f} s" for seconds, name in others[:top]]
    if len(others) > top:
        words.append(f"{len(others) - top} others {sum(s for s, _ in others[top:]):.1f} s")
    return f"{sum(s for s, _ in others):.1f} s ({', '.join(words)})" if others else "0.0 s"


def mean_std(values: list, spec: str, scale: float = 1.0, unit: str = "") -> str:
    """`mean ± std` (sample std, 0 for one value) of the values that are not None, scaled; `-` if none."""
    values = [float(v) * scale for v in values if v is not None]
    if not values:
        return "-"
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return f"{np.mean(values):{spec}} ± {std:{spec}}{unit}"


TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100  # the kernel's clock ticks per second
# The fields of `psutil.cpu_times()` in which the machine's cores had work (guest time is counted in user time).
BUSY = ("user", "nice", "system", "irq", "softirq", "steal")


def host_times() -> tuple[float, float] | None:
    """This machine's CPU seconds since boot in which its cores had work, and of those the ones its host took
    (steal: a virtual machine's core had work and the host ran something else), or None where the OS does not count
    steal (Linux does)."""
    times = psutil.cpu_times()
    if not hasattr(times, "steal"):
        return None
    return sum(getattr(times, field) for field in BUSY), times.steal


def stolen_share(before: tuple[float, float] | None, after: tuple[float, float] | None) -> float | None:
    """The share of the time this machine's cores had work that its host took, between two `host_times` readings
    (None where not counted, or where a counter went back). Of the busy time, not of all: an idle core has nothing
    to be robbed of, so one bare loop alone on two cores and four players on both compare alike. A virtual
    machine's speed drifts with it: a share stolen from the runs but not from their bare timings, or the reverse,
    tells that an overhead measured between them is partly the host's."""
    if before is None or after is None:
        return None
    busy, stolen = after[0] - before[0], after[1] - before[1]
    return stolen / busy if busy > 0 and stolen >= 0 else None


def _changes(times: list[float], series: np.ndarray, start: float | None, end: float | None) -> np.ndarray:
    """Each column of `series`, read at `times`, its change between `start` and `end` (by default the first and
    the last reading), interpolated between readings."""
    start = times[0] if start is None else start
    end = times[-1] if end is None else end
    return np.array([np.interp(end, times, column) - np.interp(start, times, column) for column in series.T])


class CpuMeter:
    """CPU seconds used, while it is entered, by the descendants of this process (a local Ray cluster
    and its actors, a database server started here), read every `every` seconds, and split into the
    Player actors' processes (command line `ray::Player…`) and all the others. Its own process (the driver: the
    benchmark, a run it launches, this meter's thread) counts in neither part; `used_by` reports it as `driver`.
    With each reading, the
    resident memory of every Ray worker process, whole and private (`memory`). The last moments of a process that exits
    between two readings are missed."""

    def __init__(self, every: float = 1.0):
        self.every = every
        self.readings: list[tuple[float, dict]] = []  # (epoch seconds, {(pid, start time): CPU seconds})
        self.player_keys: set = set()
        # Each process's latest name (`process_name`): Ray renames a worker once it is placed (`default_worker`,
        # then `ray::IDLE`, then its actor's), so the name it has last is what it was for.
        self.names: dict[tuple[int, int], str] = {}
        self.driver = self._key(psutil.Process())
        # (epoch seconds, the name Ray gives the process: its actor's class or IDLE, pid, resident bytes, private
        # bytes: resident less shared pages, its libraries' and the object-store objects it maps)
        self.memory: list[tuple[float, str, int, int, int]] = []
        self.host: list[tuple[float, tuple[float, float]]] = []  # (epoch seconds, `host_times`) where counted
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    @staticmethod
    def _read() -> dict[tuple[int, int], tuple[float, str, int, int]]:
        """This process's and each descendant's own user and system seconds (not those of children it waited
        for), keyed by pid and start time since boot (a reused pid is another process), its command line, resident
        and private bytes."""
        out = {}
        me = psutil.Process()
        for process in [me, *me.children(recursive=True)]:
            try:
                with process.oneshot():
                    key, cpu = CpuMeter._key(process), process.cpu_times()
            except psutil.Error:  # exited since it was listed
                continue
            try:
                command, memory = " ".join(process.cmdline()), process.memory_info()
                rss, private = memory.rss, memory.rss - getattr(memory, "shared", 0)
            except psutil.Error:  # a zombie has no command line; its time is still counted
                command, rss, private = "", 0, 0
            out[key] = (cpu.user + cpu.system, command, rss, private)
        return out

    @staticmethod
    def _key(process: psutil.Process) -> tuple[int, int]:
        """Pid and start time since boot in whole clock ticks: a reused pid is another process. Since boot, not
        since the epoch: psutil adds the boot time read from the system clock, so a clock that is set (a virtual
        machine's, synchronised) would give every process a new key, and its whole CPU time would be counted
        again."""
        return process.pid, round((process.create_time() - psutil.boot_time()) * TICKS)

    def _take(self) -> None:
        at, reading = time.time(), {}
        if (machine := host_times()) is not None:
            self.host.append((at, machine))
        for key, (cpu, command, rss, private) in self._read().items():
            reading[key] = cpu
            name = "driver" if key == self.driver else process_name(command)
            if name == PLAYER:
                self.player_keys.add(key)
            if name != "(exited)" or key not in self.names:  # a zombie keeps the name it had
                self.names[key] = name
            if worker := RAY_WORKER.match(command):
                self.memory.append((at, worker[1], key[0], rss, private))
        self.readings.append((at, reading))

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self._take()

    def __enter__(self) -> CpuMeter:
        self._take()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._take()

    def used(self, players: bool, start: float | None = None, end: float | None = None) -> float | None:
        """CPU seconds the player processes (or, `players` False, all the others) used between the
        epoch times `start` and `end` (default: the whole time), interpolated between readings; None
        before two readings."""
        per = self._per_process(start, end)
        return None if per is None else sum(s for key, s in per.items()
                                            if key != self.driver and (key in self.player_keys) == players)

    def stolen(self, start: float | None = None, end: float | None = None) -> float | None:
        """The share of the time the machine's cores had work that its host took between `start` and `end`
        (`stolen_share`), interpolated between readings; None where the OS does not count it, or before two
        readings."""
        if len(self.host) < 2:
            return None
        busy, stolen = _changes([at for at, _ in self.host], np.array([m for _, m in self.host]), start, end)
        return stolen_share((0.0, 0.0), (float(busy), float(stolen)))

    def used_by(self, start: float | None = None, end: float | None = None) -> dict[str, float]:
        """CPU seconds each kind of process (`process_name`: the players', the registry's actor, Ray's own
        servers, the database server, this process as `driver`) used between `start` and `end`, the largest
        first: where the CPU that is not the players' went. Empty before two readings."""
        used: dict[str, float] = defaultdict(float)
        for key, seconds in (self._per_process(start, end) or {}).items():
            used[PLAYER if key in self.player_keys else self.names[key]] += seconds
        return dict(sorted(used.items(), key=lambda item: (-item[1], item[0])))

    def _per_process(self, start: float | None, end: float | None) -> dict[tuple[int, int], float] | None:
        """Each process's CPU seconds between `start` and `end`, interpolated between readings (a process
        counts from 0 before it is first read, and keeps its last time once it has exited); None before two
        readings. Each process apart: the sums that `used` and `used_by` make of them interpolate alike."""
        if len(self.readings) < 2:
            return None
        keys = list({key: None for _, reading in self.readings for key in reading})
        first, latest, rows = self.readings[0][1], {}, []
        for _, reading in self.readings:
            latest.update(reading)
            rows.append([latest[key] - first.get(key, 0.0) if key in latest else 0.0 for key in keys])
        changes = _changes([at for at, _ in self.readings], np.array(rows).reshape(len(rows), len(keys)), start, end)
        return {key: float(change) for key, change in zip(keys, changes)}


@dataclass
class Workspace:
    """Where a benchmark's arena runs write: a folder and one embedded database for all of them."""

    path: Path
    mongo_uri: str

    @property
    def db(self):
        return records.connect(self.mongo_uri, "arena")


@contextmanager
def workspace(work: Path | None, keep: bool) -> Iterator[Workspace]:
    """`work`, or a temporary folder removed at the end unless `keep`; an embedded database in it."""
    path = Path(work) if work is not None else Path(tempfile.mkdtemp(prefix="arena-bench-"))
    path.mkdir(parents=True, exist_ok=True)
    server = EmbeddedMongo(path / "db", log_path=path / "secantusd.log")
    # SIGTERM (a scheduler, `timeout`) unwinds as Ctrl-C does: the database, in a session of its own, is stopped.
    handler = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield Workspace(path, server.start())
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, handler)
        if work is None and not keep:
            shutil.rmtree(path, ignore_errors=True)


def measured(name: str, work: Path | None, keep: bool, console: Console,
             measure: Callable[[Workspace], tuple[list[dict], str]]) -> tuple[list[dict], Path]:
    """A benchmark's rows and notes, measured in its workspace and recorded: (rows, the result file)."""
    with workspace(work, keep) as ws:
        rows, notes = measure(ws)
        if keep or work is not None:
            console.print(f"runs, logs and database kept in {ws.path}")
    return rows, results.record(name, rows, notes)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def settings(config: Path | None, sets: list[str] | None) -> dict:
    """Arena settings from a TOML file and `KEY=VALUE` items (`arena.steps=400`, TOML values), refusing
    what the benchmark sets itself."""
    data = apply_sets(read_toml(config) if config is not None else {}, sets)
    for key in BENCH_KEYS:
        *tables, name = key.split(".")
        table = data
        for part in tables:
            table = table.get(part, {}) if isinstance(table, dict) else {}
        if isinstance(table, dict) and name in table:
            raise ValueError(f"{key} is set by the benchmark (see its options); remove it from --config/--set")
    return data


def run_config(base: dict, *, dataset: str, players: int, seconds: float, seed: int, cpus: int,
               schedule: str = "async") -> RunConfig:
    arena = {**base.get("arena", {}), "schedule": schedule}
    return load_config(None, {**base, "arena": arena, "dataset": dataset, "players": players,
                              "budget_seconds": seconds, "seed": seed, "num_cpus": cpus})


def run_arena(ws: Workspace, cfg: RunConfig, name: str) -> dict:
    """One arena run by `experiments.run.launch`, recorded in the workspace's database; its record,
    individuals, the CPU time its processes used (and `cpu`, `CpuMeter.used`, for any span), the share of the
    machine's CPU its host took (`stolen`, where counted) and its Ray workers' `memory` samples (`CpuMeter.memory`).
    Its output goes to `<workspace>/<run_id>.log`."""
    from experiments.run import launch  # Ray is imported only where an arena runs

    run_id = f"{name}-{secrets.token_hex(3)}"
    cfg = load_config(None, {**cfg.to_dict(), "run_id": run_id, "out": str(ws.path / "runs"),
                             "mongo_uri": ws.mongo_uri, "mongo_db": "arena"})
    log = ws.path / f"{run_id}.log"
    handler = signal.getsignal(signal.SIGTERM)  # launch() makes SIGTERM interrupt its run; only its run
    try:
        with open(log, "w") as out, CpuMeter() as meter:
            code = launch(cfg, Console(file=out, width=160))
    finally:
        signal.signal(signal.SIGTERM, handler)
    if code != 0:
        raise RuntimeError(f"arena run {run_id} ended with exit code {code}; its output: {log}")
    db = ws.db
    run = db.runs.find_one({"_id": run_id})
    individuals = list(db.individuals.find(
        {"run_id": run_id}, projection={"player": 1, "generation": 1, "trained_steps": 1, "timeline": 1,
                                        "genome": 1, "steps": 1, "step_cpu_ms": 1, "train_preempted": 1}))
    spans = [span for doc in individuals for span in (doc.get("timeline") or {}).values()]
    # The evolution itself, from the first loop's start to the last one's end: not the players'
    # start-up (imports, data) nor the final evaluation.
    start, end = (min(s for s, _ in spans), max(e for _, e in spans)) if spans else (None, None)
    during = list(db.metrics.find({"run_id": run_id, "kind": "during"}))
    return {"run_id": run_id, "summary": run["summary"], "individuals": individuals, "log": str(log),
            "window": (start, end), "cpu_players": meter.used(True, start, end),
            "cpu_other": meter.used(False, start, end), "cpu_by_process": meter.used_by(start, end),
            "stolen": meter.stolen(start, end),
            "over_time": over_time(during, start, end),
            "memory": meter.memory, "cpu": meter.used}


def train_ms(docs: list[dict], key: str = "step_ms") -> float | None:
    """The train phase's milliseconds per step over these loops (each loop's `step_ms`, or with `key` step_cpu_ms
    its CPU milliseconds per step, weighted by its steps)."""
    known = [(d[key], d["trained_steps"]) for d in docs if d.get(key) and d.get("trained_steps")]
    steps = sum(n for _, n in known)
    return sum(ms * n for ms, n in known) / steps if steps else None


def trained_steps(docs: list[dict]) -> int:
    """The training steps of these individuals (a run's: all its players')."""
    return sum(d.get("trained_steps") or 0 for d in docs)


def training(docs: list[dict]) -> str:
    """What a run's individuals trained, in words: the training steps of all its players and the train phase's
    CPU per step (where the players' time went, beside the products' quality)."""
    cpu = train_ms(docs, "step_cpu_ms")
    return f"{trained_steps(docs):,} training steps" + (f", {cpu:.1f} ms of CPU a step" if cpu is not None else "")


def over_time(during: list[dict], start: float | None, end: float | None, parts: int = 4) -> dict[str, list]:
    """The population's mean quality (the players' own `during` measurements) in each of `parts` equal
    slices of the run's window: whether evolution adds quality as the run goes, or undoes it."""
    if not during or start is None or end is None or end <= start:
        return {}
    keys = ("fid", "tvd") if "fid" in during[0] else ("modes", "high_quality", "kl")
    slices: list[list[dict]] = [[] for _ in range(parts)]
    for m in during:
        at = m["at"].replace(tzinfo=m["at"].tzinfo or dt.timezone.utc).timestamp()  # pymongo gives naive UTC
        slices[min(parts - 1, max(0, int((at - start) / (end - start) * parts)))].append(m)
    return {k: [float(np.mean([m[k] for m in part])) if part else None for part in slices] for k in keys}


@contextmanager
def ray_session(num_cpus: int, object_store_memory: int | None = None):
    """A local Ray cluster of `num_cpus` CPUs for a benchmark; an already started one is used as it is."""
    import ray  # only the benchmarks that start actors of their own need it here

    if ray.is_initialized():
        yield
        return
    ray.init(address="local", num_cpus=num_cpus, object_store_memory=object_store_memory, include_dashboard=False,
             log_to_driver=False, logging_level="ERROR")
    try:
        yield
    finally:
        ray.shutdown()
