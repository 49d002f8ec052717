"""AdaCache: off is the plain engine bit for bit; codebook edges; forced rates skip exactly the expected
blocks; the source motion score; reuse never crosses a style switch or an invalidating cache change."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from model.adacache import AdaCache, AdaCacheConfig, Codebook, resolve, with_options
from model.stylizer import StreamStylizer
from tests.helpers import moving_frames

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # one thread, set per test (not at import)


def original_block_forward(self, x, e, groups: int, self_attention, cross_kv):
    """``Block.forward`` exactly as it was before the AdaCache hook (the reference for bit identity)."""
    b, l, d = x.shape
    e = (self.modulation.unsqueeze(0) + e).unbind(2)

    def mod(t, shift, scale):
        return (t.view(b, groups, -1, d) * (1 + scale[:, :, None]) + shift[:, :, None]).view(b, l, d)

    def gate(t, g):
        return (t.view(b, groups, -1, d) * g[:, :, None]).view(b, l, d)

    q, k, v = self.self_attn.qkv(mod(self.norm1(x), e[0], e[1]))
    y = self.self_attn.o(self_attention(q, k, v).reshape(b, l, d))
    x = x + gate(y, e[2])
    x = x + self.cross_attn(self.norm3(x), *cross_kv)
    y = self.ffn(mod(self.norm2(x), e[3], e[4]))
    return x + gate(y, e[5])


def record_passes(stylizer):
    """Record every DiT pass's velocity (instance attribute; undone by ``del``)."""
    dit = stylizer.model.dit
    outs: list[torch.Tensor] = []
    orig = type(dit).forward_chunk

    def wrapped(*a, **kw):
        v = orig(dit, *a, **kw)
        outs.append(v.clone())
        return v

    dit.forward_chunk = wrapped
    return outs


def count_blocks(stylizer):
    """Per-block execution counter over the stream; returns (log, undo)."""
    log: list[int] = []
    for i, blk in enumerate(stylizer.model.dit.blocks):
        orig = type(blk).forward

        def fwd(*a, _i=i, _blk=blk, _orig=orig, **kw):
            log.append(_i)
            return _orig(_blk, *a, **kw)

        blk.forward = fwd

    def undo():
        for blk in stylizer.model.dit.blocks:
            del blk.forward
        if "forward_chunk" in vars(stylizer.model.dit):
            del stylizer.model.dit.forward_chunk

    return log, undo


def split_passes(log: list[int], n: int) -> list[list[int]]:
    """Cut a block log into passes (a pass runs blocks in increasing order; a new pass starts when the
    index does not increase)."""
    passes, cur = [], []
    for i in log:
        if cur and i <= cur[-1]:
            passes.append(cur)
            cur = []
        cur.append(i)
    if cur:
        passes.append(cur)
    return passes


def static_frames(n, seed=0):
    return [moving_frames(1, seed=seed)[0]] * n


def run_stream(random_model, mode, frames, switch_at=None, **kw):
    s = StreamStylizer(random_model, seed=0, adacache=mode, **kw)
    s.set_text("ink wash painting")
    outs = record_passes(s)
    images = []
    for i in range(0, len(frames), 2):
        if switch_at is not None and i == switch_at:
            s.set_text("pencil sketch")
        images += s.push(frames[i:i + 2])
    del s.model.dit.forward_chunk
    return s, outs, images


# ------------------------------------------------------------------------------------------- off
def original_forward_chunk(dit, noisy, source, t, cache):
    """``CausalDiT.forward_chunk`` exactly as it was before the AdaCache hook, with the original blocks."""
    from model.dit import apply_rope, attend

    b, c = noisy.shape[:2]
    x, grid = dit.embed(noisy, source)
    if t.dim() == 1:
        t = t[:, None].expand(b, c)
    e, e0 = dit.time_modulation(t)
    positions = cache._chunk[2]
    cos, sin = dit._rope(positions, grid)
    layer = 0

    def self_attention(q, k, v):
        k = apply_rope(k, cos, sin)
        cache.write(layer, k, v)
        kk, vv = cache.view(layer)
        return attend(apply_rope(q, cos, sin), kk, vv)

    for layer, blk in enumerate(dit.blocks):
        x = original_block_forward(blk, x, e0, c, self_attention, (cache.cross_k[layer], cache.cross_v[layer]))
    return dit.unpatchify(dit.head(x, e, c), c, grid)


