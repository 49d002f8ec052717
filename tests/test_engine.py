"""Engine invariants: streaming == block-causal full pass, rolling, reference anchoring, switching."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from model.config import ConfigError, ModelConfig
from model.dit import CausalDiT
from model.rope import apply_rope, rope_angles

SMALL = dict(dim=48, num_heads=4, num_layers=2, ffn_dim=96, latent_channels=4, text_dim=16, text_len=3,
             chunk_frames=2, window_frames=6, resolution=(64, 64))


def small_dit(**over):
    torch.manual_seed(0)
    m = CausalDiT(ModelConfig(**{**SMALL, **over})).eval()
    for p in m.parameters():  # non-trivial values everywhere, incl. zero-initialised source embedding
        p.data.normal_(0, 0.2)
    return m


def stream(m, clean, src, noisy, ctx, ref, t=700.0, cache=None):
    cache = cache or m.new_cache(*clean.shape[-2:])
    m.set_condition(cache, ctx, ref)
    outs = []
    c = m.cfg.chunk_frames
    with torch.no_grad():
        for i in range(0, clean.shape[1], c):
            cache.begin_chunk(c)
            outs.append(m.forward_chunk(noisy[:, i:i + c], src[:, i:i + c], torch.tensor([t]), cache))
            m.forward_chunk(clean[:, i:i + c], src[:, i:i + c], torch.tensor([0.0]), cache)
            cache.end_chunk()
    return outs, cache


@pytest.mark.parametrize("with_ref", [False, True])
def test_streaming_equals_block_causal_full_pass(with_ref):
    m = small_dit()
    g = torch.Generator().manual_seed(1)
    clean, src, noisy = (torch.randn(1, 6, 4, 8, 8, generator=g) for _ in range(3))
    ctx = torch.randn(1, 3, 16, generator=g)
    ref = torch.randn(1, 4, 8, 8, generator=g) if with_ref else None
    outs, _ = stream(m, clean, src, noisy, ctx, ref)
    with torch.no_grad():
        for j, i in enumerate(range(0, 6, 2)):
            inp = torch.cat([clean[:, :i], noisy[:, i:i + 2]], 1)
            t = torch.cat([torch.zeros(1, i), torch.full((1, 2), 700.0)], 1)
            full = m(inp, src[:, :i + 2], t, ctx, ref, causal=True)[:, i:i + 2]
            assert torch.allclose(full, outs[j], atol=1e-4, rtol=1e-4), (full - outs[j]).abs().max()


def test_block_causal_mask_hides_the_future_and_bidirectional_does_not():
    m = small_dit()
    g = torch.Generator().manual_seed(2)
    x, src = torch.randn(1, 4, 4, 8, 8, generator=g), torch.randn(1, 4, 4, 8, 8, generator=g)
    ctx, t = torch.randn(1, 3, 16, generator=g), torch.full((1, 4), 500.0)
    x2 = x.clone()
    x2[:, 3] += 1.0  # change only the last chunk
    with torch.no_grad():
        a, b = m(x, src, t, ctx, causal=True), m(x2, src, t, ctx, causal=True)
        assert torch.equal(a[:, :2], b[:, :2])
        a, b = m(x, src, t, ctx, causal=False), m(x2, src, t, ctx, causal=False)
        assert not torch.allclose(a[:, :2], b[:, :2])


def test_reference_stays_anchored_after_many_rolls_and_memory_is_constant():
    m = small_dit()
    g = torch.Generator().manual_seed(3)
    ctx, ref = torch.randn(1, 3, 16, generator=g), torch.randn(1, 4, 8, 8, generator=g)
    cache = m.new_cache(8, 8)
    m.set_condition(cache, ctx, ref)
    ptrs = (cache.k.data_ptr(), cache.v.data_ptr())
    nbytes = cache.memory_bytes()
    ref_v = cache.v[:, :, :cache.ref_capacity].clone()
    with torch.no_grad():
        for step in range(20):  # 40 frames through a 6-frame window
            cache.begin_chunk(2)
            x = torch.randn(1, 2, 4, 8, 8, generator=g)
            m.forward_chunk(x, x, torch.tensor([0.0]), cache)
            cache.end_chunk()
            assert cache.ref_len == cache.ref_capacity
    assert cache.rolls >= 15
    assert cache.frames_in_window() == list(range(34, 40))
    assert (cache.k.data_ptr(), cache.v.data_ptr()) == ptrs and cache.memory_bytes() == nbytes
    assert torch.equal(cache.v[:, :, :cache.ref_capacity], ref_v)  # reference values untouched at the front
    # the anchored reference is rotated to sit just before the oldest frame of the window
    cache.begin_chunk(2)
    cos, sin = rope_angles(torch.tensor([35]), *cache.grid, cache.head_dim)
    raw = cache.ref_k_raw.reshape(-1, *cache.ref_k_raw.shape[2:])
    expect = apply_rope(raw, cos, sin).reshape_as(cache.ref_k_raw)
    assert torch.allclose(cache.k[:, :, :cache.ref_capacity], expect)


def test_without_anchoring_the_reference_rolls_out():
    m = small_dit()
    g = torch.Generator().manual_seed(4)
    cache = m.new_cache(8, 8, anchor_reference=False)
    m.set_condition(cache, torch.randn(1, 3, 16, generator=g), torch.randn(1, 4, 8, 8, generator=g))
    with torch.no_grad():
        for _ in range(4):
            cache.begin_chunk(2)
            x = torch.randn(1, 2, 4, 8, 8, generator=g)
            m.forward_chunk(x, x, torch.tensor([0.0]), cache)
            cache.end_chunk()
    assert cache.ref_len == 0


def test_style_switch_resets_cross_attention_and_keeps_last_frame():
    m = small_dit()
    g = torch.Generator().manual_seed(5)
    ctx_a, ctx_b = torch.randn(1, 3, 16, generator=g), torch.randn(1, 3, 16, generator=g)
    cache = m.new_cache(8, 8)
    m.set_condition(cache, ctx_a)
    with torch.no_grad():
        for _ in range(5):
            cache.begin_chunk(2)
            x = torch.randn(1, 2, 4, 8, 8, generator=g)
            m.forward_chunk(x, x, torch.tensor([0.0]), cache)
            cache.end_chunk()
    last = max(cache.slot_frame)
    last_slot = cache.slot_frame.index(last)
    ft, base = cache.frame_tokens, cache.ref_capacity
    last_k = cache.k[:, :, base + last_slot * ft: base + (last_slot + 1) * ft].clone()
    cross_a = cache.cross_k.clone()
    cache.keep_last_frame()
    ref = torch.randn(1, 4, 8, 8, generator=g)
    m.set_condition(cache, ctx_b, ref)
    assert cache.frames_in_window() == [last]
    assert torch.equal(cache.k[:, :, base: base + ft], last_k)
    assert not torch.allclose(cache.cross_k, cross_a)
    expect_k = torch.stack([k for k, _ in m.text_kv(ctx_b)])
    assert torch.allclose(cache.cross_k, expect_k)
    assert cache.ref_len == cache.ref_capacity
    # the stream goes on and fills the window again (with one compaction on the way)
    with torch.no_grad():
        for _ in range(4):
            cache.begin_chunk(2)
            x = torch.randn(1, 2, 4, 8, 8, generator=g)
            m.forward_chunk(x, x, torch.tensor([0.0]), cache)
            cache.end_chunk()
    assert cache.frames_in_window() == list(range(last + 3, last + 9))


def test_config_validation_names_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="multiple of chunk_frames"):
        ModelConfig(window_frames=5, chunk_frames=2)
    with pytest.raises(ConfigError, match="divisible"):
        ModelConfig(dim=130, num_heads=4)
    bad = tmp_path / "c.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        ModelConfig.load(bad)
    bad.write_text('{"dimm": 3}')
    with pytest.raises(ConfigError, match="unknown config keys: dimm"):
        ModelConfig.load(bad)
    assert ModelConfig.named("tiny").tokens_per_frame() == 240
