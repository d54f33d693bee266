"""One-point crossover and breeding: the child of one or two parents."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from genome.genes import NETS, Genome, Layer
from genome.operators import MutationConfig, Ops, mutate, within_limits
from genome.shapes import Shape, numel, plan_network


def _input_shape(genome: Genome, net: str) -> Shape:
    return (genome.latent_dim,) if net == "generator" else genome.d_input_shape


def _seam_adapter(shape: Shape) -> Layer:
    """Makes whatever arrives at a seam into `shape`: a linear map for widths; a 1×1 convolution
    for channels and a resize for the side of an image."""
    return Layer(kind="adapter", width=shape[0], size=shape[1] if len(shape) == 3 else 0)


def _folds(adapter: Layer, following: Layer, yields: Shape) -> bool:
    """Whether the dense layer after a seam can take the adapter's place (issue 14: on networks this small a
    step costs per module). An adapter to a width is a pure linear map A, and a dense layer applies its W
    to what it receives before anything else, so W·A (bias W·b_A + b_W) computes the same in one module.
    Spectral normalisation forbids it (W·A has another largest singular value than W), and so does a
    narrow adapter: W·A would hold more weights than A and W apart, and a child over the limits for it."""
    if adapter.size or following.kind != "dense" or following.norm == "spectral":
        return False
    inputs = numel(yields)
    return inputs * following.width <= adapter.width * (inputs + following.width + 1)


def splice(a: Genome, b: Genome, net: str, cut: int, cfg: MutationConfig) -> tuple[tuple[Layer, ...], bool | str]:
    """`a`'s layers before the cut, `b`'s from it; an adapter at the seam where the shape `a` yields
    there differs from the one `b`'s layer was trained on (and the depth limit leaves room), or "folded"
    where `b`'s layer takes the adapter into its own weights (`inherit` starts it as W·A)."""
    la, lb = a.layers(net), b.layers(net)
    head, tail = list(la[:cut]), list(lb[cut:])
    if not head or not tail:
        return tuple(head + tail), False
    yields = plan_network(la[:cut], _input_shape(a, net))[-1].out_shape
    trained_on = plan_network(lb[:cut], _input_shape(b, net))[-1].out_shape
    if yields == trained_on:
        return tuple(head + tail), False
    adapter = _seam_adapter(trained_on)
    if _folds(adapter, tail[0], yields):
        return tuple(head + tail), "folded"
    if len(head) + len(tail) < cfg.max_layers:
        return tuple(head + [adapter] + tail), True
    return tuple(head + tail), False


def crossover(a: Genome, b: Genome, rng: np.random.Generator, cfg: MutationConfig) -> tuple[Genome, Ops]:
    """One-point crossover of each network's layer list, cut points drawn uniformly and independently.

    The other genes (latent, optimizers, batch size, steps, loss) are taken from either parent at
    random. A draw whose child breaks a limit is drawn again; after a few, the child is `a`.
    """
    if a.data_shape != b.data_shape:
        raise ValueError(f"cannot cross genomes of different data shapes {a.data_shape} and {b.data_shape}")
    for _ in range(8):
        cuts = [int(rng.integers(0, min(len(a.layers(net)), len(b.layers(net))) + 1)) for net in NETS]
        child: dict = {"data_shape": a.data_shape}
        for gene in ("latent_dim", "latent_dist", "g_optimizer", "d_optimizer", "batch_size", "steps", "loss"):
            child[gene] = getattr(a if rng.random() < 0.5 else b, gene)
        # a's layers before the cut run on the child's latent, which may be b's: the seam is judged on it.
        front = replace(a, latent_dim=child["latent_dim"])
        ops: Ops = []
        for net, cut in zip(NETS, cuts):
            child[net], adapter = splice(front, b, net, cut, cfg)
            ops.append({"op": "crossover", "net": net, "cut": cut, "adapter": adapter})
        # The discriminator's first layer reads `pack` samples at once: the pack follows whichever parent
        # supplied it (a's when the cut leaves a head), never the default of 1, which lost packing to
        # every crossover (issue 13).
        child["pack"] = a.pack if cuts[NETS.index("discriminator")] > 0 else b.pack
        genome = Genome(**child)
        if within_limits(genome, cfg):
            return genome, ops
    return a, []


def compose(g_side: Genome, d_side: Genome) -> Genome:
    """The generator side of one genome (generator, latent, its optimizer, loss, training genes) with
    the discriminator side of another (discriminator and its optimizer)."""
    if g_side.data_shape != d_side.data_shape:
        raise ValueError(f"cannot compose genomes of different data shapes {g_side.data_shape} and {d_side.data_shape}")
    return replace(g_side, discriminator=d_side.discriminator, d_optimizer=d_side.d_optimizer, pack=d_side.pack)


def breed(parents: list[Genome], rng: np.random.Generator, cfg: MutationConfig,
          d_parents: list[Genome] | None = None) -> tuple[Genome, Ops]:
    """The child of one or two parents: crossover (when two and drawn) then mutation.

    With `d_parents` (discriminators chosen on an all-versus-all round, since a generator can hack its
    own discriminator's reward), the child's discriminator side comes from them instead. Parents are
    stamped first, so every layer of the child records which parent layer it came from: slots
    0.. for `parents`, then `len(parents)`.. for `d_parents`, the order of the state dicts to inherit from.
    """
    if not parents:
        raise ValueError("breeding needs at least one parent")
    sides = [parent.stamped(slot) for slot, parent in enumerate(parents[:2])]
    if d_parents:
        sides = [compose(side, d_parents[min(i, len(d_parents) - 1)].stamped(len(parents) + min(i, len(d_parents) - 1)))
                 for i, side in enumerate(sides)]
    child, ops = sides[0], []
    if len(sides) > 1 and rng.random() < cfg.p_crossover:
        child, ops = crossover(child, sides[1], rng, cfg)
    if d_parents:
        ops.append({"op": "choose_discriminator"})
    if ops and ops[0]["op"] == "crossover" or rng.random() < cfg.p_mutate:
        child, more = mutate(child, rng, cfg)
        return child, ops + more
    return child, ops + [{"op": "clone"}]
