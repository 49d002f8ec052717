"""``main.py serve``: one live engine hosted for a remote client (the app on a laptop, the GPU here).

    python main.py serve --model DIR --device cuda --host 0.0.0.0 --port 8765 --token-file token.txt

Signalling is ``POST /offer`` (JSON ``{"sdp", "type"}``, as in aiortc's examples) with
``Authorization: Bearer <token>``; the answer comes back the same way. Video comes in and goes out over
WebRTC, commands and stats over the "control" data channel (``protocol.py``). One client at a time: a
second one is answered 409 "busy" and the first keeps its stream. A message that cannot be used - not
JSON, too large, a wrong field, an unreadable reference image - is answered with an ``error`` message
to that client and changes nothing; a client that goes quiet is dropped after a few seconds, and
everything its session held (peer connection, tracks, references, queued frames) goes with it.

This module is the HTTP side (signalling, the token, one client at a time, ``/status``) and the
command; what happens on a connection is ``session.py``.
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
from pathlib import Path

from aiohttp import web

from ..engine import EngineEvents, LoadRequest
from . import protocol as P
from .engine_process import EngineProcess
from .media import lean_vp8, loopback_only, low_latency_video
from .session import Session


class RemoteServer(EngineEvents):
    """Owns the engine and at most one ``Session``; receives the engine's callbacks (its reader thread)
    and passes them to the session on the event loop."""

    def __init__(self, engine: EngineProcess, base: LoadRequest, token: str, *, heartbeat_timeout: float = 5.0):
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
        lean_vp8()
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
            "device_label": info.device_label if info else None,
            "rss_mib": current_rss_mib() + (current_rss_mib(self.engine.pid) if self.engine.pid else 0.0),
            "queued_frames": self.engine.queued_frames})

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


def current_rss_mib(pid: int | None = None) -> float:
    """Resident memory now (not the peak) of this process or of ``pid``: what a leak makes grow."""
    try:
        with open(f"/proc/{pid or 'self'}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
    except (OSError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 if pid is None else 0.0


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
    engine = EngineProcess()
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
