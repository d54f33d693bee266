"""Quality metrics on constructed samples with known answers, the classifier behind FID, ensembles."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from arena.datasets import ImageDataset, digits, grid25, ring8
from arena.ensemble import (EXPONENT_FLOOR, SCALES, Mixture, RealReference, _generated, _kernel_mean, _kernel_means,
                            distances_to_real, fit_weights, local_scale)
from arena.metrics import Judge, frechet_distance, load_classifier, mixture_quality, train_classifier
from genome import build_pair
from genome.operators import MutationConfig
from genome.population import conventional_genome


@pytest.mark.parametrize("data", [ring8(), grid25()], ids=["ring8", "grid25"])
def test_all_samples_on_one_mode_capture_one_mode(data):
    samples = np.tile(data.means[3], (2500, 1)) + data.sigma * np.random.default_rng(0).normal(size=(2500, 2))
    quality = mixture_quality(samples, data)
    assert quality["modes"] == 1 and quality["high_quality"] > 0.98
    assert quality["kl"] == pytest.approx(math.log(len(data.means)), abs=1e-9)


@pytest.mark.parametrize("data", [ring8(), grid25()], ids=["ring8", "grid25"])
def test_the_exact_mixture_captures_every_mode_with_kl_near_zero(data):
    quality = mixture_quality(data.sample(2500, torch.Generator().manual_seed(0)).numpy(), data)
    assert quality["modes"] == len(data.means)
    assert quality["high_quality"] > 0.98 and quality["kl"] < 0.02


def test_samples_far_from_every_mode_are_low_quality():
    quality = mixture_quality(np.full((100, 2), 50.0), ring8())
    assert quality == {"modes": 0, "high_quality": 0.0, "kl": pytest.approx(math.log(8))}


def test_frechet_distance_of_a_set_against_itself_is_zero_and_grows_with_a_shift():
    features = np.random.default_rng(0).normal(size=(2000, 10))
    assert frechet_distance(features, features) == pytest.approx(0.0, abs=1e-4)
    assert frechet_distance(features + 1.0, features) == pytest.approx(10.0, rel=1e-3)


@pytest.fixture(scope="module")
def digits_judge(tmp_path_factory):
    import os

    os.environ["ARENA_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield Judge(digits())
    del os.environ["ARENA_CACHE"]


@pytest.mark.xdist_group("digits_judge")  # one worker sets the shared digits_judge up once
def test_the_classifier_is_trained_once_cached_and_accurate(digits_judge):
    assert digits_judge.images.test_accuracy > 0.9
    torch.manual_seed(3)
    model, accuracy = load_classifier(digits())  # from the cache: same weights, same accuracy
    drawn = torch.rand(4)
    torch.manual_seed(3)
    assert torch.equal(drawn, torch.rand(4))  # loading it drew nothing from the caller's seeded stream
    assert accuracy == digits_judge.images.test_accuracy
    for a, b in zip(model.state_dict().values(), digits_judge.images.classifier.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.xdist_group("digits_judge")  # one worker sets the shared digits_judge up once
def test_real_images_score_far_better_than_noise(digits_judge):
    real, _ = digits().split("train")
    good = digits_judge.quality(real[:1000])
    noise = digits_judge.quality(torch.rand(1000, 1, 8, 8) * 2 - 1)
    assert good["fid"] < noise["fid"] / 5 and good["tvd"] < 0.2 < noise["tvd"]
    one_class = digits_judge.quality(real[digits().split("train")[1] == 3][:200])
    assert one_class["tvd"] > 0.8  # every sample is a 3: the class distribution is far from real


def test_training_the_classifier_leaves_the_callers_random_state_alone():
    """A player that trains the judge's classifier draws afterwards what it would have drawn without it,
    and the classifier is still a function of its own seed (issue 12)."""
    full = digits()
    small = ImageDataset("small", full.images[:160], full.labels[:160], held_out=32)
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    first, _ = train_classifier(small, epochs=1)
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(99)  # a different caller state gives the same classifier
    second, _ = train_classifier(small, epochs=1)
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)


class Fixed:
    """Stands in for a generator: draws from the data, or always one far-off point."""

    def __init__(self, data=None):
        self.data = data

    def eval(self):
        return self

    def sample(self, n, rng):
        return self.data.sample(n, rng) if self.data else torch.full((n, 2), 9.0)


def test_a_mixture_draws_from_its_members_by_weight():
    mixture = Mixture([Fixed(), Fixed(ring8())], np.array([0.25, 0.75]))
    samples = mixture.sample(4000, torch.Generator().manual_seed(0))
    assert samples.shape == (4000, 2)
    assert (samples[:, 0] == 9.0).float().mean().item() == pytest.approx(0.25, abs=0.03)


class Modes:
    """A generator that draws only from the given modes of a mixture (a partial, collapsed one)."""

    def __init__(self, data, modes, blur=1.0):
        self.data, self.modes, self.blur = data, list(modes), blur  # blur: its spread, in the modes' sigmas

    def eval(self):
        return self

    def sample(self, n, rng):
        means = torch.as_tensor(self.data.means[self.modes], dtype=torch.float32)
        pick = torch.randint(len(means), (n,), generator=rng)
        return means[pick] + self.blur * self.data.sigma * torch.randn(n, 2, generator=rng)


def test_fitted_weights_favour_the_better_generator_from_real_data_alone():
    data = ring8()
    rng = torch.Generator().manual_seed(0)
    mixture = Mixture([Fixed(), Fixed(data)])
    weights = fit_weights(mixture, data.sample(1000, rng), rng)
    assert weights[1] > 0.95 and weights.sum() == pytest.approx(1.0)
    assert mixture.weights is weights


def test_fitted_weights_combine_generators_that_cover_different_modes():
    """Two halves of ring8 and a third generator on one mode only: the fit gives the halves even weight
    (together they are the data) and the one-mode generator little, using real samples only."""
    data = ring8()
    rng = torch.Generator().manual_seed(1)
    mixture = Mixture([Modes(data, range(4)), Modes(data, range(4, 8)), Modes(data, [0])])
    weights = fit_weights(mixture, data.sample(2000, rng), rng)
    assert weights[0] == pytest.approx(0.5, abs=0.1) and weights[1] == pytest.approx(0.5, abs=0.1)
    assert weights[2] < 0.1
    judged = Judge(data).quality(mixture.sample(2500, rng))
    assert judged["modes"] == 8


def test_a_collapsed_generator_is_further_from_real_data_than_one_that_covers_the_modes():
    data = grid25()
    rng = torch.Generator().manual_seed(2)
    distances = distances_to_real([Modes(data, [7]), Modes(data, range(25)), Modes(data, range(0, 25, 2))],
                                  data.sample(1024, rng), rng)
    assert distances[1] < distances[2] < distances[0]
    assert distances[1] < distances[2] / 3  # half the modes dropped is seen, not lost in the sampling noise


def test_distances_measured_apart_against_one_real_reference_rank_as_measured_together():
    """Players measure their own generators apart; with one reference (the same real samples and
    kernel) their distances compare, and rank coverage as `distances_to_real` does."""
    data = grid25()
    reference = RealReference(data.sample(512, torch.Generator().manual_seed(0)))
    generators = [Modes(data, [7]), Modes(data, range(25)), Modes(data, range(0, 25, 2))]
    apart = [reference.distance(g, torch.Generator().manual_seed(1)) for g in generators]
    assert apart[1] < apart[2] < apart[0]
    assert apart[1] < apart[2] / 3
    rng = torch.Generator().manual_seed(1)
    # The statistic itself: real samples are nearer the reference than half of the modes are.
    assert reference.distances([data.sample(512, rng)])[0] < reference.distances([Modes(data, range(0, 25, 2)).sample(512, rng)])[0]


def test_a_distance_measured_in_a_loop_leaves_the_generator_untouched():
    """No graph is built and a normalisation's running statistics do not move: measuring is not training."""
    genome = conventional_genome(np.random.default_rng(0), MutationConfig(), 16, 5, (1, 8, 8))  # batch-normed
    generator = build_pair(genome).generator.train()
    assert any("running_mean" in k for k in generator.state_dict())
    before = {k: v.clone() for k, v in generator.state_dict().items()}
    reference = RealReference(torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1)
    assert reference.distance(generator, torch.Generator().manual_seed(1)) > 0
    assert all(torch.equal(before[k], v) for k, v in generator.state_dict().items())
    samples = _generated([generator], torch.Generator().manual_seed(1), 8)[0]
    assert not samples.requires_grad


