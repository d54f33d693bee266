"""Image architectures: shape inference from the genes, operators over vector and image genomes,
crossover seams, and weight inheritance for convolutions (issue 3)."""

from __future__ import annotations

import json
import math
from dataclasses import fields, replace
from functools import lru_cache

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import genome.shapes as shapes_module
from genome.build import build_pair
from genome.crossover import breed, crossover
from genome.effects import OPERATOR_PROBABILITY
from genome.genes import NETS, Genome, Layer, OptimizerGene
from genome.inherit import inherit
from genome.operators import LAYER_PARAMETERS, MutationConfig, mutate, within_limits
from genome.population import random_genome
from genome.shapes import conv_side, deconv_side, plan, plan_network, plan_step
from tests.test_genome import assert_inherits_everything


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small networks run faster on one thread; the setting is put back for other modules."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------------------------------------
# helpers


def make(generator, discriminator, data_shape, *, latent_dim=16, loss="non_saturating") -> Genome:
    return Genome(generator=tuple(generator), discriminator=tuple(discriminator), latent_dim=latent_dim,
                  latent_dist="normal", g_optimizer=OptimizerGene("adam", 1e-3),
                  d_optimizer=OptimizerGene("rmsprop", 2e-3), batch_size=8, steps=2, loss=loss,
                  data_shape=data_shape)


def operators_off(**overrides) -> MutationConfig:
    """Every mutation operator's probability 0, every child mutated (p_mutate 1), p_large and p_crossover
    as given, then `overrides`."""
    off = {f.name: 0.0 for f in fields(MutationConfig)
           if f.name.startswith("p_") and f.name not in ("p_large", "p_crossover", "p_mutate")}
    return MutationConfig(**{**off, "p_mutate": 1.0, **overrides})


def canonical(name: str) -> str:
    return name.replace("parametrizations.weight.original", "weight")


def block_state(state: dict, index: int) -> dict:
    prefix = f"layers.{index}."
    return {canonical(k[len(prefix):]): v for k, v in state.items() if k.startswith(prefix)}


def overlap(a: torch.Tensor, b: torch.Tensor) -> tuple:
    return tuple(slice(0, min(x, y)) for x, y in zip(a.shape, b.shape))


def input_shape(genome: Genome, net: str) -> tuple:
    return (genome.latent_dim,) if net == "generator" else genome.data_shape


def stats_forward(pair, n: int, seed: int) -> None:
    """One training-mode pass, so batch-norm statistics move off their defaults."""
    with torch.no_grad():
        pair.discriminator(pair.generator.sample(n, torch.Generator().manual_seed(seed)))


def check_genes(genome: Genome, cfg: MutationConfig) -> None:
    """Every limit the configuration sets, read from the genes and the plan."""
    assert within_limits(genome, cfg)
    layout = plan(genome)
    assert layout.parameters <= cfg.max_parameters
    assert layout.max_side <= cfg.max_side
    for net in NETS:
        layers = genome.layers(net)
        assert cfg.min_layers <= len(layers) <= cfg.max_layers, (net, len(layers))
        for layer in layers:
            if layer.kind in LAYER_PARAMETERS["width"]:
                assert cfg.min_width <= layer.width <= cfg.max_width, (net, layer)
    for gene in (genome.g_optimizer, genome.d_optimizer):
        assert cfg.min_lr <= gene.lr <= cfg.max_lr
    assert cfg.min_latent <= genome.latent_dim <= cfg.max_latent
    data = genome.to_dict()
    assert Genome.from_dict(data) == genome
    assert Genome.from_dict(json.loads(json.dumps(data))) == genome
    assert json.loads(json.dumps(data)) == data


def check_pair(genome: Genome, pair, n: int, seed: int) -> None:
    """Analytic count equals the built one; every block yields the shape the plan says; the generator
    yields exactly the data's shape, the discriminator one score; gradients are finite."""
    layout = plan(genome)
    assert layout.parameters == pair.parameter_count()
    seen = {net: [] for net in NETS}
    hooks = [block.register_forward_hook(lambda m, i, o, net=net: seen[net].append(tuple(o.shape[1:])))
             for net in NETS for block in getattr(pair, net).layers]
    try:
        fake = pair.generator.sample(n, torch.Generator().manual_seed(seed))
        scores = pair.discriminator(fake)
    finally:
        for hook in hooks:
            hook.remove()
    assert fake.shape == (n, *genome.data_shape)
    assert scores.shape == (n,)
    assert torch.isfinite(fake).all() and torch.isfinite(scores).all()
    assert seen["generator"] == [step.out_shape for step in layout.generator]
    assert seen["discriminator"] == [step.out_shape for step in layout.discriminator]
    scores.mean().backward()
    for net in (pair.generator, pair.discriminator):
        for name, p in net.named_parameters():
            assert p.grad is not None, name
            assert torch.isfinite(p.grad).all(), name


