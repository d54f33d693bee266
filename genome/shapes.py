"""Shape inference: what every layer of a network receives and yields, computed from the genes alone.

Sizes follow the usual rules, `out = (in + 2·padding − kernel) // stride + 1` for a convolution and
`out = (in − 1)·stride − 2·padding + kernel` for a transposed one; never a trial forward pass. Where a
layer cannot take what it receives, the plan puts an automatic adapter in front of it: a flatten
(image to vector), a linear map viewed as an image (vector to image) or a resize (an image too small
for the kernel). The heads then yield exactly the data's shape (generator) or one score
(discriminator). The builder follows the plan, so whatever the operators make builds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from genome.genes import Genome, Layer

Shape = tuple[int, ...]
SEED_SIDE = 4  # side of the image a vector is viewed as when a spatial layer follows it (DCGAN's 4×4)


@dataclass(frozen=True)
class Step:
    """One gene in place: what enters, the automatic adapter in front of it, what leaves."""

    gene: Layer
    in_shape: Shape
    pre: str | None  # None, "flatten", "to_image" or "resize"
    core_shape: Shape  # what the gene's own operation receives, after `pre`
    out_shape: Shape
    parameters: int


@dataclass(frozen=True)
class Plan:
    generator: tuple[Step, ...]
    discriminator: tuple[Step, ...]
    g_head: tuple[Shape, Shape]  # (in, out)
    d_head: tuple[Shape, Shape]
    parameters: int
    max_side: int  # largest feature-map side anywhere in either network


def numel(shape: Shape) -> int:
    return math.prod(shape)


def to_image_shape(features: int, gene: Layer) -> Shape:
    channels = gene.width if gene.kind in ("conv", "deconv") else max(1, min(64, features // SEED_SIDE ** 2))
    return (channels, SEED_SIDE, SEED_SIDE)


def conv_side(side: int, gene: Layer) -> int:
    return (side + 2 * gene.padding - gene.kernel) // gene.stride + 1


def deconv_side(side: int, gene: Layer) -> int:
    return (side - 1) * gene.stride - 2 * gene.padding + gene.kernel


def smallest_side(gene: Layer) -> int:
    """The smallest input side for which the gene yields a side of at least 1."""
    if gene.kind == "conv":
        return max(1, gene.kernel - 2 * gene.padding)
    if gene.kind == "deconv":
        return max(1, math.ceil((1 + 2 * gene.padding - gene.kernel) / gene.stride) + 1)
    return 1


def _norm_parameters(gene: Layer, channels: int) -> int:
    return 2 * channels if gene.norm in ("batch", "layer") else 0


def plan_step(gene: Layer, shape: Shape) -> Step:
    pre, core = None, shape
    if gene.kind == "dense" or (gene.kind == "adapter" and gene.size == 0):
        if len(shape) == 3:
            pre, core = "flatten", (numel(shape),)
    elif gene.kind in ("conv", "deconv", "upsample"):
        if len(shape) == 1:
            pre, core = "to_image", to_image_shape(shape[0], gene)
        if core[1] < smallest_side(gene):
            pre, core = ("to_image" if pre == "to_image" else "resize"), (core[0], smallest_side(gene), smallest_side(gene))
    parameters = shape[0] * numel(core) + numel(core) if pre == "to_image" else 0

    kind = gene.kind
    if kind == "dense":
        out = (gene.width,)
        parameters += core[0] * gene.width + gene.width + _norm_parameters(gene, gene.width)
    elif kind == "conv":
        side = conv_side(core[1], gene)
        out = (gene.width, side, side)
        parameters += core[0] * gene.width * gene.kernel ** 2 + gene.width + _norm_parameters(gene, gene.width)
    elif kind == "deconv":
        side = deconv_side(core[1], gene)
        out = (gene.width, side, side)
        parameters += core[0] * gene.width * gene.kernel ** 2 + gene.width + _norm_parameters(gene, gene.width)
    elif kind == "upsample":
        out = (core[0], core[1] * gene.stride, core[2] * gene.stride)
    elif kind == "reshape":
        out = (gene.width, gene.size, gene.size)
        parameters += numel(shape) * numel(out) + numel(out)
    elif kind == "noise":
        out = shape
        parameters += 1
    elif kind == "adapter":
        if gene.size == 0:
            out = (gene.width,)
            parameters += core[0] * gene.width + gene.width
        else:
            out = (gene.width, gene.size, gene.size)
            if len(shape) == 1:
                parameters += shape[0] * numel(out) + numel(out)
            elif shape[0] != gene.width:
                parameters += shape[0] * gene.width + gene.width
    else:
        raise ValueError(f"unknown layer kind {kind!r}")
    return Step(gene, shape, pre, core, out, parameters)


def plan_network(layers: tuple[Layer, ...], in_shape: Shape) -> tuple[Step, ...]:
    steps, shape = [], in_shape
    for gene in layers:
        step = plan_step(gene, shape)
        steps.append(step)
        shape = step.out_shape
    return tuple(steps)


def generator_head_parameters(shape: Shape, data_shape: Shape) -> int:
    if len(data_shape) == 1 or len(shape) == 1:
        return numel(shape) * numel(data_shape) + numel(data_shape)
    return shape[0] * data_shape[0] * 9 + data_shape[0]  # a 3×3 convolution to the data's channels


def plan(genome: Genome) -> Plan:
    g = plan_network(genome.generator, (genome.latent_dim,))
    d = plan_network(genome.discriminator, genome.d_input_shape)
    g_last = g[-1].out_shape if g else (genome.latent_dim,)
    d_last = d[-1].out_shape if d else genome.d_input_shape
    parameters = (sum(s.parameters for s in g + d) + generator_head_parameters(g_last, genome.data_shape)
                  + numel(d_last) + 1)
    sides = [s for step in g + d for shape in (step.core_shape, step.out_shape) if len(shape) == 3
             for s in shape[1:]]
    return Plan(g, d, (g_last, genome.data_shape), (d_last, (1,)), parameters, max(sides, default=0))
