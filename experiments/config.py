"""The one typed configuration of a run: built once at the command line, passed down explicitly.

Sources, later ones winning: the defaults below, a TOML file (`--config`), `--set SECTION.KEY=VALUE`
items, command-line flags. Unknown keys and out-of-range values are refused with a message that names
them. The flags and their help come from the fields below and their docstrings (experiments/options.py).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import re
import textwrap
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from agents.turns import BY_THE_DATA, turn_seconds
from arena.config import ArenaConfig
from arena.datasets import DATASETS, IMAGE_DATASETS
from genome.operators import MutationConfig
from storage.records import redact

RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class RunConfig:
    players: int = 4
    """Number of player actors, each owning one generator/discriminator pair at a time."""
    dataset: str = "ring8"
    """Data set every player trains on: ring8, grid25 (2-D mixtures), mnist (28×28) or digits (8×8)."""
    budget_seconds: float = 60.0
    """Wall-clock seconds the players evolve for, counted once all are ready."""
    seed: int = 0
    """Run seed; each player's seed derives from it and the player's index."""
    run_id: str | None = None
    """Name of the run (letters, digits, - and _); generated when not given."""
    out: str = "runs"
    """Folder (or pyarrow.fs URI) holding <run_id>/checkpoints, <run_id>/traces and <run_id>/db."""
    keep_checkpoints: int = 3
    """Checkpoints each player keeps of its latest generations (a restart falls back on the older ones when the
    newest is damaged); older ones are deleted unless `keep_every` keeps them, and their records say so
    (`checkpoint_pruned`). 0 keeps every one (a run recorded before deletion existed resumes so)."""
    keep_every: int = 25
    """Every player's checkpoints of generations 0, `keep_every`, 2·`keep_every`, … are kept for good: the run's
    history, which the report's snapshots over time and sampling a past individual read."""
    mongo_uri: str | None = field(default=None, metadata={"envvar": "ARENA_MONGO_URI"})
    """MongoDB server to record into; none starts an embedded one under <out>/<run_id>/db."""
    mongo_db: str = "arena"
    """Database name within the MongoDB server."""
    address: str | None = None
    """Ray cluster to attach to; none attaches to a running one or starts one; "local" always starts one."""
    num_cpus: int | None = None
    """CPUs of a new local Ray cluster; implies address "local" (for tests and pinned benchmarks)."""
    cpus_per_player: float | None = None
    """Ray CPUs reserved by each player (fractions allowed); none shares the cluster's CPUs evenly, at most 1 each."""
    gpus_per_player: float = 0.0
    """Ray GPUs reserved by each player (fractions share one GPU: 0.25 puts four players on it); 0: CPU only."""
    dashboard: bool = True
    """Start Ray's dashboard with a cluster this command starts: it shows the players as actors, and `ray list
    actors` and experiments.chaos read the run through it; false saves its start-up where nobody looks (the
    test suite). A cluster attached to keeps its own."""
    turn_ms: float = -1.0
    """Players on the CPU with less than a core each take turns of this many milliseconds on their node's cores (at most
    one per core at a time) rather than being time-sliced by the OS every few milliseconds, each switch costing the
    next its caches; 0: the OS's time-slicing (agents/turns.py); -1: by the data, 500 ms on images (measured on
    mnist; digits, 8×8, not) and 50 on vector data. An mnist step costs about 55 ms, so 50-ms turns handed the core
    over at every step: at 300 s, 4 players on 2 cores, 500-ms turns trained more steps on mnist (two seeds; 2000-ms
    ones a few more), and on grid25 and ring8 too (BENCHMARKS.md rows 2026-12-06T22:26:31 to 23:50:11, their steps
    in the notes of their --rejudge rows). On grid25 at 600 s, 3 seeds, 500-ms turns made 1.8 % more individuals and
    no clear gain: champion 94.6 ± 0.9 % high quality, KL 0.016 against 97.5 ± 1.5 %, 0.007 with 50-ms turns;
    mixture 96.8 %, 0.002 against 97.7 %, 0.010 (rows 2026-12-07T00:21:23 and 2026-12-06T09:24:19), so vector data
    keep the 50 ms their 600-s rows were measured with."""
    arena: ArenaConfig = field(default_factory=ArenaConfig)
    """How players train, fight and choose parents."""
    mutation: MutationConfig = field(default_factory=MutationConfig)
    """Probabilities and limits of variation."""

    def __post_init__(self) -> None:
        if self.players < 1:
            raise ValueError(f"players must be at least 1; got {self.players!r}")
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; choose from {', '.join(DATASETS)}")
        if self.arena.architecture == "conv" and self.dataset not in IMAGE_DATASETS:
            raise ValueError(f"arena.architecture 'conv' needs an image dataset ({', '.join(IMAGE_DATASETS)}); "
                             f"got {self.dataset!r}")
        if not self.budget_seconds > 0:
            raise ValueError(f"budget_seconds must be positive; got {self.budget_seconds!r}")
        if self.seed < 0:
            raise ValueError(f"seed must be non-negative; got {self.seed!r}")
        if self.run_id is not None and not RUN_ID.match(self.run_id):
            raise ValueError(f"run_id must be 1-64 letters, digits, - or _, starting with a letter or digit; "
                             f"got {self.run_id!r}")
        if not self.out:
            raise ValueError("out must name a folder")
        if self.keep_checkpoints < 0 or self.keep_checkpoints == 1:
            raise ValueError(f"keep_checkpoints must be 0 (keep every one) or at least 2 (the latest and a fallback "
                             f"for a restart); got {self.keep_checkpoints!r}")
        if self.keep_every < 1:
            raise ValueError(f"keep_every must be at least 1; got {self.keep_every!r}")
        if self.mongo_uri is not None and not self.mongo_uri.startswith(("mongodb://", "mongodb+srv://")):
            raise ValueError(f"mongo_uri must start with mongodb:// or mongodb+srv://; got {redact(self.mongo_uri)!r}")
        if not self.mongo_db or re.search(r"[/\\. \"$]", self.mongo_db):
            raise ValueError(f"mongo_db is not a valid database name: {self.mongo_db!r}")
        if self.num_cpus is not None and self.num_cpus < 1:
            raise ValueError(f"num_cpus must be at least 1; got {self.num_cpus!r}")
        if self.num_cpus is not None and self.address not in (None, "local"):
            raise ValueError(f"num_cpus sizes a new local cluster and cannot be combined with address {self.address!r}")
        if self.cpus_per_player is not None and not 0 < self.cpus_per_player <= 1024:
            raise ValueError(f"cpus_per_player must be positive; got {self.cpus_per_player!r}")

        if not 0 <= self.gpus_per_player <= 64:
            raise ValueError(f"gpus_per_player must be between 0 and 64; got {self.gpus_per_player!r}")
        if self.turn_ms != BY_THE_DATA and not 0 <= self.turn_ms <= 10_000:
            raise ValueError(f"turn_ms must be -1 (by the data) or between 0 and 10000; got {self.turn_ms!r}")

    def for_data(self, data_shape: tuple[int, ...]) -> RunConfig:
        """The settings left to the data made what they are on data of this shape: the arena's
        (`ArenaConfig.for_data`) and the players' turns (`turn_ms`)."""
        return dataclasses.replace(self, arena=self.arena.for_data(data_shape),
                                   turn_ms=1000 * turn_seconds(self.turn_ms, data_shape))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _check_type(name: str, value, kind) -> object:
    """Value of a TOML or flag entry, checked against the field's annotation."""
    allowed = typing.get_args(kind) if typing.get_origin(kind) in (typing.Union, types.UnionType) else (kind,)
    if value is None and type(None) in allowed:
        return None
    for option in allowed:
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option in (str, bool) and isinstance(value, option):
            return value
    names = " or ".join(getattr(a, "__name__", str(a)) for a in allowed if a is not type(None))
    raise ValueError(f"{name} must be {names}; got {value!r}")


