"""H.264 MP4 writer on PyAV (no Qt; shared by the CLI export, the GUI export and the recorder).

- yuv420p with even dimensions, BT.601 tagged, so the file plays everywhere; frames of another size
  are letterboxed into the first frame's size (never stretched).
- Fragmented MP4 (``frag_keyframe+empty_moov+default_base_moof``) with a keyframe forced at least
  every ``fragment_seconds`` of media time, and the output flushed after every packet: the file on
  disk always ends at a whole fragment, so a writer that is killed leaves a file that plays up to
  its last fragment.
- Write errors (disk full, removed drive) finalise the file rather than corrupt it: it is cut back
  to the last whole fragment and the error says how much was saved and where (``VideoWriteError.saved``).
- An existing file is never half-overwritten (``output_path``): the output is checked against the
  inputs before anything is opened, frames go to a partial file beside it, and that file replaces the
  target when it is closed or stopped. After a failure it replaces the target only if there was none;
  otherwise it stays as ``NAME.xxxxxx.partial.mp4`` and the error names it.
- Frames carry real timestamps (seconds, any origin) for variable live frame rates, or follow the
  nominal rate when no timestamp is given.
- Optional audio passthrough: the audio of a source file, decoded and re-encoded as AAC, aligned to
  the recorded video (``media_time`` says where in the source each frame came from).

The writer is this module; the file object it writes through is ``fragment_file``, the audio is
``audio_passthrough``, and what a failure reports (``VideoWriteError``, ``SavedPart``) is ``write_errors``.
"""
from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, Callable

import av
import numpy as np

from .audio_passthrough import AudioPassthrough, AudioUnavailable
from .fragment_file import FragmentFile
from .layout import check_frame, even, letterbox
from .output_path import OutputPathError, PartialFile, check_output
from .write_errors import SavedPart, VideoWriteError, error_reason, is_disk_full, probe_saved

TIME_BASE = Fraction(1, 90000)
_MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof"
# BT.601 (what swscale's default RGB -> yuv420p conversion uses), limited range
_BT601, _MPEG_RANGE = 6, 1


def open_output_file(path: Path) -> BinaryIO:
    """Open the output for writing, unbuffered (each write is one system call)."""
    return open(path, "wb", buffering=0)


