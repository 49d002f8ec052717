"""The Wan2.1 3-D causal video VAE, streamable chunk by chunk.

Architecture and parameter names follow the public ``Wan2.1_VAE.pth`` (16 latent channels, 4x time and
8x space compression; ``encoder.*``, ``conv1``, ``conv2``, ``decoder.*``), so those weights load unchanged.

Every temporal convolution is causal: frame t only sees frames <= t. A stream therefore starts with one
frame that is compressed on its own and continues in groups of four, so ``1 + 4k`` frames map to
``1 + k`` latent frames, and decoding maps them back. What a convolution needs from earlier frames (its
last two input frames; the last frame before a temporal downsample) is kept in a ``state`` dict between
calls, which makes encoding or decoding a stream chunk by chunk give the same result as one pass over
the whole clip (up to float rounding). ``state=None`` means "this call is the whole stream".

The reference implementation runs the first frame through the temporal resamplers unchanged: the
temporal downsample emits frame 0 as is and then convolves windows (0,1,2), (2,3,4), ...; the temporal
upsample emits latent 0 as one frame and then doubles the remaining frames with a causal convolution
that does not see latent 0. Both rules are implemented here in their one-pass form and carried over
chunk boundaries by the state.

``WanCodec`` wraps the VAE in the engine's codec interface (see ``model/vae.py``); its first chunk needs
``4c - 3`` video frames for ``c`` latent frames, every later chunk ``4c``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

# Per-channel latent statistics of Wan2.1's VAE; latents are used as (z - mean) / std.
WAN_LATENT_MEAN = (-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
                   0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921)
WAN_LATENT_STD = (2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
                  3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160)


@dataclass(frozen=True)
class WanVAEConfig:
    """Shape of the VAE. The defaults are the published Wan2.1 VAE; smaller ones are for tests."""
    dim: int = 96
    z_dim: int = 16
    dim_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    temporal_downsample: tuple[bool, ...] = (False, True, True)

    def __post_init__(self):
        object.__setattr__(self, "dim_mult", tuple(int(m) for m in self.dim_mult))
        object.__setattr__(self, "temporal_downsample", tuple(bool(t) for t in self.temporal_downsample))
        if len(self.temporal_downsample) != len(self.dim_mult) - 1:
            raise ValueError("temporal_downsample needs one entry per downsampling stage (len(dim_mult) - 1)")

    @property
    def temporal_stride(self) -> int:
        return 2 ** sum(self.temporal_downsample)

    @property
    def spatial_stride(self) -> int:
        return 2 ** (len(self.dim_mult) - 1)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> "WanVAEConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown VAE config keys: {', '.join(unknown)}")
        return cls(**data)


# --------------------------------------------------------------------------- layers
class CausalConv3d(nn.Conv3d):
    """3-D convolution, zero-padded in space and causally in time (all temporal padding in front).

    With a ``state`` dict the last input frames it needs are remembered and used instead of zeros at
    the next call.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        pt, ph, pw = (padding,) * 3 if isinstance(padding, int) else tuple(padding)
        super().__init__(in_channels, out_channels, kernel_size, stride, padding=(0, ph, pw))
        self.time_pad = 2 * pt

    def forward(self, x: torch.Tensor, state: dict | None = None) -> torch.Tensor:
        tp = self.time_pad
        if tp:
            prev = state.get(self) if state is not None else None
            if prev is not None:
                x = torch.cat([prev, x], dim=2)
            missing = tp - (prev.shape[2] if prev is not None else 0)
            if state is not None:
                state[self] = x[:, :, -tp:].clone()
            if missing > 0:
                x = torch.cat([x.new_zeros(*x.shape[:2], missing, *x.shape[3:]), x], dim=2)
        return super().forward(x)


class RMSNorm(nn.Module):
    """L2-normalise over channels, times sqrt(channels) and a learned gain (``gamma``)."""

    def __init__(self, dim: int, images: bool = True):
        super().__init__()
        self.scale = dim ** 0.5
        self.gamma = nn.Parameter(torch.ones(dim, *((1, 1) if images else (1, 1, 1))))

    def forward(self, x):
        return F.normalize(x, dim=1) * self.scale * self.gamma


