"""A live engine on another machine, with the local engine's surface (``app/engine.py``).

``RemoteEngine`` runs its own asyncio loop on a thread: it connects to ``main.py serve`` (``POST
/offer`` with the bearer token), sends captured frames as WebRTC video and commands on the data
channel, and hands the stylized frames that come back to the sinks and ``EngineEvents.on_frames``
as ``StylizedFrame``s carrying their capture timestamps - so the window, recording and the latency
figures work as they do locally. The settings it was given (model request, style, strength, speed,
cross-fade) are what it re-sends after a reconnect. A connection that goes quiet is reported through
``on_connection("lost", ...)`` and retried with exponential back-off; a wrong token is reported once
(``"failed"``) and not retried.

Captured frames are sent as they come, no faster than the server's engine can use them
(``upload_pacing.py``; at most ``link.MAX_PENDING`` unanswered); the server's engine drops the oldest
when it is behind, as the local engine does, so a slow server or network costs frames, not latency.
``max_in_flight`` caps the frames on their way instead, and paces nothing (tests use it to lose none).
"""
from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from model.speed import SpeedRequest
from model.style import StyleSpec

from ..engine import EngineEvents, LoadRequest, ModelInfo, StyleChange
from ..frames import CapturedFrame, FrameQueue, OutputSinks, StylizedFrame
from . import protocol as P
from .link import AuthError, Link, RemoteError

log = logging.getLogger(__name__)


def parse_url(url: str) -> str:
    """'host:8765' or 'http://host:8765' -> 'http://host:8765'; ValueError when it is not an address."""
    url = (url or "").strip()
    if url and "://" not in url:
        url = "http://" + url
    parts = urlparse(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"the remote engine address must look like http://HOST:PORT, got {url!r}")
    try:
        parts.port
    except ValueError:
        raise ValueError(f"the port in {url!r} is not a number from 0 to 65535") from None
    return url.rstrip("/")