def check_inherit(child: Genome, pair, states: list[dict]) -> dict:
    """Inherit, then check every origin-linked tensor holds its source's overlapping slice."""
    report = inherit(pair, child, states)
    assert report["total"] == pair.parameter_count()
    assert 0 <= report["inherited"] <= report["total"]
    assert 0.0 <= report["share"] <= 1.0
    assert sum(report["per_parent"]) == report["inherited"]
    assert len(report["per_parent"]) == len(states)
    for net in NETS:
        got = getattr(pair, net).state_dict()
        for i, layer in enumerate(child.layers(net)):
            if layer.origin is None:
                continue
            slot, index = layer.origin
            assert slot < len(states), layer
            source = block_state(states[slot][net], index)
            for name, tensor in block_state(got, i).items():
                if name in source and source[name].dim() == tensor.dim():
                    region = overlap(tensor, source[name])
                    assert torch.equal(tensor[region], source[name][region]), (net, i, name)
    return report


def check_seams(a: Genome, b: Genome, child: Genome, ops: list[dict], cfg: MutationConfig) -> list[bool | str]:
    """`a`'s layers before each cut, `b`'s after it, and an adapter right at the seam exactly where the
    shape the child's prefix yields differs from the one `b`'s layer at the cut was trained on, unless
    that layer took the adapter into its weights ("folded"). Returns each op's adapter."""
    if not ops:  # every draw broke a limit: the child is `a`
        assert child == a
        return []
    assert [op["net"] for op in ops] == list(NETS)
    layout = plan(child)
    adapters = []
    for op in ops:
        net, cut = op["net"], op["cut"]
        la, lb = a.layers(net), b.layers(net)
        assert 0 <= cut <= min(len(la), len(lb))
        head, tail = list(la[:cut]), list(lb[cut:])
        layers = list(child.layers(net))
        if op["adapter"] == "folded":
            trained_on = plan_network(lb[:cut], input_shape(b, net))[-1].out_shape
            yields = plan_network(la[:cut], input_shape(child, net))[-1].out_shape
            assert yields != trained_on and len(trained_on) == 1, (net, cut)
            assert layers == head + tail and tail[0].kind == "dense" and tail[0].norm != "spectral", (net, cut)
        elif op["adapter"]:
            trained_on = plan_network(lb[:cut], input_shape(b, net))[-1].out_shape
            yields = plan_network(la[:cut], input_shape(child, net))[-1].out_shape
            assert yields != trained_on, (net, cut)
            expected = Layer(kind="adapter", width=trained_on[0], size=trained_on[1] if len(trained_on) == 3 else 0)
            assert layers == head + [expected] + tail, (net, cut)
            assert getattr(layout, net)[cut].out_shape == trained_on
        else:
            assert layers == head + tail, (net, cut)
        if head and tail:
            trained_on = plan_network(lb[:cut], input_shape(b, net))[-1].out_shape
            seam = getattr(layout, net)[cut + (op["adapter"] is True)]
            room = len(head) + len(tail) < cfg.max_layers
            # b's layer at the cut sees what it was trained on, unless no adapter fitted or it was folded in
            assert (seam.in_shape == trained_on) or (not room and not op["adapter"]) or op["adapter"] == "folded", \
                (net, cut)
        else:
            assert not op["adapter"]
        adapters.append(op["adapter"])
    return adapters


def run_operator(op: str, a: Genome, b: Genome, seed: int, cfg: MutationConfig):
    """One operator; returns (child, ops, parents in slot order)."""
    rng = np.random.default_rng(seed)
    if op == "breed1":
        return (*breed([a], rng, cfg), [a])
    if op == "breed2":
        return (*breed([a, b], rng, cfg), [a, b])
    if op == "mutate":
        return (*mutate(a.stamped(0), rng, cfg), [a])
    return (*crossover(a.stamped(0), b.stamped(1), rng, cfg), [a, b])


# ---------------------------------------------------------------------------------------------
# property test: random genomes and operator chains, vector and image

OPS = ("mutate", "crossover", "breed1", "breed2")
PROBABILITIES = st.sampled_from([0.0, 0.05, 0.2, 0.5, 1.0])
GENOMES_TO_CHECK = 1000


@st.composite
def data_shapes(draw):
    """Mostly points and 8×8 images; 28×28 images rarely (they are slower)."""
    bucket = draw(st.integers(0, 39))
    if bucket < 16:
        return draw(st.sampled_from([(2,), (5,)]))
    if bucket < 36:
        return (1, 8, 8)
    if bucket < 38:
        return (3, 8, 8)
    return (1, 28, 28)


@st.composite
def configs(draw, data_shape):
    max_layers = draw(st.integers(1, 6))
    min_width = draw(st.integers(1, 16))
    min_latent = draw(st.integers(1, 8))
    sides = [16, 32, 64] if len(data_shape) == 1 or data_shape[1] <= 16 else [32, 64]
    probabilities = {f.name: draw(PROBABILITIES) for f in fields(MutationConfig) if f.name.startswith("p_")}
    return MutationConfig(
        **probabilities, min_layers=draw(st.integers(1, min(3, max_layers))), max_layers=max_layers,
        min_width=min_width, max_width=draw(st.integers(16, 32)), min_latent=min_latent,
        max_latent=draw(st.integers(8, 40)), max_parameters=200_000, max_side=draw(st.sampled_from(sides)))


