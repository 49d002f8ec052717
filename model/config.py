"""Model configuration as plain data, loadable from and savable to JSON."""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


class ConfigError(ValueError):
    """A model config that cannot describe a runnable model."""


@dataclass
class ModelConfig:
    name: str = "tiny"
    # DiT (Wan2.1 block layout)
    dim: int = 128
    num_layers: int = 4
    num_heads: int = 4
    ffn_dim: int = 512
    freq_dim: int = 256
    latent_channels: int = 8
    patch_size: tuple[int, int, int] = (1, 2, 2)
    text_dim: int = 384
    text_len: int = 1
    eps: float = 1e-6
    source_conditioning: bool = True  # add the source latent (channel concat, as a separate patch conv)
    reference_adapter: bool = True  # reference-image tokens through a light adapter, prepended
    style_modulation: bool = False  # the style (text, pooled reference) also shifts every block's modulation
    reference_spread: bool = False  # with style_modulation: the reference tokens' spread enters the style too
    # streaming
    chunk_frames: int = 2  # latent frames per chunk
    window_frames: int = 6  # latent frames attended to, including the current chunk
    denoising_steps: list[int] = field(default_factory=lambda: [1000, 500])
    shift: float = 1.0
    # media
    resolution: tuple[int, int] = (192, 320)  # (height, width) of frames fed to the VAE
    vae: str = "tiny"  # "tiny" (per-frame autoencoder), "guided" (source-guided, output at the source's size) or "wan"
    codec_widths: tuple[int, int, int, int] = (16, 32, 64, 96)  # the guided codec's channels at 1/2 .. 1/16
    codec_head: str = "rgb"  # guided codec: "rgb" paints the pixels, "affine" transforms the source's pixels
    codec_style_dim: int = 0  # guided codec: the DiT's style vector also scales and shifts the decoder (0: not)
    codec_style_smoothing: bool = False  # guided codec: the style vector also sets a blur of the output
    vae_stride: tuple[int, int, int] = (1, 8, 8)  # (time, height, width) compression
    text_encoder: str = "minilm"  # "minilm" (packaged sentence encoder) or "umt5"
    reference_prompt: str = "Transfer the video style to match the reference image style"

    def __post_init__(self) -> None:
        problems = _field_problems(self)  # types and ranges first: the checks below do arithmetic on them
        if problems:
            raise ConfigError("; ".join(problems))
        self.patch_size = tuple(self.patch_size)
        self.resolution = tuple(self.resolution)
        self.vae_stride = tuple(self.vae_stride)
        self.codec_widths = tuple(self.codec_widths)
        self.denoising_steps = list(self.denoising_steps)
        self.validate()

    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads

    def latent_grid(self, height: int | None = None, width: int | None = None) -> tuple[int, int]:
        h, w = height or self.resolution[0], width or self.resolution[1]
        return h // self.vae_stride[1], w // self.vae_stride[2]

    def tokens_per_frame(self, height: int | None = None, width: int | None = None) -> int:
        lh, lw = self.latent_grid(height, width)
        return (lh // self.patch_size[1]) * (lw // self.patch_size[2])

    def validate(self) -> None:
        problems = _field_problems(self)
        if problems:
            raise ConfigError("; ".join(problems))
        if self.dim % self.num_heads:
            problems.append(f"dim {self.dim} is not divisible by num_heads {self.num_heads}")
        elif self.head_dim % 2 or self.head_dim < 6:
            problems.append(f"head_dim {self.head_dim} must be even and >= 6 for 3-D RoPE")
        if self.chunk_frames < 1 or self.window_frames < self.chunk_frames:
            problems.append("window_frames must be >= chunk_frames >= 1")
        elif self.window_frames % self.chunk_frames:
            problems.append(
                f"window_frames {self.window_frames} must be a multiple of chunk_frames {self.chunk_frames}")
        if not self.denoising_steps or any(not 0 < t <= 1000 for t in self.denoising_steps):
            problems.append("denoising_steps must be a non-empty list of timesteps in (0, 1000]")
        if list(self.denoising_steps) != sorted(self.denoising_steps, reverse=True):
            problems.append("denoising_steps must be decreasing")
        step_h = self.vae_stride[1] * self.patch_size[1]
        step_w = self.vae_stride[2] * self.patch_size[2]
        if self.resolution[0] % step_h or self.resolution[1] % step_w:
            problems.append(f"resolution {self.resolution} must be a multiple of ({step_h}, {step_w})")
        if self.vae not in ("tiny", "guided", "wan"):
            problems.append(f"unknown vae {self.vae!r} (expected 'tiny', 'guided' or 'wan')")
        if self.codec_head not in ("rgb", "affine"):
            problems.append(f"unknown codec_head {self.codec_head!r} (expected 'rgb' or 'affine')")
        if self.codec_style_smoothing and not self.codec_style_dim:
            problems.append("codec_style_smoothing needs codec_style_dim")
        if self.reference_spread and not (self.style_modulation and self.reference_adapter):
            problems.append("reference_spread needs style_modulation and reference_adapter")
        if self.text_encoder not in ("minilm", "umt5"):
            problems.append(f"unknown text_encoder {self.text_encoder!r} (expected 'minilm' or 'umt5')")
        if problems:
            raise ConfigError("; ".join(problems))

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown config keys: {', '.join(unknown)}")
        return cls(**data)

    @classmethod
    def load(cls, path: str | Path) -> "ModelConfig":
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path} is not valid JSON: {e}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a JSON object")
        return cls.from_dict(data)

    @classmethod
    def named(cls, name: str) -> "ModelConfig":
        """One of the configs shipped in model/configs/ (e.g. 'tiny', 'wan-1.3b')."""
        path = CONFIG_DIR / f"{name}.json"
        if not path.exists():
            names = sorted(p.stem for p in CONFIG_DIR.glob("*.json"))
            raise ConfigError(f"no config named {name!r}; available: {', '.join(names)}")
        return cls.load(path)

    def replace(self, **changes) -> "ModelConfig":
        return dataclasses.replace(self, **changes)


