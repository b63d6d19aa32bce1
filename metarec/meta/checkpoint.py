"""Checkpoints: safetensors for tensors, JSON for config and counters, written atomically.

A checkpoint folder holds `model.safetensors` (weights + learned rates), `config.json`, and for
resumable training `trainer.safetensors` (optimizer moments, torch RNG) + `trainer.json`. Nothing is
ever unpickled.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load, save

from metarec.core.config import atomic_write_bytes, save_json
from metarec.core.errors import CheckpointError


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Write named tensors to a safetensors file atomically."""
    atomic_write_bytes(path, save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}))


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file; a missing or damaged file is a CheckpointError naming it."""
    if not path.is_file():
        raise CheckpointError(f"{path}: missing")
    try:
        return load(path.read_bytes())
    except Exception as e:  # safetensors raises its own error types for corrupt headers
        raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from e


def load_json(path: Path) -> dict:
    """Read a JSON file; a missing or damaged file is a CheckpointError naming it."""
    if not path.is_file():
        raise CheckpointError(f"{path}: missing")
    try:
        obj = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from e
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a JSON object, found {type(obj).__name__}")
    return obj


def require(entries: dict, path: Path, *names: str) -> dict:
    """`entries` (a checkpoint file's tensors or JSON object) if it holds every one of `names`; else
    a CheckpointError naming the file and what is missing (an edited file, or another version's)."""
    missing = [n for n in names if n not in entries]
    if missing:
        raise CheckpointError(f"{path}: no {', '.join(repr(n) for n in missing)} in it (edited, or written "
                              "by another version)")
    return entries


def optimizer_state(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Flatten an optimizer's state into (tensors, json-able scalars)."""
    sd = opt.state_dict()
    tensors, meta = {}, {"param_groups": sd["param_groups"], "state": {}}
    for pid, st in sd["state"].items():
        meta["state"][str(pid)] = {}
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"opt.{pid}.{k}"] = v
            else:
                meta["state"][str(pid)][k] = v
    return tensors, meta


def restore_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Load an optimizer's state saved by `optimizer_state` into `opt`."""
    state = {}
    for pid, scalars in meta["state"].items():
        st = dict(scalars)
        prefix = f"opt.{pid}."
        for k, v in tensors.items():
            if k.startswith(prefix):
                st[k[len(prefix):]] = v
        state[int(pid)] = st
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


__all__ = ["save_tensors", "load_tensors", "load_json", "save_json", "optimizer_state", "restore_optimizer"]
