"""The umT5-XXL text encoder as Wan2.1 uses it, and its tokenizer.

Parameter names follow the public ``models_t5_umt5-xxl-enc-bf16.pth`` (``token_embedding``,
``blocks.N.{norm1, attn.{q,k,v,o}, norm2, ffn.{gate.0, fc1, fc2}, pos_embedding.embedding}``, ``norm``).
It is a T5 v1.1-style encoder: RMS norms without bias or mean subtraction, attention without the
1/sqrt(d) scale and with a learned relative-position bias in every layer (32 log-spaced buckets,
bidirectional), and a gated-GELU feed-forward.

As in Wan, a prompt is cleaned (HTML entities, whitespace), tokenised with an end-of-sequence token,
encoded, cut to its real length and zero-padded to ``text_len`` (512) positions. The padded positions
never influence the real ones (they are masked), so the encoder runs on the real tokens only, which
makes a prompt cost a few seconds on a CPU. Embeddings are cached per prompt; the encoder can stay on
the CPU while the DiT streams on the GPU (the stylizer moves the context where it needs it).
"""
from __future__ import annotations

import dataclasses
import html
import math
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .text import TextEncoderError

TOKENIZER_SUBPATH = Path("google") / "umt5-xxl" / "tokenizer.json"


@dataclass(frozen=True)
class UMT5Config:
    """Shape of the encoder. Defaults are umT5-XXL as used by Wan2.1; smaller ones are for tests."""
    vocab: int = 256384
    dim: int = 4096
    dim_attn: int = 4096
    dim_ffn: int = 10240
    num_heads: int = 64
    num_layers: int = 24
    num_buckets: int = 32
    max_distance: int = 128
    eps: float = 1e-6

    def __post_init__(self):
        if self.dim_attn % self.num_heads:
            raise ValueError("dim_attn must be divisible by num_heads")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "UMT5Config":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown umT5 config keys: {', '.join(unknown)}")
        return cls(**data)


def relative_position_bucket(rel_pos: torch.Tensor, num_buckets: int = 32, max_distance: int = 128,
                             bidirectional: bool = True) -> torch.Tensor:
    """T5's bucket of each relative position (key index minus query index).

    Bidirectional: half the buckets for keys after the query. Within a half, distances below
    ``n/2`` get their own bucket; larger ones share log-spaced buckets up to ``max_distance``.
    """
    if bidirectional:
        num_buckets //= 2
        buckets = (rel_pos > 0).long() * num_buckets
        dist = rel_pos.abs()
    else:
        buckets = torch.zeros_like(rel_pos, dtype=torch.long)
        dist = (-rel_pos).clamp(min=0)
    max_exact = num_buckets // 2
    scaled = torch.log(dist.clamp(min=1).float() / max_exact) / math.log(max_distance / max_exact)
    large = (max_exact + (scaled * (num_buckets - max_exact)).long()).clamp(max=num_buckets - 1)
    return buckets + torch.where(dist < max_exact, dist, large)


class T5RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        x = x * torch.rsqrt(x.float().pow(2).mean(dim=-1, keepdim=True) + self.eps)
        if self.weight.dtype in (torch.float16, torch.bfloat16):
            x = x.to(self.weight.dtype)
        return self.weight * x


class T5RelativeBias(nn.Module):
    def __init__(self, num_buckets: int, num_heads: int, max_distance: int):
        super().__init__()
        self.max_distance = max_distance
        self.embedding = nn.Embedding(num_buckets, num_heads)

    def forward(self, lq: int, lk: int) -> torch.Tensor:
        """Additive attention bias [1, heads, lq, lk]."""
        dev = self.embedding.weight.device
        rel = torch.arange(lk, device=dev)[None, :] - torch.arange(lq, device=dev)[:, None]
        b = relative_position_bucket(rel, self.embedding.num_embeddings, self.max_distance)
        return self.embedding(b).permute(2, 0, 1).unsqueeze(0)


class T5Attention(nn.Module):
    def __init__(self, dim: int, dim_attn: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim_attn, bias=False)
        self.k = nn.Linear(dim, dim_attn, bias=False)
        self.v = nn.Linear(dim, dim_attn, bias=False)
        self.o = nn.Linear(dim_attn, dim, bias=False)

    def forward(self, x, bias):
        b, l, _ = x.shape
        split = lambda t: t.view(b, l, self.num_heads, -1).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        attn = torch.matmul(q, k.transpose(-1, -2)) + bias  # T5: no 1/sqrt(d) scale
        attn = F.softmax(attn.float(), dim=-1).to(q.dtype)
        return self.o(torch.matmul(attn, v).transpose(1, 2).reshape(b, l, -1))


class T5FeedForward(nn.Module):
    """Gated GELU: fc2(fc1(x) * gelu_tanh(gate(x)))."""

    def __init__(self, dim: int, dim_ffn: int):
        super().__init__()
        self.gate = nn.Sequential(nn.Linear(dim, dim_ffn, bias=False), nn.GELU(approximate="tanh"))
        self.fc1 = nn.Linear(dim, dim_ffn, bias=False)
        self.fc2 = nn.Linear(dim_ffn, dim, bias=False)

    def forward(self, x):
        return self.fc2(self.fc1(x) * self.gate(x))


