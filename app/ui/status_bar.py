"""Status bar: device, model, input/output FPS, measured end-to-end latency, dropped frames."""
from __future__ import annotations

import threading
import time
from collections import deque

from PySide6.QtWidgets import QFrame, QLabel, QStatusBar, QWidget


class RateMeter:
    """Events per second over a sliding window; ``tick`` may be called from any thread."""

    def __init__(self, window: float = 2.0):
        self.window = window
        self._stamps: deque[float] = deque(maxlen=2000)
        self._lock = threading.Lock()

    def tick(self, t: float | None = None) -> None:
        with self._lock:
            self._stamps.append(time.perf_counter() if t is None else t)

    def rate(self, now: float | None = None) -> float:
        now = time.perf_counter() if now is None else now
        with self._lock:
            while self._stamps and now - self._stamps[0] > self.window:
                self._stamps.popleft()
            n = len(self._stamps)
            if n < 2:
                return 0.0
            span = max(now - self._stamps[0], self._stamps[-1] - self._stamps[0])
            return (n - 1) / span if span > 0 else 0.0

    def reset(self) -> None:
        with self._lock:
            self._stamps.clear()


class LatencyMeter:
    """Capture-to-display latency: mean and worst over the last frames shown."""

    def __init__(self, size: int = 60):
        self._values: deque[float] = deque(maxlen=size)

    def add(self, seconds: float) -> None:
        self._values.append(seconds)

    def mean_ms(self) -> float | None:
        return 1000 * sum(self._values) / len(self._values) if self._values else None

    def max_ms(self) -> float | None:
        return 1000 * max(self._values) if self._values else None

    def reset(self) -> None:
        self._values.clear()


def _sep() -> QFrame:
    f = QFrame()
    f.setFrameShape(QFrame.Shape.VLine)
    f.setFrameShadow(QFrame.Shadow.Sunken)
    return f


class StatusBar(QStatusBar):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.device = QLabel("Device: –")
        self.model = QLabel("Model: –")
        self.fps_in = QLabel("In: – fps")
        self.fps_out = QLabel("Out: – fps")
        self.latency = QLabel("Latency: –")
        self.dropped = QLabel("Dropped: 0")
        self.record = QLabel("")
        self.record.setStyleSheet("color: #e03030; font-weight: bold;")
        for w in (self.device, self.model, self.fps_in, self.fps_out, self.latency, self.dropped):
            self.addPermanentWidget(_sep())
            self.addPermanentWidget(w)
        self.addPermanentWidget(self.record)
        self.fps_in.setToolTip("Frames per second arriving from the source")
        self.fps_out.setToolTip("Stylized frames per second shown")
        self.latency.setToolTip("Measured time from capturing a frame to showing its stylized version")
        self.dropped.setToolTip("Frames skipped to keep latency low (live mode never queues up)")

    def set_device(self, label: str) -> None:
        self.device.setText(f"Device: {label}")

    def set_model(self, name: str, detail: str = "") -> None:
        self.model.setText(f"Model: {name}")
        self.model.setToolTip(detail)

    def set_rates(self, fps_in: float, fps_out: float, latency_ms: float | None, latency_max_ms: float | None,
                  dropped: int, dropped_detail: str = "", stage_tip: str = "") -> None:
        self.fps_in.setText(f"In: {fps_in:.1f} fps")
        self.fps_out.setText(f"Out: {fps_out:.1f} fps")
        self.fps_out.setToolTip("Stylized frames per second shown" + (f"\n{stage_tip}" if stage_tip else ""))
        if latency_ms is None:
            self.latency.setText("Latency: –")
        else:
            self.latency.setText(f"Latency: {latency_ms:.0f} ms")
            self.latency.setToolTip("Measured capture → display time (mean over the last frames); "
                                    f"worst {latency_max_ms:.0f} ms")
        self.dropped.setText(f"Dropped: {dropped}")
        if dropped_detail:
            self.dropped.setToolTip("Frames skipped to keep latency low\n" + dropped_detail)

    def set_recording(self, text: str) -> None:
        self.record.setText(text)
