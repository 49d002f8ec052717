"""The live engine, plain Python: one thread that owns the model and the StreamStylizer.

Capture threads hand frames to a bounded drop-oldest ``FrameQueue``; the engine thread takes them one
by one, stylizes them chunk by chunk and reports each stylized frame through callbacks (``EngineEvents``)
as soon as the model has decoded it - a chunk's first frame does not wait for its last.
Commands (load a model, switch style, change strength/steps/speed/AdaCache/cross-fade, reset the
stream) are queued and applied between chunks, so whoever calls them never waits on the model - the
way Daydream Scope's PipelineProcessor queues parameters for the next chunk. Failures - a model folder
that does not load, an unreadable reference image, running out of memory - are reported with readable
messages, and the engine keeps running so the user can fix the cause.

The same engine runs behind the window (through the Qt adapter in ``app/qt_engine.py``), in scripts,
in the benchmarks and behind ``main.py serve``; ``app/remote/client.py`` offers the same surface for an
engine on another machine.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from model.build import (
    StylizerRequest,
    build_stylizer,
    device_label,
    free_memory,
    is_out_of_memory,
)
from model.speed import SpeedRequest
from model.style import StyleSpec

from .crossfade import CrossFade
from .frames import CapturedFrame, FrameQueue, OutputSinks, StylizedFrame

log = logging.getLogger(__name__)

__all__ = ["CapturedFrame", "EngineEvents", "FrameQueue", "LiveEngine", "LoadRequest", "ModelInfo", "StyleChange",
           "StylizedFrame"]


# ----------------------------------------------------------------------------------- payloads
@dataclass
class LoadRequest(StylizerRequest):
    """A StylizerRequest with the live app's defaults, plus whether to warm the model up.

    ``strength`` here is relative to the model's own (its card's ``default_strength``, 1.0 without one):
    1.0 is the strength the model was trained to stream at, lower keeps more of the source. A model
    distilled to start from the noised source (SDEdit) would otherwise start from pure noise at 1.0."""
    strength: float | None = 1.0
    # CPU inference threads: every core. Leaving one to capture, decoding and the GUI was measured
    # slower on two cores (9.8 against 16.9 stylized frames/s shown at 640x360, the event loop late by
    # 4 ms at p95 either way: benchmarks/results/ui_responsiveness-v3-cpu*.json)
    cpu_threads: int | None = field(default_factory=lambda: max(1, os.cpu_count() or 2))
    warmup: bool = True


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
    remote: str | None = None  # the server's address when the engine runs on another machine
    source_size: bool = False  # renders at each source's own size (up to 1280x720), not at ``resolution``


@dataclass
class StyleChange:
    """What a style switch did to the stylizer (reported with ``on_style_applied``)."""
    serial: int
    label: str
    spec: StyleSpec
    kind: str  # "text" or "reference"
    cross_ready: bool
    cross_changed: bool  # the cross-attention cache was rebuilt for this style
    ref_len: int  # anchored reference tokens (0 for a text style)
    window_before: list[int] = field(default_factory=list)  # cached frames before the switch
    window_after: list[int] = field(default_factory=list)  # cached frames kept (the last one)
    matched: str | None = None  # the trained style a free prompt was matched to, when it is not one


class EngineEvents:
    """What an engine reports. Every method may be called from the engine's own thread; override the
    ones you need (the Qt adapter turns each into a signal)."""

    def on_load_started(self, title: str) -> None: ...
    def on_load_progress(self, percent: int, message: str) -> None: ...  # percent -1: busy, no estimate
    def on_model_ready(self, info: ModelInfo) -> None: ...
    def on_model_failed(self, message: str) -> None: ...
    def on_frames(self, frames: list[StylizedFrame]) -> None: ...  # in order, after the sinks had them
    def on_style_applied(self, change: StyleChange) -> None: ...
    def on_style_failed(self, message: str) -> None: ...
    def on_error(self, kind: str, message: str) -> None: ...  # kind: "oom", "engine", "sink", "network"
    def on_halted(self, halted: bool) -> None: ...  # True: inference paused after an error
    def on_connection(self, state: str, detail: str) -> None: ...  # remote engines only


def matched_style(stylizer) -> str | None:
    match = stylizer.prompt_match
    return match.describe() if match is not None and not match.exact else None


Sink = Callable[[list[StylizedFrame]], None]
_STOP = object()


# ------------------------------------------------------------------------------------ engine
class LiveEngine:
    """Owns the StreamStylizer on its own thread; ``start()`` it, then submit frames and commands."""

    def __init__(self, events: EngineEvents | None = None, queue_size: int = 2):
        self.events = events or EngineEvents()
        self.frames = FrameQueue(queue_size)
        self.stylizer = None
        self._full_strength = 1.0  # the loaded model's own strength, which the relative strength scales
        self.model_info: ModelInfo | None = None
        self.style: tuple[StyleSpec, str] | None = None  # the style in effect (spec, label)
        self.style_serial = 0
        self.speed = SpeedRequest()  # the speed in effect (the last load's, changed live)
        self.processed = 0
        self._cmds: queue.Queue = queue.Queue()
        self._cmds_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pending: deque[CapturedFrame] = deque()
        self._sinks = OutputSinks()
        self._halted: str | None = None
        self._busy_loading = False
        self._fade = CrossFade()
        self._out_index = 0
        self._stats_lock = threading.Lock()
        self._stats: dict = {}

    # ------------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self.running:
            return
        self.frames.reopen()
        self._thread = threading.Thread(target=self._run, name="engine-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> bool:
        """Finish the current chunk, release the model and join the thread. True if it ended."""
        self._cmds.put((_STOP, ()))
        self.frames.close()
        t = self._thread
        alive = False
        if t is not None:
            t.join(timeout)
            alive = t.is_alive()
        self._thread = t if alive else None
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
    def submit(self, image: np.ndarray, timestamp: float, media_time: float | None = None, tag=None) -> int:
        """Offer a captured frame; returns how many older frames were dropped for it."""
        return self.frames.put(CapturedFrame(image, timestamp, media_time, tag))

    def load(self, request: LoadRequest) -> Future:
        """Load (or reload) a model on the engine thread; the future gets the ModelInfo or the error."""
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

    @property
    def crossfade_s(self) -> float:
        return self._fade.seconds

    def set_crossfade(self, seconds: float) -> None:
        self._command("crossfade", max(0.0, float(seconds)))

    def reset_stream(self) -> None:
        """A new video starts (source switched or seeked): forget the frames, keep the style."""
        self.frames.clear()
        self._command("reset")

    def resume(self) -> None:
        """Try again after an error paused inference."""
        self._command("resume")

    def add_sink(self, sink: Sink) -> None:
        """``sink(frames)`` is called on the engine thread with every stylized chunk (recording)."""
        self._sinks.add(sink)

    def remove_sink(self, sink: Sink) -> None:
        self._sinks.remove(sink)

    def stats(self) -> dict:
        """Per-stage milliseconds per frame, chunks, frames dropped by the queue."""
        with self._stats_lock:
            s = dict(self._stats)
        s["queue_dropped"] = self.frames.dropped
        s["processed"] = self.processed
        return s

    def _command(self, name: str, *args) -> None:
        with self._cmds_lock:
            self._cmds.put((name, args))
        self.frames.wake()

    # --------------------------------------------------------------------- the engine thread
    def _run(self) -> None:
        while True:
            if not self._handle_commands():
                break
            if self.stylizer is None or self.style is None or self._halted:
                with self._cmds_lock:  # frames that came while nothing could stylize them are stale, but
                    if self._cmds.empty():  # not those sent just after a command that will (a style)
                        self.frames.clear()
                self.frames.wait(timeout=0.1)
                continue
            item = self.frames.get(timeout=0.1)
            if item is None:
                continue
            self._process(item)
        self._drop_stylizer()

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
            except Exception as e:  # a command must never kill the engine
                log.exception("engine command %s failed", name)
                self.events.on_error("engine", f"{name} failed: {e}")

    def _drop_stylizer(self) -> None:
        if self.stylizer is not None:
            device = self.model_info.device if self.model_info else "cpu"
            self.stylizer = None
            self._pending.clear()
            free_memory(device)

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
            self.events.on_model_failed(msg)
        else:
            if not fut.done():
                fut.set_result(info)
            self.events.on_model_ready(info)
        finally:
            self._busy_loading = False

    def _load(self, req: LoadRequest) -> ModelInfo:
        from model.stylizer import StyleError

        t0 = time.perf_counter()
        folder = Path(req.folder) if req.folder else None
        self.events.on_load_started(f"Loading model {folder.name if folder else 'default'}")
        progress = self.events.on_load_progress
        relative = req.strength
        req = replace(req, strength=None)  # the model card's strength, scaled below
        try:
            built = build_stylizer(req, progress)
        except BaseException as e:
            if not (is_out_of_memory(e) and self.stylizer is not None):
                raise
            self._drop_stylizer()  # not enough memory for two models at once: let the old one go
            built = build_stylizer(req, progress)
        stylizer, device = built.stylizer, built.device
        full_strength = stylizer.strength
        if relative is not None:
            stylizer.set_strength(full_strength * min(max(relative, 0.01), 1.0))
        model = stylizer.model
        if self.style is not None:
            progress(75, "Encoding the style")
            spec, _label = self.style
            try:
                spec.apply(stylizer)
            except (StyleError, OSError) as e:
                self.style = None
                self.events.on_style_failed(str(e))
        if req.warmup and stylizer.style is not None:
            progress(85, "Warming up")
            gray = np.full((stylizer.height, stylizer.width, 3), 128, np.uint8)
            stylizer.push([gray] * stylizer.chunk_size)
            stylizer.reset()
        self._drop_stylizer()  # swap in the new stylizer
        self.stylizer, self._full_strength = stylizer, full_strength
        self.frames.clear()
        self.frames.resize(max(2, stylizer.chunk_size))
        self._set_halted(None)
        self._fade.forget()
        stride, patch = model.config.vae_stride, model.config.patch_size
        info = ModelInfo(
            name=model.name, folder=model.folder, trained=model.trained, config_name=model.config.name,
            device=device, device_label=device_label(device),
            resolution=(stylizer.height, stylizer.width), native_resolution=built.native_resolution,
            resolution_step=(stride[1] * patch[1], stride[2] * patch[2]), chunk_size=stylizer.chunk_size,
            default_steps=len(model.config.denoising_steps), load_seconds=time.perf_counter() - t0,
            source_size=stylizer.guided)
        self.model_info = info
        progress(100, "Ready")
        if self.style is not None and stylizer.style is not None:
            self.style_serial += 1
            cache = stylizer.cache
            self.events.on_style_applied(StyleChange(
                serial=self.style_serial, label=self.style[1], spec=self.style[0], kind=stylizer.style.kind,
                cross_ready=cache.cross_ready, cross_changed=True, ref_len=cache.ref_len,
                window_before=[], window_after=cache.frames_in_window(), matched=matched_style(stylizer)))
        return info

    def _cmd_style(self, spec: StyleSpec, label: str) -> None:
        from model.stylizer import StyleError

        st = self.stylizer
        if st is None:  # remembered; applied when a model is loaded
            self.style = (spec, label)
            return
        cache = st.cache
        before = cache.frames_in_window()
        version = cache.condition_version
        try:
            spec.apply(st)
        except (StyleError, OSError, ValueError) as e:
            self.events.on_style_failed(str(e))
            return
        except BaseException as e:
            if is_out_of_memory(e):
                self._oom(e)
                return
            raise
        self.style = (spec, label)
        self.style_serial += 1
        self._fade.begin()
        if self._halted:
            self._set_halted(None)
        self.events.on_style_applied(StyleChange(
            serial=self.style_serial, label=label, spec=spec, kind=spec.kind,
            cross_ready=cache.cross_ready, cross_changed=cache.condition_version != version,
            ref_len=cache.ref_len, window_before=before, window_after=cache.frames_in_window(),
            matched=matched_style(st)))

    def _cmd_strength(self, strength: float) -> None:
        if self.stylizer is not None:  # relative to the model's own strength (see LoadRequest)
            self.stylizer.set_strength(self._full_strength * min(max(strength, 0.01), 1.0))

    def _cmd_speed(self, speed: SpeedRequest) -> None:
        self.speed = speed
        if self.stylizer is not None:
            window = self.stylizer.window_frames
            speed.apply(self.stylizer)
            if self.stylizer.window_frames != window:
                self._pending.clear()  # a new window restarts the stream
        if self._halted:
            self._set_halted(None)

    def _cmd_steps(self, steps: int | None) -> None:
        self._cmd_speed(replace(self.speed, steps=steps))

    def _cmd_crossfade(self, seconds: float) -> None:
        self._fade.set_seconds(seconds)

    def _cmd_reset(self) -> None:
        self._pending.clear()
        self._fade.cancel()
        if self.stylizer is not None:
            self.stylizer.reset()

    def _cmd_resume(self) -> None:
        if self.stylizer is not None:
            self.stylizer.reset()
        self._pending.clear()
        self._set_halted(None)

    # ----------------------------------------------------------------------------- frames
    def _process(self, item: CapturedFrame) -> None:
        """Stylize one captured frame; each stylized frame goes out as soon as the stylizer yields it
        (a source-size model's first frame of a chunk leaves while the next one decodes)."""
        outputs = self._stylize(item)
        if outputs is None:  # refused at the call: already reported
            return
        while True:
            try:
                out = next(outputs)
            except StopIteration:
                return
            except BaseException as e:
                self._failed(e)
                return
            self._emit(out, item)

    def _stylize(self, item: CapturedFrame):
        st = self.stylizer
        try:
            # sized once, as the output shows it: the stylizer and the side-by-side view share this copy
            item = replace(item, image=st.as_output(item.image))
            self._pending.append(item)
            return st.stream(item.image)
        except BaseException as e:
            self._failed(e)
            return None

    def _failed(self, e: BaseException) -> None:
        if is_out_of_memory(e):
            self._oom(e)
            return
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise e
        log.error("stylizing failed:\n%s", "".join(traceback.format_exception(e)))
        self._pending.clear()
        try:
            self.stylizer.reset()
        except Exception:
            pass
        self._set_halted(f"{e.__class__.__name__}: {e}")
        self.events.on_error("engine", f"Stylizing stopped: {e.__class__.__name__}: {e}")

    def _emit(self, out: np.ndarray, item: CapturedFrame) -> None:
        src = self._pending.popleft() if self._pending else item
        out = self._fade.apply(out, src.timestamp)
        self._out_index += 1
        frame = StylizedFrame(out, src.image, src.timestamp, time.perf_counter(), self._out_index,
                              self.style_serial, src.media_time, src.tag, ends_chunk=not self._pending)
        self.processed += 1
        with self._stats_lock:
            self._stats = dict(self.stylizer.times.per_frame())
        self._sinks.deliver([frame], lambda e: self.events.on_error("sink", f"an output stopped: {e}"))
        self.events.on_frames([frame])

    def _oom(self, exc: BaseException) -> None:
        device = self.model_info.device if self.model_info else "cpu"
        self._pending.clear()
        try:
            if self.stylizer is not None:
                self.stylizer.reset()
        except Exception:
            pass
        free_memory(device)
        where = "GPU" if device.startswith(("cuda", "mps")) else "system"
        self._set_halted("out of memory")
        self.events.on_error("oom", f"Out of {where} memory while stylizing on {device_label(device)}. "
                                    "Lower the resolution or the steps, close other GPU programs, or use "
                                    "the CPU, then press Retry or Reload.")

    def _set_halted(self, reason: str | None) -> None:
        was = self._halted
        self._halted = reason
        if bool(was) != bool(reason):
            self.events.on_halted(bool(reason))
