"""Speed presets: one word for the engine's speed/quality trade-off.

A preset sets three knobs at once: the denoising steps, the attention window (latent frames a chunk
attends to, itself included) and AdaCache. It is resolved against a model's config, so the same name
means the same trade-off for the tiny model and for a Wan-sized one:

- ``quality``: the steps and the window the model was distilled for, every block computed.
- ``balanced``: the same steps and window, with AdaCache's conservative ``slow`` preset.
- ``fast``: at most two steps (the first and the middle one of the model's list), a window of at most
  two chunks, AdaCache ``fast``.

A ``SpeedRequest`` is a preset refined by explicit settings: ``steps`` and ``adacache`` replace the
preset's own when given. That is what ``stylize``/``bench`` ``--speed``, ``--steps`` and ``--adacache``
mean, and what the window's Speed menu and its Advanced overrides mean.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .config import ModelConfig

SPEED_PRESETS = ("quality", "balanced", "fast")
# AdaCache's modes (model.adacache.MODES), repeated here as plain data so that --help needs no torch
ADACACHE_MODES = ("off", "slow", "fast")


@dataclass(frozen=True)
class SpeedSettings:
    name: str
    steps: list[int]
    window_frames: int
    adacache: str

    def describe(self) -> str:
        return (f"{self.name}: {len(self.steps)} step{'s' if len(self.steps) != 1 else ''} {self.steps}, "
                f"window {self.window_frames} latent frames, AdaCache {self.adacache}")


def speed_settings(name: str, cfg: ModelConfig) -> SpeedSettings:
    """The steps, window and AdaCache mode of preset ``name`` for a model with config ``cfg``."""
    if name not in SPEED_PRESETS:
        raise ValueError(f"unknown speed preset {name!r}; choose one of {', '.join(SPEED_PRESETS)}")
    steps = list(cfg.denoising_steps)
    window = cfg.window_frames
    if name == "fast":
        steps = steps if len(steps) <= 2 else [steps[0], steps[len(steps) // 2]]
        window = min(window, 2 * cfg.chunk_frames)
    adacache = {"quality": "off", "balanced": "slow", "fast": "fast"}[name]
    return SpeedSettings(name, steps, window, adacache)


class SpeedControls(Protocol):
    def set_speed(self, name: str) -> SpeedSettings: ...

    def set_steps(self, steps: list[int] | int | None) -> None: ...

    def set_adacache(self, mode) -> None: ...


@dataclass(frozen=True)
class SpeedRequest:
    """A speed preset, refined by an explicit step count and AdaCache mode (None: the preset's)."""

    preset: str = "quality"
    steps: int | None = None
    adacache: str | None = None

    def __post_init__(self):
        if self.preset not in SPEED_PRESETS:
            raise ValueError(f"unknown speed preset {self.preset!r}; choose one of {', '.join(SPEED_PRESETS)}")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps must be >= 1 (None: the preset's), got {self.steps}")
        if self.adacache is not None and self.adacache not in ADACACHE_MODES:
            raise ValueError(f"AdaCache mode must be one of {', '.join(ADACACHE_MODES)} (None: the preset's), "
                             f"got {self.adacache!r}")

    def apply(self, stylizer: SpeedControls) -> None:
        """The preset first, then the explicit settings (a changed window restarts the stream)."""
        stylizer.set_speed(self.preset)
        if self.steps is not None:
            stylizer.set_steps(self.steps)
        if self.adacache is not None:
            stylizer.set_adacache(self.adacache)

    def describe(self) -> str:
        extra = [f"{self.steps} steps"] if self.steps is not None else []
        extra += [f"AdaCache {self.adacache}"] if self.adacache is not None else []
        return self.preset + (f" ({', '.join(extra)})" if extra else "")
