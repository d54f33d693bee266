"""A player's restart: where it carries on from, read from the run's records and checkpoints."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from arena.average import Average
from arena.offspring import Offspring, restored
from genome import Genome
from storage.checkpoints import CheckpointError, load_checkpoint
from storage.records import drop_unclaimed
from storage.traces import TraceWriter


@dataclass
class Resumed:
    child: Offspring | None  # the pair to carry on with, as its next generation (None: its founder's)
    generation: int  # the number it carries on under
    steps: int  # training steps taken by its lineage so far
    individuals: int  # the player's individuals recorded so far


def resume(db, traces: TraceWriter, run_id: str, name: str, device: torch.device, average: float) -> Resumed:
    """After a restart (of the player's actor, or of the run with --resume): carry on from the latest
    recorded individual whose checkpoint is intact, as its next generation, with its optimizer state; a
    checkpoint that is missing or does not match its sha256 is refused and the one before it is tried (of those
    its player kept: `storage.checkpoints.superseded`). With none to carry on from (nothing recorded yet, or every
    checkpoint refused), its founder's pair, numbered after the latest record all the same.

    An individual is recorded at the end of its loop: one killed after its checkpoint was saved but before its
    record was sent is lost, and the player resumes from the one before it, under the lost one's number
    (numbering has no gaps; the registry, if it lived on, keeps the matches the lost one fought under that id
    as the new one's standing)."""
    recorded = list(db.individuals.find(
        {"run_id": run_id, "player": name}, sort=[("generation", -1)],
        projection={"checkpoint": 1, "checkpoint_sha256": 1, "checkpoint_pruned": 1, "generation": 1, "steps": 1,
                    "fitness": 1, "age": 1}))
    # What an individual killed before its record was sent left behind (trace rows, matches, metrics)
    # would be claimed by its successor, which takes its number.
    last = recorded[0]["generation"] if recorded else -1
    dropped = traces.drop_unrecorded(last), drop_unclaimed(db, run_id, name, last)
    if any(dropped):
        print(f"{name}: removed {dropped[0]} trace rows and {dropped[1]} matches or metrics of "
              "individuals that were never recorded")
    for doc in recorded:
        if doc.get("checkpoint_pruned"):  # deleted on purpose (storage.checkpoints.superseded): older still
            continue
        try:
            payload = load_checkpoint(doc["checkpoint"], device, sha256=doc.get("checkpoint_sha256"))
        except CheckpointError as err:
            print(f"{name}: {err}; falling back to the individual before it")
            continue
        child = restored(Genome.from_dict(payload["genome"]), payload, doc["_id"],
                         {"op": "resume", "from": doc["_id"]}, device, doc.get("fitness"), doc.get("age", 0) + 1)
        if average and "generator_average" in payload:  # the average goes on where it stood
            child.average = Average(child.pair.generator, average, payload["generator_average"],
                                    payload.get("average_updates", 0))
        # Numbering goes on after the latest record, refused ones included: no record is overwritten.
        return Resumed(child, last + 1, doc.get("steps", 0), len(recorded))
    return Resumed(None, last + 1, 0, len(recorded))
