"""The main window: source and stylized views side by side, style gallery, prompt box, controls,
status bar. It wires sources -> EngineWorker -> views/outputs and never waits on the model itself."""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QStandardPaths, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QImage, QKeySequence
from PySide6.QtWidgets import (QApplication, QCheckBox, QComboBox, QFileDialog, QHBoxLayout, QLabel, QMainWindow,
                               QScrollArea, QSlider, QSplitter, QStyle, QToolBar, QToolButton, QVBoxLayout,
                               QWidget)

from ..sources.base import FrameSource, SourceError, SourceInfo
from ..sources.camera import CameraSource, list_cameras, parse_camera_address
from ..sources.file_source import VIDEO_SUFFIXES, FileSource
from ..styles import IMAGE_SUFFIXES, StyleSpec
from ..worker import EngineWorker, LoadRequest, ModelInfo, StyleChange, StylizedFrame, available_devices
from .banner import BannerArea
from .controls import ControlsPanel
from .export import ExportController, ExportJob
from .gallery import DEFAULT_GALLERY_DIR, GalleryPanel, Preset, import_reference_image, load_presets, user_presets_from
from .overlay import ExportPanel, ProgressOverlay, format_duration
from .prompt_box import PromptBox
from .settings import AppSettings, parse_resolution
from .status_bar import LatencyMeter, RateMeter, StatusBar
from .video_view import VideoView

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent.parent
SAMPLE_CLIP = ROOT / "resources" / "sample" / "sample.mp4"
DEFAULT_PROMPT = "watercolor painting"


# ------------------------------------------------------------------------------------ helpers
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


class DisplayPacer(QObject):
    """Shows stylized frames at their capture spacing, a measured playout delay after capture.

    A chunk's frames come back together; spreading them out by their capture timestamps keeps motion
    smooth. The delay is the largest recent (arrival - first capture) gap, so frames are rarely late;
    when some are (the machine hiccups), only the newest overdue frame is shown.
    """

    show = Signal(object)  # StylizedFrame

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._queue: deque[tuple[float, StylizedFrame]] = deque()
        self._lags: deque[float] = deque(maxlen=16)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self._tick)
        self.dropped = 0

    def add(self, frames: list[StylizedFrame]) -> None:
        if not frames:
            return
        now = time.perf_counter()
        self._lags.append(now - frames[0].timestamp)
        delay = max(self._lags)
        last_due = self._queue[-1][0] if self._queue else 0.0
        for f in frames:
            due = max(f.timestamp + delay, last_due)
            self._queue.append((due, f))
            last_due = due
        self._schedule(now)

    def _tick(self) -> None:
        now = time.perf_counter()
        newest = None
        while self._queue and self._queue[0][0] <= now + 0.002:
            if newest is not None:
                self.dropped += 1
            newest = self._queue.popleft()[1]
        if newest is not None:
            self.show.emit(newest)
        self._schedule(now)

    def _schedule(self, now: float) -> None:
        if self._queue:
            self.timer.start(max(0, int((self._queue[0][0] - now) * 1000)))

    def clear(self) -> None:
        self._queue.clear()
        self._lags.clear()
        self.timer.stop()

    def stop(self) -> None:
        self.clear()


class SourceCombo(QComboBox):
    aboutToShowPopup = Signal()

    def showPopup(self) -> None:
        self.aboutToShowPopup.emit()
        super().showPopup()


def _local_files(mime) -> list[Path]:
    if not mime.hasUrls():
        return []
    return [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()]


