"""Engine invariants (streaming == block-causal full pass, rolling, reference anchoring, switching), the
one way to build a stylizer, and the live engine without Qt: queue, commands between chunks, errors, sinks."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from app.frames import FrameQueue
from model.config import ConfigError, ModelConfig
from model.dit import CausalDiT
from model.rope import apply_rope, rope_angles
from tests.helpers import ROOT, moving_frames

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


@pytest.mark.parametrize("style_modulation", [False, True])
@pytest.mark.parametrize("with_ref", [False, True])
def test_streaming_equals_block_causal_full_pass(with_ref, style_modulation):
    m = small_dit(style_modulation=style_modulation)
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


# ------------------------------------------------------------------------- cache encapsulation
def test_cache_counts_conditions_and_guards_the_chunk_in_progress():
    m = small_dit()
    g = torch.Generator().manual_seed(6)
    cache = m.new_cache(8, 8)
    assert cache.condition_version == 0 and cache.text_len == 3
    m.set_condition(cache, torch.randn(1, 3, 16, generator=g))
    m.set_condition(cache, torch.randn(1, 3, 16, generator=g))
    assert cache.condition_version == 2 and cache.cross_ready
    with pytest.raises(RuntimeError, match="call begin_chunk first"):
        _ = cache.chunk_positions
    assert cache.begin_chunk(2).tolist() == cache.chunk_positions.tolist() == [0, 1]
    with pytest.raises(ValueError, match="has 5 tokens, the model expects 3"):
        m.set_condition(cache, torch.randn(1, 5, 16, generator=g))


def test_the_dit_reads_the_cache_only_through_its_methods():
    import inspect

    from model import dit

    src = inspect.getsource(dit)
    assert "._chunk" not in src and ".cross_k" not in src and ".cross_v" not in src


# ------------------------------------------------------------------------------- model/build
def test_one_device_and_dtype_policy():
    from model.build import default_dtype, resolve_device, resolve_dtype

    assert default_dtype("cuda") == torch.bfloat16 and default_dtype("cuda:1") == torch.bfloat16
    assert default_dtype("cpu") == torch.float32 and default_dtype("mps") == torch.float32
    assert resolve_dtype("cpu", "bf16") == torch.bfloat16
    with pytest.raises(ValueError, match="unknown dtype 'f8'"):
        resolve_dtype("cpu", "f8")
    assert resolve_device("CPU") == "cpu"
    if not torch.cuda.is_available():
        assert resolve_device("auto") in ("cpu", "mps")
        with pytest.raises(RuntimeError, match="no CUDA GPU is available"):
            resolve_device("cuda")


def test_build_stylizer_applies_the_request(random_model_dir, tmp_path):
    from model.build import StylizerRequest, build_stylizer
    from model.checkpoint import CheckpointError
    from model.speed import SpeedRequest

    built = build_stylizer(StylizerRequest(folder=random_model_dir, device="cpu", resolution=(32, 48), strength=0.5,
                                           speed=SpeedRequest("fast", steps=3), seed=7))
    st = built.stylizer
    assert built.device == "cpu" and built.native_resolution == (64, 96)
    assert (st.height, st.width) == (32, 48) and st.strength == 0.5 and st.seed == 7
    assert len(st.schedule.steps) == 3 and st.adacache.mode == "fast" and st.speed == "fast"
    assert st.dtype == torch.float32 and st.model.vocabulary is None
    stylizer, _device, native = build_stylizer(StylizerRequest(folder=random_model_dir, device="cpu"))
    assert native == (64, 96) and stylizer.strength == 1.0 and stylizer.adacache.mode == "off"
    with pytest.raises(CheckpointError, match="model folder not found"):
        build_stylizer(StylizerRequest(folder=tmp_path / "nowhere", device="cpu"))
    with pytest.raises(CheckpointError, match="resolution 50x30 does not suit this model"):
        build_stylizer(StylizerRequest(folder=random_model_dir, device="cpu", resolution=(30, 50)))


# ------------------------------------------------------------------------- the frame queue
def test_queue_drops_oldest_and_stays_bounded():
    q = FrameQueue(3)
    dropped = [q.put(i) for i in range(10)]
    assert dropped == [0, 0, 0] + [1] * 7
    assert len(q) == 3 and q.dropped == 7
    assert [q.get(0), q.get(0), q.get(0)] == [7, 8, 9]  # the newest survive, in order
    assert q.get(timeout=0.01) is None


def test_queue_resize_wake_close():
    q = FrameQueue(4)
    for i in range(4):
        q.put(i)
    q.resize(2)
    assert len(q) == 2 and q.dropped == 2 and q.get(0) == 2
    assert q.clear() == 1 and len(q) == 0
    t0 = time.monotonic()
    threading.Timer(0.05, q.wake).start()
    assert q.get(timeout=5) is None and time.monotonic() - t0 < 2  # wake() interrupts a waiting get
    q.close()
    assert q.get(timeout=5) is None and q.put(1) == 0 and len(q) == 0
    with pytest.raises(ValueError):
        FrameQueue(0)


def test_queue_threads_account_for_every_item():
    q = FrameQueue(2)
    got = []
    n = 5000

    def produce():
        for i in range(n):
            q.put(i)

    def consume():
        while True:
            item = q.get(timeout=0.5)
            if item is None:
                return
            got.append(item)
            if item == n - 1:
                return

    threads = [threading.Thread(target=produce), threading.Thread(target=consume)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert got == sorted(got)  # FIFO among what survives
    assert len(got) + q.dropped + len(q) == n
    assert got[-1] == n - 1  # the newest item always gets through


# ---------------------------------------------------------------------- the live engine (no Qt)
def test_the_engine_module_imports_no_qt():
    import subprocess
    import sys

    code = ("import sys; import app.engine, app.frames, app.remote.client, app.remote.server; "
            "bad = sorted(m for m in sys.modules if m.startswith(('PySide6', 'shiboken6'))); "
            "assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], cwd=str(ROOT), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


class Recorder:
    """EngineEvents that keep every callback, with a wait helper (the callbacks come on the engine thread)."""

    def __init__(self):
        import threading

        self.calls: list[tuple] = []
        self.frames: list = []
        self.cond = threading.Condition()

    def __getattr__(self, name):
        if not name.startswith("on_"):
            raise AttributeError(name)

        def record(*args):
            with self.cond:
                if name == "on_frames":
                    self.frames.extend(args[0])
                self.calls.append((name, *args))
                self.cond.notify_all()
        return record

    def of(self, name):
        with self.cond:
            return [c[1:] for c in self.calls if c[0] == name]

    def wait(self, predicate, timeout=30.0):
        import time

        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                left = deadline - time.monotonic()
                assert left > 0, f"timed out; calls so far: {[c[0] for c in self.calls]}"
                self.cond.wait(left)


@pytest.fixture
def engine():
    from app.engine import LiveEngine

    rec = Recorder()
    eng = LiveEngine(rec)
    eng.start()
    yield eng, rec
    assert eng.stop(timeout=30) and not eng.running


def stream_through(eng, rec, frames, n):
    """Submit frames, one whenever the engine has taken the previous one, until ``n`` results came back."""
    import time

    start = len(rec.frames)
    for f in frames:
        while len(eng.frames) >= 1 and len(rec.frames) - start < n:
            time.sleep(0.002)
        if len(rec.frames) - start >= n:
            break
        eng.submit(f, time.perf_counter())
    rec.wait(lambda: len(rec.frames) - start >= n)
    return rec.frames[start:]


def test_engine_loads_stylizes_switches_and_reports(engine, random_model_dir, tmp_path):
    import time

    import cv2

    from app.engine import LoadRequest
    from model.style import StyleSpec

    eng, rec = engine
    eng.set_style(StyleSpec(prompt="ink wash painting"), "Ink")  # remembered until a model exists
    info = eng.load(LoadRequest(folder=random_model_dir, device="cpu")).result(60)
    assert info.name == "tiny-random" and info.device_label == "CPU" and info.resolution == (64, 96)
    assert rec.of("on_model_ready") == [(info,)] and rec.of("on_load_progress")[-1] == (100, "Ready")
    (applied,), = rec.of("on_style_applied")
    assert applied.label == "Ink" and applied.kind == "text" and applied.cross_changed
    t0 = time.perf_counter()
    out = stream_through(eng, rec, moving_frames(200), 6)
    assert [o.index for o in out] == list(range(1, len(out) + 1))  # in order, none skipped
    assert all(o.image.shape == (64, 96, 3) and o.source.shape == (64, 96, 3) for o in out)
    assert all(t0 <= o.timestamp <= o.finished for o in out)  # capture timestamps travel with the frames

    ref = tmp_path / "ref.png"
    cv2.imwrite(str(ref), np.random.default_rng(1).integers(0, 255, (80, 120, 3), dtype=np.uint8))
    eng.set_style(StyleSpec(reference=ref), "ref")
    rec.wait(lambda: len(rec.of("on_style_applied")) == 2)
    ch = rec.of("on_style_applied")[-1][0]
    assert ch.kind == "reference" and ch.cross_changed and ch.ref_len > 0 and ch.serial == applied.serial + 1
    assert ch.window_after == [max(ch.window_before)]  # the self-attention cache kept the last frame
    out = stream_through(eng, rec, moving_frames(100, seed=2), 4)
    assert all(o.style_serial == ch.serial for o in out)
    # an in-memory reference image (what the server receives) works the same
    eng.set_style(StyleSpec(image=np.full((40, 40, 3), 90, np.uint8)), "memory")
    rec.wait(lambda: len(rec.of("on_style_applied")) == 3)
    assert rec.of("on_style_applied")[-1][0].kind == "reference"
    assert eng.stats()["frames"] > 0 and eng.stats()["processed"] >= 10


def test_commands_are_applied_between_chunks(engine, random_model_dir):
    import threading
    import time

    from app.engine import LoadRequest
    from model.style import StyleSpec

    eng, rec = engine
    eng.set_style(StyleSpec(prompt="cartoon"))
    eng.load(LoadRequest(folder=random_model_dir, device="cpu", warmup=False)).result(60)
    st = eng.stylizer
    real_stream = st.stream
    inside, release = threading.Event(), threading.Event()
    seen = []

    def slow_push(frames):
        seen.append(st.strength)
        inside.set()
        release.wait(10)
        return real_stream(frames)

    st.stream = slow_push
    eng.submit(moving_frames(1)[0], time.perf_counter())
    assert inside.wait(10)
    eng.set_strength(0.3)  # arrives while a frame is being stylized ...
    time.sleep(0.2)
    assert st.strength == 1.0  # ... and waits for it
    release.set()
    eng.submit(moving_frames(2)[1], time.perf_counter())
    rec.wait(lambda: len(seen) >= 2)
    assert seen[:2] == [1.0, 0.3]


def test_frames_sent_right_after_the_first_style_are_stylized_and_earlier_ones_dropped(engine, random_model_dir):
    """A frame that arrives before any style is stale; one sent just after ``set_style`` is not, even when
    it reaches the idle engine before the style command does (the queue's lock is held so that both land
    at once: the engine then sees the frame and the wake-up together)."""
    import time

    from app.engine import LoadRequest
    from model.style import StyleSpec

    eng, rec = engine
    eng.load(LoadRequest(folder=random_model_dir, device="cpu", warmup=False)).result(60)
    frames = moving_frames(3)
    eng.submit(frames[0], 0.0)
    time.sleep(0.3)  # the idle engine drops it: nothing could stylize it
    with eng.frames._cond:
        eng.set_style(StyleSpec(prompt="cartoon"), "cartoon")
        eng.submit(frames[1], 1.0)
        eng.submit(frames[2], 2.0)
    rec.wait(lambda: len(rec.frames) >= 2, timeout=60)
    assert [f.timestamp for f in rec.frames] == [1.0, 2.0]


def test_engine_reports_bad_inputs_and_keeps_running(engine, random_model_dir, tmp_path):
    from app.engine import LoadRequest
    from model.style import StyleSpec

    eng, rec = engine
    fut = eng.load(LoadRequest(folder=tmp_path / "nowhere", device="cpu"))
    assert "model folder not found" in str(fut.exception(30))
    assert rec.of("on_model_failed")[0][0].startswith("model folder not found")
    assert eng.running and eng.stylizer is None
    eng.load(LoadRequest(folder=random_model_dir, device="cpu")).result(60)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    eng.set_style(StyleSpec(reference=bad), "bad")
    rec.wait(lambda: rec.of("on_style_failed"))
    assert "bad.png" in rec.of("on_style_failed")[0][0]
    eng.set_style(StyleSpec(prompt="   "), "empty")
    rec.wait(lambda: len(rec.of("on_style_failed")) == 2)
    assert "empty" in rec.of("on_style_failed")[1][0] and eng.running and eng.style is None


@pytest.mark.parametrize("when", ["at the call", "while the chunk decodes"])
def test_engine_survives_out_of_memory_and_resumes(engine, random_model_dir, when):
    import time

    from app.engine import LoadRequest
    from model.build import is_out_of_memory
    from model.style import StyleSpec

    eng, rec = engine
    eng.set_style(StyleSpec(prompt="cartoon"))
    eng.load(LoadRequest(folder=random_model_dir, device="cpu")).result(60)
    st = eng.stylizer
    real_stream = st.stream
    calls = []

    def out_of_memory():
        calls.append(1)
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    def decoding(frames):  # the stylizer takes the frames, then fails yielding the chunk's first one
        yield out_of_memory()

    def push_out_of_memory(frames):
        return out_of_memory() if when == "at the call" else decoding(frames)

    st.stream = push_out_of_memory
    for f in moving_frames(4):
        eng.submit(f, time.perf_counter())
    rec.wait(lambda: rec.of("on_error"))
    kind, message = rec.of("on_error")[0]
    assert kind == "oom" and "Out of system memory" in message and eng.is_halted
    assert rec.of("on_halted") == [(True,)]
    n = len(calls)
    for f in moving_frames(6):
        eng.submit(f, time.perf_counter())
    time.sleep(0.3)
    assert len(calls) == n  # paused after the error instead of failing on every frame
    st.stream = real_stream
    eng.resume()
    rec.wait(lambda: rec.of("on_halted")[-1] == (False,))
    stream_through(eng, rec, moving_frames(50), 2)
    assert is_out_of_memory(RuntimeError("CUDA error: out of memory")) and is_out_of_memory(MemoryError())
    assert not is_out_of_memory(RuntimeError("shape mismatch"))


def test_sinks_get_every_frame_and_a_failing_sink_is_dropped(engine, random_model_dir):
    from app.engine import LoadRequest
    from model.style import StyleSpec

    eng, rec = engine
    eng.set_style(StyleSpec(prompt="cartoon"))
    eng.load(LoadRequest(folder=random_model_dir, device="cpu")).result(60)
    got = []

    def broken(frames):
        raise OSError("disk full")

    eng.add_sink(got.extend)
    eng.add_sink(broken)
    out = stream_through(eng, rec, moving_frames(50), 4)
    assert [f.index for f in got[:len(out)]] == [f.index for f in out]
    assert rec.of("on_error")[0] == ("sink", "an output stopped: disk full")
    assert len(rec.of("on_error")) == 1  # removed after its first failure
    eng.remove_sink(got.extend)


def test_crossfade_blends_from_the_last_output():
    from app.crossfade import CrossFade

    fade = CrossFade(1.0)
    old = np.zeros((64, 96, 3), np.uint8)
    new = np.full((64, 96, 3), 200, np.uint8)
    assert fade.apply(old, 9.9) is old and not fade.active, "no style switch yet: nothing to fade"
    fade.begin()
    first = fade.apply(new, 10.0)
    mid = fade.apply(new, 10.5)
    last = fade.apply(new, 11.5)
    assert 0 < first.mean() < mid.mean() < 200 and last.mean() == 200 and not fade.active
    fade.begin()
    assert fade.apply(np.zeros((32, 48, 3), np.uint8), 12.0).mean() == 0 and not fade.active, "a new size ends it"
    fade.set_seconds(0)
    fade.begin()
    assert not fade.active, "fading off: a switch shows at once"


def test_the_engines_strength_is_relative_to_the_models_own(engine, random_model_dir, tmp_path):
    """A model distilled to start from the noised source (its card's default_strength) streams at that
    strength when the slider is at 1.0, not from pure noise; lower values scale it."""
    import json
    import shutil

    from app.engine import LoadRequest

    folder = tmp_path / "sdedit-model"
    shutil.copytree(random_model_dir, folder)
    card = json.loads((folder / "model_card.json").read_text())
    (folder / "model_card.json").write_text(json.dumps({**card, "default_strength": 0.6}))
    eng, rec = engine
    eng.load(LoadRequest(folder=folder, device="cpu")).result(60)
    assert eng.stylizer.strength == pytest.approx(0.6)
    eng.set_strength(0.5)
    eng.submit(moving_frames(1)[0], 0.0)
    rec.wait(lambda: eng.stylizer.strength == pytest.approx(0.3))
    eng.load(LoadRequest(folder=random_model_dir, device="cpu", strength=0.5)).result(60)
    assert eng.stylizer.strength == pytest.approx(0.5), "a model without one: the strength as given"


def test_each_stylized_frame_is_handed_on_as_soon_as_it_is_decoded(engine, random_model_dir):
    """The first frame of a chunk reaches the callbacks while the stylizer is still decoding the second
    (a chunk's frames used to wait for the last one)."""
    import threading
    import time

    from app.engine import LoadRequest
    from model.style import StyleSpec

    eng, rec = engine
    eng.set_style(StyleSpec(prompt="cartoon"))
    eng.load(LoadRequest(folder=random_model_dir, device="cpu", warmup=False)).result(60)
    st = eng.stylizer
    real_stream = st.stream
    second_may_decode = threading.Event()

    def held_stream(frames):
        for i, out in enumerate(real_stream(frames)):
            if i == 1:
                assert second_may_decode.wait(10), "the first frame never came out alone"
            yield out

    st.stream = held_stream
    for f in moving_frames(2):
        eng.submit(f, time.perf_counter())
    rec.wait(lambda: len(rec.frames) >= 1)
    assert len(rec.frames) == 1 and len(rec.of("on_frames")[0][0]) == 1
    second_may_decode.set()
    rec.wait(lambda: len(rec.frames) >= 2)
    assert [f.index for f in rec.frames] == sorted(f.index for f in rec.frames)
    assert [f.ends_chunk for f in rec.frames] == [False, True], "the last of a chunk says the engine takes frames"
    st.stream = real_stream
