"""Genome genes, the builder, the variation operators and weight inheritance."""

from __future__ import annotations

import json
import math
from dataclasses import fields, replace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from genome.build import Discriminator, Generator, build_pair
from genome.genes import NETS, Genome, Layer, OptimizerGene
from genome.inherit import inherit
from genome.crossover import breed, crossover
from genome.operators import (
    LAYER_PARAMETERS,
    MutationConfig,
    add_layer,
    change_latent,
    change_layer,
    change_optimizer,
    delete_layer,
    mutate,
)
from genome.population import random_genome

DATA_DIM = 2


# ---------------------------------------------------------------------------------------------
# helpers


def make_genome(g_widths, d_widths, *, activation="relu", norms=None, latent_dim=8, latent_dist="normal",
                g_lr=1e-3, d_lr=2e-3, batch_size=16, steps=3, data_dim=DATA_DIM) -> Genome:
    norms = norms or {}

    def layers(net, widths):
        net_norms = norms.get(net, ["none"] * len(widths))
        return tuple(Layer(kind="dense", width=w, activation=activation, norm=n) for w, n in zip(widths, net_norms))

    return Genome(generator=layers("generator", g_widths), discriminator=layers("discriminator", d_widths),
                  latent_dim=latent_dim, latent_dist=latent_dist, g_optimizer=OptimizerGene("adam", g_lr),
                  d_optimizer=OptimizerGene("rmsprop", d_lr), batch_size=batch_size, steps=steps,
                  data_shape=(data_dim,))


def lr_only(**overrides) -> MutationConfig:
    """Every mutation operator off except the learning rate's; every child is mutated (p_mutate 1);
    p_large and p_crossover as given."""
    off = {f.name: 0.0 for f in fields(MutationConfig)
           if f.name.startswith("p_") and f.name not in ("p_large", "p_crossover", "p_mutate")}
    return MutationConfig(**{**off, "p_lr": 1.0, "p_mutate": 1.0, **overrides})


def layer_tensor(state: dict, key: str) -> torch.Tensor:
    """A tensor by its plain name; under spectral normalisation a weight is stored as
    `parametrizations.weight.original`."""
    if key not in state and key.endswith(".weight"):
        key = key[:-len("weight")] + "parametrizations.weight.original"
    return state[key]


def shape_of(layers):
    """Layer genes without their origin, for comparing structure."""
    return [(layer.kind, layer.width, layer.activation, layer.norm) for layer in layers]


def clone_state(states: dict) -> dict:
    return {net: {k: v.detach().clone() for k, v in sd.items()} for net, sd in states.items()}


def built_pair_with_stats(genome: Genome, seed: int):
    """A pair with fresh weights from `seed`, its batch-norm statistics moved off their defaults."""
    torch.manual_seed(seed)
    pair = build_pair(genome)
    rng = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        pair.discriminator(pair.generator.sample(16, rng))
    return pair


def overlap(a: torch.Tensor, b: torch.Tensor):
    return tuple(slice(0, min(x, y)) for x, y in zip(a.shape, b.shape))


def check_limits(genome: Genome, cfg: MutationConfig) -> None:
    for net in NETS:
        layers = genome.layers(net)
        assert cfg.min_layers <= len(layers) <= cfg.max_layers, (net, len(layers))
        for layer in layers:
            if layer.kind in LAYER_PARAMETERS["width"]:  # a noise layer's width means nothing
                assert cfg.min_width <= layer.width <= cfg.max_width, (net, layer)
    for gene in (genome.g_optimizer, genome.d_optimizer):
        assert cfg.min_lr <= gene.lr <= cfg.max_lr, gene
    assert cfg.min_latent <= genome.latent_dim <= cfg.max_latent


def check_forward_backward(genome: Genome) -> tuple:
    pair = build_pair(genome)
    rng = torch.Generator().manual_seed(0)
    fake = pair.generator.sample(8, rng)
    assert fake.shape == (8, DATA_DIM)
    logits = pair.discriminator(fake)
    assert logits.shape == (8,)
    logits.mean().backward()
    for net in (pair.generator, pair.discriminator):
        for name, p in net.named_parameters():
            assert p.grad is not None, name
            assert torch.isfinite(p.grad).all(), name
    return pair


def check_inheritance(child: Genome, parents: list[Genome], states: list[dict]) -> dict:
    """Build the child, let it inherit, and check every origin-linked tensor holds its source's slice."""
    for net in NETS:
        for layer in child.layers(net):
            if layer.origin is not None:
                slot, index = layer.origin
                assert slot < len(parents), layer
                assert index < len(parents[slot].layers(net)), layer
    pair = build_pair(child)
    report = inherit(pair, child, states)
    assert report["total"] == pair.parameter_count()
    assert 0 <= report["inherited"] <= report["total"]
    assert 0.0 <= report["share"] <= 1.0
    assert report["share"] == pytest.approx(report["inherited"] / report["total"])
    assert sum(report["per_parent"]) == report["inherited"]
    assert len(report["per_parent"]) == len(parents)
    for net in NETS:
        child_state = getattr(pair, net).state_dict()
        for i, layer in enumerate(child.layers(net)):
            if layer.origin is None:
                continue
            slot, index = layer.origin
            for name in ("linear.scale",) if layer.kind == "noise" else ("linear.weight", "linear.bias"):
                dst = layer_tensor(child_state, f"layers.{i}.{name}")
                src = layer_tensor(states[slot][net], f"layers.{index}.{name}")
                region = overlap(dst, src)
                assert torch.equal(dst[region], src[region]), (net, i, name)
    return report, pair


