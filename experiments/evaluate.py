"""Quality of a run's final population and of an ensemble of its best generators, recorded in MongoDB."""

from __future__ import annotations

import numpy as np
import torch
from pymongo.database import Database

from arena.ensemble import Mixture, fit_weights, quality_loss
from arena.metrics import Judge
from storage.checkpoints import CheckpointError, load_pair
from storage.records import now


def evaluate_final(db: Database, run_id: str, judge: Judge, individuals: list[str], ensemble: int,
                   seed: int) -> dict:
    """Metrics of each individual in `individuals` and of a mixture of the `ensemble` fittest;
    written to the `metrics` collection with kind `final` and `ensemble`. Returns the best single
    individual's and the ensemble's metrics."""
    torch_rng = torch.Generator().manual_seed(seed)
    docs = list(db.individuals.find({"_id": {"$in": individuals}},
                                    projection={"checkpoint": 1, "checkpoint_sha256": 1, "player": 1, "generation": 1,
                                                "fitness": 1}))
    generators, results = {}, []
    for doc in list(docs):
        try:
            _, pair = load_pair(doc["checkpoint"], sha256=doc.get("checkpoint_sha256"))
        except CheckpointError as err:
            print(f"warning: {err}; {doc['_id']} is left out of the evaluation")
            docs.remove(doc)
            continue
        generators[doc["_id"]] = pair.generator
        metrics = judge.quality(pair.generator.sample(judge.samples, torch_rng))
        results.append({"_id": f"{doc['_id']}|final", "run_id": run_id, "kind": "final", "individual": doc["_id"],
                        "player": doc["player"], "generation": doc["generation"], "at": now(), **metrics})
    summary = {}
    if results:
        summary["best"] = min(results, key=quality_loss)
    ranked = sorted(docs, key=lambda d: d.get("fitness") or 0.0, reverse=True)[:ensemble]
    if ensemble and len(ranked) > 1:
        mixture = Mixture([generators[d["_id"]] for d in ranked])
        metrics = fit_weights(mixture, judge, np.random.default_rng(seed), torch_rng)
        summary["ensemble"] = {"_id": f"{run_id}|ensemble", "run_id": run_id, "kind": "ensemble",
                               "members": [d["_id"] for d in ranked], "weights": mixture.weights.tolist(), "at": now(),
                               **metrics}
        results.append(summary["ensemble"])
    for doc in results:
        db.metrics.replace_one({"_id": doc["_id"]}, doc, upsert=True)
    return summary