class RemoteEngine:
    """Drives a server's engine; same methods, attributes and callbacks as ``LiveEngine``."""

    def __init__(self, url: str, token: str, events: EngineEvents | None = None, *, heartbeat_s: float = 0.5,
                 silence_s: float = 3.0, backoff_s: tuple[float, float] = (0.5, 8.0), connect_timeout_s: float = 15.0,
                 max_in_flight: int | None = None):
        self.url = parse_url(url)
        self.host = urlparse(self.url).hostname or ""
        self.token = token.strip()
        self.events = events or EngineEvents()
        self.heartbeat_s, self.silence_s, self.connect_timeout_s = heartbeat_s, silence_s, connect_timeout_s
        self.backoff_s = backoff_s
        self.max_in_flight = max_in_flight
        self.frames = FrameQueue(2)  # captured, waiting to be sent
        self.stylizer = None  # the StreamStylizer lives on the server
        self.model_info: ModelInfo | None = None
        self.style: tuple[StyleSpec, str] | None = None
        self.style_serial = 0
        self.speed = SpeedRequest()
        self.strength: float | None = None
        self.crossfade_s = 0.0
        self.state = "idle"  # idle, connecting, connected, lost, failed, stopped
        self.state_detail = ""
        self.processed = 0
        self.reconnects = 0
        self._halted = False
        self._load: LoadRequest | None = None
        self._load_futures: dict[int, Future] = {}
        self._requests = 0
        self._style_requests: deque[tuple[int, StyleSpec, str]] = deque()
        self._sinks = OutputSinks()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = False
        self._link: Link | None = None
        self._dropped_offline = 0
        self._rtt: deque[float] = deque(maxlen=30)
        self._network: deque[float] = deque(maxlen=30)
        self._held: deque[float] = deque(maxlen=30)
        self._server_stats: dict = {}
        self._out_index = 0

    # ------------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self.running:
            return
        self._stopping = False
        self.frames.reopen()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._thread_main, args=(ready,), name="remote-engine", daemon=True)
        self._thread.start()
        ready.wait(10)

    def stop(self, timeout: float = 30.0) -> bool:
        self._stopping = True
        self.frames.close()
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._wake_up)
            except RuntimeError:
                pass
        t = self._thread
        alive = False
        if t is not None and t is not threading.current_thread():
            t.join(timeout)
            alive = t.is_alive()
        self._thread = t if alive else None
        return not alive

    def retry_now(self) -> None:
        """Skip the rest of the back-off wait and try to connect again."""
        self._call(self._wake_up)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def is_halted(self) -> bool:
        return self._halted

    @property
    def loading(self) -> bool:
        return bool(self._load_futures)

    @property
    def connected(self) -> bool:
        return self.state == "connected"

    # ------------------------------------------------------------------ commands (any thread)
    def submit(self, image: np.ndarray, timestamp: float, media_time: float | None = None, tag=None) -> int:
        """Offer a captured frame; it is dropped while there is no connection or no model."""
        info, link = self.model_info, self._link
        if info is None or link is None or not link.ready:
            self._dropped_offline += 1
            return 1
        from model.stylizer import at_output_size, fit_frame

        # a source-size model gets the frame as it is (shrunk to the most it renders); others their size
        sent = at_output_size(image) if info.source_size else fit_frame(image, *info.resolution)
        dropped = self.frames.put(CapturedFrame(sent, timestamp, media_time, tag))
        self._call(self._pump)
        return dropped

    def load(self, request: LoadRequest) -> Future:
        """The server keeps its own model folder and device; the working size and stream settings of
        ``request`` are asked of it. The future gets the server's ModelInfo."""
        fut: Future = Future()
        with self._lock:
            self._requests += 1
            rid = self._requests
            self._load = request
            self.speed = request.speed
            self.strength = request.strength
            self._load_futures[rid] = fut
        self.events.on_load_started(f"Connecting to {self.url}" if not self.connected else "Loading on the server")
        self._call(self._send_load, rid)
        return fut

    def set_style(self, spec: StyleSpec, label: str | None = None) -> None:
        self.style = (spec, label or str(spec))
        self._call(self._send_style)

    def set_strength(self, strength: float) -> None:
        self.strength = min(max(float(strength), 0.01), 1.0)
        self._call(self._send, {"type": "strength", "value": self.strength})

    def set_speed(self, speed: SpeedRequest) -> None:
        self.speed = speed
        self._call(self._send, {"type": "speed", "speed": P.speed_message(speed)})

    def set_steps(self, steps: int | None) -> None:
        self.set_speed(replace(self.speed, steps=steps))

    def set_crossfade(self, seconds: float) -> None:
        self.crossfade_s = max(0.0, min(float(seconds), 10.0))
        self._call(self._send, {"type": "crossfade", "value": self.crossfade_s})

    def reset_stream(self) -> None:
        self.frames.clear()
        self._call(self._send, {"type": "reset"})

    def resume(self) -> None:
        self._call(self._send, {"type": "resume"})

    def add_sink(self, sink) -> None:
        self._sinks.add(sink)

    def remove_sink(self, sink) -> None:
        self._sinks.remove(sink)

    def stats(self) -> dict:
        """The server's per-stage times, and the network's part: ``rtt_ms`` (a ping's round trip),
        ``round_trip_ms`` (frame sent -> stylized frame back), ``network_ms`` (that, less the time the
        frame spent in the server's engine), ``server_ms``."""
        s = dict(self._server_stats)
        s["queue_dropped"] = self.frames.dropped + self._dropped_offline + s.get("queue_dropped", 0)
        s["processed"] = self.processed
        s["remote"] = self.url
        s["connection"] = self.state
        s["reconnects"] = self.reconnects
        for key, values in (("rtt_ms", self._rtt), ("network_ms", self._network), ("server_ms", self._held)):
            values = list(values)  # one step (the loop thread appends meanwhile)
            s[key] = float(np.median(values)) if values else None
        if s["network_ms"] is not None and s["server_ms"] is not None:
            s["round_trip_ms"] = s["network_ms"] + s["server_ms"]
        link = self._link
        s["in_flight"] = len(link.pending) if link else 0
        s["server_dropped"] = link.server_dropped if link else 0
        s["upload_paced"] = link.pacer.skipped if link else 0
        return s

    # ------------------------------------------------------------------- the loop thread
    def _call(self, fn, *args) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:
            pass

    def _wake_up(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _thread_main(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        self._wake = asyncio.Event()
        ready.set()
        try:
            loop.run_until_complete(self._main())
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                self._loop = None
                loop.close()

    def _set_state(self, state: str, detail: str = "") -> None:
        self.state, self.state_detail = state, detail
        self.events.on_connection(state, detail)

    async def _main(self) -> None:
        attempt = 0
        while not self._stopping:
            self._set_state("connecting", self.url)
            link = Link(self)
            try:
                await link.connect()
            except AuthError as e:
                await link.close()
                self._set_state("failed", str(e))
                self._fail_loads(e)
                self.events.on_error("network", f"Remote engine: {e}")
                await self._sleep(None)  # a wrong token does not fix itself: wait for stop()
                break
            except (RemoteError, OSError, asyncio.TimeoutError) as e:
                await link.close()
                if self._stopping:
                    break
                delay = min(self.backoff_s[1], self.backoff_s[0] * 2 ** attempt)
                attempt += 1
                reason = str(e) or e.__class__.__name__
                self._set_state("lost", f"cannot connect to {self.url}: {reason}; retrying in {delay:.1f} s")
                await self._sleep(delay)
                continue
            attempt = 0
            self._link = link
            self._set_state("connected", f"{self.url} · {link.device_label or 'remote'}")
            reason = await link.run()
            self._link = None
            await link.close()
            if self._stopping:
                break
            self.reconnects += 1
            delay = self.backoff_s[0]
            self._set_state("lost", f"connection to {self.url} lost ({reason}); reconnecting in {delay:.1f} s")
            await self._sleep(delay)
        self._set_state("stopped")
        self._fail_loads(RemoteError("the remote engine was stopped"))

    async def _sleep(self, seconds: float | None) -> None:
        self._wake.clear()
        if self._stopping:
            return
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    def _fail_loads(self, exc: Exception) -> None:
        with self._lock:
            futures, self._load_futures = dict(self._load_futures), {}
        for fut in futures.values():
            if not fut.done():
                fut.set_exception(exc)
        if futures:
            self.events.on_model_failed(str(exc))

    # -------------------------------------------------------------- sending (loop thread)
    def _send(self, message: dict) -> None:
        if self._link is not None:
            self._link.send(message)

    def _send_load(self, rid: int) -> None:
        req = self._load
        if self._link is None or req is None:
            return  # sent when the connection comes up
        self._link.send({"type": "load", "request": rid,
                         "resolution": list(req.resolution) if req.resolution else None,
                         "speed": P.speed_message(req.speed), "strength": req.strength or 1.0, "seed": req.seed})

    def _send_style(self) -> None:
        link, style = self._link, self.style
        if link is None or style is None:
            return
        spec, label = style
        with self._lock:
            self._requests += 1
            rid = self._requests
        msg = {"type": "style", "request": rid, "label": label, "prompt": spec.prompt}
        if spec.kind == "reference":
            try:
                ref = link.upload_reference(spec)
            except (OSError, ValueError) as e:
                self.events.on_style_failed(str(e))
                return
            msg["reference"] = ref
        self._style_requests.append((rid, spec, label))
        link.send(msg)

    def _pump(self) -> None:
        if self._link is not None:
            self._link.pump()

    def _resend_state(self) -> None:
        """After (re)connecting: the server gets everything this engine was told."""
        if self._load is not None:
            with self._lock:
                pending = sorted(self._load_futures)
                if not pending:
                    self._requests += 1
                    pending = [self._requests]
            self._send_load(pending[-1])
        elif self.strength is not None:
            self._send({"type": "strength", "value": self.strength})
        self._send({"type": "crossfade", "value": self.crossfade_s})
        if self.style is not None:
            self._send_style()

    # ------------------------------------------------------------ receiving (loop thread)
    def _on_message(self, msg: dict) -> None:
        kind = msg.get("type")
        if kind == "model":
            self._model_reply(msg)
        elif kind == "model_failed":
            err = RemoteError(msg.get("message") or "the server could not load the model")
            for fut in self._answered(msg.get("request")):
                fut.set_exception(err)
            self.events.on_model_failed(str(err))
        elif kind == "style_applied":
            self._style_reply(msg)
        elif kind == "style_failed":
            if self._style_requests:
                self._style_requests.popleft()
            self.events.on_style_failed(msg.get("message") or "the style could not be applied")
        elif kind == "error":
            self._server_error(msg)
        elif kind == "halted":
            self._halted = bool(msg.get("value"))
            self.events.on_halted(self._halted)
        elif kind == "load_progress":
            self.events.on_load_progress(int(msg.get("percent", -1)), f"{msg.get('message', '')} (server)")

    def _answered(self, request) -> list[Future]:
        """The load futures a reply to ``request`` settles: it and every earlier one (only the newest
        request is sent after a reconnect)."""
        if not isinstance(request, int):
            return []
        with self._lock:
            done = [r for r in self._load_futures if r <= request]
            futures = [self._load_futures.pop(r) for r in done]
        return [f for f in futures if not f.done()]

    def _model_reply(self, msg: dict) -> None:
        folder = msg.get("folder") or None
        label = msg.get("device_label") or "remote"
        info = ModelInfo(
            name=msg["name"], folder=Path(folder) if folder else None, trained=bool(msg.get("trained")),
            config_name=msg.get("config", ""), device=msg.get("device", ""),
            device_label=f"{label} · remote {self.host}", resolution=tuple(msg["resolution"]),
            native_resolution=tuple(msg["native_resolution"]), resolution_step=tuple(msg["resolution_step"]),
            chunk_size=int(msg["chunk_size"]), default_steps=int(msg["default_steps"]),
            load_seconds=float(msg.get("load_seconds", 0.0)), remote=self.url,
            source_size=bool(msg.get("source_size", False)))
        self.model_info = info
        self.frames.resize(max(2, info.chunk_size))
        for fut in self._answered(msg.get("request")):
            fut.set_result(info)
        self.events.on_load_progress(100, "Ready")
        self.events.on_model_ready(info)

    def _style_reply(self, msg: dict) -> None:
        rid = msg.get("request")
        spec, label = self.style if self.style else (StyleSpec(prompt=""), "")
        while self._style_requests:
            r, s, lab = self._style_requests.popleft()
            if r == rid:
                spec, label = s, lab
                break
        self.style_serial = int(msg.get("serial", self.style_serial))
        self.events.on_style_applied(StyleChange(
            serial=self.style_serial, label=label, spec=spec, kind=str(msg.get("kind", spec.kind)),
            cross_ready=bool(msg.get("cross_ready")), cross_changed=bool(msg.get("cross_changed")),
            ref_len=int(msg.get("ref_len", 0)), window_before=list(msg.get("window_before") or []),
            window_after=list(msg.get("window_after") or []), matched=msg.get("matched")))

    def _server_error(self, msg: dict) -> None:
        kind, text = msg.get("kind", "engine"), msg.get("message", "")
        if kind == "reference":
            if self._style_requests:
                self._style_requests.popleft()
            self.events.on_style_failed(f"the server refused the reference image: {text}")
        elif kind in ("oom", "engine", "sink"):
            self.events.on_error(kind, f"{text} (on the server)")
        else:  # a message this client sent was refused: a bug here, or versions that differ
            log.warning("the server refused a message: %s", text)
            self.events.on_error("network", f"Remote engine: {text}")

    def _deliver(self, frames: list[StylizedFrame]) -> None:
        self.processed += len(frames)
        self._sinks.deliver(frames, lambda e: self.events.on_error("sink", f"an output stopped: {e}"))
        self.events.on_frames(frames)
