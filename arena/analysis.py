"""The seed's elimination curve and lineage prevalence, computed from plain match and individual records."""

from __future__ import annotations

from typing import Iterable, Sequence


def elimination_curve(matches: Iterable[dict]) -> list[dict]:
    """For one generator: as the opposing discriminators it has met accumulate (in the order first
    met), the share of them it still fools (its mean fooled share against each is above one half).

    `matches` are that generator's match records with `discriminator`, `fooled` and `at`."""
    met: dict[str, list[float]] = {}
    curve = []
    for match in sorted(matches, key=lambda m: m["at"]):
        met.setdefault(match["discriminator"], []).append(match["fooled"])
        fooling = sum(sum(v) / len(v) > 0.5 for v in met.values())
        curve.append({"met": len(met), "matches": sum(len(v) for v in met.values()), "fooled_share": fooling / len(met)})
    return curve


def lineage_prevalence(individuals: Sequence[dict]) -> list[dict]:
    """For each founder (a first-generation individual), the share of the live population (each player's
    latest individual) descended from it, after every birth. Descent follows either parent, so shares
    of different founders can add up to more than one.

    `individuals` have `_id`, `player`, `parents` and `created_at`."""
    founders_of: dict[str, frozenset] = {}
    live: dict[str, str] = {}
    founders: list[str] = []
    rows = []
    for individual in sorted(individuals, key=lambda i: i["created_at"]):
        parents = [p for p in individual.get("parents") or [] if p in founders_of]
        if parents:
            founders_of[individual["_id"]] = frozenset().union(*(founders_of[p] for p in parents))
        else:
            founders_of[individual["_id"]] = frozenset([individual["_id"]])
            founders.append(individual["_id"])
        live[individual["player"]] = individual["_id"]
        for founder in founders:
            share = sum(founder in founders_of[i] for i in live.values()) / len(live)
            rows.append({"at": individual["created_at"], "founder": founder, "prevalence": share})
    return rows
