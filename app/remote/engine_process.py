"""The server's engine in a child process of its own.

Why: in one process the engine thread and the WebRTC stack share the GIL. On a CPU the engine runs many
small tensor operations and takes the GIL back after each; aiortc's event loop (RTP, SRTP, the data
channel) holds it about 5 % of the time. At 320x192 the served engine thread waited on it about 200
times a second (2,213 voluntary context switches in 10 s, against 71 for the same engine alone) and had
95 % of a core; in a process of its own, 278 and 98 % (remote frames/s over 15 benchmark pairs: 92 % of
local at 320x192, against 88-90 % before). Only frames and commands cross, pickled over a pipe.

``EngineProcess`` offers the part of ``LiveEngine``'s interface that the server uses; the child runs a
``LiveEngine`` and forwards its callbacks. Invariants: callbacks reach ``events`` on one reader thread,
in the child's order; every ``load`` future is resolved exactly once (with the reason if the child
dies); ``stats()`` never blocks (the child's last report, sent with every chunk). Apart from speed, a
crash in the model's native code now takes down the child, not the server: the next command starts
a new one.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import pickle
import queue
import threading
from concurrent.futures import Future

from ..engine import EngineEvents, LiveEngine, LoadRequest

log = logging.getLogger(__name__)

_FORWARDED = ("on_load_started", "on_load_progress", "on_model_ready", "on_model_failed", "on_style_applied",
              "on_style_failed", "on_error", "on_halted")
_COMMANDS = frozenset({"set_style", "set_strength", "set_speed", "set_steps", "set_crossfade", "reset_stream",
                       "resume"})


class EngineProcessError(RuntimeError):
    """The engine's process ended or could not be reached."""


class EngineProcess:
    """A ``LiveEngine`` in a spawned child process; ``start()`` it, then use it as the engine."""

    def __init__(self, events: EngineEvents | None = None):
        self.events = events or EngineEvents()
        self.model_info = None
        self._stats: dict = {}
        self._futures: dict[int, Future] = {}
        self._next_id = 0
        self._send_lock = threading.Lock()
        self._proc = None
        self._conn = None
        self._reader: threading.Thread | None = None
        self._stopping = False

    # ------------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self.running:
            return
        ctx = mp.get_context("spawn")  # a clean interpreter: no forked threads, CUDA-safe
        here, there = ctx.Pipe()
        self._proc = ctx.Process(target=_child_main, args=(there,), name="rtr-engine", daemon=True)
        self._proc.start()
        there.close()
        self._conn, self._stopping = here, False
        self._reader = threading.Thread(target=self._read, name="engine-process-reader", daemon=True)
        self._reader.start()

    def stop(self, timeout: float = 30.0) -> bool:
        """Ask the child to finish its chunk and release the model; True if it ended in time."""
        self._stopping = True
        proc = self._proc
        if proc is None:
            return True
        try:
            self._send("stop")
        except EngineProcessError:
            pass
        proc.join(timeout)
        ended = not proc.is_alive()
        if not ended:
            proc.terminate()
            proc.join(5)
        if self._reader is not None:
            self._reader.join(5)
        self._conn.close()
        self._proc = self._conn = None
        return ended

    def _restart(self) -> None:
        self._reader.join(5)
        self._conn.close()
        self._proc = self._conn = None
        self.model_info, self._stats = None, {}
        self.start()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    # ------------------------------------------------------------------ commands (any thread)
    def submit(self, image, timestamp: float, media_time: float | None = None, tag=None) -> int:
        self._send("submit", image, timestamp, media_time, tag)
        return 0  # the child's queue drops; ``stats()["queue_dropped"]`` counts it

    def load(self, request: LoadRequest) -> Future:
        self._revive()  # before the future is registered: a dead child's reader fails those it finds
        fut: Future = Future()
        with self._send_lock:
            self._next_id += 1
            key = self._next_id
            self._futures[key] = fut
        try:
            self._send("load", key, request)
        except EngineProcessError as e:
            self._resolve(key, e, ok=False)
        return fut

    def set_style(self, spec, label: str | None = None) -> None:
        self._send("set_style", spec, label)

    def set_strength(self, strength: float) -> None:
        self._send("set_strength", strength)

    def set_speed(self, speed) -> None:
        self._send("set_speed", speed)

    def set_steps(self, steps: int | None) -> None:
        self._send("set_steps", steps)

    def set_crossfade(self, seconds: float) -> None:
        self._send("set_crossfade", seconds)

    def reset_stream(self) -> None:
        self._send("reset_stream")

    def resume(self) -> None:
        self._send("resume")

    def stats(self) -> dict:
        return dict(self._stats)

    @property
    def queued_frames(self) -> int:
        return int(self._stats.get("queued", 0))

    # ---------------------------------------------------------------------------- internals
    def _revive(self) -> None:
        """A child that died (a crash in native code, the out-of-memory killer) is replaced."""
        if self._proc is not None and not self._stopping and not self._proc.is_alive():
            self._restart()

    def _send(self, *message) -> None:
        if message[0] != "load":
            self._revive()
        conn = self._conn
        if conn is None:
            raise EngineProcessError("the engine process is not running")
        try:
            with self._send_lock:
                conn.send(message)
        except (OSError, ValueError) as e:
            raise EngineProcessError(f"the engine process cannot be reached: {e}") from None

    def _resolve(self, key: int, value, ok: bool) -> None:
        with self._send_lock:
            fut = self._futures.pop(key, None)
        if fut is None or fut.done():
            return
        if ok:
            self.model_info = value
            fut.set_result(value)
        else:
            fut.set_exception(value)

    def _read(self) -> None:
        conn = self._conn
        while True:
            try:
                kind, *args = conn.recv()
            except (EOFError, OSError):
                break
            try:
                if kind == "frames":
                    frames, self._stats = args
                    self.events.on_frames(frames)
                elif kind == "loaded":
                    self._resolve(*args)
                elif kind == "stats":
                    self._stats = args[0]
                elif kind == "event":
                    getattr(self.events, args[0])(*args[1])
            except Exception:  # a callback's bug must not stop the frames that follow
                log.exception("engine process callback %s failed", kind)
        self._ended()

    def _ended(self) -> None:
        code = self._proc.exitcode if self._proc is not None else None
        reason = EngineProcessError(f"the engine process ended unexpectedly (exit code {code})")
        self.model_info = None  # the next session loads again (in a new child)
        with self._send_lock:
            pending, self._futures = list(self._futures.values()), {}
        for fut in pending:
            if not fut.done():
                fut.set_exception(reason)
        if not self._stopping:
            self.events.on_error("engine", str(reason))
            self.events.on_halted(True)


