"""Refinement: samples climb the discriminators' scores until they score as real data do, and no further."""

import numpy as np
import pytest
import torch
from torch import nn

from arena.config import ArenaConfig
from arena.datasets import ImageDataset, ring8
from arena.metrics import mixture_quality
from arena.refine import fidelity, refinable, refine, settled
from arena.screen import Screened
from experiments.summaries import product_screen, screen_words
from genome import build_pair
from genome.operators import MutationConfig
from genome.population import random_genome

RING = ring8()
MEANS = torch.as_tensor(RING.means, dtype=torch.float32)


def distance(x: torch.Tensor) -> torch.Tensor:
    """Each sample's distance to its nearest mode of ring8."""
    return torch.cdist(x.float(), MEANS).min(dim=1).values


class ModeNear(nn.Module):
    """Scores a sample higher the nearer it lies to a mode of ring8, on its own scale; reads packs of `pack`
    and scores each by its first sample, keeping what it was shown."""

    device = torch.device("cpu")

    def __init__(self, scale=1.0, pack=1):
        super().__init__()
        self.scale, self.pack, self.seen = scale, pack, []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        first = x.reshape(len(x) // self.pack, self.pack, -1)[:, 0]
        return -self.scale * distance(first)


class Diverged(ModeNear):
    def forward(self, x):
        return torch.full((len(x) // self.pack,), float("nan"))


def between_modes(n: int) -> torch.Tensor:
    """Points well inside the ring, off each mode's angle a little (nearest each mode in turn): none of high
    quality."""
    angle = 2 * torch.pi * (torch.arange(n) % 8 + 0.2) / 8
    return 0.8 * torch.stack([angle.cos(), angle.sin()], dim=1)


def test_samples_between_modes_climb_onto_them_and_real_ones_stay_where_they_are():
    far = between_modes(64)
    real = RING.sample(64, torch.Generator().manual_seed(3))
    refined = refine(torch.cat([far, real]), [ModeNear(1e3), ModeNear(1e-3)], RING, torch.Generator().manual_seed(1),
                     steps=200)
    assert mixture_quality(far.numpy(), RING)["high_quality"] == 0
    assert mixture_quality(refined[:64].numpy(), RING) == {"modes": 8, "high_quality": 1.0, "kl": pytest.approx(0.0)}
    # The climbers stop once as near their mode as the median real sample (the stop, from 2,048 real samples)
    typical = distance(RING.sample(2048, torch.Generator().manual_seed(9))).median()
    assert distance(refined[:64]).max() <= 1.2 * typical
    # and a real sample nearer its mode than that scores as real data do: it does not move.
    near = distance(real) <= 0.8 * typical
    assert near.sum() > 10
    assert torch.equal(refined[64:][near], real[near])


class Liar(ModeNear):
    """Scores a sample by its distance to the modes, as ModeNear, but its gradient points away from them."""

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return distance(x) - 2 * distance(x).detach()


def test_a_step_that_does_not_raise_the_score_is_not_taken_and_the_next_is_half_as_long():
    far = between_modes(8)
    judge = Liar()
    assert torch.equal(refine(far, [judge], RING, torch.Generator().manual_seed(0), steps=20), far)
    climbers = [x for x in judge.seen if len(x) == 8]  # their first score, then each step's gradient and trial
    moves = [(trial - far).norm(dim=1).mean().item() for trial in climbers[2::2][:4]]
    assert moves[0] > 0 and moves[1:] == pytest.approx([moves[0] / 2, moves[0] / 4, moves[0] / 8], rel=1e-4)


class Linear(ModeNear):
    """Scores a sample by its first coordinate, at its own scale: a score that rises for ever."""

    def forward(self, x):
        return self.scale * x[:, 0]


def test_scores_are_standardised_so_no_discriminator_drives_alone_and_no_sample_goes_far():
    far = between_modes(16)
    # Opposite preferences a million times apart in scale (powers of two, exact): standardised, they cancel.
    assert torch.equal(refine(far, [Linear(2.0 ** 10), Linear(-(2.0 ** -10))], RING, torch.Generator(), steps=50),
                       far)
    # One score that rises for ever: samples left of the median real one go right, none further than the real
    # data's spread.
    right = refine(far, [Linear(1e-3)], RING, torch.Generator().manual_seed(0), steps=200)
    spread = float(RING.sample(2048, torch.Generator()).std(0).mean())
    assert (right[:, 0] >= far[:, 0]).all() and (right[:, 0] > far[:, 0]).sum() >= 4
    assert (right - far).norm(dim=1).max() <= spread * 1.05


def test_a_packing_discriminator_reads_each_sample_beside_real_partners_the_same_at_every_step():
    judge = ModeNear(pack=3)
    refine(between_modes(16), [judge], RING, torch.Generator().manual_seed(0), steps=3)
    shown = [x.reshape(-1, 3, 2) for x in judge.seen if len(x) == 16 * 3]  # the climbers' packs, not real data's
    assert len(shown) >= 3
    partners = [packs[:, 1:] for packs in shown]
    assert all(torch.equal(p, partners[0]) for p in partners)
    assert distance(partners[0].reshape(-1, 2)).max() < 6 * RING.sigma  # real samples of ring8


def test_discriminators_that_cannot_guide_are_left_out():
    far = between_modes(16)
    assert torch.equal(refine(far, [Diverged()], RING, torch.Generator(), steps=10), far)
    with_one = refine(far, [Diverged(), ModeNear()], RING, torch.Generator().manual_seed(0), steps=200)
    assert mixture_quality(with_one.numpy(), RING)["high_quality"] == 1.0


def test_samples_are_refined_in_chunks_each_with_partners_of_its_own(monkeypatch):
    import arena.refine

    monkeypatch.setattr(arena.refine, "CHUNK", 7)
    judge = ModeNear(pack=2)
    refined = refine(between_modes(20), [judge], RING, torch.Generator().manual_seed(0), steps=100)
    assert refined.shape == (20, 2) and mixture_quality(refined.numpy(), RING)["high_quality"] == 1.0
    assert {len(x) // 2 for x in judge.seen} >= {7, 6}  # chunks of 7, 7 and 6 samples (and fewer as they stop)


def test_a_sample_whose_score_is_not_a_number_is_given_as_it_came():
    class Holes(ModeNear):
        def forward(self, x):  # not a number inside the ring near one mode: real samples lie on the ring
            return torch.where((x[:, 0] > 0.7) & (x.norm(dim=1) < 0.9), torch.nan, -distance(x))

    far = between_modes(16)
    refined = refine(far, [Holes()], RING, torch.Generator().manual_seed(0), steps=100)
    holes = (far[:, 0] > 0.7) & (far.norm(dim=1) < 0.9)
    assert holes.any() and torch.equal(refined[holes], far[holes])
    assert (distance(refined[~holes]) < distance(far[~holes])).all()


def test_no_steps_no_discriminators_or_no_samples_change_nothing():
    far = between_modes(4)
    assert refine(far, [ModeNear()], RING, torch.Generator(), steps=0) is far
    assert refine(far, [], RING, torch.Generator(), steps=5) is far
    empty = torch.zeros(0, 2)
    assert refine(empty, [ModeNear()], RING, torch.Generator(), steps=5) is empty


@pytest.mark.parametrize("steps", [-1, 2.5, True])
def test_bad_refinement_steps_are_refused_naming_the_value(steps):
    with pytest.raises(ValueError, match=f"non-negative integer; got {steps!r}"):
        refine(between_modes(2), [ModeNear()], RING, torch.Generator(), steps=steps)
    with pytest.raises(ValueError, match=f"arena.refine must be a non-negative integer; got {steps!r}"):
        ArenaConfig(refine=steps)


def test_images_are_not_refined():
    images = ImageDataset("tiny", torch.zeros(20, 1, 4, 4), torch.zeros(20, dtype=torch.long), held_out=4)
    with pytest.raises(ValueError, match="adversarial noise"):
        Screened(between_modes(2), [ModeNear()], images, 0.5, refine=10)
    with pytest.raises(ValueError, match="adversarial noise"):
        refine(torch.zeros(2, 1, 4, 4), [ModeNear()], images, torch.Generator(), steps=10)
    assert refinable(images, 100) == 0 and refinable(RING, 100) == 100


class Between:
    def sample(self, n, rng):
        return between_modes(n)


@torch.no_grad()  # as products are judged: the climb takes its gradients all the same
def test_a_screen_that_keeps_everything_still_refines():
    refined = Screened(Between(), [ModeNear()], RING, 1.0, refine=200).sample(32, torch.Generator().manual_seed(0))
    assert mixture_quality(refined.numpy(), RING)["high_quality"] == 1.0
    unrefined = Screened(Between(), [ModeNear()], RING, 1.0).sample(32, torch.Generator().manual_seed(0))
    assert torch.equal(unrefined, between_modes(32))


def test_real_pairs_refine_on_any_pack_in_eval_mode():
    genomes = [random_genome(np.random.default_rng(i), MutationConfig(), 64, 10, pack=p) for i, p in enumerate((1, 2, 4))]
    pairs = [build_pair(g) for g in genomes]
    for pair in pairs:
        pair.discriminator.train()
    x = pairs[0].generator.sample(50, torch.Generator()).detach()
    refined = refine(x, [p.discriminator for p in pairs], RING, torch.Generator().manual_seed(0), steps=5)
    assert refined.shape == x.shape and torch.isfinite(refined).all() and not refined.requires_grad
    assert not any(p.discriminator.training for p in pairs)
    assert all(q.grad is None for p in pairs for q in p.discriminator.parameters())  # only the samples' gradient


def test_products_and_baselines_are_refined_with_a_screen_that_keeps_everything():
    from arena.metrics import Judge
    from experiments.bench.baselines import pooled
    from experiments.evaluate import screened_quality

    judge = Judge(RING)
    assert screened_quality(Between(), [ModeNear()], judge, 1.0, 0)["high_quality"] == 0  # as they come
    assert screened_quality(Between(), [ModeNear()], judge, 1.0, 0, refine=200)["high_quality"] == 1.0
    genomes = [random_genome(np.random.default_rng(i), MutationConfig(), 64, 10) for i in range(2)]
    pairs = [build_pair(g) for g in genomes]
    raw, none = pooled(pairs, RING, judge, 0, 1.0)
    assert none is None
    raw, refined = pooled(pairs, RING, judge, 0, 1.0, refine=5)
    assert refined is not None and set(refined) == set(raw)


def test_a_refined_product_says_so_in_words():
    assert screen_words(0.125, 128, 100) == "keeps 0.125, within 128 regions, refined 100 steps"
    assert screen_words(1, 0, 100) == "refined 100 steps" and screen_words(1, 0, 1) == "refined 1 step"
    assert screen_words(1) == "unscreened" and screen_words(0.5, 0) == "keeps 0.5, over all"
    assert product_screen({"screen": 1, "screen_regions": 128, "refine": 20}) == "refined 20 steps"
    assert product_screen({"screen": 0.5, "screen_regions": 128}) == "keeps 0.5, within 128 regions"


def test_precision_falls_for_samples_off_the_data_and_recall_for_samples_piled_on_few_points():
    real = RING.sample(512, torch.Generator().manual_seed(0))
    alike = RING.sample(512, torch.Generator().manual_seed(1))
    precision, recall = fidelity(alike, real)
    assert precision > 0.8 and recall > 0.8
    assert fidelity(alike + 10, real)[0] == 0  # all off the data
    piled = real[:4].repeat(128, 1)  # on the data, on four points of it
    precision, recall = fidelity(piled, real)
    assert precision == 1 and recall < 0.1


class Outward(ModeNear):
    """Scores a sample higher the further it lies from the centre: past the ring, off the data."""

    def forward(self, x):
        first = x.reshape(len(x) // self.pack, self.pack, -1)[:, 0]
        return first.norm(dim=1)


def test_refinement_goes_as_far_as_real_data_says_and_not_at_all_where_it_leads_off_it():
    jitter = 0.05 * torch.randn(512, 2, generator=torch.Generator().manual_seed(2))
    start = between_modes(512) + jitter
    onto, refined = settled(start, [ModeNear()], RING, torch.Generator().manual_seed(0), steps=64)
    assert onto > 0 and distance(refined).mean() < distance(start).mean()
    real = RING.sample(512, torch.Generator().manual_seed(3))
    assert not torch.equal(refine(real, [Outward()], RING, torch.Generator().manual_seed(0), steps=64), real)
    assert settled(real, [Outward()], RING, torch.Generator().manual_seed(0), steps=64)[0] == 0
    steps, same = settled(real, [Outward()], RING, torch.Generator().manual_seed(0), steps=0)
    assert steps == 0 and torch.equal(same, real)


@torch.no_grad()
def test_a_screen_settles_its_refinement_once_on_a_first_draw():
    screen = Screened(RealSource(), [Outward()], RING, 1.0, refine=64)
    first = screen.sample(16, torch.Generator().manual_seed(0))
    assert screen.steps == 0  # real samples led off the data: not refined
    assert first.shape == (16, 2)
    screen.source = Between()
    screen.sample(16, torch.Generator().manual_seed(1))
    assert screen.steps == 0  # settled once, per product


@torch.no_grad()
def test_a_draw_large_enough_settles_on_itself_and_climbs_once(monkeypatch):
    import arena.screen

    def again(*args, **kwargs):
        raise AssertionError("climbed a second time")

    monkeypatch.setattr(arena.screen, "refine", again)
    jitter = 0.05 * torch.randn(arena.screen.SETTLE, 2, generator=torch.Generator().manual_seed(2))

    class Jittered:
        def sample(self, n, rng):
            return between_modes(n) + jitter[:n]

    screen = Screened(Jittered(), [ModeNear()], RING, 1.0, refine=64)
    refined = screen.sample(arena.screen.SETTLE, torch.Generator().manual_seed(0))
    assert screen.steps > 0 and distance(refined).mean() < distance(Jittered().sample(len(jitter), None)).mean()


class RealSource:
    def sample(self, n, rng):
        return RING.sample(n, rng)


class Bump(ModeNear):
    """A low peak at the centre, below every real sample's score on the ring: a sample there cannot climb."""

    def forward(self, x):
        self.seen.append(x.detach().clone())
        first = x.reshape(len(x) // self.pack, self.pack, -1)[:, 0]
        radius = first.norm(dim=1)
        ring = MEANS.norm(dim=1).mean()
        return torch.exp(-radius ** 2) + 2 * torch.exp(-(radius - ring) ** 2 / 0.01)


def test_a_sample_at_a_peak_below_real_data_stops_once_its_steps_are_too_short_to_move_it():
    judge = Bump()
    centre = torch.zeros(4, 2)
    assert torch.equal(refine(centre, [judge], RING, torch.Generator().manual_seed(0), steps=100), centre)
    # real scores, the stop, the first score; then a gradient and a trial per step, for six failed steps
    assert len(judge.seen) == 3 + 2 * 6
