"""Checkpoints: one file per individual holding its genome beside its state dicts.

Loadable by anyone with `torch.load(path, weights_only=True)`: no pickled classes, only
tensors and plain containers. Keys: genome, generator, discriminator, g_optimizer, d_optimizer, step, and where
the player kept one (`arena.average`) generator_average and average_updates.
"""

from __future__ import annotations

import hashlib
import io

import torch

from genome import Genome, Pair, build_pair
from storage.files import join, read_bytes, write_atomically


def checkpoint_location(checkpoint_dir: str, player: str, generation: int) -> str:
    return join(checkpoint_dir, player, f"{generation:06d}.pt")


def superseded(generation: int, keep: int, every: int) -> int | None:
    """The generation whose checkpoint a player deletes once it has saved `generation`'s: the one `keep`
    generations back, unless its number is a multiple of `every` (kept for good, the run's history); None when
    none is due, and always with `keep` 0 (every checkpoint kept).

    Why: a checkpoint holds the pair's weights and its optimizers' moments, about 2 MB on grid25, and a player
    saves one a loop: 4 players kept 2 GB in 600 s at 100 steps a loop, a day's run would fill a disk. A restart
    needs only the latest intact one (the ones before it are its fallbacks); the final population, the champion
    and the mixture are every player's latest; the report's snapshots over time and sampling a past individual
    read the ones kept for good."""
    old = generation - keep
    if not keep or old < 0 or old % every == 0:
        return None
    return old


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable or not the file that was recorded."""


def save_checkpoint(location: str, payload: dict) -> str:
    """Writes the checkpoint atomically; returns its sha256, to be recorded beside its location."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    write_atomically(location, data)
    return hashlib.sha256(data).hexdigest()


def load_checkpoint(location: str, map_location: str | torch.device = "cpu", sha256: str | None = None) -> dict:
    """The checkpoint's contents, refused unless its bytes match `sha256` (when given)."""
    try:
        data = read_bytes(location)
    except (OSError, ValueError) as err:
        raise CheckpointError(f"checkpoint {location!r} cannot be read: {err}") from None
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise CheckpointError(f"checkpoint {location!r} does not match its recorded sha256")
    try:
        return torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types for a damaged file
        raise CheckpointError(f"checkpoint {location!r} is damaged: {err}") from None


def load_pair(location: str, device: str | torch.device = "cpu", sha256: str | None = None) -> tuple[Genome, Pair]:
    """Rebuild an individual from its checkpoint alone, as the run gives it out: the genome beside the weights
    says how; its generator holds the average of its weights where its player kept one (`arena.average`)."""
    payload = load_checkpoint(location, map_location=device, sha256=sha256)
    genome = Genome.from_dict(payload["genome"])
    pair = build_pair(genome, device)
    pair.load_state_dicts(payload)
    if "generator_average" in payload:
        pair.generator.load_state_dict(payload["generator_average"])
    pair.generator.eval()
    pair.discriminator.eval()
    return genome, pair
