"""First-generation genomes: drawn within the limits, so players start from diverse shapes."""

from __future__ import annotations

import math

import numpy as np

from genome.genes import Genome, Layer, OptimizerGene, is_image
from genome.operators import MutationConfig, _clip, within_limits

ARCHITECTURES = ("auto", "dense", "conv")


def _log_uniform(rng: np.random.Generator, low: float, high: float, preferred_low: float,
                 preferred_high: float) -> float:
    # Within the preferred range where it overlaps the limits, else anywhere within the limits.
    a, b = max(low, preferred_low), min(high, preferred_high)
    a, b = (a, b) if a <= b else (low, high)
    return math.exp(rng.uniform(math.log(a), math.log(b)))


def _width(rng: np.random.Generator, cfg: MutationConfig, low: int, high: int) -> int:
    return int(_clip(round(_log_uniform(rng, cfg.min_width, cfg.max_width, low, high)), cfg.min_width, cfg.max_width))


def _dense(rng: np.random.Generator, cfg: MutationConfig) -> tuple[Layer, ...]:
    depth = int(rng.integers(cfg.min_layers, max(cfg.min_layers, min(cfg.max_layers, 3)) + 1))
    width = _width(rng, cfg, 16, cfg.max_width)
    activation = str(rng.choice(["relu", "leaky_relu", "elu"]))
    return tuple(Layer(kind="dense", width=width, activation=activation) for _ in range(depth))


def _doublings(side: int, cfg: MutationConfig) -> int:
    """How many stride-2 steps lie between a small seed image and the data's side."""
    steps = 0
    while side % 2 == 0 and side // 2 >= 2 and steps < 3 and steps + 1 < cfg.max_layers:
        side //= 2
        steps += 1
    return max(steps, 1) if side >= 2 else steps