def test_the_local_scale_is_the_median_nearest_neighbour_distance_of_distinct_real_samples():
    # Four points on a line, 1, 1 and 2 apart (nearest: 1, 1, 1, 2): median 1; a repeat would be a neighbour at 0.
    line = torch.tensor([[0.0], [1.0], [2.0], [4.0]])
    assert local_scale(line) == 1.0
    assert local_scale(torch.cat([line, line[:3]])) == 1.0
    assert local_scale(torch.zeros(5, 2)) == local_scale(torch.zeros(1, 2)) == 1.0  # no two distinct: no grain
    # Read from the first 512 only, whatever the caller holds: a nearest neighbour is nearer among more samples.
    real = grid25().sample(2048, torch.Generator().manual_seed(0))
    among_all = torch.cdist(real, real).fill_diagonal_(float("inf")).min(1).values.median()
    assert local_scale(real) == local_scale(real[:512]) > 1.5 * float(among_all)
    assert local_scale(real) == pytest.approx(0.02, abs=0.01)  # under grid25's sigma of 0.05


def test_distances_to_real_keep_their_old_arithmetic():
    """Built on RealReference now: the same numbers as the sum over bandwidths of within − 2·cross + real."""
    data = grid25()
    rng = torch.Generator().manual_seed(3)
    generators = [Modes(data, [7]), Modes(data, range(25))]
    real = data.sample(256, rng)
    got = distances_to_real(generators, real, torch.Generator().manual_seed(4), samples=256)
    parts = [generators[0].sample(256, r := torch.Generator().manual_seed(4)), generators[1].sample(256, r)]
    scale = local_scale(real)
    want = np.zeros(2)
    for bandwidth in (scale * s for s in SCALES):
        want += np.diag(_kernel_means(parts, parts, bandwidth)) - 2 * _kernel_means(parts, [real], bandwidth)[:, 0] \
            + _kernel_means([real], [real], bandwidth)[0, 0]
    assert np.allclose(got, want, rtol=1e-6, atol=1e-9)


