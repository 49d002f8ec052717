"""Upload pacing for the remote engine: send the frames the server's engine will start its next chunk
with, and not the ones it would throw away.

Why: a saturated engine takes new frames only when a chunk ends, and then the newest ones; every
frame captured in between is still encoded by the client and decoded by the server before the
server's queue drops it. On two cores shared by both, that codec work slowed the server's engine by
about 16 % at 320×192 (`benchmarks/remote_bench.py`).

Why not a steady rate (a token bucket at the engine's speed): frames then reach the server spread over
the chunk, and the two the engine starts with are up to a chunk old - measured at 640×360, +35 ms at
p50 against sending everything. Why not credits (a frame sent when one comes back): the frame would
wait a whole chunk in the server's queue.

So the pacer predicts when the engine will next take frames: the server says when a chunk ends (the
engine takes the next frames at that moment) and how long its chunks take to compute (its stage times
per frame, which leave out any wait for frames, so the prediction errs early). Frames captured in the
``chunk_frames + slack_frames`` camera intervals before the predicted take (less the upload time) are
sent; earlier ones are skipped, and so are the ones captured just after it, which would wait a chunk
in the server's queue and be dropped there. When the take is late by more than a camera interval, or
before the server has said anything, or when the engine is faster than the camera, every frame is sent.
Times are capture timestamps (seconds): the decision is a pure function of what the server said and of
the frames offered.
"""
from __future__ import annotations

from dataclasses import dataclass

STAGES = ("encode_ms", "dit_ms", "cache_write_ms", "decode_ms")


@dataclass
class UploadPacer:
    slack_frames: float = 0.25  # camera intervals added to a chunk's frames in the window before a take
    skipped: int = 0
    opens_at: float | None = None  # frames captured from here ...
    closes_at: float | None = None  # ... to here are sent (None: all)
    interval: float | None = None  # the camera's frame interval, as measured from the frames offered
    _last: float | None = None

    def chunk_ended(self, taken_at: float, stage_ms: dict, chunk_frames: int, uplink_s: float = 0.0) -> None:
        """The server's engine took new frames at ``taken_at``; ``stage_ms`` are its per-frame stage times."""
        ms = sum(v for k in STAGES if isinstance(v := stage_ms.get(k), (int, float)) and v > 0)
        interval = self.interval or 1 / 30
        if ms <= 0 or not isinstance(chunk_frames, int) or chunk_frames < 1 \
                or chunk_frames * ms / 1000.0 <= chunk_frames * interval:  # not saturated: it waits for frames
            self.opens_at = self.closes_at = None
            return
        self.closes_at = taken_at + chunk_frames * ms / 1000.0 - max(0.0, uplink_s)
        self.opens_at = self.closes_at - (chunk_frames + self.slack_frames) * interval

    def admit(self, timestamp: float) -> bool:
        """Whether the frame captured at ``timestamp`` is sent; skipped ones are counted."""
        if self._last is not None and 0 < timestamp - self._last < 1.0:
            step = timestamp - self._last
            self.interval = step if self.interval is None else 0.9 * self.interval + 0.1 * step
        self._last = timestamp
        if self.opens_at is None or self.opens_at <= timestamp < self.closes_at \
                or timestamp >= self.closes_at + (self.interval or 0.0):  # the take is late: send everything
            return True
        self.skipped += 1
        return False
