"""Refinement: each sample of a product moves along its discriminators' gradient, towards what they find real,
and stops once they score it as real data scores. Discriminator-driven refinement of samples is known from
Tanaka 2019 ("Discriminator optimal transport") and Liu et al. 2020 ("Collaborative sampling in generative
adversarial networks"); here the arena's population of discriminators drives it together, and real training
data sets where a sample stops, never a metric that knows the true modes or labels.

A discriminator can know where the data is before its generator has learnt to put every sample there, and a
mature population's discriminators can keep rising past it. So how far a product goes is settled once, on a
draw of it, by real data (`settled`): refining stops where it would cost precision. The rows of BENCHMARKS.md
cited at `arena.refine` give what this adds (grid25 at 600 s) and where it settles on no steps at all.

Why each choice:
- the objective is the mean over discriminators of their standardised scores (centred and scaled by their
  scores on real samples): losses score on different scales, and no one discriminator should drive alone;
- a packing discriminator judges each sample beside `pack − 1` real partners drawn once, so that every step
  climbs the same function;
- a sample stops once it scores at least the median of real samples' scores: one already as real as real data
  does not move, so the spread within a mode is kept and samples are not piled onto the discriminators' peaks;
- steps follow the gradient's direction, each as long as the sample's own step size, which grows by half
  after a step that raised its score and halves after one that did not (a step that did not is undone): no
  step size to choose per data set, and no step overshoots a peak for long;
- vectors only: on images a step along a discriminator's pixel gradient makes adversarial noise, not digits.
"""

from __future__ import annotations

import torch

from arena.datasets import GaussianMixture, ImageDataset
from genome.build import Discriminator

REAL = 2048  # real samples that centre and scale each discriminator's scores and set where a sample stops
CHUNK = 4096  # samples refined at once: bounded memory for any number of samples
GROW, SHRINK = 1.5, 0.5
K = 3  # neighbours whose distance bounds a sample's ball in `fidelity` (Kynkäänniemi et al.'s choice)
FIRST_STEP = 0.01  # a sample's first step, as a share of the real data's spread (mean standard deviation)
# A sample whose step has shrunk this far (six failures in a row from the first) sits at a peak of the score: it
# stops there, and is not judged again for steps too short to move it.
LAST_STEP = FIRST_STEP / 64
# No step is longer, and no sample ends further from where it started, than the real data's spread: a score that
# keeps rising without reaching real data's (a flat, saturated discriminator far from the data) moves it no further.
REACH = 1.0


def packed(x: torch.Tensor, partners: torch.Tensor) -> torch.Tensor:
    """Each sample beside its `pack − 1` partners, in the consecutive packs a discriminator reads."""
    if partners.shape[1] == 0:
        return x
    return torch.cat([x.unsqueeze(1), partners], dim=1).reshape(-1, *x.shape[1:])


