"""Causal video DiT in the Wan2.1 block layout, with RTR-style source and reference conditioning.

Parameter names follow the public Wan2.1 checkpoints (``patch_embedding``, ``blocks.N.self_attn.q`` ...)
so that those weights load unchanged. What RTR adds lives under separate names and starts neutral:
``source_embedding`` (the source latent's patch embedding, zero-initialised; adding it to the noisy
latent's embedding is the same as concatenating both along channels) and ``ref_adapter`` (reference
image tokens, prepended).

Two entry points share the same blocks:
- ``forward``: a whole clip at once, block-causal (student) or bidirectional (teacher); used in training
  and as the reference for the streaming path.
- ``forward_chunk``: one chunk against a ``RollingKVCache``; used for streaming.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .cache import RollingKVCache
from .config import ModelConfig
from .rope import apply_rope, rope_angles


def sinusoidal_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    pos = t.to(torch.float64).reshape(-1)
    freqs = torch.pow(10000.0, -torch.arange(half, dtype=torch.float64, device=t.device) / half)
    ang = torch.outer(pos, freqs)
    return torch.cat([ang.cos(), ang.sin()], dim=1).float()


def patch_embed(conv: nn.Conv3d, x: torch.Tensor, patch) -> tuple[torch.Tensor, tuple[int, int]]:
    """The Conv3d patch embedding computed as one matmul over patches ([B, F, C, h, w] -> [B, L, D]).

    Same weights and result as ``conv`` (kernel == stride), but avoids PyTorch's slow CPU conv3d path.
    """
    b, f, c, h, w = x.shape
    pt, ph, pw = patch
    gh, gw = h // ph, w // pw
    x = x.reshape(b, f // pt, pt, c, gh, ph, gw, pw).permute(0, 1, 4, 6, 3, 2, 5, 7)
    x = x.reshape(b, (f // pt) * gh * gw, c * pt * ph * pw)
    return F.linear(x, conv.weight.flatten(1), conv.bias), (gh, gw)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype) * self.weight


class SelfAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int, eps: float):
        super().__init__()
        self.num_heads = num_heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        self.norm_q, self.norm_k = RMSNorm(dim, eps), RMSNorm(dim, eps)

    def qkv(self, x: torch.Tensor):
        b, l, d = x.shape
        shape = (b, l, self.num_heads, d // self.num_heads)
        return (self.norm_q(self.q(x)).view(shape), self.norm_k(self.k(x)).view(shape), self.v(x).view(shape))


class CrossAttention(SelfAttention):
    def kv(self, context: torch.Tensor):
        b, l, d = context.shape
        shape = (b, l, self.num_heads, d // self.num_heads)
        return self.norm_k(self.k(context)).view(shape), self.v(context).view(shape)

    def forward(self, x, k, v):
        b, l, d = x.shape
        q = self.norm_q(self.q(x)).view(b, l, self.num_heads, -1)
        return self.o(attend(q, k, v).reshape(b, l, d))


def attend(q, k, v, mask=None):
    """q, k, v: [B, L, H, D] -> [B, Lq, H, D] (PyTorch SDPA picks the fused kernel)."""
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask)
    return out.transpose(1, 2)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.dim
        self.norm1 = nn.LayerNorm(d, eps=cfg.eps, elementwise_affine=False)
        self.self_attn = SelfAttention(d, cfg.num_heads, cfg.eps)
        self.norm3 = nn.LayerNorm(d, eps=cfg.eps, elementwise_affine=True)
        self.cross_attn = CrossAttention(d, cfg.num_heads, cfg.eps)
        self.norm2 = nn.LayerNorm(d, eps=cfg.eps, elementwise_affine=False)
        self.ffn = nn.Sequential(nn.Linear(d, cfg.ffn_dim), nn.GELU(approximate="tanh"), nn.Linear(cfg.ffn_dim, d))
        self.modulation = nn.Parameter(torch.randn(1, 6, d) / d ** 0.5)

    def forward(self, x, e, groups: int, self_attention, cross_kv, residuals: list | None = None):
        """x: [B, G*n, D]; e: [B, G, 6, D] per-group (per-frame) time modulation.

        ``residuals``: a list that receives this block's three residuals (self-attention, cross-attention,
        FFN; what AdaCache caches). The computation is the same with or without it.
        """
        b, l, d = x.shape
        e = (self.modulation.unsqueeze(0) + e).unbind(2)  # 6 x [B, G, D]

        def mod(t, shift, scale):
            return (t.view(b, groups, -1, d) * (1 + scale[:, :, None]) + shift[:, :, None]).view(b, l, d)

        def gate(t, g):
            return (t.view(b, groups, -1, d) * g[:, :, None]).view(b, l, d)

        q, k, v = self.self_attn.qkv(mod(self.norm1(x), e[0], e[1]))
        y = self.self_attn.o(self_attention(q, k, v).reshape(b, l, d))
        p = gate(y, e[2])
        x = x + p
        c = self.cross_attn(self.norm3(x), *cross_kv)
        x = x + c
        y = self.ffn(mod(self.norm2(x), e[3], e[4]))
        r = gate(y, e[5])
        if residuals is not None:
            residuals.extend((p, c, r))
        return x + r


class Head(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.dim
        self.out_dim = cfg.latent_channels * math.prod(cfg.patch_size)
        self.norm = nn.LayerNorm(d, eps=cfg.eps, elementwise_affine=False)
        self.head = nn.Linear(d, self.out_dim)
        self.modulation = nn.Parameter(torch.randn(1, 2, d) / d ** 0.5)

    def forward(self, x, e, groups: int):
        """e: [B, G, D] time embedding per group."""
        b, l, d = x.shape
        shift, scale = (self.modulation.unsqueeze(0) + e.unsqueeze(2)).unbind(2)
        y = self.norm(x).view(b, groups, -1, d) * (1 + scale[:, :, None]) + shift[:, :, None]
        return self.head(y.view(b, l, d))


class ReferenceAdapter(nn.Module):
    """Light adapter from a reference latent to tokens that are prepended to the sequence."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.dim
        self.proj = nn.Conv3d(cfg.latent_channels, d, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.mlp = nn.Sequential(nn.Linear(d, d), nn.GELU(approximate="tanh"), nn.Linear(d, d))
        self.type_embedding = nn.Parameter(torch.zeros(1, 1, d))

    def forward(self, ref_latent):  # [B, C, h, w]
        x = patch_embed(self.proj, ref_latent.unsqueeze(1), self.proj.kernel_size)[0]
        return x + self.mlp(x) + self.type_embedding


class CausalDiT(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        d, c, p = cfg.dim, cfg.latent_channels, cfg.patch_size
        self.patch_embedding = nn.Conv3d(c, d, kernel_size=p, stride=p)
        self.text_embedding = nn.Sequential(nn.Linear(cfg.text_dim, d), nn.GELU(approximate="tanh"), nn.Linear(d, d))
        self.time_embedding = nn.Sequential(nn.Linear(cfg.freq_dim, d), nn.SiLU(), nn.Linear(d, d))
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(d, d * 6))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.num_layers))
        self.head = Head(cfg)
        if cfg.source_conditioning:
            self.source_embedding = nn.Conv3d(c, d, kernel_size=p, stride=p)
            nn.init.zeros_(self.source_embedding.weight)
            nn.init.zeros_(self.source_embedding.bias)
        if cfg.reference_adapter:
            self.ref_adapter = ReferenceAdapter(cfg)
        if cfg.style_modulation:  # zero at first: a model grown from one without it computes the same
            self.style_text = nn.Linear(d, d)
            nn.init.zeros_(self.style_text.weight), nn.init.zeros_(self.style_text.bias)
            if cfg.reference_adapter:
                self.style_ref = nn.Linear(d, d)
                nn.init.zeros_(self.style_ref.weight), nn.init.zeros_(self.style_ref.bias)
                if cfg.reference_spread:  # a mean says the palette's centre; a painting's contrast is its spread
                    self.style_ref_spread = nn.Linear(d, d)
                    nn.init.zeros_(self.style_ref_spread.weight), nn.init.zeros_(self.style_ref_spread.bias)

    # ----------------------------------------------------------------- parts
    @property
    def device(self):
        return self.patch_embedding.weight.device

    @property
    def dtype(self):
        return self.patch_embedding.weight.dtype

    def embed(self, noisy, source):
        """[B, F, C, h, w] latents -> tokens [B, F*n, D] and the token grid (gh, gw)."""
        x, grid = patch_embed(self.patch_embedding, noisy, self.cfg.patch_size)
        if source is not None and self.cfg.source_conditioning:
            x = x + patch_embed(self.source_embedding, source, self.cfg.patch_size)[0]
        return x, grid

    def time_modulation(self, t, style=None):
        """t: [B, G] timesteps in [0, 1000] -> (e [B, G, D], e0 [B, G, 6, D]); ``style`` [B, D] is added
        to the time embedding (adaLN conditioning, as class labels in DiT), so it scales and shifts
        every block instead of entering through one cross-attention token only."""
        b, g = t.shape
        e = self.time_embedding(sinusoidal_embedding(t, self.cfg.freq_dim).to(self.dtype)).view(b, g, -1)
        if style is not None:
            e = e + style[:, None]
        e0 = self.time_projection(e).view(b, g, 6, self.cfg.dim)
        return e.view(b, g, -1), e0

    def style_vector(self, context, ref_tokens=None):
        """[B, D] style of a text context and, if given, of the reference tokens (None: not modulated)."""
        if not self.cfg.style_modulation:
            return None
        style = self.style_text(self.text_embedding(context.to(self.dtype)).mean(1))
        if ref_tokens is not None and self.cfg.reference_adapter:
            style = style + self.style_ref(ref_tokens.mean(1))
            if self.cfg.reference_spread:
                style = style + self.style_ref_spread(ref_tokens.std(1, correction=0))
        return style

    def text_kv(self, context):
        """Cross-attention keys/values of every block for a text context [B, Lt, text_dim]."""
        ctx = self.text_embedding(context.to(self.dtype))
        return [blk.cross_attn.kv(ctx) for blk in self.blocks]

    def unpatchify(self, x, frames: int, grid):
        b = x.shape[0]
        c = self.cfg.latent_channels
        pt, ph, pw = self.cfg.patch_size
        gh, gw = grid
        x = x.view(b, frames, gh, gw, pt, ph, pw, c)
        x = x.permute(0, 1, 4, 7, 2, 5, 3, 6).reshape(b, frames * pt, c, gh * ph, gw * pw)
        return x

    def _rope(self, frame_positions, grid):
        return rope_angles(frame_positions, grid[0], grid[1], self.cfg.head_dim, device=self.device)

    # ------------------------------------------------------- whole-clip pass
    def forward(self, noisy, source, t, context, ref_latent=None, causal: bool = True):
        """Velocity for a whole clip. noisy/source: [B, F, C, h, w]; t: [B, F]; context: [B, Lt, text_dim].

        With ``causal`` the attention is block-causal over chunks of ``cfg.chunk_frames`` latent frames,
        exactly what the streaming path computes before its window rolls; otherwise bidirectional.
        """
        b, f = noisy.shape[:2]
        x, grid = self.embed(noisy, source)
        n = grid[0] * grid[1]
        ref = self.ref_adapter(ref_latent.to(self.dtype)) if ref_latent is not None else None
        style = self.style_vector(context, ref)
        e, e0 = self.time_modulation(t, style)
        cos, sin = self._rope(torch.arange(f), grid)
        groups = f
        r = 0
        if ref is not None:
            r = ref.shape[1]
            if r != n:
                raise ValueError("the reference latent must have the same size as the video latents")
            x = torch.cat([ref, x], dim=1)
            re, re0 = self.time_modulation(torch.zeros(b, 1, device=t.device), style)
            e, e0 = torch.cat([re, e], 1), torch.cat([re0, e0], 1)
            rcos, rsin = self._rope(torch.tensor([-1]), grid)
            cos, sin = torch.cat([rcos, cos]), torch.cat([rsin, sin])
            groups += 1
        mask = self._mask(f, n, r, causal)
        cross = self.text_kv(context)

        def self_attention(q, k, v):
            return attend(apply_rope(q, cos, sin), apply_rope(k, cos, sin), v, mask)

        for blk, kv in zip(self.blocks, cross):
            x = blk(x, e0, groups, self_attention, kv)
        out = self.head(x[:, r:], e[:, -f:], f)
        return self.unpatchify(out, f, grid)

    def _mask(self, frames: int, n: int, r: int, causal: bool):
        chunk = torch.arange(frames, device=self.device) // self.cfg.chunk_frames
        tok_chunk = chunk.repeat_interleave(n)
        if causal:
            frame_mask = tok_chunk[:, None] >= tok_chunk[None, :]
        else:
            frame_mask = torch.ones(len(tok_chunk), len(tok_chunk), dtype=torch.bool, device=self.device)
        if not r:
            return None if not causal else frame_mask
        top = torch.cat([torch.ones(r, r, dtype=torch.bool, device=self.device),
                         torch.zeros(r, len(tok_chunk), dtype=torch.bool, device=self.device)], 1)
        bottom = torch.cat([torch.ones(len(tok_chunk), r, dtype=torch.bool, device=self.device), frame_mask], 1)
        return torch.cat([top, bottom], 0)

    # ------------------------------------------------------------- streaming
    def new_cache(self, height: int, width: int, batch: int = 1, anchor_reference: bool = True,
                  window_frames: int | None = None) -> RollingKVCache:
        """A cache for latents of size (height, width); the window defaults to the config's."""
        cfg = self.cfg
        grid = (height // cfg.patch_size[1], width // cfg.patch_size[2])
        return RollingKVCache(cfg.num_layers, cfg.num_heads, cfg.head_dim, grid, window_frames or cfg.window_frames,
                              cfg.chunk_frames, cfg.text_len, batch, self.device, self.dtype, anchor_reference)

    @torch.no_grad()
    def set_condition(self, cache: RollingKVCache, context, ref_latent=None) -> None:
        """Fill the cross-attention cache for a text context and, if given, anchor a reference image."""
        if context.shape[1] != cache.text_len:
            raise ValueError(f"text context has {context.shape[1]} tokens, the model expects {cache.text_len}")
        cross = self.text_kv(context)
        for i, (k, v) in enumerate(cross):
            cache.set_cross(i, k, v)
        x = self.ref_adapter(ref_latent.to(self.dtype)) if ref_latent is not None else None
        cache.style = self.style_vector(context, x)
        cache.commit_cross()
        if x is None:
            cache.clear_reference()
            return
        b, n, _ = x.shape
        if n != cache.ref_capacity:
            raise ValueError("the reference latent must have the same size as the video latents")
        e, e0 = self.time_modulation(torch.zeros(b, 1, device=self.device), cache.style)
        cos, sin = self._rope(torch.tensor([0]), cache.grid)
        layer = 0

        def self_attention(q, k, v):
            cache.set_reference_layer(layer, k, v)
            return attend(apply_rope(q, cos, sin), apply_rope(k, cos, sin), v)

        for layer, (blk, kv) in enumerate(zip(self.blocks, cross)):
            x = blk(x, e0, 1, self_attention, kv)
        cache.anchor_new_reference()

    def forward_chunk(self, noisy, source, t, cache: RollingKVCache, step_hook=None, adacache=None):
        """Velocity for one chunk [B, c, C, h, w] at timestep(s) t ([B] or [B, c]) against the cache.

        The chunk's keys/values are written into its ring slots; call ``cache.end_chunk()`` after the
        final (clean) pass of the chunk to commit them. ``cache.begin_chunk`` must have been called.

        ``adacache``: an AdaCache pass plan (``model.adacache.PassPlan``) that decides, per block, whether
        to compute it or to reuse cached residuals. A reused block writes no keys/values, so never give
        one to the clean cache-write pass. Without it the blocks run exactly as they always do.
        """
        if not cache.cross_ready:
            raise RuntimeError("no style set: call set_condition first")
        b, c = noisy.shape[:2]
        x, grid = self.embed(noisy, source)
        if t.dim() == 1:
            t = t[:, None].expand(b, c)
        e, e0 = self.time_modulation(t, cache.style)
        positions = cache.chunk_positions
        cos, sin = self._rope(positions, grid)
        layer = 0

        def self_attention(q, k, v):
            k = apply_rope(k, cos, sin)
            cache.write(layer, k, v)
            kk, vv = cache.view(layer)
            return attend(apply_rope(q, cos, sin), kk, vv)

        for layer, blk in enumerate(self.blocks):
            kv = cache.cross(layer)
            if adacache is None:
                x = blk(x, e0, c, self_attention, kv)
            else:
                x = adacache.block(layer, x, lambda h, res, blk=blk, kv=kv: blk(h, e0, c, self_attention, kv, res))
        return self.unpatchify(self.head(x, e, c), c, grid)
