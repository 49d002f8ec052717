"""Model folders: ``config.json`` plus ``.safetensors`` weights, checked tensor by tensor on load.

A folder for the ``tiny`` config holds ``dit.safetensors`` and ``vae.safetensors``. Every problem found
(missing, unexpected, misshapen or non-float tensors; truncated files) is named in one error so a
person can fix the folder in one go. Nothing is ever downloaded.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn as nn
from safetensors import safe_open
from safetensors.torch import save_file

from .config import ConfigError, ModelConfig
from .protocols import Codec, TextEncoder

if TYPE_CHECKING:
    from .vocabulary import StyleVocabulary

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
DEFAULT_MODEL_DIR = RESOURCES / "models" / "default"


class CheckpointError(ValueError):
    """A model folder or weights file that cannot be loaded, with every reason listed."""


def read_header(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """Names, shapes and dtypes of a safetensors file without reading the data."""
    if not path.exists():
        raise CheckpointError(f"weights file not found: {path}")
    size = path.stat().st_size
    if size < 8:
        raise CheckpointError(f"{path} is truncated ({size} bytes): not a safetensors file")
    with open(path, "rb") as fh:
        n = int.from_bytes(fh.read(8), "little")
        if n <= 0 or 8 + n > size:
            raise CheckpointError(f"{path} is truncated or not a safetensors file "
                                  f"(header says {n} bytes, file has {size})")
        try:
            header = json.loads(fh.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise CheckpointError(f"{path} is not a safetensors file (unreadable header)") from None
    header.pop("__metadata__", None)
    end = max((v["data_offsets"][1] for v in header.values()), default=0)
    if 8 + n + end > size:
        raise CheckpointError(f"{path} is truncated: {size} bytes, the header needs {8 + n + end}")
    return {k: (tuple(v["shape"]), v["dtype"]) for k, v in header.items()}


_FLOAT_DTYPES = {"F32", "F16", "BF16", "F64"}


def compare_tensors(expected: dict[str, tuple[int, ...]], found: dict[str, tuple[tuple[int, ...], str]],
                    optional: tuple[str, ...] = ()) -> list[str]:
    """Human-readable problems between an expected {name: shape} and a file's {name: (shape, dtype)}."""
    problems = []
    for name, shape in expected.items():
        if name not in found:
            if not name.startswith(optional) or not optional:
                problems.append(f"missing {name} (expected shape {list(shape)})")
        elif tuple(found[name][0]) != tuple(shape):
            problems.append(f"wrong shape for {name}: expected {list(shape)}, found {list(found[name][0])}")
        elif found[name][1] not in _FLOAT_DTYPES:
            problems.append(f"wrong dtype for {name}: expected a float type, found {found[name][1]}")
    for name in sorted(set(found) - set(expected)):
        problems.append(f"unexpected {name} (shape {list(found[name][0])})")
    return problems


def expected_shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def load_weights(module: nn.Module, path: Path, optional: tuple[str, ...] = ()) -> list[str]:
    """Load a safetensors file into ``module`` after checking every tensor. Returns the optional
    tensors that were absent (left at their initial values)."""
    path = Path(path)
    found = read_header(path)
    expected = expected_shapes(module)
    problems = compare_tensors(expected, found, optional)
    if problems:
        more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
        raise CheckpointError(f"{path.name} does not match the model:\n  " + "\n  ".join(problems[:20]) + more)
    state = {}
    try:
        with safe_open(str(path), framework="pt") as f:
            for name in found:
                state[name] = f.get_tensor(name)
    except Exception as e:  # corrupt payload
        raise CheckpointError(f"{path} could not be read: {e}") from None
    check_finite(state, path.name)
    module.load_state_dict(state, strict=False)
    return [n for n in expected if n not in found]


