"""``main.py serve``: one live engine hosted for a remote client (the app on a laptop, the GPU here).

    python main.py serve --model DIR --device cuda --host 0.0.0.0 --port 8765 --token-file token.txt

Signalling is ``POST /offer`` (JSON ``{"sdp", "type"}``, as in aiortc's examples) with
``Authorization: Bearer <token>``; the answer comes back the same way. Video comes in and goes out over
WebRTC, commands and stats over the "control" data channel (``protocol.py``). One client at a time: a
second one is answered 409 "busy" and the first keeps its stream. A message that cannot be used - not
JSON, too large, a wrong field, an unreadable reference image - is answered with an ``error`` message
to that client and changes nothing; a client that goes quiet is dropped after a few seconds, and
everything its session held (peer connection, tracks, references, queued frames) goes with it.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import hmac
import logging
import os
import resource
import secrets
import signal
import sys
import time
import weakref
from collections import OrderedDict
from pathlib import Path

from aiohttp import web
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from model.style import StyleSpec

from ..engine import EngineEvents, LiveEngine, LoadRequest
from . import protocol as P
from .media import FrameTrack, loopback_only, low_latency_video

log = logging.getLogger(__name__)

MAX_REFERENCES = 8  # uploaded reference images kept per session (least recently used go first)


class RemoteServer(EngineEvents):
    """Owns the engine and at most one ``Session``; receives the engine's callbacks (engine thread)
    and passes them to the session on the event loop."""

    def __init__(self, engine: LiveEngine, base: LoadRequest, token: str, *, heartbeat_timeout: float = 5.0):
        self.engine = engine
        engine.events = self
        self.base = base  # the model folder and device given on the command line
        self.token = token
        self.heartbeat_timeout = heartbeat_timeout
        self.session: Session | None = None
        self.sessions_served = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self._serial = 0
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    # ------------------------------------------------------------------------------- http
    def app(self) -> web.Application:
        app = web.Application(client_max_size=P.MAX_OFFER_BYTES)
        app.router.add_post("/offer", self.offer)
        app.router.add_get("/status", self.status)
        return app

    async def start(self, host: str, port: int) -> None:
        self.loop = asyncio.get_running_loop()
        loopback_only(P.is_loopback(host))
        low_latency_video()
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close("the server is shutting down")
        if self._runner is not None:
            await self._runner.cleanup()

    def authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.token.encode())

    @staticmethod
    def refuse(status: int, message: str) -> web.Response:
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return web.json_response({"error": message}, status=status, headers=headers)

    async def offer(self, request: web.Request) -> web.Response:
        if not self.authorized(request):
            return self.refuse(401, "unauthorized: wrong or missing token")
        if self.session is not None:
            return self.refuse(P.BUSY_STATUS, "busy: another client is using this server; try again when it "
                                              "disconnects")
        try:
            body = await request.json()
        except web.HTTPRequestEntityTooLarge:
            return self.refuse(413, f"the offer is larger than {P.MAX_OFFER_BYTES} bytes")
        except ValueError:
            return self.refuse(400, "the offer must be JSON: {\"sdp\": ..., \"type\": \"offer\"}")
        if not isinstance(body, dict) or body.get("type") != "offer" or not isinstance(body.get("sdp"), str):
            return self.refuse(400, "the offer must be JSON: {\"sdp\": ..., \"type\": \"offer\"}")
        if self.session is not None:  # another offer got in while this one was read
            return self.refuse(P.BUSY_STATUS, "busy: another client is using this server")
        self._serial += 1
        session = Session(self, self._serial)
        self.session = session
        try:
            answer = await session.negotiate(body["sdp"])
        except Exception as e:  # a malformed description: this client gets the reason, the server goes on
            await session.close("negotiation failed")
            return self.refuse(400, f"cannot use this offer: {str(e).splitlines()[0][:200] if str(e) else e!r}")
        self.sessions_served += 1
        return web.json_response({"sdp": answer.sdp, "type": answer.type})

    async def status(self, request: web.Request) -> web.Response:
        if not self.authorized(request):
            return self.refuse(401, "unauthorized: wrong or missing token")
        if request.query.get("gc") == "1":  # a leak check asks for garbage to be collected first
            gc.collect()
        info = self.engine.model_info
        return web.json_response({
            "protocol": P.PROTOCOL_VERSION, "busy": self.session is not None, "sessions_served": self.sessions_served,
            "sessions_alive": len(Session.alive), "model": info.name if info else None,
            "device_label": info.device_label if info else None, "rss_mib": current_rss_mib(),
            "queued_frames": len(self.engine.frames)})

    # -------------------------------------------------------------------- engine callbacks
    def _to_session(self, method: str, *args) -> None:
        """Run ``session.method(*args)`` on the event loop, if a session is there by then."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return

        def call():
            if self.session is not None:
                getattr(self.session, method)(*args)
        try:
            loop.call_soon_threadsafe(call)
        except RuntimeError:  # the loop closed meanwhile
            pass

    def on_frames(self, frames) -> None:
        self._to_session("deliver", frames)

    def on_style_applied(self, change) -> None:
        self._to_session("style_applied", change)

    def on_style_failed(self, message: str) -> None:
        self._to_session("send", {"type": "style_failed", "message": message})

    def on_error(self, kind: str, message: str) -> None:
        self._to_session("send", {"type": "error", "kind": kind, "message": message})

    def on_halted(self, halted: bool) -> None:
        self._to_session("send", {"type": "halted", "value": halted})

    def on_load_progress(self, percent: int, message: str) -> None:
        self._to_session("send", {"type": "load_progress", "percent": percent, "message": message})


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
        self.send({"type": "chunk", "ids": [f.tag[1] for f in mine], "serial": mine[-1].style_serial,
                   "held_ms": [round((now - f.tag[2]) * 1000, 2) for f in mine],
                   "stats": {k: round(v, 2) for k, v in stats.items() if k.endswith("_ms") and isinstance(v, float)}
                   | {"queue_dropped": stats.get("queue_dropped", 0)}})

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


