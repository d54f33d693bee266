"""Lineages of both sides and the arena's epidemiology (issue 15, points 5 and 6), on hand-made records."""

from __future__ import annotations

import datetime as dt

import pytest

from arena.analysis import elimination_curve, lineage_elimination, lineage_prevalence, side_parents
from arena.epidemiology import coinfection, epidemic_curve, epidemic_summary, exposures, strain_prevalence, strains


def at(seconds):
    return dt.datetime(2026, 1, 1) + dt.timedelta(seconds=seconds)


def share_at(rows: list[dict], lineage: str, t) -> float:
    """A lineage's prevalence at time t from change-point rows: its latest row at or before t."""
    mine = [r for r in rows if r["lineage"] == lineage and r["at"] <= t]
    return mine[-1]["prevalence"] if mine else 0.0


# Two founders; a1's generator comes from b0 and its discriminator from a0; b1 crosses both generators.
INDIVIDUALS = [
    {"_id": "a0", "player": "p0", "parents": [], "created_at": at(0)},
    {"_id": "b0", "player": "p1", "parents": [], "created_at": at(1)},
    {"_id": "a1", "player": "p0", "parents": ["a0", "b0"], "g_parents": ["b0"], "d_parents": ["a0"],
     "created_at": at(2)},
    {"_id": "b1", "player": "p1", "parents": ["a0", "b0"], "g_parents": ["b0", "a0"], "d_parents": ["b0"],
     "created_at": at(3)},
    {"_id": "a2", "player": "p0", "parents": ["a1"], "created_at": at(4)},  # an older record: parents only
]


def test_each_side_follows_its_own_parents_and_falls_back_to_parents():
    assert side_parents(INDIVIDUALS[2], "generator") == ["b0"]
    assert side_parents(INDIVIDUALS[2], "discriminator") == ["a0"]
    assert side_parents(INDIVIDUALS[4], "discriminator") == ["a1"]
    with pytest.raises(ValueError, match="'both'"):
        side_parents(INDIVIDUALS[0], "both")


def test_prevalence_follows_every_lineage_on_each_side():
    g = lineage_prevalence(INDIVIDUALS, "generator")
    d = lineage_prevalence(INDIVIDUALS, "discriminator")
    assert share_at(g, "a0", at(2)) == 0.0 and share_at(d, "a0", at(2)) == 0.5  # a1: generator b0's, D a0's
    assert share_at(g, "b0", at(3)) == 1.0 and share_at(g, "a0", at(3)) == 0.5  # b1 crossed both generators
    assert share_at(d, "a0", at(3)) == 0.5 and share_at(d, "b0", at(3)) == 0.5
    assert share_at(g, "a1", at(4)) == 0.5 and share_at(g, "a1", at(3)) == 0.5  # not only founders
    assert share_at(g, "a2", at(4)) == 0.5 and share_at(g, "b1", at(4)) == 0.5
    # change points only: a2 replacing a1 leaves a1's and b0's generator shares as they were
    assert {r["lineage"] for r in g if r["at"] == at(4)} == {"a2"}
    assert {r["lineage"] for r in lineage_prevalence(INDIVIDUALS, "generator", ["a0", "b0"])} == {"a0", "b0"}


def test_the_elimination_curve_of_a_discriminator_counts_generators_still_caught():
    matches = [{"generator": "g1", "discriminator": "d", "fooled": 0.9, "at": at(1)},
               {"generator": "g2", "discriminator": "d", "fooled": 0.2, "at": at(2)},
               {"generator": "g2", "discriminator": "d", "fooled": 0.5, "at": at(3)}]
    curve = elimination_curve(matches, "discriminator")
    assert [c["caught_share"] for c in curve] == [0.0, 0.5, 0.5] and curve[-1]["met"] == 2
    assert [c["fooled_share"] for c in elimination_curve(matches)] == [1.0, 1.0, 1.0]  # one generator: d


def test_the_elimination_curve_of_a_lineage_pools_its_members_matches_on_its_side():
    matches = [match("a1", "x", 0.9, 1), match("b1", "x", 0.1, 2), match("a2", "y", 0.8, 3),
               match("a0", "a1", 0.9, 4)]
    g = lineage_elimination(INDIVIDUALS, matches, "generator")
    assert [c["fooled_share"] for c in g["b0"]] == [1.0, 0.0, 0.5]  # x: mean 0.5 not above; then y fooled
    assert g["a0"] == [{"met": 1, "matches": 1, "fooled_share": 0.0},  # b1 caught at x
                       {"met": 2, "matches": 2, "fooled_share": 0.5}]  # a0 itself fooled a1
    d = lineage_elimination(INDIVIDUALS, matches, "discriminator", roots=["a0"])
    assert set(d) == {"a0"} and [c["caught_share"] for c in d["a0"]] == [0.0]  # a1's D is a0's


def test_strains_and_coinfection_count_founders_carried():
    assert strains(INDIVIDUALS, "generator") == {"a0": {"a0"}, "b0": {"b0"}, "a1": {"b0"}, "b1": {"a0", "b0"},
                                                 "a2": {"b0"}}
    assert strains(INDIVIDUALS, "any")["a1"] == {"a0", "b0"}
    rows = coinfection(INDIVIDUALS)
    assert [r["coinfected"] for r in rows] == [0.0, 0.0, 0.5, 1.0, 1.0]
    assert rows[2]["mean_strains"] == 1.5
    prevalence = strain_prevalence(INDIVIDUALS, "discriminator")
    assert {r["lineage"] for r in prevalence} == {"a0", "b0"}


def match(generator, discriminator, fooled, t):
    return {"generator": generator, "discriminator": discriminator, "fooled": fooled, "at": at(t), "kind": "duel"}


def test_immunity_follows_an_infection_and_reinfection_follows_immunity():
    matches = [
        match("a1", "d", 0.8, 10),  # strain b0 infects d
        match("a0", "d", 0.2, 11),  # strain a0 caught before any infection: no immunity to a0
        match("a2", "d", 0.5, 12),  # b0 caught (0.5 is not above one half): d is immune to b0
        match("b1", "d", 0.7, 13),  # b1 carries a0 and b0: a0's first infection, b0's re-infection
        match("b1", "e", 0.1, 14),  # e never infected
        match("zz", "e", 0.9, 15),  # a generator with no record: no strain
    ]
    by_pair = {(h["discriminator"], h["strain"]): h for h in exposures(INDIVIDUALS, matches)}
    assert set(by_pair) == {("d", "b0"), ("d", "a0"), ("e", "a0"), ("e", "b0")}
    b0 = by_pair["d", "b0"]
    assert (b0["infected_at"], b0["immune_at"], b0["reinfected_at"]) == (at(10), at(12), at(13))
    assert (b0["matches"], b0["infections"], b0["reinfections"]) == (3, 2, 1)
    a0 = by_pair["d", "a0"]
    assert (a0["infected_at"], a0["immune_at"], a0["reinfected_at"]) == (at(13), None, None)
    assert by_pair["e", "a0"]["infected_at"] is None
    summary = epidemic_summary(list(by_pair.values()))
    assert summary == {"exposed": 4, "infected": 2, "immune": 1, "reinfected": 1, "immune_share": 0.5,
                       "reinfected_share": 1.0}
    assert epidemic_summary([])["immune_share"] is None
    curve = epidemic_curve(list(by_pair.values()))
    assert [(r["at"], r["infected"], r["immune"], r["reinfected"]) for r in curve] == [
        (at(10), 1, 0, 0), (at(12), 1, 1, 0), (at(13), 2, 1, 0), (at(13), 2, 1, 1)]
