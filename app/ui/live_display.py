"""The stylized view, live: paced display of the engine's frames, and the figures the status bar shows.

Frames from the engine go through a ``DisplayPacer`` driven by a precise single-shot Qt timer; each
frame shown is drawn, measured (output rate, capture-to-display latency) and announced with
``shown`` so outputs (screenshot, virtual camera) use exactly what the person sees.
"""
from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, QTimer, Signal

from ..worker import EngineWorker, StylizedFrame
from .pacing import DisplayPacer, PacingConfig
from .status_bar import LatencyMeter, RateMeter, StatusBar
from .video_view import VideoView


class LiveDisplay(QObject):
    shown = Signal(object)  # StylizedFrame, just drawn

    def __init__(self, view: VideoView, status: StatusBar, worker: EngineWorker,
                 clock: Callable[[], float] = time.perf_counter, pacing: PacingConfig | None = None,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.view, self.status, self.worker, self.clock = view, status, worker, clock
        self.pacer: DisplayPacer[StylizedFrame] = DisplayPacer(pacing, clock)
        self.in_rate, self.out_rate = RateMeter(), RateMeter()  # in: ticked by the source's thread
        self.latency = LatencyMeter()
        self.last_shown: StylizedFrame | None = None
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self._tick)
        self.status_timer = QTimer(self)
        self.status_timer.setInterval(500)
        self.status_timer.timeout.connect(self.update_status)
        self._stopped = False
        worker.halted.connect(self._engine_halted)

    def _engine_halted(self, halted: bool) -> None:
        if halted:  # nothing more is coming: frames still queued would wipe the view's "paused" message
            self.restart()

    def add(self, frames: list[StylizedFrame]) -> None:
        """The engine's newest chunk (``framesReady``)."""
        if self._stopped:
            return
        self.pacer.add(frames)
        self._schedule()

    def _tick(self) -> None:
        frame = self.pacer.take()
        if frame is not None:
            self._show(frame)
        self._schedule()

    def _schedule(self) -> None:
        wait = self.pacer.wait_s()
        if wait is not None:
            self.timer.start(int(wait * 1000))

    def _show(self, frame: StylizedFrame) -> None:
        now = self.clock()
        self.last_shown = frame
        self.view.set_frame(frame.image)
        self.out_rate.tick(now)
        self.latency.add(now - frame.timestamp)
        self.shown.emit(frame)

    def new_stream(self) -> None:
        """A new source: nothing queued, fresh figures."""
        self.restart()
        self.in_rate.reset()
        self.out_rate.reset()
        self.latency.reset()

    def restart(self) -> None:
        """The same source from another point (a seek): drop what is queued."""
        self.pacer.clear()
        self.timer.stop()

    def start(self) -> None:
        self._stopped = False
        self.status_timer.start()

    def stop(self) -> None:
        self._stopped = True
        self.restart()
        self.status_timer.stop()

    def update_status(self) -> None:
        stats = self.worker.stats()
        dropped_q = stats.get("queue_dropped", 0)
        dropped_d = stats.get("display_skipped", 0) + self.pacer.dropped
        tip = ""
        if "dit_ms" in stats:
            tip = (f"per frame: encode {stats['encode_ms']:.0f} ms, DiT {stats['dit_ms']:.0f} ms, cache write "
                   f"{stats['cache_write_ms']:.0f} ms, decode {stats['decode_ms']:.0f} ms")
        self.status.set_rates(self.in_rate.rate(), self.out_rate.rate(), self.latency.mean_ms(),
                              self.latency.max_ms(), dropped_q + dropped_d,
                              f"before the model: {dropped_q}\nafter it (display): {dropped_d}", tip)
