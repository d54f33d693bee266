"""Matches: duels and all-versus-all rounds judged, and their records (who met whom, how often each
discriminator was fooled)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from arena.bout import judge, judged_real
from arena.selection import ranked

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
    return ranked(shuffled, key)[: size - 1]


@dataclass
class Duels:
    """One player's duels: the match records, the seed's hacking measure of its generator, and the fakes
    of opposing generators that fooled its discriminator."""

    matches: list[dict]
    hacking: dict
    fooling: torch.Tensor


def duels(pair, individual: str, ids: Sequence[str], opponents: Sequence, data, n: int, rng: torch.Generator,
          run_id: str) -> Duels:
    """The own generator against each opponent's discriminator and theirs against the own one, n samples
    each; `hacking` is how often the generator fools its own discriminator (`own`) against opposing ones
    (`opposing`), and their `gap`: the seed's "GANs overfit by hacking their discriminator", measured. The own
    discriminator and the opposing ones judge the same fakes: the gap is theirs, not two draws', and the own
    generator samples once (four generator passes with three opponents, five before)."""
    real = data.sample(n, rng)
    theirs = [o.discriminator for o in opponents]
    fooled = judge([pair.generator], [*theirs, pair.discriminator], n, rng).fooled
    attack, own = fooled[:, :-1], float(fooled[0, -1])
    opposing = float(attack[0].mean())
    matches = match_records(attack, [individual], ids, [judged_real(d, real) for d in theirs], run_id,
                            individual, "duel", n)
    defence = judge([o.generator for o in opponents], [pair.discriminator], n, rng)
    matches += match_records(defence.fooled, ids, [individual], [judged_real(pair.discriminator, real)], run_id,
                             individual, "duel", n)
    return Duels(matches, {"own": own, "opposing": opposing, "gap": own - opposing}, defence.fooling[0].cpu())


def all_versus_all(pairs: Sequence, ids: Sequence[str], data, n: int, rng: torch.Generator, run_id: str,
                   kind: str, own_only: bool = False) -> list[dict]:
    """Every generator of `pairs` against every discriminator, n samples each, as match records by `ids[0]`;
    with `own_only`, only the cells of `ids[0]`'s generator or discriminator (the round's second judgement:
    only the own pair trained in between, so the others' cells would judge the same networks twice)."""
    real = data.sample(n, rng)
    judged = judge([p.generator for p in pairs], [p.discriminator for p in pairs], n, rng)
    records = match_records(judged.fooled, ids, ids, [judged_real(p.discriminator, real) for p in pairs], run_id,
                            ids[0], kind, n)
    return [r for r in records if ids[0] in (r["generator"], r["discriminator"])] if own_only else records
