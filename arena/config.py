"""The arena's own settings: how players train, fight and choose parents."""

from __future__ import annotations

from dataclasses import dataclass, replace

from arena.selection import CHAMPIONS, CULLS, EXPLOITS, EXPLORES, MATCHMAKING
from genome.genes import is_image
from genome.population import architecture_on

SCHEDULES = ("async", "barrier")
FOUNDERS = ("random", "conventional")


# `exploit`s left to the data (`ArenaConfig.exploit_on`): auto (the default from 7 December, 11:00, until never), or
# by_data (a default of 7 December's morning), each kept for the runs recorded with it.
EXPLOIT_AUTO, EXPLOIT_BY_DATA = "auto", "by_data"
EXPLOIT_CHOICES = (*EXPLOITS, EXPLOIT_AUTO, EXPLOIT_BY_DATA)
# Integer settings whose -1 a run resolves when it starts (`ArenaConfig.for_data`), with what each takes (validated
# alike, one message form): each -1 is left to the data but metrics_every's, every 10th on any data.
BY_DATA_INTEGERS = {"round_every": "-1 (by the data), 0 (never) or a positive integer",
                    "ready": "-1 (by the data) or a number of loops (0 or more)",
                    "replay": "-1 (by the data), 0 (off) or a capacity",
                    "shared_fakes": "-1 (by the data), 0 (off) or a capacity",
                    "metrics_every": "-1 (every 10th), 0 (the final population only) or a positive integer"}


def lr_scale(progress: float, final: float) -> float:
    """A linear decay from 1 at progress 0 to `final` at progress 1 (clipped to that range)."""
    return 1 - (1 - final) * min(1.0, max(0.0, progress))