class ResidualBlock(nn.Module):
    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.residual = nn.Sequential(
            RMSNorm(in_dim, images=False), nn.SiLU(), CausalConv3d(in_dim, out_dim, 3, padding=1),
            RMSNorm(out_dim, images=False), nn.SiLU(), nn.Identity(),  # index 5: dropout (0) in the original
            CausalConv3d(out_dim, out_dim, 3, padding=1))
        self.shortcut = CausalConv3d(in_dim, out_dim, 1) if in_dim != out_dim else nn.Identity()

    def forward(self, x, state=None):
        h = self.shortcut(x)
        for layer in self.residual:
            x = layer(x, state) if isinstance(layer, CausalConv3d) else layer(x)
        return x + h


def _per_frame(fn, x):
    """Apply a 2-D module to every frame of [B, C, T, H, W]."""
    b, _, t = x.shape[:3]
    y = fn(x.transpose(1, 2).flatten(0, 1))
    return y.view(b, t, *y.shape[1:]).transpose(1, 2)


class AttentionBlock(nn.Module):
    """Single-head spatial self-attention within each frame."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = RMSNorm(dim, images=True)
        self.to_qkv = nn.Conv2d(dim, dim * 3, 1)
        self.proj = nn.Conv2d(dim, dim, 1)
        nn.init.zeros_(self.proj.weight)

    def _attend(self, x):
        n, c, h, w = x.shape
        q, k, v = self.to_qkv(self.norm(x)).view(n, 1, c * 3, h * w).transpose(2, 3).chunk(3, dim=-1)
        y = F.scaled_dot_product_attention(q, k, v)  # [n, 1, hw, c]
        return self.proj(y.squeeze(1).transpose(1, 2).reshape(n, c, h, w))

    def forward(self, x, state=None):
        return x + _per_frame(self._attend, x)


class _NearestUpsample(nn.Module):
    def forward(self, x):
        return F.interpolate(x.float(), scale_factor=2.0, mode="nearest-exact").to(x.dtype)


class Resample(nn.Module):
    """2x spatial resampling, optionally with 2x temporal resampling (``*3d`` modes)."""

    def __init__(self, dim: int, mode: str):
        super().__init__()
        if mode not in ("upsample2d", "upsample3d", "downsample2d", "downsample3d"):
            raise ValueError(f"unknown resample mode {mode}")
        self.mode = mode
        if mode.startswith("upsample"):
            self.resample = nn.Sequential(_NearestUpsample(), nn.Conv2d(dim, dim // 2, 3, padding=1))
        else:
            self.resample = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(dim, dim, 3, stride=2))
        if mode == "upsample3d":
            self.time_conv = CausalConv3d(dim, dim * 2, (3, 1, 1), padding=(1, 0, 0))
        elif mode == "downsample3d":
            self.time_conv = CausalConv3d(dim, dim, (3, 1, 1), stride=(2, 1, 1))

    def forward(self, x, state=None):
        if self.mode == "upsample3d":
            x = self._time_upsample(x, state)
        x = _per_frame(self.resample, x)
        if self.mode == "downsample3d":
            x = self._time_downsample(x, state)
        return x

    def _time_upsample(self, x, state):
        started = state is not None and state.get(self) is not None
        if state is not None:
            state[self] = True
        parts = [] if started else [x[:, :, :1]]  # the stream's first frame is not doubled
        rest = x if started else x[:, :, 1:]
        if rest.shape[2]:
            y = self.time_conv(rest, state)
            b, c2, t, h, w = y.shape
            parts.append(y.view(b, 2, c2 // 2, t, h, w).permute(0, 2, 3, 1, 4, 5).reshape(b, c2 // 2, 2 * t, h, w))
        return torch.cat(parts, dim=2)

    def _time_downsample(self, x, state):
        prev = state.get(self) if state is not None else None
        seq = x if prev is None else torch.cat([prev, x], dim=2)
        parts = [x[:, :, :1]] if prev is None else []  # the stream's first frame passes through
        if state is not None and seq.shape[2]:
            state[self] = seq[:, :, -1:].clone()
        if seq.shape[2] >= 3:
            parts.append(self.time_conv(seq))
        return torch.cat(parts, dim=2) if parts else x[:, :, :0]


class Encoder3d(nn.Module):
    def __init__(self, cfg: WanVAEConfig):
        super().__init__()
        dims = [cfg.dim * m for m in (1, *cfg.dim_mult)]
        self.conv1 = CausalConv3d(3, dims[0], 3, padding=1)
        layers = []
        for i, (cin, cout) in enumerate(zip(dims[:-1], dims[1:])):
            for _ in range(cfg.num_res_blocks):
                layers.append(ResidualBlock(cin, cout))
                cin = cout
            if i != len(cfg.dim_mult) - 1:
                layers.append(Resample(cout, "downsample3d" if cfg.temporal_downsample[i] else "downsample2d"))
        self.downsamples = nn.Sequential(*layers)
        self.middle = nn.Sequential(ResidualBlock(dims[-1], dims[-1]), AttentionBlock(dims[-1]),
                                    ResidualBlock(dims[-1], dims[-1]))
        self.head = nn.Sequential(RMSNorm(dims[-1], images=False), nn.SiLU(),
                                  CausalConv3d(dims[-1], cfg.z_dim * 2, 3, padding=1))

    def forward(self, x, state=None):
        x = self.conv1(x, state)
        for layer in (*self.downsamples, *self.middle):
            x = layer(x, state)
        for layer in self.head:
            x = layer(x, state) if isinstance(layer, CausalConv3d) else layer(x)
        return x


class Decoder3d(nn.Module):
    def __init__(self, cfg: WanVAEConfig):
        super().__init__()
        mult = cfg.dim_mult
        dims = [cfg.dim * m for m in (mult[-1], *mult[::-1])]
        temporal_upsample = cfg.temporal_downsample[::-1]
        self.conv1 = CausalConv3d(cfg.z_dim, dims[0], 3, padding=1)
        self.middle = nn.Sequential(ResidualBlock(dims[0], dims[0]), AttentionBlock(dims[0]),
                                    ResidualBlock(dims[0], dims[0]))
        layers = []
        for i, (cin, cout) in enumerate(zip(dims[:-1], dims[1:])):
            if i > 0:
                cin //= 2  # the previous upsample halved the channels
            for _ in range(cfg.num_res_blocks + 1):
                layers.append(ResidualBlock(cin, cout))
                cin = cout
            if i != len(mult) - 1:
                layers.append(Resample(cout, "upsample3d" if temporal_upsample[i] else "upsample2d"))
        self.upsamples = nn.Sequential(*layers)
        self.head = nn.Sequential(RMSNorm(dims[-1], images=False), nn.SiLU(),
                                  CausalConv3d(dims[-1], 3, 3, padding=1))

    def forward(self, x, state=None):
        x = self.conv1(x, state)
        for layer in (*self.middle, *self.upsamples):
            x = layer(x, state)
        for layer in self.head:
            x = layer(x, state) if isinstance(layer, CausalConv3d) else layer(x)
        return x


class WanVAE(nn.Module):
    """Video [B, 3, T, H, W] in [-1, 1] <-> normalised latents [B, z_dim, 1 + (T-1)/4, H/8, W/8]."""

    def __init__(self, cfg: WanVAEConfig | None = None, latent_mean=WAN_LATENT_MEAN, latent_std=WAN_LATENT_STD):
        super().__init__()
        self.cfg = cfg = cfg or WanVAEConfig()
        self.encoder = Encoder3d(cfg)
        self.conv1 = CausalConv3d(cfg.z_dim * 2, cfg.z_dim * 2, 1)
        self.conv2 = CausalConv3d(cfg.z_dim, cfg.z_dim, 1)
        self.decoder = Decoder3d(cfg)
        if len(latent_mean) != cfg.z_dim or len(latent_std) != cfg.z_dim:
            if (tuple(latent_mean), tuple(latent_std)) != (WAN_LATENT_MEAN, WAN_LATENT_STD):
                raise ValueError(f"latent statistics need {cfg.z_dim} channels")
            latent_mean, latent_std = (0.0,) * cfg.z_dim, (1.0,) * cfg.z_dim  # reduced test configs
        # plain constants, not buffers: the state dict stays exactly the published one
        self.latent_mean, self.latent_std = tuple(latent_mean), tuple(latent_std)
        self._stats: dict = {}

    def _stat(self, like: torch.Tensor):
        key = (like.device, like.dtype)
        if key not in self._stats:
            shape = (1, self.cfg.z_dim, 1, 1, 1)
            mean = torch.tensor(self.latent_mean, dtype=torch.float32).view(shape).to(like.device, like.dtype)
            std = torch.tensor(self.latent_std, dtype=torch.float32).view(shape).to(like.device, like.dtype)
            self._stats[key] = (mean, std)
        return self._stats[key]

    def encode(self, video: torch.Tensor, state: dict | None = None) -> torch.Tensor:
        """Normalised latent means. ``state`` carries the causal caches between chunks of one stream."""
        h = self.conv1(self.encoder(video, state))
        mu = h[:, : self.cfg.z_dim]
        mean, std = self._stat(mu)
        return (mu - mean) / std

    def decode(self, z: torch.Tensor, state: dict | None = None) -> torch.Tensor:
        mean, std = self._stat(z)
        x = self.conv2(z * std + mean)
        return self.decoder(x, state).clamp(-1, 1)

    def frames_to_latents(self, frames: int) -> int:
        s = self.cfg.temporal_stride
        if frames < 1 or (frames - 1) % s:
            raise ValueError(f"a clip must hold 1 + {s}k frames, got {frames}")
        return 1 + (frames - 1) // s


class WanCodec:
    """Streaming codec over ``WanVAE`` with the engine's codec interface (frames-first layout).

    Encoder and decoder keep their causal caches between calls until ``reset()``; the first chunk of a
    stream holds ``1 + 4(c-1)`` frames for ``c`` latent frames, every later chunk ``4c``.
    """

    def __init__(self, vae: WanVAE):
        self.vae = vae
        self.temporal_stride = vae.cfg.temporal_stride
        self.reset()

    def reset(self) -> None:
        self._enc_state: dict = {}
        self._dec_state: dict = {}
        self._encoded_frames = 0

    @property
    def started(self) -> bool:
        return self._encoded_frames > 0

    def frames_needed(self, latent_frames: int) -> int:
        s = self.temporal_stride
        return s * latent_frames - (0 if self.started else s - 1)

    def _param(self):
        return next(self.vae.parameters())

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """[B, F, 3, H, W] in [-1, 1] -> [B, F', C, h, w], continuing the stream."""
        f, s = frames.shape[1], self.temporal_stride
        if (f - (0 if self.started else 1)) % s or f < 1:
            first = "the first chunk of a stream needs 1 + {s}k frames" if not self.started else \
                "after the first chunk every chunk needs a multiple of {s} frames"
            raise ValueError(first.format(s=s) + f", got {f}")
        p = self._param()
        z = self.vae.encode(frames.to(p.device, p.dtype).transpose(1, 2), self._enc_state)
        self._encoded_frames += f
        return z.transpose(1, 2)

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] -> [B, C, h, w]: a one-frame clip, independent of the stream."""
        p = self._param()
        return self.vae.encode(image.to(p.device, p.dtype)[:, :, None])[:, :, 0]

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """[B, F', C, h, w] -> [B, F, 3, H, W], continuing the stream."""
        p = self._param()
        x = self.vae.decode(latents.to(p.device, p.dtype).transpose(1, 2), self._dec_state)
        return x.transpose(1, 2)