# ---------------------------------------------------------------------------------------------
# genes: serialisation and validation


def test_to_dict_round_trip_and_json():
    genome = make_genome([16, 24], [12], norms={"generator": ["batch", "layer"]}).stamped(1)
    data = genome.to_dict()
    assert Genome.from_dict(data) == genome
    through_json = json.loads(json.dumps(data))
    assert through_json == data  # JSON-shaped: reads back equal from a store
    assert through_json["generator"][1]["origin"] == [1, 1]
    back = Genome.from_dict(through_json)
    assert back == genome
    assert back.generator[1].origin == (1, 1)
    assert back.to_dict() == genome.to_dict()


def test_to_dict_is_plain_data():
    genome = make_genome([8], [8, 8])
    text = json.dumps(genome.to_dict())
    assert "Layer" not in text and "tensor" not in text.lower()
    assert json.loads(text)["g_optimizer"] == {"name": "adam", "lr": 1e-3, "betas": [0.5, 0.999]}


def test_from_dict_rejects_unknown_top_level_key():
    data = make_genome([8], [8]).to_dict()
    data["bogus"] = 1
    with pytest.raises(ValueError, match="bogus"):
        Genome.from_dict(data)


def test_from_dict_rejects_unknown_layer_key():
    data = make_genome([8], [8]).to_dict()
    data["generator"][0]["colour"] = "red"
    with pytest.raises(ValueError, match="colour"):
        Genome.from_dict(data)


def test_from_dict_rejects_unknown_optimizer_key():
    data = make_genome([8], [8]).to_dict()
    data["d_optimizer"]["momentum"] = 0.9
    with pytest.raises(ValueError, match="momentum"):
        Genome.from_dict(data)


def test_from_dict_rejects_bad_activation():
    data = make_genome([8], [8]).to_dict()
    data["discriminator"][0]["activation"] = "swish"
    with pytest.raises(ValueError, match="activation.*swish"):
        Genome.from_dict(data)


@pytest.mark.parametrize("width", [0, -3, "8", 8.5, True])
def test_from_dict_rejects_bad_width(width):
    data = make_genome([8], [8]).to_dict()
    data["generator"][0]["width"] = width
    with pytest.raises(ValueError, match="width") as err:
        Genome.from_dict(data)
    assert repr(width) in str(err.value)


@pytest.mark.parametrize("field, value, words", [
    ("norm", "group", "norm.*group"),
    ("kind", "lstm", "kind.*lstm"),  # conv is a valid kind now
    ("origin", [0], "origin"),
    ("origin", [-1, 0], "origin"),
])
def test_from_dict_rejects_bad_layer_values(field, value, words):
    data = make_genome([8], [8]).to_dict()
    data["generator"][0][field] = value
    with pytest.raises(ValueError, match=words):
        Genome.from_dict(data)


@pytest.mark.parametrize("field, value, words", [
    ("latent_dist", "cauchy", "latent_dist.*cauchy"),
    ("latent_dim", 0, "latent_dim"),
    ("batch_size", -1, "batch_size"),
    ("steps", 2.5, "steps"),
    ("generator", [], "generator"),
])
def test_from_dict_rejects_bad_genome_values(field, value, words):
    data = make_genome([8], [8]).to_dict()
    data[field] = value
    with pytest.raises(ValueError, match=words):
        Genome.from_dict(data)


@pytest.mark.parametrize("lr", [0, 1, 1.5, -0.1, "fast"])
def test_from_dict_rejects_bad_learning_rate(lr):
    data = make_genome([8], [8]).to_dict()
    data["g_optimizer"]["lr"] = lr
    with pytest.raises(ValueError, match="learning rate"):
        Genome.from_dict(data)


def test_from_dict_rejects_bad_optimizer_name():
    data = make_genome([8], [8]).to_dict()
    data["g_optimizer"]["name"] = "lbfgs"
    with pytest.raises(ValueError, match="lbfgs"):
        Genome.from_dict(data)


@pytest.mark.parametrize("key", ["generator", "discriminator", "g_optimizer", "d_optimizer"])
def test_from_dict_missing_structured_key(key):
    data = make_genome([8], [8]).to_dict()
    del data[key]
    with pytest.raises(ValueError, match=repr(key)):
        Genome.from_dict(data)


