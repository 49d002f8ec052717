"""Resumable training state in safetensors: weights, optimizer moments, step and RNG, no pickle.

Why: CPU training runs for hours spread over sessions. A checkpoint committed to the repository must
be small (one file, a few MiB), safe to load (no pickle, so no ``torch.load``) and complete enough
that ``--resume`` continues the same run: same step, same learning-rate schedule, same data order.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

STATE_FILE = "train_state.safetensors"


def save_state(folder: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, step: int,
               rng: np.random.Generator, extra: dict | None = None) -> Path:
    """Write ``folder/train_state.safetensors`` atomically (a kill mid-write leaves the old one)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().contiguous() for k, v in model.state_dict().items()}
    st = opt.state_dict()
    for pid, s in st["state"].items():
        for k, v in s.items():
            tensors[f"opt.{pid}.{k}"] = (v if torch.is_tensor(v) else torch.tensor(v)).detach().contiguous()
    meta = {"step": str(step), "rng": json.dumps(rng.bit_generator.state),
            "param_groups": json.dumps([{k: v for k, v in g.items() if k != "params"} for g in st["param_groups"]]),
            "extra": json.dumps(extra or {})}
    tmp = folder / (STATE_FILE + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(folder / STATE_FILE)
    return folder / STATE_FILE


def load_state(folder: Path, model: torch.nn.Module, opt: torch.optim.Optimizer,
               rng: np.random.Generator) -> tuple[int, dict]:
    """Restore what ``save_state`` wrote; returns (step, extra). Shapes are checked by load_state_dict."""
    from safetensors import safe_open

    path = Path(folder) / STATE_FILE
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    tensors = load_file(str(path))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    st = opt.state_dict()
    state: dict = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, pid, name = k.split(".", 2)
            state.setdefault(int(pid), {})[name] = v
    groups = json.loads(meta["param_groups"])
    for g, saved in zip(st["param_groups"], groups):
        g.update(saved)
    opt.load_state_dict({"state": state, "param_groups": st["param_groups"]})
    rng.bit_generator.state = json.loads(meta["rng"])
    return int(meta["step"]), json.loads(meta["extra"])
