"""The individual in hand: a genome, its modules and optimizers, and where it came from; how a pair goes
on training, and how a child is built from its parents' genomes, weights and optimizer states. No Ray:
the player fetches the parents and carries these out."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from arena.average import Average
from arena.tuning import FACTORS
from genome import Genome, Pair, breed, build_pair, inherit, make_optimizer
from genome.operators import MutationConfig, _clip
from genome.optimizer_state import carry_optimizer_state

BUILD_ATTEMPTS = 5


@dataclass
class Offspring:
    """The individual in hand before it is recorded: its genes, modules and where it came from."""

    genome: Genome
    pair: Pair
    parents: list[str] = field(default_factory=list)
    ops: list[dict] = field(default_factory=lambda: [{"op": "random"}])
    inherited: dict | None = None
    parent_fitness: float | None = None  # mean fitness of its parents when chosen, for the mutation record
    optimizers: tuple | None = None  # (generator's, discriminator's); None: fresh ones from the genes
    age: int = 0  # loops this pair has trained under its genes: a continued pair ages, a bred one is 0
    g_parents: list[str] = field(default_factory=list)  # where its generator side came from
    d_parents: list[str] = field(default_factory=list)  # where its discriminator side came from
    average: Average | None = None  # of its generator's weights (`arena.average`); None: a new one when it trains

    def optimizer_states(self) -> dict:
        return {"g_optimizer": self.optimizers[0].state_dict(), "d_optimizer": self.optimizers[1].state_dict()}


def whole(pair: Pair, parent: str) -> dict:
    """The inheritance record of a pair that is its parent's, every parameter."""
    total = pair.parameter_count()
    return {"inherited": total, "total": total, "share": 1.0, "build_attempts": 1,
            "from": [{"parent": parent, "parameters": total}]}


def optimizers_for(genome: Genome, pair: Pair, g_from: dict | None = None, d_from: dict | None = None) -> tuple:
    """Fresh optimizers from the genes, each carrying its parent's state (`g_optimizer` of `g_from`,
    `d_optimizer` of `d_from`) where the parent's optimizer is of the same kind (`g_optimizer_name`,
    `d_optimizer_name` when given) and its shapes fit."""
    optimizers = (make_optimizer(genome.g_optimizer, pair.generator.parameters()),
                  make_optimizer(genome.d_optimizer, pair.discriminator.parameters()))
    for optimizer, gene, source, key in ((optimizers[0], genome.g_optimizer, g_from, "g_optimizer"),
                                         (optimizers[1], genome.d_optimizer, d_from, "d_optimizer")):
        if source and source.get(key) and source.get(f"{key}_name", gene.name) == gene.name:
            carry_optimizer_state(optimizer, source[key])
    return optimizers


def restored(genome: Genome, state: dict, parent: str, op: dict, device: str | torch.device = "cpu",
             fitness: float | None = None, age: int = 0) -> Offspring:
    """A pair of `genome` holding `state` whole (weights and optimizers' moments), the one parent's child by
    `op`: how a perturbed copy and a resumed player start, nothing rebuilt but the modules."""
    pair = build_pair(genome, device)
    pair.load_state_dicts(state)
    return Offspring(genome, pair, [parent], [op], whole(pair, parent), parent_fitness=fitness,
                     optimizers=optimizers_for(genome, pair, state, state), age=age, g_parents=[parent],
                     d_parents=[parent])


def continued(current: Offspring, individual: str, fitness: float | None) -> Offspring:
    """The same pair, trained on under a new id, its optimizers and its generator's average with it."""
    return Offspring(current.genome, current.pair, [individual], [{"op": "continue", "from": individual}],
                     whole(current.pair, individual), parent_fitness=fitness, optimizers=current.optimizers,
                     age=current.age + 1, g_parents=[individual], d_parents=[individual], average=current.average)


