"""A player keeps opponents' pairs built between fights and loads their new weights into them (`agents.opponents`)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from agents.opponents import BUILT_PAIRS, Opponents
from arena.config import ArenaConfig
from genome import build_pair
from genome.operators import MutationConfig
from genome.population import conventional_genome


def test_an_opponents_pair_is_built_once_per_player_and_genome_and_the_cache_is_bounded():
    me = Opponents(torch.device("cpu"))
    genomes = [conventional_genome(np.random.default_rng(i), MutationConfig(), 16, 5, (2,)).to_dict() for i in range(2)]
    first = me.built({"player": "p1", "genome": genomes[0]})
    assert me.built({"player": "p1", "genome": genomes[0]}) is first  # the same genome again: no build
    # Another player of the same genome gets its own modules: both may sit in one fight.
    assert me.built({"player": "p2", "genome": genomes[0]}) is not first
    assert me.built({"player": "p1", "genome": genomes[1]}) is not first  # bred anew: built anew
    # Loading weights into a kept pair gives what building it afresh would.
    state = build_pair(conventional_genome(np.random.default_rng(0), MutationConfig(), 16, 5, (2,))).state_dicts()
    first.load_state_dicts(state)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dicts()["generator"].values(), state["generator"].values()))
    for i in range(BUILT_PAIRS + 3):
        me.built({"player": f"q{i}", "genome": genomes[0]})
    assert len(me.kept) == BUILT_PAIRS and not any(player in ("p1", "p2") for player, _ in me.kept)  # least recent out


def test_an_opponent_is_read_without_its_moments_and_a_parent_with_them():
    """A published individual is two objects, its pair's weights then its optimizers' moments: a fight reads the
    first alone (the moments are twice the weights), breeding reads both; a lost one is left out."""
    genome = conventional_genome(np.random.default_rng(0), MutationConfig(), 16, 5, (2,))
    weights, moments = build_pair(genome).state_dicts(), {"g_optimizer": {"m": 1}, "d_optimizer": {"m": 2}}
    store = {"w1": weights, "m1": moments, "w2": None}  # w2: its node went down
    asked = []

    def read(refs):
        asked.append(refs)
        if isinstance(refs, list):
            got = [store[r] for r in refs]
            return None if any(g is None for g in got) else got
        return store[refs]

    me = Opponents(torch.device("cpu"), read=read)
    assert me.fetch({"weights": ["w1", "m1"]}) == {**weights, **moments}
    asked.clear()
    entries = [{"player": "p1", "genome": genome.to_dict(), "weights": ["w1", "m1"]},
               {"player": "p2", "genome": genome.to_dict(), "weights": ["w2", "m2"]}]
    fought = me.pairs(entries)
    assert [entry["player"] for entry, _ in fought] == ["p1"]  # the lost one left out, the other kept
    assert asked == [["w1", "w2"], "w1", "w2"]  # weights only: together, then each alone once one was lost


@pytest.mark.parametrize("exploit, shape, both", [("never", (2,), False), ("auto", (1, 28, 28), False),
                                                  ("truncation", (2,), True), ("auto", (2,), True),
                                                  ("always", (2,), True)])
def test_the_moments_are_published_only_where_the_game_breeds(exploit, shape, both):
    """A player publishes its optimizers' moments only where a child can be bred from them (`Player._published`);
    a parent published without them gives its weights alone."""
    from agents.player import Player

    weights, moments = {"generator": {"w": 1}}, {"g_optimizer": {"m": 1}}
    player = SimpleNamespace(arena=ArenaConfig(exploit=exploit), data=SimpleNamespace(shape=shape))
    published = Player._published(player, weights, moments)
    assert published == ([weights, moments] if both else [weights])
    store = dict(zip(["w", "m"], published))
    me = Opponents(torch.device("cpu"), read=lambda refs: [store[r] for r in refs])
    assert me.fetch({"weights": list(store)}) == ({**weights, **moments} if both else weights)
