"""Live recording to MP4 on its own thread (plain threading, no Qt).

The engine (or the GUI) hands each result to ``submit``, which never blocks: frames go into a
bounded queue and a writer thread composes (stylized only, or source | stylized side by side),
encodes (H.264, zero-latency) and muxes them with their real capture timestamps, so a variable live
frame rate plays back at the right speed. When the encoder cannot keep up the queue fills and
``submit`` drops the frame and returns False (``dropped`` counts them, ``behind`` says so) rather
than stalling capture. The MP4 is fragmented and a fragment is flushed at least every second of
video, so a crash loses at most about a second; a disk-full error stops the recording, finalises
the file at its last whole fragment and reports what was saved. The recording is written to a
partial file beside the target (``NAME.xxxxxx.partial.mp4``) that becomes the target when the
recording stops, so an existing file is never half-overwritten and a source file is never the output.

Usage::

    rec = Recorder("take1.mp4", layout="side_by_side", fps_hint=30, audio_source=None, on_error=print)
    rec.start()
    rec.submit(stylized_rgb, source_rgb, capture_time)   # from the engine thread, per result
    summary = rec.stop()                                  # drains the queue, finalises the file

``on_error(message)`` is called on the recorder thread; a Qt GUI forwards it with a queued signal.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .audio_passthrough import AudioPassthrough, AudioUnavailable
from .layout import Compositor, check_frame, normalize_layout
from .mp4 import Mp4Writer
from .output_path import OutputPathError, check_output
from .write_errors import VideoWriteError


@dataclass
class RecordingSummary:
    path: Path
    frames: int  # frames in the finished file
    dropped: int  # frames refused because the encoder was behind
    duration: float  # seconds of video in the file
    error: str | None = None  # why the recording stopped early (the file still plays up to there)
    has_audio: bool = False
    bytes: int = 0
    audio_note: str | None = None  # why there is no audio when an audio source was given


class Recorder:
    """Record (stylized, source) frames to an MP4 on a background thread (see the module docstring).

    ``audio_source``: a video/audio file whose audio is passed through (when the live source is a
    file), optionally as ``(path, start_seconds)``; pass each frame's position in that file as
    ``submit(..., media_time=...)`` to keep the audio aligned across seeks and loops.
    ``inputs``: (what, path) pairs the recording must not overwrite, e.g. ("the source video", path).
    """

    def __init__(self, path: str | Path, layout: str = "stylized", fps_hint: float = 30.0,
                 audio_source: str | Path | tuple | None = None,
                 on_error: Callable[[str], None] | None = None, *, size: tuple[int, int] | None = None,
                 queue_seconds: float = 1.0, crf: int = 21, preset: str = "superfast",
                 fragment_seconds: float = 1.0, opener=None, inputs=()):
        self.path = Path(path)
        self.layout = normalize_layout(layout)
        if not fps_hint or fps_hint <= 0:
            raise ValueError(f"fps_hint must be positive, got {fps_hint}")
        self.fps_hint = float(fps_hint)
        self.audio_source = audio_source
        self.on_error = on_error
        self.size = size
        if audio_source is not None:
            audio_path = audio_source[0] if isinstance(audio_source, tuple) else audio_source
            inputs = [*inputs, ("the audio source", audio_path)]
        self.inputs = list(inputs)
        self._writer_args = dict(crf=crf, preset=preset, fragment_seconds=fragment_seconds, opener=opener,
                                 inputs=self.inputs)
        self._queue: queue.Queue = queue.Queue(maxsize=max(4, round(self.fps_hint * queue_seconds)))
        self._lock = threading.Lock()
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._accepting = False
        self._last_drop = -1e9
        self._summary: RecordingSummary | None = None
        self._writer: Mp4Writer | None = None
        self.frames_written = 0
        self.dropped = 0
        self.error: str | None = None
        self.audio_note: str | None = None

    # ------------------------------------------------------------- control
    def start(self) -> None:
        """Check the destination and start the writer thread (returns at once)."""
        if self._thread is not None:
            raise RuntimeError("this recorder was already started; make a new one per recording")
        try:
            check_output(self.path, self.inputs)
        except OutputPathError as e:
            raise VideoWriteError(str(e)) from None
        self._accepting = True
        self._thread = threading.Thread(target=self._run, name=f"Recorder({self.path.name})", daemon=True)
        self._thread.start()

    def submit(self, stylized: np.ndarray, source: np.ndarray | None, timestamp: float,
               media_time: float | None = None) -> bool:
        """Queue one frame; never blocks. False when it was not taken (encoder behind, stopped, failed).

        The arrays are kept by reference until written: do not modify them afterwards.
        """
        if not self._accepting:
            return False
        check_frame(stylized, "the stylized frame")
        if source is not None:
            check_frame(source, "the source frame")
        try:
            self._queue.put_nowait((stylized, source, float(timestamp), media_time))
            return True
        except queue.Full:
            with self._lock:
                self.dropped += 1
                self._last_drop = time.monotonic()
            return False

    def stop(self, timeout: float | None = None) -> RecordingSummary:
        """Stop taking frames, write what is queued, finalise the file and summarise."""
        self._accepting = False
        if self._thread is None:
            return RecordingSummary(self.path, 0, self.dropped, 0.0, self.error)
        self._stop_event.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"the recorder did not finish within {timeout} s")
        return self._summary

    # -------------------------------------------------------------- status
    @property
    def behind(self) -> bool:
        """True while the encoder is falling behind (queue over half full, or a drop in the last 2 s)."""
        if not self._accepting:
            return False
        return (self._queue.qsize() * 2 >= self._queue.maxsize
                or time.monotonic() - self._last_drop < 2.0)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    @property
    def duration(self) -> float:
        w = self._writer
        return w.duration if w is not None else 0.0

    @property
    def partial_path(self) -> Path | None:
        """The file being written now (it becomes ``path`` when the recording stops)."""
        w = self._writer
        return w.partial_path if w is not None else None

    # -------------------------------------------------------------- thread
    def _run(self) -> None:
        writer = None
        try:
            audio = self._open_audio()
            try:
                writer = self._writer = Mp4Writer(self.path, self.fps_hint, self.size, live=True,
                                                  audio_from=audio, **self._writer_args)
            except BaseException:
                if audio is not None:
                    audio.close()
                raise
            compositor = Compositor(self.layout, self.size)
            while True:
                try:
                    stylized, source, ts, media_time = self._queue.get(timeout=0.05)
                except queue.Empty:
                    if self._stop_event.is_set():
                        break
                    continue
                frame = compositor.compose(stylized, source)
                writer.write(frame, timestamp=ts, media_time=media_time)
                self.frames_written += 1
            writer.close()
        except VideoWriteError as e:
            self._failed(str(e))
        except Exception as e:  # a bug must not leave a corrupt file or a silent thread
            if writer is not None:
                writer.abort()
            self._failed(f"recording stopped: {e.__class__.__name__}: {e}")
        finally:
            self._accepting = False
            self._drain()
            self._summary = self._summarise(writer)

    def _open_audio(self) -> AudioPassthrough | None:
        if self.audio_source is None:
            return None
        path, start = (self.audio_source if isinstance(self.audio_source, tuple) else (self.audio_source, 0.0))
        try:
            return AudioPassthrough(path, start)
        except AudioUnavailable as e:
            self.audio_note = str(e)
            return None

    def _failed(self, message: str) -> None:
        self._accepting = False
        self.error = message
        if self.on_error is not None:
            try:
                self.on_error(message)
            except Exception:
                pass  # the callback's own failure must not hide the recording error

    def _drain(self) -> None:
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return

    def _summarise(self, writer: Mp4Writer | None) -> RecordingSummary:
        if writer is None:
            return RecordingSummary(self.path, 0, self.dropped, 0.0, self.error, audio_note=self.audio_note)
        path = writer.final_path or self.path  # a failed recording may stay beside an existing file
        if writer.saved is not None:
            saved = writer.saved
            frames, duration, size = saved.frames, saved.duration, saved.bytes
        else:
            frames, duration = writer.frames_written, writer.duration
            size = path.stat().st_size if path.exists() else 0
        return RecordingSummary(path, frames, self.dropped, duration, self.error, writer.has_audio, size,
                                self.audio_note or writer.audio_note)
