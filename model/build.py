"""One way to build a StreamStylizer from a request, and the device and dtype policy in one place.

The CLI, the app (live engine and offline export), the selftest, the benchmarks and the network
server all describe what they want as a ``StylizerRequest`` and call ``build_stylizer``; nothing else
decides which device is "auto", which dtype a device computes in, or how a speed preset, explicit
steps and an AdaCache choice combine.
"""
from __future__ import annotations

import dataclasses
import gc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch

from .speed import SpeedRequest

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}


# ------------------------------------------------------------------------------------ devices
def resolve_device(device: str | None) -> str:
    """'auto' -> the best device here (cuda, then mps, then cpu); an unavailable choice is a clear error."""
    device = (device or "auto").strip().lower()
    mps = getattr(torch.backends, "mps", None)
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("CUDA was chosen but no CUDA GPU is available here; choose Auto or CPU")
    if device == "mps" and (mps is None or not mps.is_available()):
        raise RuntimeError("MPS (Apple GPU) was chosen but is not available here; choose Auto or CPU")
    return device


def default_dtype(device: str | torch.device) -> torch.dtype:
    """bfloat16 on CUDA (half the memory, tensor cores), float32 everywhere else (CPUs are slow in bf16)."""
    return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32


def resolve_dtype(device: str | torch.device, name: str | None = None) -> torch.dtype:
    """An explicit dtype name (float32, bf16, ...) or the device's default."""
    if name is None:
        return default_dtype(device)
    try:
        return DTYPES[name]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; choose one of {', '.join(sorted(DTYPES))}") from None


def device_label(device: str) -> str:
    """'CPU', 'CUDA · NVIDIA H100 80GB HBM3', 'MPS (Apple GPU)'."""
    if device.startswith("cuda"):
        try:
            return f"CUDA · {torch.cuda.get_device_name(torch.device(device).index or 0)}"
        except Exception:
            return "CUDA"
    if device == "mps":
        return "MPS (Apple GPU)"
    return "CPU"


def available_devices() -> list[tuple[str, str]]:
    """(value, label) pairs for a device menu; 'auto' first."""
    out = [("auto", "Auto"), ("cpu", "CPU")]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            out.append((f"cuda:{i}", f"CUDA {i} · {torch.cuda.get_device_name(i)}"))
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append(("mps", "MPS (Apple GPU)"))
    return out


def is_out_of_memory(exc: BaseException) -> bool:
    oom_types = tuple(t for t in (getattr(torch, "OutOfMemoryError", None),
                                  getattr(torch.cuda, "OutOfMemoryError", None)) if t is not None)
    if oom_types and isinstance(exc, oom_types):
        return True
    return isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def free_memory(device: str) -> None:
    """Give memory back after a model was dropped or an allocation failed."""
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


# ------------------------------------------------------------------------------------ requests
@dataclass
class StylizerRequest:
    """What to build. ``None`` means "the model's own" for every setting."""
    folder: Path | str | None = None  # None: the embedded default model
    device: str = "auto"  # auto, cpu, cuda, cuda:N, mps
    dtype: str | None = None  # None: default_dtype(device)
    resolution: tuple[int, int] | None = None  # (height, width)
    speed: SpeedRequest = field(default_factory=SpeedRequest)  # preset, refined by explicit steps / AdaCache
    strength: float | None = None  # None: the model card's default
    seed: int = 0
    anchor_reference: bool = True
    match_prompts: bool = True
    profile: bool = False  # synchronise CUDA per stage (benchmarks)
    cpu_threads: int | None = None  # torch threads when the device is the CPU


class BuiltStylizer(NamedTuple):
    stylizer: object  # model.stylizer.StreamStylizer
    device: str
    native_resolution: tuple[int, int]  # the model config's, before any resolution override


def build_stylizer(req: StylizerRequest, progress: Callable[[int, str], None] | None = None,
                   model=None) -> BuiltStylizer:
    """Load ``req.folder`` (or use an already loaded ``model``, e.g. random weights in a benchmark) and
    wrap it in a StreamStylizer set up as requested. Errors are CheckpointError/ConfigError/ValueError/
    RuntimeError with a readable message."""
    from .checkpoint import DEFAULT_MODEL_DIR, CheckpointError, load_model
    from .config import ConfigError
    from .stylizer import StreamStylizer

    progress = progress or (lambda pct, msg: None)
    device = resolve_device(req.device)
    dtype = resolve_dtype(device, req.dtype)
    if device == "cpu" and req.cpu_threads:
        torch.set_num_threads(req.cpu_threads)
    if model is None:
        folder = Path(req.folder) if req.folder else DEFAULT_MODEL_DIR
        progress(5, f"Checking {folder}")
        if not folder.is_dir():
            raise CheckpointError(f"model folder not found: {folder}")
        progress(-1, f"Reading the weights onto {device_label(device)}")
        model = load_model(folder, device, dtype)
    native = tuple(model.config.resolution)
    if req.resolution and tuple(req.resolution) != native:
        try:
            config = model.config.replace(resolution=tuple(req.resolution))
        except ConfigError as e:
            raise CheckpointError(f"resolution {req.resolution[1]}x{req.resolution[0]} does not suit this "
                                  f"model: {e}") from None
        model = dataclasses.replace(model, config=config)
    progress(60, "Preparing the stream")
    stylizer = StreamStylizer(model, device=device, dtype=dtype, seed=req.seed, strength=req.strength,
                              anchor_reference=req.anchor_reference, match_prompts=req.match_prompts,
                              profile=req.profile)
    req.speed.apply(stylizer)
    return BuiltStylizer(stylizer, device, native)
