"""The main window: source and stylized views side by side, style gallery, prompt box, controls,
status bar. It builds the widgets and the controllers and wires them together; the work is theirs:

- ``EngineController`` (engine_controller.py): model loading, live settings, engine errors
- ``SourceController`` (source_controller.py): cameras and files, play / seek / loop
- ``StyleController`` (style_controller.py): presets, prompts, reference images, the last style
- ``OutputController`` (output_controller.py): recording, screenshots, virtual camera
- ``ExportFlow`` (export_flow.py): offline "Export file…"
- ``LiveDisplay`` (live_display.py): paced display of the engine's frames, rates and latency
- ``RemoteController`` (remote_controller.py): the engine on another machine, its connection and figures

Frames go source -> EngineWorker -> LiveDisplay / outputs; the window never waits on the model.
"""
from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QStandardPaths, Qt
from PySide6.QtWidgets import QFileDialog, QMainWindow, QScrollArea, QSplitter, QToolBar, QVBoxLayout, QWidget

from model.style import IMAGE_SUFFIXES

from ..sources.file_source import VIDEO_SUFFIXES
from ..worker import EngineWorker, ModelInfo, available_devices
from .actions import make_action
from .banner import BannerArea
from .controls import ControlsPanel
from .engine_controller import EngineController
from .export_flow import ExportFlow
from .gallery import DEFAULT_GALLERY_DIR, GalleryPanel, Preset
from .live_display import LiveDisplay
from .output_controller import OutputController
from .overlay import ExportPanel, ProgressOverlay
from .prompt_box import PromptBox
from .remote_controller import RemoteController
from .settings import AppSettings
from .source_controller import SourceController
from .status_bar import StatusBar
from .style_controller import StyleController
from .tasks import TaskSet
from .transport import TransportBar
from .video_view import VideoView

ROOT = Path(__file__).resolve().parent.parent.parent
SAMPLE_CLIP = ROOT / "resources" / "sample" / "sample.mp4"
DEFAULT_SIZE = (1440, 860)


def _local_files(mime) -> list[Path]:
    if not mime.hasUrls():
        return []
    return [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()]


