"""Frame codecs: map video frames to the DiT's latent space and back, chunk by chunk.

The ``tiny`` codec is a small per-frame convolutional autoencoder (8x spatial compression) cheap
enough for live CPU use; being per-frame it is trivially streamable. Latents are normalised with
per-channel mean/std stored beside the weights, as Wan does for its VAE.
"""
from __future__ import annotations

import torch
import torch.nn as nn


def _conv(cin, cout, k=3, s=1):
    return nn.Conv2d(cin, cout, k, s, padding=(k - 1) // 2 if s == 1 else 1)


class TinyAutoencoder(nn.Module):
    """Per-frame autoencoder: [N, 3, H, W] in [-1, 1] <-> [N, C, H/8, W/8] normalised latents."""

    def __init__(self, latent_channels: int = 8, widths: tuple[int, int, int] = (32, 64, 96)):
        super().__init__()
        a, b, c = widths
        act = nn.SiLU
        self.encoder = nn.Sequential(
            nn.PixelUnshuffle(2), _conv(12, a), act(),
            nn.Conv2d(a, b, 4, 2, 1), act(), _conv(b, b), act(),
            nn.Conv2d(b, c, 4, 2, 1), act(), _conv(c, c), act(),
            _conv(c, latent_channels),
        )
        self.decoder = nn.Sequential(
            _conv(latent_channels, c), act(), _conv(c, c), act(),
            nn.Upsample(scale_factor=2, mode="nearest"), _conv(c, b), act(), _conv(b, b), act(),
            nn.Upsample(scale_factor=2, mode="nearest"), _conv(b, a), act(), _conv(a, a), act(),
            _conv(a, 12), nn.PixelShuffle(2),
        )
        self.register_buffer("latent_mean", torch.zeros(latent_channels))
        self.register_buffer("latent_std", torch.ones(latent_channels))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        z = self.encoder(x)
        return (z - self.latent_mean[:, None, None]) / self.latent_std[:, None, None]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        z = z * self.latent_std[:, None, None] + self.latent_mean[:, None, None]
        return self.decoder(z).clamp(-1, 1)


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last)


class TinyCodec:
    """Streaming wrapper of ``TinyAutoencoder``: one latent frame per video frame, no state."""

    temporal_stride = 1

    def __init__(self, autoencoder: TinyAutoencoder):
        # channels-last lets oneDNN pick its fast convolutions: the decoder runs ~1.5x faster on a CPU
        self.ae = autoencoder.to(memory_format=torch.channels_last)

    def frames_needed(self, latent_frames: int) -> int:
        return latent_frames

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """[B, F, 3, H, W] in [-1, 1] -> [B, F, C, h, w]."""
        b, f = frames.shape[:2]
        z = self.ae.encode(_channels_last(frames.flatten(0, 1).to(self.ae.latent_mean.dtype)))
        return z.contiguous().view(b, f, *z.shape[1:])

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] -> [B, C, h, w] (reference images)."""
        return self.ae.encode(_channels_last(image)).contiguous()

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        b, f = latents.shape[:2]
        x = self.ae.decode(_channels_last(latents.flatten(0, 1)))
        return x.contiguous().view(b, f, *x.shape[1:])

    def reset(self) -> None:
        pass