def test_random_genomes_and_operator_chains_vector_and_image():
    checked = {"children": 0, "first": 0, "image": 0, "shapes": set(), "ops": set(), "adapters": 0, "folded": 0}

    @settings(max_examples=400, deadline=None, database=None)
    @given(data=st.data(), seed=st.integers(0, 2**32 - 1),
           chain=st.lists(st.sampled_from(OPS), min_size=1, max_size=6), n=st.integers(2, 4))
    def chains(data, seed, chain, n):
        shape = data.draw(data_shapes())
        cfg = data.draw(configs(shape))
        archs = ("auto", "dense", "conv") if len(shape) == 3 else ("auto", "dense")
        rng = np.random.default_rng(seed)
        pool = []
        for _ in range(2):
            genome = random_genome(rng, cfg, batch_size=4, steps=1, data_shape=shape,
                                   architecture=data.draw(st.sampled_from(archs)))
            check_genes(genome, cfg)
            torch.manual_seed(int(rng.integers(2**31)))
            pair = build_pair(genome)
            check_pair(genome, pair, n, seed=1)
            pool.append((genome, pair.state_dicts()))
            checked["first"] += 1
        for op in chain:
            (a, state_a), (b, state_b) = (pool[int(i)] for i in rng.choice(len(pool), size=2))
            before = (a.to_dict(), b.to_dict())
            op_seed = int(rng.integers(2**31))
            child, ops, parents = run_operator(op, a, b, op_seed, cfg)
            assert (a.to_dict(), b.to_dict()) == before  # pure
            assert run_operator(op, a, b, op_seed, cfg)[:2] == (child, ops)  # deterministic
            assert isinstance(ops, list) and all(isinstance(o, dict) and "op" in o for o in ops)
            assert child.data_shape == shape
            check_genes(child, cfg)
            if op == "crossover":
                seams = check_seams(a.stamped(0), b.stamped(1), child, ops, cfg)
                checked["adapters"] += seams.count(True)
                checked["folded"] += seams.count("folded")
            torch.manual_seed(op_seed)
            pair = build_pair(child)
            check_inherit(child, pair, [state_a] if len(parents) == 1 else [state_a, state_b])
            check_pair(child, pair, n, seed=op_seed)
            pool.append((child, pair.state_dicts()))
            checked["children"] += 1
            checked["image"] += len(shape) == 3
            checked["shapes"].add(shape)
            checked["ops"].update(o["op"] for o in ops)

    chains()
    assert checked["children"] >= GENOMES_TO_CHECK, checked
    assert checked["image"] >= GENOMES_TO_CHECK // 3, checked
    assert {(2,), (1, 8, 8), (1, 28, 28)} <= checked["shapes"], checked
    assert {"crossover", "add_layer", "delete_layer", "change_width"} <= checked["ops"], checked
    assert checked["adapters"] > 0 and checked["folded"] > 0, checked


# ---------------------------------------------------------------------------------------------
# shape inference from the genes


@pytest.mark.parametrize("side, kernel, stride, padding, expected", [
    (8, 3, 1, 1, 8), (8, 4, 2, 1, 4), (28, 5, 2, 0, 12), (10, 3, 3, 0, 3), (7, 4, 2, 1, 3), (5, 5, 1, 0, 1),
])
def test_conv_side_follows_the_formula(side, kernel, stride, padding, expected):
    gene = Layer(kind="conv", width=6, kernel=kernel, stride=stride, padding=padding)
    assert conv_side(side, gene) == expected == (side + 2 * padding - kernel) // stride + 1
    step = plan_step(gene, (3, side, side))
    assert step.pre is None and step.core_shape == (3, side, side)
    assert step.out_shape == (6, expected, expected)
    assert step.parameters == 3 * 6 * kernel ** 2 + 6
    real = nn.Conv2d(3, 6, kernel, stride, padding)(torch.zeros(1, 3, side, side))
    assert tuple(real.shape[1:]) == step.out_shape


@pytest.mark.parametrize("side, kernel, stride, padding, expected", [
    (4, 4, 2, 1, 8), (7, 4, 2, 1, 14), (3, 3, 1, 0, 5), (2, 5, 3, 2, 4), (1, 1, 2, 0, 1),
])
def test_deconv_side_follows_the_formula(side, kernel, stride, padding, expected):
    gene = Layer(kind="deconv", width=5, kernel=kernel, stride=stride, padding=padding, norm="batch")
    assert deconv_side(side, gene) == expected == (side - 1) * stride - 2 * padding + kernel
    step = plan_step(gene, (2, side, side))
    assert step.pre is None and step.out_shape == (5, expected, expected)
    assert step.parameters == 2 * 5 * kernel ** 2 + 5 + 2 * 5  # weight, bias, batch-norm scale and shift
    real = nn.ConvTranspose2d(2, 5, kernel, stride, padding)(torch.zeros(1, 2, side, side))
    assert tuple(real.shape[1:]) == step.out_shape


