"""Quality of a run's products, recorded in MongoDB: its champion (chosen by the arena's own standing,
checked against real training data) and a mixture of its best generators (weights fitted on real training data),
each screened by the final population's discriminators (`arena.screen`); beside them, as a
diagnostic only, the best individual by the judge's own metric, scored on samples other than the
ones that picked it."""

from __future__ import annotations

import functools
import sys

import torch
from pymongo.database import Database

from arena.ensemble import Mixture, distances_to_real, fit_weights, quality_loss
from arena.metrics import Judge
from arena.refine import refinable
from arena.screen import REGIONS, Screened, treated
from arena.selection import champion, ranked
from genome.build import Generator, Pair
from storage.checkpoints import CheckpointError, load_pair
from storage.records import now

STANDING_FIELDS = {"fitness": 1, "rating": 1, "d_fitness": 1, "g_matches": 1}


def evaluate_final(db: Database, run_id: str, judge: Judge, individuals: list[str], ensemble: int,
                   seed: int, key: str = "fitness", choice: str = "standing", screen: float = 1.0,
                   regions: int = REGIONS, refine: int = 0, record: bool = True) -> dict:
    """Metrics of each individual in `individuals` (kind `final`), of the champion (`choice`: the first by
    the standing `key`, or `real`: of the `ensemble` first by it, the one whose product, screened and refined as
    given out, is nearest real training data; see `arena.selection.champion`) and of a mixture of the `ensemble`
    first by `key` (kind `ensemble`).
    Returns `champion`, `ensemble` and the diagnostic `best`, each with its metrics and the individuals
    it is made of; under `real`, `by_standing` too, the first by standing alone, for comparison.
    With `screen` below 1 the products are screened by the discriminators of `individuals`
    (`arena.screen`, within `regions`: `arena.screen_regions`), and with `refine` above 0 refined by them for at
    most that many steps (`arena.refine`; vector data only); then `champion_unscreened` and `ensemble_unscreened`
    give them as they come. With `record` false nothing is written: the run's products chosen again another way
    (`experiments.bench quality --rejudge --ensembles`) leave its recorded ones as they were."""
    refine = refinable(judge.data, refine)
    screened = treated(screen, refine)
    torch_rng = torch.Generator().manual_seed(seed)
    docs = list(db.individuals.find({"_id": {"$in": individuals}},
                                    projection={"checkpoint": 1, "checkpoint_sha256": 1, "player": 1, "generation": 1,
                                                **STANDING_FIELDS}, sort=[("_id", 1)]))  # as records.champion_of
    pairs = loadable({d["_id"]: (d["checkpoint"], d.get("checkpoint_sha256")) for d in docs})
    docs = [d for d in docs if d["_id"] in pairs]
    generators = {_id: pair.generator for _id, pair in pairs.items()}
    discriminators, results = [pair.discriminator for pair in pairs.values()], []
    for doc in docs:
        pair = pairs[doc["_id"]]
        metrics = judge.quality(pair.generator.sample(judge.samples, torch_rng))
        results.append({"_id": f"{doc['_id']}|final", "run_id": run_id, "kind": "final", "individual": doc["_id"],
                        "player": doc["player"], "generation": doc["generation"], "at": now(), **metrics})
    summary = {}
    members = [d["_id"] for d in ranked(docs, key)[:ensemble]]
    if results:
        distances, products = None, {}
        if choice == "real" and len(members) > 1:
            # Its own stream: the judge's numbers below are drawn alike whichever way the champion is chosen.
            real_rng = torch.Generator().manual_seed(seed + 1)
            real = judge.data.sample(judge.samples, real_rng)
            # Each candidate as it would be given out, screened and refined: the product is what the user gets,
            # and the screen brings some generators nearer real data than others. Measured once and scored
            # below as measured (a product settles its refinement on its first draw).
            products = {m: Screened(generators[m], discriminators, judge.data, screen, regions, refine)
                        for m in members} if screened else {}
            candidates = [products.get(m, generators[m]) for m in members]
            distances = dict(zip(members, map(float, distances_to_real(candidates, real, real_rng))))
        scored = {r["individual"]: r for r in results}

        def product(individual: str) -> dict:
            return dict(judged(individual))  # a copy: the caller adds to it

        @functools.cache  # the champion and the first by standing are often one individual: judged once
        def judged(individual: str) -> dict:
            if not screened:
                return {**scored[individual], "by": key}
            # Its own stream, as the ensemble's below: one individual gets one score, however it was chosen,
            # and the numbers after it are drawn alike.
            return {**scored[individual], "by": key, "screen": screen, "screen_regions": regions, "refine": refine,
                    **screened_quality(products.get(individual, generators[individual]), discriminators, judge,
                                       screen, seed + 2, regions, refine)}

        chosen = champion(docs, key, distances)["_id"]
        summary["champion"] = product(chosen)
        if screened:
            summary["champion_unscreened"] = {**scored[chosen], "by": key}
        if distances:
            by = f"{key}, then nearest real data"
            summary["champion"].update(by=by, mmd=distances[chosen])  # the distance of the product, as given out
            summary.get("champion_unscreened", {}).update(by=by)
            summary["by_standing"] = product(champion(docs, key)["_id"])
        # The judge picks on one sample and is scored on another: the best of several noisy estimates flatters.
        picked = min(results, key=quality_loss)
        rescored = judge.quality(generators[picked["individual"]].sample(judge.samples, torch_rng))
        summary["best"] = {**picked, **rescored, "diagnostic": "picked by the judge, scored on fresh samples"}
    if ensemble and len(members) > 1:
        mixture = Mixture([generators[m] for m in members])
        fit_weights(mixture, judge.data.sample(judge.samples, torch_rng), torch_rng)
        summary["ensemble"] = {"_id": f"{run_id}|ensemble", "run_id": run_id, "kind": "ensemble", "by": key,
                               "members": members, "weights": mixture.weights.tolist(), "at": now(),
                               **judge.quality(mixture.sample(judge.samples, torch_rng))}
        if screened:
            summary["ensemble_unscreened"] = dict(summary["ensemble"])
            summary["ensemble"].update(screen=screen, screen_regions=regions, refine=refine,
                                       **screened_quality(mixture, discriminators, judge, screen, seed + 3, regions,
                                                          refine))
        results.append(summary["ensemble"])
    for doc in results if record else ():
        db.metrics.replace_one({"_id": doc["_id"]}, doc, upsert=True)
    return summary