@pytest.mark.parametrize("key", ["latent_dim", "latent_dist", "batch_size", "steps"])
def test_from_dict_missing_scalar_key(key):
    data = make_genome([8], [8]).to_dict()
    del data[key]
    with pytest.raises(ValueError, match=key):
        Genome.from_dict(data)


@pytest.mark.parametrize("key", ["kind", "width"])
def test_from_dict_missing_layer_key(key):
    data = make_genome([8], [8]).to_dict()
    del data["generator"][0][key]
    with pytest.raises(ValueError, match=key):
        Genome.from_dict(data)


def test_from_dict_missing_optimizer_key():
    data = make_genome([8], [8]).to_dict()
    del data["d_optimizer"]["lr"]
    with pytest.raises(ValueError, match="lr"):
        Genome.from_dict(data)


def test_from_dict_rejects_non_mapping_layer():
    data = make_genome([8], [8]).to_dict()
    data["generator"] = [5]
    with pytest.raises(ValueError, match="layer must be a mapping"):
        Genome.from_dict(data)


def test_from_dict_rejects_non_mapping_genome():
    with pytest.raises(ValueError, match="mapping"):
        Genome.from_dict(None)


def test_from_dict_does_not_modify_input():
    data = make_genome([8, 16], [8]).to_dict()
    snapshot = json.loads(json.dumps(data))
    Genome.from_dict(data)
    assert json.loads(json.dumps(data)) == snapshot


def test_stamped_sets_origins():
    genome = make_genome([8, 16, 24], [12, 4])
    stamped = genome.stamped(1)
    assert [layer.origin for layer in stamped.generator] == [(1, 0), (1, 1), (1, 2)]
    assert [layer.origin for layer in stamped.discriminator] == [(1, 0), (1, 1)]
    assert shape_of(stamped.generator) == shape_of(genome.generator)
    assert shape_of(stamped.discriminator) == shape_of(genome.discriminator)
    assert replace(stamped, generator=genome.generator, discriminator=genome.discriminator) == genome
    assert all(layer.origin is None for layer in genome.generator)  # the original is untouched
    restamped = stamped.stamped(0)
    assert [layer.origin for layer in restamped.generator] == [(0, 0), (0, 1), (0, 2)]


# ---------------------------------------------------------------------------------------------
# build


@pytest.mark.parametrize("latent_dist", ["normal", "uniform"])
@pytest.mark.parametrize("data_dim", [1, 2, 5])
def test_build_pair_shapes(latent_dist, data_dim):
    genome = make_genome([8, 16], [12, 4, 6], latent_dist=latent_dist, latent_dim=3,
                         norms={"generator": ["batch", "layer"], "discriminator": ["none", "batch", "layer"]},
                         data_dim=data_dim)
    pair = build_pair(genome)
    rng = torch.Generator().manual_seed(0)
    z = pair.generator.noise(7, rng)
    assert z.shape == (7, 3)
    if latent_dist == "uniform":
        assert z.min() >= -1 and z.max() <= 1
    x = pair.generator.sample(7, rng)
    assert x.shape == (7, data_dim)
    assert pair.discriminator(x).shape == (7,)
    assert isinstance(pair.generator, Generator) and isinstance(pair.discriminator, Discriminator)
    assert len(pair.generator.layers) == 2 and len(pair.discriminator.layers) == 3
    assert pair.generator.layers[1].linear.weight.shape == (16, 8)
    assert pair.discriminator.layers[0].linear.weight.shape == (12, data_dim)
    assert pair.discriminator.head[-1].weight.shape == (1, 6)
    expected = sum(p.numel() for net in (pair.generator, pair.discriminator) for p in net.parameters())
    assert pair.parameter_count() == expected


def test_state_dicts_round_trip():
    genome = make_genome([8], [8], norms={"generator": ["batch"]})
    first, second = built_pair_with_stats(genome, 0), built_pair_with_stats(genome, 1)
    second.load_state_dicts(first.state_dicts())
    for net in NETS:
        a, b = first.state_dicts()[net], second.state_dicts()[net]
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------------------------------
# operators: random chains (property test)

CHAIN_COUNT = 300
OPS = ("breed1", "breed2", "mutate", "crossover")
probabilities = st.sampled_from([0.0, 0.2, 0.5, 1.0])


@st.composite
def mutation_configs(draw):
    max_layers = draw(st.integers(1, 5))
    min_layers = draw(st.integers(1, min(3, max_layers)))
    min_width = draw(st.integers(1, 16))
    max_width = draw(st.integers(16, 32))  # random_genome cannot handle max_width < 16 (see its own test)
    min_latent = draw(st.integers(1, 8))
    max_latent = draw(st.integers(8, 12))
    return MutationConfig(
        p_add_layer=draw(probabilities), p_delete_layer=draw(probabilities), p_width=draw(probabilities),
        p_activation=draw(probabilities), p_norm=draw(probabilities), p_optimizer=draw(probabilities),
        p_lr=draw(probabilities), p_latent=draw(probabilities), p_large=draw(probabilities),
        p_crossover=draw(probabilities), min_layers=min_layers, max_layers=max_layers, min_width=min_width,
        max_width=max_width, min_latent=min_latent, max_latent=max_latent)


