"""The live display (app/ui/live_display.py) and its meters: frames shown paced and measured, the
status bar fed with the figures, and the rate and latency meters themselves."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from app.ui.live_display import LiveDisplay
from app.ui.status_bar import LatencyMeter, RateMeter, StatusBar
from app.ui.video_view import VideoView
from app.worker import EngineWorker, StylizedFrame
from tests.helpers import WAIT


def test_rate_meter_counts_events_per_second_over_its_window():
    m = RateMeter(window=2.0)
    assert m.rate(now=0.0) == 0.0
    for i in range(11):
        m.tick(10.0 + i * 0.1)  # 10 per second
    assert m.rate(now=11.0) == pytest.approx(10.0)
    assert m.rate(now=12.5) == pytest.approx(5 / 2.0)  # ticks stopped: older than 2 s leave, the rate falls
    assert m.rate(now=20.0) == 0.0
    m.tick(30.0)
    m.reset()
    assert m.rate(now=30.0) == 0.0


def test_rate_meter_takes_ticks_from_many_threads():
    m = RateMeter(window=100.0)
    threads = [threading.Thread(target=lambda k=k: [m.tick(1.0 + k + i / 1000) for i in range(1000)])
               for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert m.rate(now=5.0) == pytest.approx(3999 / 4.0, rel=1e-3)


def test_latency_meter_reports_mean_and_worst_of_the_last_frames():
    m = LatencyMeter(size=3)
    assert m.mean_ms() is None and m.max_ms() is None
    for s in (0.5, 0.1, 0.2, 0.3):
        m.add(s)
    assert m.mean_ms() == pytest.approx(200.0) and m.max_ms() == pytest.approx(300.0)  # the 0.5 has left
    m.reset()
    assert m.mean_ms() is None


class Clock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


def frames(t0: float, n: int, first: int = 1) -> list[StylizedFrame]:
    img = np.zeros((8, 8, 3), np.uint8)
    return [StylizedFrame(img + i, img, t0 + i / 25, t0 + 0.3, first + i, 1) for i in range(n)]


@pytest.fixture
def display(qtbot):
    view, status = VideoView("Stylized"), StatusBar()
    qtbot.addWidget(view)
    qtbot.addWidget(status)
    clock = Clock(100.0)
    d = LiveDisplay(view, status, EngineWorker(), clock=clock)
    d.start()
    yield d, clock
    d.stop()
    assert not d.timer.isActive() and not d.status_timer.isActive()


def test_frames_are_shown_in_order_and_measured(qtbot, display):
    d, clock = display
    shown = []
    d.shown.connect(shown.append)
    clock.t = 100.3
    d.add(frames(100.0, 3))  # lag 0.3 s: the first is due now, the others 40 and 80 ms later
    qtbot.waitUntil(lambda: len(shown) == 1, timeout=WAIT)
    clock.t = 100.3 + 2 / 25
    qtbot.waitUntil(lambda: len(shown) == 2, timeout=WAIT)  # the last two were due together
    assert [f.index for f in shown] == [1, 3] and d.pacer.dropped == 1
    assert d.last_shown is shown[-1] and d.view.frames_shown == 2
    assert d.latency.mean_ms() == pytest.approx(300.0) and d.latency.max_ms() == pytest.approx(300.0)
    assert d.out_rate.rate(now=clock.t) > 0
    d.update_status()
    assert d.status.latency.text() == "Latency: 300 ms" and d.status.dropped.text() == "Dropped: 1"


def test_a_new_stream_forgets_queued_frames_and_figures(qtbot, display):
    d, clock = display
    clock.t = 100.0
    d.add(frames(99.0, 2))  # lag 1 s: both are due within a frame of each other
    qtbot.waitUntil(lambda: d.view.frames_shown >= 1, timeout=WAIT)
    d.add(frames(200.0, 3, first=10))  # from the future: not due
    assert d.pacer.pending == 1 + 3 and d.timer.isActive()
    d.new_stream()
    assert d.pacer.pending == 0 and not d.timer.isActive() and d.latency.mean_ms() is None
    d.stop()
    d.add(frames(99.0, 2))  # after stop: ignored
    assert d.pacer.pending == 0