# Allowed types and ranges of every field. The bounds are wide (a 14B-parameter Wan config fits) but
# stop a typo from asking for an absurd allocation (a resolution of 192000 pixels, a 10^9-frame window).
_INTS = {"dim": (1, 16384), "num_layers": (1, 256), "num_heads": (1, 256), "ffn_dim": (1, 131072),
         "freq_dim": (2, 4096), "latent_channels": (1, 256), "text_dim": (1, 16384), "text_len": (1, 4096),
         "chunk_frames": (1, 64), "window_frames": (1, 1024), "codec_style_dim": (0, 16384)}
_FLOATS = {"eps": (0.0, 0.1), "shift": (0.0, 100.0)}  # (excluded, included)
_BOOLS = ("source_conditioning", "reference_adapter", "style_modulation", "reference_spread",
          "codec_style_smoothing")
_STRINGS = ("name", "vae", "codec_head", "text_encoder", "reference_prompt")
# name: (length, lowest, highest, how the range is said)
_INT_LISTS = {"patch_size": (3, 1, 16, None), "vae_stride": (3, 1, 64, None), "codec_widths": (4, 1, 1024, None),
              "resolution": (2, 16, 4096, "pixels a side")}


def _show(value) -> str:
    """A value as the person wrote it in config.json, cut short."""
    if isinstance(value, bool) or value is None:
        text = json.dumps(value)
    elif isinstance(value, str):
        text = repr(value)
    else:
        try:
            text = json.dumps(list(value) if isinstance(value, tuple) else value)
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _field_problems(cfg: "ModelConfig") -> list[str]:
    """Every field of the wrong type or out of its range, named with its value and what is allowed."""
    problems = []
    for name, (lo, hi) in _INTS.items():
        v = getattr(cfg, name)
        if not _is_int(v):
            problems.append(f"{name} must be an integer, got {_show(v)}")
        elif not lo <= v <= hi:
            problems.append(f"{name} must be between {lo} and {hi}, got {v}")
    for name, (lo, hi) in _FLOATS.items():
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            problems.append(f"{name} must be a number, got {_show(v)}")
        elif not (math.isfinite(v) and lo < v <= hi):
            problems.append(f"{name} must be between {lo:g} (excluded) and {hi:g}, got {_show(v)}")
    for name in _BOOLS:
        if not isinstance(getattr(cfg, name), bool):
            problems.append(f"{name} must be true or false, got {_show(getattr(cfg, name))}")
    for name in _STRINGS:
        if not isinstance(getattr(cfg, name), str):
            problems.append(f"{name} must be a string, got {_show(getattr(cfg, name))}")
    for name, (n, lo, hi, unit) in _INT_LISTS.items():
        v = getattr(cfg, name)
        if not isinstance(v, (list, tuple)) or len(v) != n or not all(_is_int(x) for x in v):
            problems.append(f"{name} must be a list of {n} integers, got {_show(v)}")
        elif not all(lo <= x <= hi for x in v):
            allowed = f"be between {lo} and {hi} {unit}" if unit else f"hold integers between {lo} and {hi}"
            problems.append(f"{name} must {allowed}, got {_show(v)}")
    steps = cfg.denoising_steps
    if not isinstance(steps, (list, tuple)) or not all(_is_int(t) for t in steps):
        problems.append(f"denoising_steps must be a list of integer timesteps, got {_show(steps)}")
    elif not 1 <= len(steps) <= 1000:
        problems.append(f"denoising_steps must hold between 1 and 1000 timesteps, got {len(steps)}")
    return problems