def run_operator(op: str, a: Genome, b: Genome, seed: int, cfg: MutationConfig):
    """Apply one operator; returns (child, ops, parents in slot order)."""
    rng = np.random.default_rng(seed)
    if op == "breed1":
        child, ops = breed([a], rng, cfg)
        return child, ops, [a]
    if op == "breed2":
        child, ops = breed([a, b], rng, cfg)
        return child, ops, [a, b]
    if op == "mutate":
        child, ops = mutate(a.stamped(0), rng, cfg)
        return child, ops, [a]
    child, ops = crossover(a.stamped(0), b.stamped(1), rng, cfg)
    return child, ops, [a, b]


def run_chain(seed: int, cfg: MutationConfig, chain: list[str]) -> None:
    rng = np.random.default_rng(seed)
    pool = []
    for _ in range(2):
        genome = random_genome(rng, cfg, batch_size=16, steps=3)
        check_limits(genome, cfg)
        torch.manual_seed(int(rng.integers(2**31)))
        pool.append((genome, clone_state(build_pair(genome).state_dicts())))
    for op in chain:
        (a, state_a), (b, state_b) = (pool[int(i)] for i in rng.choice(len(pool), size=2))
        before = (a.to_dict(), b.to_dict())
        op_seed = int(rng.integers(2**31))
        child, ops, parents = run_operator(op, a, b, op_seed, cfg)
        # pure: inputs unchanged, same seed same child
        assert (a.to_dict(), b.to_dict()) == before
        again, again_ops = run_operator(op, a, b, op_seed, cfg)[:2]
        assert again == child and again_ops == ops
        assert isinstance(child, Genome)
        assert isinstance(ops, list) and all(isinstance(o, dict) and "op" in o for o in ops)
        check_limits(child, cfg)
        data = json.loads(json.dumps(child.to_dict()))
        assert Genome.from_dict(data) == child
        check_forward_backward(child)
        states = [state_a] if len(parents) == 1 else [state_a, state_b]
        torch.manual_seed(op_seed)
        report, pair = check_inheritance(child, parents, states)
        # a child whose layers are exactly its only parent's inherits everything
        stamped = a.stamped(0)
        if len(parents) == 1 and all(child.layers(n) == stamped.layers(n) for n in NETS) \
                and child.latent_dim == a.latent_dim:
            assert report["share"] == 1.0
        pool.append((child, clone_state(pair.state_dicts())))


def test_random_operator_chains():
    runs = []

    @settings(max_examples=CHAIN_COUNT, deadline=None, database=None)
    @given(seed=st.integers(0, 2**32 - 1), cfg=mutation_configs(),
           chain=st.lists(st.sampled_from(OPS), min_size=1, max_size=8))
    def chains(seed, cfg, chain):
        run_chain(seed, cfg, chain)
        runs.append(len(chain))

    chains()
    assert len(runs) >= CHAIN_COUNT
    assert sum(runs) >= CHAIN_COUNT  # every chain applied at least one operator


@pytest.mark.parametrize("seed", range(40))
def test_seeded_operator_chains_with_default_limits(seed):
    """Deterministic chains with the default probabilities and narrow widths, independent of hypothesis."""
    cfg = MutationConfig(max_width=32)
    chain_rng = np.random.default_rng(1000 + seed)
    chain = [str(op) for op in chain_rng.choice(OPS, size=int(chain_rng.integers(1, 9)))]
    run_chain(seed, cfg, chain)


def test_random_genome_within_limits_and_reproducible():
    cfg = MutationConfig(max_width=32, max_layers=5)
    seen_depths = set()
    for seed in range(50):
        genome = random_genome(np.random.default_rng(seed), cfg, batch_size=32, steps=7)
        check_limits(genome, cfg)
        assert genome.batch_size == 32 and genome.steps == 7
        assert genome == random_genome(np.random.default_rng(seed), cfg, batch_size=32, steps=7)
        seen_depths.add(len(genome.generator))
    assert len(seen_depths) > 1  # first-generation shapes are diverse


@pytest.mark.parametrize("cfg", [
    MutationConfig(min_width=4, max_width=8),
    MutationConfig(min_lr=5e-3, max_lr=1e-2),
    MutationConfig(min_lr=1e-6, max_lr=1e-5),
    MutationConfig(min_layers=4, max_layers=6),
], ids=["max_width<16", "min_lr>2e-3", "max_lr<1e-4", "min_layers>3"])
def test_random_genome_valid_for_every_valid_config(cfg):
    genome = random_genome(np.random.default_rng(0), cfg, batch_size=16, steps=3)
    check_limits(genome, cfg)


# ---------------------------------------------------------------------------------------------
# operators: purity and determinism of each


