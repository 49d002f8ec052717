"""The window's side of "Export file…": the two file dialogs, the progress panel and the messages.
The render itself (its own model, its own thread) is ``export.ExportController``."""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QWidget

from ..sources.base import SourceInfo
from ..sources.file_source import VIDEO_SUFFIXES
from ..worker import EngineWorker, LoadRequest
from .actions import make_action
from .banner import BannerArea
from .export import ExportController, ExportJob
from .overlay import ExportPanel
from .settings import AppSettings
from .tasks import TaskSet


class ExportFlow(QObject):
    message = Signal(str, int)  # a status-bar message and how long to show it (ms)

    def __init__(self, window: QWidget, worker: EngineWorker, settings: AppSettings, banners: BannerArea,
                 panel: ExportPanel, tasks: TaskSet, load_request: Callable[[], LoadRequest],
                 current_source: Callable[[], SourceInfo | None]):
        super().__init__(window)
        self.window, self.worker, self.settings, self.banners = window, worker, settings, banners
        self.panel, self.tasks = panel, tasks
        self._load_request, self._current_source = load_request, current_source
        self.export = ExportController(self)
        self.action = make_action(self, "Export file…", self.dialog, "Ctrl+E",
                                  tip="Stylize a whole video file offline (every frame)")
        self.export.progress.connect(panel.update_progress)
        self.export.finished.connect(self._finished)
        self.export.failed.connect(self._failed)
        self.export.cancelled.connect(self._cancelled)
        panel.cancelRequested.connect(self._cancel)

    def dialog(self) -> None:
        if self.export.running:
            self.message.emit("An export is already running", 4000)
            return
        patterns = " ".join(f"*{s}" for s in sorted(VIDEO_SUFFIXES))
        info = self._current_source()
        start = info.address if info and info.kind == "file" else str(Path.home())
        src, _ = QFileDialog.getOpenFileName(self.window, "Export: choose the video to stylize", start,
                                             f"Videos ({patterns});;All files (*)")
        if not src:
            return
        default = self.settings.output_folder() / f"{Path(src).stem}-stylized.mp4"
        out, _ = QFileDialog.getSaveFileName(self.window, "Export: save the stylized video as", str(default),
                                             "MP4 video (*.mp4)")
        if out:
            if not out.lower().endswith(".mp4"):
                out += ".mp4"
            self.start(src, out)

    def start(self, source: str | Path, output: str | Path) -> asyncio.Future | None:
        """Render ``source`` to ``output`` with the current style on a separate model instance."""
        if self.export.running:
            return None
        if self.worker.style is None:
            self.banners.show_message("export", "Choose a style before exporting")
            return None
        spec = self.worker.style[0]
        self.banners.clear("export")
        task = self.tasks.track(self.export.start(ExportJob(Path(source), Path(output), spec, self._load_request())))
        self.panel.begin(Path(output).name)
        self.action.setEnabled(False)
        return task

    def _cancel(self) -> None:
        self.export.cancel()
        self.panel.cancelling()

    def _finished(self, result) -> None:
        self.panel.hide()
        self.action.setEnabled(True)
        state = "stopped early" if result.cancelled else "done"
        text = f"Export {state}: {result.output} ({result.frames_out} frames, {result.fps:.1f} frames/s)"
        if result.input_short:
            text += f"; the input ended early: {result.short_input_note()}"
        self.message.emit(text, 20000 if result.input_short else 10000)

    def _cancelled(self) -> None:
        self.panel.hide()
        self.action.setEnabled(True)
        self.message.emit("Export cancelled", 6000)

    def _failed(self, message: str) -> None:
        self.panel.hide()
        self.action.setEnabled(True)
        self.banners.show_message("export", f"Export failed: {message}")

    def shutdown(self) -> None:
        self.export.shutdown()

