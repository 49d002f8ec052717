"""What flows through a live engine: captured frames in, stylized frames out, and the bounded queue
between capture and inference (drop-oldest, so latency stays bounded however slow the model is).
Plain Python, no Qt."""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np


class FrameQueue:
    """Bounded FIFO shared by threads. When full, ``put`` drops the *oldest* item, so the consumer
    always works on the newest frames and latency stays bounded however slow it is."""

    def __init__(self, maxsize: int = 2):
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self._maxsize = maxsize
        self._items: deque = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._wake = False
        self.dropped = 0
        self.put_count = 0

    @property
    def maxsize(self) -> int:
        return self._maxsize

    def resize(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        with self._cond:
            self._maxsize = maxsize
            while len(self._items) > maxsize:
                self._items.popleft()
                self.dropped += 1

    def put(self, item) -> int:
        """Append ``item``; returns how many old items were dropped to make room (0 or 1)."""
        with self._cond:
            if self._closed:
                return 0
            dropped = 0
            while len(self._items) >= self._maxsize:
                self._items.popleft()
                dropped += 1
            self._items.append(item)
            self.dropped += dropped
            self.put_count += 1
            self._cond.notify()
            return dropped

    def get(self, timeout: float | None = None):
        """The oldest item, or None on timeout, on ``wake()`` or once closed and empty."""
        with self._cond:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self._items and not self._closed and not self._wake:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            self._wake = False
            return self._items.popleft() if self._items else None

    def wait(self, timeout: float) -> None:
        """Block until an item is queued, ``wake()`` or the timeout, taking nothing (an idle consumer
        waits for commands this way without eating the frames meant for after them)."""
        with self._cond:
            if not self._items and not self._closed and not self._wake:
                self._cond.wait(timeout)
            self._wake = False

    def wake(self) -> None:
        """Make a waiting ``get`` return now (used to deliver commands promptly)."""
        with self._cond:
            self._wake = True
            self._cond.notify_all()

    def clear(self) -> int:
        with self._cond:
            n = len(self._items)
            self._items.clear()
            return n

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def reopen(self) -> None:
        """Accept items again after ``close`` (an engine started a second time)."""
        with self._cond:
            self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)


@dataclass
class CapturedFrame:
    image: np.ndarray  # uint8 HxWx3 RGB, as captured
    timestamp: float  # time.perf_counter() at capture
    media_time: float | None = None  # position in the source file (seconds), for audio alignment
    tag: object = None  # the caller's label, handed back with the stylized frame (the server's frame id)


@dataclass
class StylizedFrame:
    image: np.ndarray  # uint8 RGB at the working resolution
    source: np.ndarray  # the captured frame fitted to the same size (for side-by-side output)
    timestamp: float  # capture timestamp (perf_counter) of the source frame
    finished: float  # perf_counter when the stylized frame was ready
    index: int  # running output frame number
    style_serial: int  # which style produced it (increases with every switch)
    media_time: float | None = None  # position in the source file, when the source is a file
    tag: object = None  # the CapturedFrame's tag
    ends_chunk: bool = False  # the last frame of its chunk: the engine takes new frames right after it


class OutputSinks:
    """The outputs a live engine feeds (a recorder, a virtual camera), local or remote alike.

    A sink that raises is removed and reported once: one broken output must not stop the stream."""

    def __init__(self):
        self._sinks: list = []
        self._lock = threading.Lock()

    def add(self, sink) -> None:
        with self._lock:
            self._sinks.append(sink)

    def remove(self, sink) -> None:
        with self._lock:
            if sink in self._sinks:
                self._sinks.remove(sink)

    def deliver(self, frames: list, on_failure) -> None:
        """Call every sink with ``frames``; ``on_failure(exception)`` for one that raised (now removed)."""
        with self._lock:
            sinks = list(self._sinks)
        for sink in sinks:
            try:
                sink(frames)
            except Exception as e:
                logging.getLogger(__name__).exception("output sink failed")
                self.remove(sink)
                on_failure(e)
