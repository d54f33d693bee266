"""Adapters folded into the dense layer after a crossover seam (issue 14): the same function, one module fewer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from genome.build import build_pair
from genome.crossover import crossover, splice
from genome.genes import NETS, Genome, Layer, OptimizerGene
from genome.inherit import inherit
from genome.operators import MutationConfig
from genome.shapes import plan_network

CFG = MutationConfig(max_layers=6, max_parameters=200_000)


def make(generator, discriminator, data_shape=(2,)) -> Genome:
    return Genome(generator=tuple(generator), discriminator=tuple(discriminator), latent_dim=8,
                  latent_dist="normal", g_optimizer=OptimizerGene("adam", 1e-3),
                  d_optimizer=OptimizerGene("adam", 1e-3), batch_size=8, steps=2, data_shape=data_shape)


def dense(width: int, norm: str = "none", activation: str = "relu", dropout: float = 0.0) -> Layer:
    return Layer(kind="dense", width=width, norm=norm, activation=activation, dropout=dropout)


@st.composite
def layer_lists(draw) -> list[Layer]:
    """Dense layers (any norm but spectral, some dropout) with a noise layer now and then."""
    layers = []
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.integers(0, 5)) == 0:
            layers.append(Layer(kind="noise", scale=0.1))
        layers.append(dense(draw(st.integers(2, 24)), draw(st.sampled_from(["none", "batch", "layer"])),
                            draw(st.sampled_from(["relu", "tanh", "elu"])), draw(st.sampled_from([0.0, 0.2]))))
    return layers[:CFG.max_layers - 1]


def fold_adapter(state: dict, at: int) -> dict:
    """The algebra, written out: adapter `at` (x ↦ A·x + a) and the dense layer after it (y ↦ W·y + w)
    become one dense layer (W·A, W·a + w); later layers move one index down."""
    folded = {}
    for key, value in state.items():
        if not key.startswith("layers."):
            folded[key] = value
            continue
        _, index, rest = key.split(".", 2)
        i = int(index)
        if i == at:
            continue
        if i == at + 1 and rest == "linear.weight":
            value = value @ state[f"layers.{at}.linear.weight"]
        elif i == at + 1 and rest == "linear.bias":
            value = state[f"layers.{at + 1}.linear.weight"] @ state[f"layers.{at}.linear.bias"] + value
        folded[f"layers.{i - (i > at)}.{rest}"] = value
    return folded


def unfolded(child: Genome, b: Genome, ops: list[dict]) -> tuple[Genome, dict[str, int]]:
    """The child as it was before the fold: the adapter back at each folded seam. Returns it and the
    index of that adapter per network."""
    at = {}
    for op in ops:
        if op["adapter"] == "folded":
            net, cut = op["net"], op["cut"]
            start = (b.latent_dim,) if net == "generator" else b.d_input_shape
            trained_on = plan_network(b.layers(net)[:cut], start)[-1].out_shape
            layers = list(child.layers(net))
            layers.insert(cut, Layer(kind="adapter", width=trained_on[0]))
            child, at[net] = child.with_layers(net, layers), cut
    return child, at


def outputs(pair, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Fakes from the generator and the discriminator's scores of other inputs of their shape, in evaluation
    mode; the generator's noise layers draw from `seed`."""
    for net in (pair.generator, pair.discriminator):
        net.eval()
    with torch.no_grad():
        torch.manual_seed(seed)
        fakes = pair.generator.sample(16, torch.Generator().manual_seed(seed))
        return fakes, pair.discriminator(torch.randn(fakes.shape, generator=torch.Generator().manual_seed(seed)))


def modules(pair) -> int:
    return sum(1 for net in (pair.generator, pair.discriminator) for _ in net.modules())


def parent_states(parents: list[Genome], seed: int) -> list[dict]:
    states = []
    for slot, parent in enumerate(parents):
        torch.manual_seed(seed + slot)
        pair = build_pair(parent)
        pair.generator.train()
        pair.discriminator.train()
        with torch.no_grad():  # batch-norm statistics off their defaults
            pair.discriminator(pair.generator.sample(32, torch.Generator().manual_seed(seed)))
        states.append(pair.state_dicts())
    return states


