"""Screening: the samples discriminators rank most real are kept, whatever the scale of their scores."""

import re

import numpy as np
import pytest
import torch
from torch import nn

from arena.config import ArenaConfig
from arena.datasets import ring8
from arena.ensemble import Mixture
from arena.screen import Screened, nearest, realness, within
from genome import build_pair
from genome.operators import MutationConfig
from genome.population import random_genome


class Spread:
    """A source of 2-D samples spread around the origin."""

    def sample(self, n, rng):
        return torch.randn(n, 2, generator=rng)


class Near(nn.Module):
    """Scores a sample higher the nearer it is to the origin, at any scale; reads packs of `pack`."""

    def __init__(self, scale=1.0, pack=1):
        super().__init__()
        self.scale, self.pack, self.seen = scale, pack, []

    def forward(self, x):
        self.seen.append(x.clone())
        x = x.reshape(len(x) // self.pack, self.pack, -1)[:, 0]
        return -self.scale * x.norm(dim=1)


def test_the_samples_ranked_most_real_are_kept_in_random_order():
    kept = Screened(Spread(), [Near()], ring8(), 0.25, regions=0).sample(100, torch.Generator().manual_seed(0))
    candidates = Spread().sample(400, torch.Generator().manual_seed(0))  # the same stream: the same candidates
    nearest = candidates[candidates.norm(dim=1).argsort()[:100]]
    assert kept.shape == (100, 2)
    assert sorted(kept.norm(dim=1).tolist()) == pytest.approx(sorted(nearest.norm(dim=1).tolist()))
    assert not torch.equal(kept, nearest)  # shuffled, not in the order of their ranks


class Right(Near):
    """Scores a sample higher the further right it lies."""

    def forward(self, x):
        self.seen.append(x.clone())
        return self.scale * x[:, 0]


def test_scores_count_by_rank_so_no_discriminator_outweighs_another_by_its_scale():
    rng = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    both = Screened(Spread(), [Near(1e3), Right(1e-3)], ring8(), 0.5, regions=0).sample(64, rng())
    candidates = Spread().sample(128, rng())
    by_rank = torch.stack([candidates.norm(dim=1).neg().argsort().argsort(),
                           candidates[:, 0].argsort().argsort()]).float().mean(0)
    expected = candidates[by_rank.argsort(descending=True)[:64]]
    by_near = candidates[candidates.norm(dim=1).argsort()[:64]]  # what averaging raw scores would keep
    key = lambda x: sorted(map(tuple, x.tolist()))  # noqa: E731
    assert key(both) == key(expected) and key(both) != key(by_near)


def test_a_discriminator_that_scores_not_a_number_keeps_nothing_it_cannot_judge():
    class Diverged(Near):
        def forward(self, x):
            scores = super().forward(x)
            scores[x[:, 0] > 0] = float("nan")
            return scores

    rng = torch.Generator().manual_seed(4)
    assert (Spread().sample(80, torch.Generator().manual_seed(4))[:, 0] <= 0).sum() >= 20  # enough it can judge
    kept = Screened(Spread(), [Diverged()], ring8(), 0.25).sample(20, rng)
    assert (kept[:, 0] <= 0).all()


def test_keeping_every_sample_screens_nothing():
    screened = Screened(Spread(), [Near()], ring8(), 1.0).sample(50, torch.Generator().manual_seed(2))
    assert torch.equal(screened, Spread().sample(50, torch.Generator().manual_seed(2)))


def test_a_packing_discriminator_reads_each_sample_beside_real_training_samples():
    data, judge = ring8(), Near(pack=3)
    x = torch.full((5, 2), 7.0)  # far from every real sample
    scores = realness(judge, x, data, torch.Generator().manual_seed(3))
    packs = judge.seen[0].reshape(5, 3, 2)
    assert scores.shape == (5,) and torch.equal(packs[:, 0], x)
    assert packs[:, 1:].norm(dim=2).sub(1).abs().max() < 0.1  # the partners lie on ring8's circle


def test_a_screen_of_real_pairs_runs_on_any_pack_and_samples_in_eval_mode():
    genomes = [random_genome(np.random.default_rng(i), MutationConfig(), 64, 10, pack=p) for i, p in enumerate((1, 2))]
    pairs = [build_pair(g) for g in genomes]
    for pair in pairs:
        pair.generator.train(), pair.discriminator.train()
    screened = Screened(pairs[0].generator, [p.discriminator for p in pairs], ring8(), 0.5).sample(33, torch.Generator())
    assert screened.shape == (33, 2) and torch.isfinite(screened).all()
    # Products are sampled and judged as they are evaluated: batch norm on running statistics, no dropout.
    assert not pairs[0].generator.training and not any(p.discriminator.training for p in pairs)
    mixed = Screened(Mixture([p.generator for p in pairs]), [pairs[1].discriminator], ring8(), 0.3)
    assert mixed.sample(10, torch.Generator()).shape == (10, 2)


def test_many_candidates_are_judged_in_chunks(monkeypatch):
    import arena.screen

    monkeypatch.setattr(arena.screen, "CHUNK", 7)
    judge = Near(pack=2)
    scores = realness(judge, torch.randn(30, 2), ring8(), torch.Generator())
    assert scores.shape == (30,) and [len(x) for x in judge.seen] == [14, 14, 14, 14, 4]


@pytest.mark.parametrize("keep", [0, -0.5, 1.5])
def test_a_share_outside_zero_to_one_is_refused_naming_it(keep):
    with pytest.raises(ValueError, match=f"got {keep}"):
        Screened(Spread(), [Near()], ring8(), keep)
    with pytest.raises(ValueError, match=rf"arena.screen must be a share in \(0, 1\]; got {keep}"):
        ArenaConfig(screen=keep)


def test_a_screen_needs_a_discriminator():
    with pytest.raises(ValueError, match="at least one discriminator"):
        Screened(Spread(), [], ring8(), 0.5)


def test_the_reports_overview_shows_the_champion_screened_beside_the_population_unscreened():
    from experiments.sections import overview

    finals = [{"kind": "final", "individual": "r/player-0/9", "modes": 20, "high_quality": 0.4, "kl": 0.3}]
    run = {"status": "finished", "config": {"dataset": "grid25"}, "summary": {"quality": {"champion": {
        "individual": "r/player-0/9", "modes": 25, "high_quality": 0.8, "kl": 0.2, "screen": 0.5}}}}
    text = overview(run, [], 0, 0, finals)
    assert "champion, screened (keeps 0.5, over all)" in text and "0.8" in text  # a run recorded before regions
    assert text.index("final") < text.index("champion, screened")
    run["summary"]["quality"]["champion"].update(screen=0.125, screen_regions=128)
    assert "champion, screened (keeps 0.125, within 128 regions)" in overview(run, [], 0, 0, finals)


@pytest.mark.parametrize("screens", ["0.5,x", "0", "1.5", "nan"])
def test_the_quality_benchmark_refuses_a_bad_share_naming_it(screens, capsys):
    from experiments import cli
    from experiments.bench.__main__ import app

    assert cli.run_app(app, ["quality", "--screens", screens]) == 2
    assert "--screens takes shares in (0, 1]" in capsys.readouterr().err


def test_a_run_is_sampled_screened_as_its_evaluation_screened_it():
    from experiments.sample import screen_of

    assert screen_of({"config": {"arena": {"screen": 0.25, "screen_regions": 64, "refine": 50}}}) == (0.25, 64, 50)
    assert screen_of({"config": {"arena": {}}}) == (1, 0, 0)  # recorded before screening existed
    resumed = {"config": {"arena": {}}, "summary": {"quality": {"champion": {"screen": 0.5}}}}
    assert screen_of(resumed) == (0.5, 0, 0)  # its first part recorded no screen; its evaluation screened, over all
    regional = {"config": {"arena": {}}, "summary": {"quality": {"champion": {"screen": 0.5, "screen_regions": 128}}}}
    assert screen_of(regional) == (0.5, 128, 0)  # recorded before refinement existed
    refined = {"config": {"arena": {"refine": 7}}, "summary": {"quality": {"champion": {"screen": 1, "refine": 50}}}}
    assert screen_of(refined) == (1, 0, 50)  # as its evaluation refined, whatever the setting says
    assert screen_of({"config": {"arena": {"screen": 0.5}}, "summary": {"quality": {"champion": {}}}}) == (1, 0, 0)


def test_a_running_run_is_screened_by_the_latest_individual_of_each_player(raw_db):
    from experiments.sample import screening_population

    raw_db.runs.insert_one({"_id": "go", "config": {}})
    raw_db.individuals.insert_many([{"_id": f"go/{p}/{g}", "run_id": "go", "player": p, "generation": g}
                                    for p, last in (("player-0", 3), ("player-1", 1)) for g in range(last + 1)])
    assert screening_population(raw_db, "go") == ["go/player-0/3", "go/player-1/1"]
    raw_db.runs.update_one({"_id": "go"}, {"$set": {"summary": {"population": ["go/player-1/0"]}}})
    assert screening_population(raw_db, "go") == ["go/player-1/0"]  # ended: its final population


def test_a_rank_within_its_region_runs_from_zero_to_one_and_a_lone_candidate_is_its_regions_best():
    rank = torch.tensor([0.9, 0.1, 0.5, 0.3, 0.7])
    region = torch.tensor([0, 0, 1, 0, 2])
    assert within(rank, region).tolist() == pytest.approx([1.0, 0.0, 1.0, 0.5, 1.0])


def test_each_sample_belongs_to_its_nearest_real_anchor_in_chunks(monkeypatch):
    import arena.screen

    monkeypatch.setattr(arena.screen, "CHUNK", 3)
    anchors = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    x = torch.tensor([[1.0, 1.0], [9.0, 0.0], [6.0, 0.0], [4.0, 0.0], [-3.0, 2.0]])
    assert nearest(x, anchors).tolist() == [0, 1, 1, 0, 0]


def test_within_regions_a_screen_keeps_the_sources_spread_that_a_screen_over_all_gives_up():
    """A discriminator that favours the right half: over all, the screen keeps only the right; within regions of
    real data, each region gives out its own best, so the left half keeps about its share of the candidates."""
    def left_share(regions):
        kept = Screened(Spread(), [Right()], ring8(), 0.25, regions).sample(400, torch.Generator().manual_seed(5))
        return float((kept[:, 0] < 0).float().mean())

    assert left_share(0) == 0.0
    assert 0.35 < left_share(32) < 0.65
    kept = Screened(Spread(), [Right()], ring8(), 0.25, 32).sample(400, torch.Generator().manual_seed(5))
    candidates = Spread().sample(1600, torch.Generator().manual_seed(5))  # the same stream: the same candidates
    assert kept[:, 0].mean() > candidates[:, 0].mean()  # within each region the right still wins


@pytest.mark.parametrize("regions", [-1, 2.5, True])
def test_a_screens_regions_must_be_a_non_negative_integer_named_when_not(regions):
    with pytest.raises(ValueError, match=f"got {regions!r}"):
        Screened(Spread(), [Near()], ring8(), 0.5, regions)
    with pytest.raises(ValueError, match=f"arena.screen_regions must be a non-negative integer; got {regions!r}"):
        ArenaConfig(screen_regions=regions)


@pytest.mark.parametrize("args, says", [
    (["--rejudge", "--screens", "0.5"], "--rejudge judges again what a kept --work folder holds"),
    (["--rejudge", "--work", "{tmp}", "--screens", "0.5"], "got --work"),
    (["--screens", "0.5", "--regions", "64,x"], "--regions takes non-negative integers; got 'x'"),
    (["--refines", "100,-1"], "--refines takes non-negative integers; got '-1'"),
    (["--rejudge", "--work", "{tmp}"], "at --screens, --refines or --ensembles"),
    (["--rejudge", "--work", "{tmp}", "--ensembles", "4,1"], "--ensembles takes numbers of at least 2; got 1"),
    (["--ensembles", "4"], "--ensembles 4 chooses a kept run's products again: it needs --rejudge"),
    (["--streams", "3"], "--streams 3 judges a kept run's products again: it needs --rejudge"),
    (["--streams", "0"], "--streams takes a positive number; got 0"),
    (["--first-seed", "-1"], "--first-seed must be 0 or more; got -1"),
    (["--rejudge", "--work", "{tmp}", "--screens", "0.5", "--first-seed", "2"], "--first-seed 2 draws new runs"),
])
def test_judging_a_benchmark_again_refuses_what_it_cannot_judge_naming_it(args, says, tmp_path, capsys):
    from experiments import cli
    from experiments.bench.__main__ import app

    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert cli.run_app(app, ["quality", "--dataset", "ring8", *args]) == 2
    assert says in capsys.readouterr().err


def test_saved_baselines_are_judged_again_at_every_share_and_number_of_regions(raw_db, tmp_path, monkeypatch):
    """The baselines a kept quality benchmark saved, screened as the benchmark screens them: one GAN and each
    independent GAN by its own discriminator, their mixture by all of theirs; one row per share and number of
    regions, one entry per seed."""
    from experiments.bench.rejudge import rejudge
    from storage.checkpoints import save_checkpoint

    for seed in (0, 1):
        for i in range(3):
            genome = random_genome(np.random.default_rng(10 * seed + i), MutationConfig(), 64, 10)
            where = tmp_path / "single" / f"single-{seed}.pt" if i == 2 else \
                tmp_path / "independent" / f"independent-{seed}-{i}.pt"
            save_checkpoint(str(where), {"genome": genome.to_dict(), **build_pair(genome).state_dicts()})
    rows, notes = rejudge(raw_db, tmp_path, "ring8", (0.5, 0.25), (0, 8), say=lambda text: None)
    names = [row["method"] for row in rows]
    assert len(names) == 4 * 2 * 2 and all(row["seeds"] == 2 for row in rows)
    assert "one GAN, by its own discriminator, screen sweep: keeps 0.25, within 8 regions" in names
    assert "2 independent GANs, mixture, by their discriminators, screen sweep: keeps 0.25, within 8 regions" in names
    assert "2 independent GANs, mean, by its own discriminator, screen sweep: keeps 0.5, over all" in names
    pick = "2 independent GANs, judge's pick (diagnostic), by its own discriminator"
    assert f"{pick}, screen sweep: keeps 0.5, over all" in names
    assert notes.startswith(f"Judged again from {tmp_path}, nothing trained.")
    import experiments.bench.rejudge as judging

    drawn = []  # the stream each baseline is judged on (untrained, they score alike on every one)
    screen, pool = judging.screened_quality, judging.baselines.pooled
    monkeypatch.setattr(judging, "screened_quality", lambda *args: drawn.append(args[4]) or screen(*args))
    monkeypatch.setattr(judging.baselines, "pooled", lambda *args, **kw: drawn.append(kw["drawn"]) or pool(*args, **kw))
    twice, notes = rejudge(raw_db, tmp_path, "ring8", (0.5,), (0,), say=lambda text: None, streams=2)
    assert [row["method"] for row in twice] == [name for name in names if "keeps 0.5, over all" in name]
    assert len(re.findall(r"over 2 streams\)", notes)) == 4 * 2  # each product, each seed
    stride, fresh = judging.STREAM_STRIDE, judging.baselines.FRESH
    for seed in (0, 1):  # one GAN (1), independents alone (2), on fresh samples (2) and pooled (1), on each stream
        for stream in (seed, seed + stride):
            assert drawn.count(stream) == 1 + 2 + 1 and drawn.count(stream + fresh) == 2, (seed, stream, drawn)
    with pytest.raises(ValueError, match="no finished arena run and no saved one GAN or independent GAN"):
        rejudge(raw_db, tmp_path / "empty", "ring8", (0.5,), (0,))


def test_within_a_region_ties_go_to_the_candidate_ranked_higher_over_all():
    """Two regions' bests both score 1 within their region: the one the discriminators rank higher over all is
    kept when only one may be."""
    class Source:
        def sample(self, n, rng):
            return torch.tensor([[-1.0, 0.0], [-0.9, 0.0], [1.0, 0.0], [0.9, 0.0]])[:n]

    class Anchored:  # two real training samples: one region left of the origin, one right
        def sample(self, n, rng):
            return torch.tensor([[-1.0, 0.0], [1.0, 0.0]])[:n]

    kept = Screened(Source(), [Right()], Anchored(), 0.25, regions=2).sample(1, torch.Generator())
    assert kept.tolist() == [[1.0, 0.0]]  # the right region's best beats the left's best over all
    two = Screened(Source(), [Right()], Anchored(), 0.5, regions=2).sample(2, torch.Generator())
    assert sorted(two[:, 0].tolist()) == pytest.approx([-0.9, 1.0])  # each region's best: the spread is kept


def test_kept_arena_runs_are_judged_again_under_their_own_names_and_seeds(raw_db, tmp_path, monkeypatch):
    """An asynchronous and a barrier run, judged again: each kind in rows of its own, the notes naming each run's
    seed, unscreened once however many numbers of regions; an interrupted run is left out."""
    import experiments.bench.rejudge as judging
    import experiments.bench.scores as scores

    calls = []

    def sweep(db, run_id, judge, shares, seed, regions, refine=0):
        calls.append((run_id, tuple(shares), regions, refine))
        metrics = {"modes": 8, "high_quality": 0.5 + seed / 100, "kl": 0.1}
        return {share: {"champion": metrics, "ensemble": metrics} for share in shares}

    monkeypatch.setattr(scores, "screen_sweep", sweep)
    for _id, seed, schedule in (("a", 3, "async"), ("b", 3, "barrier"), ("c", 5, "async")):
        raw_db.runs.insert_one({"_id": _id, "config": {"dataset": "ring8", "seed": seed, "arena": {"schedule": schedule}},
                                "summary": {"quality": {"champion": {}}}})
    raw_db.runs.insert_one({"_id": "cut", "status": "interrupted", "config": {"dataset": "ring8", "seed": 4},
                            "summary": {"quality": {"champion": {}}}})
    # Run a's loops: 1,000 steps at 2 ms of CPU and 3,000 at 4 ms (their mean weighted by steps: 3.5 ms).
    raw_db.individuals.insert_many([{"_id": "a/p/0", "run_id": "a", "trained_steps": 1000, "step_cpu_ms": 2.0},
                                    {"_id": "a/p/1", "run_id": "a", "trained_steps": 3000, "step_cpu_ms": 4.0}])
    said = []
    rows, notes = judging.rejudge(raw_db, tmp_path, "ring8", (1.0, 0.5), (0, 16), say=said.append)
    assert ("Training of each arena run — arena seed 3: 4,000 training steps, 3.5 ms of CPU a step; "
            "barrier arena seed 3: 0 training steps; arena seed 5: 0 training steps") in notes
    assert "arena run cut was interrupted; left out" in said and "seed 4" not in notes  # a budget cut short
    names = [row["method"] for row in rows]
    assert names == [f"{kind}, {product}, screen sweep: {words}" for kind in ("arena", "barrier arena")
                     for words in ("unscreened", "keeps 0.5, over all", "keeps 0.5, within 16 regions")
                     for product in ("champion", "mixture")]
    rows = {row["method"]: row for row in rows}
    assert rows["arena, champion, screen sweep: unscreened"]["seeds"] == 2
    assert rows["barrier arena, mixture, screen sweep: keeps 0.5, within 16 regions"]["seeds"] == 1
    assert "arena, champion, screen sweep: unscreened: seed 3: 8 modes, 53.0% HQ, KL 0.100; seed 5:" in notes
    assert ("a", (1.0, 0.5), 0, 0) in calls and ("a", (0.5,), 16, 0) in calls  # unscreened once
    rows, _ = judging.rejudge(raw_db, tmp_path, "ring8", (0.5,), (16,), (0, 5), say=lambda text: None)
    assert [row["method"] for row in rows][:4] == [f"arena, {product}, screen sweep: keeps 0.5, within 16 regions{how}"
                                                   for how in ("", ", refined 5 steps")
                                                   for product in ("champion", "mixture")]
    assert ("c", (0.5,), 16, 5) in calls
    raw_db.runs.insert_one({"_id": "d", "config": {"dataset": "grid25", "seed": 0}, "summary": {"quality": {}}})
    with pytest.raises(ValueError, match="holds runs of grid25, not only of --dataset ring8"):
        judging.rejudge(raw_db, tmp_path, "ring8", (0.5,), (0,))


def test_each_product_judged_on_several_streams_is_their_mean_the_first_stream_the_usual_one(raw_db, tmp_path,
                                                                                              monkeypatch):
    """`--streams`: every product judged on that many streams of samples, its metrics their means, the notes
    giving each seed's range; the first stream is the single judgement's."""
    import experiments.bench.rejudge as judging
    import experiments.bench.scores as scores

    seeds = []

    def sweep(db, run_id, judge, shares, seed, regions, refine=0):
        seeds.append(seed)
        metrics = {"modes": 8, "high_quality": 0.9, "kl": [0.01, 0.02, 0.06][len(seeds) - 1]}  # the mean: 0.03
        return {share: {"champion": metrics, "ensemble": metrics} for share in shares}

    monkeypatch.setattr(scores, "screen_sweep", sweep)
    raw_db.runs.insert_one({"_id": "a", "config": {"dataset": "ring8", "seed": 3, "arena": {}},
                            "summary": {"quality": {"champion": {}}}})
    rows, notes = judging.rejudge(raw_db, tmp_path, "ring8", (0.5,), (0,), streams=3, say=lambda text: None)
    assert seeds == [3, 3 + judging.STREAM_STRIDE, 3 + 2 * judging.STREAM_STRIDE]
    assert rows[0]["kl"].startswith("0.030") and rows[0]["seeds"] == 1  # one seed, its streams averaged
    assert "seed 3: 8 modes, 90.0% HQ, KL 0.030 (KL 0.010–0.060 over 3 streams)" in notes
    assert "each product on 3 streams of samples" in notes
    with pytest.raises(ValueError, match="--streams takes a positive number; got 0"):
        judging.rejudge(raw_db, tmp_path, "ring8", (0.5,), (0,), streams=0)


def test_a_kept_runs_products_are_chosen_again_at_other_ensemble_sizes_recording_nothing(raw_db, tmp_path,
                                                                                         monkeypatch):
    """`--ensembles`: the champion and the mixture chosen again from the final population with each number of
    generators, as the run would give them out; the run's recorded metrics stay as they were."""
    import experiments.bench.rejudge as judging
    from storage.checkpoints import save_checkpoint

    chosen, seeds = [], []

    def evaluate(*args, **kwargs):
        summary = evaluate_final(*args, **kwargs)
        chosen.append(len(summary["ensemble"]["members"]))
        seeds.append(args[5])
        return summary

    evaluate_final = judging.evaluate_final
    monkeypatch.setattr(judging, "evaluate_final", evaluate)
    rejudge = judging.rejudge

    population = []
    for i in range(3):
        genome = random_genome(np.random.default_rng(i), MutationConfig(), 32, 5)
        path = str(tmp_path / "runs" / f"{i}.pt")
        save_checkpoint(path, {"genome": genome.to_dict(), **build_pair(genome).state_dicts()})
        raw_db.individuals.insert_one({"_id": f"r/player-{i}/9", "run_id": "r", "player": f"player-{i}",
                                       "generation": 9, "checkpoint": path, "fitness": 0.9 - 0.1 * i})
        population.append(f"r/player-{i}/9")
    arena = {"selection": "fitness", "champion": "real", "screen": 1.0, "screen_regions": 0, "refine": 0}
    raw_db.runs.insert_one({"_id": "r", "config": {"dataset": "ring8", "seed": 0, "arena": arena},
                            "summary": {"quality": {"champion": {}}, "population": population}})
    rows, notes = rejudge(raw_db, tmp_path, "ring8", (), (0,), ensembles=(2, 3), say=lambda text: None)
    assert [row["method"] for row in rows] == [f"arena, {product}, ensemble {size}" for size in (2, 3)
                                               for product in ("champion", "mixture")]
    assert all(row["seeds"] == 1 for row in rows) and chosen == [2, 3]  # each size mixes as many
    assert raw_db.metrics.count_documents({}) == 0
    seeds.clear()
    rows, notes = rejudge(raw_db, tmp_path, "ring8", (), (0,), ensembles=(2,), streams=2, say=lambda text: None)
    assert seeds == [0, judging.STREAM_STRIDE] and all(row["seeds"] == 1 for row in rows)  # chosen on each stream
    assert "over 2 streams)" in notes
    with pytest.raises(ValueError, match="--ensembles 4: run r has 3 in its final population"):
        rejudge(raw_db, tmp_path, "ring8", (), (0,), ensembles=(4,), say=lambda text: None)
    raw_db.runs.update_one({"_id": "r"}, {"$unset": {"summary.population": ""}})  # its final standings unread
    said = []
    rows, _ = rejudge(raw_db, tmp_path, "ring8", (), (0,), ensembles=(2,), say=said.append)
    assert rows == [] and "arena run r has no final population recorded" in said[0]


@pytest.mark.parametrize("share", [0.5, 1.0])
def test_the_champion_is_the_candidate_whose_product_as_given_out_is_nearest_real_data(raw_db, monkeypatch, share):
    """Under `champion = "real"` the candidates are measured as the run gives them out: screened (and refined)
    by the final population's discriminators when it screens, as they come when it does not."""
    import experiments.evaluate as evaluate
    from arena.metrics import Judge

    pairs = {f"r/player-{i}/9": build_pair(random_genome(np.random.default_rng(i), MutationConfig(), 32, 5))
             for i in range(3)}
    raw_db.individuals.insert_many([{"_id": _id, "run_id": "r", "player": _id.split("/")[1], "generation": 9,
                                     "checkpoint": _id, "fitness": 0.9 - 0.1 * i} for i, _id in enumerate(pairs)])
    monkeypatch.setattr(evaluate, "loadable", lambda checkpoints: {_id: pairs[_id] for _id in checkpoints})
    measured = []

    def distances(sources, real, rng):
        measured.append(sources)
        return np.array([0.3, 0.1, 0.2])  # the second by standing is nearest

    monkeypatch.setattr(evaluate, "distances_to_real", distances)
    summary = evaluate.evaluate_final(raw_db, "r", Judge(ring8()), list(pairs), 3, 0, choice="real", screen=share)
    assert summary["champion"]["individual"] == "r/player-1/9" and summary["champion"]["mmd"] == 0.1
    (sources,) = measured
    members = [pairs[f"r/player-{i}/9"].generator for i in range(3)]
    if share < 1:
        assert all(isinstance(s, Screened) and s.source is g and s.keep == share for s, g in zip(sources, members))
        assert all(len(s.discriminators) == 3 for s in sources)  # the whole final population's
    else:
        assert sources == members


def test_a_discriminator_that_judges_nothing_leaves_the_others_screen_as_it_was():
    """One diverged discriminator (every score not a number) among the judges: left out, it neither turns the
    regions off nor reorders the candidates."""
    class Lost(nn.Module):
        pack = 1

        def forward(self, x):
            return torch.full((len(x),), float("nan"))

    def kept(discriminators):
        return Screened(Spread(), discriminators, ring8(), 0.25, 32).sample(400, torch.Generator().manual_seed(5))

    assert torch.equal(kept([Right(), Lost()]), kept([Right()]))
