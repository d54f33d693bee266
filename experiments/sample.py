"""`python -m experiments.sample RUN_ID`: export samples of a run's generators as .npy (and a picture),
screened by its final population's discriminators as the run's own evaluation screened them."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch
import typer
from pymongo.database import Database

from experiments import cli
from experiments.summaries import screen_words

from arena.datasets import GaussianMixture, ImageDataset, load_dataset
from arena.ensemble import Mixture
from arena.refine import refinable
from arena.screen import Screened, treated
from arena.selection import ranked
from experiments.evaluate import STANDING_FIELDS, loadable
from experiments.runs import best_individual
from storage.checkpoints import CheckpointError, load_pair
from storage.records import KEPT
from storage.store import read_run_store

app = cli.new_app(help=__doc__)


def choose_source(db, run_id: str, individual: str | None, ensemble: int | None) -> tuple[list[str], list[float]]:
    """The individuals to sample from and their weights: one named; the run's champion (the one it
    recorded at its end, see `arena.champion`; the first by its standing among the individuals of a run still
    going whose checkpoints are kept); or a mixture of the `ensemble` first by that standing (with the weights
    fitted at the end of the run when the members match, else equal)."""
    if individual:
        found = db.individuals.find_one({"_id": individual, "run_id": run_id}, projection={"checkpoint_pruned": 1})
        if found is None:
            raise ValueError(f"individual {individual!r} not found in run {run_id!r}")
        if found.get("checkpoint_pruned"):
            raise ValueError(f"individual {individual!r}'s checkpoint was deleted by the run's keep_checkpoints; "
                             "every keep_every-th generation's and the latest ones are kept")
        return [individual], [1.0]
    run = db.runs.find_one({"_id": run_id}) or {}
    key = ((run.get("config") or {}).get("arena") or {}).get("selection", "fitness")
    population = (run.get("summary") or {}).get("population")
    query = {"run_id": run_id, "_id": {"$in": population}} if population else {"run_id": run_id, **KEPT}
    docs = list(db.individuals.find(query, projection={"_id": 1, **STANDING_FIELDS}, sort=[("_id", 1)]))
    if not any(d.get(key) is not None for d in docs):
        raise ValueError(f"run {run_id!r} has no individual with a {key} yet")
    if not ensemble:
        return [best_individual(db, run, projection={"_id": 1})["_id"]], [1.0]
    ids = [d["_id"] for d in ranked(docs, key)[:ensemble]]
    fitted = db.metrics.find_one({"_id": f"{run_id}|ensemble"})
    if fitted and fitted["members"] == ids:
        return ids, fitted["weights"]
    return ids, [1 / len(ids)] * len(ids)


def screen_of(run: dict) -> tuple[float, int, int]:
    """The share a run's products were screened at, the screen's regions and its refinement steps: as its final
    evaluation did (a run resumed after screening existed screens, though its first part recorded no `screen`);
    for a run still going, its setting; a run recorded before screening existed gave its products unscreened
    (1), one recorded before regions screened over all (0 regions), one before refinement unrefined (0)."""
    quality = (run.get("summary") or {}).get("quality")
    given = (quality.get("champion") or {}) if quality else ((run.get("config") or {}).get("arena") or {})
    return float(given.get("screen", 1.0)), int(given.get("screen_regions", 0)), int(given.get("refine", 0))


def screening_population(db, run_id: str) -> list[str]:
    """The discriminators that screen a run's products: its final population's; for a run still going, the
    latest individual of each player."""
    run = db.runs.find_one({"_id": run_id}) or {}
    population = (run.get("summary") or {}).get("population")
    if population:
        return list(population)
    latest: dict[str, tuple[int, str]] = {}
    for doc in db.individuals.find({"run_id": run_id}, projection={"player": 1, "generation": 1}):
        if doc["generation"] >= latest.get(doc["player"], (-1, ""))[0]:
            latest[doc["player"]] = (doc["generation"], doc["_id"])
    return sorted(i for _, i in latest.values())


def save_picture(samples: np.ndarray, data, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    if isinstance(data, GaussianMixture):
        figure, axes = plt.subplots(figsize=(5, 5))
        axes.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.4, label="generated")
        axes.scatter(data.means[:, 0], data.means[:, 1], s=40, c="red", marker="x", label="true modes")
        axes.set_aspect("equal")
        axes.legend(loc="upper right")
    else:
        count = min(64, len(samples))
        side = int(np.ceil(np.sqrt(count)))
        figure, grid = plt.subplots(side, side, figsize=(side, side))
        for i, axes in enumerate(np.ravel(grid)):
            axes.axis("off")
            if i < count:
                axes.imshow(samples[i, 0], cmap="gray", vmin=-1, vmax=1)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)


@app.command()
def main(
    run_id: str = typer.Argument(..., help="The run to sample from."),
    n: int = typer.Option(1000, help="Number of samples."),
    out: Path = typer.Option(..., "--out", help="The .npy file to write."),
    best: bool = typer.Option(False, "--champion", "--best", help="The run's champion, as it recorded at its "
                                                                   "end (see arena.champion; the default)."),
    individual: Optional[str] = typer.Option(None, help="One individual, by id."),
    ensemble: Optional[int] = typer.Option(None, help="A mixture of the K first of the final population by "
                                                      "the run's standing."),
    png: Optional[Path] = typer.Option(None, help="Also write an image grid, or a scatter against the true modes."),
    runs: str = typer.Option("runs", help="The --out folder the run wrote to (for its embedded database)."),
    mongo_uri: Optional[str] = typer.Option(None, envvar="ARENA_MONGO_URI", help="MongoDB server of the run."),
    mongo_db: str = typer.Option("arena", help="Database name."),
    seed: int = typer.Option(0, help="Seed of the latent noise."),
    unscreened: bool = typer.Option(False, "--unscreened", help="The generators' samples as they come, neither "
                                                                "screened nor refined by the final population's "
                                                                "discriminators (the run's `arena.screen`, "
                                                                "`arena.refine`)."),
) -> None:
    """Write N samples of the chosen generator(s) to OUT as a float32 array of shape (N, *data shape)."""
    try:
        if sum([best, individual is not None, ensemble is not None]) > 1:
            raise ValueError("choose one of --champion, --individual and --ensemble")
        if n < 1 or (ensemble is not None and ensemble < 1):
            raise ValueError(f"--n and --ensemble must be positive; got {n} and {ensemble}")
        def choose(db: Database) -> tuple[list[str], list[float], dict, GaussianMixture | ImageDataset,
                                        tuple[float, int, int], list[str]]:
            ids, weights = choose_source(db, run_id, individual, ensemble)
            run = db.runs.find_one({"_id": run_id})
            data = load_dataset(run["config"]["dataset"])
            keep, regions, refine = (1.0, 0, 0) if unscreened else screen_of(run)
            refine = refinable(data, refine)
            screens = screening_population(db, run_id) if treated(keep, refine) else []
            checkpoints = {d["_id"]: (d["checkpoint"], d.get("checkpoint_sha256"))
                           for d in db.individuals.find({"_id": {"$in": ids + screens}})}
            return ids, weights, checkpoints, data, (keep, regions, refine), screens

        for attempt in range(2):
            ids, weights, checkpoints, data, (keep, regions, refine), screens = read_run_store(
                run_id, runs, mongo_uri, mongo_db, choose)
            try:
                generators = [load_pair(checkpoints[i][0], sha256=checkpoints[i][1])[1].generator for i in ids]
                break
            except CheckpointError:
                if attempt:  # a run still going may have deleted one chosen just before: choose again once
                    raise
        source = Mixture(generators, np.asarray(weights))
        if treated(keep, refine):
            judges = loadable({i: checkpoints[i] for i in screens})
            if not judges:
                raise ValueError(f"none of the {len(screens)} discriminators that screen run {run_id!r} can be "
                                 "loaded; --unscreened gives the generators' samples as they come")
            source = Screened(source, [pair.discriminator for pair in judges.values()], data, keep, regions, refine)
            screens = list(judges)
        samples = source.sample(n, torch.Generator().manual_seed(seed)).numpy()
    except (ValueError, ConnectionError, RuntimeError, FileNotFoundError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, samples.astype(np.float32))
    screened = f", screened by {len(screens)} discriminators ({screen_words(keep, regions, refine)})" \
        if treated(keep, refine) else ""
    typer.echo(f"{n} samples of {', '.join(ids)}{screened} -> {out}")
    if png:
        save_picture(samples, data, png)
        typer.echo(f"picture -> {png}")


if __name__ == "__main__":
    cli.main(app)
