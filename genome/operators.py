"""Pure variation operators: `(genome, rng, config) -> (child, ops)`.

The random generator is always passed in (numpy `Generator`), never global, so a player's
lineage is reproducible from its seed. `ops` is a list of plain dicts naming what was done,
recorded with the child in the lineage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import numpy as np

from genome.genes import ACTIVATIONS, LATENT_DISTS, LOSSES, NETS, NORMS, OPTIMIZERS, Genome, Layer, OptimizerGene

Ops = list[dict]


@dataclass(frozen=True)
class MutationConfig:
    """Probabilities and limits of variation; every field is settable under `[mutation]` in the TOML."""

    p_add_layer: float = 0.15
    """Chance of adding a layer, by duplicating an existing one next to itself."""
    p_delete_layer: float = 0.1
    """Chance of deleting a layer."""
    p_width: float = 0.25
    """Chance of changing one layer's width."""
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
    p_crossover: float = 0.5
    """Chance that a child has two parents spliced at a cut point rather than one."""
    small_sigma: float = 0.2
    """Log-scale standard deviation of a small change to a width or learning rate."""
    min_layers: int = 1
    """Fewest hidden layers a network may have."""
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
    min_latent: int = 2
    """Smallest latent size."""
    max_latent: int = 64
    """Largest latent size."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.startswith("p_") and not 0 <= value <= 1:
                raise ValueError(f"mutation.{f.name} must be in [0, 1]; got {value!r}")
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


def add_layer(genome: Genome, net: str, rng: np.random.Generator, cfg: MutationConfig) -> tuple[Genome, Ops]:
    """Duplicate a dense layer and place the twin right after it; the twin starts from its weights."""
    layers = list(genome.layers(net))
    dense = [i for i, layer in enumerate(layers) if layer.kind == "dense"]
    if len(layers) >= cfg.max_layers or not dense:
        return genome, []
    i = int(rng.choice(dense))
    layers.insert(i + 1, layers[i])
    return genome.with_layers(net, layers), [{"op": "add_layer", "net": net, "index": i + 1, "copy_of": i}]


def delete_layer(genome: Genome, net: str, rng: np.random.Generator, cfg: MutationConfig) -> tuple[Genome, Ops]:
    layers = list(genome.layers(net))
    if len(layers) <= cfg.min_layers:
        return genome, []
    i = int(rng.integers(len(layers)))
    del layers[i]
    return genome.with_layers(net, layers), [{"op": "delete_layer", "net": net, "index": i}]


def change_layer(genome: Genome, net: str, what: str, rng: np.random.Generator,
                 cfg: MutationConfig) -> tuple[Genome, Ops]:
    """Change one parameter (`width`, `activation` or `norm`) of one layer."""
    layers = list(genome.layers(net))
    i = int(rng.integers(len(layers)))
    layer = layers[i]
    large = bool(rng.random() < cfg.p_large)
    if what == "width":
        value = _new_width(layer.width, rng, cfg, large)
    elif what == "activation":
        value = _other(ACTIVATIONS, layer.activation, rng)
    elif what == "norm":
        value = _other(NORMS, layer.norm, rng)
    else:
        raise ValueError(f"unknown layer parameter {what!r}")
    if layer.kind != "dense" and what != "width":
        return genome, []  # adapters are bare linear maps: nothing else to change
    if value == getattr(layer, what):
        return genome, []
    layers[i] = replace(layer, **{what: value})
    op = {"op": f"change_{what}", "net": net, "index": i, "from": getattr(layer, what), "to": value,
          "scale": "large" if large and what == "width" else "small"}
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
    """Apply each operator with its probability; if none changed anything, force one so a child differs."""
    candidates = []
    for net in NETS:
        candidates += [
            (cfg.p_add_layer, lambda g, net=net: add_layer(g, net, rng, cfg)),
            (cfg.p_delete_layer, lambda g, net=net: delete_layer(g, net, rng, cfg)),
            (cfg.p_width, lambda g, net=net: change_layer(g, net, "width", rng, cfg)),
            (cfg.p_activation, lambda g, net=net: change_layer(g, net, "activation", rng, cfg)),
            (cfg.p_norm, lambda g, net=net: change_layer(g, net, "norm", rng, cfg)),
            (cfg.p_optimizer, lambda g, net=net: change_optimizer(g, net, "name", rng, cfg)),
            (cfg.p_lr, lambda g, net=net: change_optimizer(g, net, "lr", rng, cfg)),
            (cfg.p_betas, lambda g, net=net: change_optimizer(g, net, "betas", rng, cfg)),
        ]
    candidates.append((cfg.p_latent, lambda g: change_latent(g, rng, cfg)))
    candidates.append((cfg.p_loss, lambda g: change_loss(g, rng, cfg)))
    ops: Ops = []
    for p, op in candidates:
        if rng.random() < p:
            genome, done = op(genome)
            ops += done
    weights = np.array([p for p, _ in candidates], dtype=float)
    for _ in range(10):  # some draws are no-ops (a full network cannot grow); retry a few
        if ops or weights.sum() == 0:
            break
        _, op = candidates[int(rng.choice(len(candidates), p=weights / weights.sum()))]
        genome, ops = op(genome)
    return genome, ops


def _splice(a: tuple[Layer, ...], b: tuple[Layer, ...], cut: int, cfg: MutationConfig) -> tuple[tuple[Layer, ...], bool]:
    """`a` before the cut, `b` from it; an adapter at the seam where the widths differ."""
    head, tail = list(a[:cut]), list(b[cut:])
    adapter = False
    if head and tail and head[-1].width != b[cut - 1].width and len(head) + len(tail) < cfg.max_layers:
        # The first layer of the tail was trained on b[cut-1]'s width: map a's width onto it.
        head.append(Layer(kind="adapter", width=b[cut - 1].width))
        adapter = True
    return tuple(head + tail), adapter


def crossover(a: Genome, b: Genome, rng: np.random.Generator, cfg: MutationConfig) -> tuple[Genome, Ops]:
    """One-point crossover of each network's layer list, cut points drawn uniformly and independently.

    The other genes (latent, optimizers, batch size, steps, loss) are taken from either parent at random.
    """
    child = {}
    ops: Ops = []
    for net in NETS:
        la, lb = a.layers(net), b.layers(net)
        cut = int(rng.integers(0, min(len(la), len(lb)) + 1))
        child[net], adapter = _splice(la, lb, cut, cfg)
        ops.append({"op": "crossover", "net": net, "cut": cut, "adapter": adapter})
    for gene in ("latent_dim", "latent_dist", "g_optimizer", "d_optimizer", "batch_size", "steps", "loss"):
        child[gene] = getattr(a if rng.random() < 0.5 else b, gene)
    return Genome(**child), ops


def breed(parents: list[Genome], rng: np.random.Generator, cfg: MutationConfig) -> tuple[Genome, Ops]:
    """The child of one or two parents: crossover (when two and drawn) then mutation.

    Parents are stamped first, so every layer of the child records which parent layer it came from.
    """
    if not parents:
        raise ValueError("breeding needs at least one parent")
    child, ops = parents[0].stamped(0), []
    if len(parents) > 1 and rng.random() < cfg.p_crossover:
        child, ops = crossover(child, parents[1].stamped(1), rng, cfg)
    child, more = mutate(child, rng, cfg)
    return child, ops + more


def random_genome(rng: np.random.Generator, cfg: MutationConfig, batch_size: int, steps: int) -> Genome:
    """A first-generation genome drawn uniformly within the limits, so players start from diverse shapes."""

    def log_uniform(low: float, high: float, preferred_low: float, preferred_high: float) -> float:
        # Within the preferred range where it overlaps the limits, else anywhere within the limits.
        a, b = max(low, preferred_low), min(high, preferred_high)
        a, b = (a, b) if a <= b else (low, high)
        return math.exp(rng.uniform(math.log(a), math.log(b)))

    def layers() -> tuple[Layer, ...]:
        depth = int(rng.integers(cfg.min_layers, max(cfg.min_layers, min(cfg.max_layers, 3)) + 1))
        width = int(_clip(round(log_uniform(cfg.min_width, cfg.max_width, 16, cfg.max_width)),
                          cfg.min_width, cfg.max_width))
        activation = str(rng.choice(["relu", "leaky_relu", "elu"]))
        return tuple(Layer(kind="dense", width=width, activation=activation) for _ in range(depth))

    def optimizer() -> OptimizerGene:
        lr = _clip(log_uniform(cfg.min_lr, cfg.max_lr, 1e-4, 2e-3), cfg.min_lr, cfg.max_lr)
        return OptimizerGene(name="adam", lr=float(lr))

    latent = int(_clip(8, cfg.min_latent, cfg.max_latent))
    return Genome(generator=layers(), discriminator=layers(), latent_dim=latent, latent_dist="normal",
                  g_optimizer=optimizer(), d_optimizer=optimizer(), batch_size=batch_size, steps=steps)
