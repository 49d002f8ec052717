"""Shared training plumbing: distributed setup (torchrun/DDP), logging, model-folder checkpoints."""
from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import torch
import torch.distributed as dist


class Dist:
    """Rank/world info; initialised from torchrun's environment when present (DDP), else single process."""

    def __init__(self):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if self.world > 1 and not dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            dist.init_process_group(backend)
        if torch.cuda.is_available():
            torch.cuda.set_device(self.local_rank)
            self.device = torch.device("cuda", self.local_rank)
        else:
            self.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        if self.world == 1:
            return module
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [self.local_rank] if self.device.type == "cuda" else None
        return DDP(module, device_ids=ids, find_unused_parameters=True)

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def close(self) -> None:
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    return module.module if hasattr(module, "module") else module


class Log:
    """Prints a compact line every ``every`` steps and keeps the history for the model card."""

    def __init__(self, name: str, total: int, every: int = 25, enabled: bool = True):
        self.name, self.total, self.every, self.enabled = name, total, every, enabled
        self.t0 = time.perf_counter()
        self.history: list[dict] = []
        self._acc: dict[str, float] = {}
        self._n = 0

    def step(self, i: int, **values: float) -> None:
        for k, v in values.items():
            self._acc[k] = self._acc.get(k, 0.0) + float(v)
        self._n += 1
        if (i + 1) % self.every == 0 or i + 1 == self.total:
            avg = {k: v / self._n for k, v in self._acc.items()}
            self.history.append({"step": i + 1, **avg})
            if self.enabled:
                el = time.perf_counter() - self.t0
                vals = " ".join(f"{k} {v:.4f}" for k, v in avg.items())
                print(f"[{self.name}] {i + 1}/{self.total} {vals} ({el:.0f} s, {el / (i + 1):.2f} s/step)", flush=True)
            self._acc, self._n = {}, 0

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.t0


def fail(message: str) -> NoReturn:
    """Stop a training command with a one-line error (exit status 1) instead of a traceback."""
    raise SystemExit(f"error: {message}")


def require_file(path, what: str, made_by: str) -> Path:
    """``path`` must be a file; otherwise say which ``main.py train`` stage makes it."""
    path = Path(path)
    if not path.is_file():
        fail(f"{what} not found: {path} (made by `main.py train {made_by}`)")
    return path


def require_model_folder(path, what: str, made_by: str) -> Path:
    """``path`` must be a tiny model folder (config.json, dit.safetensors, vae.safetensors)."""
    path = Path(path)
    if not path.is_dir():
        fail(f"{what} folder not found: {path} (made by `main.py train {made_by}`)")
    missing = [n for n in ("config.json", "dit.safetensors", "vae.safetensors") if not (path / n).is_file()]
    if missing:
        fail(f"{what} folder {path} has no {', '.join(missing)} (made by `main.py train {made_by}`)")
    return path


def write_card(folder: Path, updates: dict) -> None:
    path = Path(folder) / "model_card.json"
    card = json.loads(path.read_text()) if path.exists() else {}
    card.update(updates)
    path.write_text(json.dumps(card, indent=2) + "\n")


@contextmanager
def threads(n: int | None):
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