def test_a_folded_child_computes_what_its_unfolded_twin_does_with_fewer_modules():
    """The same parents, the same inherited weights: with the adapter folded (as crossover makes it) and
    unfolded (the adapter back, as crossover made it before), both networks give the same outputs."""
    folds = {"wider": 0, "narrower": 0}  # the child's seam yields more (or fewer) units than b's layer saw

    @settings(max_examples=80, deadline=None, database=None, derandomize=True)
    @given(g_a=layer_lists(), g_b=layer_lists(), d_a=layer_lists(), d_b=layer_lists(), seed=st.integers(0, 2**31))
    def children(g_a, g_b, d_a, d_b, seed):
        a, b = make(g_a, d_a).stamped(0), make(g_b, d_b).stamped(1)
        # Room for an adapter at every seam, so no tensor of either child is fresh but the twin's adapter.
        child, ops = crossover(a, b, np.random.default_rng(seed), MutationConfig(max_layers=12,
                                                                                 max_parameters=200_000))
        twin, at = unfolded(child, b, ops)
        states = parent_states([a, b], seed)
        pairs = []
        for genome in (child, twin):
            torch.manual_seed(seed)
            pair = build_pair(genome)
            inherit(pair, genome, states)
            pairs.append(pair)
        for got, want in zip(outputs(pairs[0], seed), outputs(pairs[1], seed)):
            assert torch.allclose(got, want, rtol=1e-4, atol=1e-5), (ops, (got - want).abs().max())
        assert modules(pairs[0]) == modules(pairs[1]) - 6 * len(at)  # a block: itself, pre, linear, norm, act, drop
        for net, i in at.items():  # what inherit starts the folded layer as is W·A, W·a + w of the twin's
            want = fold_adapter(getattr(pairs[1], net).state_dict(), i)
            for name, tensor in getattr(pairs[0], net).state_dict().items():
                assert torch.allclose(tensor, want[name], atol=1e-6), (net, name)
            adapter = getattr(pairs[1], net).layers[i].linear.weight
            folds["wider" if adapter.shape[1] > adapter.shape[0] else "narrower"] += 1

    children()
    assert min(folds.values()) > 0, folds


@pytest.mark.parametrize("data_shape", [(2,), (1, 4, 4)])
def test_trained_adapter_weights_fold_into_the_same_function(data_shape):
    """Any adapter weights, not only the near-identity a fresh one has: W·A and W·a + w give the folded
    network the unfolded one's outputs, also where the adapter flattens an image first."""
    after = [dense(12, "batch", "tanh"), dense(5, "layer")]
    folded = make([dense(6)] + after, [dense(7), dense(9, "batch")], data_shape)
    twin = folded.with_layers("generator", [dense(6), Layer(kind="adapter", width=10)] + after)
    if len(data_shape) == 3:  # an adapter first in the discriminator flattens the image it reads
        twin = twin.with_layers("discriminator", [Layer(kind="adapter", width=4), dense(7), dense(9, "batch")])
    torch.manual_seed(3)
    unfolded_pair, folded_pair = build_pair(twin), build_pair(folded)
    for net in NETS:
        state = getattr(unfolded_pair, net).state_dict()
        index = next((i for i, layer in enumerate(twin.layers(net)) if layer.kind == "adapter"), None)
        if index is None:
            getattr(folded_pair, net).load_state_dict(state)
            continue
        for name in ("weight", "bias"):
            state[f"layers.{index}.linear.{name}"].normal_()  # trained, far from the identity
        getattr(unfolded_pair, net).load_state_dict(state)
        getattr(folded_pair, net).load_state_dict(fold_adapter(state, index))
    for got, want in zip(outputs(folded_pair, 0), outputs(unfolded_pair, 0)):
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-5)
    assert modules(folded_pair) < modules(unfolded_pair)


def seam(b_tail: list[Layer], a_width: int = 16, b_width: int = 8, data_shape=(2,)) -> tuple:
    a = make([dense(a_width)] + b_tail, [dense(4)], data_shape).stamped(0)
    b = make([dense(b_width)] + b_tail, [dense(4)], data_shape).stamped(1)
    return splice(a, b, "generator", 1, CFG)


def test_a_fold_needs_a_dense_layer_without_spectral_norm_that_costs_no_more():
    layers, adapter = seam([dense(12)])
    assert adapter == "folded" and [layer.kind for layer in layers] == ["dense", "dense"]
    assert layers[1].origin == (1, 1)
    # spectral normalisation divides by W's largest singular value, which W·A does not share
    layers, adapter = seam([dense(12, "spectral")])
    assert adapter is True and [layer.kind for layer in layers] == ["dense", "adapter", "dense"]
    # a noise layer is not a linear map to fold into
    assert seam([Layer(kind="noise"), dense(12)])[1] is True
    # a 2-unit bottleneck between 64 and 64 units: W·A would hold 4,096 weights where A and W hold 386
    layers, adapter = seam([dense(64)], a_width=64, b_width=2)
    assert adapter is True and layers[1] == Layer(kind="adapter", width=2)


def test_a_fold_needs_no_room_and_the_same_widths_need_no_fold():
    tail = [dense(12)] * (CFG.max_layers - 1)  # the child would be at the depth limit with an adapter
    assert seam(tail)[1] == "folded"
    assert seam([dense(12)], a_width=8, b_width=8)[1] is False
