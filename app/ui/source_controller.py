"""Sources and transport: which camera or file feeds the engine, and play / pause / seek / loop.

Frames never pass through the GUI thread on their way to the engine: a ``SourceBridge`` on the
source's thread hands each one to the engine's queue and keeps only the newest for the source view.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QWidget

from ..sources.base import FrameSource, SourceError, SourceInfo
from ..sources.camera import CameraSource, list_cameras, parse_camera_address
from ..sources.file_source import VIDEO_SUFFIXES, FileSource
from ..worker import EngineWorker
from .actions import make_action
from .banner import BannerArea
from .live_display import LiveDisplay
from .settings import AppSettings
from .status_bar import RateMeter
from .transport import TransportBar
from .video_view import VideoView


class SourceBridge(QObject):
    """Runs on the source's thread: hands each frame to the engine queue and keeps the newest one for
    the source view, notifying the GUI once per batch (so a slow GUI never piles up frames)."""

    frameAvailable = Signal()
    error = Signal(str)
    state = Signal(str)

    def __init__(self, worker: EngineWorker, rate: RateMeter):
        super().__init__()
        self.worker, self.rate = worker, rate
        self.source: FrameSource | None = None
        self._lock = threading.Lock()
        self._latest: tuple[np.ndarray, float] | None = None
        self._notified = False
        self.active = True

    def sink(self, frame: np.ndarray, timestamp: float) -> None:
        if not self.active:
            return
        media_time = self.source.position if isinstance(self.source, FileSource) else None
        self.worker.submit(frame, timestamp, media_time)
        self.rate.tick(timestamp)
        with self._lock:
            self._latest = (frame, timestamp)
            notify = not self._notified
            self._notified = True
        if notify:
            self.frameAvailable.emit()

    def take(self) -> tuple[np.ndarray, float] | None:
        with self._lock:
            latest, self._latest = self._latest, None
            self._notified = False
        return latest

    def on_error(self, message: str) -> None:
        if self.active:
            self.error.emit(message)

    def on_state(self, state: str) -> None:
        if self.active:
            self.state.emit(state)


class SourceController(QObject):
    opened = Signal(object)  # SourceInfo, once it started

    def __init__(self, window: QWidget, worker: EngineWorker, display: LiveDisplay, settings: AppSettings,
                 banners: BannerArea, source_view: VideoView, stylized_view: VideoView, transport: TransportBar,
                 sample_clip: Path, initial: str | None = None):
        super().__init__(window)
        self.window, self.worker, self.display, self.settings = window, worker, display, settings
        self.banners, self.source_view, self.stylized_view = banners, source_view, stylized_view
        self.transport, self.sample_clip, self._initial = transport, sample_clip, initial
        self.source: FrameSource | None = None
        self.info: SourceInfo | None = None
        self._bridge: SourceBridge | None = None
        self._recent_files: list[SourceInfo] = []
        self._cameras: list[SourceInfo] = []
        self._failed_camera: SourceInfo | None = None

        self.open_action = make_action(self, "Open video…", self.open_file_dialog, "Ctrl+O", tip="Open a video file")
        self.sample_action = make_action(self, "Sample clip", self.open_sample, tip="Play the bundled sample clip")
        self.play_action = make_action(self, "Play / pause", self.toggle_play, "Space")
        self.play_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)

        self.transport_timer = QTimer(self)  # position and play state of a file
        self.transport_timer.setInterval(200)
        self.transport_timer.timeout.connect(self.update_transport)
        transport.set_loop(bool(settings.get("source/loop")))
        transport.aboutToShowSources.connect(self.refresh_menu)
        transport.chosen.connect(self._chosen)
        transport.playToggled.connect(self.toggle_play)
        transport.seekRequested.connect(self.seek_to)
        transport.loopToggled.connect(self._set_loop)
        try:  # cameras plugged in or out while the app runs
            from PySide6.QtMultimedia import QMediaDevices

            self._media_devices = QMediaDevices(self)
            self._media_devices.videoInputsChanged.connect(self._cameras_changed)
        except ImportError:
            self._media_devices = None

    # ------------------------------------------------------------------------------ opening
    def start(self) -> None:
        self.transport_timer.start()
        self.open_initial()

    def shutdown(self) -> None:
        self.transport_timer.stop()
        self.close()

    def open_initial(self) -> None:
        """The --source of this run, else the last source, else the sample clip."""
        if self._initial:
            info = self.resolve_address(self._initial)
            if info is not None:
                self.open_source(info)
                return
        last = self.settings.last_source or {}
        if last.get("kind") == "camera":
            cams = list_cameras()
            match = next((c for c in cams if c.name == last.get("name")), None) or \
                next((c for c in cams if c.index == last.get("index")), None)
            if match is not None and self.open_source(match):
                return
        elif last.get("kind") == "file" and last.get("address") and Path(last["address"]).is_file():
            if self.open_source(self._file_info(Path(last["address"]))):
                return
        self.open_sample()

    def resolve_address(self, address: str) -> SourceInfo | None:
        """``camera:N`` or a file path; None (with a banner) for a malformed camera address."""
        if address.startswith("camera:"):
            try:
                index = parse_camera_address(address)
            except SourceError as e:
                self.banners.show_message("source", str(e))
                return None
            named = next((c for c in list_cameras() if c.index == index), None)
            return named or SourceInfo("camera", f"Camera {index}", address, index=index)
        return self._file_info(Path(address))

    def _file_info(self, path: Path) -> SourceInfo:
        if path.resolve() == self.sample_clip.resolve():
            return SourceInfo("file", "Sample clip", str(path), detail="sample")
        return SourceInfo("file", path.name, str(path))

    def open_sample(self) -> bool:
        if not self.sample_clip.is_file():
            self.banners.show_message("source", f"The sample clip is missing ({self.sample_clip}). Open a video "
                                                "file or choose a camera.",
                                      actions=[("Open video…", self.open_file_dialog)])
            self.source_view.clear("No source")
            return False
        return self.open_source(self._file_info(self.sample_clip))

    def open_file(self, path: str | Path) -> bool:
        return self.open_source(self._file_info(Path(path)))

    def open_file_dialog(self) -> None:
        patterns = " ".join(f"*{s}" for s in sorted(VIDEO_SUFFIXES))
        start = str(Path(self.info.address).parent) if self.info and self.info.kind == "file" else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self.window, "Open a video file", start,
                                              f"Videos ({patterns});;All files (*)")
        if path:
            self.open_file(path)

    def open_source(self, info: SourceInfo) -> bool:
        """Stop the current source and start ``info``. Errors show in a banner; returns success."""
        self.close()
        bridge = SourceBridge(self.worker, self.display.in_rate)
        try:
            if info.kind == "camera":
                ok, why = CameraSource.available()
                if not ok:
                    raise SourceError(why)
                src = CameraSource(info, bridge.sink, bridge.on_error, bridge.on_state)
            else:
                src = FileSource(info.address, bridge.sink, bridge.on_error, bridge.on_state,
                                 loop=self.transport.loop())
        except SourceError as e:
            self._failed(str(e), info)
            self.update_transport()
            return False
        bridge.source = src
        bridge.frameAvailable.connect(self._on_frame)
        bridge.error.connect(lambda msg, i=info: self._failed(msg, i))
        bridge.state.connect(self._on_state)
        self._bridge, self.source, self.info = bridge, src, info
        self.worker.reset_stream()
        self.display.new_stream()
        self.banners.clear("source")
        self._failed_camera = None
        if self.stylized_view.message in ("No source", "Source stopped"):
            self.stylized_view.set_message("")
        self.source_view.clear("Opening…" if info.kind == "camera" else "")
        src.start()
        if info.kind == "file" and info.detail != "sample":
            self._recent_files = [f for f in self._recent_files if f.address != info.address][-4:] + [info]
        self.settings.last_source = {"kind": info.kind, "name": info.name, "address": info.address,
                                     "index": info.index}
        self.refresh_menu()
        self.update_transport()
        self.opened.emit(info)
        return True

    def close(self) -> None:
        """Stop the current source (its thread is joined); no more frames reach the engine from it."""
        src, bridge = self.source, self._bridge
        self.source, self._bridge = None, None
        if bridge is not None:
            bridge.active = False
            try:
                bridge.frameAvailable.disconnect()
                bridge.error.disconnect()
                bridge.state.disconnect()
            except (RuntimeError, TypeError):
                pass
        if src is not None:
            src.stop()

    @property
    def running(self) -> bool:
        return self.source is not None and self.source.running

    # ------------------------------------------------------------------------------ events
    def _cameras_changed(self) -> None:
        self.refresh_menu()
        failed = self._failed_camera
        if failed is not None and self.banners.text("source") is not None:
            back = next((c for c in self._cameras if c.name == failed.name), None)
            if back is not None:  # the camera that went away is back: carry on with it
                self.open_source(back)

    def _failed(self, message: str, info: SourceInfo) -> None:
        self._failed_camera = info if info.kind == "camera" else None
        actions = [("Choose source…", self.transport.show_sources)]
        if info.kind == "camera":
            actions.append(("Retry", lambda: self.open_source(info)))
        if self.sample_clip.is_file():
            actions.append(("Use sample clip", self.open_sample))
        self.banners.show_message("source", message, actions=actions)
        self.source_view.clear(message)
        if self.display.last_shown is None:
            self.stylized_view.clear("No source")
        else:
            self.stylized_view.set_message("Source stopped")

    def _on_frame(self) -> None:
        bridge = self._bridge
        if bridge is None:
            return
        latest = bridge.take()
        if latest is not None:
            self.source_view.set_frame(latest[0])
            if (self.worker.model_info is not None and self.display.last_shown is None
                    and not self.stylized_view.message):
                self.stylized_view.set_message("Waiting for the first chunk…")

    def _on_state(self, state: str) -> None:
        if state == "ended":
            self.source_view.set_message("End of video — press Play to start again")
        elif state == "playing":
            self.source_view.set_message("")
        self.update_transport()

    def refresh_menu(self) -> None:
        """The source menu: sample clip, cameras by name, recent files, "Open video file…"."""
        self._cameras = list_cameras()
        items: list[tuple[str, SourceInfo | str]] = []
        if self.sample_clip.is_file():
            items.append(("Sample clip", self._file_info(self.sample_clip)))
        items += [(f"Camera: {cam.label}", cam) for cam in self._cameras]
        items += [(f"File: {f.name}", f) for f in self._recent_files]
        if not self._cameras:
            items.append(("No camera found", "none"))
        items.append(("Open video file…", "open"))
        current = next((i for i, (_, data) in enumerate(items) if isinstance(data, SourceInfo)
                        and self.info is not None and data.address == self.info.address), -1)
        if current < 0 and self.info is not None:
            items.insert(0, (self.info.name, self.info))
            current = 0
        self.transport.set_sources(items, current)

    def _chosen(self, data) -> None:
        if data == "open":
            self.open_file_dialog()
            self.refresh_menu()
        elif isinstance(data, SourceInfo):
            if self.info is None or data.address != self.info.address or self.source is None:
                self.open_source(data)

    # ------------------------------------------------------------------------------ transport
    def toggle_play(self) -> None:
        if isinstance(self.source, FileSource):
            self.source.toggle()
            self.update_transport()

    def seek_to(self, seconds: float) -> None:
        if isinstance(self.source, FileSource):
            self.source.seek(seconds)
            self.worker.reset_stream()
            self.display.restart()

    def _set_loop(self, on: bool) -> None:
        self.settings.set("source/loop", on)
        if isinstance(self.source, FileSource):
            self.source.loop = on

    def update_transport(self) -> None:
        src = self.source
        if isinstance(src, FileSource):
            self.transport.show_file(src.playing, src.position, src.duration)
        else:
            self.transport.show_live(src is not None)

    def settings_reset(self) -> None:
        self.transport.set_loop(bool(self.settings.get("source/loop")))