@dataclass(frozen=True)
class ArenaConfig:
    """Settable under `[arena]` in the TOML."""

    opponents: int = 3
    """How many opponents a player fights per loop (fewer when fewer are published)."""
    duel_samples: int = 256
    """Samples each side generates per duel; also the real samples shown to each discriminator."""
    tournament_size: int = 3
    """Entrants per tournament when choosing a parent."""
    batch_size: int = 0
    """Batch size of first-generation genomes (children inherit theirs). 0: by the data (`first_batch`), 64 on
    images (the one-GAN baseline's, as in PyTorch's DCGAN example) and 128 on vector data. On mnist at 1,800 s,
    one seed each, the same code and founders, batch 64 took the champion from FID 15.68, TVD 0.130 to 8.42,
    0.098 and the mixture from 16.05, 0.132 to 8.61, 0.087 (BENCHMARKS.md rows 2026-12-06T05:03:20 and 05:38:47):
    a step costs about half, so a lineage trains nearly twice the steps in the same CPU time. Images were
    measured on mnist only (digits takes the same rule). On grid25, 64 led at the short budget (120 s, champion
    32.1 against 24.7 % high quality, rows 2026-12-06T06:48:06 and 03:43:44) but not at the stated one (600 s,
    3 seeds: 25 / 95.6 % / KL 0.010 against 25 / 96.6 % / 0.004 at 128, rows 07:32:44 and 01:21:25): vector data
    keeps 128."""
    steps: int = 200
    """Training steps per loop of first-generation genomes (children inherit theirs). 200 rather than 100 because
    it is at least as good where both were measured and cheaper (BENCHMARKS.md): grid25 at 600 s, 3 seeds,
    champion 25 modes / 96.6 % / KL 0.004 against 25 / 96.1 % / 0.007 (rows 2026-12-06T01:21:25 and
    2026-12-05T23:49:26, the same runs' settings and screen); mnist at 1,800 s, one seed, champion FID 18.75
    against 20.45 but TVD 0.136 against 0.129, the mixture level (rows 2026-12-06T02:27:38 and 03:03:46); ring8 at
    600 s, measured at 200 only, within its target, 8 / 97.9 % / 0.003 (row 01:21:12). Half the fights and rounds
    per training step: on grid25 training took 88.9 against 81.2 % of the players' wall time and the whole-loop
    overhead was 36.3 ± 13.6 against 55.8 ± 8.6 % (throughput rows 00:49:10 and 2026-12-05T22:37:36, whose code
    and founders' rates also differ a little). Not 400: on ring8 at 600 s, 3 seeds, half the loops bought about
    7.6 % more steps in the same CPU but fewer fights and fakes to replay, and the champion had 8 / 97.7 % / KL
    0.002 against 8 / 98.1 % / 0.001 at 200 (rows 2026-12-06T13:46:25 and 08:53:08)."""
    matchmaking: str = "random"
    """How a player picks its opponents: random, all, k_best (highest rated) or prioritized (even and
    uncertain matches first, as AlphaStar's league)."""
    selection: str = "fitness"
    """The standing parents are chosen by, and the run's champion: fitness (share of opposing
    discriminators fooled) or rating (the generator's skill rating, which weighs a fooled strong
    discriminator above a fooled weak one)."""
    exploit: str = "never"
    """When a player replaces its pair by another: always (every loop), truncation (only a pair in the bottom
    `truncation` share after `ready` loops; the others go on training with their optimizer state, as Ray Tune's PBT),
    never (the default: players only train and fight: coevolution through the fights, and where they are on the replay
    of fakes that fooled and the rounds' cross-training, not through selection), auto (truncation on vector data, never
    on images: the default from 7 December, 11:00, kept for the runs recorded with it), or by_data (truncation on
    images, never on vector data: that morning's default until 09:08, then truncation on all data until 10:57; kept
    likewise). Never on all data, by the mean of the seeds measured, since truncation's single lineage can fail whole:
    on grid25 at 600 s PBT's population became copies of one founder's pair within 120 to 200 loops in each seed of row
    2026-12-07T21:39:15, and at two seeds of six its champion's KL was above issue 13's 0.05 (seed 1: the lineage's
    generators on 22 modes, its discriminators catching 85 % of the fakes, the screened champion 24 modes, KL 0.335;
    seed 3: uneven modes, KL 0.085); over all nine seeds measured with it (row 2026-12-07T07:57:32 too) 95.9 % and KL
    0.048. Over seeds 0 to 5 (rows 2026-12-07T21:39:15, 22:43:05) its champion averaged 95.3 % high quality and KL
    0.071, against 97.3 % and 0.006 under never (rows 2026-12-06T09:24:19, seeds 0 to 2 on the stream of draws before
    the duel's single draw, not rerun on this code, and 2026-12-07T23:14:11, seeds 3 to 5: 97.1 ± 0.5 % and 0.004
    against PBT's 95.1 ± 3.6 % and 0.029 on the same founders), where the players' lineages train apart and the champion
    is chosen among them. On ring8 at 600 s never's champion had 98.1 % and KL 0.001 against truncation's 97.6 and 97.8
    %, level within the seeds' spread (rows 2026-12-06T08:53:08, 2026-12-07T09:01:45, 22:10:42), the mixtures level
    (98.2 against 98.3 and 98.4 %). On grid25 with the first cull after 10 loops truncation lost further (94.8 % and KL
    0.022, row 2026-12-07T05:22:15), and the first game's PBT run (random founders, one seed) lost the same way, copies
    of its costliest lineage: 20 modes, KL 0.968 against 25, 0.301 without (rows 2026-12-03T11:09:50 and 08:10:14). On
    images never, with the couplings between players off (`round_every`, `replay`, `shared_fakes` by default): on mnist
    at 1,800 s, 5 streams of samples, the champion averaged FID 9.71 (TVD 0.095) and the mixture 10.70 over seeds 0 to 2
    (rows 2026-12-07T08:30:42, 09:35:10, 10:48:28), against 10.99 (TVD 0.090) and 11.07 under truncation with the
    couplings on (rows 2026-12-07T03:01:37, 04:12:28, 05:58:27) and 12.25 and 12.20 under never with them (row
    05:58:27's notes); the champion ahead of truncation's at seeds 1 and 2 (12.46 and 9.91 against 14.70 and 11.71),
    behind at seed 0 (6.76 against 6.55), the mixture ahead at seed 2 only. Truncation without the couplings did worst:
    champion FID 11.69 and 16.27, mixture 10.93 and 15.78 at seeds 0 and 1 (rows 2026-12-07T13:13:48, 13:47:46), so the
    copies cost on images, not the couplings. The games measured before kept the couplings on: to play one again on
    images, set `round_every` = 4, `replay` = 512 and `shared_fakes` = 256 besides `exploit`."""
    cull: str = "real"
    """Under truncation, how the pairs to replace are found: real (the bottom by their generators' distance to
    real training samples, MMD measured by each player every loop, which no player can hack) or fitness (the
    bottom by `selection`; fooling is relative to the discriminators met, and a population whose discriminators grew
    weak would cull its best generator). Parents are still chosen by `selection`, except under explore = perturb,
    which copies the survivor nearest real data. Other exploits cull nobody, and ignore it."""
    explore: str = "perturb"
    """What a culled pair (or, under exploit = always, every pair) becomes: perturb (Ray Tune's PBT: a copy of one
    tournament winner, by the cull's standing under truncation and by `selection` under always, weights and optimizer
    state whole, each learning rate multiplied by 0.8 or 1.25; the pair stays together) or breed (the seed's: a
    child of two tournament winners by crossover and mutation, inheriting their weights where its layers are
    theirs). Perturb is what mnist's runs under truncation measured (`exploit`). exploit = never replaces nobody
    and ignores it."""
    tune: int = 0
    """Loops per window of each player's search over its own learning rates, in place (PBT's explore without its
    exploit; `arena/tuning.py`): a trial multiplies each rate by 0.8 or 1.25 and is kept when the generator's
    distance to real training samples over its window came nearer than over the window before it, else undone; the
    pair trains on throughout (0: none). A pair bred anew starts its search afresh (under exploit = always every
    pair is, and nothing is tuned); a restarted player starts afresh from the rates its checkpoint holds, a trial's
    rates if it stopped in one. Off by default: with the conventional founders' rates (469130e) it gains nothing
    beyond the runs' spread, and untuned is better on more measures than it is worse. At 600 s, 3 seeds, untuned,
    the grid25 champion had 25 modes, 91.6 % high quality, KL 0.026 and the mixture 25, 94.0 %, 0.010, against 24.7,
    95.1 %, 0.044 and 25, 93.7 %, 0.013 tuned (BENCHMARKS.md rows 2026-12-05T17:55:16 against 13:54:59); on ring8
    the champion had 8, 98.4 %, 0.003 and the mixture 8, 98.6 %, 0.001, against 8, 97.7 %, 0.003 and 8, 97.9 %,
    0.003 tuned (rows 18:32:12 against 16:22:57), both measured under exploit = never. With the random founders
    before, it lowered the champion's KL (0.123 to 0.070 on grid25 at 600 s, rows 2026-12-05T10:10:30 against
    09:32:36)."""
    copy_cost: float = 0.0
    """Under exploit = truncation with explore = perturb, the most a copied survivor's training step may cost (CPU
    per step, as measured in its last loop) as a multiple of the culled pair's own; a culled pair with no such
    survivor trains on. 0: any survivor. Copying by distance alone, after 10 loops, spread a costly genome on grid25,
    which then trained half the steps (row 2026-12-07T05:22:15, seed 1); this limit, at 1.25 with ready 10, made it
    far worse (row
    2026-12-07T06:32:40: champion 64.6 % high quality, KL 0.088, against 94.8 %, 0.022 without it), each population
    drifting to its narrowest founder, which learns grid25 worse, whatever the steps gained. So it is off."""
    truncation: float = 0.25
    """Under exploit = truncation, the share of the ranked population whose pairs are replaced."""
    ready: int = -1
    """Under exploit = truncation, loops a pair trains before it can be replaced (PBT's perturbation
    interval): a child is judged after it has learnt, not at birth (-1: by the data, 10 on images and 60 on vector
    data). On mnist 10 loops are about 2,000 steps, about 4 minutes of a player's 30 (`exploit`'s rows); on grid25 10
    loops are about 16 s, and the early leader was copied and kept; 60 (about 100 s of 600) was better on the mean
    of 3 seeds: seed 1's early copy of its widest founder avoided, seeds 0 and 2 level (rows 2026-12-07T07:57:32
    against 05:22:15)."""
    keep_pairs: bool = False
    """A child's discriminator comes with its generator-side parent (true), or from tournaments by
    discriminator fitness over everyone (false: the seed's selection of discriminators apart)."""
    fitness_window: int = 16
    """Fitness is read over this many most recent matches, since opponents keep improving."""
    round_every: int = 0
    """Every this many generations a player holds the seed's second round: its own individual and the fittest
    published others, all versus all, judged, trained once against each other, judged again; discriminators are
    chosen for breeding on that second judgement (0: never, the default; -1: by the data, every 4 on images and
    never on vector data, the default from 6 to 7 December). Off on vector data because at 600 s, 3 seeds, a round
    every 4 generations cost about a quarter of the players' CPU (ring8: 1,149 individuals a run against 1,531
    without) and bought no quality: ring8's champion 8 / 97.9 % / KL 0.003 with rounds against 8 / 98.1 % / 0.001
    without (BENCHMARKS.md rows 2026-12-06T01:21:12 and 08:53:08); grid25's 25 / 96.6 % / 0.004 against 25 / 97.5 %
    / 0.007, 1,177 individuals a run against 1,491 (rows 01:21:25 and 09:24:19). Off on images with the other
    couplings (`exploit` gives the rows); on mnist under never, single runs with rounds had given champions of FID
    8.49 and 11.60 on 5 streams against 10.27 and 9.99 without (the second without shared fakes either; rows
    2026-12-06T17:58:33, 17:55:56, 18:10:33, 18:12:19): no gain either way."""
    round_size: int = 6
    """Most individuals in a round (every generator meets every discriminator)."""
    round_steps: int = 10
    """Steps of a round's training: the own generator against every discriminator of the round, the own
    discriminator against every generator (0: a round is judged once, without training)."""
    cross_steps: int = 0
    """Cross-training steps after each fight: own generator against the opponents' discriminators and
    own discriminator against their generators (0: none). Off by default: at 10 it was no better on ring8 at 120 s
    (BENCHMARKS.md row 2026-12-05T00:50:24: KL 0.036 against 0.023) nor on grid25 at 120 s (row
    2026-12-03T05:47:47)."""
    generator_first: int = 0
    """Two-phase training: the generator trains alone for this many steps of each round before the
    discriminator chases it (0: both from the start). Off by default: at 20 it lost on every measure on grid25
    at 600 s (BENCHMARKS.md row 2026-12-03T22:24:14), though it helped ring8 at 120 s (row 2026-12-05T00:43:12)."""
    replay: int = -1
    """Capacity of the fake replay buffer: opponents' fakes that fooled the discriminator are kept and
    shown to it again, labelled fake (0: off; -1: by the data, 512 on vector data, off on images unless
    `shared_fakes` asks for it). Off on images with the other couplings (`exploit` gives the rows); on vector
    data `shared_fakes`, which needs it, says why it is on."""
    shared_fakes: int = -1
    """The seed's expert step across players: capacity of the registry's pool of fakes that fooled some player's
    discriminator; each player adds the fakes that fooled its own and takes as many from the pool into its
    replay, so every discriminator learns from what fooled others (0: each player keeps its own; -1: by the data,
    256 on vector data where there is a replay buffer, off on images with the other couplings, `exploit` gives the
    rows). On vector
    data because the numbers say so: on grid25 at 600 s, 3 seeds, it took the champion from 89.0 to 91.0 % high
    quality and KL 0.187 to 0.104, the mixture from 91.6 to 93.1 % and 0.061 to 0.042 (BENCHMARKS.md rows
    2026-12-05T01:42:01 against 01:48:53), and on ring8 at 120 s the champion from 93.2 to 96.5 % (row 00:57:38
    against 00:35:59). Seven runs with it on grid25 at 600 s put the champion's KL at 0.157 on average (row
    2026-12-05T08:13:55): against 0.187 without it, its gain on that measure is within the runs' spread."""
    replay_share: float = 0.25
    """Replayed fakes per training batch, as a share of the batch size."""
    metrics_every: int = -1
    """Each player records its generator's quality (modes, high quality, KL; or FID, TVD) every this many
    generations; 0 records it only for the final population; -1 (the default): every 10th, whatever the data. A
    measure on mnist (2,000 images through the generator and the judge's classifier) took 2.7 % of the players' wall
    at every 5th (BENCHMARKS.md throughput row 2026-12-07T16:59:05) and 1.7 % at every 10th (row 19:56:29), the
    distance to real data measured with it 0.8 and 0.6 %; on grid25 at every 5th the measure took 0.8 % and the
    distance 0.7 % (row 2026-12-08T02:38:54): time the players' training loses to a diagnostic curve the default
    game (exploit never, tune 0) never reads. Vector data took every 5th until the grid25 row that measured it."""
    ensemble: int = 3
    """Generators mixed into the ensemble evaluated at the end of a run, and the candidates for the champion under
    champion = real (0: none). With 4 players, all 4 gained nothing on ring8's 600 s runs judged again (BENCHMARKS.md
    row 2026-12-05T17:59:37: the champion's KL 0.006 against 0.003, the mixture 97.7 against 97.9 % high quality),
    nor on mnist's 1,800 s run (row 2026-12-06T07:35:42: the champion the same, the mixture's FID 8.89 against 8.61),
    and all 4 made both worse on grid25's 600 s runs (row 2026-12-06T17:59:11: the champion 95.7 % high quality,
    KL 0.017 against 97.5 %, 0.007; the mixture 95.2 %, 0.011 against 97.7 %, 0.010); on mnist's two default runs,
    chosen again and judged on 3 streams of samples, 4 gave mixtures of FID 9.62 and 11.17 and champions of 10.14 and
    10.64 (rows 2026-12-06T18:05:57, 18:08:39), where the recorded products of 3, judged on 5 other streams, had
    9.55 and 10.08, 8.49 and 11.60 (rows 17:58:33, 17:55:56): no gain beyond the streams' spread."""
    champion: str = "real"
    """How the run's champion is chosen from its final population: standing (the first by `selection`),
    or real (of the `ensemble` first by standing, the one whose product, its samples screened and refined as the
    run gives them out, is nearest held-out real training data by maximum mean discrepancy; a statistic of real
    samples only, blind to the true modes or labels): a collapsed generator can top the standing when
    discriminators grow weak."""
    screen: float = 0.125
    """The run's products (its champion and its mixture) are screened by the final population's
    discriminators: of `1 / screen` candidate samples per sample given out, the ones they rank most real
    are kept, within regions of the data (`screen_regions`; `arena.screen`; 1: no screen). Discriminators and
    real training data only decide. On grid25 at 600 s (3 seeds, BENCHMARKS.md row 2026-12-04T12:20:23) a
    screen over all keeping half took the champion from 51.9 to 71.9 % high quality and the mixture from
    56.7 to 79.2 %, and raised KL with the share it dropped; within 128 regions, keeping an eighth, the same
    runs gave 72.1 % and KL 0.262 for the champion, 79.6 % and 0.094 for the mixture, against 71.5 %, 0.472
    and 77.7 %, 0.180 over all at a half (row 2026-12-04T13:53:08; the lean runs of row 13:53:38 and the
    independent GANs of row 13:53:26 say the same)."""
    screen_regions: int = 128
    """A screen keeps the best of each region of the data (about the share kept of the candidates there, and
    at least the region's best) rather than the best over all: regions are the cells of this many real
    training samples (each candidate belongs to the nearest; 0: one region, the best over all).
    `arena.screen` and `arena/screen.py` say why."""
    refine: int = 100
    """After the screen, each sample of the run's products climbs the final population's discriminators' mean
    standardised score for at most this many steps, and stops once it scores as real training data do; how
    many of them a product takes is settled on a first draw by precision and recall against held-out real
    samples, 0 where refining would cost more than it gives (`arena/refine.py` says how and why; 0 here: never
    refined). Vector data only: images are given out as screened. On by default because the numbers say so
    (code dfadf59, the same populations judged again): at 600 s on grid25 it takes the champion from 68.6 to
    88.9 % high quality and the mixture from 75.4 to 91.1 % (BENCHMARKS.md row 2026-12-05T00:14:47); on ring8
    at 600 s and on a one-hour grid25 run it settles 0 steps and leaves them as they were (rows 00:15:07,
    00:13:58), where refining by a fixed 100 steps took that one-hour champion from 98.2 to 86.5 % (row
    2026-12-04T22:52:19)."""
    average: float = 0.0
    """Each player keeps an exponential moving average of its generator's weights with this decay per step
    (`arena/average.py`; 0: none). The live weights train, fight and, under truncation, are culled by their distance
    to real data; the average is what the run gives out (its champion and mixture) and what the players' quality records
    measure. Off by default because it adds nothing measurable: at 0.999 on grid25 at 600 s (BENCHMARKS.md rows
    2026-12-05T06:56:43 and 07:31:13, four runs) the champion's KL averaged 0.150 and the mixture's 0.060,
    against 0.157 and 0.065 over seven runs without it (the pool in the notes of row 08:13:55); on mnist at
    1,800 s under today's defaults the champion's FID 8.66 was within two runs' without it (8.42, 9.94) and its
    TVD worse (0.118 against 0.098 and 0.092; row 2026-12-06T15:49:35), and on ring8 at 600 s, 3 seeds, the
    champion had 98.0 % high quality, KL 0.002 and the mixture 97.9 %, against 98.1 %, 0.001 and 98.2 % without
    (rows 16:20:47 against 08:53:08)."""
    pack: int = 2
    """Samples a first-generation discriminator judges at once (PacGAN's packing: a generator that
    collapses onto few modes yields packs unlike real ones); children keep their discriminator's pack.
    On ring8 at 90 s it took the arena's best from 1.0 to 5.5 modes (BENCHMARKS.md); 1 turns it off. Packs of 4
    (PacGAN4) cost grid25 at 600 s its precision: champion 16.8 % high quality against 86.4 % on the same seed
    (row 2026-12-05T05:44:54)."""
    founders: str = "conventional"
    """First-generation genomes: random (shapes and rates drawn within the mutation limits) or conventional
    (an architecture known to work, its widths and learning rates drawn: `genome.population.conventional_genome`)."""
    founder_d_lr: float = 0.0
    """The highest learning rate a conventional founder's discriminator draws, log-uniformly from 1e-4 up to it
    (`genome.population.conventional_genome`); the random founders ignore it. 0: by the data (`first_d_lr`), 2e-4
    on vector data and 4e-4 on images, because the numbers say so. On grid25 at 600 s, 3 seeds, the champion had
    25 modes, 95.9 % high quality, KL 0.007 and the mixture 25, 95.7 %, 0.003 with 2e-4, against 25, 91.6 %, 0.026
    and 25, 94.0 %, 0.010 with 4e-4 (BENCHMARKS.md rows 2026-12-05T22:24:32 against 17:55:16). On mnist at
    1,800 s, one seed each, the same training code, the champion had FID 15.68, TVD 0.130 and the mixture 16.05,
    0.132 with 4e-4, against 18.75, 0.136 and 19.93, 0.140 with 2e-4 (rows 2026-12-06T05:03:20 and 02:27:38;
    unscreened, the champion was behind, 26.24 against 22.40). Images were measured on mnist only; ring8 has no
    pair of runs that differ in this alone (4e-4 in row 2026-12-05T18:32:12, 2e-4 in 2026-12-06T01:21:12, two
    settings apart)."""
    architecture: str = "auto"
    """First-generation networks: dense, conv (images only), or auto (conv for images, else dense)."""
    lr_final: float = 0.1
    """Learning rates decay linearly over the run's budget to this share of their genes' values (1: no
    decay): late steps refine rather than move, the precision that the high-quality share measures
    (BENCHMARKS.md, the ablation rows of issue 13)."""
    steps_spread: float = 1.0
    """Players differ on purpose: player i of P trains steps × steps_spread^(i/(P−1)) steps per loop, its
    children too whoever their parents, so loops differ in cost as when architectures differ (the throughput
    benchmark's async-versus-barrier comparison); 1: all start equal and children inherit steps."""
    schedule: str = "async"
    """async: every player moves at its own pace; barrier: a synchronous generational arena in which
    nobody breeds until every player has fought its current generation (the baseline to compare with)."""

    def __post_init__(self) -> None:
        if self.founders not in FOUNDERS:
            raise ValueError(f"arena.founders must be one of {', '.join(FOUNDERS)}; got {self.founders!r}")
        if self.founder_d_lr != 0 and not 1e-4 <= self.founder_d_lr <= 1e-2:
            raise ValueError(f"arena.founder_d_lr must be 0 (by the data) or between 1e-4 and 1e-2; "
                             f"got {self.founder_d_lr!r}")
        if self.architecture not in ("auto", "dense", "conv"):
            raise ValueError(f"arena.architecture must be auto, dense or conv; got {self.architecture!r}")
        if not 1 <= self.steps_spread <= 100:
            raise ValueError(f"arena.steps_spread must be between 1 and 100; got {self.steps_spread!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"arena.schedule must be one of {', '.join(SCHEDULES)}; got {self.schedule!r}")
        if self.matchmaking not in MATCHMAKING:
            raise ValueError(f"arena.matchmaking must be one of {', '.join(MATCHMAKING)}; got {self.matchmaking!r}")
        if self.exploit not in EXPLOIT_CHOICES:
            raise ValueError(f"arena.exploit must be one of {', '.join(EXPLOIT_CHOICES)}; got {self.exploit!r}")
        if not 0 < self.lr_final <= 1:
            raise ValueError(f"arena.lr_final must be in (0, 1]; got {self.lr_final!r}")
        if self.explore not in EXPLORES:
            raise ValueError(f"arena.explore must be one of {', '.join(EXPLORES)}; got {self.explore!r}")
        if self.cull not in CULLS:
            raise ValueError(f"arena.cull must be one of {', '.join(CULLS)}; got {self.cull!r}")
        if isinstance(self.screen, bool) or not isinstance(self.screen, (int, float)) or not 0 < self.screen <= 1:
            raise ValueError(f"arena.screen must be a share in (0, 1]; got {self.screen!r}")
        if isinstance(self.tune, bool) or not isinstance(self.tune, int) or self.tune < 0 or self.tune == 1:
            raise ValueError(f"arena.tune must be 0 (off) or a window of at least 2 loops; got {self.tune!r}")
        if (isinstance(self.copy_cost, bool) or not isinstance(self.copy_cost, (int, float))
                or not (self.copy_cost == 0 or 1 <= self.copy_cost <= 100)):
            raise ValueError(f"arena.copy_cost must be 0 (any survivor) or between 1 and 100; got {self.copy_cost!r}")
        if not 0 < self.truncation <= 0.5:
            raise ValueError(f"arena.truncation must be in (0, 0.5]; got {self.truncation!r}")
        if not isinstance(self.keep_pairs, bool):
            raise ValueError(f"arena.keep_pairs must be true or false; got {self.keep_pairs!r}")
        if self.champion not in CHAMPIONS:
            raise ValueError(f"arena.champion must be one of {', '.join(CHAMPIONS)}; got {self.champion!r}")
        if self.selection not in ("fitness", "rating"):
            raise ValueError(f"arena.selection must be fitness or rating; got {self.selection!r}")
        if isinstance(self.average, bool) or not isinstance(self.average, (int, float)) or not 0 <= self.average < 1:
            raise ValueError(f"arena.average must be in [0, 1) (0: none); got {self.average!r}")
        if not 0 <= self.replay_share <= 1:
            raise ValueError(f"arena.replay_share must be in [0, 1]; got {self.replay_share!r}")
        if self.round_size < 2:
            raise ValueError(f"arena.round_size must be at least 2; got {self.round_size!r}")
        for name, rest in BY_DATA_INTEGERS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < -1:
                raise ValueError(f"arena.{name} must be {rest}; got {value!r}")
        if self.shared_fakes > 0 and not self.replay:
            raise ValueError(f"arena.shared_fakes ({self.shared_fakes}) needs a replay buffer to put them in; "
                             "arena.replay is 0 (set arena.shared_fakes = 0 too)")
        for name in ("ensemble", "cross_steps", "generator_first", "round_steps", "screen_regions", "refine"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"arena.{name} must be a non-negative integer; got {value!r}")
        for name in ("pack", "opponents", "duel_samples", "tournament_size", "steps", "fitness_window",
                     "round_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"arena.{name} must be a positive integer; got {value!r}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 0:
            raise ValueError(f"arena.batch_size must be 0 (by the data) or a positive integer; got {self.batch_size!r}")
        if self.pack > 16:  # wider packs only dilute each sample's say in its verdict
            raise ValueError(f"arena.pack must be at most 16; got {self.pack!r}")

    def lr_scale(self, progress: float) -> float:
        """The learning rates' factor at `progress` (0 at the start of the budget, 1 at its end)."""
        return lr_scale(progress, self.lr_final)

    def metrics_every_on(self, data_shape: tuple[int, ...]) -> int:
        """Generations between a player's quality records, whatever the data (see `metrics_every`)."""
        return self.metrics_every if self.metrics_every >= 0 else 10

    def metrics_due(self, generation: int, data_shape: tuple[int, ...]) -> bool:
        """Whether a player records its generator's quality after this generation (`metrics_every`)."""
        every = self.metrics_every_on(data_shape)
        return bool(every) and generation % every == 0

    def rounds_every(self, data_shape: tuple[int, ...]) -> int:
        """Generations between a player's rounds on data of this shape (see `round_every`; 0: never)."""
        return self.round_every if self.round_every >= 0 else (4 if is_image(data_shape) else 0)

    def round_due(self, generation: int, data_shape: tuple[int, ...]) -> bool:
        """Whether a player holds the seed's second round after this generation's duels (`round_every`)."""
        every = self.rounds_every(data_shape)
        return bool(every) and generation % every == 0

    def exploit_on(self, data_shape: tuple[int, ...]) -> str:
        """The exploit played on data of this shape: `exploit`, or by the data when it is `auto` (never on
        images, truncation on vector data) or `by_data` (truncation on images, never on vector data); `exploit`
        cites the rows."""
        if self.exploit == EXPLOIT_AUTO:
            return "never" if is_image(data_shape) else "truncation"
        if self.exploit == EXPLOIT_BY_DATA:
            return "truncation" if is_image(data_shape) else "never"
        return self.exploit

    def replay_on(self, data_shape: tuple[int, ...]) -> int:
        """The replay buffer's capacity on data of this shape (see `replay`)."""
        if self.replay >= 0:
            return self.replay
        return 512 if not is_image(data_shape) or self.shared_fakes_on(data_shape) else 0

    def shared_fakes_on(self, data_shape: tuple[int, ...]) -> int:
        """The capacity of the registry's pool of shared fakes on data of this shape (see `shared_fakes`): by the
        data, none where there is no replay buffer to put them in."""
        if self.shared_fakes >= 0:
            return self.shared_fakes
        return 0 if is_image(data_shape) or self.replay == 0 else 256

    def ready_on(self, data_shape: tuple[int, ...]) -> int:
        """Loops a pair trains on data of this shape before truncation can replace it (see `ready`)."""
        return self.ready if self.ready >= 0 else (10 if is_image(data_shape) else 60)

    def for_data(self, data_shape: tuple[int, ...]) -> ArenaConfig:
        """These settings with each one left to the data (`exploit` auto or by_data, the -1s, the founders' 0s and
        `architecture` auto) made what it is on data of this shape: what a new run records, so that its record
        names the game it played and a resume plays that game whatever a later default says."""
        return replace(self, exploit=self.exploit_on(data_shape), ready=self.ready_on(data_shape),
                       round_every=self.rounds_every(data_shape), replay=self.replay_on(data_shape),
                       metrics_every=self.metrics_every_on(data_shape),
                       shared_fakes=self.shared_fakes_on(data_shape), batch_size=self.first_batch(data_shape),
                       founder_d_lr=self.first_d_lr(data_shape), architecture=self.first_architecture(data_shape))

    def first_architecture(self, data_shape: tuple[int, ...]) -> str:
        """The founders' networks on data of this shape (see `architecture`)."""
        return architecture_on(self.architecture, data_shape)

    def distance_due(self, generation: int, data_shape: tuple[int, ...], tuning: bool = False) -> bool:
        """Whether a player measures its generator's distance to real data after this generation's training:
        every loop when truncation culls by it (on data of this shape), in the loops its search over its rates
        reads (`tuning`: `arena.tuning.Tuning.due`, the second half of each window), and with the quality metrics
        (every `metrics_every` generations); a player's last individual is measured too (`Player.run`). A measure
        compares 512 samples with 512 real ones at five bandwidths."""
        return (self.exploit_on(data_shape) == "truncation" and self.cull == "real") or tuning \
            or self.metrics_due(generation, data_shape)

    def first_batch(self, data_shape: tuple[int, ...]) -> int:
        """The founders' batch size on data of this shape (see `batch_size`)."""
        return self.batch_size or (64 if is_image(data_shape) else 128)

    def first_d_lr(self, data_shape: tuple[int, ...]) -> float:
        """The founders' highest discriminator learning rate on data of this shape (see `founder_d_lr`)."""
        return self.founder_d_lr or (4e-4 if is_image(data_shape) else 2e-4)

    def first_steps(self, index: int, players: int) -> int:
        """Training steps per loop of player `index`'s first genome (see `steps_spread`)."""
        return max(1, round(self.steps * self.steps_spread ** (index / max(1, players - 1))))
