"""Grow a trained DiT without changing what it computes: deeper (depth up-scaling) or style-modulated.

Why: the CPU student underfits (held-out and training latent errors are the same), so it needs
capacity, but a session cannot afford to retrain it from scratch. New blocks are interleaved with the
trained ones and start as the identity (their attention and FFN output projections are zero, so each
residual adds nothing); style modulation starts at zero too. Training then moves them off zero.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..config import ModelConfig
from ..dit import Block, CausalDiT


def identity_block(cfg: ModelConfig) -> Block:
    block = Block(cfg)
    for layer in (block.self_attn.o, block.cross_attn.o, block.ffn[2]):
        nn.init.zeros_(layer.weight)
        nn.init.zeros_(layer.bias)
    return block


def new_positions(old: int, extra: int) -> list[int]:
    """Indices (in the grown stack) of the new blocks, spread evenly among the old ones."""
    total = old + extra
    return sorted({round((i + 1) * total / (extra + 1)) - 1 for i in range(extra)})


def grow(dit: CausalDiT, cfg: ModelConfig, extra: int = 0, style_modulation: bool = False,
         reference_spread: bool = False) -> tuple[ModelConfig, CausalDiT]:
    """A copy of ``dit`` with ``extra`` identity blocks and, if asked, style modulation or the reference
    tokens' spread in the style (each starting at zero); same outputs for the same inputs."""
    if extra < 0:
        raise ValueError(f"extra layers must be at least 0, got {extra}")
    grown_cfg = cfg.replace(num_layers=cfg.num_layers + extra,
                            style_modulation=cfg.style_modulation or style_modulation,
                            reference_spread=cfg.reference_spread or reference_spread)
    grown = CausalDiT(grown_cfg)
    state = {k: v for k, v in dit.state_dict().items() if not k.startswith("blocks.")}
    missing, unexpected = grown.load_state_dict(state, strict=False)
    assert not unexpected and all(k.startswith(("blocks.", "style_")) for k in missing), (missing, unexpected)
    fresh = set(new_positions(cfg.num_layers, extra)) if extra else set()
    old = iter(dit.blocks)
    blocks = [identity_block(grown_cfg) if i in fresh else next(old) for i in range(grown_cfg.num_layers)]
    grown.blocks = nn.ModuleList(blocks)
    with torch.no_grad():
        grown.to(dtype=next(dit.parameters()).dtype)
    return grown_cfg, grown
