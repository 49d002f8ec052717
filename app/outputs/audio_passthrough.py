"""Audio passthrough: the sound of a source file, re-encoded as AAC in step with recorded video.

Kept apart from the MP4 writer because it is the input side (decoding, seeking, resampling and
keeping time with the video's ``media_time``); the writer only hands it a stream to fill.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)


class AudioUnavailable(Exception):
    """The audio source has no usable audio stream (the recording goes on without audio)."""


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
