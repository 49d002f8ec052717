"""The engine worker: one thread that owns the model and the StreamStylizer.

Capture threads hand frames to a bounded, thread-safe, drop-oldest ``FrameQueue``; the worker takes
them one by one, stylizes them chunk by chunk and sends the results back to the GUI as Qt signals
(numpy frames with their capture timestamps). Commands from the GUI (load a model, switch style,
change strength/speed/cross-fade, reset the stream) are queued and applied between chunks,
so the GUI thread never waits on the model. Failures - a model folder that does not load, an
unreadable reference image, running out of memory - come back as signals with readable messages,
and the worker keeps running so the user can fix the cause.
"""
from __future__ import annotations

import gc
import logging
import os
import queue
import threading
import time
import traceback
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
from PySide6.QtCore import QObject, Signal

from model.speed import SpeedRequest
from model.style import StyleSpec

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------- queues
class FrameQueue:
    """Bounded FIFO shared by threads. When full, ``put`` drops the *oldest* item, so the consumer
    always works on the newest frames and latency stays bounded however slow it is."""

    def __init__(self, maxsize: int = 2):
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self._maxsize = maxsize
        self._items: deque = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._wake = False
        self.dropped = 0
        self.put_count = 0

    @property
    def maxsize(self) -> int:
        return self._maxsize

    def resize(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        with self._cond:
            self._maxsize = maxsize
            while len(self._items) > maxsize:
                self._items.popleft()
                self.dropped += 1

    def put(self, item) -> int:
        """Append ``item``; returns how many old items were dropped to make room (0 or 1)."""
        with self._cond:
            if self._closed:
                return 0
            dropped = 0
            while len(self._items) >= self._maxsize:
                self._items.popleft()
                dropped += 1
            self._items.append(item)
            self.dropped += dropped
            self.put_count += 1
            self._cond.notify()
            return dropped

    def get(self, timeout: float | None = None):
        """The oldest item, or None on timeout, on ``wake()`` or once closed and empty."""
        with self._cond:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self._items and not self._closed and not self._wake:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            self._wake = False
            return self._items.popleft() if self._items else None

    def wake(self) -> None:
        """Make a waiting ``get`` return now (used to deliver commands promptly)."""
        with self._cond:
            self._wake = True
            self._cond.notify_all()

    def clear(self) -> int:
        with self._cond:
            n = len(self._items)
            self._items.clear()
            return n

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)


# ----------------------------------------------------------------------------------- payloads
@dataclass
class CapturedFrame:
    image: np.ndarray  # uint8 HxWx3 RGB, as captured
    timestamp: float  # time.perf_counter() at capture
    media_time: float | None = None  # position in the source file (seconds), for audio alignment


@dataclass
class StylizedFrame:
    image: np.ndarray  # uint8 RGB at the working resolution
    source: np.ndarray  # the captured frame fitted to the same size (for side-by-side output)
    timestamp: float  # capture timestamp (perf_counter) of the source frame
    finished: float  # perf_counter when the stylized frame was ready
    index: int  # running output frame number
    style_serial: int  # which style produced it (increases with every switch)
    media_time: float | None = None  # position in the source file, when the source is a file


@dataclass
class LoadRequest:
    folder: Path | None = None  # None: the embedded default model
    device: str = "auto"  # auto, cpu, cuda, cuda:N, mps
    resolution: tuple[int, int] | None = None  # (height, width); None: the model's own
    speed: SpeedRequest = field(default_factory=SpeedRequest)  # preset, refined by explicit steps / AdaCache
    strength: float = 1.0
    seed: int = 0
    warmup: bool = True
    # CPU inference threads: one core is left to capture, decoding and the GUI (an oversubscribed
    # CPU makes every torch thread wait on the others)
    cpu_threads: int | None = field(default_factory=lambda: max(1, (os.cpu_count() or 2) - 1))


@dataclass
class ModelInfo:
    name: str
    folder: Path | None
    trained: bool
    config_name: str
    device: str
    device_label: str
    resolution: tuple[int, int]  # (height, width) in use
    native_resolution: tuple[int, int]  # the model config's
    resolution_step: tuple[int, int]
    chunk_size: int
    default_steps: int
    load_seconds: float


