"""H.264 MP4 writer on PyAV (no Qt; shared by the CLI export and the GUI recorder).

Output is yuv420p with even dimensions so it plays everywhere, and is written as fragmented MP4
(a fragment per keyframe interval) so that a file whose writer was killed still plays up to the last
flushed fragment. Frames may carry their own timestamps (live capture) or follow a fixed rate.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


class VideoWriteError(RuntimeError):
    """The output could not be written (bad path, disk full, encoder error)."""


class Mp4Writer:
    def __init__(self, path: str | Path, fps: float | Fraction, size: tuple[int, int] | None = None,
                 crf: int = 20, preset: str = "veryfast", fragment_seconds: float = 1.0):
        self.path = Path(path)
        if self.path.parent and not self.path.parent.exists():
            raise VideoWriteError(f"output folder does not exist: {self.path.parent}")
        self.fps = Fraction(fps).limit_denominator(1001) if not isinstance(fps, Fraction) else fps
        self.size = size  # (width, height); taken from the first frame when None
        self.crf, self.preset = crf, preset
        self.fragment_seconds = fragment_seconds
        self.frames_written = 0
        self._container = None
        self._stream = None
        self._last_pts = -1
        self.time_base = Fraction(1, 90000)

    def _open(self, width: int, height: int) -> None:
        width, height = width - width % 2, height - height % 2
        self.size = (width, height)
        gop = max(1, round(float(self.fps) * self.fragment_seconds))
        try:
            self._container = av.open(str(self.path), mode="w", format="mp4", options={
                "movflags": "frag_keyframe+empty_moov+default_base_moof"})
            s = self._container.add_stream("libx264", rate=self.fps)
        except (av.error.FFmpegError, OSError) as e:
            raise VideoWriteError(f"cannot create {self.path}: {e}") from None
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.time_base = self.time_base
        s.codec_context.gop_size = gop
        s.options = {"crf": str(self.crf), "preset": self.preset, "g": str(gop), "keyint_min": str(gop),
                     "sc_threshold": "0"}
        self._stream = s

    def write(self, frame: np.ndarray, timestamp: float | None = None) -> None:
        """Append a uint8 HxWx3 RGB frame; ``timestamp`` (seconds from the start) for variable rates."""
        if self._container is None:
            w, h = self.size or (frame.shape[1], frame.shape[0])
            self._open(w, h)
        w, h = self.size
        if frame.shape[1] != w or frame.shape[0] != h:
            frame = _fit(frame, w, h)
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        if timestamp is None:
            pts = round(self.frames_written / self.fps / self.time_base)
        else:
            pts = round(timestamp / self.time_base)
        pts = max(pts, self._last_pts + 1)
        vf.pts, vf.time_base = pts, self.time_base
        self._last_pts = pts
        self._encode(vf)
        self.frames_written += 1

    def _encode(self, vf) -> None:
        try:
            for packet in self._stream.encode(vf):
                self._container.mux(packet)
        except (av.error.FFmpegError, OSError) as e:
            raise VideoWriteError(f"writing {self.path.name} failed: {e}") from None

    def close(self) -> None:
        """Flush the encoder and finalise the file (safe to call twice)."""
        if self._container is None:
            return
        try:
            self._encode(None)
        finally:
            container, self._container = self._container, None
            try:
                container.close()
            except (av.error.FFmpegError, OSError) as e:
                raise VideoWriteError(f"finalising {self.path.name} failed: {e}") from None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _fit(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    import cv2

    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