def test_upsample_noise_and_reshape_shapes():
    assert plan_step(Layer(kind="upsample", stride=3), (4, 5, 5)).out_shape == (4, 15, 15)
    assert plan_step(Layer(kind="upsample", stride=3), (4, 5, 5)).parameters == 0
    assert plan_step(Layer(kind="noise"), (4, 5, 5)).out_shape == (4, 5, 5)
    assert plan_step(Layer(kind="noise"), (7,)).parameters == 1
    step = plan_step(Layer(kind="reshape", width=3, size=4), (10,))
    assert step.pre is None and step.out_shape == (3, 4, 4) and step.parameters == 10 * 48 + 48


@pytest.mark.parametrize("kind, kernel, padding, side, resized, out", [
    ("conv", 5, 0, 3, 5, 1),  # needs at least kernel − 2·padding
    ("conv", 5, 1, 2, 3, 1),
    ("deconv", 3, 2, 2, 3, 1),  # (side − 1) − 4 + 3 ≥ 1 needs side ≥ 3
])
def test_too_small_input_gets_a_resize_pre_adapter(kind, kernel, padding, side, resized, out):
    gene = Layer(kind=kind, width=4, kernel=kernel, padding=padding)
    step = plan_step(gene, (2, side, side))
    assert step.pre == "resize"
    assert step.in_shape == (2, side, side) and step.core_shape == (2, resized, resized)
    assert step.out_shape == (4, out, out)
    big_enough = plan_step(gene, (2, resized, resized))
    assert big_enough.pre is None and big_enough.out_shape == step.out_shape
    assert big_enough.parameters == step.parameters  # a resize has no parameters


def test_spatial_layer_after_a_vector_gets_a_to_image_pre_adapter():
    conv = plan_step(Layer(kind="conv", width=6, kernel=3, padding=1), (10,))
    assert conv.pre == "to_image" and conv.core_shape == (6, 4, 4) and conv.out_shape == (6, 4, 4)
    assert conv.parameters == (10 * 96 + 96) + (6 * 6 * 9 + 6)  # the linear map to 6×4×4, then the conv
    up = plan_step(Layer(kind="upsample", stride=2), (64,))
    assert up.pre == "to_image" and up.core_shape == (4, 4, 4) and up.out_shape == (4, 8, 8)
    assert up.parameters == 64 * 64 + 64
    # a kernel larger than the 4×4 seed image: the linear map yields the side the kernel needs
    wide = plan_step(Layer(kind="conv", width=2, kernel=5, padding=0), (8,))
    assert wide.pre == "to_image" and wide.core_shape == (2, 5, 5) and wide.out_shape == (2, 1, 1)


def test_dense_after_an_image_gets_flatten():
    step = plan_step(Layer(kind="dense", width=7, norm="layer"), (3, 8, 8))
    assert step.pre == "flatten" and step.core_shape == (192,) and step.out_shape == (7,)
    assert step.parameters == 192 * 7 + 7 + 14
    adapter = plan_step(Layer(kind="adapter", width=5), (2, 4, 4))
    assert adapter.pre == "flatten" and adapter.out_shape == (5,) and adapter.parameters == 32 * 5 + 5
    assert plan_step(Layer(kind="dense", width=7), (9,)).pre is None


def test_image_adapter_shapes():
    from_vector = plan_step(Layer(kind="adapter", width=3, size=4), (10,))
    assert from_vector.out_shape == (3, 4, 4) and from_vector.parameters == 10 * 48 + 48
    channels = plan_step(Layer(kind="adapter", width=3, size=8), (5, 2, 2))
    assert channels.out_shape == (3, 8, 8) and channels.parameters == 5 * 3 + 3  # a 1×1 convolution
    resize_only = plan_step(Layer(kind="adapter", width=5, size=8), (5, 2, 2))
    assert resize_only.out_shape == (5, 8, 8) and resize_only.parameters == 0


CONV_GENOME = make(
    [Layer(kind="reshape", width=16, size=2), Layer(kind="noise"),
     Layer(kind="deconv", width=16, kernel=4, stride=2, padding=1, norm="batch"),
     Layer(kind="deconv", width=8, kernel=4, stride=2, padding=1, norm="layer", dropout=0.1)],
    [Layer(kind="conv", width=16, kernel=4, stride=2, padding=1, activation="leaky_relu"),
     Layer(kind="conv", width=32, kernel=4, stride=2, padding=1, norm="batch"),
     Layer(kind="conv", width=32, kernel=3, stride=1, padding=1, norm="spectral", dropout=0.25)],
    (1, 8, 8))