def _fp16_clamp(x):
    if x.dtype == torch.float16:
        limit = torch.finfo(x.dtype).max - 1000
        x = x.clamp(-limit, limit)
    return x


class T5Block(nn.Module):
    def __init__(self, cfg: UMT5Config):
        super().__init__()
        self.norm1 = T5RMSNorm(cfg.dim, cfg.eps)
        self.attn = T5Attention(cfg.dim, cfg.dim_attn, cfg.num_heads)
        self.norm2 = T5RMSNorm(cfg.dim, cfg.eps)
        self.ffn = T5FeedForward(cfg.dim, cfg.dim_ffn)
        self.pos_embedding = T5RelativeBias(cfg.num_buckets, cfg.num_heads, cfg.max_distance)

    def forward(self, x, mask_bias):
        bias = self.pos_embedding(x.shape[1], x.shape[1]).to(x.dtype)
        if mask_bias is not None:
            bias = bias + mask_bias
        x = _fp16_clamp(x + self.attn(self.norm1(x), bias))
        return _fp16_clamp(x + self.ffn(self.norm2(x)))


class UMT5Encoder(nn.Module):
    def __init__(self, cfg: UMT5Config | None = None):
        super().__init__()
        self.cfg = cfg = cfg or UMT5Config()
        self.token_embedding = nn.Embedding(cfg.vocab, cfg.dim)
        self.blocks = nn.ModuleList(T5Block(cfg) for _ in range(cfg.num_layers))
        self.norm = T5RMSNorm(cfg.dim, cfg.eps)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """ids [B, L] (and mask [B, L], 1 for real tokens) -> hidden states [B, L, dim]."""
        x = self.token_embedding(ids)
        mask_bias = None
        if mask is not None:
            mask_bias = torch.zeros(mask.shape, dtype=x.dtype, device=x.device)
            mask_bias = mask_bias.masked_fill(mask == 0, torch.finfo(x.dtype).min)[:, None, None, :]
        for block in self.blocks:
            x = block(x, mask_bias)
        return self.norm(x)


# --------------------------------------------------------------------------- tokenizer
def clean_prompt(text: str) -> str:
    """Wan's 'whitespace' cleaning: unescape HTML entities (twice), collapse whitespace."""
    text = html.unescape(html.unescape(text)).strip()
    return re.sub(r"\s+", " ", text).strip()


def load_tokenizer(path: str | Path):
    """The umT5 tokenizer from a ``tokenizer.json`` (a file, or a model folder in the public layout)."""
    from tokenizers import Tokenizer

    path = Path(path)
    if path.is_dir():
        candidates = [path / TOKENIZER_SUBPATH, path / "tokenizer.json"]
        path = next((p for p in candidates if p.is_file()), candidates[0])
    if not path.is_file():
        raise TextEncoderError(
            f"umT5 tokenizer not found: {path} (a Wan model folder needs the google/umt5-xxl tokenizer as "
            f"{TOKENIZER_SUBPATH.as_posix()})")
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as e:  # malformed JSON or an unknown tokenizer model
        raise TextEncoderError(f"cannot read the umT5 tokenizer {path}: {str(e).splitlines()[0]}") from None
    tok.no_padding()
    tok.no_truncation()
    return tok


class UMT5TextEncoder:
    """Text encoder interface of the engine: ``encode(prompt) -> [1, text_len, dim]`` (cached)."""

    def __init__(self, model: UMT5Encoder, tokenizer, text_len: int = 512, cache_size: int = 64):
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.text_len = text_len
        self.text_dim = model.cfg.dim
        eos = tokenizer.token_to_id("</s>")
        if eos is None:
            raise TextEncoderError("the umT5 tokenizer has no '</s>' token")
        self.eos_id = eos
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._cache_size = cache_size

    def tokenize(self, prompt: str) -> list[int]:
        """Token ids ending with '</s>', at most ``text_len`` of them (as Wan's tokenizer call)."""
        ids = list(self.tokenizer.encode(clean_prompt(prompt), add_special_tokens=True).ids)
        if not ids or ids[-1] != self.eos_id:
            ids.append(self.eos_id)
        if len(ids) > self.text_len:
            ids = ids[: self.text_len - 1] + [self.eos_id]
        return ids

    @torch.no_grad()
    def embed(self, prompt: str) -> torch.Tensor:
        ids = self.tokenize(prompt)
        dev = self.model.token_embedding.weight.device
        hidden = self.model(torch.tensor([ids], device=dev))[0]
        out = hidden.new_zeros(self.text_len, hidden.shape[-1])
        out[: len(ids)] = hidden
        return out[None]

    def encode(self, prompt: str) -> torch.Tensor:
        key = clean_prompt(prompt)
        if key not in self._cache:
            self._cache[key] = self.embed(key)
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        self._cache.move_to_end(key)
        return self._cache[key]
