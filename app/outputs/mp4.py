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
"""
from __future__ import annotations

import dataclasses
import errno
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, Callable

import av
import numpy as np

from .layout import check_frame, even, letterbox
from .output_path import OutputPathError, PartialFile, check_output

TIME_BASE = Fraction(1, 90000)
AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
_MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof"
# BT.601 (what swscale's default RGB -> yuv420p conversion uses), limited range
_BT601, _MPEG_RANGE = 6, 1


@dataclass(frozen=True)
class SavedPart:
    """What a failed write left on disk (the file is cut back to its last whole fragment)."""
    frames: int
    duration: float
    bytes: int
    playable: bool
    path: Path | None = None  # where the saved file is (None when nothing was kept)

    def describe(self) -> str:
        if not self.frames:
            return "nothing could be saved"
        return f"the first {self.frames} frames ({self.duration:.1f} s, {_human_bytes(self.bytes)}) were saved"


class VideoWriteError(RuntimeError):
    """The output could not be written (bad path, disk full, encoder error).

    ``disk_full`` is set for ENOSPC/EDQUOT; ``saved`` describes the finalised partial file when the
    failure happened after writing began.
    """

    def __init__(self, message: str, *, disk_full: bool = False, saved: SavedPart | None = None):
        super().__init__(message)
        self.disk_full = disk_full
        self.saved = saved


class AudioUnavailable(Exception):
    """The audio source has no usable audio stream (the recording goes on without audio)."""


def open_output_file(path: Path) -> BinaryIO:
    """Open the output for writing, unbuffered (each write is one system call)."""
    return open(path, "wb", buffering=0)


class _TrackedFile:
    """The file object PyAV writes through.

    Bytes are held in memory until the writer commits them after a mux call, so each fragment
    reaches the disk in one system call (a process killed mid-fragment is all but impossible), and
    ``size`` is always the end of the last whole fragment. It has no ``close``, so PyAV leaves
    closing (and cutting back after an error) to the writer.
    """

    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self.pos = 0
        self.size = 0  # bytes committed to the file
        self._pending = bytearray()
        self._pending_at = 0  # file offset of the first pending byte

    def write(self, data) -> int:
        if not self._pending:
            self._pending_at = self.pos
        self._pending += data
        self.pos += len(data)
        return len(data)

    def commit(self) -> None:
        """Write the pending bytes (retrying short writes); OSError (ENOSPC...) if the disk refuses."""
        if not self._pending:
            return
        if self.raw.tell() != self._pending_at:
            self.raw.seek(self._pending_at)
        view = memoryview(bytes(self._pending))  # immutable: a failed write cannot pin the buffer
        done = 0
        while done < len(view):
            n = self.raw.write(view[done:])
            if not n:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            done += n
        self.size = max(self.size, self._pending_at + len(self._pending))
        self._pending.clear()

    def seek(self, offset: int, whence: int = 0) -> int:
        self.commit()
        self.pos = self.raw.seek(offset, whence)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def seekable(self) -> bool:
        return True

    def cut(self, size: int) -> None:
        """Drop anything not committed and truncate the file to ``size`` bytes."""
        self._pending.clear()
        self.raw.truncate(size)
        self.size = size

    def release(self) -> None:
        self.raw.close()


class AudioPassthrough:
    """Audio of a source file, decoded, resampled and re-encoded as AAC in step with the video.

    Output time ``t`` (seconds since the first recorded frame) plays source time ``t + offset``.
    The offset is set by the first frame's media time and re-set when the media time jumps (a seek
    or a loop in the source) by more than ``resync`` seconds; past the end of the source, silence.
    """

    resync = 0.25

    def __init__(self, path: str | Path, start: float = 0.0):
        self.path = Path(path)
        try:
            self._in = av.open(str(self.path))
        except (av.error.FFmpegError, OSError, ValueError) as e:
            raise AudioUnavailable(f"cannot open {self.path.name} for its audio: {e}") from None
        if not self._in.streams.audio:
            self._in.close()
            raise AudioUnavailable(f"{self.path.name} has no audio stream")
        self._src = self._in.streams.audio[0]
        ctx = self._src.codec_context
        rate = ctx.sample_rate or 48000
        self.rate = rate if rate in AAC_RATES else 48000
        self.channels = 1 if (ctx.channels or 2) == 1 else 2
        self.layout = "mono" if self.channels == 1 else "stereo"
        self.start = float(start)
        self._offset: int | None = None  # source sample index minus output sample index
        self._written = 0  # output samples handed to the encoder (their index is the frame pts)
        self._out = np.zeros((self.channels, 0), np.float32)  # taken from the source, not yet encoded
        self._buf = np.zeros((self.channels, 0), np.float32)
        self._buf_start = 0  # source sample index of _buf[:, 0]
        self._eof = False
        self._stream = None
        self._reset_decoder(seek_to=None)

    # ----------------------------------------------------------- output side
    def add_stream(self, container) -> None:
        s = container.add_stream("aac", rate=self.rate)
        s.layout = self.layout
        s.format = "fltp"
        s.bit_rate = 128000 if self.channels == 2 else 96000
        s.time_base = Fraction(1, self.rate)
        self._stream = s
        # AAC encoders emit one frame of priming first (packet pts = input pts - frame_size); start
        # the input at pts = frame_size so packets start at 0 with no negative timestamps, and the
        # decoded audio at time t is the source at time t (the first frame is the priming's silence)
        self._written = s.codec_context.frame_size or 1024

    def feed(self, out_time: float, media_time: float | None) -> list:
        """The video frame at ``out_time`` came from ``media_time`` in the source: the audio up to
        ``out_time`` is taken with the mapping so far (the previous frame lasts until this one),
        then the mapping follows a jump, and whole AAC frames are encoded."""
        if media_time is None:
            media_time = self.start + out_time
        offset = round(media_time * self.rate) - round(out_time * self.rate)
        if self._offset is None:
            self._offset = offset
        self._fill(round(out_time * self.rate))
        if abs(offset - self._offset) > self.resync * self.rate:
            self._offset = offset
        return self._encode(final=False)

    def finish(self, out_time: float) -> list:
        """Encode the audio up to the end of the video and flush the encoder."""
        if self._offset is None:
            self._offset = round(self.start * self.rate)
        self._fill(round(out_time * self.rate))
        return self._encode(final=True) + self._stream.encode(None)

    def close(self) -> None:
        self._in.close()

    def _fill(self, end: int) -> None:
        """Take source audio for output samples up to ``end`` (index = encoder pts) into the queue."""
        filled = self._written + self._out.shape[1]
        if end > filled:
            self._out = np.concatenate([self._out, self._read(filled + self._offset, end - filled)], axis=1)

    def _encode(self, final: bool) -> list:
        packets = []
        frame_size = self._stream.codec_context.frame_size or 1024
        while self._out.shape[1] >= frame_size or (final and self._out.shape[1]):
            samples, self._out = self._out[:, :frame_size], self._out[:, frame_size:]
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples), format="fltp", layout=self.layout)
            frame.sample_rate = self.rate
            frame.pts, frame.time_base = self._written, Fraction(1, self.rate)
            packets += self._stream.encode(frame)
            self._written += samples.shape[1]
        return packets

    # ------------------------------------------------------------ input side
    def _reset_decoder(self, seek_to: int | None) -> None:
        """Decode from the start, or from a little before source sample ``seek_to``: the first AAC/MP3
        frame after a seek lacks its overlap and comes out wrong, so it must fall before the target."""
        preroll = 0.2
        if seek_to is not None and seek_to / self.rate < 2 * preroll:
            # near the start, reopen: the demuxer then also handles the encoder priming properly
            self._in.close()
            self._in = av.open(str(self.path))
            self._src = self._in.streams.audio[0]
        elif seek_to is not None:
            seconds = seek_to / self.rate - preroll
            try:
                self._in.seek(int(seconds / self._src.time_base), stream=self._src, backward=True)
            except av.error.FFmpegError:
                self._in.seek(0, stream=self._src)
            self._src.codec_context.flush_buffers()
        self._packets = self._in.demux(self._src)
        self._resampler = av.AudioResampler(format="fltp", layout=self.layout, rate=self.rate)
        self._buf = np.zeros((self.channels, 0), np.float32)
        self._buf_start = None
        self._eof = False

    def _decode_more(self) -> bool:
        """Append the next decoded chunk to the buffer; False at the end of the source."""
        while not self._eof:
            try:
                packet = next(self._packets)
                frames = packet.decode()  # the final empty packet drains the decoder
            except StopIteration:
                self._eof = True
                return False
            except av.error.FFmpegError:
                continue  # a damaged audio packet: skip it, the gap is closed below
            got = False
            for frame in frames:
                start = round(frame.time * self.rate) if frame.time is not None else None
                for rf in self._resampler.resample(frame):
                    data = rf.to_ndarray().astype(np.float32, copy=False).reshape(self.channels, -1)
                    if self._buf_start is None:
                        self._buf_start = start if start is not None else 0
                    elif start is not None:
                        gap = start - (self._buf_start + self._buf.shape[1])
                        if gap > self.rate // 50:  # a hole in the source audio: keep time with silence
                            self._buf = np.concatenate([self._buf, np.zeros((self.channels, gap), np.float32)], 1)
                    start = None
                    self._buf = np.concatenate([self._buf, data], axis=1)
                    got = True
            if got:
                return True
        return False

    def _read(self, first: int, n: int) -> np.ndarray:
        """Source samples [first, first + n) at the output rate and layout; silence where there are none."""
        out = np.zeros((self.channels, n), np.float32)
        if first + n <= 0:
            return out
        if self._buf_start is not None and (first < self._buf_start - self.rate // 100 or
                                            first > self._buf_start + self._buf.shape[1] + 2 * self.rate):
            self._reset_decoder(seek_to=first)
        elif self._buf_start is None and first > 2 * self.rate:
            self._reset_decoder(seek_to=first)
        while (self._buf_start is None or self._buf_start + self._buf.shape[1] < first + n) and self._decode_more():
            pass
        if self._buf_start is None:
            return out
        lo, hi = max(first, self._buf_start), min(first + n, self._buf_start + self._buf.shape[1])
        if hi > lo:
            out[:, lo - first: hi - first] = self._buf[:, lo - self._buf_start: hi - self._buf_start]
        keep_from = max(0, first + n - self._buf_start - self.rate)  # keep one second behind for small jitter
        if keep_from:
            self._buf = self._buf[:, keep_from:]
            self._buf_start += keep_from
        return out


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
        self._file: _TrackedFile | None = None
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
            self._file = _TrackedFile(self._opener(self._partial.path))
        except OSError as e:
            self._discard()
            raise VideoWriteError(f"cannot create {self.path}: {e.strerror or e}",
                                  disk_full=_is_disk_full(e)) from None
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
                                         f"{self.path.name}: {_reason(e)}")
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
        full = _is_disk_full(exc)
        saved = self._salvage(failed=True)
        reason = "the disk is full" if full else f"{stage} failed ({_reason(exc)})"
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


def probe_saved(path: str | Path) -> SavedPart:
    """Count the video frames a (possibly partial) MP4 holds and how long they last, without decoding."""
    path = Path(path)
    size = path.stat().st_size if path.exists() else 0
    frames, end = 0, 0.0
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                return SavedPart(0, 0.0, size, False)
            s = c.streams.video[0]
            try:
                for p in c.demux(s):
                    if p.size == 0 or p.pts is None:
                        continue
                    frames += 1
                    end = max(end, float((p.pts + (p.duration or 0)) * p.time_base))
            except av.error.FFmpegError:
                pass  # a damaged tail: what came before it counts
    except (av.error.FFmpegError, OSError):
        return SavedPart(0, 0.0, size, False)
    return SavedPart(frames, end, size, frames > 0)


def _is_disk_full(exc: BaseException) -> bool:
    return getattr(exc, "errno", None) in (errno.ENOSPC, getattr(errno, "EDQUOT", -1), errno.EFBIG)


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or exc.__class__.__name__


def _human_bytes(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"
