"""Checkpoints: one file per individual holding its genome beside its state dicts.

Loadable by anyone with `torch.load(path, weights_only=True)`: no pickled classes, only
tensors and plain containers.
"""

from __future__ import annotations

import io

import torch

from genome import Genome, Pair, build_pair
from storage.files import join, read_bytes, write_atomically


def checkpoint_location(checkpoint_dir: str, player: str, generation: int) -> str:
    return join(checkpoint_dir, player, f"{generation:06d}.pt")


def save_checkpoint(location: str, payload: dict) -> str:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_atomically(location, buffer.getvalue())
    return location


def load_checkpoint(location: str, map_location: str | torch.device = "cpu") -> dict:
    return torch.load(io.BytesIO(read_bytes(location)), map_location=map_location, weights_only=True)


def load_pair(location: str, device: str | torch.device = "cpu") -> tuple[Genome, Pair]:
    """Rebuild an individual from its checkpoint alone: the genome beside the weights says how."""
    payload = load_checkpoint(location, map_location=device)
    genome = Genome.from_dict(payload["genome"])
    pair = build_pair(genome, device)
    pair.load_state_dicts(payload)
    pair.generator.eval()
    pair.discriminator.eval()
    return genome, pair
