"""A probe of the machine's speed beside a long benchmark: every `every` seconds, a fixed GAN's training steps
(`baselines.single_genome`, 3×256 MLPs, batch 256, on grid25) timed in a single-thread process of its own.

A long run's loop rate falls when its steps cost more, and also when the machine runs slower: this one's speed
drifts by a fifth from hour to hour (BENCHMARKS.md, throughput row 2026-12-04T17:19:31), and in the one-hour soak
of row 2026-12-04T19:23:47 the four players' CPU milliseconds per step rose by about a third from one five-minute
span to the next, all four at once, each with a genome of its own that did not change. The probe's CPU time per
step moves with the machine only.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

EVERY = 30.0  # seconds between probes: a probe takes about 0.3 s of one core, 1 % of it


class MachineProbe:
    """`with MachineProbe() as probe:` probes while entered; then `probe.samples` holds (epoch seconds, wall ms,
    CPU ms per step), one per probe."""

    def __init__(self, every: float = EVERY):
        self.every = every
        self.samples: list[tuple[float, float, float]] = []

    def __enter__(self) -> MachineProbe:
        from experiments.bench.baselines import single_thread_env
        from experiments.bench.results import ROOT

        self._out = tempfile.NamedTemporaryFile("r", prefix="probe-", suffix=".txt")
        self._process = subprocess.Popen([sys.executable, "-m", "experiments.bench.probe", self._out.name,
                                          str(self.every)], cwd=ROOT, env=single_thread_env(),
                                         stdout=subprocess.DEVNULL)
        return self

    def read(self) -> list[tuple[float, float, float]]:
        """The probes so far (a line being written is left for the next read)."""
        return [tuple(map(float, line.split())) for line in Path(self._out.name).read_text().splitlines(keepends=True)
                if line.endswith("\n")]

    def __exit__(self, *exc) -> None:
        self._process.terminate()
        self._process.wait()
        self.samples = self.read()
        self._out.close()


def probe(out: str, every: float) -> None:
    """Until terminated: a probe, one line appended to `out`, a pause of `every` seconds."""
    import torch

    from arena.datasets import load_dataset
    from experiments.bench.baselines import bare_step_seconds, single_genome
    from genome import Genome

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)  # as a player does
    data = load_dataset("grid25")
    genome = Genome.from_dict({**single_genome((2,)).to_dict(), "steps": 50})
    while True:
        wall, cpu = bare_step_seconds(genome, data, min_seconds=0.0, warmup=2)
        with open(out, "a") as handle:
            handle.write(f"{time.time():.3f} {wall * 1000:.4f} {cpu * 1000:.4f}\n")
        time.sleep(every)


if __name__ == "__main__":
    probe(sys.argv[1], float(sys.argv[2]))
