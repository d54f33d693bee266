"""Rounds of matches as records: who met whom and how often each discriminator was fooled."""

from __future__ import annotations

from typing import Sequence

import numpy as np

# Match kinds: a duel, a round's first judgement, and its second one (after the round's training), the
# judgement the seed selects discriminators on.
FIRST_ROUND, SECOND_ROUND = "round", "round2"


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


def round_pool(candidates: Sequence[dict], me: str, size: int, rng: np.random.Generator,
               key: str = "fitness") -> list[dict]:
    """The others of an all-versus-all round with the player's own individual `me`: the seed's "filter by
    fitness", the size − 1 first by `key` (ties and the unrated, who come last, in random order)."""
    others = [c for c in candidates if c["id"] != me]
    shuffled = [others[int(i)] for i in rng.permutation(len(others))]
    return sorted(shuffled, key=lambda c: -c[key] if c.get(key) is not None else np.inf)[: size - 1]
