"""The contracts between the engine's parts and between the engine and the app, named.

``Codec`` is what the stylizer needs of a video autoencoder (``vae.TinyCodec``, ``wan_vae.WanCodec``),
``TextEncoder`` what it needs of a text encoder (``text.MiniLMEncoder``, ``umt5.UMT5TextEncoder``),
and ``Stylizer`` the surface of ``stylizer.StreamStylizer`` that the app (live engine, offline render,
window) uses. A stand-in that satisfies them (tests/helpers.py has one) can run the window without
a model. These are typing Protocols: nothing inherits from them and nothing checks them at run time.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np
    import torch

    from .config import ModelConfig
    from .speed import SpeedSettings
    from .style import StyleSpec
    from .vocabulary import PromptMatch


class Codec(Protocol):
    """Streaming video autoencoder, frames-first layout, values in [-1, 1]."""

    temporal_stride: int

    def frames_needed(self, latent_frames: int) -> int:
        """Video frames the next chunk of ``latent_frames`` latent frames needs (a causal codec's first
        chunk is shorter)."""

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """[B, F, 3, H, W] -> [B, F', C, h, w], continuing the stream."""

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] -> [B, C, h, w], independent of the stream."""

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """[B, F', C, h, w] -> [B, F, 3, H, W], continuing the stream."""

    def reset(self) -> None:
        """Start a new stream (forget any causal history)."""


class TextEncoder(Protocol):
    def encode(self, prompt: str) -> torch.Tensor:
        """Text context [1, L, D] for one prompt."""


class StyleTarget(Protocol):
    """What ``StyleSpec.apply`` needs."""

    def set_text(self, prompt: str) -> None: ...

    def set_reference(self, image: np.ndarray | str | Path, prompt: str | None = None) -> None: ...


class StageTimings(Protocol):
    def per_frame(self) -> dict:
        """encode_ms, dit_ms, cache_write_ms, decode_ms (per frame), frames, chunks."""


class CacheView(Protocol):
    """What a style switch report reads of the rolling KV cache."""

    cross_ready: bool
    condition_version: int  # counts completed conditionings (a cheap "did the style change")
    ref_len: int  # anchored reference tokens

    def frames_in_window(self) -> list[int]: ...


class ModelView(Protocol):
    """What the app reads of a loaded model (``checkpoint.LoadedModel``)."""

    folder: Path | None
    config: ModelConfig

    @property
    def name(self) -> str: ...

    @property
    def trained(self) -> bool: ...


class Stylizer(StyleTarget, Protocol):
    """The stream the app drives: styles and settings change between chunks, frames go in and out."""

    height: int
    width: int
    guided: bool  # renders at each source's own size (a source-guided codec), not at height x width
    strength: float
    style: StyleSpec | None
    prompt_match: PromptMatch | None  # the trained style a free prompt was matched to (None: a reference)
    speed: str | None
    times: StageTimings
    model: ModelView
    cache: CacheView

    @property
    def chunk_size(self) -> int: ...

    @property
    def window_frames(self) -> int: ...

    def push(self, frames) -> list[np.ndarray]: ...

    def stream(self, frames) -> Iterator[np.ndarray]: ...  # push, each frame as soon as it is ready

    def as_output(self, frame: np.ndarray) -> np.ndarray: ...  # the source as the output shows it

    def flush(self) -> list[np.ndarray]: ...

    def reset(self) -> None: ...

    def set_strength(self, strength: float) -> None: ...

    def set_steps(self, steps: list[int] | int | None) -> None: ...

    def set_adacache(self, mode) -> None: ...

    def set_speed(self, name: str) -> SpeedSettings: ...