@dataclass
class StyleChange:
    """What a style switch did to the stylizer (reported with ``styleApplied``)."""
    serial: int
    label: str
    spec: StyleSpec
    kind: str  # "text" or "reference"
    cross_ready: bool
    cross_changed: bool  # the cross-attention cache now holds different keys
    ref_len: int  # anchored reference tokens (0 for a text style)
    window_before: list[int] = field(default_factory=list)  # cached frames before the switch
    window_after: list[int] = field(default_factory=list)  # cached frames kept (the last one)
    matched: str | None = None  # the trained style a free prompt was matched to, when it is not one


# ------------------------------------------------------------------------------------ devices
def resolve_device(device: str) -> str:
    import torch

    device = (device or "auto").strip().lower()
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("CUDA was chosen but no CUDA GPU is available here; choose Auto or CPU")
    if device == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise RuntimeError("MPS (Apple GPU) was chosen but is not available here; choose Auto or CPU")
    return device


def device_label(device: str) -> str:
    """'CPU', 'CUDA · NVIDIA H100 80GB HBM3', 'MPS (Apple GPU)'."""
    import torch

    if device.startswith("cuda"):
        try:
            idx = torch.device(device).index or 0
            return f"CUDA · {torch.cuda.get_device_name(idx)}"
        except Exception:
            return "CUDA"
    if device == "mps":
        return "MPS (Apple GPU)"
    return "CPU"


def available_devices() -> list[tuple[str, str]]:
    """(value, label) pairs for a device menu; 'auto' first."""
    import torch

    out = [("auto", "Auto"), ("cpu", "CPU")]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            out.append((f"cuda:{i}", f"CUDA {i} · {torch.cuda.get_device_name(i)}"))
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append(("mps", "MPS (Apple GPU)"))
    return out


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    oom_types = tuple(t for t in (getattr(torch, "OutOfMemoryError", None),
                                  getattr(torch.cuda, "OutOfMemoryError", None)) if t is not None)
    if oom_types and isinstance(exc, oom_types):
        return True
    return isinstance(exc, (RuntimeError, MemoryError)) and (
        "out of memory" in str(exc).lower() or isinstance(exc, MemoryError))


def matched_style(stylizer) -> str | None:
    match = stylizer.prompt_match
    return match.describe() if match is not None and not match.exact else None