def _operator_calls():
    a = make_genome([16, 24, 12], [16, 8], norms={"generator": ["batch", "none", "layer"]})
    b = make_genome([20, 16], [8, 8, 8], activation="tanh")
    cfg = MutationConfig(max_width=32)
    return a, b, cfg, {
        "mutate": lambda rng: mutate(a, rng, cfg),
        "crossover": lambda rng: crossover(a, b, rng, cfg),
        "breed1": lambda rng: breed([a], rng, cfg),
        "breed2": lambda rng: breed([a, b], rng, cfg),
        "add_layer": lambda rng: add_layer(a, "generator", rng, cfg),
        "delete_layer": lambda rng: delete_layer(a, "discriminator", rng, cfg),
        "change_width": lambda rng: change_layer(a, "generator", "width", rng, cfg),
        "change_activation": lambda rng: change_layer(a, "discriminator", "activation", rng, cfg),
        "change_norm": lambda rng: change_layer(a, "generator", "norm", rng, cfg),
        "change_optimizer": lambda rng: change_optimizer(a, "generator", "name", rng, cfg),
        "change_lr": lambda rng: change_optimizer(a, "discriminator", "lr", rng, cfg),
        "change_latent": lambda rng: change_latent(a, rng, cfg),
    }


@pytest.mark.parametrize("name", list(_operator_calls()[3]))
def test_operators_are_pure_and_deterministic(name):
    a, b, cfg, calls = _operator_calls()
    before = (a.to_dict(), b.to_dict())
    children = set()
    for seed in range(12):
        child, ops = calls[name](np.random.default_rng(seed))
        again, again_ops = calls[name](np.random.default_rng(seed))
        assert child == again and ops == again_ops
        assert (a.to_dict(), b.to_dict()) == before
        check_limits(child, cfg)
        children.add(json.dumps(child.to_dict(), sort_keys=True))
        if name not in ("crossover",):
            assert ops or child == a  # no ops means no change
    assert len(children) > 1  # the seed matters


def test_mutate_changes_the_genome():
    a, _, cfg, _ = _operator_calls()
    for seed in range(30):
        child, ops = mutate(a, np.random.default_rng(seed), cfg)
        assert ops, seed
        assert child != a, (seed, ops)


def test_mutate_changes_the_genome_at_the_lr_limit():
    cfg = lr_only(p_large=0, p_crossover=0)
    parent = make_genome([16], [16], g_lr=cfg.max_lr, d_lr=cfg.max_lr)
    for seed in range(10):
        child, ops = mutate(parent, np.random.default_rng(seed), cfg)
        assert all(op["from"] != op["to"] for op in ops), (seed, ops)
        assert child != parent, seed


def test_breed_needs_a_parent():
    with pytest.raises(ValueError, match="parent"):
        breed([], np.random.default_rng(0), MutationConfig())


def test_breed_stamps_parents():
    a = make_genome([16, 24], [16])
    cfg = lr_only()
    child, ops = breed([a], np.random.default_rng(0), cfg)
    assert child.generator == a.stamped(0).generator
    assert child.discriminator == a.stamped(0).discriminator
    assert {op["op"] for op in ops} == {"change_lr"}


def test_add_and_delete_layer_respect_limits():
    cfg = MutationConfig(min_layers=2, max_layers=3)
    full = make_genome([8, 8, 8], [8, 8])
    assert add_layer(full, "generator", np.random.default_rng(0), cfg) == (full, [])
    assert delete_layer(full, "discriminator", np.random.default_rng(0), cfg) == (full, [])
    grown, ops = add_layer(full, "discriminator", np.random.default_rng(0), cfg)
    assert len(grown.discriminator) == 3 and ops[0]["op"] == "add_layer"
    shrunk, ops = delete_layer(full, "generator", np.random.default_rng(0), cfg)
    assert len(shrunk.generator) == 2 and ops[0]["op"] == "delete_layer"


# ---------------------------------------------------------------------------------------------
# crossover at every cut


CROSS_A = make_genome([16, 24, 32], [12, 12], activation="relu",
                      norms={"generator": ["batch", "none", "layer"], "discriminator": ["none", "batch"]})
CROSS_B = make_genome([16, 20, 32, 12], [12, 20, 8], activation="tanh", latent_dist="uniform",
                      norms={"generator": ["layer", "layer", "none", "batch"],
                             "discriminator": ["layer", "none", "none"]}, g_lr=5e-4, d_lr=5e-3, batch_size=32,
                      steps=5)


def expected_splice(a, b, cut):
    """For dense genomes of one latent size, the shape a's prefix yields is its last width; where it differs
    from b's, the adapter crossover puts there is folded into b's dense layer at the cut (both seams of
    CROSS_A and CROSS_B fold: no spectral norm, no bottleneck; tests/test_fold.py has the rest)."""
    return list(a[:cut]) + list(b[cut:])