def _build(cls: type, data: dict, prefix: str = ""):
    if not isinstance(data, dict):
        raise ValueError(f"{prefix.rstrip('.') or 'configuration'} must be a table; got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown configuration key {prefix + unknown[0]!r}")
    values = {}
    for name, value in data.items():
        kind = hints[name]
        if dataclasses.is_dataclass(kind):
            values[name] = _build(kind, value, f"{prefix}{name}.")
        else:
            values[name] = _check_type(prefix + name, value, kind)
    try:
        return cls(**values)
    except ValueError as err:
        message = str(err)
        if prefix and not message.startswith(prefix):
            message = prefix + message
        raise ValueError(message) from None


# What describes where a run happens rather than what it evolves: a resumed run takes these from its
# command line, everything else from its record.
SITE_KEYS = ("out", "mongo_uri", "mongo_db", "address", "num_cpus", "cpus_per_player", "gpus_per_player",
             "dashboard")


def check_resume_flags(overrides: dict) -> None:
    """Of the evolution settings, a resumed run takes only `budget_seconds` (the new total) again."""
    named = {f"{key}.{inner}" if isinstance(value, dict) else key
             for key, value in overrides.items() for inner in (value if isinstance(value, dict) else [None])}
    changed = sorted(named - set(SITE_KEYS) - {"budget_seconds", "run_id"})
    if changed:
        raise ValueError(f"--resume continues the run as it was configured; {changed[0]} cannot be changed")


