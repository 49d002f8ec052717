"""Outputs of the live view: recording to MP4, screenshots, and the virtual camera.

Recording taps the engine's results on its own thread (``EngineWorker.add_sink``) so it keeps every
frame the engine makes, not only those the display had time for; finishing the file runs off the GUI
thread. Screenshots and the virtual camera use the frame the person sees (``LiveDisplay.shown``).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from ..sources.base import FrameSource
from ..sources.file_source import FileSource
from ..worker import EngineWorker, StylizedFrame
from .actions import make_action, set_checked_quietly
from .banner import BannerArea
from .live_display import LiveDisplay
from .overlay import format_duration
from .settings import AppSettings
from .status_bar import StatusBar
from .tasks import TaskSet
from .video_view import VideoView

log = logging.getLogger(__name__)


class OutputController(QObject):
    recorderError = Signal(str)  # from the recorder's thread, delivered on the GUI thread
    message = Signal(str, int)  # a status-bar message and how long to show it (ms)

    def __init__(self, worker: EngineWorker, display: LiveDisplay, settings: AppSettings, banners: BannerArea,
                 stylized_view: VideoView, status: StatusBar, tasks: TaskSet,
                 source: Callable[[], FrameSource | None], layout: Callable[[], str],
                 parent: QObject | None = None):
        super().__init__(parent)
        self.worker, self.display, self.settings, self.banners = worker, display, settings, banners
        self.stylized_view, self.status, self.tasks = stylized_view, status, tasks
        self._source, self._layout = source, layout
        self.recorder = None
        self._record_sink: Callable[[list[StylizedFrame]], None] | None = None
        self._record_started = 0.0
        self.last_recording = None
        self.last_screenshot: Path | None = None
        self.vcam = None
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outputs")

        self.record_action = make_action(self, "● Record", self.set_recording, "Ctrl+R", checkable=True,
                                         tip="Record the stylized output (or side by side) to MP4")
        self.screenshot_action = make_action(self, "Screenshot", self.save_screenshot, "Ctrl+Shift+S",
                                             tip="Save the stylized view (or side by side) as PNG")
        self.vcam_action = make_action(self, "Virtual camera", self.set_virtual_camera, checkable=True,
                                       tip="Send the stylized video to other programs as a camera")
        self.recorderError.connect(self._recorder_error)
        display.shown.connect(self._send_to_vcam)

    def _new_output_path(self, banner: str, suffix: str) -> Path | None:
        """A time-stamped file in the output folder (created if needed); None, with a banner, if it can't be."""
        folder = self.settings.output_folder()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            self.banners.show_message(banner, f"Cannot create {folder}: {e.strerror or e}")
            return None
        return folder / f"RTR-{time.strftime('%Y%m%d-%H%M%S')}{suffix}"

    # ------------------------------------------------------------------------------ recording
    def set_recording(self, on: bool) -> None:
        if on and self.recorder is None:
            if not self.start_recording():
                self._show_recording(False)
        elif not on and self.recorder is not None:
            self.stop_recording()

    def _show_recording(self, on: bool) -> None:
        set_checked_quietly(self.record_action, on)
        self.record_action.setText("■ Stop recording" if on else "● Record")

    def start_recording(self, path: str | Path | None = None) -> bool:
        try:
            from ..outputs.recorder import Recorder
        except ImportError as e:
            self.banners.show_message("record", f"Recording is not available: {e}")
            return False
        if path is None:
            path = self._new_output_path("record", ".mp4")
            if path is None:
                return False
        source = self._source()
        fps = source.nominal_fps if source is not None else 30.0
        audio, inputs = None, []
        if isinstance(source, FileSource):
            inputs = [("the source video", source.path)]  # never recorded over, with or without sound
            if source.has_audio:
                audio = (str(source.path), 0.0)  # the file's sound, aligned by each frame's position
        try:
            rec = Recorder(path, layout=self._layout(), fps_hint=fps, audio_source=audio,
                           on_error=self.recorderError.emit, inputs=inputs)
            rec.start()
        except Exception as e:
            self.banners.show_message("record", f"Cannot start recording to {path}: {e}")
            return False
        t0: list[float | None] = [None]

        def sink(frames: list[StylizedFrame]) -> None:  # the engine's thread
            for f in frames:
                if t0[0] is None:
                    t0[0] = f.timestamp
                rec.submit(f.image, f.source, f.timestamp - t0[0], media_time=f.media_time if audio else None)

        self.recorder, self._record_sink = rec, sink
        self._record_started = time.perf_counter()
        self.worker.add_sink(sink)
        self.banners.clear("record")
        self._show_recording(True)
        self.stylized_view.set_badge("REC")
        self.message.emit(f"Recording to {path}", 4000)
        return True

    def stop_recording(self) -> asyncio.Future | None:
        rec, sink = self.recorder, self._record_sink
        if rec is None:
            return None
        self.recorder, self._record_sink = None, None
        self.worker.remove_sink(sink)
        self._show_recording(False)
        self.stylized_view.set_badge("")
        self.status.set_recording("finishing the file…")
        return self.tasks.spawn(self._finish_recording(rec))

    async def _finish_recording(self, rec) -> None:
        loop = asyncio.get_event_loop()
        summary = await loop.run_in_executor(self._io, rec.stop)  # flushes the encoder off the GUI thread
        self.last_recording = summary
        self.status.set_recording("")
        if summary.error:
            self.banners.show_message("record", f"Recording failed: {summary.error}")
        else:
            self.message.emit(f"Saved {summary.path} ({summary.frames} frames, {summary.duration:.1f} s, "
                              f"{summary.dropped} dropped)", 8000)

    def _recorder_error(self, message: str) -> None:
        self.banners.show_message("record", f"Recording problem: {message}")
        if self.recorder is not None:
            self.stop_recording()

    def update_status(self) -> None:
        r = self.recorder
        if r is None:
            self.status.set_recording("")
            return
        secs = time.perf_counter() - self._record_started
        behind = " · encoder behind" if r.behind else ""
        self.status.set_recording(f"● REC {format_duration(secs)} · {r.frames_written} frames"
                                  f" · dropped {r.dropped}{behind}")

    # ------------------------------------------------------------------------------ screenshot
    def save_screenshot(self, path: str | Path | None = None) -> Path | None:
        from ..outputs.layout import compose

        frame = self.display.last_shown
        if frame is None:
            self.message.emit("Nothing to save yet: no stylized frame has been shown", 4000)
            return None
        image = compose(self._layout(), frame.image, frame.source)
        if path is None:
            path = self._new_output_path("screenshot", f"-{frame.index}.png")
            if path is None:
                return None
        path = Path(path)
        image = np.ascontiguousarray(image)
        qimg = QImage(image.data, image.shape[1], image.shape[0], image.strides[0], QImage.Format.Format_RGB888)
        if not qimg.save(str(path), "PNG"):
            self.banners.show_message("screenshot", f"Could not write {path}")
            return None
        self.banners.clear("screenshot")
        self.last_screenshot = path
        self.message.emit(f"Saved screenshot {path}", 5000)
        return path

    # ------------------------------------------------------------------------------ virtual camera
    def set_virtual_camera(self, on: bool) -> None:
        if on and self.vcam is None:
            if not self.start_virtual_camera():
                set_checked_quietly(self.vcam_action, False)
        elif not on and self.vcam is not None:
            self.stop_virtual_camera()

    def start_virtual_camera(self) -> bool:
        try:
            from ..outputs.virtualcam import VirtualCamera, virtual_camera_status
        except ImportError as e:
            self.banners.show_message("vcam", f"Virtual camera not available: {e}", level="warning")
            return False
        available, message = virtual_camera_status()
        if not available:
            self.banners.show_message("vcam", message, level="warning")
            return False
        try:
            cam = VirtualCamera(1280, 720, 30.0)  # what meeting apps expect; frames are letterboxed into it
            cam.start()
        except Exception as e:
            self.banners.show_message("vcam", f"Virtual camera could not start: {e}", level="warning")
            return False
        self.vcam = cam
        self.banners.clear("vcam")
        set_checked_quietly(self.vcam_action, True)
        self.message.emit(f"Virtual camera on: {message}", 5000)
        return True

    def stop_virtual_camera(self) -> None:
        cam, self.vcam = self.vcam, None
        set_checked_quietly(self.vcam_action, False)
        if cam is not None:
            try:
                cam.stop()
            except Exception as e:
                log.warning("virtual camera stop failed: %s", e)

    def _send_to_vcam(self, frame: StylizedFrame) -> None:
        if self.vcam is None:
            return
        try:
            self.vcam.send(frame.image)
        except Exception as e:
            self.stop_virtual_camera()
            self.banners.show_message("vcam", f"The virtual camera stopped: {e}")

    # ------------------------------------------------------------------------------ closing
    def shutdown(self) -> None:
        """Finish a recording here and now (the window is closing), stop the camera, join the thread."""
        rec = self.recorder
        if rec is not None:
            self.worker.remove_sink(self._record_sink)
            self.recorder, self._record_sink = None, None
            self.last_recording = rec.stop()
        self.stop_virtual_camera()
        self._io.shutdown(wait=True)
