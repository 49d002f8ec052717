"""Offline "Export file…": every frame of a video through its own StreamStylizer into an MP4.

The render runs in an executor thread and is awaited on the asyncio loop that qasync runs on the Qt
event loop, so the window stays live and the live view keeps its own model and cache. Progress
arrives through ``loop.call_soon_threadsafe``; Cancel stops at the next frame and keeps what was
written so far. An output that is the source video or the reference image (any spelling of the path)
is refused before anything is loaded; an existing output is replaced only when the export finishes
or is cancelled (``outputs.output_path``).
"""
from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from ..outputs.output_path import OutputPathError, check_output
from ..render import RenderCancelled, RenderResult, render_file
from ..styles import StyleSpec
from ..worker import LoadRequest, build_stylizer


@dataclass
class ExportJob:
    source: Path
    output: Path
    style: StyleSpec
    load: LoadRequest


class ExportController(QObject):
    started = Signal(object)  # ExportJob
    progress = Signal(int, int, float)  # frames done, total (0: unknown), seconds elapsed
    finished = Signal(object)  # RenderResult (``cancelled`` says whether it was stopped early)
    cancelled = Signal()  # stopped before any frame was written (nothing kept)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="export")
        self._cancel = threading.Event()
        self.task: asyncio.Task | None = None
        self.job: ExportJob | None = None
        self.last_result: RenderResult | None = None
        self.last_error: str | None = None
        self.was_cancelled = False

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    def start(self, job: ExportJob) -> asyncio.Task:
        if self.running:
            raise RuntimeError("an export is already running")
        self._cancel.clear()
        self.job = job
        self.last_result, self.last_error = None, None
        self.was_cancelled = False
        self.task = asyncio.ensure_future(self._run(job))
        return self.task

    def cancel(self) -> None:
        self._cancel.set()

    def shutdown(self) -> None:
        """Cancel a running export and wait for its thread (window closing)."""
        self._cancel.set()
        self._executor.shutdown(wait=True)

    async def _run(self, job: ExportJob) -> None:
        loop = asyncio.get_event_loop()
        t0 = time.perf_counter()
        self.started.emit(job)
        try:  # before a model is loaded: the source must never be the file written over
            check_output(job.output, [("the source video", job.source), ("the reference image", job.style.reference)])
        except OutputPathError as e:
            self.last_error = str(e)
            self.failed.emit(self.last_error)
            return
        last = [0.0]

        def progress(done: int, total: int) -> None:  # on the export thread
            now = time.perf_counter()
            if now - last[0] >= 0.1 or done == total:
                last[0] = now
                loop.call_soon_threadsafe(self.progress.emit, done, total, now - t0)

        def work() -> RenderResult:
            load = LoadRequest(**{**job.load.__dict__, "warmup": False})
            stylizer, _, _ = build_stylizer(load)
            if self._cancel.is_set():
                raise RenderCancelled()
            return render_file(stylizer, job.source, job.output, job.style, (), None, progress, self._cancel.is_set)

        try:
            result = await loop.run_in_executor(self._executor, work)
        except Exception as e:  # readable errors: unreadable input, model folder, disk full
            if isinstance(e, RenderCancelled) or self._cancel.is_set():
                self.was_cancelled = True
                self.cancelled.emit()
                return
            self.last_error = str(e).strip() or e.__class__.__name__
            self.failed.emit(self.last_error)
            return
        self.last_result = result
        self.finished.emit(result)
