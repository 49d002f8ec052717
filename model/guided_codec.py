"""A source-guided codec: the latent carries the style, the source frame carries the detail.

Why: a plain autoencoder must squeeze every edge of the output through the DiT's latent, so a small
latent caps fidelity (version 2: 25 dB) and blurs. Here the decoder also sees multi-scale features of
the *source* frame at full resolution (a U-Net whose bottleneck is the DiT), so the DiT only has to
decide colour, tone and texture at 1/16 scale while edges come straight from the camera frame. The
latent is 1/16 of the frame (tokens per frame stay small at 640x360) and the output is at the
source's resolution.

Training reconstructs a *stylized* frame from its own latent plus the *source* frame's features
(``model/train/codec.py``); at run time the DiT maps the source latent to the stylized one.

With the ``affine`` head the decoder paints a base image (the offset) and adds the source's own detail
layer (the frame minus its 4x4 local mean) through a per-pixel 3x3 colour matrix. A convolutional
decoder trained with L1 paints smooth pixels (it keeps 7-30 % of a target's Laplacian variance even from
the target's own latent); the detail layer carries every edge and texture of the camera frame at full
resolution, and the matrix decides per style and place how much of it, in which colours, comes through.
The offset alone is the plain decoder, so the affine head starts from a trained plain one.

With ``style_dim`` the DiT's style vector scales and shifts the features of each decoder scale (FiLM,
started at zero): one small decoder shared by ten styles has to tell them apart from the latent alone,
and a decoder fitted to three styles beat the shared one on them by 0.4-1.0 dB; the style vector lets
one decoder specialise per style for a few multiply-adds per channel.

With ``style_smoothing`` the style vector also sets how much of a blur (a Gaussian of 1/96 of the
frame's short side, the thermal filter's own) is mixed into the output: a sigmoid of it, learnt per
style from just under ``SMOOTH_SKIP``. A filter that paints a smooth image (thermal) kept the camera's
fine detail, which its target does not have and which moves with every jitter. At run time a weight
under ``SMOOTH_SKIP`` is not applied: 2 % of blur already took 4 % of a painterly style's detail (a
quantity that goes with the square of the fine detail's amplitude) for no visible smoothing. (A weight
clamped to [0, 1] instead died for every style, thermal too: most styles push it below zero at once.)
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

STRIDE = 16  # frame pixels per latent pixel
AFFINE_CHANNELS = 12  # per output pixel: a 3x3 colour matrix and an offset
DETAIL_SCALE = 4  # the detail layer: the frame minus its mean over 4x4 boxes
SMOOTH_SKIP = 0.05  # at run time, a style blur weight below this is not applied
SMOOTH_START = -3.0  # the style blur's logit at first: a weight of 0.047, under SMOOTH_SKIP
SMOOTH_SIGMA = 1 / 96  # the style blur's sigma, as a fraction of the frame's short side


def _conv(cin: int, cout: int, k: int = 3) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, 1, k // 2)


class _Down(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 4, 2, 1)

    def forward(self, x):
        return F.silu(self.conv(x))


class _Up(nn.Module):
    """Upsample, fuse with the guide features of that scale (1x1: cheap at full size), then one 3x3."""

    def __init__(self, cin: int, cguide: int, cout: int):
        super().__init__()
        self.fuse = _conv(cin + cguide, cout, 1)
        self.conv = _conv(cout, cout)

    def forward(self, x, guide):
        x = F.interpolate(x, size=guide.shape[-2:], mode="nearest")
        x = F.silu(self.fuse(torch.cat([x, guide], 1)))
        return x + F.silu(self.conv(x))


class GuidedAutoencoder(nn.Module):
    """[N, 3, H, W] in [-1, 1] <-> [N, C, H/16, W/16] normalised latents; decoding takes guides.

    ``features(x)`` gives the guides (1/2, 1/4, 1/8 scale) and the latent in one pass, which is what
    streaming runs on every source frame."""

    def __init__(self, latent_channels: int = 16, widths: tuple[int, int, int, int] = (16, 32, 64, 96),
                 affine: bool = False, style_dim: int = 0, style_smoothing: bool = False):
        super().__init__()
        a, b, c, d = widths
        self.latent_channels = latent_channels
        self.affine = affine
        self.style_dim = style_dim
        self.style_smoothing = bool(style_smoothing and style_dim)
        if self.style_smoothing:
            self.style_smooth = nn.Linear(style_dim, 1)
            nn.init.zeros_(self.style_smooth.weight), nn.init.constant_(self.style_smooth.bias, SMOOTH_START)
        self._film_widths = (c, b, a)
        if style_dim:  # per up block: a scale and a shift per channel, zero at first (the decoder unchanged)
            self.style_film = nn.Linear(style_dim, 2 * (a + b + c))
            nn.init.zeros_(self.style_film.weight), nn.init.zeros_(self.style_film.bias)
        self.stem = nn.Sequential(nn.PixelUnshuffle(2), _conv(12, a), nn.SiLU())  # 1/2
        self.down1, self.down2, self.down3 = _Down(a, b), _Down(b, c), _Down(c, d)  # 1/4, 1/8, 1/16
        self.to_latent = _conv(d, latent_channels)
        self.from_latent = nn.Sequential(_conv(latent_channels, d), nn.SiLU(), _conv(d, d), nn.SiLU())
        self.up3, self.up2, self.up1 = _Up(d, c, c), _Up(c, b, b), _Up(b, a, a)
        self.to_rgb = nn.Sequential(_conv(a, 4 * AFFINE_CHANNELS if affine else 12), nn.PixelShuffle(2))
        self.register_buffer("latent_mean", torch.zeros(latent_channels))
        self.register_buffer("latent_std", torch.ones(latent_channels))

    def features(self, x: torch.Tensor):
        """(latent, guides): the normalised latent and the guide features of a frame batch (with the affine
        head the frames themselves come last: the transform is applied to them)."""
        g1 = self.stem(x)
        g2 = self.down1(g1)
        g3 = self.down2(g2)
        z = self.to_latent(self.down3(g3))
        guides = (g1, g2, g3, x) if self.affine else (g1, g2, g3)
        return (z - self.latent_mean[:, None, None]) / self.latent_std[:, None, None], guides

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[0]

    def guides(self, x: torch.Tensor):
        return self.features(x)[1]

    def decode(self, z: torch.Tensor, guides, style: torch.Tensor | None = None,
               short_side: int | None = None) -> torch.Tensor:
        """``style``: [N, style_dim], one row per frame (ignored without ``style_dim``). ``short_side``: the
        whole frame's, when decoding a crop of it (the style blur's scale)."""
        g1, g2, g3 = guides[:3]
        z = z * self.latent_std[:, None, None] + self.latent_mean[:, None, None]
        h = self.from_latent(z)
        film = self.style_film(style.to(z.dtype)).split([w for w in self._film_widths for _ in (0, 1)], 1) \
            if self.style_dim and style is not None else None
        for i, (up, g) in enumerate(((self.up3, g3), (self.up2, g2), (self.up1, g1))):
            h = up(h, g)
            if film is not None:
                h = torch.addcmul(film[2 * i + 1][:, :, None, None], h, 1 + film[2 * i][:, :, None, None])
        out = self.to_rgb(h)
        if self.affine:  # out: 9 matrix entries (row-major), then the offset; one 3x3 product per pixel
            n, _, hh, ww = out.shape
            o, d = out.permute(0, 2, 3, 1), detail_layer(guides[3]).permute(0, 2, 3, 1)  # channels last: views
            out = (torch.matmul(o[..., :9].reshape(n, hh, ww, 3, 3), d[..., None])[..., 0] + o[..., 9:])
            out = out.permute(0, 3, 1, 2)
        out = out.clamp(-1, 1)
        if self.style_smoothing and style is not None:
            out = self._smooth(out, style.to(out.dtype), short_side or min(out.shape[-2:]))
        return out

    def _smooth(self, out: torch.Tensor, style: torch.Tensor, short_side: int) -> torch.Tensor:
        weight = torch.sigmoid(self.style_smooth(style))[:, :, None, None]
        if not torch.is_grad_enabled():
            weight = torch.where(weight < SMOOTH_SKIP, 0.0, weight)
            if float(weight.max()) <= 0:
                return out
        return torch.lerp(out, gaussian_blur(out, SMOOTH_SIGMA * short_side), weight)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of [N, C, H, W] with reflected borders. Outside autograd on the CPU it runs
    in OpenCV, the same kernel and borders (torch's grouped convolutions cost 12 % of the frame rate
    at 640x360; OpenCV's filter a few per cent)."""
    radius = max(1, min(int(3 * sigma + 0.5), min(x.shape[-2:]) - 1))
    taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device) / sigma) ** 2)
    taps = taps / taps.sum()
    if x.device.type == "cpu" and x.dtype == torch.float32 and not (torch.is_grad_enabled() and x.requires_grad):
        import cv2

        k = taps.numpy()
        hwc = x.permute(0, 2, 3, 1).contiguous().numpy()
        out = np.stack([cv2.sepFilter2D(f, -1, k, k, borderType=cv2.BORDER_REFLECT_101) for f in hwc])
        return torch.from_numpy(out.reshape(hwc.shape)).permute(0, 3, 1, 2)
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), taps.view(1, 1, 1, -1).expand(c, 1, 1, -1),
                 groups=c)
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), taps.view(1, 1, -1, 1).expand(c, 1, -1, 1),
                    groups=c)


