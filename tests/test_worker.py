"""The Qt adapter of the live engine: engine callbacks arrive as signals on the GUI thread, the display
skips results while the GUI is behind (sinks never do), and a different engine can be put behind the
same adapter without reconnecting anything. The engine itself is tested without Qt in test_engine.py."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from app.engine import LiveEngine, LoadRequest
from app.frames import StylizedFrame
from app.qt_engine import QtEngine
from model.style import StyleSpec
from tests.helpers import moving_frames


@pytest.fixture
def worker(qtbot):
    w = QtEngine()
    w.start()
    yield w
    assert w.stop(timeout=30)
    assert not w.running


def load(qtbot, worker, folder, **kw):
    with qtbot.waitSignal(worker.modelReady, timeout=30000) as sig:
        fut = worker.load(LoadRequest(folder=folder, device="cpu", **kw))
    assert fut.result(0) is sig.args[0]
    return sig.args[0]


def collect(qtbot, worker, n, frames, timeout=30000):
    out: list[StylizedFrame] = []
    worker.framesReady.connect(out.extend)
    try:
        it = iter(frames)

        def more():
            if len(worker.frames) == 0:
                nxt = next(it, None)
                if nxt is not None:
                    worker.submit(nxt, time.perf_counter())
            return len(out) >= n

        qtbot.waitUntil(more, timeout=timeout)
    finally:
        worker.framesReady.disconnect(out.extend)
    return out


def test_old_names_still_import():
    from app import worker

    assert worker.EngineWorker is QtEngine and worker.LoadRequest is LoadRequest
    assert worker.build_stylizer.__module__ == "model.build"


def test_signals_carry_the_engine_callbacks(qtbot, worker, random_model_dir, tmp_path):
    worker.set_style(StyleSpec(prompt="ink wash painting"), "Ink")  # remembered until a model exists
    with qtbot.waitSignal(worker.styleApplied, timeout=30000) as applied:
        info = load(qtbot, worker, random_model_dir)
    assert info.name == "tiny-random" and info.resolution == (64, 96) and worker.model_info is info
    assert applied.args[0].kind == "text" and worker.style[1] == "Ink"
    assert worker.stylizer is worker.engine.stylizer and worker.frames.maxsize >= info.chunk_size

    out = collect(qtbot, worker, 4, moving_frames(200))
    assert [o.index for o in out] == sorted(o.index for o in out)
    assert out[0].image.shape == (64, 96, 3)

    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with qtbot.waitSignal(worker.styleFailed, timeout=10000) as sig:
        worker.set_style(StyleSpec(reference=bad), "bad")
    assert "bad.png" in sig.args[0]

    worker.set_strength(0.5)
    worker.set_steps(3)
    qtbot.waitUntil(lambda: worker.stylizer.strength == 0.5 and len(worker.stylizer.schedule.steps) == 3)
    worker.set_crossfade(0.0)
    qtbot.waitUntil(lambda: worker._crossfade_s == 0.0)
    assert "display_skipped" in worker.stats() and worker.stats()["processed"] >= 4


def test_the_display_skips_while_the_gui_is_behind(qtbot):
    w = QtEngine()
    shown: list = []
    w.framesReady.connect(shown.append)
    frame = StylizedFrame(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4, 3), np.uint8), 0.0, 0.0, 1, 1)
    engine_thread = threading.Thread(target=lambda: [w.on_frames([frame]) for _ in range(5)])
    engine_thread.start()  # the GUI thread runs no events meanwhile: three in flight, two skipped
    engine_thread.join()
    assert w.display_skipped == 2
    qtbot.waitUntil(lambda: len(shown) == 3)
    engine_thread = threading.Thread(target=w.on_frames, args=([frame],))
    engine_thread.start()  # delivered ones free their slots
    engine_thread.join()
    qtbot.waitUntil(lambda: len(shown) == 4)
    assert w.stats()["display_skipped"] == 2


def test_use_engine_swaps_what_runs_behind_the_signals(qtbot, worker, random_model_dir):
    got: list = []
    worker.add_sink(got.extend)
    worker.set_style(StyleSpec(prompt="cartoon"))
    load(qtbot, worker, random_model_dir)
    old = worker.engine
    new = LiveEngine()
    worker.use_engine(new)
    assert not old.running and new.running and new.events is worker
    assert worker.stylizer is None and worker.model_info is None
    new.set_style(StyleSpec(prompt="pencil sketch"))
    load(qtbot, worker, random_model_dir)
    n = len(got)
    collect(qtbot, worker, 2, moving_frames(100))
    assert len(got) >= n + 2  # the recording sink moved to the new engine
    worker.remove_sink(got.extend)