def _free_memory(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def build_stylizer(req: LoadRequest, progress: Callable[[int, str], None] | None = None):
    """Load the model of ``req`` and wrap it in a StreamStylizer (used by the live worker and by the
    offline export, which has its own instance). Returns (stylizer, device, native resolution)."""
    import torch

    from model.checkpoint import DEFAULT_MODEL_DIR, CheckpointError, load_model
    from model.config import ConfigError
    from model.stylizer import StreamStylizer

    progress = progress or (lambda pct, msg: None)
    folder = Path(req.folder) if req.folder else DEFAULT_MODEL_DIR
    progress(5, f"Checking {folder}")
    if not folder.is_dir():
        raise CheckpointError(f"model folder not found: {folder}")
    device = resolve_device(req.device)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    if device == "cpu" and req.cpu_threads:
        torch.set_num_threads(req.cpu_threads)
    progress(-1, f"Reading the weights onto {device_label(device)}")
    model = load_model(folder, device, dtype)
    native = tuple(model.config.resolution)
    if req.resolution and tuple(req.resolution) != native:
        try:
            model.config = model.config.replace(resolution=tuple(req.resolution))
        except ConfigError as e:
            raise CheckpointError(f"resolution {req.resolution[1]}x{req.resolution[0]} does not suit this "
                                  f"model: {e}") from None
    progress(60, "Preparing the stream")
    stylizer = StreamStylizer(model, device=device, dtype=dtype, seed=req.seed, strength=req.strength)
    req.speed.apply(stylizer)
    return stylizer, device, native


# ------------------------------------------------------------------------------------- worker
_STOP = object()


class EngineWorker(QObject):
    """Owns the StreamStylizer on its own thread. Create it on the GUI thread; call ``start()``."""

    loadStarted = Signal(str)
    loadProgress = Signal(int, str)  # percent (-1: busy, no estimate), what is happening
    modelReady = Signal(object)  # ModelInfo
    modelFailed = Signal(str)
    framesReady = Signal(object)  # list[StylizedFrame], in order
    styleApplied = Signal(object)  # StyleChange
    styleFailed = Signal(str)
    engineError = Signal(str, str)  # kind ("oom", "engine", "sink"), message
    halted = Signal(bool)  # True: inference paused after an error; False: running again

    #: undelivered framesReady signals allowed before further results skip the display
    max_in_flight = 3

    def __init__(self, parent: QObject | None = None, queue_size: int = 2):
        super().__init__(parent)
        self.frames = FrameQueue(queue_size)
        self.stylizer = None
        self.model_info: ModelInfo | None = None
        self.style: tuple[StyleSpec, str] | None = None  # the style in effect
        self.style_serial = 0
        self.speed = SpeedRequest()  # the speed in effect (the last load's, changed live)
        self._cmds: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._pending: deque[CapturedFrame] = deque()
        self._sinks: list[Callable[[list[StylizedFrame]], None]] = []
        self._sinks_lock = threading.Lock()
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()
        self._halted: str | None = None
        self._busy_loading = False
        self._crossfade_s = 0.0
        self._fade: dict | None = None
        self._last_output: np.ndarray | None = None
        self._out_index = 0
        self._stats_lock = threading.Lock()
        self._stats: dict = {}
        self.display_skipped = 0  # stylized frames not sent to the GUI because it was behind
        self.processed = 0
        self.framesReady.connect(self._delivered)  # runs on the GUI thread when a result is delivered

    # -------------------------------------------------------------- lifecycle (GUI thread)
    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._run, name="engine-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> bool:
        """Finish the current chunk, release the model and join the thread. True if it ended."""
        self._cmds.put((_STOP, ()))
        self.frames.close()
        t = self._thread
        if t is not None:
            t.join(timeout)
            alive = t.is_alive()
        else:
            alive = False
        self._thread = None if not alive else t
        return not alive

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def is_halted(self) -> bool:
        return self._halted is not None

    @property
    def loading(self) -> bool:
        return self._busy_loading

    # ------------------------------------------------------------------ commands (any thread)
    def submit(self, image: np.ndarray, timestamp: float, media_time: float | None = None) -> int:
        """Offer a captured frame; returns how many older frames were dropped for it."""
        return self.frames.put(CapturedFrame(image, timestamp, media_time))

    def load(self, request: LoadRequest) -> Future:
        """Load (or reload) a model on the worker thread; the future gets the ModelInfo or the error."""
        fut: Future = Future()
        self._command("load", request, fut)
        return fut

    def set_style(self, spec: StyleSpec, label: str | None = None) -> None:
        self._command("style", spec, label or str(spec))

    def set_strength(self, strength: float) -> None:
        self._command("strength", float(strength))

    def set_speed(self, speed: SpeedRequest) -> None:
        """A speed preset with its explicit step count / AdaCache mode (``model.speed.SpeedRequest``)."""
        self._command("speed", speed)

    def set_steps(self, steps: int | None) -> None:
        """Override the speed preset's step count (None: the preset's)."""
        self._command("steps", steps)

    def set_crossfade(self, seconds: float) -> None:
        self._command("crossfade", max(0.0, float(seconds)))

    def reset_stream(self) -> None:
        """A new video starts (source switched or seeked): forget the frames, keep the style."""
        self.frames.clear()
        self._command("reset")

    def resume(self) -> None:
        """Try again after an error paused inference."""
        self._command("resume")

    def add_sink(self, sink: Callable[[list[StylizedFrame]], None]) -> None:
        """``sink(frames)`` is called on the worker thread with every stylized chunk (recording)."""
        with self._sinks_lock:
            self._sinks.append(sink)

    def remove_sink(self, sink) -> None:
        with self._sinks_lock:
            if sink in self._sinks:
                self._sinks.remove(sink)

    def stats(self) -> dict:
        """Per-stage milliseconds per frame, chunks, frames dropped by the queue."""
        with self._stats_lock:
            s = dict(self._stats)
        s["queue_dropped"] = self.frames.dropped
        s["display_skipped"] = self.display_skipped
        s["processed"] = self.processed
        return s

    def _command(self, name: str, *args) -> None:
        self._cmds.put((name, args))
        self.frames.wake()

    def _delivered(self, _frames) -> None:
        with self._in_flight_lock:
            self._in_flight = max(0, self._in_flight - 1)

    # --------------------------------------------------------------------- the worker thread
    def _run(self) -> None:
        while True:
            if not self._handle_commands():
                break
            if self.stylizer is None or self.style is None or self._halted:
                self.frames.get(timeout=0.1)  # wait for a command; frames arriving now are stale
                continue
            item = self.frames.get(timeout=0.1)
            if item is None:
                continue
            self._process(item)
        self._release()

    def _handle_commands(self) -> bool:
        while True:
            try:
                name, args = self._cmds.get_nowait()
            except queue.Empty:
                return True
            if name is _STOP:
                return False
            try:
                getattr(self, f"_cmd_{name}")(*args)
            except Exception as e:  # a command must never kill the worker
                log.exception("engine command %s failed", name)
                self.engineError.emit("engine", f"{name} failed: {e}")

    def _release(self) -> None:
        device = self.model_info.device if self.model_info else "cpu"
        self.stylizer = None
        self._pending.clear()
        _free_memory(device)

    # ------------------------------------------------------------------------------ commands
    def _cmd_load(self, req: LoadRequest, fut: Future) -> None:
        self._busy_loading = True
        try:
            info = self._load(req)
            self.speed = req.speed
        except BaseException as e:
            msg = str(e) or e.__class__.__name__
            if not fut.done():
                fut.set_exception(e)
            self.modelFailed.emit(msg)
        else:
            if not fut.done():
                fut.set_result(info)
            self.modelReady.emit(info)
        finally:
            self._busy_loading = False

    def _load(self, req: LoadRequest) -> ModelInfo:
        from model.stylizer import StyleError

        t0 = time.perf_counter()
        folder = Path(req.folder) if req.folder else None
        self.loadStarted.emit(f"Loading model {folder.name if folder else 'default'}")
        try:
            stylizer, device, native = build_stylizer(req, self.loadProgress.emit)
        except BaseException as e:
            if not (is_out_of_memory(e) and self.stylizer is not None):
                raise
            # not enough memory for two models at once: let the old one go and try again
            self._drop_stylizer()
            stylizer, device, native = build_stylizer(req, self.loadProgress.emit)
        model = stylizer.model
        folder = model.folder
        if self.style is not None:
            self.loadProgress.emit(75, "Encoding the style")
            spec, label = self.style
            try:
                spec.apply(stylizer)
            except (StyleError, OSError) as e:
                self.style = None
                self.styleFailed.emit(str(e))
        if req.warmup and stylizer.style is not None:
            self.loadProgress.emit(85, "Warming up")
            gray = np.full((stylizer.height, stylizer.width, 3), 128, np.uint8)
            stylizer.push([gray] * stylizer.chunk_size)
            stylizer.reset()
        # swap in the new stylizer
        self._drop_stylizer()
        self.stylizer = stylizer
        self.frames.clear()
        self.frames.resize(max(2, stylizer.chunk_size))
        self._set_halted(None)
        self._fade = None
        self._last_output = None
        stride, patch = model.config.vae_stride, model.config.patch_size
        info = ModelInfo(
            name=model.name, folder=folder, trained=model.trained, config_name=model.config.name,
            device=device, device_label=device_label(device),
            resolution=(stylizer.height, stylizer.width), native_resolution=native,
            resolution_step=(stride[1] * patch[1], stride[2] * patch[2]), chunk_size=stylizer.chunk_size,
            default_steps=len(model.config.denoising_steps), load_seconds=time.perf_counter() - t0)
        self.model_info = info
        self.loadProgress.emit(100, "Ready")
        if self.style is not None and stylizer.style is not None:
            self.style_serial += 1
            cache = stylizer.cache
            self.styleApplied.emit(StyleChange(
                serial=self.style_serial, label=self.style[1], spec=self.style[0], kind=stylizer.style.kind,
                cross_ready=cache.cross_ready, cross_changed=True, ref_len=cache.ref_len,
                window_before=[], window_after=cache.frames_in_window(), matched=matched_style(stylizer)))
        return info

    def _drop_stylizer(self) -> None:
        if self.stylizer is not None:
            device = self.model_info.device if self.model_info else "cpu"
            self.stylizer = None
            self._pending.clear()
            _free_memory(device)

    def _cmd_style(self, spec: StyleSpec, label: str) -> None:
        from model.stylizer import StyleError

        st = self.stylizer
        if st is None:  # remembered; applied when a model is loaded
            self.style = (spec, label)
            return
        cache = st.cache
        before = cache.frames_in_window()
        cross_before = cache.cross_k.clone() if cache.cross_ready else None
        try:
            spec.apply(st)
        except (StyleError, OSError, ValueError) as e:
            self.styleFailed.emit(str(e))
            return
        except BaseException as e:
            if is_out_of_memory(e):
                self._oom(e)
                return
            raise
        self.style = (spec, label)
        self.style_serial += 1
        if self._crossfade_s > 0 and self._last_output is not None:
            self._fade = {"from": self._last_output, "start": None}
        else:
            self._fade = None
        if self._halted:
            self._set_halted(None)
        change = StyleChange(
            serial=self.style_serial, label=label, spec=spec, kind=spec.kind,
            cross_ready=cache.cross_ready,
            cross_changed=cross_before is None or not bool((cache.cross_k == cross_before).all()),
            ref_len=cache.ref_len, window_before=before, window_after=cache.frames_in_window(),
            matched=matched_style(st))
        self.styleApplied.emit(change)

    def _cmd_strength(self, strength: float) -> None:
        if self.stylizer is not None:
            self.stylizer.set_strength(min(max(strength, 0.01), 1.0))

    def _cmd_speed(self, speed: SpeedRequest) -> None:
        self.speed = speed
        if self.stylizer is not None:
            speed.apply(self.stylizer)
        if self._halted:
            self._set_halted(None)

    def _cmd_steps(self, steps: int | None) -> None:
        self._cmd_speed(replace(self.speed, steps=steps))

    def _cmd_crossfade(self, seconds: float) -> None:
        self._crossfade_s = seconds
        if seconds <= 0:
            self._fade = None

    def _cmd_reset(self) -> None:
        self._pending.clear()
        self._fade = None
        if self.stylizer is not None:
            self.stylizer.reset()

    def _cmd_resume(self) -> None:
        if self.stylizer is not None:
            self.stylizer.reset()
        self._pending.clear()
        self._set_halted(None)

    # ----------------------------------------------------------------------------- frames
    def _process(self, item: CapturedFrame) -> None:
        st = self.stylizer
        self._pending.append(item)
        try:
            outputs = st.push(item.image)
        except BaseException as e:
            if is_out_of_memory(e):
                self._oom(e)
                return
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
            log.error("stylizing failed:\n%s", traceback.format_exc())
            self._pending.clear()
            try:
                st.reset()
            except Exception:
                pass
            self._set_halted(f"{e.__class__.__name__}: {e}")
            self.engineError.emit("engine", f"Stylizing stopped: {e.__class__.__name__}: {e}")
            return
        if not outputs:
            return
        from model.stylizer import fit_frame

        now = time.perf_counter()
        results = []
        for out in outputs:
            src = self._pending.popleft() if self._pending else item
            out = self._crossfade(out, src.timestamp)
            self._out_index += 1
            results.append(StylizedFrame(out, fit_frame(src.image, st.height, st.width), src.timestamp, now,
                                         self._out_index, self.style_serial, src.media_time))
        self._last_output = results[-1].image
        self.processed += len(results)
        with self._stats_lock:
            self._stats = dict(st.times.per_frame())
        with self._sinks_lock:
            sinks = list(self._sinks)
        for sink in sinks:
            try:
                sink(results)
            except Exception as e:
                log.exception("output sink failed")
                self.remove_sink(sink)
                self.engineError.emit("sink", f"an output stopped: {e}")
        with self._in_flight_lock:
            send = self._in_flight < self.max_in_flight
            if send:
                self._in_flight += 1
        if send:
            self.framesReady.emit(results)
        else:
            self.display_skipped += len(results)

    def _crossfade(self, image: np.ndarray, timestamp: float) -> np.ndarray:
        fade = self._fade
        if fade is None or self._crossfade_s <= 0 or fade["from"].shape != image.shape:
            self._fade = None
            return image
        if fade["start"] is None:
            fade["start"] = timestamp
        alpha = min(1.0, (timestamp - fade["start"] + 1 / 30) / self._crossfade_s)
        if alpha >= 1.0:
            self._fade = None
            return image
        mixed = fade["from"].astype(np.float32) * (1 - alpha) + image.astype(np.float32) * alpha
        return mixed.round().astype(np.uint8)

    def _oom(self, exc: BaseException) -> None:
        device = self.model_info.device if self.model_info else "cpu"
        self._pending.clear()
        try:
            if self.stylizer is not None:
                self.stylizer.reset()
        except Exception:
            pass
        _free_memory(device)
        where = "GPU" if device.startswith(("cuda", "mps")) else "system"
        self._set_halted("out of memory")
        self.engineError.emit("oom", f"Out of {where} memory while stylizing on {device_label(device)}. "
                                     "Lower the resolution or the steps, close other GPU programs, or use "
                                     "the CPU, then press Retry or Reload.")

    def _set_halted(self, reason: str | None) -> None:
        was = self._halted
        self._halted = reason
        if bool(was) != bool(reason):
            self.halted.emit(bool(reason))
