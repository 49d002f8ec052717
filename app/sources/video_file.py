"""Decode video files to RGB frames with PyAV (no Qt; used by the CLI and the GUI's file source)."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np


class VideoReadError(RuntimeError):
    """A video file that cannot be opened or decoded."""


class VideoFileReader:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise VideoReadError(f"input file not found: {self.path}")
        if not self.path.is_file():
            raise VideoReadError(f"input is not a file: {self.path}")
        try:
            self._container = av.open(str(self.path))
        except (av.error.FFmpegError, OSError, ValueError) as e:
            raise VideoReadError(f"cannot open {self.path.name}: not a readable video "
                                 f"({e.__class__.__name__})") from None
        if not self._container.streams.video:
            self._container.close()
            raise VideoReadError(f"{self.path.name} has no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        rate = self._stream.average_rate or self._stream.guessed_rate or Fraction(30)
        self.fps: Fraction = Fraction(rate)
        self.width = self._stream.codec_context.width
        self.height = self._stream.codec_context.height
        self.frame_count = int(self._stream.frames or 0)
        if not self.frame_count and self._stream.duration and self._stream.time_base:
            self.frame_count = int(round(float(self._stream.duration * self._stream.time_base) * float(self.fps)))
        self.duration = (float(self._stream.duration * self._stream.time_base)
                         if self._stream.duration and self._stream.time_base else None)
        self.has_audio = bool(self._container.streams.audio)

    def frames(self) -> Iterator[tuple[float, np.ndarray]]:
        """Yield (presentation time in seconds, uint8 HxWx3 RGB frame) until the end of the file."""
        try:
            for frame in self._container.decode(self._stream):
                t = float(frame.time) if frame.time is not None else None
                yield t, frame.to_ndarray(format="rgb24")
        except av.error.FFmpegError as e:
            raise VideoReadError(f"{self.path.name} is corrupt or truncated: {e}") from None

    def seek(self, seconds: float) -> None:
        """Jump to the keyframe at or before ``seconds``."""
        ts = int(max(seconds, 0.0) / float(self._stream.time_base))
        self._container.seek(ts, stream=self._stream, backward=True, any_frame=False)

    def close(self) -> None:
        self._container.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