def test_plan_is_pure_and_creates_no_torch_objects(monkeypatch):
    """The plan reads the genes only: with every way of making modules or tensors disabled, it still
    gives each step's shapes, matching the hand-computed ones."""
    assert "torch" not in vars(shapes_module)

    def refuse(*args, **kwargs):
        raise AssertionError("plan made a torch object")

    monkeypatch.setattr(nn.Module, "__init__", refuse)
    for name in ("tensor", "zeros", "ones", "empty", "randn", "rand", "as_tensor"):
        monkeypatch.setattr(torch, name, refuse)
    for name in ("linear", "conv2d", "conv_transpose2d", "interpolate"):
        monkeypatch.setattr(torch.nn.functional, name, refuse)
    mixed = replace(CONV_GENOME, generator=(Layer(kind="dense", width=12),) + CONV_GENOME.generator[2:],
                    discriminator=CONV_GENOME.discriminator[:2] + (Layer(kind="dense", width=9),))
    layout = plan(mixed)
    assert [(s.pre, s.core_shape, s.out_shape) for s in layout.generator] == [
        (None, (16,), (12,)),
        ("to_image", (16, 4, 4), (16, 8, 8)),  # a deconv after a vector: viewed as a 4×4 image of its width
        (None, (16, 8, 8), (8, 16, 16)),
    ]
    assert [(s.pre, s.core_shape, s.out_shape) for s in layout.discriminator] == [
        (None, (1, 8, 8), (16, 4, 4)), (None, (16, 4, 4), (32, 2, 2)), ("flatten", (128,), (9,)),
    ]
    assert layout.g_head == ((8, 16, 16), (1, 8, 8)) and layout.d_head == ((9,), (1,))
    assert layout.max_side == 16
    assert plan(mixed) == layout  # the same genes, the same plan


def test_plan_of_the_conv_genome_matches_the_built_pair():
    layout = plan(CONV_GENOME)
    assert [s.out_shape for s in layout.generator] == [(16, 2, 2), (16, 2, 2), (16, 4, 4), (8, 8, 8)]
    assert [s.out_shape for s in layout.discriminator] == [(16, 4, 4), (32, 2, 2), (32, 2, 2)]
    assert all(s.pre is None for s in layout.generator + layout.discriminator)
    torch.manual_seed(0)
    pair = build_pair(CONV_GENOME)
    check_pair(CONV_GENOME, pair, 3, seed=0)


def test_genome_refuses_data_shapes_the_builder_cannot_yield():
    for bad in [(1, 8, 12), (1, 8), (0,), (1, 0, 0), "8x8"]:
        with pytest.raises(ValueError, match="data_shape") as err:
            replace(CONV_GENOME, data_shape=bad)
        assert repr(bad) in str(err.value)


# ---------------------------------------------------------------------------------------------
# inheritance for convolutions


@pytest.fixture
def conv_state():
    torch.manual_seed(7)
    pair = build_pair(CONV_GENOME)
    stats_forward(pair, 8, seed=7)
    return {net: {k: v.detach().clone() for k, v in sd.items()} for net, sd in pair.state_dicts().items()}


def test_lr_change_of_a_conv_parent_inherits_everything(conv_state):
    child, ops = breed([CONV_GENOME], np.random.default_rng(3), operators_off(p_lr=1.0))
    assert ops and {op["op"] for op in ops} == {"change_lr"}
    assert child == replace(CONV_GENOME.stamped(0), g_optimizer=child.g_optimizer, d_optimizer=child.d_optimizer)
    assert_inherits_everything(child, conv_state)