def bred(chosen: list[dict], d_chosen: list[dict], states: list[dict], rng: np.random.Generator,
         mutation: MutationConfig, device: str | torch.device = "cpu", steps: int | None = None,
         say: Callable[[str], None] = print) -> Offspring:
    """The child of the parents `chosen` (generator side) and `d_chosen` (discriminator side; empty: from
    `chosen`), each an entry with `id`, `genome` and maybe `fitness`, their weights and optimizer states in
    `states` (same order, `chosen` first). It inherits their weights and, where its layers are theirs
    unchanged, their optimizer state; `steps` fixes its training steps whoever the parents were."""
    genomes = [Genome.from_dict(p["genome"]) for p in chosen + d_chosen]
    g_genomes, d_genomes = genomes[:len(chosen)], genomes[len(chosen):]
    for attempt in range(1, BUILD_ATTEMPTS + 1):
        genome, ops = breed(g_genomes, rng, mutation, d_genomes)
        if steps is not None:
            genome = dataclasses.replace(genome, steps=steps)
        try:  # shape inference makes every child build; a failure here is a bug worth recording
            pair = build_pair(genome, device)
            inherited = inherit(pair, genome, states)
            break
        except (RuntimeError, ValueError) as err:
            if attempt == BUILD_ATTEMPTS:
                raise
            say(f"child {genome.to_dict()} did not build ({err}); breeding again")
    inherited["build_attempts"] = attempt
    inherited["from"] = [{"parent": p["id"], "parameters": n}
                         for p, n in zip(chosen + d_chosen, inherited.pop("per_parent")) if n]
    # Optimizer state follows each network from the parent that supplied it (where the shapes still fit):
    # the generator's from the first generator-side parent, the discriminator's from the first
    # discriminator-side parent (or the generator-side one when the pair stays together).
    d_slot = len(chosen) if d_chosen else 0
    optimizers = optimizers_for(genome, pair, {**states[0], "g_optimizer_name": genomes[0].g_optimizer.name},
                                {**states[d_slot], "d_optimizer_name": genomes[d_slot].d_optimizer.name})
    known = [p["fitness"] for p in chosen if p.get("fitness") is not None]
    return Offspring(genome, pair, sorted({p["id"] for p in chosen + d_chosen}), ops, inherited,
                     sum(known) / len(known) if known else None, optimizers=optimizers,
                     g_parents=[p["id"] for p in chosen], d_parents=[p["id"] for p in d_chosen or chosen])


def perturbed(parent: dict, state: dict, rng: np.random.Generator, mutation: MutationConfig,
              device: str | torch.device = "cpu", steps: int | None = None) -> Offspring:
    """PBT's exploit and explore: the pair of `parent` (an entry with `id` and `genome`; `state` its weights
    and optimizer states) copied whole, each network's learning rate multiplied by one of
    `FACTORS` (within the mutation limits); `steps` fixes its training steps as `bred`'s. Nothing is
    rebuilt, so what the parent has learnt, and its optimizer's moments, go on training: the variation is in
    how fast, not in what. Recorded as one op, `perturb`, apart from mutation's `change_lr`."""
    genome = Genome.from_dict(parent["genome"])
    rates = tuple(_clip(gene.lr * float(rng.choice(FACTORS)), mutation.min_lr, mutation.max_lr)
                  for gene in (genome.g_optimizer, genome.d_optimizer))
    genome, op = with_rates(genome, rates, {"op": "perturb"})
    genome = dataclasses.replace(genome, **({"steps": steps} if steps is not None else {}))
    return restored(genome, state, parent["id"], op, device, parent.get("fitness"))


def with_rates(genome: Genome, rates: tuple[float, float], op: dict) -> tuple[Genome, dict]:
    """`genome` with the learning rates `rates` (generator's, discriminator's), and `op` noting the change of
    each (`g_lr`, `d_lr`: [before, after])."""
    genes = {}
    for side, lr in zip(("g", "d"), rates):
        gene = getattr(genome, f"{side}_optimizer")
        genes[f"{side}_optimizer"] = dataclasses.replace(gene, lr=float(lr))
        op = {**op, f"{side}_lr": [gene.lr, float(lr)]}
    return dataclasses.replace(genome, **genes), op
