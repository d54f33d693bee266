"""The seed's elimination curve and lineage prevalence, computed from plain match and individual records.

A lineage is an individual and everyone descended from it, followed on one side: a child's generator
comes from its `g_parents`, its discriminator from its `d_parents` (records without them fall back to
`parents`), so a generator lineage and a discriminator lineage of the same root can spread differently."""

from __future__ import annotations

from typing import Iterable, Sequence

SIDE_PARENTS = {"generator": "g_parents", "discriminator": "d_parents", "any": "parents"}
OPPONENT = {"generator": "discriminator", "discriminator": "generator"}


def side_parents(individual: dict, side: str) -> list[str]:
    """Where `side` of an individual came from: its `g_parents` or `d_parents` when recorded, else
    `parents` (older records); `any` is every parent."""
    if side not in SIDE_PARENTS:
        raise ValueError(f"side must be one of {', '.join(SIDE_PARENTS)}; got {side!r}")
    recorded = individual.get(SIDE_PARENTS[side])
    return list(individual.get("parents") or [] if recorded is None else recorded)


def ancestry(individuals: Sequence[dict], side: str) -> tuple[list[str], dict[str, int]]:
    """Individuals in order of birth, and each one's lineages on `side` as a bit mask over that order:
    bit k is set when it descends from (or is) the k-th born. Bits keep a long run's ancestries small."""
    order = [i["_id"] for i in sorted(individuals, key=lambda i: i["created_at"])]
    by_id = {i["_id"]: i for i in individuals}
    masks: dict[str, int] = {}
    for k, _id in enumerate(order):
        mask = 1 << k
        for parent in side_parents(by_id[_id], side):
            mask |= masks.get(parent, 0)  # a parent not recorded (or born later) adds nothing
        masks[_id] = mask
    return order, masks


def bits(mask: int) -> Iterable[int]:
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


def members(order: list[str], masks: dict[str, int], root: str) -> set[str]:
    """Everyone in the lineage of `root`."""
    k = order.index(root)
    return {_id for _id, mask in masks.items() if mask >> k & 1}


def elimination_curve(matches: Iterable[dict], side: str = "generator") -> list[dict]:
    """For one generator (or the generators of one lineage): as the opposing discriminators met
    accumulate (in the order first met), the share of them still fooled (mean fooled share above one
    half). With `side="discriminator"`, for discriminators: the share of the generators met still caught
    (mean fooled share at most one half), under the key `caught_share`.

    `matches` are match records with `generator`, `discriminator`, `fooled` and `at`."""
    if side not in OPPONENT:
        raise ValueError(f"side must be generator or discriminator; got {side!r}")
    met: dict[str, list] = {}  # opponent -> [sum of fooled shares, matches]
    fooling, total, curve = 0, 0, []
    for match in sorted(matches, key=lambda m: m["at"]):
        seen = met.setdefault(match[OPPONENT[side]], [0.0, 0])
        before = seen[1] and seen[0] / seen[1] > 0.5
        seen[0] += match["fooled"]
        seen[1] += 1
        fooling += (seen[0] / seen[1] > 0.5) - before
        total += 1
        share = fooling / len(met) if side == "generator" else 1 - fooling / len(met)
        curve.append({"met": len(met), "matches": total,
                      "fooled_share" if side == "generator" else "caught_share": share})
    return curve


def lineage_elimination(individuals: Sequence[dict], matches: Iterable[dict], side: str = "generator",
                        roots: Iterable[str] | None = None) -> dict[str, list[dict]]:
    """The elimination curve of every lineage on `side` (or of `roots`): `elimination_curve` over the
    matches of all its members' generators (or discriminators)."""
    order, masks = ancestry(individuals, side)
    wanted = None if roots is None else set(roots)
    by_lineage: dict[str, list[dict]] = {}
    for match in matches:
        for k in bits(masks.get(match[side], 0)):
            if wanted is None or order[k] in wanted:
                by_lineage.setdefault(order[k], []).append(match)
    return {root: elimination_curve(ms, side) for root, ms in by_lineage.items()}


def lineage_prevalence(individuals: Sequence[dict], side: str = "generator",
                       roots: Iterable[str] | None = None) -> list[dict]:
    """Every lineage's share of the live population (each player's latest individual) on `side`, as
    change points: a row `{at, lineage, prevalence}` whenever a birth changes a lineage's share, so the
    share at any time is its latest row (0 before its first). `roots` limits the lineages followed
    (None: every individual's). Descent follows every parent of that side, so shares of different
    lineages can add up to more than one.

    `individuals` have `_id`, `player`, `created_at`, `parents` and, when recorded, `g_parents`/`d_parents`."""
    order, masks = ancestry(individuals, side)
    wanted = None if roots is None else sum(1 << k for k, _id in enumerate(order) if _id in set(roots))
    players = {i["_id"]: i["player"] for i in individuals}
    born = {i["_id"]: i["created_at"] for i in individuals}
    live: dict[str, int] = {}  # player -> mask of its latest individual
    counts = [0] * len(order)
    rows = []
    for _id in order:
        old, new = live.get(players[_id], 0), masks[_id]
        grew = players[_id] not in live
        live[players[_id]] = new
        for k in bits(old & ~new):
            counts[k] -= 1
        for k in bits(new & ~old):
            counts[k] += 1
        # a new player changes every share; otherwise only the lineages that came or went
        changed = range(len(order)) if grew else bits(old ^ new)
        for k in changed:
            if (wanted is None or wanted >> k & 1) and (counts[k] or not grew):
                rows.append({"at": born[_id], "lineage": order[k], "prevalence": counts[k] / len(live)})
    return rows
