"""The frame-source interface: a small abstract class plus a dataclass describing a discovered source.

A source delivers uint8 HxWx3 RGB frames, each with its capture timestamp (``time.perf_counter()``
at the moment the frame was captured or decoded), to a *sink* callable, on its own thread. Errors are
reported through ``on_error`` as one readable sentence; a source never raises out of its thread.
Each backend says whether it can work on this machine (``available()``). No Qt here.
"""
from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np

FrameSink = Callable[[np.ndarray, float], None]
ErrorCallback = Callable[[str], None]
StateCallback = Callable[[str], None]


class SourceError(RuntimeError):
    """A source that cannot be opened (camera not available, unreadable file)."""


@dataclass(frozen=True)
class SourceInfo:
    """A source found on this machine (or named by the user), as shown in the source menu."""
    kind: str  # "camera" or "file"
    name: str  # what a person reads: the camera's name, the file's name
    address: str  # how to open it: "camera:0", or a file path
    index: int | None = None  # camera index for OpenCV
    device_id: str = ""  # platform id (e.g. /dev/video0) when known
    available: bool = True
    detail: str = ""  # why it is unavailable, or extra description

    @property
    def label(self) -> str:
        return self.name if self.available else f"{self.name} (unavailable)"


class FrameSource(ABC):
    """One running source. ``start()`` launches its thread; ``stop()`` ends and joins it."""

    kind: ClassVar[str] = ""

    def __init__(self, sink: FrameSink, on_error: ErrorCallback | None = None,
                 on_state: StateCallback | None = None):
        self.sink = sink
        self.on_error = on_error or (lambda msg: None)
        self.on_state = on_state or (lambda state: None)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.frames_delivered = 0
        self.error: str | None = None

    # -------------------------------------------------------------- backend
    @classmethod
    @abstractmethod
    def available(cls) -> tuple[bool, str]:
        """(can this backend work here, why not)."""

    @property
    @abstractmethod
    def info(self) -> SourceInfo:
        """What this source is."""

    @property
    def nominal_fps(self) -> float:
        """Frames per second the source aims for (a camera's measured rate, a file's frame rate)."""
        return 30.0

    @abstractmethod
    def _run(self) -> None:
        """The capture loop (runs on the source's thread until ``self._stop`` is set)."""

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self.error = None
        self._thread = threading.Thread(target=self._guarded_run, name=f"{self.kind}-source", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _guarded_run(self) -> None:
        try:
            self._run()
        except Exception as e:  # a backend bug must not kill the app silently
            self._fail(f"{self.info.name}: {e.__class__.__name__}: {e}")

    def _fail(self, message: str) -> None:
        self.error = message
        self.on_error(message)

    def _deliver(self, frame: np.ndarray, timestamp: float) -> None:
        self.frames_delivered += 1
        self.sink(frame, timestamp)
