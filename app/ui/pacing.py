"""Display pacing: when each stylized frame should be shown. Pure Python, with the clock injected.

The engine hands a chunk's frames on in a burst (each as soon as it is decoded, a few tens of ms apart
on a CPU); showing them as they come and then nothing makes motion jerky. The pacer spreads them out
at their capture spacing, a playout delay after capture. The delay is the largest recent lag (arrival
of a delivery - capture of its first frame), so frames are rarely late; when some are (the machine
hiccups), only the newest overdue frame is shown and the others count as dropped. A Qt timer
(``live_display.LiveDisplay``) asks ``wait_s`` when to come back and ``take`` what to show; all the
timing policy is here.
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar


class Timed(Protocol):
    timestamp: float  # capture time, on the pacer's clock


F = TypeVar("F", bound=Timed)


@dataclass(frozen=True)
class PacingConfig:
    lag_history: int = 16  # chunks whose lag sets the playout delay (the largest of them is used)
    early_s: float = 0.002  # a frame due this soon counts as due now (timer granularity)

    def __post_init__(self):
        if self.lag_history < 1:
            raise ValueError("lag_history must be >= 1")
        if self.early_s < 0:
            raise ValueError("early_s must be >= 0")


class DisplayPacer(Generic[F]):
    def __init__(self, config: PacingConfig | None = None, clock: Callable[[], float] = time.perf_counter):
        self.config = config or PacingConfig()
        self.clock = clock
        self._queue: deque[tuple[float, F]] = deque()
        self._lags: deque[float] = deque(maxlen=self.config.lag_history)
        self.dropped = 0  # frames that were due together with a newer one and never shown

    @property
    def delay(self) -> float:
        """The playout delay now in use (seconds after capture); 0 before any frame arrived."""
        return max(self._lags) if self._lags else 0.0

    @property
    def pending(self) -> int:
        return len(self._queue)

    def add(self, frames: Sequence[F]) -> None:
        """A chunk of frames, in capture order, has just arrived."""
        if not frames:
            return
        self._lags.append(self.clock() - frames[0].timestamp)
        delay = self.delay
        last_due = self._queue[-1][0] if self._queue else float("-inf")
        for f in frames:
            due = max(f.timestamp + delay, last_due)  # never before a frame queued earlier
            self._queue.append((due, f))
            last_due = due

    def take(self) -> F | None:
        """The newest frame that is due, or None; older due frames are dropped."""
        now = self.clock()
        newest = None
        while self._queue and self._queue[0][0] <= now + self.config.early_s:
            if newest is not None:
                self.dropped += 1
            newest = self._queue.popleft()[1]
        return newest

    def wait_s(self) -> float | None:
        """Seconds until the next frame is due (0 if one is due now); None when nothing is queued."""
        if not self._queue:
            return None
        return max(0.0, self._queue[0][0] - self.clock())

    def clear(self) -> None:
        """A new stream (source switched or seeked): forget queued frames and measured lags."""
        self._queue.clear()
        self._lags.clear()