# ------------------------------------------------------------------------------ the child
class _Forward(EngineEvents):
    """The child's callbacks, queued for the sender thread (the engine never waits on the pipe)."""

    def __init__(self, outbox: queue.SimpleQueue):
        self.outbox = outbox
        self.engine: LiveEngine | None = None
        for name in _FORWARDED:
            setattr(self, name, lambda *args, _n=name: self.outbox.put(("event", _n, args)))

    def on_frames(self, frames) -> None:
        self.outbox.put(("frames", frames, self.engine_stats()))

    def engine_stats(self) -> dict:
        s = self.engine.stats()
        s["queued"] = len(self.engine.frames)
        return s


def _picklable(exc: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(str(exc) or repr(exc))


def _child_main(conn) -> None:
    outbox: queue.SimpleQueue = queue.SimpleQueue()

    def sender() -> None:
        while (item := outbox.get()) is not None:
            try:
                conn.send(item)
            except (OSError, ValueError):
                return

    forward = _Forward(outbox)
    engine = LiveEngine(forward)
    forward.engine = engine
    engine.start()
    out = threading.Thread(target=sender, name="engine-process-sender", daemon=True)
    out.start()

    def loaded(key: int, fut: Future) -> None:
        e = fut.exception()
        outbox.put(("stats", forward.engine_stats()))
        outbox.put(("loaded", key, fut.result() if e is None else _picklable(e), e is None))

    while True:
        try:
            name, *args = conn.recv()
        except (EOFError, OSError):
            break
        if name == "stop":
            break
        if name == "submit":
            engine.submit(*args)
        elif name == "load":
            key, request = args
            engine.load(request).add_done_callback(lambda f, k=key: loaded(k, f))
        elif name in _COMMANDS:
            getattr(engine, name)(*args)
    engine.stop()
    outbox.put(None)
    out.join(10)
    conn.close()
