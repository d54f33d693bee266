"""Published individuals as a player reads them: their weights from Ray's object store, loaded into pairs it keeps
built between fights."""

from __future__ import annotations

import json
from collections.abc import Callable

import ray
import torch

from genome import Genome, Pair, build_pair

BUILT_PAIRS = 16  # opponents' pairs kept built, to load their next weights into (`Opponents.built`)


def read_published(refs):
    """What published references hold, or None when it is lost: a player whose node went down leaves
    references nobody can read until it publishes again."""
    try:
        return ray.get(refs, timeout=60)
    except (ray.exceptions.ObjectLostError, ray.exceptions.GetTimeoutError):
        return None


class Opponents:
    """A player's view of others' published individuals. Each is its pair's weights, then its optimizers' moments
    where the game breeds: a fight reads the first alone (Adam's moments are twice the weights), breeding both."""

    def __init__(self, device: torch.device, read: Callable = read_published, capacity: int = BUILT_PAIRS):
        self.device, self.read, self.capacity = device, read, capacity
        self.kept: dict[tuple[str, str], Pair] = {}  # (player, genome) -> a pair, least recently used first

    def fetch(self, entry: dict) -> dict | None:
        """A published individual's weights and optimizers' moments (where published: a game that never breeds
        leaves them out, and a child of such weights starts its optimizers afresh), for a child to carry, or None
        when lost."""
        published = self.read(entry["weights"])
        return None if published is None else {key: value for state in published for key, value in state.items()}

    def pairs(self, entries: list[dict]) -> list[tuple[dict, Pair]]:
        """The pairs of `entries` whose weights can still be read, each with its entry (their weights only, not
        their moments). One read for all, so their transfers overlap; when one is lost, each alone, to keep
        the others."""
        states = self.read([entry["weights"][0] for entry in entries])
        if states is None:
            states = [self.read(entry["weights"][0]) for entry in entries]
        out = []
        for entry, state in zip(entries, states):
            if state is not None:
                opponent = self.built(entry)
                opponent.load_state_dicts(state)
                out.append((entry, opponent))
        return out

    def built(self, entry: dict) -> Pair:
        """A pair of the entry's genome to load its weights into: the one built for its player's last entry of
        the same genome (a pair goes on training for many loops, so building one each fight is time lost), or
        a new one. Keyed by player too: two players' entries in one fight never share modules."""
        key = (entry["player"], json.dumps(entry["genome"], sort_keys=True))
        pair = self.kept.pop(key, None) or build_pair(Genome.from_dict(entry["genome"]), self.device)
        self.kept[key] = pair  # the most recently used last
        while len(self.kept) > self.capacity:
            self.kept.pop(next(iter(self.kept)))
        return pair
