"""Video-file playback as a live source: decodes on its own thread at the file's frame rate.

Play, pause, seek and "loop or stop at the end" are requests the playback thread picks up between
frames, so the caller (the GUI) never waits on the decoder. When decoding falls behind real time the
schedule is reset instead of bursting frames to catch up. No Qt here.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

from .base import ErrorCallback, FrameSink, FrameSource, SourceError, SourceInfo, StateCallback
from .video_file import VideoFileReader, VideoReadError

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"}


class FileSource(FrameSource):
    kind = "file"

    def __init__(self, path: str | Path, sink: FrameSink, on_error: ErrorCallback | None = None,
                 on_state: StateCallback | None = None, loop: bool = True, start_paused: bool = False):
        super().__init__(sink, on_error, on_state)
        self.path = Path(path)
        try:
            self._reader = VideoFileReader(self.path)
        except VideoReadError as e:
            raise SourceError(str(e)) from None
        self.loop = loop
        self.fps = float(self._reader.fps) or 30.0
        self.duration = self._reader.duration or (
            self._reader.frame_count / self.fps if self._reader.frame_count else 0.0)
        self.width, self.height = self._reader.width, self._reader.height
        self.has_audio = self._reader.has_audio
        self.position = 0.0  # seconds, presentation time of the last delivered frame
        self.loops = 0
        self.at_end = False
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._paused = start_paused
        self._seek_to: float | None = None

    @classmethod
    def available(cls) -> tuple[bool, str]:
        try:
            import av  # noqa: F401
        except ImportError:
            return False, "video files need PyAV (pip install av)"
        return True, ""

    @property
    def info(self) -> SourceInfo:
        return SourceInfo("file", self.path.name, str(self.path), detail=str(self.path))

    @property
    def nominal_fps(self) -> float:
        return self.fps

    # -------------------------------------------------------------- control
    @property
    def playing(self) -> bool:
        return not self._paused

    def play(self) -> None:
        with self._lock:
            if self.at_end:
                self._seek_to = 0.0
            self._paused = False
        self._wake.set()
        self.on_state("playing")

    def pause(self) -> None:
        with self._lock:
            self._paused = True
        self._wake.set()
        self.on_state("paused")

    def toggle(self) -> None:
        self.pause() if self.playing else self.play()

    def seek(self, seconds: float) -> None:
        """Show the frame at ``seconds`` next (also while paused)."""
        if self.duration:
            seconds = min(max(seconds, 0.0), self.duration)
        with self._lock:
            self._seek_to = max(seconds, 0.0)
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        super().stop(timeout)
        if not self.running:
            self._reader.close()

    # ----------------------------------------------------------- the thread
    def _run(self) -> None:
        reader = self._reader
        dt = 1.0 / self.fps
        frames = reader.frames()
        due = time.perf_counter()
        while not self._stop.is_set():
            with self._lock:
                seek, self._seek_to = self._seek_to, None
                paused = self._paused
            if seek is not None:
                frames = self._seek(reader, seek)
                if frames is None:
                    return
                due = time.perf_counter() + dt
                continue
            if paused:
                self._wake.wait(0.1)
                self._wake.clear()
                due = time.perf_counter()
                continue
            try:
                t, frame = next(frames)
            except StopIteration:
                if self.loop:
                    reader.seek(0.0)
                    frames = reader.frames()
                    self.loops += 1
                    self.on_state("looped")
                    continue
                with self._lock:
                    self.at_end, self._paused = True, True
                self.on_state("ended")
                continue
            except VideoReadError as e:
                self._fail(str(e))
                return
            delay = due - time.perf_counter()
            if delay > 0:
                if self._wake.wait(delay):  # interrupted by a control request: re-check it first
                    self._wake.clear()
                    with self._lock:
                        interrupted = self._seek_to is not None or self._paused
                    if self._stop.is_set() or interrupted:
                        continue
                    rest = due - time.perf_counter()
                    if rest > 0:
                        time.sleep(rest)
            self.position = t if t is not None else self.position + dt
            self.at_end = False
            self._deliver(frame, time.perf_counter())
            due += dt
            now = time.perf_counter()
            if now - due > 2 * dt:  # fell behind (slow decode, busy machine): don't burst to catch up
                due = now

    def _seek(self, reader: VideoFileReader, target: float):
        """Seek to the keyframe before ``target``, decode up to it and deliver that frame."""
        try:
            reader.seek(target)
            frames = reader.frames()
            tolerance = 0.5 / self.fps
            last = None
            for t, frame in frames:
                last = (t, frame)
                if t is None or t >= target - tolerance:
                    break
        except VideoReadError as e:
            self._fail(str(e))
            return None
        if last is not None:
            t, frame = last
            self.position = t if t is not None else target
            with self._lock:
                self.at_end = False
            self._deliver(frame, time.perf_counter())
        return frames