def test_the_kernels_floored_exponent_leaves_the_distance_as_the_plain_exponential_gives_it():
    """Most of grid25's pairs sit far apart at its grain, their kernel underflowing: floored at e^-80 (for
    speed) the distance is the one the plain exponential gives, to float precision, for generators on one mode,
    on half of them and on all; and the floor is above float32's smallest normal, where it speeds exp up."""
    assert float(torch.exp(torch.tensor(EXPONENT_FLOOR))) >= torch.finfo(torch.float32).tiny
    data = grid25()
    real = data.sample(512, torch.Generator().manual_seed(5))
    reference = RealReference(real)
    for modes in ([3], range(0, 25, 2), range(25)):
        fake = Modes(data, modes).sample(512, torch.Generator().manual_seed(6))
        plain = 0.0
        for bandwidth in reference.bandwidths:
            def kernel(x, y):
                return float(torch.exp(-torch.cdist(x, y).pow(2) / (2 * bandwidth ** 2)).mean())
            plain += kernel(fake, fake) - 2 * kernel(fake, real) + kernel(real, real)
        squared = torch.cdist(fake, real).pow(2) / (2 * reference.bandwidths[0] ** 2)
        assert float((squared > 87).float().mean()) > 0.5  # the pairs the floor speeds up: most of them
        assert reference.distances([fake])[0] == pytest.approx(plain, rel=1e-6, abs=1e-12)