def screen_sweep(db: Database, run_id: str, judge: Judge, shares: list[float], seed: int,
                 regions: int, refine: int = 0) -> dict[float, dict]:
    """A finished run's products, as its summary names them (the champion; the mixture's members and fitted
    weights), judged screened by its final population's discriminators at each share in `shares`
    (1: unscreened) and refined for `refine` steps: `{share: {"champion": metrics, "ensemble": metrics}}`.
    Evaluation only, for choosing `arena.screen` and `arena.refine` from numbers."""
    run = db.runs.find_one({"_id": run_id}) or {}
    summary = run.get("summary") or {}
    quality = summary.get("quality") or {}
    paths = {d["_id"]: (d["checkpoint"], d.get("checkpoint_sha256"))
             for d in db.individuals.find({"_id": {"$in": summary.get("population") or []}})}
    pairs = loadable(paths)
    discriminators = [p.discriminator for p in pairs.values()]
    products = {}
    if "champion" in quality and quality["champion"]["individual"] in pairs:
        products["champion"] = Mixture([pairs[quality["champion"]["individual"]].generator])
    if "ensemble" in quality and set(quality["ensemble"]["members"]) <= set(pairs):
        products["ensemble"] = Mixture([pairs[m].generator for m in quality["ensemble"]["members"]],
                                       quality["ensemble"]["weights"])
    # Each share screens the same stream of candidates.
    return {share: {name: screened_quality(source, discriminators, judge, share, seed, regions, refine)
                    for name, source in products.items()} for share in shares}


@torch.no_grad()
def screened_quality(source: Generator | Mixture, discriminators: list, judge: Judge, share: float,
                     seed: int, regions: int = REGIONS, refine: int = 0) -> dict:
    """The judge's metrics of `source`'s samples screened by `discriminators` at `share` within `regions` and
    refined for at most `refine` steps (share 1 and no steps: as they come; a source already `Screened` as it
    stands), drawn from a stream of their own seeded `seed`."""
    given = source
    if treated(share, refine) and not isinstance(source, Screened):
        given = Screened(source, discriminators, judge.data, share, regions, refine)
    return judge.quality(given.sample(judge.samples, torch.Generator().manual_seed(seed)))


def loadable(checkpoints: dict[str, tuple[str, str | None]]) -> dict[str, Pair]:
    """The pairs of `checkpoints` (id -> location, sha256) that load; each one that does not is a warning
    line and is left out, as in the final evaluation."""
    pairs = {}
    for _id, (location, sha256) in checkpoints.items():
        try:
            pairs[_id] = load_pair(location, sha256=sha256)[1]
        except CheckpointError as err:
            print(f"warning: {err}; {_id} is left out", file=sys.stderr)
    return pairs