class Mp4Writer:
    """Append RGB frames to an H.264 MP4 (see the module docstring).

    ``live`` tunes the encoder for zero latency (a recording in progress); otherwise it favours
    quality per bit (offline export). ``audio_from`` is a file whose audio is passed through, or an
    ``AudioPassthrough``; a source without audio is not an error (``has_audio`` tells).
    """

    def __init__(self, path: str | Path, fps: float | Fraction, size: tuple[int, int] | None = None,
                 crf: int = 20, preset: str = "veryfast", fragment_seconds: float = 1.0, *,
                 live: bool = False, audio_from: str | Path | AudioPassthrough | None = None,
                 opener: Callable[[Path], BinaryIO] | None = None, inputs=()):
        """``inputs``: (what, path) pairs the output must not be, e.g. ("the input video", source)."""
        self.path = Path(path)
        if isinstance(audio_from, (str, Path)):
            inputs = [*inputs, ("the audio source", audio_from)]
        elif isinstance(audio_from, AudioPassthrough):
            inputs = [*inputs, ("the audio source", audio_from.path)]
        try:
            self.target = check_output(self.path, inputs)
        except OutputPathError as e:
            raise VideoWriteError(str(e)) from None
        if not fps or float(fps) <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.fps = Fraction(fps).limit_denominator(1001) if not isinstance(fps, Fraction) else fps
        self.size = (even(size[0]), even(size[1])) if size else None  # (width, height); else the first frame's
        self.crf, self.preset = crf, preset
        self.fragment_seconds = fragment_seconds
        self.live = live
        self.frames_written = 0
        self.time_base = TIME_BASE
        self.audio_note: str | None = None  # why there is no audio, when audio was asked for
        self.error: VideoWriteError | None = None
        self.saved: SavedPart | None = None  # what is on disk after a failure or abort
        self._audio_from = audio_from
        self._audio: AudioPassthrough | None = None
        self._opener = opener or open_output_file
        self._file: FragmentFile | None = None
        self._partial: PartialFile | None = None
        self._container = None
        self._stream = None
        self._closed = False
        self._committed = 0  # bytes on disk that end at a whole fragment
        self._t0: float | None = None
        self._last_pts = -1
        self._last_time = 0.0
        self._last_key_time: float | None = None
        self._frame_dur = 1.0 / float(self.fps)

    # ------------------------------------------------------------ properties
    @property
    def has_audio(self) -> bool:
        return self._audio is not None

    @property
    def duration(self) -> float:
        """Seconds of video written so far (last timestamp plus one frame)."""
        return self._last_time + self._frame_dur if self.frames_written else 0.0

    @property
    def bytes_on_disk(self) -> int:
        return self._committed

    @property
    def partial_path(self) -> Path | None:
        """The file being written (it becomes ``path`` when closed); None before the first frame."""
        return self._partial.path if self._partial is not None else None

    @property
    def final_path(self) -> Path | None:
        """Where the finished (or saved partial) file is: the target, the kept partial file, or None."""
        if self._partial is None:
            return None
        if self._partial.committed:
            return self.path
        return self._partial.path if self._partial.path.exists() else None

    # ----------------------------------------------------------------- open
    def _open(self, width: int, height: int) -> None:
        width, height = even(width), even(height)
        self.size = (width, height)
        if self._audio_from is not None:
            try:
                self._audio = (self._audio_from if isinstance(self._audio_from, AudioPassthrough)
                               else AudioPassthrough(self._audio_from))
            except AudioUnavailable as e:
                self.audio_note = str(e)
        try:
            self._partial = PartialFile(self.target)
            self._file = FragmentFile(self._opener(self._partial.path))
        except OSError as e:
            self._discard()
            raise VideoWriteError(f"cannot create {self.path}: {e.strerror or e}",
                                  disk_full=is_disk_full(e)) from None
        try:
            self._container = av.open(self._file, mode="w", format="mp4",
                                      container_options={"movflags": _MOVFLAGS, "flush_packets": "1"})
            s = self._container.add_stream("libx264", rate=self.fps)
            s.width, s.height, s.pix_fmt = width, height, "yuv420p"
            s.time_base = self.time_base
            cc = s.codec_context
            cc.time_base = self.time_base  # keep real timestamps exact (no rounding to 1/fps)
            cc.colorspace = cc.color_primaries = cc.color_trc = _BT601
            cc.color_range = _MPEG_RANGE
            # keyframes (hence fragments) are forced by time in write(); this is only a backstop
            cap = max(1, round(float(self.fps) * self.fragment_seconds * 2))
            s.options = {"crf": str(self.crf), "preset": self.preset, "g": str(cap), "sc_threshold": "0",
                         "bf": "0"}
            if self.live:
                s.options["tune"] = "zerolatency"
            self._stream = s
            if self._audio is not None:
                self._audio.add_stream(self._container)
        except (av.error.FFmpegError, OSError, ValueError) as e:
            self._discard()
            raise VideoWriteError(f"cannot create {self.path}: {e}") from None

    # ---------------------------------------------------------------- write
    def write(self, frame: np.ndarray, timestamp: float | None = None, media_time: float | None = None) -> None:
        """Append a uint8 HxWx3 RGB frame.

        ``timestamp``: capture time in seconds (any origin; the first frame becomes 0) for variable
        rates; without it frames follow ``fps``. ``media_time``: where the frame is in the audio
        source, for audio passthrough (defaults to the output time).
        """
        if self.error is not None:
            raise self.error
        if self._closed:
            raise VideoWriteError(f"{self.path.name} is already closed")
        check_frame(frame)
        if self._container is None:
            w, h = self.size or (frame.shape[1], frame.shape[0])
            self._open(w, h)
        w, h = self.size
        if frame.shape[1] != w or frame.shape[0] != h:
            frame = letterbox(frame, w, h)
        if timestamp is None:
            t = self.frames_written / float(self.fps)
        else:
            if self._t0 is None:
                self._t0 = float(timestamp)
            t = float(timestamp) - self._t0
        pts = max(round(t / self.time_base), self._last_pts + 1)
        t = float(pts * self.time_base)
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        vf.pts, vf.time_base = pts, self.time_base
        half_frame = 0.5 * self._frame_dur
        if self._last_key_time is None or t - self._last_key_time >= self.fragment_seconds - half_frame:
            vf.pict_type = av.video.frame.PictureType.I
            self._last_key_time = t
        if self.frames_written and timestamp is not None:
            self._frame_dur = min(max(t - self._last_time, 1 / 240), 1.0)
        self._last_pts, self._last_time = pts, t
        self._run(lambda: self._timed(self._stream.encode(vf)))
        if self._audio is not None:
            self._run(lambda: self._audio.feed(t, media_time))
        self.frames_written += 1

    def _timed(self, packets: list) -> list:
        """Give video packets a duration (the recent frame interval), so that the last frame of a
        live recording lasts as long as the ones before it rather than a nominal 1/fps."""
        d = max(1, round(self._frame_dur / self.time_base))
        for p in packets:
            p.duration = d
        return packets

    def _run(self, make_packets) -> None:
        """Encode and mux; on failure finalise what is on disk and raise a VideoWriteError."""
        try:
            packets = make_packets()
            for p in packets:
                self._container.mux(p)
            self._file.commit()
            self._committed = self._file.size
        except (av.error.FFmpegError, OSError) as e:
            self._fail(e)

    # ---------------------------------------------------------------- close
    def close(self, keep_existing: bool = False) -> None:
        """Flush the encoders, finalise the file and put it in place of the target (safe to call twice,
        and after an error). ``keep_existing``: the caller failed, so an existing target is not replaced
        (the finished partial file stays beside it, ``final_path``)."""
        if self._closed or self.error is not None:
            return
        self._closed = True
        if self._container is None:
            if isinstance(self._audio_from, AudioPassthrough):
                self._audio_from.close()  # handed over but never used: no frame came
            return
        self._run(lambda: self._timed(self._stream.encode(None)))
        if self._audio is not None:
            self._run(lambda: self._audio.finish(self.duration))
        try:
            self._container.close()
            self._container = None
            self._file.commit()
            self._committed = self._file.size
        except (av.error.FFmpegError, OSError) as e:
            self._fail(e, stage="finalising")
        self._release()
        if keep_existing and self._partial.target_exists:
            return
        try:
            self._partial.commit()
        except OSError as e:
            self.error = VideoWriteError(f"the video was written to {self._partial.path} but could not replace "
                                         f"{self.path.name}: {error_reason(e)}")
            raise self.error from None

    def abort(self) -> SavedPart | None:
        """Stop without flushing the encoder (after an unexpected error): keep what is on disk (whole
        fragments), placed as after a failed write."""
        if self._closed or self.error is not None:
            return self.saved
        self._closed = True
        if self._container is not None:
            self._salvage(failed=True)
        elif isinstance(self._audio_from, AudioPassthrough):
            self._audio_from.close()
        return self.saved

    def _fail(self, exc: BaseException, stage: str = "writing") -> None:
        full = is_disk_full(exc)
        saved = self._salvage(failed=True)
        reason = "the disk is full" if full else f"{stage} failed ({error_reason(exc)})"
        if saved.frames and saved.path == self.target:
            msg = (f"{reason}: {self.path.name} was finalised and {saved.describe()}; "
                   f"the file plays up to that point")
        elif saved.frames:
            msg = (f"{reason}: {saved.describe()} in {saved.path} (it plays up to that point); "
                   f"the existing {self.path.name} was left as it was")
        else:
            msg = f"{reason}: nothing of {self.path.name} could be saved"
        self.error = VideoWriteError(msg, disk_full=full, saved=saved)
        raise self.error from None

    def _salvage(self, failed: bool) -> SavedPart:
        """Close after a failure or a stop: cut the file back to its last whole fragment, measure it
        and put it in place (the target, unless a failure would replace an existing file)."""
        self._closed = True
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # the trailer cannot be written either; what matters is on disk
                pass
            self._container = None
        size = self._committed
        if self._file is not None:
            try:
                self._file.cut(size)
            except OSError:
                pass
            self._release()
        partial = self._partial
        saved = probe_saved(partial.path) if size and partial is not None else SavedPart(0, 0.0, 0, False)
        if partial is not None:
            if not saved.frames:
                partial.discard()
            else:
                where = partial.path
                if not failed or not partial.target_exists:
                    try:
                        where = partial.commit()
                    except OSError:
                        pass  # it stays where it is, and says so
                saved = dataclasses.replace(saved, path=where)
        self.saved = saved
        return saved

    def _discard(self) -> None:
        if self._container is not None:
            try:
                self._container.close()
            except Exception:
                pass
            self._container = None
        if self._partial is not None:
            self._release()
            self._partial.discard()
        elif self._audio is not None:
            self._audio.close()
        self._closed = True

    def _release(self) -> None:
        if self._file is not None:
            try:
                self._file.release()
            except OSError:
                pass
            self._file = None
        if self._audio is not None:
            self._audio.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            self.close()
        else:  # Ctrl+C stops (what was done replaces the target); another error must not replace a file
            try:
                self.close(keep_existing=not issubclass(exc[0], KeyboardInterrupt))
            except VideoWriteError:
                pass  # the original exception is the one to report