def _conv_generator(rng: np.random.Generator, cfg: MutationConfig, data_shape: tuple[int, ...]) -> tuple[Layer, ...]:
    """DCGAN's shape: reshape the latent to a small image, then transposed convolutions up to the data's
    side (side-keeping convolutions after them when `min_layers` asks for more learning layers)."""
    n = min(_doublings(data_shape[1], cfg), cfg.max_layers - 1)
    channels = _width(rng, cfg, 16, 64)
    layers = [Layer(kind="reshape", width=channels, size=max(1, data_shape[1] // 2 ** n))]
    for i in range(n):
        layers.append(Layer(kind="deconv", width=max(cfg.min_width, channels // 2 ** (i + 1)), kernel=4, stride=2,
                            padding=1, norm="batch", activation="relu"))
    while len(layers) - 1 < cfg.min_layers:
        layers.append(Layer(kind="conv", width=layers[-1].width, kernel=3, stride=1, padding=1, norm="batch"))
    if len(layers) < cfg.max_layers and rng.random() < 0.5:
        layers.insert(1, Layer(kind="noise", scale=0.1))
    return tuple(layers)


def _conv_discriminator(rng: np.random.Generator, cfg: MutationConfig,
                        data_shape: tuple[int, ...]) -> tuple[Layer, ...]:
    n = min(_doublings(data_shape[1], cfg), cfg.max_layers)
    channels = _width(rng, cfg, 16, 64)
    layers = [Layer(kind="conv", width=min(cfg.max_width, channels * 2 ** i), kernel=4, stride=2, padding=1,
                    activation="leaky_relu", norm="none" if i == 0 else "layer") for i in range(max(n, 1))]
    while len(layers) < cfg.min_layers:  # deeper than the doublings need: side-keeping convolutions at the end
        layers.append(Layer(kind="conv", width=layers[-1].width, kernel=3, stride=1, padding=1,
                            activation="leaky_relu", norm="layer"))
    return tuple(layers)


def architecture_on(architecture: str, data_shape: tuple[int, ...]) -> str:
    """The networks, dense or conv, that `architecture` gives on data of this shape (auto: conv on images, else
    dense)."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {', '.join(ARCHITECTURES)}; got {architecture!r}")
    if architecture == "conv" and not is_image(data_shape):
        raise ValueError(f"a conv architecture needs image data; the data shape is {tuple(data_shape)}")
    if architecture != "auto":
        return architecture
    return "conv" if is_image(data_shape) else "dense"


def random_genome(rng: np.random.Generator, cfg: MutationConfig, batch_size: int, steps: int,
                  data_shape: tuple[int, ...] = (2,), architecture: str = "auto", pack: int = 1) -> Genome:
    conv = architecture_on(architecture, data_shape) == "conv"
    image = is_image(data_shape)

    def optimizer() -> OptimizerGene:
        lr = _clip(_log_uniform(rng, cfg.min_lr, cfg.max_lr, 1e-4, 2e-3), cfg.min_lr, cfg.max_lr)
        return OptimizerGene(name="adam", lr=float(lr))

    latent = int(_clip(32 if image else 8, cfg.min_latent, cfg.max_latent))
    for _ in range(20):
        # A conv generator needs its reshape beside `min_layers` learning layers.
        fits_conv = cfg.max_layers > cfg.min_layers
        generator = _conv_generator(rng, cfg, data_shape) if conv and fits_conv else _dense(rng, cfg)
        discriminator = _conv_discriminator(rng, cfg, data_shape) if conv else _dense(rng, cfg)
        genome = Genome(generator=generator, discriminator=discriminator, latent_dim=latent, latent_dist="normal",
                        g_optimizer=optimizer(), d_optimizer=optimizer(), batch_size=batch_size, steps=steps,
                        data_shape=tuple(data_shape), pack=pack)
        if within_limits(genome, cfg):
            return genome
    raise ValueError(f"no first-generation genome fits the limits (mutation.max_parameters {cfg.max_parameters}, "
                     f"mutation.max_side {cfg.max_side}, mutation.max_layers {cfg.max_layers})")


def conventional_genome(rng: np.random.Generator, cfg: MutationConfig, batch_size: int, steps: int,
                        data_shape: tuple[int, ...] = (2,), pack: int = 1, d_lr: float = 2e-4) -> Genome:
    """A founder of an architecture known to work (as E-GAN and Lipizzaner start), its hyperparameters drawn:
    2-D, three dense layers a side of one width each (64 to 256), ReLU generator, leaky-ReLU discriminator;
    images, DCGAN's shape (a reshape to 64 channels at a quarter of the side, two stride-2 transposed
    convolutions with batch norm; two stride-2 convolutions, the second layer-normed). Adam with β₁ 0.5 and
    learning rates drawn log-uniformly, each side its own: the discriminator's in [1e-4, `d_lr`] (on grid25 one
    above 8e-4 held its player at 14 to 18 modes and KL 1.2 to 1.6 all run, in each of the runs that drew one:
    BENCHMARKS.md rows 2026-12-05T01:42:01, 06:42:02 and 08:13:55); the generator's in [2e-4, 8e-4] on 2-D data,
    where a generator slower than its discriminator blurred between the modes or dropped them, and the best
    players of the tuned runs had raised theirs well above where they started (rows 2026-12-05T10:10:30 and
    11:25:17, their records' `tune` ops); on grid25 at 600 s it took the champion from 90.0 % high quality and
    KL 0.121 to 95.1 % and 0.044 (rows 12:15:38 and 13:54:59). In [1e-4, 4e-4] on images (DCGAN's 2e-4 within
    it). `d_lr` is the run's `ArenaConfig.first_d_lr`."""
    image = is_image(data_shape)

    def optimizer(low: float, high: float) -> OptimizerGene:
        return OptimizerGene(name="adam", lr=float(_clip(_log_uniform(rng, cfg.min_lr, cfg.max_lr, low, high),
                                                          cfg.min_lr, cfg.max_lr)), betas=(0.5, 0.999))

    if image and data_shape[1] % 4 == 0:
        side = data_shape[1]
        generator = (Layer("reshape", 64, size=side // 4),
                     Layer("deconv", 32, "relu", "batch", kernel=4, stride=2, padding=1),
                     Layer("deconv", 16, "relu", "batch", kernel=4, stride=2, padding=1))
        discriminator = (Layer("conv", 32, "leaky_relu", kernel=4, stride=2, padding=1),
                         Layer("conv", 64, "leaky_relu", "layer", kernel=4, stride=2, padding=1))
        latent = 32
    elif image:
        raise ValueError(f"conventional founders need an image side divisible by 4; got {tuple(data_shape)}")
    else:
        depth = int(_clip(3, cfg.min_layers, cfg.max_layers))
        generator = (Layer("dense", _width(rng, cfg, 64, 256), "relu"),) * depth
        discriminator = (Layer("dense", _width(rng, cfg, 64, 256), "leaky_relu"),) * depth
        latent = int(_clip(8, cfg.min_latent, cfg.max_latent))
    genome = Genome(generator=generator, discriminator=discriminator, latent_dim=latent, latent_dist="normal",
                    g_optimizer=optimizer(*((1e-4, 4e-4) if image else (2e-4, 8e-4))),
                    d_optimizer=optimizer(1e-4, d_lr), batch_size=batch_size, steps=steps,
                    data_shape=tuple(data_shape), pack=pack)
    if not within_limits(genome, cfg):
        raise ValueError(f"a conventional founder does not fit the limits (mutation.max_parameters "
                         f"{cfg.max_parameters}, mutation.max_layers {cfg.max_layers})")
    return genome