def resumed_config(recorded: dict, site: RunConfig, overrides: dict) -> RunConfig:
    """The configuration a run was recorded with, on the site of `site`."""
    check_resume_flags(overrides)
    data = {k: v for k, v in recorded.items() if k in RunConfig.__dataclass_fields__ and k not in SITE_KEYS}
    data.setdefault("keep_checkpoints", 0)  # recorded before players deleted any: all stay, as its records expect
    data.update({k: getattr(site, k) for k in SITE_KEYS})
    if "budget_seconds" in overrides:
        data["budget_seconds"] = overrides["budget_seconds"]
    return _build(RunConfig, data)


def read_toml(path: Path | str) -> dict:
    try:
        return tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ValueError(f"configuration file not found: {str(path)!r}") from None
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"configuration file {str(path)!r} is not valid TOML: {err}") from None


def apply_sets(data: dict, sets: list[str] | None) -> dict:
    """`data` with each `KEY=VALUE` item of `sets` set in it: KEY a TOML key, dotted into its table
    (`arena.steps`), VALUE a TOML value, or a bare word taken as a string. Keys are checked later, by
    the configuration they build."""
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for item in sets or []:
        key, equals, value = item.partition("=")
        if not equals or not key.strip():
            raise ValueError(f"--set takes SECTION.KEY=VALUE (e.g. arena.steps=400); got {item!r}")
        try:
            parsed = tomllib.loads(f"v = {value.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            parsed = value.strip()
        *tables, name = key.strip().split(".")
        table = data
        for part in tables:
            table = table.setdefault(part, {})
            if not isinstance(table, dict):
                raise ValueError(f"--set {key.strip()}: {part!r} is not a table")
        table[name] = parsed
    return data


def load_config(path: Path | str | None = None, overrides: dict | None = None,
                sets: list[str] | None = None) -> RunConfig:
    """Defaults, then the TOML file at `path`, then `sets` (`--set` items), then `overrides` (flags,
    already without unset ones)."""
    data = apply_sets(read_toml(path) if path is not None else {}, sets)
    data.update(overrides or {})
    return _build(RunConfig, data)


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of a dataclass: the source keeps it, the class does not."""
    body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0].body
    return {node.target.id: " ".join(after.value.value.split()) for node, after in zip(body, body[1:])
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)}
