"""Model configuration as plain data, loadable from and savable to JSON."""
from __future__ import annotations

import dataclasses
import json
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
    # streaming
    chunk_frames: int = 2  # latent frames per chunk
    window_frames: int = 6  # latent frames attended to, including the current chunk
    denoising_steps: list[int] = field(default_factory=lambda: [1000, 500])
    shift: float = 1.0
    # media
    resolution: tuple[int, int] = (192, 320)  # (height, width) of frames fed to the VAE
    vae: str = "tiny"  # "tiny" (per-frame autoencoder) or "wan" (3-D causal VAE)
    vae_stride: tuple[int, int, int] = (1, 8, 8)  # (time, height, width) compression
    text_encoder: str = "minilm"  # "minilm" (packaged sentence encoder) or "umt5"
    reference_prompt: str = "Transfer the video style to match the reference image style"

    def __post_init__(self) -> None:
        self.patch_size = tuple(self.patch_size)
        self.resolution = tuple(self.resolution)
        self.vae_stride = tuple(self.vae_stride)
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
        problems = []
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
        if self.vae not in ("tiny", "wan"):
            problems.append(f"unknown vae {self.vae!r} (expected 'tiny' or 'wan')")
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
