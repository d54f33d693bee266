"""The operator that inserts the seed's random noise layer (issue 15, point 3): in dense and convolutional
networks, generators and discriminators, within the depth limit, and every child builds and runs."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from genome.build import build_pair
from genome.genes import NETS, Layer
from genome.operators import NOISE_SCALES, MutationConfig, add_noise, mutate
from genome.population import random_genome
from tests.test_architecture import check_genes, check_inherit, check_pair, configs, data_shapes, operators_off

CHILDREN_TO_CHECK = 200


def without_noise(layers) -> list[Layer]:
    return [layer for layer in layers if layer.kind != "noise"]


def test_add_noise_inserts_one_fresh_noise_layer_and_leaves_the_rest_in_order():
    genome = random_genome(np.random.default_rng(0), MutationConfig(), 8, 1, data_shape=(1, 8, 8),
                           architecture="conv").stamped(0)
    cfg = MutationConfig(max_layers=6)
    for seed in range(50):
        for net in NETS:
            child, ops = add_noise(genome, net, np.random.default_rng(seed), cfg)
            [op] = ops
            layers = child.layers(net)
            assert op["op"] == "add_noise" and op["net"] == net
            new = layers[op["index"]]
            assert new.kind == "noise" and new.origin is None and new.scale == op["scale"]
            assert NOISE_SCALES[0] <= new.scale <= NOISE_SCALES[1]
            assert layers[:op["index"]] + layers[op["index"] + 1:] == genome.layers(net)
            assert all(layers[j].kind != "noise" for j in (op["index"] - 1, op["index"] + 1) if 0 <= j < len(layers))
            other = NETS[1 - NETS.index(net)]
            assert child.layers(other) == genome.layers(other)


def test_add_noise_respects_the_depth_limit_and_never_doubles_a_noise_layer():
    genome = random_genome(np.random.default_rng(1), MutationConfig(), 8, 1, data_shape=(2,), architecture="dense")
    full = MutationConfig(max_layers=len(genome.generator))
    assert add_noise(genome, "generator", np.random.default_rng(0), full) == (genome, [])
    lone = genome.with_layers("generator", [Layer(kind="noise")])  # its only places are beside the noise
    assert add_noise(lone, "generator", np.random.default_rng(0), MutationConfig()) == (lone, [])


def test_mutation_with_only_add_noise_on_reaches_every_net_and_position():
    cfg = operators_off(p_add_noise=1.0, max_layers=8)
    genome = random_genome(np.random.default_rng(2), cfg, 8, 1, data_shape=(2,), architecture="dense")
    seen = set()
    for seed in range(200):
        child, ops = mutate(genome, np.random.default_rng(seed), cfg)
        assert ops and {op["op"] for op in ops} == {"add_noise"}
        seen.update((op["net"], op["index"]) for op in ops)
    depth = {net: len(genome.layers(net)) for net in NETS}
    assert seen == {(net, i) for net in NETS for i in range(depth[net] + 1)}


def test_children_with_inserted_noise_build_and_run_over_many_random_genomes():
    """Random genomes, vector and image, dense and convolutional; noise inserted into either network until
    it is full; every child within the limits, built, inheriting its parent's weights, and run forward and
    backward with the shapes the plan says."""
    checked = {"children": 0, "image": 0, "nets": set()}

    @settings(max_examples=120, deadline=None, database=None, derandomize=True)  # counts below, not luck
    @given(data=st.data(), seed=st.integers(0, 2**32 - 1), inserts=st.integers(1, 4), room=st.integers(0, 3))
    def children(data, seed, inserts, room):
        shape = data.draw(data_shapes())
        cfg = data.draw(configs(shape))
        archs = ("dense", "conv") if len(shape) == 3 else ("dense",)
        rng = np.random.default_rng(seed)
        genome = random_genome(rng, cfg, batch_size=4, steps=1, data_shape=shape,
                               architecture=data.draw(st.sampled_from(archs)))
        cfg = replace(cfg, max_layers=cfg.max_layers + room)  # founders fill the depth limit often; leave room
        torch.manual_seed(seed % 2**31)
        state = build_pair(genome).state_dicts()
        for _ in range(inserts):
            net = str(rng.choice(NETS))
            child, ops = add_noise(genome.stamped(0), net, rng, cfg)
            if not ops:  # full, or every gap is beside a noise layer already
                kinds = [layer.kind for layer in genome.layers(net)]
                assert len(kinds) >= cfg.max_layers or all("noise" in kinds[max(i - 1, 0):i + 1]
                                                            for i in range(len(kinds) + 1))
                continue
            assert without_noise(child.layers(net)) == without_noise(genome.stamped(0).layers(net))
            check_genes(child, cfg)
            pair = build_pair(child)
            report = check_inherit(child, pair, [state])
            assert report["inherited"] == report["total"] - 1  # all but the new layer's scale
            check_pair(child, pair, 3, seed=seed % 2**31)
            genome, state = child, pair.state_dicts()
            checked["children"] += 1
            checked["image"] += len(shape) == 3
            checked["nets"].add((net, len(shape)))

    children()
    assert checked["children"] >= CHILDREN_TO_CHECK, checked
    assert checked["image"] >= 30, checked
    assert checked["nets"] == {(net, rank) for net in NETS for rank in (1, 3)}, checked


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_a_bad_add_noise_probability_is_refused_naming_it(bad):
    with pytest.raises(ValueError, match=r"mutation\.p_add_noise\b"):
        MutationConfig(p_add_noise=bad)
