"""One-time conversion of the public ``.pth``/``.pt`` checkpoints to ``.safetensors``.

This is the only place where ``torch.load`` is used, and always with ``weights_only=True`` (plain
tensors and containers only; a pickle that names any other object is refused) and, where the file
format allows it, ``mmap=True`` so that neither checking nor converting a multi-gigabyte file reads it
all into memory. The safetensors file is written tensor by tensor for the same reason, to a temporary
name that is renamed only once the file is complete.

Training checkpoints hold the weights one level down (Self-Forcing's ``.pt``: ``generator`` /
``generator_ema``, with a ``model.`` prefix on every name); ``select_state_dict`` picks that dict and
strips the prefix.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from .checkpoint import CheckpointError

_DTYPES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL",
}
for _name, _code in (("float8_e4m3fn", "F8_E4M3"), ("float8_e5m2", "F8_E5M2")):
    if hasattr(torch, _name):
        _DTYPES[getattr(torch, _name)] = _code

# nested dicts that hold the weights in training checkpoints, most preferred first
STATE_KEYS = ("generator_ema", "generator", "state_dict", "model", "module", "ema")


def dtype_code(dtype: torch.dtype) -> str:
    if dtype not in _DTYPES:
        raise CheckpointError(f"tensors of type {dtype} cannot be stored in safetensors")
    return _DTYPES[dtype]


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def load_pth(path: str | Path, map_location="cpu"):
    """``torch.load`` with ``weights_only=True`` (and mmap when possible); one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty")
    try:
        return torch.load(str(path), map_location=map_location, weights_only=True, mmap=True)
    except RuntimeError as e:
        if "mmap can only be used" not in str(e):
            return _load_error(path, e)
    except Exception as e:  # noqa: BLE001 - every failure becomes one readable line
        return _load_error(path, e)
    try:  # legacy (non-zip) format: cannot be memory-mapped
        return torch.load(str(path), map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001
        return _load_error(path, e)


def _load_error(path: Path, e: Exception):
    msg = str(e)
    if "Weights only load failed" in msg or "weights_only" in msg:
        detail = next((ln.strip() for ln in msg.splitlines() if "GLOBAL" in ln or "global" in ln), "")
        raise CheckpointError(f"{path} holds objects other than tensors and was refused by weights-only loading"
                              + (f" ({detail})" if detail else "")) from None
    if "zip archive" in msg or "central directory" in msg or isinstance(e, (EOFError, KeyError)) \
            or "pickle" in msg.lower() or "load key" in msg:
        raise CheckpointError(f"{path} is truncated or not a PyTorch checkpoint ({_first_line(e)})") from None
    raise CheckpointError(f"{path} could not be read: {_first_line(e)}") from None


def select_state_dict(obj, path: Path | str = "checkpoint", key: str | None = None,
                      strip_prefix: str | None = None) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The flat {name: tensor} dict inside a loaded checkpoint, plus notes on what was picked."""
    notes = []
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} does not hold a dict of tensors (found {type(obj).__name__})")
    if key is not None:
        if key not in obj:
            raise CheckpointError(f"{path} has no entry {key!r}; entries: {', '.join(map(str, list(obj)[:10]))}")
        obj = obj[key]
        notes.append(f"took the weights under {key!r}")
    elif obj and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        nested = [k for k in STATE_KEYS if isinstance(obj.get(k), dict)]
        if not nested:
            raise CheckpointError(f"{path} holds no tensors at the top level and none of the known entries "
                                  f"({', '.join(STATE_KEYS)}); entries: {', '.join(map(str, list(obj)[:10]))}")
        obj = obj[nested[0]]
        notes.append(f"took the weights under {nested[0]!r}" + (f" (also present: {', '.join(nested[1:])})"
                                                                 if nested[1:] else ""))
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: the selected entry is not a dict of tensors")
    bad = [f"{k} ({type(v).__name__})" for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path} holds non-tensor entries: {', '.join(bad[:5])}"
                              + (f" and {len(bad) - 5} more" if len(bad) > 5 else ""))
    state = {str(k): v for k, v in obj.items()}
    if strip_prefix is None:  # auto: a prefix every name shares, from wrappers such as model./module.
        for p in ("module.", "model.", "_orig_mod."):
            if state and all(k.startswith(p) for k in state):
                strip_prefix = p
                break
    if strip_prefix:
        if not all(k.startswith(strip_prefix) for k in state):
            raise CheckpointError(f"{path}: not every tensor name starts with {strip_prefix!r}")
        state = {k[len(strip_prefix):]: v for k, v in state.items()}
        notes.append(f"stripped the name prefix {strip_prefix!r}")
    return state, notes


def pth_header(path: str | Path, key: str | None = None) -> dict[str, tuple[tuple[int, ...], str]]:
    """Names, shapes and dtypes of a ``.pth`` file's tensors without reading their data."""
    state, _ = select_state_dict(load_pth(path, map_location="meta"), path, key)
    return {k: (tuple(v.shape), _DTYPES.get(v.dtype, str(v.dtype))) for k, v in state.items()}


def write_safetensors(tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict | None = None) -> int:
    """Write a safetensors file tensor by tensor (never holding all the bytes at once). Returns its size."""
    path = Path(path)
    header: dict = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    order = sorted(tensors)
    for name in order:
        t = tensors[name]
        n = t.numel() * t.element_size()
        header[name] = {"dtype": dtype_code(t.dtype), "shape": list(t.shape), "data_offsets": [offset, offset + n]}
        offset += n
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # keep the data 8-byte aligned
    tmp = path.with_name(path.name + ".partial")
    try:
        with open(tmp, "wb") as fh:
            fh.write(len(blob).to_bytes(8, "little"))
            fh.write(blob)
            for name in order:
                t = tensors[name].detach()
                if t.numel():
                    data = t.contiguous().cpu().reshape(-1).view(torch.uint8).numpy()
                    fh.write(memoryview(data))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return 8 + len(blob) + offset


def convert(src: str | Path, dst: str | Path, key: str | None = None, strip_prefix: str | None = None,
            dtype: torch.dtype | None = None) -> dict:
    """Convert ``src`` (.pth/.pt) to ``dst`` (.safetensors). Returns a summary for the CLI."""
    src, dst = Path(src), Path(dst)
    if src.suffix.lower() not in (".pth", ".pt", ".bin", ".ckpt"):
        raise CheckpointError(f"{src} is not a .pth/.pt checkpoint")
    if dst.suffix.lower() != ".safetensors":
        raise CheckpointError(f"the destination must end in .safetensors, got {dst.name}")
    if src.resolve() == dst.resolve():
        raise CheckpointError("source and destination are the same file")
    state, notes = select_state_dict(load_pth(src), src, key, strip_prefix)
    if not state:
        raise CheckpointError(f"{src} holds no tensors")
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    # tensors that share storage (tied weights) are written as separate copies
    dst.parent.mkdir(parents=True, exist_ok=True)
    size = write_safetensors(state, dst, {"format": "pt", "converted_from": src.name})
    dtypes: dict[str, int] = {}
    for v in state.values():
        dtypes[dtype_code(v.dtype)] = dtypes.get(dtype_code(v.dtype), 0) + 1
    return {"source": str(src), "destination": str(dst), "tensors": len(state),
            "parameters": sum(v.numel() for v in state.values()), "bytes": size, "dtypes": dtypes, "notes": notes}
