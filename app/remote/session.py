"""One connected client of ``main.py serve``: its peer connection, tracks, control channel and uploads.

A ``Session`` turns the client's messages into calls on the server's engine and the engine's output
back into video and messages for that client. Everything the client may send is checked here (a bad
message is answered with an ``error`` and changes nothing), and everything it holds goes when it
closes, so a client that disconnects leaves no peer, track, reference or queued frame behind.
"""
from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import OrderedDict
from typing import TYPE_CHECKING

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from model.style import StyleSpec

from ..engine import LoadRequest
from . import protocol as P
from .media import FrameTrack

if TYPE_CHECKING:
    from .server import RemoteServer

log = logging.getLogger(__name__)

MAX_REFERENCES = 8  # uploaded reference images kept per session (least recently used go first)


class Session:
    """One connected client: its peer connection, tracks, data channel and uploaded references."""

    alive: weakref.WeakSet = weakref.WeakSet()  # sessions not yet garbage (a leak shows here)

    def __init__(self, server: RemoteServer, serial: int):
        self.server = server
        self.engine = server.engine
        self.serial = serial
        self.pc = RTCPeerConnection()
        self.channel = None
        self.out_track = FrameTrack(maxsize=8)
        self.out_track.on_sent = self._first_sent
        self.references: OrderedDict[str, object] = OrderedDict()
        self.upload: dict | None = None
        self.last_heard = time.monotonic()
        self.closed = False
        self.received = 0
        self._loading = False
        self._next_load: P.LoadSettings | None = None
        self._tasks: set[asyncio.Task] = set()
        Session.alive.add(self)
        self.pc.on("datachannel", self._on_channel)
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)

    async def negotiate(self, sdp: str):
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        self._spawn(self._watchdog())
        return self.pc.localDescription

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---------------------------------------------------------------------------- media
    def _on_track(self, track) -> None:
        if track.kind != "video":
            return
        self.pc.addTrack(self.out_track)
        self._spawn(self._read_video(track))

    async def _read_video(self, track) -> None:
        while not self.closed:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            image = frame.to_ndarray(format="rgb24")
            self.received += 1
            now = time.perf_counter()
            self.engine.submit(image, now, tag=(self.serial, P.frame_id(frame.pts), now))

    def deliver(self, frames) -> None:
        """Stylized frames from the engine: out on the video track, their ids and timings on the channel."""
        mine = [f for f in frames if isinstance(f.tag, tuple) and f.tag[0] == self.serial]
        if not mine or self.closed:
            return
        now = time.perf_counter()
        for f in mine:
            self.out_track.put(f.tag[1], f.image)
        stats = self.engine.stats()
        info = self.engine.model_info
        # the engine takes its next frames now: the client paces its uploads by this (upload_pacing.py)
        ends = {"ends_chunk": True, "chunk_frames": info.chunk_size} if mine[-1].ends_chunk and info else {}
        self.send({"type": "chunk", "ids": [f.tag[1] for f in mine], "serial": mine[-1].style_serial,
                   "held_ms": [round((now - f.tag[2]) * 1000, 2) for f in mine],
                   "stats": {k: round(v, 2) for k, v in stats.items() if k.endswith("_ms") and isinstance(v, float)}
                   | {"queue_dropped": stats.get("queue_dropped", 0)}} | ends)

    def _first_sent(self, fid: int) -> None:
        if self.out_track.sent == 1:
            self.send({"type": "origin", "id": fid})

    # ---------------------------------------------------------------------------- channel
    def _on_channel(self, channel) -> None:
        if channel.label != P.CHANNEL or self.channel is not None:
            channel.close()
            return
        self.channel = channel
        channel.on("message", self._on_message)
        channel.on("close", lambda: self._spawn(self.close("the client closed the control channel")))
        info = self.engine.model_info
        self.send({"type": "hello", "protocol": P.PROTOCOL_VERSION,
                   "device_label": info.device_label if info else None, "model": info.name if info else None})

    def send(self, message: dict) -> None:
        ch = self.channel
        if ch is None or ch.readyState != "open" or self.closed:
            return
        try:
            ch.send(P.encode(message))
        except Exception:  # the transport went away between the check and the send
            log.debug("send failed", exc_info=True)

    def error(self, message: str, kind: str = "protocol", **extra) -> None:
        self.send({"type": "error", "kind": kind, "message": message, **extra})

    def _on_message(self, data) -> None:
        self.last_heard = time.monotonic()
        try:
            if isinstance(data, (bytes, bytearray)):
                self._on_piece(bytes(data))
                return
            msg = P.decode(data)
            handler = getattr(self, f"_cmd_{msg['type']}", None)
            if handler is None:
                raise P.ProtocolError(f"unknown message type {msg['type'][:40]!r}")
            handler(msg)
        except P.ProtocolError as e:
            self.error(str(e))
        except Exception as e:  # a bug in a handler must not take the server down
            log.exception("message failed")
            self.error(f"the server could not use this message: {e.__class__.__name__}: {e}", kind="server")

    # --------------------------------------------------------------------------- commands
    def _cmd_ping(self, msg: dict) -> None:
        t = msg.get("t")
        self.send({"type": "pong", "t": t if isinstance(t, (int, float)) and not isinstance(t, bool) else None})

    def _cmd_load(self, msg: dict) -> None:
        settings = P.parse_load(msg)
        info = self.engine.model_info
        if settings.resolution is not None and info is not None:
            check_resolution(settings.resolution, info)
        if self._loading:  # one load at a time: a newer request replaces the one waiting
            if self._next_load is not None:
                self.send({"type": "model_failed", "request": self._next_load.request,
                           "message": "superseded by a newer load request"})
            self._next_load = settings
            return
        self._start_load(settings)

    def _start_load(self, settings: P.LoadSettings) -> None:
        info = self.engine.model_info
        self.engine.set_strength(settings.strength)
        if info is not None and (settings.resolution or info.native_resolution) == info.resolution:
            self.engine.set_speed(settings.speed)  # the model in memory already fits: no reload
            self.engine.reset_stream()
            self.send(P.model_info_message(info, settings.request))
            return
        base = self.server.base
        req = LoadRequest(folder=base.folder, device=base.device, dtype=base.dtype, cpu_threads=base.cpu_threads,
                          resolution=settings.resolution, speed=settings.speed, strength=settings.strength,
                          seed=settings.seed)
        self._loading = True
        fut = self.engine.load(req)
        loop = asyncio.get_running_loop()

        def reply(f) -> None:
            self._loading = False
            if f.exception() is not None:
                self.send({"type": "model_failed", "request": settings.request,
                           "message": str(f.exception()) or f.exception().__class__.__name__})
            else:
                self.send(P.model_info_message(f.result(), settings.request))
            nxt, self._next_load = self._next_load, None
            if nxt is not None and not self.closed:
                self._start_load(nxt)

        fut.add_done_callback(lambda f: loop.call_soon_threadsafe(reply, f))  # done on the engine thread

    def _cmd_style(self, msg: dict) -> None:
        cmd = P.parse_style(msg)
        image = None
        if cmd.reference is not None:
            image = self.references.get(cmd.reference)
            if image is None:
                raise P.ProtocolError("'style': no reference image with this id was uploaded on this connection")
            self.references.move_to_end(cmd.reference)
        spec = StyleSpec(prompt=cmd.prompt, image=image)
        tag = f"#{cmd.request}"
        self.engine.set_style(spec, tag)

    def style_applied(self, change) -> None:
        request = int(change.label[1:]) if change.label.startswith("#") and change.label[1:].isdigit() else None
        self.send(P.style_change_message(change, request))

    def _cmd_reference(self, msg: dict) -> None:
        header = P.parse_reference(msg)
        self.upload = {"id": header.id, "size": header.size, "parts": [], "got": 0}

    def _on_piece(self, data: bytes) -> None:
        up = self.upload
        if up is None:
            raise P.ProtocolError("binary data without a 'reference' header")
        if len(data) > P.MAX_BINARY_MESSAGE or up["got"] + len(data) > up["size"]:
            self.upload = None
            raise P.ProtocolError(f"reference {up['id'][:12]}: more data than announced ({up['size']} bytes)")
        up["parts"].append(data)
        up["got"] += len(data)
        if up["got"] < up["size"]:
            return
        self.upload = None
        blob = b"".join(up["parts"])
        if P.sha256(blob) != up["id"]:
            raise P.ProtocolError(f"reference {up['id'][:12]}: the data does not match its sha256")
        try:
            image = P.decode_reference(blob)
        except P.ProtocolError as e:
            self.error(str(e), kind="reference", id=up["id"])
            return
        self.references[up["id"]] = image
        while len(self.references) > MAX_REFERENCES:
            self.references.popitem(last=False)
        self.send({"type": "reference_ok", "id": up["id"], "width": image.shape[1], "height": image.shape[0]})

    def _cmd_strength(self, msg: dict) -> None:
        self.engine.set_strength(P.parse_value(msg, 0.01, 1.0))

    def _cmd_speed(self, msg: dict) -> None:
        self.engine.set_speed(P.parse_speed(msg))

    def _cmd_steps(self, msg: dict) -> None:
        self.engine.set_steps(P.parse_value(msg, 1, 64, integer=True, optional=True))

    def _cmd_crossfade(self, msg: dict) -> None:
        self.engine.set_crossfade(P.parse_value(msg, 0.0, 10.0))

    def _cmd_reset(self, msg: dict) -> None:
        self.engine.reset_stream()

    def _cmd_resume(self, msg: dict) -> None:
        self.engine.resume()

    # --------------------------------------------------------------------------- lifetime
    def _on_state(self) -> None:
        if self.pc.connectionState in ("failed", "closed"):
            self._spawn(self.close(f"connection {self.pc.connectionState}"))

    async def _watchdog(self) -> None:
        timeout = self.server.heartbeat_timeout
        while not self.closed:
            await asyncio.sleep(min(1.0, timeout / 4))
            if time.monotonic() - self.last_heard > timeout:
                await self.close(f"nothing heard from the client for {timeout:g} s")
                return

    async def close(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        log.info("session %d closed: %s", self.serial, reason)
        if self.server.session is self:
            self.server.session = None
        self.engine.reset_stream()  # frames of this client still queued are dropped
        self.out_track.stop()
        self.references.clear()
        self.upload = None
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        try:
            await self.pc.close()
        except Exception:
            log.debug("closing the peer connection failed", exc_info=True)
        self.channel = None


def check_resolution(resolution: tuple[int, int], info) -> None:
    """A client may pick a working size the model takes, up to twice its own per side (what the app
    offers); more could ask this machine for more memory than it has."""
    (h, w), (nh, nw), (sh, sw) = resolution, info.native_resolution, info.resolution_step
    if h % sh or w % sw or h > 2 * nh or w > 2 * nw:
        raise P.ProtocolError(f"'load': {w}x{h} is not offered by this server: multiples of {sw}x{sh} up to "
                              f"{2 * nw}x{2 * nh} (twice the model's {nw}x{nh})")
