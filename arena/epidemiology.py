"""The arena as an epidemic (the user's notes: "co-infection? vaccination/re-infection?"): generators are
the pathogens, discriminators the hosts, and a founder's lineage is a strain. Pure functions of plain
individual and match records (the `individuals` and `matches` collections), no Ray, no store.

- A match infects its discriminator when its `fooled` share is above one half: the threshold at which
  `arena.ratings` scores the match a win for the generator; otherwise the discriminator caught it.
- A generator carries the strains of the founders its generator side descends from (`g_parents`).
"""

from __future__ import annotations

from typing import Sequence

from arena.analysis import ancestry, bits, lineage_prevalence

INFECTED = 0.5  # a fooled share above this is an infection (a win for the generator in arena/ratings.py)


def founders(individuals: Sequence[dict]) -> list[str]:
    """First-generation individuals: those with no recorded parent, in order of birth."""
    return [i["_id"] for i in sorted(individuals, key=lambda i: i["created_at"]) if not i.get("parents")]


def strains(individuals: Sequence[dict], side: str = "generator") -> dict[str, frozenset[str]]:
    """For each individual, the founders its `side` descends from (`any`: through every parent)."""
    order, masks = ancestry(individuals, side)
    roots = set(founders(individuals))
    return {_id: frozenset(order[k] for k in bits(mask) if order[k] in roots) for _id, mask in masks.items()}


def strain_prevalence(individuals: Sequence[dict], side: str = "generator") -> list[dict]:
    """Each founder's share of the live population over time on `side` (rows as `lineage_prevalence`)."""
    return lineage_prevalence(individuals, side, founders(individuals))


def coinfection(individuals: Sequence[dict]) -> list[dict]:
    """After every birth, the share of the live population (each player's latest individual) that is
    co-infected, carrying material of two founders or more through any parent, and the mean number of
    founders carried. Rows `{at, coinfected, mean_strains}`."""
    carried = strains(individuals, "any")
    live: dict[str, str] = {}
    rows = []
    for individual in sorted(individuals, key=lambda i: i["created_at"]):
        live[individual["player"]] = individual["_id"]
        counts = [len(carried[i]) for i in live.values()]
        rows.append({"at": individual["created_at"], "coinfected": sum(c >= 2 for c in counts) / len(counts),
                     "mean_strains": sum(counts) / len(counts)})
    return rows


def exposures(individuals: Sequence[dict], matches: Sequence[dict]) -> list[dict]:
    """Each discriminator's history with each strain it met, in time order: `infected_at`, its first
    infection by the strain's generators; `immune_at`, the first time it caught them after that (it was
    "vaccinated" by the infection); `reinfected_at`, the first infection after it became immune; with
    counts of `matches`, `infections` and `reinfections` (infections after immunity). A match counts for
    every strain its generator carries; matches of generators with no recorded strain are left out."""
    carried = strains(individuals, "generator")
    history: dict[tuple[str, str], dict] = {}
    for match in sorted(matches, key=lambda m: m["at"]):
        infected = match["fooled"] > INFECTED
        for strain in sorted(carried.get(match["generator"], ())):
            h = history.setdefault((match["discriminator"], strain), {
                "discriminator": match["discriminator"], "strain": strain, "matches": 0, "infections": 0,
                "reinfections": 0, "infected_at": None, "immune_at": None, "reinfected_at": None})
            h["matches"] += 1
            h["infections"] += infected
            if infected and h["infected_at"] is None:
                h["infected_at"] = match["at"]
            elif not infected and h["infected_at"] is not None and h["immune_at"] is None:
                h["immune_at"] = match["at"]
            elif infected and h["immune_at"] is not None:
                h["reinfections"] += 1
                h["reinfected_at"] = h["reinfected_at"] or match["at"]
    return list(history.values())


def epidemic_summary(histories: Sequence[dict]) -> dict:
    """Counts over (discriminator, strain) pairs: `exposed` (met), `infected`, `immune` (caught the strain
    after an infection by it), `reinfected` (infected again after that), and the shares `immune_share`
    (of the infected) and `reinfected_share` (of the immune); None where there is nothing to divide."""
    exposed = len(histories)
    infected = sum(h["infected_at"] is not None for h in histories)
    immune = sum(h["immune_at"] is not None for h in histories)
    reinfected = sum(h["reinfected_at"] is not None for h in histories)
    return {"exposed": exposed, "infected": infected, "immune": immune, "reinfected": reinfected,
            "immune_share": immune / infected if infected else None,
            "reinfected_share": reinfected / immune if immune else None}


def epidemic_curve(histories: Sequence[dict]) -> list[dict]:
    """Cumulative counts of infected, immune and re-infected pairs over time: a row at each event."""
    events = sorted((h[key], name) for h in histories
                    for key, name in (("infected_at", "infected"), ("immune_at", "immune"),
                                      ("reinfected_at", "reinfected")) if h[key] is not None)
    totals = {"infected": 0, "immune": 0, "reinfected": 0}
    rows = []
    for at, name in events:
        totals[name] += 1
        rows.append({"at": at, **totals})
    return rows
