"""3-D rotary position embedding (time, height, width), laid out as in Wan2.1.

The head dimension is split into a temporal part (d - 4*(d//6)) and two spatial parts (2*(d//6) each);
consecutive pairs of channels are rotated. Angles are computed in float64 so that absolute frame
positions stay exact over streams of any length.
"""
from __future__ import annotations

import torch


def _axis_freqs(dim: int, theta: float = 10000.0) -> torch.Tensor:
    return 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)


def axis_split(head_dim: int) -> tuple[int, int, int]:
    s = head_dim // 6
    return head_dim - 4 * s, 2 * s, 2 * s


def rope_angles(frame_positions: torch.Tensor, height: int, width: int, head_dim: int,
                device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin of shape [F*height*width, head_dim//2] for the given (possibly non-contiguous) frames."""
    dt, dh, dw = axis_split(head_dim)
    t = frame_positions.to(torch.float64).cpu()
    ft = torch.outer(t, _axis_freqs(dt))  # [F, dt/2]
    fh = torch.outer(torch.arange(height, dtype=torch.float64), _axis_freqs(dh))
    fw = torch.outer(torch.arange(width, dtype=torch.float64), _axis_freqs(dw))
    f, hh, ww = len(t), height, width
    ang = torch.cat([
        ft[:, None, None, :].expand(f, hh, ww, -1),
        fh[None, :, None, :].expand(f, hh, ww, -1),
        fw[None, None, :, :].expand(f, hh, ww, -1),
    ], dim=-1).reshape(f * hh * ww, head_dim // 2)
    return ang.cos().float().to(device), ang.sin().float().to(device)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x of shape [B, L, H, D] by per-token angles [L, D/2]."""
    b, l, h, d = x.shape
    xr = x.float().reshape(b, l, h, d // 2, 2)
    x0, x1 = xr[..., 0], xr[..., 1]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    out = torch.stack([x0 * c - x1 * s, x0 * s + x1 * c], dim=-1)
    return out.reshape(b, l, h, d).to(x.dtype)