def detail_layer(x: torch.Tensor, size: int = DETAIL_SCALE) -> torch.Tensor:
    """The frame minus its local mean (size x size boxes, bilinear back up): edges and texture only."""
    h, w = x.shape[-2:]
    base = F.interpolate(F.avg_pool2d(x, size, ceil_mode=True), size=(h, w), mode="bilinear", align_corners=False)
    return x - base


def set_detail_gain(ae: GuidedAutoencoder, gain: float) -> None:
    """Make an affine head pass the source's detail layer through unchanged, times ``gain`` (the matrix
    = gain x identity everywhere); the offset is kept."""
    conv = ae.to_rgb[0]
    with torch.no_grad():
        conv.weight[:36].zero_()
        conv.bias[:36].zero_()
        for c in (0, 4, 8):  # diagonal entries; PixelShuffle(2): channel 4c + s is sub-pixel s of entry c
            conv.bias[4 * c: 4 * c + 4] = gain


def _widths(ae: GuidedAutoencoder) -> tuple[int, int, int, int]:
    return (ae.stem[1].out_channels, ae.down1.conv.out_channels, ae.down2.conv.out_channels,
            ae.down3.conv.out_channels)


def with_style_film(ae: GuidedAutoencoder, style_dim: int) -> GuidedAutoencoder:
    """A copy of ``ae`` whose decoder also takes a style vector, decoding exactly as ``ae`` at first."""
    out = GuidedAutoencoder(ae.latent_channels, _widths(ae), affine=ae.affine, style_dim=style_dim,
                            style_smoothing=ae.style_smoothing)
    out.load_state_dict({k: v for k, v in ae.state_dict().items() if not k.startswith("style_film.")}, strict=False)
    return out.to(dtype=ae.latent_mean.dtype)


