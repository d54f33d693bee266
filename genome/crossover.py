"""One-point crossover and breeding: the child of one or two parents."""

from __future__ import annotations

import numpy as np

from genome.genes import NETS, Genome, Layer
from genome.operators import MutationConfig, Ops, mutate, within_limits
from genome.shapes import Shape, plan_network


def _input_shape(genome: Genome, net: str) -> Shape:
    return (genome.latent_dim,) if net == "generator" else genome.data_shape


def _seam_adapter(shape: Shape) -> Layer:
    """Makes whatever arrives at a seam into `shape`: a linear map for widths; a 1×1 convolution
    for channels and a resize for the side of an image."""
    return Layer(kind="adapter", width=shape[0], size=shape[1] if len(shape) == 3 else 0)


def splice(a: Genome, b: Genome, net: str, cut: int, cfg: MutationConfig) -> tuple[tuple[Layer, ...], bool]:
    """`a`'s layers before the cut, `b`'s from it; an adapter at the seam where the shape `a` yields
    there differs from the one `b`'s layer was trained on (and the depth limit leaves room)."""
    la, lb = a.layers(net), b.layers(net)
    head, tail = list(la[:cut]), list(lb[cut:])
    if not head or not tail:
        return tuple(head + tail), False
    yields = plan_network(la[:cut], _input_shape(a, net))[-1].out_shape
    trained_on = plan_network(lb[:cut], _input_shape(b, net))[-1].out_shape
    if yields != trained_on and len(head) + len(tail) < cfg.max_layers:
        return tuple(head + [_seam_adapter(trained_on)] + tail), True
    return tuple(head + tail), False


def crossover(a: Genome, b: Genome, rng: np.random.Generator, cfg: MutationConfig) -> tuple[Genome, Ops]:
    """One-point crossover of each network's layer list, cut points drawn uniformly and independently.

    The other genes (latent, optimizers, batch size, steps, loss) are taken from either parent at
    random. A draw whose child breaks a limit is drawn again; after a few, the child is `a`.
    """
    if a.data_shape != b.data_shape:
        raise ValueError(f"cannot cross genomes of different data shapes {a.data_shape} and {b.data_shape}")
    for _ in range(8):
        child: dict = {"data_shape": a.data_shape}
        ops: Ops = []
        for net in NETS:
            cut = int(rng.integers(0, min(len(a.layers(net)), len(b.layers(net))) + 1))
            child[net], adapter = splice(a, b, net, cut, cfg)
            ops.append({"op": "crossover", "net": net, "cut": cut, "adapter": adapter})
        for gene in ("latent_dim", "latent_dist", "g_optimizer", "d_optimizer", "batch_size", "steps", "loss"):
            child[gene] = getattr(a if rng.random() < 0.5 else b, gene)
        genome = Genome(**child)
        if within_limits(genome, cfg):
            return genome, ops
    return a, []


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
