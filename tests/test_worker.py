"""The engine worker and its frame queue: bounded drop-oldest queue, model loading off the caller's
thread, stylized frames with capture timestamps, style switches between chunks, errors as signals."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from app.styles import StyleSpec
from app.worker import EngineWorker, FrameQueue, LoadRequest, StylizedFrame, is_out_of_memory
from tests.conftest import moving_frames


# ------------------------------------------------------------------------------ FrameQueue
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


# ---------------------------------------------------------------------------- EngineWorker
@pytest.fixture
def worker(qtbot):
    w = EngineWorker()
    w.start()
    yield w
    assert w.stop(timeout=30)
    assert not w.running


def load(qtbot, worker, folder, **kw):
    with qtbot.waitSignal(worker.modelReady, timeout=30000) as sig:
        fut = worker.load(LoadRequest(folder=folder, device="cpu", **kw))
    assert fut.result(0) is sig.args[0]
    return sig.args[0]


def feed(worker, frames, spacing=0.0):
    for f in frames:
        worker.submit(f, time.perf_counter())
        if spacing:
            time.sleep(spacing)


def collect(qtbot, worker, n, frames, timeout=30000):
    out: list[StylizedFrame] = []
    worker.framesReady.connect(out.extend)
    try:
        it = iter(frames)

        def more():
            nxt = next(it, None)
            if nxt is not None:
                worker.submit(nxt, time.perf_counter())
            return len(out) >= n

        qtbot.waitUntil(more, timeout=timeout)
    finally:
        worker.framesReady.disconnect(out.extend)
    return out


def test_worker_loads_stylizes_and_switches(qtbot, worker, random_model_dir, tmp_path):
    worker.set_style(StyleSpec(prompt="ink wash painting"), "Ink")  # remembered until a model exists
    with qtbot.waitSignal(worker.styleApplied, timeout=30000) as applied:
        info = load(qtbot, worker, random_model_dir)
    assert info.name == "tiny-random" and info.device == "cpu" and info.device_label == "CPU"
    assert info.resolution == (64, 96) and info.chunk_size == worker.stylizer.chunk_size
    assert applied.args[0].kind == "text" and applied.args[0].ref_len == 0
    assert worker.frames.maxsize >= info.chunk_size

    t_before = time.perf_counter()
    out = collect(qtbot, worker, 6, moving_frames(200))
    f = out[0]
    assert f.image.shape == (64, 96, 3) and f.image.dtype == np.uint8
    assert f.source.shape == (64, 96, 3)
    assert t_before <= f.timestamp <= f.finished  # capture timestamp travels with the frame
    assert [o.index for o in out] == sorted(o.index for o in out)

    # reference image: cross-attention re-initialised, reference anchored, last frame kept
    ref = tmp_path / "ref.png"
    import cv2
    cv2.imwrite(str(ref), np.random.default_rng(1).integers(0, 255, (80, 120, 3), dtype=np.uint8))
    with qtbot.waitSignal(worker.styleApplied, timeout=30000) as sig:
        worker.set_style(StyleSpec(reference=ref), "ref")
    ch = sig.args[0]
    assert ch.kind == "reference" and ch.cross_ready and ch.cross_changed and ch.ref_len > 0
    assert len(ch.window_before) >= 1 and ch.window_after == [max(ch.window_before)]
    out2 = collect(qtbot, worker, 4, moving_frames(200, seed=2))
    assert all(o.style_serial == ch.serial for o in out2)

    # back to text: reference dropped, cross-attention rebuilt, last frame kept
    with qtbot.waitSignal(worker.styleApplied, timeout=30000) as sig:
        worker.set_style(StyleSpec(prompt="pencil sketch"), "pencil")
    ch = sig.args[0]
    assert ch.kind == "text" and ch.ref_len == 0 and ch.cross_changed
    assert ch.window_after == [max(ch.window_before)]

    # instant settings reach the stylizer between chunks
    worker.set_strength(0.5)
    worker.set_steps(3)
    qtbot.waitUntil(lambda: worker.stylizer.strength == 0.5 and len(worker.stylizer.schedule.steps) == 3)
    collect(qtbot, worker, 2, moving_frames(100, seed=3))
    assert worker.stats()["frames"] > 0


def test_worker_reports_bad_inputs(qtbot, worker, random_model_dir, tmp_path):
    with qtbot.waitSignal(worker.modelFailed, timeout=30000) as sig:
        fut = worker.load(LoadRequest(folder=tmp_path / "nowhere", device="cpu"))
    assert "model folder not found" in sig.args[0]
    assert isinstance(fut.exception(0), Exception)
    assert worker.running and worker.stylizer is None

    load(qtbot, worker, random_model_dir)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with qtbot.waitSignal(worker.styleFailed, timeout=10000) as sig:
        worker.set_style(StyleSpec(reference=bad), "bad")
    assert "bad.png" in sig.args[0]
    assert worker.running


def test_worker_survives_out_of_memory(qtbot, worker, random_model_dir):
    worker.set_style(StyleSpec(prompt="cartoon"))
    load(qtbot, worker, random_model_dir)
    st = worker.stylizer
    real_push = st.push
    calls = {"n": 0}

    def push_out_of_memory(frames):
        calls["n"] += 1
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    st.push = push_out_of_memory  # the allocator failing inside the model
    with qtbot.waitSignal(worker.engineError, timeout=10000) as sig:
        feed(worker, moving_frames(4))
    assert sig.args[0] == "oom" and "Out of system memory" in sig.args[1]
    qtbot.waitUntil(lambda: worker.is_halted)
    n = calls["n"]
    feed(worker, moving_frames(6))
    time.sleep(0.3)
    assert calls["n"] == n  # paused after the error instead of failing on every frame
    st.push = real_push
    with qtbot.waitSignal(worker.halted, timeout=10000) as sig:
        worker.resume()
    assert sig.args == [False]
    collect(qtbot, worker, 2, moving_frames(100))


def test_out_of_memory_detection():
    assert is_out_of_memory(torch.OutOfMemoryError("x"))
    assert is_out_of_memory(RuntimeError("CUDA error: out of memory"))
    assert is_out_of_memory(MemoryError())
    assert not is_out_of_memory(RuntimeError("shape mismatch"))


def test_crossfade_blends_from_the_last_output(qtbot, worker, random_model_dir):
    worker.set_style(StyleSpec(prompt="cartoon"))
    load(qtbot, worker, random_model_dir)
    worker._crossfade_s = 1.0
    old = np.zeros((64, 96, 3), np.uint8)
    new = np.full((64, 96, 3), 200, np.uint8)
    worker._fade = {"from": old, "start": None}
    first = worker._crossfade(new, 10.0)
    mid = worker._crossfade(new, 10.5)
    last = worker._crossfade(new, 11.5)
    assert 0 < first.mean() < mid.mean() < 200 and last.mean() == 200 and worker._fade is None