def test_crossover_every_cut():
    cfg = MutationConfig(max_layers=6)
    a, b = CROSS_A.stamped(0), CROSS_B.stamped(1)
    states = [clone_state(built_pair_with_stats(CROSS_A, 1).state_dicts()),
              clone_state(built_pair_with_stats(CROSS_B, 2).state_dicts())]
    seen = {net: set() for net in NETS}
    folds_seen = 0
    for seed in range(200):
        child, ops = crossover(a, b, np.random.default_rng(seed), cfg)
        assert [op["op"] for op in ops] == ["crossover", "crossover"]
        assert [op["net"] for op in ops] == list(NETS)
        for op in ops:
            net, cut = op["net"], op["cut"]
            la, lb = a.layers(net), b.layers(net)
            assert 0 <= cut <= min(len(la), len(lb))
            seen[net].add(cut)
            layers = child.layers(net)
            assert shape_of(layers) == shape_of(expected_splice(la, lb, cut)), (net, cut)
            widths_differ = 0 < cut and a.layers(net)[cut - 1].width != b.layers(net)[cut - 1].width
            assert op["adapter"] == ("folded" if widths_differ else False), (net, cut)
            assert not any(layer.kind == "adapter" for layer in layers), (net, cut)
            folds_seen += widths_differ
            # origins follow the layers: a's head, b's tail
            origins = [layer.origin for layer in layers]
            assert origins == [(0, i) for i in range(cut)] + [(1, i) for i in range(cut, len(lb))], (net, cut)
        for gene in ("latent_dim", "latent_dist", "g_optimizer", "d_optimizer", "batch_size", "steps"):
            assert getattr(child, gene) in (getattr(CROSS_A, gene), getattr(CROSS_B, gene))
        # every inherited tensor meets a source here; a folded layer reads the inputs its parent layer
        # never saw with zero weight (W·A, A the near-identity adapter), and only those are not inherited
        torch.manual_seed(seed)
        pair = build_pair(child)
        report = inherit(pair, child, states)
        unseen = 0
        for op in (op for op in ops if op["adapter"] == "folded"):
            weight = getattr(pair, op["net"]).state_dict()[f"layers.{op['cut']}.linear.weight"]
            saw = states[1][op["net"]][f"layers.{op['cut']}.linear.weight"].shape[1]
            assert not weight[:, saw:].any(), (op, seed)
            unseen += weight[:, saw:].numel()
        if child.latent_dim == CROSS_A.latent_dim:
            assert report["inherited"] == report["total"] - unseen, seed
        if all(seen[net] == set(range(min(len(a.layers(net)), len(b.layers(net))) + 1)) for net in NETS) \
                and seed >= 50:
            break
    assert seen["generator"] == {0, 1, 2, 3}
    assert seen["discriminator"] == {0, 1, 2}
    assert folds_seen > 0


@pytest.mark.parametrize("cut", [0, 1, 2, 3])
def test_crossover_forced_cut(cut):
    """Each cut through a fake rng whose integers() returns it."""
    cfg = MutationConfig(max_layers=6)
    a, b = CROSS_A.stamped(0), CROSS_B.stamped(1)

    class FixedCut:
        def __init__(self):
            self.calls = []

        def integers(self, low, high):
            self.calls.append((low, high))
            return min(cut, high - 1)

        def random(self):
            return 0.25  # genes from a

    rng = FixedCut()
    child, ops = crossover(a, b, rng, cfg)
    assert rng.calls == [(0, 4), (0, 3)]
    assert ops[0]["cut"] == cut and ops[1]["cut"] == min(cut, 2)
    assert shape_of(child.generator) == shape_of(expected_splice(a.generator, b.generator, cut))
    d_cut = min(cut, 2)
    assert shape_of(child.discriminator) == shape_of(expected_splice(a.discriminator, b.discriminator, d_cut))
    assert child.latent_dist == "normal" and child.batch_size == CROSS_A.batch_size


def test_crossover_without_room_leaves_out_the_adapter():
    cfg = MutationConfig(max_layers=4)
    # b's third generator layer under spectral norm, which no adapter can be folded into (tests/test_fold.py)
    spectral = replace(CROSS_B.generator[2], norm="spectral")
    a, b = CROSS_A.stamped(0), CROSS_B.with_layers("generator", (*CROSS_B.generator[:2], spectral,
                                                                 *CROSS_B.generator[3:])).stamped(1)
    for seed in range(200):
        child, ops = crossover(a, b, np.random.default_rng(seed), cfg)
        check_limits(child, cfg)
        if ops[0]["cut"] == 2:  # widths differ (24 vs 20) but b already has max_layers layers
            assert not ops[0]["adapter"]
            assert shape_of(child.generator) == shape_of(a.generator[:2] + b.generator[2:])
            break
    else:
        pytest.fail("cut 2 never drawn")


# ---------------------------------------------------------------------------------------------
# inheritance


PARENT = make_genome([16, 24, 12], [16, 16], activation="elu",
                     norms={"generator": ["batch", "layer", "none"], "discriminator": ["none", "batch"]})
