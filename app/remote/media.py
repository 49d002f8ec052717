"""Media pieces shared by server and client: an outgoing video track fed from numpy frames, the
loopback switch for ICE, and a receiver that hands on a video frame as soon as it is complete.

``FrameTrack`` hands aiortc whatever frame was queued next, newest first when it falls behind
(drop-oldest, like the engine's queue), each stamped with its frame id. ``loopback_only``: aioice
never offers 127.0.0.1 as a candidate, so two peers on one machine talk over its network interface,
and a machine with no interface but loopback cannot connect at all; when signalling runs on a
loopback address, both sides offer 127.0.0.1 only, and media stays on the loopback interface too.

``low_latency_video``: aiortc's video jitter buffer releases a frame only once a packet of the *next*
frame arrives. For a camera at 30 frames/s that costs 33 ms; for stylized frames, which come back in
bursts of one chunk, it holds the last frame of every chunk until the next chunk is sent - a whole
chunk time. The marker bit of RTP (which aiortc's sender sets on a frame's last packet) says when a
frame is complete; a buffer that also listens to it releases frames at once.

``lean_vp8``: aiortc's VP8 encoder asks libvpx for its temporal denoiser (noise-sensitivity 4), which
is meant for a noisy camera sent as is. Our frames are either the camera's, about to be stylized (the
model sees a 1/16 latent and its own detail layer), or the model's output, which has no sensor noise.
Without it a 640x360 frame encodes in 3.6 ms instead of 5.4, at 40.3 dB against 38.7 at the same
bit rate (one core, a real clip): less work on machines that also run the model.
"""
from __future__ import annotations

import asyncio
import multiprocessing
from collections import deque

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc import jitterbuffer as _jitterbuffer
from aiortc import rtcrtpreceiver as _receiver
from aiortc import rtcrtpsender as _sender
from aiortc.codecs.vpx import Vp8Encoder, number_of_threads
from aiortc.mediastreams import MediaStreamError

from .protocol import TIME_BASE, frame_pts

_loopback = {"on": False}


def loopback_only(enabled: bool) -> None:
    """Offer only 127.0.0.1 as an ICE host candidate from now on (both peers on this machine)."""
    _install_candidate_filter()
    _loopback["on"] = bool(enabled)


def _install_candidate_filter() -> None:
    from aioice import ice

    if getattr(ice.get_host_addresses, "_rtr_filter", False):
        return
    original = ice.get_host_addresses

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        if _loopback["on"]:
            return ["127.0.0.1"]
        return original(use_ipv4=use_ipv4, use_ipv6=use_ipv6)

    host_addresses._rtr_filter = True
    ice.get_host_addresses = host_addresses


class MarkerJitterBuffer(_jitterbuffer.JitterBuffer):
    """aiortc's jitter buffer, plus: a video frame whose packets are all in, up to the one carrying the
    marker bit, is released at once instead of when the next frame starts."""

    def _remove_frame(self, sequence_number: int):
        frame = super()._remove_frame(sequence_number)
        if frame is not None or not self._is_video or self._origin is None:
            return frame
        packets = []
        for count in range(self.capacity):
            packet = self._packets[(self._origin + count) % self._capacity]
            if packet is None or (packets and packet.timestamp != packets[0].timestamp):
                return None
            packets.append(packet)
            if packet.marker:
                self.remove(count + 1)
                return _jitterbuffer.JitterFrame(data=b"".join(p._data for p in packets),
                                                 timestamp=packet.timestamp)
        return None


def low_latency_video() -> bool:
    """Make aiortc's receivers use ``MarkerJitterBuffer`` (idempotent). False if this aiortc's buffer
    does not look like the one this was written against (frames then arrive one frame later)."""
    base = _jitterbuffer.JitterBuffer
    if _receiver.JitterBuffer is MarkerJitterBuffer:
        return True
    probe = base(capacity=4, is_video=True)
    if not all(hasattr(probe, a) for a in ("_origin", "_packets", "_capacity", "_is_video", "remove")):
        return False
    _receiver.JitterBuffer = MarkerJitterBuffer
    return True


class LeanVp8Encoder(Vp8Encoder):
    """aiortc's VP8 encoder, opened with the same WebRTC rate control but without the denoiser."""

    def encode(self, frame, force_keyframe: bool = False):
        c = self.codec
        if (c is None or (frame.width, frame.height) != (c.width, c.height)
                or abs(self.target_bitrate - c.bit_rate) > 0.1 * c.bit_rate):
            self.codec = self._open(frame.width, frame.height)
        return super().encode(frame, force_keyframe)

    def _open(self, width: int, height: int):
        rate = str(self.target_bitrate)
        c = av.CodecContext.create("libvpx", "w")
        c.width, c.height, c.bit_rate, c.pix_fmt = width, height, self.target_bitrate, "yuv420p"
        c.gop_size, c.qmin, c.qmax = 3000, 2, 56
        self.opened_with = {"bufsize": rate, "minrate": rate, "maxrate": rate, "cpu-used": "-6",
                            "deadline": "realtime", "lag-in-frames": "0", "noise-sensitivity": "0",
                            "overshoot-pct": "15", "partitions": "0", "static-thresh": "1", "undershoot-pct": "100"}
        c.options = dict(self.opened_with)  # libvpx consumes the dict it is given
        c.thread_count = number_of_threads(width * height, multiprocessing.cpu_count())
        return c


def lean_vp8() -> None:
    """Make aiortc's senders encode VP8 with ``LeanVp8Encoder`` (idempotent)."""
    original = _sender.get_encoder
    if getattr(original, "_rtr_lean", False):
        return

    def get_encoder(codec):
        return LeanVp8Encoder() if codec.mimeType.lower() == "video/vp8" else original(codec)

    get_encoder._rtr_lean = True
    _sender.get_encoder = get_encoder


def to_video_frame(image: np.ndarray, fid: int) -> av.VideoFrame:
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
    frame.pts = frame_pts(fid)
    frame.time_base = TIME_BASE
    return frame


class FrameTrack(MediaStreamTrack):
    """A video track that sends queued (frame id, image) pairs; at most ``maxsize`` wait, the oldest
    giving way. ``on_sent(fid)`` is called as each frame leaves for the encoder."""

    kind = "video"

    def __init__(self, maxsize: int = 8, on_sent=None):
        super().__init__()
        self._items: deque = deque()
        self._maxsize = maxsize
        self._ready = asyncio.Event()
        self.on_sent = on_sent or (lambda fid: None)
        self.first_id: int | None = None
        self.sent = 0
        self.dropped = 0

    def put(self, fid: int, image: np.ndarray) -> None:
        """Queue a frame (call on the event loop's thread)."""
        while len(self._items) >= self._maxsize:
            self._items.popleft()
            self.dropped += 1
        self._items.append((fid, image))
        self._ready.set()

    def wake(self) -> None:
        self._ready.set()

    async def next_item(self):
        while not self._items:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    async def recv(self) -> av.VideoFrame:
        fid, image = await self.next_item()
        if self.first_id is None:
            self.first_id = fid
        self.sent += 1
        self.on_sent(fid)
        return to_video_frame(image, fid)

    def stop(self) -> None:
        super().stop()
        self._items.clear()
        self._ready.set()