def plain_engine(model, frames, prompts: dict[int, str], seed: int = 0):
    """The streaming engine written out without AdaCache (encode -> steps -> clean pass -> decode, style
    switch = keep the last frame + new condition): every pass's velocity, the cache and the frames."""
    from model.schedule import FlowSchedule
    from model.stylizer import fit_frame

    cfg, dit, codec = model.config, model.dit, model.codec
    cache = dit.new_cache(*cfg.latent_grid())
    codec.reset()
    gen = torch.Generator().manual_seed(seed)
    sched = FlowSchedule(list(cfg.denoising_steps), cfg.shift)
    velocities, images = [], []
    with torch.no_grad():
        for n, i in enumerate(range(0, len(frames), 2)):
            if n in prompts:
                cache.keep_last_frame()
                dit.set_condition(cache, model.text_encoder.encode(prompts[n]))
            chunk = np.stack([fit_frame(f, *cfg.resolution) for f in frames[i:i + 2]])
            video = (torch.from_numpy(chunk).permute(0, 3, 1, 2).float() / 127.5 - 1.0)[None]
            source = codec.encode(video)
            cache.begin_chunk(source.shape[1])

            def denoise(x, sigma):
                v = original_forward_chunk(dit, x, source, torch.full((1,), sigma * 1000.0), cache)
                velocities.append(v)
                return v

            latent = sched.sample(denoise, source.shape, gen, torch.device("cpu"), torch.float32, start=source)
            velocities.append(original_forward_chunk(dit, latent, source, torch.zeros(1), cache))
            cache.end_chunk()
            out = ((codec.decode(latent)[0] + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
            images += list(out.permute(0, 2, 3, 1).numpy())
    return velocities, cache, images


def test_off_is_bit_identical_to_the_plain_engine(random_model):
    frames = moving_frames(16)
    ref_v, ref_cache, ref_images = plain_engine(random_model, frames, {0: "ink wash painting", 5: "pencil sketch"})
    s, outs, images = run_stream(random_model, "off", frames, switch_at=10)
    assert not s.adacache.enabled and s.adacache.mode == "off"
    assert len(outs) == len(ref_v) == 8 * 3  # 8 chunks x (2 steps + clean pass)
    assert all(torch.equal(a, b) for a, b in zip(outs, ref_v))
    assert torch.equal(s.cache.k, ref_cache.k) and torch.equal(s.cache.v, ref_cache.v)
    assert all(np.array_equal(a, b) for a, b in zip(images, ref_images))
    # a preset that never reuses runs every block through the AdaCache path: still bit-identical
    never = AdaCacheConfig(name="never", where="both")
    s2, outs2, images2 = run_stream(random_model, never, frames, switch_at=10)
    assert s2.adacache.stats.blocks_reused == 0 and s2.adacache.stats.blocks_computed == 8 * 2 * 4
    assert all(torch.equal(a, b) for a, b in zip(outs2, ref_v))
    assert all(np.array_equal(a, b) for a, b in zip(images2, ref_images))
    # a preset that reuses changes the output; switching it back off restores the plain engine exactly
    s3, outs3, _ = run_stream(random_model, AdaCacheConfig(name="f", where="chunks", force_rate=2, moreg=False),
                              frames, switch_at=10)
    assert s3.adacache.stats.blocks_reused > 0 and not all(torch.equal(a, b) for a, b in zip(outs3, ref_v))
    s3.set_adacache("off")
    s3.reset()
    s3.set_text("ink wash painting")
    outs4 = record_passes(s3)
    for i in range(0, 16, 2):
        if i == 10:
            s3.set_text("pencil sketch")
        s3.push(frames[i:i + 2])
    del s3.model.dit.forward_chunk
    assert all(torch.equal(a, b) for a, b in zip(outs4, ref_v)) and len(outs4) == len(ref_v)


def test_a_one_chunk_window_skips_the_clean_pass_and_changes_nothing(tmp_path, text_encoder):
    """With window == chunk the next chunk overwrites every slot before attending, so the clean pass is
    dead work: skipping it must leave every denoising velocity and every frame bit-identical."""
    from model.checkpoint import build_tiny_parts, load_model, save_tiny_model
    from model.config import ModelConfig

    cfg = ModelConfig.named("tiny").replace(resolution=(64, 96), window_frames=2)
    torch.manual_seed(0)
    dit, ae = build_tiny_parts(cfg)
    model = load_model(save_tiny_model(tmp_path / "w2", cfg, dit, ae, {"name": "w2", "trained": False}),
                       text_encoder=text_encoder)
    frames = moving_frames(16)
    ref_v, _, ref_images = plain_engine(model, frames, {0: "ink wash painting", 5: "pencil sketch"})
    s, outs, images = run_stream(model, "off", frames, switch_at=10)
    assert not s.cache.keeps_history
    assert len(ref_v) == 8 * 3 and len(outs) == 8 * 2  # 2 steps per chunk, no clean pass
    denoising = [v for i, v in enumerate(ref_v) if i % 3 != 2]
    assert all(torch.equal(a, b) for a, b in zip(outs, denoising))
    assert len(images) == len(ref_images) == 16
    assert all(np.array_equal(a, b) for a, b in zip(images, ref_images))
    s2, _, _ = run_stream(model, "fast", frames)
    assert s2.adacache.stats.clean_blocks == 0 and s2.adacache.stats.chunks == 8


# -------------------------------------------------------------------------------------- codebook
def test_codebook_selects_at_the_threshold_edges():
    paper_fast = Codebook.of({0.08: 6, 0.16: 5, 0.24: 4, 0.32: 3, 0.40: 2, 1.00: 1})
    assert paper_fast.select(0.0) == 6
    assert paper_fast.select(math.nextafter(0.08, 0)) == 6
    assert paper_fast.select(0.08) == 5  # a threshold itself belongs to the next (lower) rate
    assert paper_fast.select(0.16) == 4 and paper_fast.select(0.2399) == 4
    assert paper_fast.select(0.40) == 1 and paper_fast.select(0.99) == 1
    assert paper_fast.select(1.0) == 1 and paper_fast.select(50.0) == 1  # past every threshold: recompute
    assert paper_fast.select(float("nan")) == 1
    book = Codebook.of([(0.2, 2), (0.1, 3)])  # pairs, any order
    assert book.entries == ((0.1, 3), (0.2, 2)) and book.max_rate == 3
    assert book.select(0.1) == 2 and book.select(0.2) == 1 and book.select(-1) == 3
    assert Codebook(()).select(0.0) == 1
    with pytest.raises(ValueError):
        Codebook(((0.2, 2), (0.1, 3)))
    with pytest.raises(ValueError):
        Codebook.of({0.1: 0})
    for preset in ("slow", "fast"):
        cfg = resolve(preset)
        assert cfg.chunk_codebook.select(0.0) > 1 and cfg.chunk_codebook.select(10.0) == 1


def test_decisions_follow_the_codebook_with_motion_scaling(random_model):
    cfg = AdaCacheConfig(name="t", where="chunks", chunk_codebook=Codebook.of({0.5: 3, 1.0: 2, 2.0: 4}),
                         moreg=True, moreg_gain=3.0)
    frames = moving_frames(20)
    s, _, _ = run_stream(random_model, cfg, frames)
    decisions = s.adacache.stats.decisions
    assert decisions, "no decision was made"
    motion = s.adacache.stats.motion
    for where, chunk, step, dist, scaled, rate in decisions:
        m, mg, scale = motion[chunk]
        assert scale == pytest.approx(1 + 3.0 * max(0.0, m + mg))
        if dist is None:
            assert rate == 1
        else:
            assert scaled == pytest.approx(dist * scale)
            assert rate == cfg.chunk_codebook.select(scaled)


# ---------------------------------------------------------------------------------- forced rates
def test_forced_chunk_rate_skips_exactly_the_expected_blocks(random_model):
    cfg = AdaCacheConfig(name="forced", where="chunks", force_rate=3, cached_blocks=(1, 3), moreg=False)
    s = StreamStylizer(random_model, seed=0, adacache=cfg)
    s.set_text("ink wash painting")
    log, undo = count_blocks(s)
    try:
        frames = static_frames(14)
        for i in range(0, 14, 2):
            s.push(frames[i:i + 2])
    finally:
        undo()
    passes = split_passes(log, 4)
    assert len(passes) == 7 * 3
    for n in range(7):
        step0, step1, clean = passes[3 * n: 3 * n + 3]
        expected = [0, 1, 2, 3] if n % 3 == 0 else [0, 3]  # compute, then reuse blocks 1-2 twice
        assert step0 == expected and step1 == expected, (n, step0, step1)
        assert clean == [0, 1, 2, 3]  # the clean cache-write pass always runs every block
    st = s.adacache.stats
    assert st.blocks_reused == 4 * 2 * 2  # chunks 1, 2, 4, 5: 2 steps x 2 blocks
    assert st.passes_reused["chunks"] == 8 and st.rolls_crossed > 0
    assert st.skipped_fraction == pytest.approx(16 / (7 * 3 * 4))


def test_forced_step_rate_reuses_within_a_chunk(random_model):
    cfg = AdaCacheConfig(name="forced-steps", where="steps", force_rate=2, moreg=False)
    s = StreamStylizer(random_model, seed=0, steps=3, adacache=cfg)
    s.set_text("ink wash painting")
    log, undo = count_blocks(s)
    try:
        s.push(moving_frames(4))
    finally:
        undo()
    passes = split_passes(log, 4)
    # per chunk: step 0 computed, step 1 reuses step 0's residuals (no block runs), step 2 computed, clean
    assert passes == [[0, 1, 2, 3]] * 6
    assert s.adacache.stats.passes_reused == {"chunks": 0, "steps": 2}
    assert s.adacache.stats.blocks_reused == 2 * 4


def test_reused_pass_adds_the_cached_residuals(random_model):
    """A reused pass is x + sum of the cached residuals of each block: with a static source and the same
    noise it reproduces the computed pass up to rounding."""
    model = random_model
    dit = model.dit
    cache = dit.new_cache(*model.config.latent_grid())
    ctx = torch.randn(1, model.config.text_len, model.config.text_dim, generator=torch.Generator().manual_seed(1))
    dit.set_condition(cache, ctx)
    g = torch.Generator().manual_seed(0)
    lh, lw = model.config.latent_grid()
    src = torch.randn(1, 2, model.config.latent_channels, lh, lw, generator=g)
    noise = torch.randn(src.shape, generator=g)
    ada = AdaCache(len(dit.blocks), AdaCacheConfig(name="f", where="chunks", force_rate=5, moreg=False))
    vs = []
    for n in range(3):
        ada.begin_chunk(src, cache)
        cache.begin_chunk(2)
        plan = ada.step(0, 1000.0)
        vs.append(dit.forward_chunk(noise, src, torch.tensor([1000.0]), cache, adacache=plan))
        assert (plan.kind is None) == (n == 0) and plan.skipped == ([] if n == 0 else [0, 1, 2, 3])
        dit.forward_chunk(noise, src, torch.tensor([0.0]), cache)
        cache.end_chunk()
        ada.end_chunk(cache)
    # chunks 1 and 2 reuse chunk 0's residuals: identical residual stream, so identical velocity
    assert torch.allclose(vs[1], vs[0], atol=1e-5) and torch.equal(vs[1], vs[2])


def test_reusing_chunk_replays_the_noise_and_keeps_the_stream_aligned(random_model):
    cfg = AdaCacheConfig(name="lock", where="chunks", force_rate=3, moreg=False)
    frames = static_frames(12)
    s, _, images = run_stream(random_model, cfg, frames)
    plain, _, _ = run_stream(random_model, "off", frames)
    # chunks 1 and 2 reuse chunk 0 with its noise and the same source: they repeat its frames exactly
    assert s.adacache.stats.passes_reused["chunks"] == 2 * 4
    assert np.array_equal(images[2], images[0]) and np.array_equal(images[5], images[1])
    # the stream's generator advanced as in the plain engine, so computed chunks draw the same noise
    assert torch.equal(s.generator.get_state(), plain.generator.get_state())
    free, _, images_free = run_stream(random_model, with_options(cfg, lock_noise=False), frames)
    assert free.adacache.stats.passes_reused["chunks"] == 2 * 4
    assert not np.array_equal(images_free[2], images_free[0])  # fresh noise under reused residuals


# ---------------------------------------------------------------------------------------- motion
def test_motion_score_rises_with_motion():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(1, 1, 8, 24, 48, generator=g)
    base = torch.nn.functional.avg_pool3d(base, (1, 3, 3), 1, (0, 1, 1))  # smooth, like a latent

    def clip(start, speed):
        return torch.cat([torch.roll(base, shifts=start + speed * i, dims=-1) for i in range(2)], 1)

    cfg = AdaCacheConfig(name="m", where="chunks", moreg=True, moreg_gain=2.0)
    scores = {}
    for speed in (0, 1, 3):
        ada = AdaCache(4, cfg)
        for n in range(4):
            ada._motion(clip(2 * n * speed, speed))
        scores[speed] = ada.stats.motion
    m = {k: v[-1][0] for k, v in scores.items()}
    assert m[0] == 0.0 and 0 < m[1] < m[3]
    assert [x[2] for x in scores[0]] == [1.0] * 4  # a still scene leaves the distance unchanged
    assert scores[3][-1][2] > scores[1][-1][2] > 1.0
    # the motion gradient: motion that starts now scales more than steady motion of the same speed
    ada = AdaCache(4, cfg)
    ada._motion(clip(0, 0))
    ada._motion(clip(0, 0))
    ada._motion(clip(3, 3))
    m_start, mg_start, scale_start = ada.stats.motion[-1]
    assert mg_start > 0 and scale_start > scores[3][-1][2]


def test_motion_guard_stops_reuse_when_the_source_moves(random_model):
    cfg = AdaCacheConfig(name="g", where="chunks", force_rate=10, moreg=False, motion_guard=0.05)
    s_static, _, _ = run_stream(random_model, cfg, static_frames(16))
    s_moving, _, _ = run_stream(random_model, cfg, moving_frames(16, seed=4))
    assert s_static.adacache.stats.guard_stops == 0 and s_static.adacache.stats.passes_reused["chunks"] == 14
    assert s_moving.adacache.stats.guard_stops > 0
    assert s_moving.adacache.stats.passes_reused["chunks"] < 14


# ------------------------------------------------------------------------------- invalidation
def chunk_kinds(stylizer, frames, events=None):
    """For every chunk pushed 2 frames at a time: the reuse kind of each denoising pass (None = computed)."""
    ada = stylizer.adacache
    kinds = []
    orig_step = ada.step

    def step(i, t):
        plan = orig_step(i, t)
        kinds.append(plan.kind)
        return plan

    ada.step = step
    try:
        for n, i in enumerate(range(0, len(frames), 2)):
            if events and n in events:
                events[n](stylizer)
            stylizer.push(frames[i:i + 2])
    finally:
        del ada.step
    steps = len(stylizer.schedule.steps)
    return [kinds[j: j + steps] for j in range(0, len(kinds), steps)]


ALWAYS = AdaCacheConfig(name="always", where="chunks", force_rate=100, moreg=False)


def test_reuse_never_crosses_a_style_switch_or_compaction(random_model):
    s = StreamStylizer(random_model, seed=0, adacache=ALWAYS)
    s.set_text("ink wash painting")
    frames = static_frames(24)
    kinds = chunk_kinds(s, frames, {5: lambda st: st.set_text("pencil sketch")})
    computed, reused = [None, None], ["chunks", "chunks"]
    # chunk 0 computes; chunks 1-4 reuse across the window filling up and the steady rolls
    assert kinds[:5] == [computed] + [reused] * 4
    # the switch keeps one frame (count 1): chunk 5 computes (count 3), 6 reuses (count 5),
    # chunk 7 compacts the ring (5 + 2 > 6): must compute; 8+ are steady rolls again
    assert kinds[5] == computed and kinds[6] == reused and kinds[7] == computed
    assert kinds[8:] == [reused] * 4
    inv = s.adacache.stats.invalidations
    assert inv.get("style") == 1 and inv.get("compaction") == 1


def test_reuse_never_crosses_a_condition_set_on_the_cache_directly(random_model):
    """Without the stylizer's hook (a DiT user switching the condition), the cache fingerprint catches it."""
    s = StreamStylizer(random_model, seed=0, adacache=ALWAYS)
    s.set_text("ink wash painting")
    other = random_model.text_encoder.encode("pop art").to(s.device, s.dtype)

    def switch(st):
        st.model.dit.set_condition(st.cache, other)  # cross-attention only, frame history untouched

    kinds = chunk_kinds(s, static_frames(12), {3: switch})
    assert kinds[3] == [None, None] and kinds[4] == ["chunks", "chunks"]
    assert s.adacache.stats.invalidations.get("style") == 1


def test_reuse_never_crosses_reference_eviction_reset_or_abort(random_model):
    s = StreamStylizer(random_model, seed=0, adacache=ALWAYS, anchor_reference=False)
    s.set_reference(moving_frames(1, 50, 80, seed=3)[0])
    kinds = chunk_kinds(s, static_frames(12))
    # chunks 0-2 fill the ring; chunk 3 rolls and, not anchored, evicts the reference: recompute
    assert kinds[:3] == [[None, None], ["chunks", "chunks"], ["chunks", "chunks"]]
    assert kinds[3] == [None, None] and kinds[4] == ["chunks", "chunks"]
    assert s.adacache.stats.invalidations.get("reference evicted") == 1 and s.cache.ref_len == 0
    # reset: a new stream computes its first chunk
    s.reset()
    assert chunk_kinds(s, static_frames(4)) == [[None, None], ["chunks", "chunks"]]
    # a chunk that fails half-way: the next one computes
    dit = s.model.dit
    calls = [0]
    orig = type(dit).forward_chunk

    def failing(*a, **kw):
        calls[0] += 1
        if calls[0] == 2:
            raise RuntimeError("out of memory (simulated)")
        return orig(dit, *a, **kw)

    dit.forward_chunk = failing
    try:
        with pytest.raises(RuntimeError):
            s.push(static_frames(2))
    finally:
        del dit.forward_chunk
    assert chunk_kinds(s, static_frames(4)) == [[None, None], ["chunks", "chunks"]]
    assert s.adacache.stats.invalidations.get("abort") == 1


# ------------------------------------------------------------------------------------ interfaces
def test_stylizer_and_cli_settings(random_model):
    s = StreamStylizer(random_model)
    assert s.adacache.mode == "off" and not s.adacache.enabled
    s.set_adacache(True)
    assert s.adacache.enabled and s.adacache.mode == "slow"  # the safe preset
    s.set_adacache("fast")
    s.set_adacache(True)
    assert s.adacache.mode == "fast"  # True keeps a preset that is already on
    s.adacache.enabled = False
    assert s.adacache.mode == "off"
    s.adacache.enabled = True
    assert s.adacache.mode == "slow"
    s.set_adacache(False)
    assert not s.adacache.enabled
    with pytest.raises(ValueError):
        s.set_adacache("turbo")
    with pytest.raises(ValueError):
        AdaCacheConfig(name="x", where="layers")
    assert with_options("fast", where="both").where == "both"
    s.set_adacache("fast")
    s.set_text("ink wash painting")
    s.push(static_frames(10))
    st = s.adacache.stats
    assert 0.0 <= st.skipped_fraction <= st.denoise_skipped_fraction <= 1.0
    assert "AdaCache fast" in s.adacache.describe()

    from app.cli import build_parser

    p = build_parser()
    # off, or the --speed preset's
    assert p.parse_args(["stylize", "in.mp4", "-o", "o.mp4", "--style", "x"]).adacache is None
    assert p.parse_args(["stylize", "in.mp4", "-o", "o.mp4", "--style", "x", "--adacache", "fast"]).adacache == "fast"
    with pytest.raises(SystemExit):
        p.parse_args(["stylize", "in.mp4", "-o", "o.mp4", "--style", "x", "--adacache", "max"])


def test_benchmarks_accept_adacache(tmp_path):
    from benchmarks.stream_bench import build_parser as stream_parser

    assert stream_parser().parse_args(["--adacache", "slow"]).adacache == "slow"
    from benchmarks.adacache_bench import table

    row = {"skipped": 0.5, "skipped_denoise": 0.75, "fps": 2.0, "gain": 1.5, "cpu_gain": 1.6, "psnr_uncached": 30.0,
           "psnr_target": 20.0, "target_loss_db": 0.1, "flicker": 1.0, "flicker_change": 0.0}
    text = table({"results": {"static": {"fast": row}}})
    assert ("| static | fast | 50% / 75% | 2.00 | 1.50x / - / 1.60x | 30.00 dB | 20.00 dB (+0.10) | 1.00 (+0.00) |"
            in text)


def test_adacache_bench_runs_end_to_end(random_model_dir, tmp_path, capsys):
    import json

    import cv2

    from benchmarks.adacache_bench import main

    rng = np.random.default_rng(0)
    photo = cv2.GaussianBlur(rng.integers(0, 256, (240, 360, 3), dtype=np.uint8), (0, 0), 3)
    cv2.imwrite(str(tmp_path / "photo.png"), photo)
    out = tmp_path / "bench.json"
    rc = main(["--model", str(random_model_dir), "--photo", str(tmp_path / "photo.png"), "--frames", "8",
               "--repeats", "1", "--warmup-chunks", "1", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "| static | off |" in text and "| fast | fast |" in text
    data = json.loads(out.read_text())
    assert set(data["results"]) == {"static", "slow", "fast"}
    for case, per in data["results"].items():
        assert set(per) == {"off", "slow", "fast"}
        assert per["off"]["psnr_uncached"] is None and per["off"]["skipped"] == 0.0
        assert per["off"]["gain"] == pytest.approx(1.0) and per["off"]["target_loss_db"] == 0.0
        for name in ("slow", "fast"):
            r = per[name]
            assert r["frames"] == 8 and r["fps"] > 0 and 0.0 <= r["skipped"] <= r["skipped_denoise"] <= 1.0
            assert r["adacache"]["chunks"] == 4 and r["steady_fps"] > 0 and r["steady_gain"] > 0
    assert data["results"]["static"]["fast"]["adacache"]["motion"][-1][0] == 0.0  # a still scene
    assert data["results"]["fast"]["fast"]["adacache"]["motion"][-1][0] > 0.0
    assert main(["--model", str(random_model_dir), "--photo", "no-such-photo", "--out", str(out)]) == 2
