"""The Qt adapter of a live engine: engine callbacks become Qt signals, and nothing else happens here.

The window talks to one ``QtEngine`` whatever runs behind it: the in-process ``LiveEngine`` or a
``RemoteEngine`` (``app/remote/client.py``) driving a server on another machine; ``use_engine``
swaps them without the window reconnecting a signal. Signals are emitted from the engine's thread and
delivered on the GUI thread (queued connections). The only policy kept here is the display's: when
the GUI falls behind, further results skip the display (recording sinks still get every frame).
"""
from __future__ import annotations

import threading
from concurrent.futures import Future

import numpy as np
from PySide6.QtCore import QObject, Signal

from .engine import EngineEvents, LiveEngine, LoadRequest, ModelInfo, StyleChange


class QtEngine(QObject, EngineEvents):
    loadStarted = Signal(str)
    loadProgress = Signal(int, str)  # percent (-1: busy, no estimate), what is happening
    modelReady = Signal(object)  # ModelInfo
    modelFailed = Signal(str)
    framesReady = Signal(object)  # list[StylizedFrame], in order
    styleApplied = Signal(object)  # StyleChange
    styleFailed = Signal(str)
    engineError = Signal(str, str)  # kind ("oom", "engine", "sink", "network"), message
    halted = Signal(bool)  # True: inference paused after an error; False: running again
    connectionChanged = Signal(str, str)  # remote engines: state, detail

    #: undelivered framesReady signals allowed before further results skip the display
    max_in_flight = 3

    def __init__(self, parent: QObject | None = None, queue_size: int = 2, engine=None):
        QObject.__init__(self, parent)
        self._engine = engine if engine is not None else LiveEngine(queue_size=queue_size)
        self._engine.events = self
        self._sinks: list = []
        self._started = False
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()
        self.display_skipped = 0  # stylized frames not sent to the GUI because it was behind
        self.framesReady.connect(self._delivered)  # runs on the GUI thread when a result is delivered

    # ---------------------------------------------------------------------------- the engine
    @property
    def engine(self):
        return self._engine

    def use_engine(self, engine) -> None:
        """Put ``engine`` (local or remote) behind this adapter: the old one stops, sinks move over."""
        old = self._engine
        if engine is old:
            return
        for sink in self._sinks:
            old.remove_sink(sink)
        old.stop()
        old.events = EngineEvents()  # late callbacks of the old engine go nowhere
        self._engine = engine
        engine.events = self
        for sink in self._sinks:
            engine.add_sink(sink)
        with self._in_flight_lock:
            self._in_flight = 0
        if self._started:
            engine.start()

    # -------------------------------------------------------------------- engine callbacks
    def on_load_started(self, title: str) -> None:
        self.loadStarted.emit(title)

    def on_load_progress(self, percent: int, message: str) -> None:
        self.loadProgress.emit(percent, message)

    def on_model_ready(self, info: ModelInfo) -> None:
        self.modelReady.emit(info)

    def on_model_failed(self, message: str) -> None:
        self.modelFailed.emit(message)

    def on_frames(self, frames) -> None:
        with self._in_flight_lock:
            send = self._in_flight < self.max_in_flight
            if send:
                self._in_flight += 1
        if send:
            self.framesReady.emit(frames)
        else:
            self.display_skipped += len(frames)

    def on_style_applied(self, change: StyleChange) -> None:
        self.styleApplied.emit(change)

    def on_style_failed(self, message: str) -> None:
        self.styleFailed.emit(message)

    def on_error(self, kind: str, message: str) -> None:
        self.engineError.emit(kind, message)

    def on_halted(self, halted: bool) -> None:
        self.halted.emit(halted)

    def on_connection(self, state: str, detail: str) -> None:
        self.connectionChanged.emit(state, detail)

    def _delivered(self, _frames) -> None:
        with self._in_flight_lock:
            self._in_flight = max(0, self._in_flight - 1)

    # ------------------------------------------------------------------- the engine's surface
    def start(self) -> None:
        self._started = True
        self._engine.start()

    def stop(self, timeout: float = 30.0) -> bool:
        self._started = False
        return self._engine.stop(timeout)

    @property
    def running(self) -> bool:
        return self._engine.running

    @property
    def is_halted(self) -> bool:
        return self._engine.is_halted

    @property
    def loading(self) -> bool:
        return self._engine.loading

    @property
    def stylizer(self):
        """The in-process StreamStylizer (None behind a remote engine)."""
        return self._engine.stylizer

    @property
    def model_info(self) -> ModelInfo | None:
        return self._engine.model_info

    @property
    def style(self):
        return self._engine.style

    @property
    def speed(self):
        return self._engine.speed

    @property
    def style_serial(self) -> int:
        return self._engine.style_serial

    @property
    def frames(self):
        return self._engine.frames

    @property
    def crossfade_s(self) -> float:
        return self._engine.crossfade_s

    _crossfade_s = crossfade_s  # the name tests/test_gui.py reads

    def submit(self, image: np.ndarray, timestamp: float, media_time: float | None = None) -> int:
        return self._engine.submit(image, timestamp, media_time)

    def load(self, request: LoadRequest) -> Future:
        return self._engine.load(request)

    def set_style(self, spec, label: str | None = None) -> None:
        self._engine.set_style(spec, label)

    def set_strength(self, strength: float) -> None:
        self._engine.set_strength(strength)

    def set_steps(self, steps: int | None) -> None:
        self._engine.set_steps(steps)

    def set_speed(self, speed) -> None:
        """``model.speed.SpeedRequest``: a preset with its explicit steps / AdaCache mode."""
        self._engine.set_speed(speed)

    def set_crossfade(self, seconds: float) -> None:
        self._engine.set_crossfade(seconds)

    def reset_stream(self) -> None:
        self._engine.reset_stream()

    def resume(self) -> None:
        self._engine.resume()

    def add_sink(self, sink) -> None:
        self._sinks.append(sink)
        self._engine.add_sink(sink)

    def remove_sink(self, sink) -> None:
        if sink in self._sinks:
            self._sinks.remove(sink)
        self._engine.remove_sink(sink)

    def stats(self) -> dict:
        s = self._engine.stats()
        s["display_skipped"] = self.display_skipped
        return s
