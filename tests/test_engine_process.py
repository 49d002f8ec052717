"""The server's engine in a child process (app/remote/engine_process.py): the same behaviour as the
engine in process, across a pipe; a child that dies is reported, and nothing waits on it forever."""
from __future__ import annotations

import time

import numpy as np
import pytest

from app.engine import EngineEvents, LoadRequest
from app.remote.engine_process import EngineProcess, EngineProcessError
from model.checkpoint import CheckpointError
from model.style import StyleSpec


class Events(EngineEvents):
    def __init__(self):
        self.frames, self.applied, self.errors, self.halted = [], [], [], []

    def on_frames(self, frames):
        self.frames.extend(frames)

    def on_style_applied(self, change):
        self.applied.append(change)

    def on_error(self, kind, message):
        self.errors.append((kind, message))

    def on_halted(self, halted):
        self.halted.append(halted)


def wait_for(predicate, timeout=60.0):
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


@pytest.fixture
def engine():
    ev = Events()
    eng = EngineProcess(ev)
    eng.start()
    yield eng, ev
    eng.stop()


def test_a_child_engine_loads_styles_and_streams_in_order(engine):
    eng, ev = engine
    with pytest.raises(CheckpointError, match="model folder not found"):  # the child's error, as raised
        eng.load(LoadRequest(folder="/nonexistent/model", device="cpu")).result(60)
    info = eng.load(LoadRequest(device="cpu", cpu_threads=1)).result(120)
    assert eng.model_info == info and info.chunk_size >= 1
    eng.set_style(StyleSpec(prompt="ink wash painting"), "ink")
    eng.set_strength(0.8)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (96, 160, 3), dtype=np.uint8) for _ in range(4 * info.chunk_size)]
    for i, f in enumerate(frames):  # a chunk at a time: the child's queue (a chunk long) never drops
        wait_for(lambda i=i: len(ev.frames) >= i - i % info.chunk_size)
        eng.submit(f, time.perf_counter(), tag=("t", i))
    wait_for(lambda: len(ev.frames) == len(frames))
    assert [f.tag for f in ev.frames] == [("t", i) for i in range(len(frames))], "in order, none dropped"
    assert all(f.image.shape == (96, 160, 3) and f.image.dtype == np.uint8 for f in ev.frames)
    assert [c.label for c in ev.applied] == ["ink"]
    stats = eng.stats()
    assert stats["processed"] == len(ev.frames) and stats["queue_dropped"] == 0 and stats["dit_ms"] > 0
    assert eng.stop() and not eng.running
    with pytest.raises(EngineProcessError, match="not running"):
        eng.submit(frames[0], 0.0)
    assert not ev.errors, "a stop that was asked for is not an error"


def test_a_child_that_dies_is_reported_fails_its_pending_load_and_is_restarted(engine):
    eng, ev = engine
    fut = eng.load(LoadRequest(device="cpu", cpu_threads=1))
    eng._proc.kill()
    with pytest.raises(EngineProcessError, match="ended unexpectedly"):
        fut.result(60)
    wait_for(lambda: ev.errors)
    assert ev.errors[0][0] == "engine" and "ended unexpectedly" in ev.errors[0][1] and ev.halted == [True]
    assert not eng.running and eng.model_info is None
    info = eng.load(LoadRequest(device="cpu", cpu_threads=1)).result(120)  # the next load starts a new child
    assert eng.running and eng.model_info == info