@pytest.mark.parametrize("new_width", [48, 20])
def test_channel_change_keeps_the_overlapping_slice_of_conv_weights(conv_state, new_width):
    stamped = CONV_GENOME.stamped(0)
    d = list(stamped.discriminator)
    d[1] = replace(d[1], width=new_width)  # conv 16 → 32 channels, now `new_width`
    g = list(stamped.generator)
    g[2] = replace(g[2], width=new_width // 2)  # deconv 16 → 16 channels, now half `new_width`
    child = stamped.with_layers("discriminator", d).with_layers("generator", g)
    torch.manual_seed(11)
    pair = build_pair(child)
    fresh = {net: {k: v.clone() for k, v in sd.items()} for net, sd in pair.state_dicts().items()}
    report = inherit(pair, child, [conv_state])
    got, src = pair.state_dicts()["discriminator"], conv_state["discriminator"]
    k = min(32, new_width)
    weight = got["layers.1.linear.weight"]
    assert weight.shape == (new_width, 16, 4, 4)  # (out, in, kernel, kernel)
    assert torch.equal(weight[:k], src["layers.1.linear.weight"][:k])
    for name in ("linear.bias", "norm.weight", "norm.bias", "norm.running_mean", "norm.running_var"):
        assert torch.equal(got[f"layers.1.{name}"][:k], src[f"layers.1.{name}"][:k]), name
    following = got["layers.2.linear.parametrizations.weight.original"]
    assert following.shape == (32, new_width, 3, 3)
    assert torch.equal(following[:, :k], src["layers.2.linear.parametrizations.weight.original"][:, :k])
    assert torch.equal(got["layers.0.linear.weight"], src["layers.0.linear.weight"])
    g_got, g_src = pair.state_dicts()["generator"], conv_state["generator"]
    deconv = g_got["layers.2.linear.weight"]
    assert deconv.shape == (16, new_width // 2, 4, 4)  # a transposed convolution's weight is (in, out, k, k)
    j = min(16, new_width // 2)
    assert torch.equal(deconv[:, :j], g_src["layers.2.linear.weight"][:, :j])
    assert torch.equal(g_got["layers.3.linear.weight"][:j], g_src["layers.3.linear.weight"][:j])
    assert torch.equal(g_got["layers.1.linear.scale"], g_src["layers.1.linear.scale"])
    if new_width > 32:  # the new channels keep their fresh values
        assert torch.equal(weight[32:], fresh["discriminator"]["layers.1.linear.weight"][32:])
        assert torch.equal(following[:, 32:],
                           fresh["discriminator"]["layers.2.linear.parametrizations.weight.original"][:, 32:])
        assert torch.equal(deconv[:, 16:], fresh["generator"]["layers.2.linear.weight"][:, 16:])
        assert report["share"] < 1.0
    else:  # every child tensor lies within its source
        assert report["share"] == 1.0


def test_spectral_norm_switch_keeps_the_weight(conv_state):
    stamped = CONV_GENOME.stamped(0)
    d = list(stamped.discriminator)
    d[0] = replace(d[0], norm="spectral")  # none → spectral
    d[2] = replace(d[2], norm="none")  # spectral → none
    g = list(stamped.generator)
    g[3] = replace(g[3], norm="spectral")  # layer → spectral, on a transposed convolution
    child = stamped.with_layers("discriminator", d).with_layers("generator", g)
    torch.manual_seed(5)
    pair = build_pair(child)
    report = inherit(pair, child, [conv_state])
    got, src = pair.state_dicts()["discriminator"], conv_state["discriminator"]
    assert "layers.0.linear.weight" not in got and "layers.2.linear.parametrizations.weight.original" not in got
    assert torch.equal(got["layers.0.linear.parametrizations.weight.original"], src["layers.0.linear.weight"])
    assert torch.equal(got["layers.2.linear.weight"], src["layers.2.linear.parametrizations.weight.original"])
    g_got, g_src = pair.state_dicts()["generator"], conv_state["generator"]
    assert torch.equal(g_got["layers.3.linear.parametrizations.weight.original"], g_src["layers.3.linear.weight"])
    # every child tensor has a same-shaped source; the child lost the layer norm's scale and shift (2 × 8)
    assert report["share"] == 1.0 and report["inherited"] == pair.parameter_count()
    assert pair.parameter_count() == plan(CONV_GENOME).parameters - 16
    check_pair(child, pair, 2, seed=0)


# ---------------------------------------------------------------------------------------------
# crossover between vector and image genomes


def dense_and_conv_parents(seed: int, cfg: MutationConfig) -> tuple[Genome, Genome]:
    rng = np.random.default_rng(seed)
    dense = random_genome(rng, cfg, batch_size=8, steps=1, data_shape=(1, 8, 8), architecture="dense")
    conv = random_genome(rng, cfg, batch_size=8, steps=1, data_shape=(1, 8, 8), architecture="conv")
    return dense, conv


def test_crossover_of_dense_and_conv_genomes_yields_working_pairs_with_adapters_only_at_shape_seams():
    cfg = MutationConfig(max_width=32, max_layers=5, max_parameters=200_000)
    extra = [  # different depths and widths, hand-made
        make([Layer(kind="dense", width=24), Layer(kind="dense", width=12), Layer(kind="noise")],
             [Layer(kind="dense", width=16)], (1, 8, 8), latent_dim=32),
        make([Layer(kind="reshape", width=8, size=4), Layer(kind="upsample", stride=2)],
             [Layer(kind="conv", width=8, kernel=3, padding=1), Layer(kind="dense", width=20),
              Layer(kind="dense", width=10), Layer(kind="noise")], (1, 8, 8), latent_dim=32),
    ]
    image_adapters = folded = no_adapter = 0
    for seed in range(40):
        dense, conv = dense_and_conv_parents(seed, cfg)
        rng = np.random.default_rng(seed)
        conv_kin, dense_kin = mutate(conv, rng, cfg)[0], mutate(dense, rng, cfg)[0]  # seams that mostly meet
        for a, b in [(dense, conv), (conv, dense), (extra[0], conv), (conv, extra[1]), (extra[1], dense),
                     (conv, conv_kin), (dense_kin, dense)]:
            states = []
            for slot, parent in enumerate((a, b)):
                torch.manual_seed(slot)
                pair = build_pair(parent)
                stats_forward(pair, 4, seed=slot)
                states.append(pair.state_dicts())
            sa, sb = a.stamped(0), b.stamped(1)
            child, ops = crossover(sa, sb, np.random.default_rng(seed), cfg)
            assert child.data_shape == (1, 8, 8)
            for op, adapter in zip(ops, check_seams(sa, sb, child, ops, cfg)):
                if adapter == "folded":
                    folded += 1
                elif adapter:
                    image_adapters += child.layers(op["net"])[op["cut"]].size > 0
                else:
                    no_adapter += 0 < op["cut"] < len(sb.layers(op["net"]))
            check_genes(child, cfg)
            torch.manual_seed(seed)
            pair = build_pair(child)
            check_inherit(child, pair, states)
            check_pair(child, pair, 2, seed=seed)
    # Vector seams here all lie before dense layers, which fold them in; vector adapters that stay
    # (before a noise layer, a spectral norm, a bottleneck) are in tests/test_fold.py.
    assert image_adapters > 0 and folded > 0 and no_adapter > 0


def _vector_genome(generator, latent_dim):
    return make(generator, [Layer(kind="dense", width=8)], (2,), latent_dim=latent_dim)


def test_crossover_seam_is_judged_on_the_childs_latent():
    """a's noise layer passes the latent through: what it yields at the seam is the child's latent
    size, whichever parent that came from."""
    a = _vector_genome([Layer(kind="noise"), Layer(kind="dense", width=16)], latent_dim=8).stamped(0)
    b = _vector_genome([Layer(kind="dense", width=8), Layer(kind="dense", width=16)], latent_dim=4).stamped(1)
    cfg = MutationConfig()
    seen = set()
    for seed in range(60):
        child, ops = crossover(a, b, np.random.default_rng(seed), cfg)
        check_seams(a, b, child, ops, cfg)
        if ops[0]["cut"] == 1:
            # b's second layer was trained on 8 inputs: an adapter, folded into that dense layer, exactly
            # when the child's latent is 4
            assert ops[0]["adapter"] == ("folded" if child.latent_dim == 4 else False), (seed, child.latent_dim)
            seen.add(child.latent_dim)
    assert seen == {4, 8}


@pytest.mark.parametrize("shapes", [((2,), (1, 8, 8)), ((2,), (5,)), ((1, 8, 8), (1, 28, 28)),
                                    ((1, 8, 8), (3, 8, 8))])
def test_crossover_of_different_data_shapes_is_refused(shapes):
    cfg = MutationConfig(max_width=32)
    a, b = (random_genome(np.random.default_rng(0), cfg, 8, 1, data_shape=shape, architecture="dense")
            for shape in shapes)
    with pytest.raises(ValueError, match="data shape"):
        crossover(a, b, np.random.default_rng(0), cfg)
    with pytest.raises(ValueError, match="data shape"):
        breed([a, b], np.random.default_rng(0), replace(cfg, p_crossover=1.0))


def test_conv_architecture_needs_image_data():
    with pytest.raises(ValueError, match="conv"):
        random_genome(np.random.default_rng(0), MutationConfig(), 8, 1, data_shape=(2,), architecture="conv")
    with pytest.raises(ValueError, match="'lstm'"):
        random_genome(np.random.default_rng(0), MutationConfig(), 8, 1, data_shape=(2,), architecture="lstm")


# ---------------------------------------------------------------------------------------------
# configuration limits

BAD_VALUES = {
    "small_sigma": [0.0, -0.5, math.inf],
    "min_layers": [0, 2.5, True],
    "max_layers": [0],
    "min_width": [0, -4],
    "max_width": [4],  # below min_width (8)
    "min_lr": [0.0, -1e-4, 0.05],  # the last above max_lr
    "max_lr": [1.0, 2.0, 1e-6],
    "adapt_rate": [-1.0, math.inf],
    "adapt_min_count": [0],
    "max_parameters": [0, -10, 2.5, True],
    "max_side": [0, 1.5, True],
    "min_latent": [0, 100],  # the last above max_latent
    "max_latent": [1],  # below min_latent (2)
    **{f.name: [-0.1, 1.5, math.nan] for f in fields(MutationConfig) if f.name.startswith("p_")},
}


def test_bad_values_cover_every_setting():
    settable = {f.name for f in fields(MutationConfig)}
    assert set(BAD_VALUES) == settable - {"adapt"}  # a switch has no value out of range
    assert {"p_kernel", "p_stride", "p_dropout", "p_noise", "max_parameters", "max_side"} <= set(BAD_VALUES)


@pytest.mark.parametrize("name, value", [(name, value) for name, values in BAD_VALUES.items() for value in values])
def test_every_mutation_setting_out_of_range_is_refused_naming_it(name, value):
    with pytest.raises(ValueError, match=rf"mutation\.{name}\b") as err:
        MutationConfig(**{name: value})
    message = str(err.value)
    assert "\n" not in message
    assert repr(value) in message


# ---------------------------------------------------------------------------------------------
# every mutation operator's way


MUTABLE = make(
    [Layer(kind="reshape", width=16, size=2), Layer(kind="noise", scale=0.2),
     Layer(kind="deconv", width=16, kernel=4, stride=2, padding=1, norm="batch"),
     Layer(kind="deconv", width=8, kernel=4, stride=2, padding=1, dropout=0.1)],
    [Layer(kind="conv", width=16, kernel=4, stride=2, padding=1, activation="leaky_relu"),
     Layer(kind="conv", width=24, kernel=3, stride=1, padding=1, norm="layer"), Layer(kind="dense", width=16)],
    (1, 8, 8), latent_dim=16).stamped(0)
EVERY_OP = {"add_layer", "delete_layer", "add_noise", "change_width", "change_kernel", "change_stride",
            "change_activation", "change_norm", "change_dropout", "change_noise", "change_optimizer", "change_lr", "change_betas",
            "change_latent_dim", "change_latent_dist", "change_loss"}


def padding_for(kind: str, kernel: int, stride: int) -> int:
    """Keeps a convolution's side at in/stride, a transposed one's at in·stride."""
    padding = (kernel - 1) // 2 if kind == "conv" else (kernel - stride) // 2
    return min(max(padding, 0), kernel - 1)


def replay(genome: Genome, op: dict) -> Genome:
    """The genome `op` says it made from `genome`, checking its `from` against what was there."""
    name = op["op"]
    if name in ("add_layer", "delete_layer"):
        layers = list(genome.layers(op["net"]))
        if name == "add_layer":
            assert op["copy_of"] == op["index"] - 1 and layers[op["copy_of"]].kind == op["kind"]
            layers.insert(op["index"], layers[op["copy_of"]])
        else:
            assert layers.pop(op["index"]).kind == op["kind"]
        return genome.with_layers(op["net"], layers)
    if name == "add_noise":
        layers = list(genome.layers(op["net"]))
        layers.insert(op["index"], Layer(kind="noise", scale=op["scale"]))
        return genome.with_layers(op["net"], layers)
    if "index" in op:  # change_<what> of one layer
        what = name[len("change_"):]
        field = "scale" if what == "noise" else what
        layers = list(genome.layers(op["net"]))
        layer = layers[op["index"]]
        assert layer.kind in LAYER_PARAMETERS[what]
        assert getattr(layer, field) == op["from"] != op["to"]
        changes = {field: op["to"]}
        if what in ("kernel", "stride") and layer.kind != "upsample":
            kernel, stride = (op["to"], layer.stride) if what == "kernel" else (layer.kernel, op["to"])
            changes["padding"] = padding_for(layer.kind, kernel, stride)
        layers[op["index"]] = replace(layer, **changes)
        return genome.with_layers(op["net"], layers)
    if name in ("change_optimizer", "change_lr", "change_betas"):
        field = {"generator": "g_optimizer", "discriminator": "d_optimizer"}[op["net"]]
        gene = getattr(genome, field)
        attr = {"change_optimizer": "name", "change_lr": "lr", "change_betas": "betas"}[name]
        before = list(getattr(gene, attr)) if attr == "betas" else getattr(gene, attr)
        assert before == op["from"] != op["to"]
        return replace(genome, **{field: replace(gene, **{attr: op["to"]})})
    attr = {"change_latent_dim": "latent_dim", "change_latent_dist": "latent_dist", "change_loss": "loss"}[name]
    assert getattr(genome, attr) == op["from"] != op["to"]
    return replace(genome, **{attr: op["to"]})


@lru_cache(maxsize=1)
def mutations() -> tuple:
    """Many seeds of mutate() on an image genome with a noise layer, every operator equally likely."""
    cfg = MutationConfig(**{f.name: 0.005 for f in fields(MutationConfig)
                            if f.name.startswith("p_") and f.name not in ("p_large", "p_crossover", "p_mutate")},
                         p_large=0.3, max_layers=6, max_width=64)
    return cfg, tuple(mutate(MUTABLE, np.random.default_rng(seed), cfg) for seed in range(600))


def test_every_mutation_operator_shows_up_and_does_what_it_records():
    cfg, results = mutations()
    seen: dict[str, int] = {}
    for child, ops in results:
        assert ops, "a mutation always changes something"
        genome = MUTABLE
        for op in ops:
            after = replay(genome, op)
            assert after != genome, op
            genome = after
            seen[op["op"]] = seen.get(op["op"], 0) + 1
        assert genome == child, ops  # the record replays to exactly the child
        check_genes(child, cfg)
    assert set(seen) == EVERY_OP, sorted(EVERY_OP - set(seen))


def test_every_recorded_mutation_operator_has_a_probability_to_adapt():
    _, results = mutations()
    recorded = {op["op"] for _, ops in results for op in ops}
    assert recorded == EVERY_OP
    assert recorded <= set(OPERATOR_PROBABILITY)
    for op in recorded:
        assert OPERATOR_PROBABILITY[op] in {f.name for f in fields(MutationConfig)}


# ---------------------------------------------------------------------------------------------
# first generation


@pytest.mark.parametrize("data_shape", [(1, 8, 8), (3, 8, 8), (1, 28, 28)])
@pytest.mark.parametrize("min_layers, max_layers", [(1, 1), (2, 2), (3, 3), (4, 6), (6, 6)])
def test_conv_first_generation_fits_every_depth_limit(data_shape, min_layers, max_layers):
    """Networks deeper than the stride-2 steps the data's side allows, or as shallow as one layer, are
    still drawn within the limits."""
    cfg = MutationConfig(min_layers=min_layers, max_layers=max_layers, max_width=32, max_parameters=500_000)
    for seed in range(3):
        genome = random_genome(np.random.default_rng(seed), cfg, 8, 1, data_shape=data_shape, architecture="conv")
        assert genome.data_shape == data_shape
        # A conv generator needs its reshape beside min_layers learning layers; where the limits leave no
        # room for it, the generator is dense.
        assert genome.generator[0].kind == ("reshape" if max_layers > min_layers else "dense")
        assert genome.discriminator[0].kind == "conv"
        check_genes(genome, cfg)
        torch.manual_seed(seed)
        check_pair(genome, build_pair(genome), 2, seed=seed)