def check_finite(state: dict[str, torch.Tensor], what: str) -> None:
    """Refuse NaN or infinite weights: they load without complaint and render a black video."""
    bad = [name for name, t in state.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        names = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise CheckpointError(f"{what}: {len(bad)} tensor{'s hold' if len(bad) > 1 else ' holds'} values that "
                              f"are not finite (NaN or infinite): {names}")


def save_weights(module: nn.Module, path: Path, metadata: dict | None = None) -> None:
    state = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    save_file(state, str(path), metadata={k: str(v) for k, v in (metadata or {}).items()})


@dataclass
class LoadedModel:
    """Everything the stylizer needs, loaded from one folder."""
    folder: Path | None
    config: ModelConfig
    dit: nn.Module
    codec: Codec
    text_encoder: TextEncoder
    card: dict
    vocabulary: StyleVocabulary | None = None  # the styles it was trained on, if the folder lists them

    @property
    def name(self) -> str:
        return self.card.get("name") or (self.folder.name if self.folder else self.config.name)

    @property
    def trained(self) -> bool:
        return bool(self.card.get("trained"))


def build_tiny_parts(config: ModelConfig):
    """The DiT and the frame autoencoder of a CPU-sized config (``tiny`` or ``guided`` codec)."""
    from .dit import CausalDiT

    if config.vae == "guided":
        from .guided_codec import GuidedAutoencoder

        return CausalDiT(config), GuidedAutoencoder(config.latent_channels, config.codec_widths,
                                                    affine=config.codec_head == "affine",
                                                    style_dim=config.codec_style_dim,
                                                    style_smoothing=config.codec_style_smoothing)
    from .vae import TinyAutoencoder

    return CausalDiT(config), TinyAutoencoder(config.latent_channels)


def _streaming_codec(config: ModelConfig, autoencoder: nn.Module):
    if config.vae == "guided":
        from .guided_codec import GuidedCodec

        return GuidedCodec(autoencoder)
    from .vae import TinyCodec

    return TinyCodec(autoencoder)


def load_model(folder: str | Path | None = None, device="cpu", dtype=torch.float32, text_encoder=None) -> LoadedModel:
    """Load a model folder (default: the embedded model in resources/)."""
    from .text import MiniLMEncoder
    from .vocabulary import StyleVocabulary, VocabularyError

    folder = Path(folder) if folder else DEFAULT_MODEL_DIR
    if not folder.is_dir():
        raise CheckpointError(f"model folder not found: {folder}")
    try:
        config = ModelConfig.load(folder / "config.json")
    except ConfigError as e:
        raise CheckpointError(f"invalid model folder {folder}: {e}") from None
    if config.vae == "wan":
        from . import wan_loader  # paper-scale components live in their own module

        return wan_loader.load_wan_folder(folder, config, device, dtype)
    dit, ae = build_tiny_parts(config)
    problems = []
    for module, fname in ((dit, "dit.safetensors"), (ae, "vae.safetensors")):
        try:
            load_weights(module, folder / fname)
        except CheckpointError as e:
            problems.append(str(e))
    if len(problems) == 1 and "\n" not in problems[0]:
        raise CheckpointError(f"invalid model folder {folder}: {problems[0]}")
    if problems:
        raise CheckpointError(f"invalid model folder {folder}:\n" + "\n".join(problems))
    card_path = folder / "model_card.json"
    card = json.loads(card_path.read_text()) if card_path.exists() else {}
    dit = dit.to(device=device, dtype=dtype).eval().requires_grad_(False)
    ae = ae.to(device=device, dtype=dtype).eval().requires_grad_(False)
    try:
        vocabulary = StyleVocabulary.load(folder)
    except VocabularyError as e:
        raise CheckpointError(f"invalid model folder {folder}: {e}") from None
    if text_encoder is None:
        text_encoder = MiniLMEncoder()
    return LoadedModel(folder, config, dit, _streaming_codec(config, ae), text_encoder, card, vocabulary)


def save_tiny_model(folder: str | Path, config: ModelConfig, dit: nn.Module, autoencoder: nn.Module,
                    card: dict | None = None) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config.save(folder / "config.json")
    save_weights(dit, folder / "dit.safetensors")
    save_weights(autoencoder, folder / "vae.safetensors")
    if card is not None:
        (folder / "model_card.json").write_text(json.dumps(card, indent=2) + "\n")
    return folder