# -------------------------------------------------------------------------------- the window
class MainWindow(QMainWindow):
    recorderError = Signal(str)

    def __init__(self, settings: AppSettings | None = None, model_dir: str | Path | None = None,
                 source: str | None = None, device: str | None = None, gallery_dir: str | Path | None = None,
                 data_dir: str | Path | None = None, sample_clip: str | Path | None = None):
        super().__init__()
        self.settings = settings or AppSettings()
        self._cli_model = Path(model_dir) if model_dir else None
        self._cli_source = source
        self._cli_device = device
        self.gallery_dir = Path(gallery_dir) if gallery_dir else DEFAULT_GALLERY_DIR
        if data_dir is None:
            base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
            data_dir = Path(base) if base else Path.home() / ".rtr-studio"
        self.data_dir = Path(data_dir)
        self.sample_clip = Path(sample_clip) if sample_clip else SAMPLE_CLIP

        self.worker = EngineWorker(self)
        self.source: FrameSource | None = None
        self.source_info: SourceInfo | None = None
        self._bridge: SourceBridge | None = None
        self.model_info: ModelInfo | None = None
        self._applied_engine: dict | None = None
        self._loading = False
        self.current_style: StyleChange | None = None
        self._style_keys: dict[StyleSpec, str | None] = {}
        self.builtin_presets: list[Preset] = []
        self.user_presets: list[Preset] = []
        self.recorder = None
        self._record_sink = None
        self._record_started = 0.0
        self.last_recording = None
        self.vcam = None
        self.last_screenshot: Path | None = None
        self._last_shown: StylizedFrame | None = None
        self._tasks: set[asyncio.Future] = set()
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outputs")
        self._closed = False
        self._recent_files: list[SourceInfo] = []
        self._cameras: list[SourceInfo] = []
        self._failed_camera: SourceInfo | None = None
        self.in_rate, self.out_rate = RateMeter(), RateMeter()
        self.latency = LatencyMeter()

        self.setWindowTitle("RTR Studio")
        self.setAcceptDrops(True)
        self._build_ui()
        self._build_menus()
        self._connect()
        self._restore_layout()
        self.controls.load_from(self.settings)
        self._apply_cli_overrides()
        self._load_gallery()

    def _apply_cli_overrides(self) -> None:
        """--model / --device hold for this run (shown in the controls, not saved unless applied again)."""
        v = self.controls.engine_values()
        self.controls.set_engine_values(str(self._cli_model) if self._cli_model else v["model_dir"],
                                        self._cli_device or v["device"], v["resolution"])

    # ================================================================================ build
    def _build_ui(self) -> None:
        self.source_view = VideoView("Source")
        self.stylized_view = VideoView("Stylized")
        self.source_view.clear("No source yet")
        self.stylized_view.clear("Starting…")
        self.views = QSplitter(Qt.Orientation.Horizontal)
        self.views.addWidget(self.source_view)
        self.views.addWidget(self.stylized_view)
        self.views.setChildrenCollapsible(False)
        self.overlay = ProgressOverlay(self.stylized_view)

        # transport (file sources) -----------------------------------------------------------
        self.source_combo = SourceCombo()
        self.source_combo.setMinimumWidth(200)
        self.source_combo.setToolTip("Choose the video source: a camera (by name), a video file or the sample clip")
        self.play_button = QToolButton()
        self.play_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPause))
        self.play_button.setToolTip("Play / pause the video file (Space)")
        self.seek = QSlider(Qt.Orientation.Horizontal)
        self.seek.setRange(0, 0)
        self.seek.setToolTip("Seek in the video file")
        self.time_label = QLabel("–")
        self.time_label.setMinimumWidth(90)
        self.loop_check = QCheckBox("Loop")
        self.loop_check.setToolTip("Loop video files; when off, playback stops at the end")
        self.loop_check.setChecked(bool(self.settings.get("source/loop")))
        transport = QHBoxLayout()
        transport.setContentsMargins(0, 0, 0, 0)
        transport.addWidget(QLabel("Source:"))
        transport.addWidget(self.source_combo)
        transport.addWidget(self.play_button)
        transport.addWidget(self.seek, 1)
        transport.addWidget(self.time_label)
        transport.addWidget(self.loop_check)

        self.banners = BannerArea()
        self.prompt = PromptBox()
        self.gallery = GalleryPanel()

        left = QWidget()
        lay = QVBoxLayout(left)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.setSpacing(6)
        lay.addWidget(self.banners)
        self.content = QSplitter(Qt.Orientation.Vertical)
        top = QWidget()
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addWidget(self.views, 1)
        tl.addLayout(transport)
        tl.addWidget(self.prompt)
        self.content.addWidget(top)
        self.content.addWidget(self.gallery)
        self.content.setStretchFactor(0, 3)
        self.content.setStretchFactor(1, 1)
        self.content.setChildrenCollapsible(False)
        lay.addWidget(self.content, 1)

        self.controls = ControlsPanel(available_devices())
        scroll = QScrollArea()
        scroll.setWidget(self.controls)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(280)
        self.main_split = QSplitter(Qt.Orientation.Horizontal)
        self.main_split.addWidget(left)
        self.main_split.addWidget(scroll)
        self.main_split.setStretchFactor(0, 1)
        self.main_split.setStretchFactor(1, 0)
        self.main_split.setChildrenCollapsible(False)
        self.setCentralWidget(self.main_split)

        self.status = StatusBar()
        self.setStatusBar(self.status)
        self.export_panel = ExportPanel()
        self.status.addWidget(self.export_panel)
        self.export = ExportController(self)

        self.pacer = DisplayPacer(self)
        self.status_timer = QTimer(self)
        self.status_timer.setInterval(500)
        self.transport_timer = QTimer(self)
        self.transport_timer.setInterval(200)

    def _build_menus(self) -> None:
        tb = QToolBar("Main")
        tb.setObjectName("main_toolbar")
        tb.setMovable(False)
        self.addToolBar(tb)

        def action(text, slot, shortcut=None, checkable=False, tip=None):
            a = QAction(text, self)
            if shortcut:
                a.setShortcut(QKeySequence(shortcut))
            a.setCheckable(checkable)
            if tip:
                a.setToolTip(f"{tip} ({shortcut})" if shortcut else tip)
            (a.toggled if checkable else a.triggered).connect(slot)
            return a

        self.open_action = action("Open video…", self.open_file_dialog, "Ctrl+O", tip="Open a video file")
        self.sample_action = action("Sample clip", self.open_sample, tip="Play the bundled sample clip")
        self.record_action = action("● Record", self.set_recording, "Ctrl+R", checkable=True,
                                    tip="Record the stylized output (or side by side) to MP4")
        self.screenshot_action = action("Screenshot", self.save_screenshot, "Ctrl+Shift+S",
                                        tip="Save the stylized view (or side by side) as PNG")
        self.export_action = action("Export file…", self.export_dialog, "Ctrl+E",
                                    tip="Stylize a whole video file offline (every frame)")
        self.vcam_action = action("Virtual camera", self.set_virtual_camera, checkable=True,
                                  tip="Send the stylized video to other programs as a camera")
        self.side_action = action("Side by side", self.set_side_by_side, "Ctrl+\\", checkable=True,
                                  tip="Show the source next to the stylized video")
        self.add_image_action = action("Add reference image…", self.add_image_dialog, "Ctrl+I",
                                       tip="Use an image's style")
        self.model_action = action("Choose model folder…", self.choose_model_folder)
        self.reset_action = action("Reset to defaults", self.reset_to_defaults)
        self.quit_action = action("Quit", self.close, "Ctrl+Q")
        self.prompt_focus = action("Focus prompt", lambda: self.prompt.edit.setFocus(), "Ctrl+L")
        self.play_action = action("Play / pause", self.toggle_play, "Space")
        self.play_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)

        for a in (self.open_action, self.record_action, self.screenshot_action, self.export_action,
                  self.vcam_action):
            tb.addAction(a)
        tb.addSeparator()
        tb.addAction(self.side_action)

        m = self.menuBar().addMenu("&File")
        for a in (self.open_action, self.sample_action, None, self.export_action, self.record_action,
                  self.screenshot_action, self.vcam_action, None, self.quit_action):
            m.addSeparator() if a is None else m.addAction(a)
        v = self.menuBar().addMenu("&View")
        v.addAction(self.side_action)
        v.addAction(self.play_action)
        self.style_menu = self.menuBar().addMenu("&Style")
        self.style_menu.addAction(self.prompt_focus)
        self.style_menu.addAction(self.add_image_action)
        s = self.menuBar().addMenu("S&ettings")
        s.addAction(self.model_action)
        s.addAction(self.reset_action)
        self.addAction(self.play_action)
        self.addAction(self.prompt_focus)
        self.style_menu.addSeparator()
        self.preset_actions: list[QAction] = []

    def _rebuild_preset_actions(self) -> None:
        """Style menu entries for the first nine presets, on Ctrl+1 … Ctrl+9."""
        for a in self.preset_actions:
            self.style_menu.removeAction(a)
            a.deleteLater()
        self.preset_actions = []
        for i, preset in enumerate(self.presets[:9]):
            a = QAction(preset.name, self)
            a.setShortcut(QKeySequence(f"Ctrl+{i + 1}"))
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            a.triggered.connect(partial(self.select_preset, i))
            self.style_menu.addAction(a)
            self.preset_actions.append(a)

    def _connect(self) -> None:
        w = self.worker
        w.loadStarted.connect(self._on_load_started)
        w.loadProgress.connect(self.overlay.progress)
        w.framesReady.connect(self._on_frames)
        w.styleApplied.connect(self._on_style_applied)
        w.styleFailed.connect(self._on_style_failed)
        w.engineError.connect(self._on_engine_error)
        w.halted.connect(self._on_halted)
        self.pacer.show.connect(self._show_stylized)
        self.recorderError.connect(self._recorder_error)
        self.status_timer.timeout.connect(self._update_status)
        self.transport_timer.timeout.connect(self._update_transport)

        self.gallery.list.presetActivated.connect(self.apply_preset)
        self.gallery.list.removeRequested.connect(self.remove_user_preset)
        self.gallery.addImageRequested.connect(self.add_image_dialog)
        self.prompt.submitted.connect(self.apply_prompt)

        c = self.controls
        c.strengthChanged.connect(self._set_strength)
        c.stepsChanged.connect(self._set_steps)
        c.adacacheChanged.connect(self._set_adacache)
        c.crossfadeChanged.connect(self._set_crossfade)
        c.layoutChanged.connect(lambda v: self.settings.set("output/layout", v))
        c.outputFolderChanged.connect(lambda v: self.settings.set("output/folder", v))
        c.browseModelRequested.connect(self.choose_model_folder)
        c.browseOutputRequested.connect(self._choose_output_folder)
        c.reloadRequested.connect(self.reload_model)
        c.resetRequested.connect(self.reset_to_defaults)

        self.source_combo.aboutToShowPopup.connect(self._refresh_source_combo)
        try:  # cameras plugged in or out while the app runs
            from PySide6.QtMultimedia import QMediaDevices

            self._media_devices = QMediaDevices(self)
            self._media_devices.videoInputsChanged.connect(self._cameras_changed)
        except ImportError:
            self._media_devices = None
        self.source_combo.activated.connect(self._source_chosen)
        self.play_button.clicked.connect(self.toggle_play)
        self.seek.sliderReleased.connect(lambda: self.seek_to(self.seek.value() / 1000))
        self.seek.actionTriggered.connect(self._seek_action)
        self.loop_check.toggled.connect(self._set_loop)

        self.export.progress.connect(self.export_panel.update_progress)
        self.export.finished.connect(self._export_finished)
        self.export.failed.connect(self._export_failed)
        self.export.cancelled.connect(self._export_cancelled)
        self.export_panel.cancelRequested.connect(self._cancel_export)

    def _restore_layout(self) -> None:
        geo = self.settings.get_bytes("window/geometry")
        if geo is None or not self.restoreGeometry(geo):
            self.resize(1440, 860)
        state = self.settings.get_bytes("window/state")
        if state is not None:
            self.restoreState(state)
        for key, splitter, default in (("window/views_splitter", self.views, [1, 1]),
                                       ("window/main_splitter", self.main_split, [1120, 300])):
            st = self.settings.get_bytes(key)
            if st is None or not splitter.restoreState(st):
                splitter.setSizes(default)
        self.content.setSizes([620, 200])
        single = bool(self.settings.get("view/single"))
        self.side_action.setChecked(not single)
        self.source_view.setVisible(not single)

    def _save_layout(self) -> None:
        s = self.settings
        s.set_bytes("window/geometry", self.saveGeometry())
        s.set_bytes("window/state", self.saveState())
        s.set_bytes("window/views_splitter", self.views.saveState())
        s.set_bytes("window/main_splitter", self.main_split.saveState())
        s.set("view/single", not self.side_action.isChecked())
        s.sync()

    # ================================================================================ start
    def start(self) -> None:
        """Start the engine, load the model (in the background) and open the first source."""
        self.worker.set_crossfade(self.controls.crossfade_value() / 1000)
        self.worker.start()
        self.status_timer.start()
        self.transport_timer.start()
        self._choose_initial_style()
        self.reload_model()
        self._open_initial_source()

    def _spawn(self, coro) -> asyncio.Future:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Future) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    # ================================================================================ model
    def load_request(self) -> LoadRequest:
        v = self.controls.engine_values()
        return LoadRequest(folder=Path(v["model_dir"]) if v["model_dir"] else None, device=v["device"],
                           resolution=parse_resolution(v["resolution"]), speed=self._speed_request(),
                           strength=self.controls.strength_value())

    def _speed_request(self):
        from model.speed import SpeedRequest

        return SpeedRequest(steps=self.controls.steps_value(),
                            adacache="fast" if self.controls.adacache.isChecked() else None)

    def reload_model(self) -> asyncio.Future:
        """Load the model with the engine settings shown; the window keeps running meanwhile."""
        req = self.load_request()
        self._loading = True
        self.record_action.setEnabled(False)
        self.overlay.start("Loading model", str(req.folder) if req.folder else "embedded default model")
        if self.model_info is None:
            self.stylized_view.clear("")
        return self._spawn(self._load_model(req, self.controls.engine_values()))

    async def _load_model(self, req: LoadRequest, engine: dict) -> None:
        try:
            info = await asyncio.wrap_future(self.worker.load(req))
        except Exception as e:
            self._model_failed(e, req)
        else:
            self._model_ready(info, engine)
        finally:
            self._loading = False
            self.record_action.setEnabled(True)
            self.overlay.finish()

    def _on_load_started(self, title: str) -> None:
        self.overlay.title.setText(title)

    def _model_ready(self, info: ModelInfo, engine: dict) -> None:
        self.model_info = info
        self._applied_engine = dict(engine)
        # persist only what was actually applied (CLI overrides are for this run only)
        if not (self._cli_model and engine["model_dir"] == str(self._cli_model)):
            self.settings.set("engine/model_dir", engine["model_dir"])
        if not (self._cli_device and engine["device"] == self._cli_device):
            self.settings.set("engine/device", engine["device"])
        self.settings.set("engine/resolution", engine["resolution"])
        self.controls.set_model_info(info, engine)
        self.banners.clear("model")
        self.banners.clear("engine")
        self.status.set_device(info.device_label)
        h, w = info.resolution
        detail = (f"{info.folder}\nconfig {info.config_name}, {w}×{h}, chunks of {info.chunk_size} frames, "
                  f"loaded in {info.load_seconds:.1f} s")
        self.status.set_model(info.name + ("" if info.trained else " (untrained)"), detail)
        if not info.trained:
            self.banners.show_message(
                "model_note", f"Model '{info.name}' has untrained (random) weights: the output will not look "
                              "like the chosen style.", level="info")
        else:
            self.banners.clear("model_note")
        if self.worker.style is None:
            self._choose_initial_style(force=True)
        if self._last_shown is None:
            self.stylized_view.clear("Waiting for frames…" if self.source else "Choose a source")
        self.statusBar().showMessage(f"Model {info.name} ready on {info.device_label}", 4000)

    def _model_failed(self, exc: Exception, req: LoadRequest) -> None:
        from model.checkpoint import DEFAULT_MODEL_DIR

        msg = str(exc).strip() or exc.__class__.__name__
        actions = [("Choose model folder…", self.choose_model_folder)]
        if req.folder is not None and DEFAULT_MODEL_DIR.is_dir():
            actions.append(("Use embedded model", self._use_default_model))
        if msg.startswith("model folder not found"):
            msg += "\nChoose a model folder (a folder with config.json and .safetensors weights)."
        still = (f"\nStill running the previous model ({self.model_info.name})." if self.model_info else "")
        self.banners.show_message("model", f"The model could not be loaded: {msg}{still}", actions=actions)
        if self.model_info is None:
            self.stylized_view.clear("No model loaded — choose a model folder")
            self.status.set_model("none")
        self.controls.set_applied(self._applied_engine)

    def choose_model_folder(self) -> None:
        start = self.controls.engine_values()["model_dir"] or str(ROOT / "resources" / "models")
        folder = QFileDialog.getExistingDirectory(self, "Choose a model folder", start)
        if folder:
            self.set_model_folder(folder)

    def set_model_folder(self, folder: str | Path) -> asyncio.Future:
        self.controls.model_dir.setText(str(folder))
        return self.reload_model()

    def _use_default_model(self) -> None:
        self.set_model_folder("")

    # ================================================================================ styles
    def _load_gallery(self) -> None:
        self.builtin_presets, problems = load_presets(self.gallery_dir)
        self.user_presets = user_presets_from(self.settings.user_presets)
        self.gallery.list.set_presets(self.builtin_presets + self.user_presets)
        self.gallery.set_notice("; ".join(problems[:3]))
        self._rebuild_preset_actions()

    @property
    def presets(self) -> list[Preset]:
        return self.gallery.list.presets

    def _choose_initial_style(self, force: bool = False) -> None:
        if self.worker.style is not None and not force:
            return
        last = self.settings.last_style or {}
        if last.get("kind") == "preset":
            for p in self.presets:
                if p.key == last.get("key"):
                    self.apply_preset(p, set_strength=False)
                    return
        if last.get("kind") == "text" and last.get("prompt"):
            self.apply_prompt(last["prompt"])
            return
        if last.get("kind") == "reference" and last.get("reference") and Path(last["reference"]).is_file():
            ref = Path(last["reference"])
            preset = next((p for p in self.presets if p.reference == ref), None)
            if preset is not None:
                self.apply_preset(preset, set_strength=False)
            else:
                self._apply_style(StyleSpec(reference=ref), ref.stem, None, None)
            return
        if self.presets:
            self.apply_preset(self.presets[0], set_strength=False)
        else:
            self.apply_prompt(DEFAULT_PROMPT)

    def select_preset(self, index: int) -> None:
        if 0 <= index < len(self.presets):
            self.apply_preset(self.presets[index])

    def apply_preset(self, preset: Preset, set_strength: bool = True) -> None:
        if set_strength and preset.strength is not None:
            self.controls.set_strength(preset.strength)
        self._apply_style(preset.spec(), preset.name, preset.key, preset.prompt)

    def apply_prompt(self, text: str) -> None:
        text = text.strip()
        if text:
            self._apply_style(StyleSpec(prompt=text), f"“{text}”", None, text)

    def _apply_style(self, spec: StyleSpec, label: str, key: str | None, prompt: str | None) -> None:
        self._style_keys[spec] = key
        self.gallery.list.highlight(key)
        self.worker.set_style(spec, label)

    def _on_style_applied(self, change: StyleChange) -> None:
        self.current_style = change
        key = self._style_keys.get(change.spec)
        self.gallery.list.highlight(key)
        self.prompt.show_style(change.label, change.spec.prompt if change.spec.reference is None else None,
                               change.matched)
        self.banners.clear("style")
        if key and key.startswith("preset:"):
            self.settings.last_style = {"kind": "preset", "key": key}
        elif change.spec.reference is not None:
            self.settings.last_style = {"kind": "reference", "reference": str(change.spec.reference)}
        else:
            self.settings.last_style = {"kind": "text", "prompt": change.spec.prompt}
        matched = f" \u2192 rendered as {change.matched}" if change.matched else ""
        self.statusBar().showMessage(f"Style: {change.label}{matched}", 6000 if matched else 3000)

    def _on_style_failed(self, message: str) -> None:
        self.banners.show_message("style", f"The style could not be applied: {message}")
        if self.worker.style is None and self.model_info is not None:
            # nothing is running (e.g. the remembered reference image is gone): fall back
            if self.presets and self.presets[0].reference is None:
                self.apply_preset(self.presets[0], set_strength=False)
            else:
                self.apply_prompt(DEFAULT_PROMPT)

    def add_image_dialog(self) -> None:
        patterns = " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES))
        path, _ = QFileDialog.getOpenFileName(self, "Choose a reference image", str(Path.home()),
                                              f"Images ({patterns})")
        if path:
            self.add_reference_image(path)

    def add_reference_image(self, path: str | Path) -> Preset | None:
        """Make an image a style: checked, copied into the app data folder, added to the gallery as a
        user preset (saved across runs) and switched to."""
        from model.stylizer import StyleError, load_image

        path = Path(path)
        try:
            load_image(path)
            stored = import_reference_image(path, self.data_dir / "styles")
        except StyleError as e:
            self.banners.show_message("style", f"Cannot use {path.name} as a style: {e}")
            return None
        except OSError as e:
            self.banners.show_message("style", f"Cannot copy {path.name} into {self.data_dir}: {e.strerror or e}")
            return None
        preset = next((p for p in self.user_presets if p.reference == stored), None)
        if preset is None:
            preset = Preset(path.stem, reference=stored, thumbnail=stored, user=True)
            self.user_presets.append(preset)
            self._save_user_presets()
        self.apply_preset(preset)
        return preset

    def remove_user_preset(self, preset: Preset) -> None:
        self.user_presets = [p for p in self.user_presets if p.key != preset.key]
        self._save_user_presets()
        if preset.reference is not None and self.data_dir in preset.reference.parents:
            preset.reference.unlink(missing_ok=True)

    def _save_user_presets(self) -> None:
        self.settings.user_presets = [p.to_user_dict() for p in self.user_presets]
        self.settings.sync()
        self.gallery.list.set_presets(self.builtin_presets + self.user_presets)
        self._rebuild_preset_actions()
        if self.current_style is not None:
            self.gallery.list.highlight(self._style_keys.get(self.current_style.spec))

    # ================================================================================ live settings
    def _set_strength(self, value: float) -> None:
        self.worker.set_strength(value)
        self.settings.set("live/strength", value)

    def _set_steps(self, steps: int | None) -> None:
        self.worker.set_steps(steps)
        self.settings.set("live/steps", steps or 0)

    def _set_adacache(self, on: bool) -> None:
        self.worker.set_speed(self._speed_request())
        self.settings.set("live/adacache", on)

    def _set_crossfade(self, ms: int) -> None:
        self.worker.set_crossfade(ms / 1000)
        self.settings.set("live/crossfade", ms > 0)
        if ms > 0:
            self.settings.set("live/crossfade_ms", ms)

    def _choose_output_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save recordings and screenshots to",
                                                  str(self.settings.output_folder()))
        if folder:
            self.controls.output_folder.setText(folder)
            self.settings.set("output/folder", folder)

    def set_side_by_side(self, on: bool) -> None:
        self.source_view.setVisible(on)
        self.settings.set("view/single", not on)

    def reset_to_defaults(self) -> None:
        before = self.controls.engine_values()
        self.settings.reset_defaults()
        self.controls.load_from(self.settings)
        self._apply_cli_overrides()
        self.loop_check.setChecked(bool(self.settings.get("source/loop")))
        self.resize(1440, 860)
        self.views.setSizes([1, 1])
        self.main_split.setSizes([1120, 300])
        self.side_action.setChecked(True)
        self.worker.set_strength(self.controls.strength_value())
        self.worker.set_speed(self._speed_request())
        self.worker.set_crossfade(self.controls.crossfade_value() / 1000)
        if self.controls.engine_values() != before or self.controls.engine_values() != self._applied_engine:
            self.reload_model()
        self.statusBar().showMessage("Settings reset to defaults (your own styles were kept)", 5000)

    # ================================================================================ sources
    def _open_initial_source(self) -> None:
        if self._cli_source:
            info = self._resolve_address(self._cli_source)
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

    def _resolve_address(self, address: str) -> SourceInfo | None:
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
        start = str(Path(self.source_info.address).parent) if self.source_info and self.source_info.kind == "file" \
            else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Open a video file", start,
                                              f"Videos ({patterns});;All files (*)")
        if path:
            self.open_file(path)

    def open_source(self, info: SourceInfo) -> bool:
        """Stop the current source and start ``info``. Errors show in a banner; returns success."""
        self._close_source()
        bridge = SourceBridge(self.worker, self.in_rate)
        try:
            if info.kind == "camera":
                ok, why = CameraSource.available()
                if not ok:
                    raise SourceError(why)
                src = CameraSource(info, bridge.sink, bridge.on_error, bridge.on_state)
            else:
                src = FileSource(info.address, bridge.sink, bridge.on_error, bridge.on_state,
                                 loop=self.loop_check.isChecked())
        except SourceError as e:
            self._source_failed(str(e), info)
            self._update_transport()
            return False
        bridge.source = src
        bridge.frameAvailable.connect(self._on_source_frame)
        bridge.error.connect(lambda msg, i=info: self._source_failed(msg, i))
        bridge.state.connect(self._on_source_state)
        self._bridge, self.source, self.source_info = bridge, src, info
        self.worker.reset_stream()
        self.pacer.clear()
        self.in_rate.reset()
        self.out_rate.reset()
        self.latency.reset()
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
        self.setWindowTitle(f"RTR Studio — {info.name}")
        self._refresh_source_combo()
        self._update_transport()
        return True

    def _close_source(self) -> None:
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

    def _cameras_changed(self) -> None:
        self._refresh_source_combo()
        failed = self._failed_camera
        if failed is not None and self.banners.text("source") is not None:
            back = next((c for c in self._cameras if c.name == failed.name), None)
            if back is not None:  # the camera that went away is back: carry on with it
                self.open_source(back)

    def _source_failed(self, message: str, info: SourceInfo) -> None:
        self._failed_camera = info if info.kind == "camera" else None
        actions = [("Choose source…", self.source_combo.showPopup)]
        if info.kind == "camera":
            actions.append(("Retry", lambda: self.open_source(info)))
        if self.sample_clip.is_file():
            actions.append(("Use sample clip", self.open_sample))
        self.banners.show_message("source", message, actions=actions)
        self.source_view.clear(message)
        if self._last_shown is None:
            self.stylized_view.clear("No source")
        else:
            self.stylized_view.set_message("Source stopped")

    def _on_source_frame(self) -> None:
        bridge = self._bridge
        if bridge is None:
            return
        latest = bridge.take()
        if latest is not None:
            self.source_view.set_frame(latest[0])
            if self.model_info is not None and self._last_shown is None and not self.stylized_view.message:
                self.stylized_view.set_message("Waiting for the first chunk…")

    def _on_source_state(self, state: str) -> None:
        if state == "ended":
            self.source_view.set_message("End of video — press Play to start again")
        elif state == "playing":
            self.source_view.set_message("")
        self._update_transport()

    def _refresh_source_combo(self) -> None:
        self._cameras = list_cameras()
        items: list[tuple[str, SourceInfo | str]] = []
        if self.sample_clip.is_file():
            items.append(("Sample clip", self._file_info(self.sample_clip)))
        for cam in self._cameras:
            items.append((f"Camera: {cam.label}", cam))
        for f in self._recent_files:
            items.append((f"File: {f.name}", f))
        if not self._cameras:
            items.append(("No camera found", "none"))
        items.append(("Open video file…", "open"))
        combo = self.source_combo
        combo.blockSignals(True)
        combo.clear()
        current = -1
        for i, (label, data) in enumerate(items):
            combo.addItem(label, data)
            if data == "none":
                combo.model().item(i).setEnabled(False)
            if (isinstance(data, SourceInfo) and self.source_info is not None
                    and data.address == self.source_info.address):
                current = i
        if current < 0 and self.source_info is not None:
            combo.insertItem(0, self.source_info.name, self.source_info)
            current = 0
        combo.setCurrentIndex(max(current, 0))
        combo.blockSignals(False)

    def _source_chosen(self, index: int) -> None:
        data = self.source_combo.itemData(index)
        if data == "open":
            self.open_file_dialog()
            self._refresh_source_combo()
        elif isinstance(data, SourceInfo):
            if self.source_info is None or data.address != self.source_info.address or self.source is None:
                self.open_source(data)

    # transport ---------------------------------------------------------------------------
    def toggle_play(self) -> None:
        if isinstance(self.source, FileSource):
            self.source.toggle()
            self._update_transport()

    def seek_to(self, seconds: float) -> None:
        if isinstance(self.source, FileSource):
            self.source.seek(seconds)
            self.worker.reset_stream()
            self.pacer.clear()

    def _seek_action(self, action: int) -> None:
        if action in (QSlider.SliderAction.SliderPageStepAdd, QSlider.SliderAction.SliderPageStepSub,
                      QSlider.SliderAction.SliderSingleStepAdd, QSlider.SliderAction.SliderSingleStepSub):
            QTimer.singleShot(0, lambda: self.seek_to(self.seek.value() / 1000))

    def _set_loop(self, on: bool) -> None:
        self.settings.set("source/loop", on)
        if isinstance(self.source, FileSource):
            self.source.loop = on

    def _update_transport(self) -> None:
        src = self.source
        is_file = isinstance(src, FileSource)
        for w in (self.play_button, self.seek, self.loop_check):
            w.setEnabled(is_file)
        if not is_file:
            self.time_label.setText("live" if src is not None else "–")
            self.seek.setRange(0, 0)
            return
        self.play_button.setIcon(self.style().standardIcon(
            QStyle.StandardPixmap.SP_MediaPause if src.playing else QStyle.StandardPixmap.SP_MediaPlay))
        dur = src.duration or 0.0
        if not self.seek.isSliderDown():
            self.seek.blockSignals(True)
            self.seek.setRange(0, int(dur * 1000))
            self.seek.setPageStep(max(1000, int(dur * 100)))
            self.seek.setValue(int(src.position * 1000))
            self.seek.blockSignals(False)
        self.time_label.setText(f"{format_duration(src.position)} / {format_duration(dur)}")

    # ================================================================================ results
    def _on_frames(self, frames: list[StylizedFrame]) -> None:
        if not self._closed:
            self.pacer.add(frames)

    def _show_stylized(self, frame: StylizedFrame) -> None:
        now = time.perf_counter()
        self._last_shown = frame
        self.stylized_view.set_frame(frame.image)
        self.out_rate.tick(now)
        self.latency.add(now - frame.timestamp)
        if self.vcam is not None:
            try:
                self.vcam.send(frame.image)
            except Exception as e:
                self._stop_vcam()
                self.banners.show_message("vcam", f"The virtual camera stopped: {e}")

    def _on_engine_error(self, kind: str, message: str) -> None:
        actions = [("Retry", self._retry_engine), ("Reload", self.reload_model)] if kind in ("oom", "engine") else []
        self.banners.show_message("engine", message, actions=actions)

    def _on_halted(self, halted: bool) -> None:
        if halted:
            self.stylized_view.set_message("Stylizing paused after an error")
        else:
            self.banners.clear("engine")
            self.stylized_view.set_message("")

    def _retry_engine(self) -> None:
        self.banners.clear("engine")
        self.worker.resume()

    def _update_status(self) -> None:
        stats = self.worker.stats()
        dropped_q = stats.get("queue_dropped", 0)
        dropped_d = stats.get("display_skipped", 0) + self.pacer.dropped
        tip = ""
        if "dit_ms" in stats:
            tip = (f"per frame: encode {stats['encode_ms']:.0f} ms, DiT {stats['dit_ms']:.0f} ms, cache write "
                   f"{stats['cache_write_ms']:.0f} ms, decode {stats['decode_ms']:.0f} ms")
        self.status.set_rates(self.in_rate.rate(), self.out_rate.rate(), self.latency.mean_ms(),
                              self.latency.max_ms(), dropped_q + dropped_d,
                              f"before the model: {dropped_q}\nafter it (display): {dropped_d}", tip)
        if self.recorder is not None:
            r = self.recorder
            secs = time.perf_counter() - self._record_started
            behind = " · encoder behind" if getattr(r, "behind", False) else ""
            self.status.set_recording(f"● REC {format_duration(secs)} · {r.frames_written} frames"
                                      f" · dropped {r.dropped}{behind}")
        else:
            self.status.set_recording("")

    # ================================================================================ outputs
    def set_recording(self, on: bool) -> None:
        if on and self.recorder is None:
            if not self.start_recording():
                self._set_checked(self.record_action, False)
        elif not on and self.recorder is not None:
            self.stop_recording()

    def _new_output_path(self, banner: str, suffix: str) -> Path | None:
        """A time-stamped file in the output folder (created if needed); None, with a banner, if it can't be."""
        folder = self.settings.output_folder()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            self.banners.show_message(banner, f"Cannot create {folder}: {e.strerror or e}")
            return None
        return folder / f"RTR-{time.strftime('%Y%m%d-%H%M%S')}{suffix}"

    def start_recording(self, path: str | Path | None = None) -> bool:
        try:
            from ..outputs.recorder import Recorder
        except ImportError as e:
            self.banners.show_message("record", f"Recording is not available: {e}")
            return False
        layout = self.controls.layout_combo.currentData() or "stylized"
        if path is None:
            path = self._new_output_path("record", ".mp4")
            if path is None:
                return False
        fps = self.source.nominal_fps if self.source is not None else 30.0
        audio = None
        if isinstance(self.source, FileSource) and self.source.has_audio:
            audio = (str(self.source.path), 0.0)  # the file's sound, aligned by each frame's position
        try:
            rec = Recorder(path, layout=layout, fps_hint=fps, audio_source=audio,
                           on_error=self._recorder_error_threadsafe)
            rec.start()
        except Exception as e:
            self.banners.show_message("record", f"Cannot start recording to {path}: {e}")
            return False
        t0: list[float | None] = [None]

        def sink(frames: list[StylizedFrame]) -> None:  # worker thread
            for f in frames:
                if t0[0] is None:
                    t0[0] = f.timestamp
                rec.submit(f.image, f.source, f.timestamp - t0[0], media_time=f.media_time if audio else None)

        self.recorder, self._record_sink = rec, sink
        self._record_started = time.perf_counter()
        self.worker.add_sink(sink)
        self.banners.clear("record")
        self._set_checked(self.record_action, True)
        self.stylized_view.set_badge("REC")
        self.statusBar().showMessage(f"Recording to {path}", 4000)
        return True

    def stop_recording(self) -> asyncio.Future | None:
        rec, sink = self.recorder, self._record_sink
        if rec is None:
            return None
        self.recorder, self._record_sink = None, None
        self.worker.remove_sink(sink)
        self._set_checked(self.record_action, False)
        self.stylized_view.set_badge("")
        self.status.set_recording("finishing the file…")
        return self._spawn(self._finish_recording(rec))

    async def _finish_recording(self, rec) -> None:
        loop = asyncio.get_event_loop()
        summary = await loop.run_in_executor(self._io, rec.stop)  # flushes the encoder off the GUI thread
        self.last_recording = summary
        self.status.set_recording("")
        if getattr(summary, "error", None):
            self.banners.show_message("record", f"Recording failed: {summary.error}")
        else:
            self.statusBar().showMessage(
                f"Saved {summary.path} ({summary.frames} frames, {summary.duration:.1f} s, "
                f"{summary.dropped} dropped)", 8000)

    def _recorder_error_threadsafe(self, message: str) -> None:
        self.recorderError.emit(message)  # from the recorder's thread: queued to the GUI thread

    def _recorder_error(self, message: str) -> None:
        self.banners.show_message("record", f"Recording problem: {message}")
        if self.recorder is not None:
            self.stop_recording()

    def save_screenshot(self, path: str | Path | None = None) -> Path | None:
        from ..outputs.layout import compose

        frame = self._last_shown
        if frame is None:
            self.statusBar().showMessage("Nothing to save yet: no stylized frame has been shown", 4000)
            return None
        layout = self.controls.layout_combo.currentData() or "stylized"
        image = compose(layout, frame.image, frame.source)
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
        self.statusBar().showMessage(f"Saved screenshot {path}", 5000)
        return path

    def set_virtual_camera(self, on: bool) -> None:
        if on and self.vcam is None:
            if not self.start_virtual_camera():
                self._set_checked(self.vcam_action, False)
        elif not on and self.vcam is not None:
            self._stop_vcam()

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
        self._set_checked(self.vcam_action, True)
        self.statusBar().showMessage(f"Virtual camera on: {message}", 5000)
        return True

    def _stop_vcam(self) -> None:
        cam, self.vcam = self.vcam, None
        self._set_checked(self.vcam_action, False)
        if cam is not None:
            try:
                cam.stop()
            except Exception as e:
                log.warning("virtual camera stop failed: %s", e)

    def _set_checked(self, action: QAction, on: bool) -> None:
        action.blockSignals(True)
        action.setChecked(on)
        action.blockSignals(False)
        if action is self.record_action:
            action.setText("■ Stop recording" if on else "● Record")

    # export ------------------------------------------------------------------------------
    def export_dialog(self) -> None:
        if self.export.running:
            self.statusBar().showMessage("An export is already running", 4000)
            return
        patterns = " ".join(f"*{s}" for s in sorted(VIDEO_SUFFIXES))
        start = self.source_info.address if self.source_info and self.source_info.kind == "file" else str(Path.home())
        src, _ = QFileDialog.getOpenFileName(self, "Export: choose the video to stylize", start,
                                             f"Videos ({patterns});;All files (*)")
        if not src:
            return
        default = self.settings.output_folder() / f"{Path(src).stem}-stylized.mp4"
        out, _ = QFileDialog.getSaveFileName(self, "Export: save the stylized video as", str(default),
                                             "MP4 video (*.mp4)")
        if out:
            if not out.lower().endswith(".mp4"):
                out += ".mp4"
            self.start_export(src, out)

    def start_export(self, source: str | Path, output: str | Path) -> asyncio.Future | None:
        """Render ``source`` to ``output`` with the current style on a separate model instance."""
        if self.export.running:
            return None
        if self.worker.style is None:
            self.banners.show_message("export", "Choose a style before exporting")
            return None
        spec = self.worker.style[0]
        load = self._applied_load_request()
        self.banners.clear("export")
        task = self.export.start(ExportJob(Path(source), Path(output), spec, load))
        self.export_panel.begin(Path(output).name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        self.export_action.setEnabled(False)
        return task

    def _applied_load_request(self) -> LoadRequest:
        req = self.load_request()
        if self._applied_engine:
            v = self._applied_engine
            req.folder = Path(v["model_dir"]) if v["model_dir"] else None
            req.device, req.resolution = v["device"], parse_resolution(v["resolution"])
        return req

    def _cancel_export(self) -> None:
        self.export.cancel()
        self.export_panel.cancelling()

    def _export_finished(self, result) -> None:
        self.export_panel.hide()
        self.export_action.setEnabled(True)
        state = "stopped early" if result.cancelled else "done"
        self.statusBar().showMessage(f"Export {state}: {result.output} ({result.frames_out} frames, "
                                     f"{result.fps:.1f} frames/s)", 10000)

    def _export_cancelled(self) -> None:
        self.export_panel.hide()
        self.export_action.setEnabled(True)
        self.statusBar().showMessage("Export cancelled", 6000)

    def _export_failed(self, message: str) -> None:
        self.export_panel.hide()
        self.export_action.setEnabled(True)
        self.banners.show_message("export", f"Export failed: {message}")

    # ================================================================================ drag & drop
    def dragEnterEvent(self, event) -> None:
        mime = event.mimeData()
        if _local_files(mime) or mime.hasImage():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:
        mime = event.mimeData()
        files = _local_files(mime)
        event.acceptProposedAction()
        if not files and mime.hasImage():
            self._drop_image_data(mime.imageData())
            return
        for path in files:
            suffix = path.suffix.lower()
            if suffix in IMAGE_SUFFIXES:
                self.add_reference_image(path)
                return
            if suffix in VIDEO_SUFFIXES:
                self.open_file(path)
                return
        names = ", ".join(p.name for p in files) or "this item"
        self.banners.show_message("style", f"Cannot use {names}: drop an image (a style) or a video (a source)",
                                  level="warning")

    def _drop_image_data(self, image) -> None:
        img = QImage(image) if not isinstance(image, QImage) else image
        if img.isNull():
            self.banners.show_message("style", "The dropped picture could not be read", level="warning")
            return
        tmp = self.data_dir / "styles" / f"dropped-{time.strftime('%Y%m%d-%H%M%S')}.png"
        tmp.parent.mkdir(parents=True, exist_ok=True)
        if img.save(str(tmp), "PNG"):
            self.add_reference_image(tmp)
            tmp.unlink(missing_ok=True)

    # ================================================================================ closing
    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop every thread and timer and save the session (safe to call twice)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._save_layout()
        except RuntimeError:
            pass
        self.status_timer.stop()
        self.transport_timer.stop()
        self.pacer.stop()
        rec = self.recorder
        if rec is not None:
            self.worker.remove_sink(self._record_sink)
            self.recorder = None
            self.last_recording = rec.stop()
        self._stop_vcam()
        self.export.shutdown()
        self._io.shutdown(wait=True)
        self._close_source()
        self.worker.stop()
        for task in list(self._tasks):
            task.cancel()
        self.settings.sync()

    @property
    def threads_alive(self) -> list[str]:
        """Names of this window's threads still running (empty after a clean shutdown)."""
        alive = []
        if self.worker.running:
            alive.append("engine-worker")
        if self.source is not None and self.source.running:
            alive.append("source")
        alive += [t.name for t in threading.enumerate()
                  if t.name.startswith(("export", "outputs", "file-source", "camera-source"))]
        return alive