def current_rss_mib() -> float:
    """Resident memory now (not the peak): what a leak makes grow."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
    except (OSError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------------------------ command
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="main.py serve", description="Host the live engine for the app on another "
                                "machine (WebRTC video, one client at a time, bearer token).")
    p.add_argument("--model", help="model folder (default: the embedded model)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for "
                   "every interface, which needs --token-file)")
    p.add_argument("--port", type=int, default=8765, help="TCP port for signalling (default 8765; 0: any free)")
    p.add_argument("--token-file", help="file holding the bearer token clients must send (required unless "
                   "--host is a loopback address, where a random token is made and printed)")
    p.add_argument("--threads", type=int, help="CPU threads for torch when --device is cpu (default: all but one)")
    p.add_argument("--heartbeat-timeout", type=float, default=5.0, help=argparse.SUPPRESS)
    return p


def read_token(path: str | None, host: str) -> tuple[str, bool]:
    """(token, generated). Refuses a non-loopback address without a token file."""
    if path is None:
        if not P.is_loopback(host):
            raise ValueError(f"refusing to listen on {host} without --token-file: anyone who can reach this "
                             "machine could use it")
        return secrets.token_urlsafe(24), True
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except OSError as e:
        raise ValueError(f"cannot read the token file {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ValueError(f"the token file {path} is not text") from None
    if not token or any(c.isspace() for c in token):
        raise ValueError(f"the token file {path} must hold one token (no spaces), it holds "
                         f"{'nothing' if not token else 'several words'}")
    if len(token) < 16:
        print(f"warning: the token in {path} is short ({len(token)} characters); 32 random characters are "
              "better", file=sys.stderr)
    return token, False


async def serve(args, ready=None) -> int:
    token, generated = read_token(args.token_file, args.host)
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be 0 to 65535, got {args.port}")
    engine = LiveEngine()
    base = LoadRequest(folder=Path(args.model) if args.model else None, device=args.device,
                       **({"cpu_threads": args.threads} if args.threads else {}))
    server = RemoteServer(engine, base, token, heartbeat_timeout=args.heartbeat_timeout)
    engine.start()
    try:
        try:
            info = await asyncio.wrap_future(engine.load(base))
        except Exception as e:
            print(f"error: {str(e).splitlines()[0] if str(e) else e!r}", file=sys.stderr)
            return 2
        try:
            await server.start(args.host, args.port)
        except OSError as e:
            print(f"error: cannot listen on {args.host}:{args.port}: {e.strerror or e}", file=sys.stderr)
            return 2
        if generated:
            print(f"token: {token}", flush=True)
        print(f"serving {info.name} on {info.device_label} at http://{args.host}:{server.port} "
              "(one client at a time; Ctrl+C stops)", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):
                pass
        if ready is not None:
            ready(server)
        await stop.wait()
        return 0
    finally:
        await server.close()
        engine.stop()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(serve(args))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
