"""Optimizer state carried from a parent to a child (Ray Tune's PBT exploit copies it with the weights):
moment estimates are part of what a pair has learnt, and a fresh Adam restarts its bias correction."""

from __future__ import annotations

import copy

import torch


def carry_optimizer_state(optimizer: torch.optim.Optimizer, state: dict | None) -> bool:
    """Load `state` (a parent optimizer's `state_dict()`, of the same optimizer gene name: the caller
    checks) into `optimizer` when every per-parameter tensor has the shape of the parameter it belongs to; the learning rates and
    other settings of `optimizer` are kept (they are the child's genes). Returns whether it was loaded."""
    if not state or len(state.get("param_groups", ())) != len(optimizer.param_groups):
        return False
    params = [p for group in optimizer.param_groups for p in group["params"]]
    ids = [i for group in state["param_groups"] for i in group["params"]]
    if len(ids) != len(params):
        return False
    kept = [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]
    for param, i in zip(params, ids):
        for value in state["state"].get(i, {}).values():
            if torch.is_tensor(value) and value.dim() and value.shape != param.shape:
                return False
    # A copy: a state read from Ray's object store is a view on shared memory that others read too, and
    # torch's load keeps CPU tensors as they are, so the child's steps would write into the parent's.
    optimizer.load_state_dict(copy.deepcopy(state))
    for group, settings in zip(optimizer.param_groups, kept):
        group.update(settings)
    return True
