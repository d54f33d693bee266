"""Where benchmark results go: one JSON file per invocation under benchmarks/results/, and
BENCHMARKS.md rebuilt from all of them, so the tables always match the recorded numbers."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shlex
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
REPORT = ROOT / "BENCHMARKS.md"
# What each benchmark measures and its targets, printed above its table: prose, kept out of the code.
PROSE = Path(__file__).with_name("sections.md")


def sections(path: Path = PROSE) -> dict[str, str]:
    """Each benchmark's heading text, in the report's order: the `## NAME` sections of `path` (what
    stands before the first heading is about the file, not printed)."""
    found: dict[str, list[str]] = {}
    lines: list[str] | None = None
    for line in path.read_text().splitlines():
        if line.startswith("## "):
            lines = found.setdefault(line[3:].strip(), [])
        elif lines is not None:
            lines.append(line)
    return {name: "\n".join(text).strip() for name, text in found.items()}


def machine() -> str:
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        memory = float("nan")
    gpu = f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return f"{os.cpu_count()} cores, {memory:.0f} GiB{gpu}, torch {torch.__version__}, {platform.system()}"


def command_line() -> str:
    return "python -m experiments.bench " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def record(benchmark: str, rows: list[dict], notes: str = "") -> Path:
    """Write one invocation's rows and rebuild BENCHMARKS.md; returns the JSON file."""
    known = sections()
    if benchmark not in known:
        raise ValueError(f"unknown benchmark {benchmark!r}; declared in {PROSE.name}: {', '.join(known)}")
    at = dt.datetime.now(dt.timezone.utc)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{benchmark}-{at:%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps({"benchmark": benchmark, "command": command_line(), "machine": machine(),
                                "date": at.isoformat(timespec="seconds"), "notes": notes, "rows": rows},
                               indent=1, default=float) + "\n")
    write_report()
    return path


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


def write_report() -> None:
    runs: dict[str, list[dict]] = {}
    for path in sorted(RESULTS.glob("*.json")):
        result = json.loads(path.read_text())
        runs.setdefault(result["benchmark"], []).append(result)
    lines = ["# Benchmarks", "",
             "Written by `python -m experiments.bench …` from the JSON files in `benchmarks/results/`; "
             "every row names the command, machine and date that produced it. Do not edit by hand.", ""]
    for name, text in sections().items():
        lines += [f"## {name}", "", text, ""]
        results = runs.get(name, [])
        if not results:
            lines += ["No result recorded yet.", ""]
            continue
        for result in results:
            rows = result["rows"]
            columns = list(dict.fromkeys(key for row in rows for key in row))
            lines += [f"`{result['command']}` — {result['machine']}, {result['date']}", ""]
            if result.get("notes"):
                lines += [result["notes"], ""]
            lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
            lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows]
            lines.append("")
    REPORT.write_text("\n".join(lines))
