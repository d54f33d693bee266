"""`python -m experiments.bench NAME …`: one subcommand per benchmark module."""

from __future__ import annotations

import importlib

from experiments import cli

app = cli.new_app(no_args_is_help=True,
                  help="Benchmarks of the arena; each writes benchmarks/results/*.json and BENCHMARKS.md.")

# Each module defines `command` (a typer command function); its prose is its `## NAME` section of sections.md.
BENCHMARKS = ("quality", "throughput", "soak", "registry", "exchange", "gpu")

for name in BENCHMARKS:
    app.command(name)(importlib.import_module(f"experiments.bench.{name}").command)


if __name__ == "__main__":
    cli.main(app)