def test_a_kernel_mean_computed_in_place_gives_the_out_of_place_value_to_the_bit_and_leaves_its_input():
    """Every bandwidth reads the same squared distances: the in-place steps work on a copy of them, and give
    what the plain expression (three new tensors) gives, floored pairs included."""
    data = grid25()
    fake, real = (data.sample(512, torch.Generator().manual_seed(seed)) for seed in (7, 8))
    squared = torch.cdist(fake, real).pow(2)
    kept = squared.clone()
    for bandwidth in RealReference(real).bandwidths:
        plain = float(torch.exp((squared / (-2 * bandwidth ** 2)).clamp_min(EXPONENT_FLOOR)).mean())
        assert _kernel_mean(squared, bandwidth) == plain
        assert torch.equal(squared, kept)
    # the floor itself, which a mean over many pairs would hide: a pair far beyond it gives e^-80, not 0
    assert _kernel_mean(torch.tensor([[1e4]]), 1.0) == float(torch.exp(torch.tensor(EXPONENT_FLOOR))) > 0


def test_fitted_weights_see_modes_the_median_kernel_misses():
    """Half of grid25's modes beside all of them: the median distance alone (about 4.9) can barely tell
    them apart and splits the weight; the kernel summed over the data's own grain gives the whole one nearly
    all."""
    data = grid25()
    rng = torch.Generator().manual_seed(0)
    real = data.sample(1000, rng)
    fine = fit_weights(Mixture([Modes(data, range(0, 25, 2)), Modes(data, range(25))]), real, rng)
    median = float(torch.cdist(real[:512], real[:512]).median()) / local_scale(real)  # in the ladder's unit
    coarse = fit_weights(Mixture([Modes(data, range(0, 25, 2)), Modes(data, range(25))]), real, rng, scales=(median,))
    assert fine[1] > 0.85 and fine[1] > coarse[1] + 0.2


def test_distance_to_real_sees_how_tightly_samples_sit_on_the_modes():
    """Every grid25 mode, tight (the data's own spread) or blurred (twice it: a third of the samples off the
    modes by the high-quality measure), ten draws of 512 samples each against as many real references: on
    bandwidths from the data's own grain up (`local_scale`), the blur stands clear of the draws' spread; on the
    old ladder, from the median pairwise distance down to a thirty-second of it, it is lost in that spread
    (the wide kernels' sampling noise). Two modes dropped are seen at least as well as on the old one."""
    data, rng = grid25(), torch.Generator().manual_seed(0)
    old = (1 / 32, 1 / 16, 0.125, 0.25, 0.5, 1.0)
    kinds = {"tight": Modes(data, range(25)), "blurred": Modes(data, range(25), 2.0), "23 modes": Modes(data, range(23))}
    local, median = {k: [] for k in kinds}, {k: [] for k in kinds}
    for _ in range(10):
        real = data.sample(512, rng)
        parts = [kind.sample(512, rng) for kind in kinds.values()]
        for got, reference in ((local, RealReference(real)),
                               (median, RealReference(real, float(torch.cdist(real, real).median()), old))):
            for kind, distance in zip(kinds, reference.distances(parts)):
                got[kind].append(distance)

    def separation(got, kind):  # how far a kind stands from the tight one, in the draws' spread
        return (np.mean(got[kind]) - np.mean(got["tight"])) / max(np.std(got[kind]), np.std(got["tight"]))

    assert separation(local, "blurred") > 3 and separation(median, "blurred") < 1
    assert separation(local, "23 modes") > separation(median, "23 modes")