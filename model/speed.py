"""Speed presets: one word for the engine's speed/quality trade-off.

A preset sets three knobs at once: the denoising steps, the attention window (latent frames a chunk
attends to, itself included) and AdaCache. It is resolved against a model's config, so the same name
means the same trade-off for the tiny model and for a Wan-sized one:

- ``quality``: the steps and the window the model was distilled for, every block computed.
- ``balanced``: the same steps and window, with AdaCache's conservative ``slow`` preset.
- ``fast``: at most two steps (the first and the middle one of the model's list), a window of at most
  two chunks, AdaCache ``fast``.
"""
from __future__ import annotations

from dataclasses import dataclass

from .config import ModelConfig

SPEED_PRESETS = ("quality", "balanced", "fast")


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
