"""Weight inheritance: a child's layers start from the parent layers they came from.

Each child layer gene names its origin (parent slot, layer index). Tensors are copied by name
within the layer; where a width changed, the overlapping slice is kept; fresh layers, adapters and
tensors with no counterpart of the same name in the parent layer keep their fresh initialisation
(a normalisation switched between batch and layer keeps its affine scale and shift). A dense layer
right after a crossover seam reads the inputs its parent layer never saw with zero weight: it starts
as W·A, A the near-identity adapter that crossover folds into it (`splice`).
"""

from __future__ import annotations

import torch

from genome.build import Pair
from genome.genes import NETS, Genome


def _copy_overlap(dst: torch.Tensor, src: torch.Tensor) -> int:
    if dst.dim() != src.dim():
        return 0
    if dst.dim() == 0:
        dst.copy_(src)
        return 1
    region = tuple(slice(0, min(a, b)) for a, b in zip(dst.shape, src.shape))
    dst[region] = src[region].to(dst.device, dst.dtype)
    return int(dst[region].numel())


def _canonical(name: str) -> str:
    """A weight under spectral normalisation is stored as `parametrizations.weight.original`;
    it is the same weight for inheritance."""
    return name.replace("parametrizations.weight.original", "weight")


def _sub_state(state: dict, prefix: str) -> dict:
    return {_canonical(k[len(prefix):]): v for k, v in state.items() if k.startswith(prefix)}


def _head_slot(genome: Genome, net: str) -> int:
    """The head follows the parent that supplied the end of the layer list."""
    for layer in reversed(genome.layers(net)):
        if layer.origin is not None:
            return layer.origin[0]
    return 0


def _seams(genome: Genome, net: str) -> set[str]:
    """Prefixes of the dense layers that follow a layer of another parent: where crossover joined two
    parents and may have folded an adapter into the layer."""
    layers = genome.layers(net)
    return {f"layers.{i}." for i in range(1, len(layers))
            if layers[i].kind == "dense" and layers[i].origin and layers[i - 1].origin
            and layers[i].origin[0] != layers[i - 1].origin[0]}


def inherit(child: Pair, genome: Genome, parents: list[dict]) -> dict:
    """Copy weights from `parents` (each `{"generator": state_dict, "discriminator": state_dict}`,
    in slot order) into `child`; returns how many parameters were inherited, in all and per slot."""
    per_slot = [0] * len(parents)
    total = child.parameter_count()
    with torch.no_grad():
        for net in NETS:
            module = getattr(child, net)
            state = module.state_dict(keep_vars=True)
            plan = [(f"layers.{i}.", layer.origin) for i, layer in enumerate(genome.layers(net))]
            plan.append(("head.", (_head_slot(genome, net), None)))
            seams = _seams(genome, net)
            for prefix, origin in plan:
                if origin is None or origin[0] >= len(parents):
                    continue
                slot, index = origin
                source_prefix = "head." if index is None else f"layers.{index}."
                source = _sub_state(parents[slot][net], source_prefix)
                for name, tensor in _sub_state(state, prefix).items():
                    if name in source:
                        copied = _copy_overlap(tensor.data, source[name])
                        # Buffers (batch-norm statistics) are copied but not counted as parameters.
                        if isinstance(tensor, torch.nn.Parameter):
                            per_slot[slot] += copied
                if prefix in seams and "linear.weight" in source:
                    # W·A for the near-identity A (zero bias) a fresh adapter starts as (`build._near_identity`):
                    # the parent's columns for the inputs it saw, zero for the others.
                    seen = source["linear.weight"].shape[1]
                    _sub_state(state, prefix)["linear.weight"].data[:, seen:] = 0
    inherited = sum(per_slot)
    return {"inherited": inherited, "total": total, "share": inherited / total if total else 0.0,
            "per_parent": per_slot}