def with_style_smoothing(ae: GuidedAutoencoder) -> GuidedAutoencoder:
    """A copy of a style-filmed ``ae`` that also learns a per-style blur, started under its run-time cut."""
    if not ae.style_dim:
        raise ValueError("the style blur needs a decoder that takes the style vector (style film)")
    out = GuidedAutoencoder(ae.latent_channels, _widths(ae), affine=ae.affine, style_dim=ae.style_dim,
                            style_smoothing=True)
    out.load_state_dict(ae.state_dict(), strict=False)
    return out.to(dtype=ae.latent_mean.dtype)


def with_affine_head(plain: GuidedAutoencoder) -> GuidedAutoencoder:
    """An affine-head copy of a plain autoencoder that decodes exactly as it does (the matrix at zero)."""
    ae = GuidedAutoencoder(plain.latent_channels, _widths(plain), affine=True, style_dim=plain.style_dim,
                           style_smoothing=plain.style_smoothing)
    state = {k: v for k, v in plain.state_dict().items() if not k.startswith("to_rgb.")}
    ae.load_state_dict(state, strict=False)
    old, new = plain.to_rgb[0], ae.to_rgb[0]
    with torch.no_grad():
        new.weight.zero_(), new.bias.zero_()
        # PixelShuffle(2): conv channel 4*c + s is sub-pixel s of output channel c; offsets are channels 9..11
        new.weight[36:48].copy_(old.weight)
        new.bias[36:48].copy_(old.bias)
    return ae.to(dtype=old.weight.dtype)