LR_ONLY = lr_only(p_crossover=0)


@pytest.fixture
def parent_state():
    return clone_state(built_pair_with_stats(PARENT, 7).state_dicts())


def test_inherit_without_structural_change_copies_everything(parent_state):
    child, ops = breed([PARENT], np.random.default_rng(3), LR_ONLY)
    assert ops and all(op["op"] == "change_lr" for op in ops)
    assert child.g_optimizer != PARENT.g_optimizer or child.d_optimizer != PARENT.d_optimizer
    assert_inherits_everything(child, parent_state)


def assert_inherits_everything(child, parent_state: dict) -> None:
    """A child with the same layers as its one parent takes every tensor from it, exactly."""
    torch.manual_seed(99)
    pair = build_pair(child)
    report = inherit(pair, child, [parent_state])
    assert report["share"] == 1.0
    assert report["inherited"] == report["total"] == pair.parameter_count()
    assert report["per_parent"] == [report["total"]]
    for net in NETS:
        got = pair.state_dicts()[net]
        assert got.keys() == parent_state[net].keys()
        for name in got:  # parameters and buffers alike: weights, noise scale, batch-norm statistics
            assert torch.equal(got[name], parent_state[net][name]), (net, name)


def test_inherit_leaves_layers_without_origin_fresh(parent_state):
    torch.manual_seed(5)
    pair = build_pair(PARENT)  # no origins: every hidden layer stays fresh
    fresh = clone_state(pair.state_dicts())
    report = inherit(pair, PARENT, [parent_state])
    layer_params = sum(p.numel() for net in (pair.generator, pair.discriminator) for p in net.layers.parameters())
    assert report["inherited"] <= report["total"] - layer_params
    for net in NETS:
        got = pair.state_dicts()[net]
        for name in got:
            if name.startswith("layers."):
                assert torch.equal(got[name], fresh[net][name]), (net, name)


@pytest.mark.parametrize("new_width", [30, 10])
def test_inherit_after_width_change_keeps_the_overlap(parent_state, new_width):
    stamped = PARENT.stamped(0)
    layers = list(stamped.generator)
    layers[1] = replace(layers[1], width=new_width)
    child = stamped.with_layers("generator", layers)
    torch.manual_seed(11)
    pair = build_pair(child)
    fresh = clone_state(pair.state_dicts())
    report = inherit(pair, child, [parent_state])
    got, src = pair.state_dicts()["generator"], parent_state["generator"]
    k = min(24, new_width)
    assert got["layers.1.linear.weight"].shape == (new_width, 16)
    assert torch.equal(got["layers.1.linear.weight"][:k], src["layers.1.linear.weight"][:k])
    assert torch.equal(got["layers.1.linear.bias"][:k], src["layers.1.linear.bias"][:k])
    assert torch.equal(got["layers.1.norm.weight"][:k], src["layers.1.norm.weight"][:k])
    assert torch.equal(got["layers.2.linear.weight"][:, :k], src["layers.2.linear.weight"][:, :k])
    assert torch.equal(got["layers.0.linear.weight"], src["layers.0.linear.weight"])
    assert torch.equal(got["head.linear.weight"], src["head.linear.weight"])
    if new_width > 24:  # the new rows and columns keep their fresh values
        assert torch.equal(got["layers.1.linear.weight"][24:], fresh["generator"]["layers.1.linear.weight"][24:])
        assert torch.equal(got["layers.2.linear.weight"][:, 24:],
                           fresh["generator"]["layers.2.linear.weight"][:, 24:])
        assert report["share"] < 1.0
    else:  # every child tensor lies within its source
        assert report["share"] == 1.0


def test_change_layer_width_keeps_origins(parent_state):
    stamped = PARENT.stamped(0)
    for seed in range(20):
        child, ops = change_layer(stamped, "generator", "width", np.random.default_rng(seed), MutationConfig())
        if ops:
            break
    assert ops[0]["op"] == "change_width" and ops[0]["from"] != ops[0]["to"]
    assert [layer.origin for layer in child.generator] == [(0, 0), (0, 1), (0, 2)]
    check_inheritance(child, [PARENT], [parent_state])