def _rows(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-sample mask or factor shaped to broadcast over samples of `like`'s shape, on its device."""
    return mask.reshape(-1, *[1] * (like.dim() - 1)).to(like.device)


class Committee:
    """The mean standardised score of `discriminators` that can guide (finite, not constant on real data)."""

    def __init__(self, discriminators: list[Discriminator], data: GaussianMixture, rng: torch.Generator):
        self.discriminators, self.data, self.rng = [], data, rng
        real = data.sample(REAL, rng)
        self.shape = real.shape[1:]
        self.centre, self.scale = [], []
        for discriminator in discriminators:
            discriminator.eval()
            with torch.no_grad():
                scores = self._scores(discriminator, real, self.partners(discriminator, len(real)))
            spread = scores.std()
            if torch.isfinite(scores).all() and spread > 0:  # a diverged or constant discriminator cannot guide
                self.discriminators.append(discriminator)
                self.centre.append(scores.mean())
                self.scale.append(spread)
        self.real = real

    @staticmethod
    def _scores(discriminator: Discriminator, x: torch.Tensor, partners: torch.Tensor) -> torch.Tensor:
        device = discriminator.device
        return discriminator(packed(x.to(device), partners.to(device))).float().cpu()

    def partners(self, discriminator: Discriminator, n: int) -> torch.Tensor:
        """`pack − 1` real training samples for each of n samples, on the discriminator's device."""
        drawn = self.data.sample(n * (discriminator.pack - 1), self.rng)
        return drawn.reshape(n, discriminator.pack - 1, *self.shape).to(discriminator.device)

    def scorer(self, n: int):
        """f(x, rows): the score of samples `rows` of a batch of n, each judged beside partners of its own that
        stay the same at every call, so that every step climbs the same function."""
        partners = [self.partners(d, n) for d in self.discriminators]

        def f(x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
            total = 0
            for d, mine, centre, scale in zip(self.discriminators, partners, self.centre, self.scale):
                total = total + (self._scores(d, x, mine[rows.to(mine.device)]) - centre) / scale
            return total / len(self.discriminators)

        return f


def refinable(data: GaussianMixture | ImageDataset, steps: int) -> int:
    """The refinement steps a product of `data` takes under `arena.refine = steps`: none for images."""
    return 0 if isinstance(data, ImageDataset) else steps


def check(data: GaussianMixture | ImageDataset, steps: int) -> None:
    """Refuses steps that are not a non-negative integer, and any on images, in one line naming the value."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"refinement steps must be a non-negative integer; got {steps!r}")
    if steps and isinstance(data, ImageDataset):
        raise ValueError(f"refinement moves vectors, not the images of {data.name} (got {steps} steps): an image's "
                         "pixels moved along a discriminator's gradient gain adversarial noise")


def refine(x: torch.Tensor, discriminators: list[Discriminator], data: GaussianMixture | ImageDataset,
           rng: torch.Generator, steps: int) -> torch.Tensor:
    """`x` after at most `steps` steps of each sample up the discriminators' mean standardised score (see the
    module); samples that score as real data from the start, or that no discriminator can guide, are returned
    as they came."""
    return _refined(x, discriminators, data, rng, steps, (steps,))[-1]


def settled(x: torch.Tensor, discriminators: list[Discriminator], data: GaussianMixture | ImageDataset,
            rng: torch.Generator, steps: int) -> tuple[int, torch.Tensor]:
    """How many of at most `steps` steps a product's samples should take, and `x` after as many: `x` (a draw
    of the product) climbs, and its states after 0, steps/8, steps/4, steps/2 and all steps are compared with
    held-out real training samples by precision and recall (`fidelity`). Of the states whose precision and recall sum to no less
    than the unrefined samples' (no net loss), the most precise gives the count. Real data, never a metric that
    knows the true modes or labels, says whether and how far the discriminators' scores lead towards the data:
    a mature population's lead past it (precision falls), and there the answer is 0."""
    marks = sorted({0, steps // 8, steps // 4, steps // 2, steps})
    states = _refined(x, discriminators, data, rng, steps, tuple(marks))
    if len(states) == 1 or len(x) <= K:
        return 0, x
    real = data.sample(REAL, rng).flatten(1).float()
    reach = _reach(real)
    scores = [fidelity(state.flatten(1).float().cpu(), real, reach) for state in states]
    unrefined = sum(scores[0])
    eligible = [i for i, (precision, recall) in enumerate(scores) if precision + recall >= unrefined]
    chosen = max(eligible, key=lambda i: (scores[i][0], -i))
    return marks[chosen], states[chosen]


def _reach(x: torch.Tensor) -> torch.Tensor:
    """Each sample's distance to its K-th nearest other sample of `x`."""
    return torch.cdist(x, x).kthvalue(K + 1, dim=1).values  # the first nearest is the sample itself


def fidelity(fake: torch.Tensor, real: torch.Tensor, reach: torch.Tensor | None = None) -> tuple[float, float]:
    """Precision and recall of `fake` against `real` samples, both flattened (Kynkäänniemi et al. 2019, with
    their K = 3): the share of fake samples inside some real sample's ball reaching its K-th nearest real
    neighbour (`reach`, when the caller has it), and the share of real samples inside some fake sample's ball
    alike. Samples that leave the data lower the first; samples piled onto few points lower the second."""
    reach = _reach(real) if reach is None else reach
    between = torch.cdist(fake, real)
    precision = (between <= reach[None, :]).any(1).float().mean()
    recall = (between.T <= _reach(fake)[None, :]).any(1).float().mean()
    return float(precision), float(recall)


def _refined(x: torch.Tensor, discriminators: list[Discriminator], data: GaussianMixture | ImageDataset,
             rng: torch.Generator, steps: int, marks: tuple[int, ...]) -> list[torch.Tensor]:
    """`x` after each number of steps in `marks` (ascending, the last `steps`); only `[x]` when nothing moves."""
    check(data, steps)
    if steps == 0 or not discriminators or not len(x):
        return [x]
    committee = Committee(discriminators, data, rng)
    if not committee.discriminators:
        return [x]
    with torch.no_grad():
        everyone = torch.arange(len(committee.real))
        stop = committee.scorer(len(committee.real))(committee.real, everyone).nanmedian()
    if not torch.isfinite(stop):
        return [x]
    spread = float(committee.real.std(0).mean())
    parts = [_climb(part, committee, stop, spread, marks) for part in x.split(CHUNK)]
    return [torch.cat(states) for states in zip(*parts)]


def _climb(x: torch.Tensor, committee: Committee, stop: torch.Tensor, spread: float,
           marks: tuple[int, ...]) -> list[torch.Tensor]:
    """Each sample of `x` up the committee's score until it reaches `stop` (see the module), its states after
    each number of steps in `marks`; only samples still below it are judged at each step."""
    f = committee.scorer(len(x))
    origin = x.detach()
    x = origin.clone()
    with torch.no_grad():
        score = f(x, torch.arange(len(x)))
    step = torch.full((len(x),), FIRST_STEP * spread)
    states = [x.clone() for mark in marks if mark == 0]
    for taken in range(1, marks[-1] + 1):
        rows = torch.nonzero(torch.isfinite(score) & (score < stop) & (step > LAST_STEP * spread)).flatten()
        if not len(rows):
            break
        here = x[rows.to(x.device)]
        with torch.enable_grad():  # callers may sample under no_grad; this step needs the gradient
            moving = here.clone().requires_grad_(True)
            gradient, = torch.autograd.grad(f(moving, rows).sum(), moving)
        gradient = torch.nan_to_num(gradient.detach().flatten(1), nan=0.0, posinf=0.0, neginf=0.0)
        norm = gradient.norm(dim=1, keepdim=True)
        direction = torch.where(norm > 0, gradient / norm.clamp(min=1e-12), torch.zeros_like(gradient))
        trial = here + _rows(step[rows], here) * direction.reshape(here.shape)
        within = (trial - origin[rows.to(x.device)]).flatten(1).norm(dim=1).cpu() <= REACH * spread
        with torch.no_grad():
            tried = f(trial, rows)
        better = within & (tried > score[rows])  # a step that does not raise the score is not taken
        x[rows[better].to(x.device)] = trial[better.to(x.device)]
        score[rows[better]] = tried[better]
        step[rows] = torch.where(better, torch.clamp(step[rows] * GROW, max=REACH * spread), step[rows] * SHRINK)
        if taken in marks:
            states.append(x.clone())
    # Every sample that stopped early is where it would be after any later mark.
    return states + [x.clone() for _ in range(len(marks) - len(states))]
