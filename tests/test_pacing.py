"""Display pacing (app/ui/pacing.py) on a clock the test moves by hand: frames of a chunk are spread
out at their capture spacing, a measured delay after capture; late frames collapse to the newest."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from app.ui.pacing import DisplayPacer, PacingConfig


class Clock:
    def __init__(self, t: float = 100.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


@dataclass
class Frame:
    timestamp: float
    index: int = 0


def chunk(t0: float, n: int, spacing: float = 0.04, first: int = 0) -> list[Frame]:
    return [Frame(t0 + i * spacing, first + i) for i in range(n)]


def test_a_chunk_is_shown_at_its_capture_spacing_after_the_measured_lag():
    clock = Clock(10.3)
    pacer = DisplayPacer(clock=clock)
    pacer.add(chunk(10.0, 3))  # captured at 10.00, 10.04, 10.08; arrived at 10.30
    assert pacer.delay == pytest.approx(0.3)
    shown = []
    while pacer.pending:
        wait = pacer.wait_s()
        clock.t += wait
        frame = pacer.take()
        assert frame is not None
        shown.append((round(clock.t, 6), frame.index))
    assert shown == [(10.3, 0), (10.34, 1), (10.38, 2)]
    assert pacer.dropped == 0 and pacer.wait_s() is None and pacer.take() is None


def test_nothing_is_shown_before_it_is_due():
    clock = Clock(5.5)
    pacer = DisplayPacer(PacingConfig(early_s=0.002), clock=clock)
    pacer.add(chunk(5.0, 2, spacing=0.1))
    assert pacer.take().index == 0
    clock.t += 0.05  # the second frame is due at 5.6
    assert pacer.take() is None and pacer.wait_s() == pytest.approx(0.05)
    clock.t += 0.049  # within the timer's tolerance: due now
    assert pacer.take().index == 1


def test_the_delay_is_the_largest_recent_lag_and_forgets_old_ones():
    clock = Clock(0.0)
    pacer = DisplayPacer(PacingConfig(lag_history=2), clock=clock)
    for t0, arrival in ((0.0, 0.5), (1.0, 1.2), (2.0, 2.1)):
        clock.t = arrival
        pacer.add(chunk(t0, 1))
        while pacer.take() is not None or pacer.pending:
            clock.t += pacer.wait_s() or 0.0
    assert pacer.delay == pytest.approx(0.2)  # the 0.5 s hiccup has left the history of two chunks


def test_late_frames_collapse_to_the_newest_and_count_as_dropped():
    clock = Clock(1.0)
    pacer = DisplayPacer(clock=clock)
    pacer.add(chunk(0.9, 4, spacing=0.05))
    clock.t = 3.0  # the machine stalled: every frame is overdue
    frame = pacer.take()
    assert frame.index == 3 and pacer.dropped == 3 and pacer.pending == 0


def test_a_later_chunk_never_jumps_ahead_of_frames_already_queued():
    clock = Clock(1.0)
    pacer = DisplayPacer(PacingConfig(lag_history=1), clock=clock)
    pacer.add(chunk(0.5, 2, spacing=0.2))  # lag 0.5: due 1.0 and 1.2
    assert pacer.take().index == 0
    clock.t = 1.05
    pacer.add(chunk(1.0, 1, first=2))  # lag 0.05: due 1.05 by itself, but not before frame 1 (1.2)
    assert pacer.take() is None and pacer.wait_s() == pytest.approx(0.15)
    clock.t = 1.2
    assert [pacer.take().index] == [2] and pacer.dropped == 1  # both due at once: the newer one is shown


def test_clear_forgets_frames_and_lags():
    clock = Clock(2.0)
    pacer = DisplayPacer(clock=clock)
    pacer.add(chunk(1.0, 3))
    pacer.clear()
    assert pacer.pending == 0 and pacer.delay == 0.0 and pacer.take() is None
    pacer.add([])  # an empty chunk changes nothing
    assert pacer.pending == 0 and pacer.delay == 0.0


def test_config_is_checked():
    with pytest.raises(ValueError, match="lag_history"):
        PacingConfig(lag_history=0)
    with pytest.raises(ValueError, match="early_s"):
        PacingConfig(early_s=-1)