def pad_to_stride(x: torch.Tensor, stride: int = STRIDE) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad the last two dims to a multiple of ``stride``; returns the original (h, w)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % stride, (-w) % stride
    if ph or pw:
        x = F.pad(x.flatten(0, -4) if x.dim() > 4 else x, (0, pw, 0, ph), mode="reflect")
        x = x.view(*x.shape[:-2], h + ph, w + pw)
    return x, (h, w)


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last)


class GuidedCodec:
    """Streaming wrapper of ``GuidedAutoencoder`` with the stylizer's codec surface.

    Invariant: ``decode`` renders the chunk most recently passed to ``encode`` (the stylizer encodes a
    chunk, denoises its latent, then decodes it), so the guide features of that chunk are kept between
    the two calls instead of being recomputed. Frames must be a multiple of ``STRIDE`` in size."""

    temporal_stride = 1
    guided = True

    def __init__(self, autoencoder: GuidedAutoencoder):
        self.ae = autoencoder.to(memory_format=torch.channels_last)
        self._guides = None

    def frames_needed(self, latent_frames: int) -> int:
        return latent_frames

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """[B, F, 3, H, W] in [-1, 1] -> [B, F, C, H/16, W/16]; keeps the chunk's guides for ``decode``."""
        b, f = frames.shape[:2]
        z, self._guides = self.ae.features(_channels_last(frames.flatten(0, 1).to(self.ae.latent_mean.dtype)))
        return z.contiguous().view(b, f, *z.shape[1:])

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] -> [B, C, h, w] (reference images; their guides are not kept)."""
        return self.ae.features(_channels_last(image))[0].contiguous()

    def decode(self, latents: torch.Tensor, style: torch.Tensor | None = None,
               frames: slice | None = None) -> torch.Tensor:
        """``style``: the DiT's [B, D] style vector, for a decoder that takes one. ``frames``: with one
        stream (B = 1), the latents are these frames of the encoded chunk (decoding it piece by piece)."""
        if self._guides is None:
            raise RuntimeError("GuidedCodec.decode needs the source chunk: call encode first")
        b, f = latents.shape[:2]
        guides = self._guides
        if frames is not None:
            if b != 1:
                raise ValueError("decoding part of a chunk needs a batch of one stream")
            guides = tuple(g[frames] for g in guides)
            if guides[0].shape[0] != f:
                raise ValueError(f"{f} latent frames for {guides[0].shape[0]} source frames")
        if style is not None:
            style = style.repeat_interleave(f, 0)
        x = self.ae.decode(_channels_last(latents.flatten(0, 1)), guides, style)
        return x.contiguous().view(b, f, *x.shape[1:])

    def reset(self) -> None:
        self._guides = None
