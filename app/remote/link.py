"""One connection to ``main.py serve`` for ``RemoteEngine``: the peer, its video tracks, the control
channel, and the frames on their way.

``RemoteEngine`` (``client.py``) keeps what outlives a connection - the settings it re-sends, the
reconnect loop, the sinks and events; a ``Link`` is made for each attempt and thrown away when the
connection ends, so nothing of a lost connection (frames in flight, uploaded references) leaks into
the next one.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from model.style import StyleSpec

from ..frames import CapturedFrame, StylizedFrame
from . import protocol as P
from .upload_pacing import UploadPacer

if TYPE_CHECKING:
    from .client import RemoteEngine

log = logging.getLogger(__name__)


# Frames sent and not yet back, at most. By default captured frames are sent as they come, as in a
# video call, paced to what the server's engine can use (``upload_pacing.py``): the server keeps the
# newest ones (drop-oldest) exactly as the local engine does, so the frames it starts a chunk with are
# fresh. A smaller count (``max_in_flight``, which turns pacing off) loses no frame but leaves the
# server with frames that waited a whole chunk - measured: +300 ms at p50 on a CPU.
MAX_PENDING = 120


class RemoteError(RuntimeError):
    """The server said no (wrong token, busy) or could not be reached; the message says which."""


class AuthError(RemoteError):
    pass


class BusyError(RemoteError):
    pass


class Link:
    """One connection attempt and, once up, one connection: peer, tracks, channel, frames in flight."""

    def __init__(self, engine: RemoteEngine):
        self.engine = engine
        self.pc = None
        self.channel = None
        self.track = None
        self.ready = False
        self.device_label: str | None = None
        self.pending: dict[int, tuple[CapturedFrame, float]] = {}  # frame id -> (frame, sent at)
        self.waiting: deque[CapturedFrame] = deque()
        self.next_id = 0
        self.origin: int | None = None
        self.early: deque = deque(maxlen=30)  # frames received before the origin was announced
        self.held: dict[int, float] = {}  # frame id -> ms it spent in the server's engine
        self.uploaded: set[str] = set()
        self.server_dropped = 0
        self.pacer = UploadPacer()
        self.last_heard = time.monotonic()
        self.lost: asyncio.Future | None = None
        self.tasks: set[asyncio.Task] = set()

    # ------------------------------------------------------------------------- connect
    async def connect(self) -> None:
        import aiohttp
        from aiortc import RTCPeerConnection, RTCSessionDescription

        from .media import FrameTrack, lean_vp8, loopback_only, low_latency_video

        eng = self.engine
        loop = asyncio.get_running_loop()
        self.lost = loop.create_future()
        loopback_only(P.is_loopback(eng.host))
        low_latency_video()
        lean_vp8()
        self.pc = RTCPeerConnection()
        self.channel = self.pc.createDataChannel(P.CHANNEL)
        self.track = FrameTrack(maxsize=1)  # the encoder always takes the newest frame
        self.track.on_sent = self._sent
        self.pc.addTrack(self.track)
        opened = loop.create_future()
        self.channel.on("open", lambda: opened.done() or opened.set_result(True))
        self.channel.on("message", self._on_message)
        self.channel.on("close", lambda: self._lose("the server closed the control channel"))
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        offer = {"sdp": self.pc.localDescription.sdp, "type": self.pc.localDescription.type}
        timeout = aiohttp.ClientTimeout(total=eng.connect_timeout_s)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as http:
                async with http.post(eng.url + "/offer", json=offer,
                                     headers={"Authorization": f"Bearer {eng.token}"}) as resp:
                    try:
                        body = await resp.json(content_type=None)
                    except ValueError:
                        body = {}
                    if not isinstance(body, dict):
                        body = {}
                    if resp.status == 401:
                        raise AuthError(body.get("error") or "the server refused the token")
                    if resp.status == P.BUSY_STATUS:
                        raise BusyError(body.get("error") or "busy: another client is connected")
                    if resp.status != 200 or not isinstance(body.get("sdp"), str):
                        raise RemoteError(body.get("error") or f"the server answered HTTP {resp.status}")
        except aiohttp.ClientError as e:
            raise RemoteError(f"{e.__class__.__name__}: {e}") from None
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=body["sdp"], type=body.get("type", "answer")))
        try:
            await asyncio.wait_for(opened, eng.connect_timeout_s)
        except asyncio.TimeoutError:
            raise RemoteError("the media connection did not open (is UDP blocked between the machines?)") from None
        self.ready = True
        self.last_heard = time.monotonic()

    async def run(self) -> str:
        """Heartbeats until the connection is lost or the engine stops; returns why it ended."""
        eng = self.engine
        eng._resend_state()
        while not eng._stopping:
            self.send({"type": "ping", "t": time.perf_counter()})
            self._expire()
            self.pump()
            quiet = time.monotonic() - self.last_heard
            if quiet > eng.silence_s:
                return f"no answer for {quiet:.1f} s"
            try:
                return await asyncio.wait_for(asyncio.shield(self.lost), eng.heartbeat_s)
            except asyncio.TimeoutError:
                pass
            if eng._wake.is_set() and eng._stopping:
                break
        return "stopped"

    async def close(self) -> None:
        self.ready = False
        for task in list(self.tasks):
            task.cancel()
        if self.track is not None:
            self.track.stop()
        if self.pc is not None:
            try:
                await self.pc.close()
            except Exception:
                log.debug("closing the peer connection failed", exc_info=True)
        self.pending.clear()
        self.waiting.clear()
        self.engine.frames.clear()

    def _lose(self, reason: str) -> None:
        if self.lost is not None and not self.lost.done():
            self.lost.set_result(reason)

    def _on_state(self) -> None:
        if self.pc is not None and self.pc.connectionState in ("failed", "closed"):
            self._lose(f"connection {self.pc.connectionState}")

    # --------------------------------------------------------------------------- sending
    def send(self, message: dict) -> None:
        ch = self.channel
        if ch is None or ch.readyState != "open":
            return
        try:
            ch.send(P.encode(message))
        except Exception as e:
            self._lose(f"sending failed: {e}")

    def upload_reference(self, spec: StyleSpec) -> str:
        """Send the reference image once per connection; returns its id. OSError/ValueError: unusable."""
        from model.stylizer import StyleError, load_image

        if spec.image is not None:
            image = np.asarray(spec.image)
        else:
            path = Path(spec.reference)
            if path.is_file() and path.stat().st_size > 4 * P.MAX_REFERENCE_BYTES:
                raise ValueError(f"{path.name} is too large for a reference image "
                                 f"({path.stat().st_size / 2 ** 20:.0f} MiB)")
            try:
                image = load_image(path)
            except StyleError as e:
                raise ValueError(str(e)) from None
        if image.ndim != 3 or image.shape[2] not in (3, 4) or min(image.shape[:2]) < 8:
            raise ValueError(f"the reference image has an unusable shape {image.shape}")
        data = P.encode_reference(np.ascontiguousarray(image[..., :3]).astype(np.uint8, copy=False))
        ref = P.sha256(data)
        if ref not in self.uploaded:
            self.send({"type": "reference", "id": ref, "size": len(data)})
            for i in range(0, len(data), P.REFERENCE_PIECE):
                self.channel.send(data[i: i + P.REFERENCE_PIECE])
            self.uploaded.add(ref)
        return ref

    def limit(self) -> int:
        return self.engine.max_in_flight or MAX_PENDING

    def pump(self) -> None:
        """Move captured frames onto the video track while fewer than ``limit()`` are in flight."""
        if not self.ready or self.track is None:
            return
        frames = self.engine.frames
        while len(self.pending) + len(self.track._items) < self.limit():
            item = frames.get(timeout=0)
            if item is None:
                return
            if self.engine.max_in_flight is None and not self.pacer.admit(item.timestamp):
                continue
            fid = self.next_id
            self.next_id += 1
            self.pending[fid] = (item, 0.0)
            self.track.put(fid, item.image)

    def _sent(self, fid: int) -> None:
        entry = self.pending.get(fid)
        if entry is not None:
            self.pending[fid] = (entry[0], time.perf_counter())
        self.pump()  # the track has room again

    def _expire(self) -> None:
        """Frames the server dropped (its queue keeps the newest) never come back: forget them."""
        cutoff = time.perf_counter() - max(2.0, 2 * self.engine.silence_s)
        for fid in [f for f, (_, sent) in self.pending.items() if sent and sent < cutoff]:
            del self.pending[fid]
            self.server_dropped += 1

    # ------------------------------------------------------------------------- receiving
    def _on_message(self, data) -> None:
        self.last_heard = time.monotonic()
        if not isinstance(data, str):
            return
        try:
            msg = P.decode(data)
        except P.ProtocolError:
            log.warning("unreadable message from the server")
            return
        kind = msg["type"]
        eng = self.engine
        if kind == "pong":
            t = msg.get("t")
            if isinstance(t, (int, float)):
                eng._rtt.append((time.perf_counter() - t) * 1000)
        elif kind == "hello":
            self.device_label = msg.get("device_label")
        elif kind == "origin":
            self.origin = int(msg.get("id", 0))
            while self.early:
                self._frame(self.early.popleft())
        elif kind == "chunk":
            ids, held = msg.get("ids") or [], msg.get("held_ms") or []
            for fid, ms in zip(ids, held):
                self.held[fid] = ms
            while len(self.held) > 256:
                self.held.pop(next(iter(self.held)))
            if isinstance(msg.get("stats"), dict):
                eng._server_stats = msg["stats"]
                if msg.get("ends_chunk"):
                    self._chunk_ended(msg["stats"], msg.get("chunk_frames"))
        else:
            eng._on_message(msg)

    def _chunk_ended(self, stats: dict, chunk_frames) -> None:
        """The server's engine has just taken new frames (half a ping ago); the pacer predicts the next take."""
        eng = self.engine
        rtt, network = list(eng._rtt), list(eng._network)
        half_ping = float(np.median(rtt)) / 2000 if rtt else 0.0
        uplink = float(np.median(network)) / 2000 if network else 0.0  # a frame's way there: about half its trip
        self.pacer.chunk_ended(time.perf_counter() - half_ping, stats, chunk_frames, uplink)

    def _on_track(self, track) -> None:
        if track.kind == "video":
            task = asyncio.ensure_future(self._read_video(track))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _read_video(self, track) -> None:
        from aiortc.mediastreams import MediaStreamError

        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            self.last_heard = time.monotonic()
            if self.origin is None:
                self.early.append(frame)
            else:
                self._frame(frame)

    def _frame(self, frame) -> None:
        fid = P.frame_id(frame.pts, self.origin)
        entry = self.pending.pop(fid, None)
        for old in [f for f in self.pending if f < fid]:  # the server dropped these for newer ones
            del self.pending[old]
            self.server_dropped += 1
        self.pump()
        if entry is None:
            return
        item, sent = entry
        eng = self.engine
        now = time.perf_counter()
        image = frame.to_ndarray(format="rgb24")
        held = self.held.pop(fid, None)
        if sent:
            trip = (now - sent) * 1000
            if held is not None:
                eng._held.append(held)
                eng._network.append(max(0.0, trip - held))
        eng._out_index += 1
        eng._deliver([StylizedFrame(image, item.image, item.timestamp, now, eng._out_index, eng.style_serial,
                                    item.media_time, item.tag)])
