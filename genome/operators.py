"""Pure variation operators: `(genome, rng, config) -> (child, ops)`.

The random generator is always passed in (numpy `Generator`), never global, so a player's
lineage is reproducible from its seed. `ops` is a list of plain dicts naming what was done,
recorded with the child in the lineage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import numpy as np

from genome.genes import (ACTIVATIONS, COMPUTING, LATENT_DISTS, LOSSES, NETS, NORMS, OPTIMIZERS, Genome, Layer,
                          OptimizerGene)
from genome.shapes import plan

Ops = list[dict]


@dataclass(frozen=True)
class MutationConfig:
    """Probabilities and limits of variation; every field is settable under `[mutation]` in the TOML."""

    p_add_layer: float = 0.15
    """Chance of adding a layer, by duplicating an existing one next to itself."""
    p_delete_layer: float = 0.1
    """Chance of deleting a layer."""
    p_add_noise: float = 0.05
    """Chance of inserting a fresh noise layer (the seed's random noise layer) at a random place in a network:
    instance noise in a discriminator, a source of variation in a generator. Modest until the per-operator
    effects against the clone control say otherwise."""
    p_width: float = 0.25
    """Chance of changing one layer's width (units or channels)."""
    p_kernel: float = 0.05
    """Chance of changing one convolution's kernel size."""
    p_stride: float = 0.05
    """Chance of changing one convolution's or upsampling's stride."""
    p_dropout: float = 0.05
    """Chance of changing one layer's dropout."""
    p_noise: float = 0.05
    """Chance of changing one noise layer's scale."""
    p_activation: float = 0.1
    """Chance of changing one layer's activation."""
    p_norm: float = 0.05
    """Chance of changing one layer's normalisation."""
    p_optimizer: float = 0.05
    """Chance of switching a network's optimizer (adam, sgd, rmsprop)."""
    p_lr: float = 0.25
    """Chance of changing a network's learning rate."""
    p_betas: float = 0.05
    """Chance of changing a network's optimizer betas (momentum terms)."""
    p_latent: float = 0.05
    """Chance of changing the latent noise: its size or distribution."""
    p_loss: float = 0.03
    """Chance of switching the pair's loss (minimax, non-saturating, least squares, hinge)."""
    p_large: float = 0.2
    """Share of parameter changes made at large scale (redrawn) rather than small (perturbed)."""
    p_crossover: float = 0.2
    """Chance that a child has two parents spliced at a cut point rather than one."""
    p_mutate: float = 0.3
    """Chance that a child not made by crossover is mutated; otherwise it is a clone of its parent that
    trains on. Variation every round disrupts networks faster than one round of training repairs them."""
    small_sigma: float = 0.2
    """Log-scale standard deviation of a small change to a width or learning rate."""
    min_layers: int = 1
    """Fewest dense, conv or deconv layers a network may have."""
    max_layers: int = 4
    """Most hidden layers a network may have, adapters included."""
    min_width: int = 8
    """Narrowest hidden layer."""
    max_width: int = 256
    """Widest hidden layer."""
    min_lr: float = 1e-5
    """Smallest learning rate."""
    max_lr: float = 1e-2
    """Largest learning rate."""
    adapt: bool = False
    """Let operator probabilities follow how often each operator helped fitness (genome/effects.py)."""
    adapt_rate: float = 0.5
    """How strongly probabilities adapt: an operator that always helped has its probability × e^rate."""
    adapt_min_count: int = 10
    """Results an operator needs before its probability adapts."""
    max_parameters: int = 2_000_000
    """Most parameters a pair may have, generator and discriminator together."""
    max_side: int = 64
    """Largest side of any feature map, so upsampling cannot run away."""
    min_latent: int = 2
    """Smallest latent size."""
    max_latent: int = 64
    """Largest latent size."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.startswith("p_") and not 0 <= value <= 1:
                raise ValueError(f"mutation.{f.name} must be in [0, 1]; got {value!r}")
        for name in ("max_parameters", "max_side", "min_layers", "min_width", "min_latent"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"mutation.{name} must be a positive integer; got {value!r}")
        pairs = [("min_layers", "max_layers"), ("min_width", "max_width"), ("min_lr", "max_lr"),
                 ("min_latent", "max_latent")]
        for low, high in pairs:
            if not 0 < getattr(self, low) <= getattr(self, high):
                raise ValueError(
                    f"mutation.{low} must be positive and at most mutation.{high}; "
                    f"got {getattr(self, low)!r} and {getattr(self, high)!r}")
        if not self.max_lr < 1:
            raise ValueError(f"mutation.max_lr must be below 1; got {self.max_lr!r}")
        if not 0 <= self.adapt_rate < math.inf:
            raise ValueError(f"mutation.adapt_rate must be non-negative; got {self.adapt_rate!r}")
        if self.adapt_min_count < 1:
            raise ValueError(f"mutation.adapt_min_count must be at least 1; got {self.adapt_min_count!r}")
        if not 0 < self.small_sigma < math.inf:
            raise ValueError(f"mutation.small_sigma must be positive; got {self.small_sigma!r}")


def _clip(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def _new_width(width: int, rng: np.random.Generator, cfg: MutationConfig, large: bool) -> int:
    if large:
        value = math.exp(rng.uniform(math.log(cfg.min_width), math.log(cfg.max_width)))
    else:
        value = width * math.exp(rng.normal(0, cfg.small_sigma))
        if round(value) == width:  # a small change that changes nothing is no mutation
            value = width + (1 if rng.random() < 0.5 else -1)
    return int(_clip(round(value), cfg.min_width, cfg.max_width))


def _new_lr(lr: float, rng: np.random.Generator, cfg: MutationConfig, large: bool) -> float:
    if large:
        return float(math.exp(rng.uniform(math.log(cfg.min_lr), math.log(cfg.max_lr))))
    return float(_clip(lr * math.exp(rng.normal(0, cfg.small_sigma)), cfg.min_lr, cfg.max_lr))


def _other(options: tuple[str, ...], current: str, rng: np.random.Generator) -> str:
    return str(rng.choice([o for o in options if o != current]))


def within_limits(genome: Genome, cfg: MutationConfig) -> bool:
    """Depth, parameter count and feature-map sides within the configured limits, read from the plan.
    At least `min_layers` of a network's layers must learn a non-linear map (dense, conv, deconv):
    adapters, reshapes, noise and upsampling alone would leave it linear."""
    for net in NETS:
        layers = genome.layers(net)
        learning = sum(layer.kind in COMPUTING for layer in layers)
        if not (cfg.min_layers <= learning and len(layers) <= cfg.max_layers):
            return False
    layout = plan(genome)
    return layout.parameters <= cfg.max_parameters and layout.max_side <= cfg.max_side


def auto_padding(kind: str, kernel: int, stride: int) -> int:
    """Padding that keeps a convolution's side at in/stride and a transposed one's at in·stride."""
    padding = (kernel - 1) // 2 if kind == "conv" else (kernel - stride) // 2
    return int(_clip(padding, 0, kernel - 1))


def add_layer(genome: Genome, net: str, rng: np.random.Generator, cfg: MutationConfig) -> tuple[Genome, Ops]:
    """Duplicate a layer and place the twin right after it; the twin starts from its weights."""
    layers = list(genome.layers(net))
    twins = [i for i, layer in enumerate(layers) if layer.kind in COMPUTING + ("noise", "upsample")]
    if len(layers) >= cfg.max_layers or not twins:
        return genome, []
    i = int(rng.choice(twins))
    layers.insert(i + 1, layers[i])
    return genome.with_layers(net, layers), [{"op": "add_layer", "net": net, "index": i + 1, "copy_of": i,
                                              "kind": layers[i].kind}]


def delete_layer(genome: Genome, net: str, rng: np.random.Generator, cfg: MutationConfig) -> tuple[Genome, Ops]:
    """Delete a layer; where the layers around it no longer meet, the plan's adapters make them."""
    layers = list(genome.layers(net))
    if len(layers) <= cfg.min_layers:
        return genome, []
    i = int(rng.integers(len(layers)))
    removed = layers.pop(i)
    return genome.with_layers(net, layers), [{"op": "delete_layer", "net": net, "index": i, "kind": removed.kind}]


NOISE_SCALES = (0.01, 0.5)  # initial scales of an inserted noise layer are drawn log-uniformly in this range


def add_noise(genome: Genome, net: str, rng: np.random.Generator, cfg: MutationConfig) -> tuple[Genome, Ops]:
    """Insert a fresh noise layer anywhere in `net`, but not beside another one (two in a row are one
    with a larger scale). Noise keeps the shape it receives, so the plan around it is unchanged."""
    layers = list(genome.layers(net))
    places = [i for i in range(len(layers) + 1)
              if not any(0 <= j < len(layers) and layers[j].kind == "noise" for j in (i - 1, i))]
    if len(layers) >= cfg.max_layers or not places:
        return genome, []
    i = int(rng.choice(places))
    low, high = NOISE_SCALES
    scale = round(math.exp(rng.uniform(math.log(low), math.log(high))), 4)
    layers.insert(i, Layer(kind="noise", scale=scale))
    return genome.with_layers(net, layers), [{"op": "add_noise", "net": net, "index": i, "scale": scale}]


# Which kinds each layer parameter applies to.
LAYER_PARAMETERS = {
    "width": ("dense", "conv", "deconv", "reshape"),
    "kernel": ("conv", "deconv"),
    "stride": ("conv", "deconv", "upsample"),
    "activation": COMPUTING,
    "norm": COMPUTING,
    "dropout": COMPUTING,
    "noise": ("noise",),
}


def change_layer(genome: Genome, net: str, what: str, rng: np.random.Generator,
                 cfg: MutationConfig) -> tuple[Genome, Ops]:
    """Change one parameter of one layer it applies to: `width`, `kernel`, `stride`, `activation`,
    `norm`, `dropout` or `noise` (the noise scale), at small or large scale."""
    if what not in LAYER_PARAMETERS:
        raise ValueError(f"unknown layer parameter {what!r}")
    layers = list(genome.layers(net))
    fitting = [i for i, layer in enumerate(layers) if layer.kind in LAYER_PARAMETERS[what]]
    if not fitting:
        return genome, []
    i = int(rng.choice(fitting))
    layer = layers[i]
    large = bool(rng.random() < cfg.p_large)
    field = "scale" if what == "noise" else what
    if what == "width":
        value = _new_width(layer.width, rng, cfg, large)
    elif what == "kernel":
        value = int(rng.choice([1, 3, 4, 5]) if large else _clip(layer.kernel + rng.choice([-1, 1]), 1, 5))
    elif what == "stride":
        value = 1 if layer.stride > 1 else 2
    elif what == "activation":
        value = _other(ACTIVATIONS, layer.activation, rng)
    elif what == "norm":
        value = _other(NORMS, layer.norm, rng)
    elif what == "dropout":
        value = float(rng.choice([0.0, 0.1, 0.25, 0.4])) if large else \
            round(float(_clip(layer.dropout + rng.normal(0, 0.05), 0.0, 0.5)), 3)
    else:  # noise scale
        value = float(rng.uniform(0, 1)) if large else float(_clip(layer.scale * math.exp(rng.normal(0, 0.3)), 0, 5))
    if value == getattr(layer, field):
        return genome, []
    changes = {field: value}
    if what in ("kernel", "stride") and layer.kind != "upsample":  # in one step: padding must stay below the kernel
        kernel, stride = (value, layer.stride) if what == "kernel" else (layer.kernel, value)
        changes["padding"] = auto_padding(layer.kind, kernel, stride)
    layers[i] = replace(layer, **changes)
    op = {"op": f"change_{what}", "net": net, "index": i, "from": getattr(layer, field), "to": value,
          "scale": "large" if large else "small"}
    return genome.with_layers(net, layers), [op]


def change_optimizer(genome: Genome, net: str, what: str, rng: np.random.Generator,
                     cfg: MutationConfig) -> tuple[Genome, Ops]:
    """Switch a network's optimizer (`name`), change its learning rate (`lr`) or its `betas`."""
    field = {"generator": "g_optimizer", "discriminator": "d_optimizer"}[net]
    gene: OptimizerGene = getattr(genome, field)
    large = bool(rng.random() < cfg.p_large)
    if what == "name":
        new = replace(gene, name=_other(OPTIMIZERS, gene.name, rng))
        op = {"op": "change_optimizer", "net": net, "from": gene.name, "to": new.name}
    elif what == "lr":
        new = replace(gene, lr=_new_lr(gene.lr, rng, cfg, large))
        if new.lr == gene.lr:  # clipped back at a limit: no change, so no mutation
            return genome, []
        op = {"op": "change_lr", "net": net, "from": gene.lr, "to": new.lr, "scale": "large" if large else "small"}
    elif what == "betas":
        if large:  # the settings GAN practice uses: no, light or heavy momentum
            betas = (float(rng.choice([0.0, 0.5, 0.9])), float(rng.choice([0.99, 0.999, 0.9999])))
        else:  # perturb each beta's distance from 1 on a log scale
            betas = tuple(float(_clip(1 - (1 - b) * math.exp(rng.normal(0, cfg.small_sigma)), 0.0, limit))
                          for b, limit in zip(gene.betas, (0.99, 0.9999)))
        if betas == gene.betas:
            return genome, []
        new = replace(gene, betas=betas)
        op = {"op": "change_betas", "net": net, "from": list(gene.betas), "to": list(betas),
              "scale": "large" if large else "small"}
    else:
        raise ValueError(f"unknown optimizer parameter {what!r}")
    return replace(genome, **{field: new}), [op]


def change_loss(genome: Genome, rng: np.random.Generator, cfg: MutationConfig) -> tuple[Genome, Ops]:
    new = _other(LOSSES, genome.loss, rng)
    return replace(genome, loss=new), [{"op": "change_loss", "from": genome.loss, "to": new}]


def change_latent(genome: Genome, rng: np.random.Generator, cfg: MutationConfig) -> tuple[Genome, Ops]:
    """Change the latent noise: its size (small or large scale) or its distribution."""
    if rng.random() < 0.5:
        new = _other(LATENT_DISTS, genome.latent_dist, rng)
        return replace(genome, latent_dist=new), [{"op": "change_latent_dist", "from": genome.latent_dist, "to": new}]
    large = bool(rng.random() < cfg.p_large)
    if large:
        size = int(rng.integers(cfg.min_latent, cfg.max_latent + 1))
    else:
        size = genome.latent_dim + int(rng.choice([-2, -1, 1, 2]))
    size = int(_clip(size, cfg.min_latent, cfg.max_latent))
    if size == genome.latent_dim:
        return genome, []
    op = {"op": "change_latent_dim", "from": genome.latent_dim, "to": size, "scale": "large" if large else "small"}
    return replace(genome, latent_dim=size), [op]


def mutate(genome: Genome, rng: np.random.Generator, cfg: MutationConfig) -> tuple[Genome, Ops]:
    """Apply each operator with its probability, undoing any that would break a limit; if none
    changed anything, force one so a child differs from its parent."""
    candidates = []
    for net in NETS:
        candidates += [
            (cfg.p_add_layer, lambda g, net=net: add_layer(g, net, rng, cfg)),
            (cfg.p_delete_layer, lambda g, net=net: delete_layer(g, net, rng, cfg)),
            (cfg.p_add_noise, lambda g, net=net: add_noise(g, net, rng, cfg)),
        ]
        for what in LAYER_PARAMETERS:
            p = getattr(cfg, f"p_{what}")
            candidates.append((p, lambda g, net=net, what=what: change_layer(g, net, what, rng, cfg)))
        candidates += [
            (cfg.p_optimizer, lambda g, net=net: change_optimizer(g, net, "name", rng, cfg)),
            (cfg.p_lr, lambda g, net=net: change_optimizer(g, net, "lr", rng, cfg)),
            (cfg.p_betas, lambda g, net=net: change_optimizer(g, net, "betas", rng, cfg)),
        ]
    candidates.append((cfg.p_latent, lambda g: change_latent(g, rng, cfg)))
    candidates.append((cfg.p_loss, lambda g: change_loss(g, rng, cfg)))

    def attempt(current: Genome, op) -> tuple[Genome, Ops]:
        changed, done = op(current)
        if done and not within_limits(changed, cfg):
            return current, []
        return changed, done

    ops: Ops = []
    for p, op in candidates:
        if rng.random() < p:
            genome, done = attempt(genome, op)
            ops += done
    weights = np.array([p for p, _ in candidates], dtype=float)
    for _ in range(20):  # some draws are no-ops (a full network cannot grow); retry a few
        if ops or weights.sum() == 0:
            break
        _, op = candidates[int(rng.choice(len(candidates), p=weights / weights.sum()))]
        genome, ops = attempt(genome, op)
    return genome, ops