def test_inherit_duplicated_layer_copies_its_twin(parent_state):
    stamped = PARENT.stamped(0)
    cfg = MutationConfig()
    copies = set()
    for seed in range(40):
        child, ops = add_layer(stamped, "generator", np.random.default_rng(seed), cfg)
        (op,) = ops
        i, twin = op["copy_of"], op["index"]
        assert twin == i + 1
        copies.add(i)
        assert child.generator[twin] == child.generator[i] == stamped.generator[i]
        torch.manual_seed(seed)
        pair = build_pair(child)
        fresh = clone_state(pair.state_dicts())
        inherit(pair, child, [parent_state])
        got, src = pair.state_dicts()["generator"], parent_state["generator"]
        for name, tensor in got.items():
            if not name.startswith("layers."):
                continue
            index = int(name.split(".")[1])
            source_index = index if index <= i else index - 1  # the twin and everything after shift by one
            source = src[name.replace(f"layers.{index}.", f"layers.{source_index}.", 1)]
            region = overlap(tensor, source)
            assert torch.equal(tensor[region], source[region]), (seed, name)
            if index != twin:
                assert tensor.shape == source.shape, name
        # the twin's input grows from the layer's input width to its own; extra columns stay fresh
        w_in = got[f"layers.{i}.linear.weight"].shape[1]
        width = child.generator[i].width
        if width > w_in:
            assert torch.equal(got[f"layers.{twin}.linear.weight"][:, w_in:],
                               fresh["generator"][f"layers.{twin}.linear.weight"][:, w_in:])
        assert torch.equal(got["head.linear.weight"], src["head.linear.weight"])
    assert copies == {0, 1, 2}


def test_inherit_counts_per_parent_after_crossover():
    a, b = CROSS_A.stamped(0), CROSS_B.stamped(1)
    states = [clone_state(built_pair_with_stats(CROSS_A, 1).state_dicts()),
              clone_state(built_pair_with_stats(CROSS_B, 2).state_dicts())]
    for seed in range(30):
        child, ops = crossover(a, b, np.random.default_rng(seed), MutationConfig(max_layers=6))
        pair = build_pair(child)
        report = inherit(pair, child, states)
        expected = [0, 0]
        for net in NETS:
            module = getattr(pair, net)
            last = 0
            for i, layer in enumerate(child.layers(net)):
                if layer.origin is not None:
                    expected[layer.origin[0]] += sum(p.numel() for p in module.layers[i].parameters())
                    last = layer.origin[0]
            for op in ops:  # a folded layer's inputs its parent layer never saw start at zero, not inherited
                if op["net"] == net and op["adapter"] == "folded":
                    seen = states[1][net][f"layers.{op['cut']}.linear.weight"].shape[1]
                    expected[1] -= module.layers[op["cut"]].linear.weight[:, seen:].numel()
            expected[last] += sum(p.numel() for p in module.head.parameters())
        if child.latent_dim == CROSS_A.latent_dim:
            assert report["per_parent"] == expected, seed


def test_inherit_skips_origins_beyond_the_given_parents(parent_state):
    child = PARENT.stamped(1)  # slot 1, but only one parent's weights given
    torch.manual_seed(0)
    pair = build_pair(child)
    report = inherit(pair, child, [parent_state])
    assert report["inherited"] == 0 and report["share"] == 0.0 and report["per_parent"] == [0]


def test_inherit_with_latent_change_keeps_overlap(parent_state):
    child = replace(PARENT.stamped(0), latent_dim=5)
    pair = build_pair(child)
    report = inherit(pair, child, [parent_state])
    got = pair.state_dicts()["generator"]["layers.0.linear.weight"]
    assert got.shape == (16, 5)
    assert torch.equal(got, parent_state["generator"]["layers.0.linear.weight"][:, :5])
    assert report["share"] == 1.0
    assert math.isclose(report["inherited"], pair.parameter_count())


def test_a_child_that_is_not_varied_is_a_clone_that_inherits_everything():
    parent = make_genome([16, 8], [12])
    cfg = MutationConfig(p_mutate=0.0, p_crossover=0.0)
    child, ops = breed([parent, make_genome([8], [8])], np.random.default_rng(0), cfg)
    assert ops == [{"op": "clone"}] and child == parent.stamped(0)
    torch.manual_seed(0)
    source = build_pair(parent)
    stats = inherit(build_pair(child), child, [source.state_dicts()])
    assert stats["share"] == 1.0
    varied = [breed([parent], np.random.default_rng(s), MutationConfig(p_mutate=0.3))[1] for s in range(300)]
    share = sum(ops != [{"op": "clone"}] for ops in varied) / len(varied)
    assert 0.2 < share < 0.4, share


@pytest.mark.parametrize("packs", [(2, 2), (2, 3), (1, 4)])
def test_crossover_keeps_the_pack_of_the_discriminators_first_layer(packs):
    """Packing used to vanish at every crossover (the child took the Genome default of 1). The child's
    pack is that of the parent whose layers read the discriminator's input: a's when the cut leaves it a
    head, b's when the cut is 0; and the child builds."""
    cfg = MutationConfig(max_layers=6)
    a = replace(CROSS_A, pack=packs[0]).stamped(0)
    b = replace(CROSS_B, pack=packs[1]).stamped(1)
    seen = set()
    for seed in range(60):
        child, ops = crossover(a, b, np.random.default_rng(seed), cfg)
        d_cut = next(op["cut"] for op in ops if op["net"] == "discriminator")
        assert child.pack == (a.pack if d_cut > 0 else b.pack), (seed, d_cut)
        seen.add(d_cut > 0)
        pair = build_pair(child)
        pair.discriminator(pair.generator.sample(8, torch.Generator().manual_seed(seed)))
    assert seen == {True, False}
