"""The cross-fade on a style switch: the last frame shown in the old style blends into the new style's
frames over ``seconds`` of *capture* time, so a fade lasts as long however fast or slow the engine runs.
Plain Python; the engine owns one and calls it on its own thread."""
from __future__ import annotations

import numpy as np


class CrossFade:
    """Invariant: ``apply`` sees every output frame in order; it remembers the last one, which a later
    ``begin`` fades from. A frame of another size (a new source) ends the fade."""

    def __init__(self, seconds: float = 0.0):
        self.seconds = seconds
        self._from: np.ndarray | None = None  # the frame being faded from, while a fade runs
        self._start: float | None = None  # capture time of the fade's first new frame
        self._last: np.ndarray | None = None

    @property
    def active(self) -> bool:
        return self._from is not None

    def set_seconds(self, seconds: float) -> None:
        self.seconds = max(0.0, float(seconds))
        if self.seconds <= 0:
            self.cancel()

    def begin(self) -> None:
        """A new style from the next frame: fade from the last one shown, if fading is on."""
        self._from = self._last if self.seconds > 0 else None
        self._start = None

    def cancel(self) -> None:
        self._from = None

    def forget(self) -> None:
        """A new model or stream: nothing to fade from."""
        self._from = self._last = None

    def apply(self, image: np.ndarray, timestamp: float) -> np.ndarray:
        """The frame to show for ``image`` (captured at ``timestamp``)."""
        out = image
        if self._from is not None and (self.seconds <= 0 or self._from.shape != image.shape):
            self._from = None
        if self._from is not None:
            if self._start is None:
                self._start = timestamp
            alpha = min(1.0, (timestamp - self._start + 1 / 30) / self.seconds)
            if alpha >= 1.0:
                self._from = None
            else:
                mixed = self._from.astype(np.float32) * (1 - alpha) + image.astype(np.float32) * alpha
                out = mixed.round().astype(np.uint8)
        self._last = out
        return out
