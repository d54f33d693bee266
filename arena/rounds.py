"""Rounds of matches as records: who met whom and how often each discriminator was fooled."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def match_records(fooled: np.ndarray, generators: Sequence[str], discriminators: Sequence[str],
                  real_accepted: Sequence[float], run_id: str, by: str, kind: str, samples: int) -> list[dict]:
    """One record per (generator, discriminator) cell of a judged bout, leaving out an individual
    against itself: fitness only counts opposing networks. `_id` is deterministic, so a record
    written twice stays one."""
    records = []
    for i, g in enumerate(generators):
        for j, d in enumerate(discriminators):
            if g == d:
                continue
            records.append({"_id": f"{g}|{d}|{by}|{kind}", "run_id": run_id, "generator": g, "discriminator": d,
                            "fooled": float(fooled[i, j]), "real_accepted": float(real_accepted[j]),
                            "samples": samples, "by": by, "kind": kind})
    return records


def round_pool(candidates: Sequence[dict], me: str, size: int, rng: np.random.Generator) -> list[dict]:
    """The individuals of an all-versus-all round: the player's own and up to size − 1 others, drawn uniformly."""
    others = [c for c in candidates if c["id"] != me]
    if len(others) > size - 1:
        others = [others[int(i)] for i in rng.choice(len(others), size=size - 1, replace=False)]
    return others
