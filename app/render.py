"""Offline render: every frame of a file through the stylizer into an MP4 (no drops), Qt-free.

Used by ``main.py stylize`` and by the GUI's "Export file..." (which runs it off the GUI thread,
shows progress and an ETA from the callback, and cancels through ``should_cancel``).

- Every input frame gives exactly one output frame, at the source frame's own timestamp (variable
  frame rate sources keep their timing).
- A style schedule switches at the exact frame: frames pushed before a switch are flushed with the
  old style first, so the switch never lands mid-chunk (the paper's style-switching demo).
- Audio passthrough: the source's audio is re-encoded (AAC) alongside, aligned to the video.
- A cancelled render is finalised (a playable file with the frames done so far) and reported as
  ``cancelled``; a write error (disk full) finalises the partial file and raises ``VideoWriteError``.
- The output is never one of the inputs (the video, a reference image) and replaces an existing file
  only when finished or stopped (``outputs.output_path``).
- An input that ends before the frame count its header announces, or stops decoding, is finished as
  far as it goes and reported (``input_short``: frames read and expected, where it ended, why).
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .outputs.layout import Compositor, normalize_layout
from .outputs.mp4 import Mp4Writer
from .outputs.write_errors import VideoWriteError
from .sources.video_file import VideoFileReader, VideoReadError
from .styles import ScheduledStyle, StyleSpec


class RenderCancelled(Exception):
    """Raised by callers that prefer an exception; ``render_file`` itself reports ``cancelled``."""


@dataclass
class RenderResult:
    frames_in: int
    frames_out: int
    seconds: float
    fps: float
    output: Path
    stage_ms: dict
    cancelled: bool = False
    has_audio: bool = False
    audio_note: str | None = None  # why the output has no audio although audio was asked for
    layout: str = "stylized"
    frames_expected: int = 0  # what the input's header announces (0: it does not say)
    input_end: float | None = None  # seconds of input read
    input_duration: float | None = None  # seconds the header announces
    input_error: str | None = None  # why decoding stopped early, when it did

    @property
    def input_short(self) -> bool:
        """The input ended before its header said it would, or could not be decoded to its end."""
        if self.cancelled:
            return False
        return self.input_error is not None or self.frames_in < self.frames_expected - 1  # 1: rounding

    def short_input_note(self) -> str:
        """How much of a truncated or damaged input was read, so a short output is not taken for whole."""
        if self.frames_expected:
            note = f"{self.frames_in} of the {self.frames_expected} frames its header announces were read"
        else:
            note = f"{self.frames_in} frames were read"
        if self.input_end is not None and self.input_duration:
            note += f" (it stops at {self.input_end:.1f} s of {self.input_duration:.1f} s)"
        if self.input_error:
            reason = " ".join(str(self.input_error).split())
            note += f": {reason if len(reason) <= 120 else reason[:119] + '…'}"
        return note


class _Schedule:
    """Style switches by frame number or by time, applied in order at the first frame they are due."""

    def __init__(self, switches, fps: float):
        self.fps = fps
        self.items = sorted(switches, key=lambda s: s.start_frame(fps))

    def due(self, index: int, seconds: float) -> list[StyleSpec]:
        out = []
        while self.items:
            s: ScheduledStyle = self.items[0]
            if s.frame is not None:
                ready = index >= s.frame
            else:
                ready = seconds >= s.seconds - 0.5 / self.fps  # the frame nearest the requested time
            if not ready:
                break
            out.append(self.items.pop(0).style)
        return out


def render_file(stylizer, source: str | Path, output: str | Path, style: StyleSpec,
                switches: list[ScheduledStyle] = (), max_frames: int | None = None,
                progress: Callable[[int, int], None] | None = None,
                should_cancel: Callable[[], bool] | None = None, *, audio: bool = True,
                layout: str = "stylized", crf: int = 18, preset: str = "veryfast") -> RenderResult:
    """Stylize ``source`` into ``output``; the style changes at the scheduled frames.

    ``progress(done, total)`` is called after each input frame (``total`` may be 0 when the file
    does not say how many frames it has). ``layout``: 'stylized' or 'side_by_side' (source | stylized).
    """
    layout = normalize_layout(layout)
    reader = VideoFileReader(source)
    try:
        total = reader.frame_count
        if max_frames:
            total = min(total, max_frames) if total else max_frames
        fps = float(reader.fps)
        schedule = _Schedule(switches, fps)
        style.apply(stylizer)
        stylizer.reset()
        inputs = [("the input video", source)]
        inputs += [(f"the reference image of {s}", s.reference) for s in [style, *[sw.style for sw in switches]]
                   if s.reference is not None]
        writer = Mp4Writer(output, reader.fps, crf=crf, preset=preset,
                           audio_from=source if audio and reader.has_audio else None, inputs=inputs)
    except BaseException:
        reader.close()
        raise
    compositor = Compositor(layout)
    pending: deque = deque()  # (source time, source frame) of frames pushed but not yet stylized
    keep_source = layout != "stylized"
    n_in = n_out = 0
    t0 = time.perf_counter()
    first_t = last_t = None
    cancelled = False
    input_error = None

    def emit(frames) -> None:
        nonlocal n_out
        for out in frames:
            t, src = pending.popleft()
            writer.write(compositor.compose(out, src), timestamp=t, media_time=t)
            n_out += 1

    try:
        with writer:
            try:
                try:
                    for t, frame in reader.frames():
                        if max_frames and n_in >= max_frames:
                            break
                        if should_cancel and should_cancel():
                            cancelled = True
                            break
                        if t is None:
                            t = n_in / fps
                        if first_t is None:
                            first_t = t
                        last_t = t
                        for spec in schedule.due(n_in, t - first_t):
                            emit(stylizer.flush())  # finish the frames before the switch with the old style
                            spec.apply(stylizer)
                        pending.append((t, frame if keep_source else None))
                        emit(stylizer.push(frame))
                        n_in += 1
                        if progress:
                            progress(n_in, total)
                except VideoReadError as e:  # corrupt from some point on: keep what came before, report it
                    if n_in == 0:
                        raise
                    input_error = str(e)
                if not cancelled:
                    emit(stylizer.flush())
            finally:
                reader.close()
    except Exception as e:  # what was rendered is kept (an existing output is not replaced): say where
        kept = writer.final_path
        if kept is not None and not isinstance(e, VideoWriteError):
            e.add_note(f"the {n_out} frames rendered before it are in {kept}")
        raise
    if n_in == 0 and not cancelled:  # no frame reached the writer: no file was created, none replaced
        raise VideoReadError(f"{Path(source).name} has no decodable frames")
    if not cancelled and progress and total != n_in:
        progress(n_in, n_in)
    secs = time.perf_counter() - t0
    stage_ms = stylizer.times.per_frame()
    if cancelled:
        stylizer.reset()  # drop the frames still buffered for the unfinished chunk
    expected = reader.frame_count if not max_frames else min(reader.frame_count, max_frames)
    return RenderResult(n_in, n_out, secs, n_out / secs if secs else 0.0, Path(output), stage_ms,
                        cancelled, writer.has_audio, writer.audio_note, layout, frames_expected=expected,
                        input_end=(last_t - first_t + 1 / fps) if last_t is not None else None,
                        input_duration=reader.duration or (reader.frame_count / fps if reader.frame_count else None),
                        input_error=input_error)