class MainWindow(QMainWindow):
    def __init__(self, settings: AppSettings | None = None, model_dir: str | Path | None = None,
                 source: str | None = None, device: str | None = None, gallery_dir: str | Path | None = None,
                 data_dir: str | Path | None = None, sample_clip: str | Path | None = None):
        super().__init__()
        self.settings = settings or AppSettings()
        self.gallery_dir = Path(gallery_dir) if gallery_dir else DEFAULT_GALLERY_DIR
        if data_dir is None:
            base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
            data_dir = Path(base) if base else Path.home() / ".rtr-studio"
        self.data_dir = Path(data_dir)
        self.sample_clip = Path(sample_clip) if sample_clip else SAMPLE_CLIP
        self.worker = EngineWorker(self)
        self.tasks = TaskSet()
        self._closed = False

        self.setWindowTitle("RTR Studio")
        self.setAcceptDrops(True)
        self._build_widgets()
        self._build_controllers(Path(model_dir) if model_dir else None, source, device)
        self._build_menus()
        self._restore_layout()
        self.controls.load_from(self.settings)
        self.engine.apply_cli_overrides()
        self.remote.restore()
        self.styles.load_gallery()

    # ================================================================================ build
    def _build_widgets(self) -> None:
        self.source_view = VideoView("Source")
        self.stylized_view = VideoView("Stylized")
        self.source_view.clear("No source yet")
        self.stylized_view.clear("Starting…")
        self.views = QSplitter(Qt.Orientation.Horizontal)
        self.views.addWidget(self.source_view)
        self.views.addWidget(self.stylized_view)
        self.views.setChildrenCollapsible(False)
        self.overlay = ProgressOverlay(self.stylized_view)
        self.transport = TransportBar()
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
        tl.addWidget(self.transport)
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

    def _build_controllers(self, cli_model: Path | None, cli_source: str | None, cli_device: str | None) -> None:
        w, s, b = self.worker, self.settings, self.banners
        self.display = LiveDisplay(self.stylized_view, self.status, w, parent=self)
        self.engine = EngineController(self, w, s, self.controls, self.overlay, b, self.status, self.stylized_view,
                                       self.tasks, cli_model, cli_device)
        self.sources = SourceController(self, w, self.display, s, b, self.source_view, self.stylized_view,
                                        self.transport, self.sample_clip, cli_source)
        self.styles = StyleController(self, w, s, self.gallery, self.prompt, self.controls, b, self.gallery_dir,
                                      self.data_dir)
        self.outputs = OutputController(w, self.display, s, b, self.stylized_view, self.status, self.tasks,
                                        lambda: self.sources.source, self.controls.record_layout, parent=self)
        self.exports = ExportFlow(self, w, s, b, self.export_panel, self.tasks, self.engine.applied_load_request,
                                  lambda: self.sources.info)
        self.remote = RemoteController(self, w, s, b, self.status, self.engine.reload)

        w.framesReady.connect(self.display.add)
        self.display.status_timer.timeout.connect(self.outputs.update_status)
        self.engine.ready.connect(self._model_ready)
        self.engine.loadingChanged.connect(lambda loading: self.outputs.record_action.setEnabled(not loading))
        self.sources.opened.connect(lambda info: self.setWindowTitle(f"RTR Studio — {info.name}"))
        for c in (self.engine, self.styles, self.outputs, self.exports, self.remote):
            c.message.connect(self.statusBar().showMessage)
        self.controls.layoutChanged.connect(lambda v: s.set("output/layout", v))
        self.controls.outputFolderChanged.connect(lambda v: s.set("output/folder", v))
        self.controls.browseOutputRequested.connect(self._choose_output_folder)
        self.controls.resetRequested.connect(self.reset_to_defaults)

    def _build_menus(self) -> None:
        tb = QToolBar("Main")
        tb.setObjectName("main_toolbar")
        tb.setMovable(False)
        self.addToolBar(tb)
        self.side_action = make_action(self, "Side by side", self.set_side_by_side, "Ctrl+\\", checkable=True,
                                       tip="Show the source next to the stylized video")
        reset_action = make_action(self, "Reset to defaults", self.reset_to_defaults)
        quit_action = make_action(self, "Quit", self.close, "Ctrl+Q")
        src, out, sty = self.sources, self.outputs, self.styles
        for a in (src.open_action, out.record_action, out.screenshot_action, self.exports.action, out.vcam_action):
            tb.addAction(a)
        tb.addSeparator()
        tb.addAction(self.side_action)

        m = self.menuBar().addMenu("&File")
        for a in (src.open_action, src.sample_action, None, self.exports.action, out.record_action,
                  out.screenshot_action, out.vcam_action, None, quit_action):
            m.addSeparator() if a is None else m.addAction(a)
        v = self.menuBar().addMenu("&View")
        v.addAction(self.side_action)
        v.addAction(src.play_action)
        style_menu = self.menuBar().addMenu("&Style")
        style_menu.addAction(sty.prompt_focus_action)
        style_menu.addAction(sty.add_image_action)
        style_menu.addSeparator()
        sty.attach_menu(style_menu)
        self.settings_menu = self.menuBar().addMenu("S&ettings")
        self.settings_menu.addAction(self.engine.model_action)
        self.settings_menu.addAction(self.remote.action)
        self.settings_menu.addAction(self.remote.local_action)
        self.settings_menu.addAction(reset_action)
        self.addAction(src.play_action)
        self.addAction(sty.prompt_focus_action)

    # ================================================================================ layout
    def _restore_layout(self) -> None:
        geo = self.settings.get_bytes("window/geometry")
        if geo is None or not self.restoreGeometry(geo):
            self.resize(*DEFAULT_SIZE)
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

    def set_side_by_side(self, on: bool) -> None:
        self.source_view.setVisible(on)
        self.settings.set("view/single", not on)

    def _choose_output_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save recordings and screenshots to",
                                                  str(self.settings.output_folder()))
        if folder:
            self.controls.set_output_folder(folder)

    def reset_to_defaults(self) -> None:
        before = self.controls.engine_values()
        self.settings.reset_defaults()
        self.controls.load_from(self.settings)
        self.sources.settings_reset()
        self.resize(*DEFAULT_SIZE)
        self.views.setSizes([1, 1])
        self.main_split.setSizes([1120, 300])
        self.side_action.setChecked(True)
        self.engine.settings_reset(before)
        self.statusBar().showMessage("Settings reset to defaults (your own styles were kept)", 5000)

    # ================================================================================ running
    def start(self) -> None:
        """Start the engine, load the model (in the background) and open the first source."""
        self.engine.start_worker()
        self.display.start()
        self.styles.choose_initial()  # before the load: the model loads with its style and warms up
        self.engine.reload()
        self.sources.start()

    def _model_ready(self, info: ModelInfo) -> None:
        if self.worker.style is None:
            self.styles.choose_initial(force=True)
        if self.display.last_shown is None:
            self.stylized_view.clear("Waiting for frames…" if self.sources.source else "Choose a source")

    @property
    def model_info(self) -> ModelInfo | None:
        """The model running now (None until one has loaded)."""
        return self.engine.model_info

    @property
    def builtin_presets(self) -> list[Preset]:
        return self.styles.builtin_presets

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
        """An image becomes a style, a video the source."""
        mime = event.mimeData()
        files = _local_files(mime)
        event.acceptProposedAction()
        if not files and mime.hasImage():
            self.styles.add_image_data(mime.imageData())
            return
        for path in files:
            suffix = path.suffix.lower()
            if suffix in IMAGE_SUFFIXES:
                self.styles.add_reference_image(path)
                return
            if suffix in VIDEO_SUFFIXES:
                self.sources.open_file(path)
                return
        names = ", ".join(p.name for p in files) or "this item"
        self.banners.show_message("style", f"Cannot use {names}: drop an image (a style) or a video (a source)",
                                  level="warning")

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
        self.display.stop()
        self.outputs.shutdown()
        self.exports.shutdown()
        self.sources.shutdown()
        self.remote.shutdown()
        self.worker.stop()
        self.tasks.cancel_all()
        self.settings.sync()

    @property
    def threads_alive(self) -> list[str]:
        """Names of this window's threads still running (empty after a clean shutdown)."""
        alive = ["engine-worker"] if self.worker.running else []
        if self.sources.running:
            alive.append("source")
        alive += [t.name for t in threading.enumerate()
                  if t.name.startswith(("export", "outputs", "file-source", "camera-source"))]
        return alive
