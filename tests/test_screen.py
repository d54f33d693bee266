"""Screening: the samples discriminators rank most real are kept, whatever the scale of their scores."""

import numpy as np
import pytest
import torch
from torch import nn

from arena.config import ArenaConfig
from arena.datasets import ring8
from arena.ensemble import Mixture
from arena.screen import Screened, realness
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
    kept = Screened(Spread(), [Near()], ring8(), 0.25).sample(100, torch.Generator().manual_seed(0))
    candidates = Spread().sample(400, torch.Generator().manual_seed(0))  # the same stream: the same candidates
    nearest = candidates[candidates.norm(dim=1).argsort()[:100]]
    assert kept.shape == (100, 2)
    assert sorted(kept.norm(dim=1).tolist()) == pytest.approx(sorted(nearest.norm(dim=1).tolist()))
    assert not torch.equal(kept, nearest)  # shuffled, not in the order of their ranks


def test_scores_count_by_rank_so_no_discriminator_outweighs_another_by_its_scale():
    rng = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    one = Screened(Spread(), [Near(1.0)], ring8(), 0.5).sample(64, rng())
    both = Screened(Spread(), [Near(1e-3), Near(1e3)], ring8(), 0.5).sample(64, rng())
    assert torch.equal(one, both)


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


def test_a_screen_of_real_pairs_runs_on_any_pack_and_mixture():
    genomes = [random_genome(np.random.default_rng(i), MutationConfig(), 64, 10, pack=p) for i, p in enumerate((1, 2))]
    pairs = [build_pair(g) for g in genomes]
    source = Mixture([p.generator for p in pairs])
    screened = Screened(source, [p.discriminator for p in pairs], ring8(), 0.5).sample(33, torch.Generator())
    assert screened.shape == (33, 2) and torch.isfinite(screened).all()
    assert not pairs[0].generator.training  # products are sampled in eval mode


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
    assert "champion, screened (keeps 0.5)" in text and "0.8" in text
    assert text.index("final") < text.index("champion, screened")


@pytest.mark.parametrize("screens", ["0.5,x", "0", "1.5", "nan"])
def test_the_quality_benchmark_refuses_a_bad_share_naming_it(screens, capsys):
    from experiments import cli
    from experiments.bench.__main__ import app

    assert cli.run_app(app, ["quality", "--screens", screens]) == 2
    assert "--screens takes shares in (0, 1]" in capsys.readouterr().err
