"""The window's side of the engine: loading a model (folder, device, resolution) without blocking,
the live settings (strength, speed, cross-fade), and the engine's errors with their ways out.

``--model`` and ``--device`` hold for this run: they are shown in the controls but saved only once the
person applies other values."""
from __future__ import annotations

import asyncio
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QWidget

from model.checkpoint import DEFAULT_MODEL_DIR
from model.speed import SpeedRequest

from ..worker import EngineWorker, LoadRequest, ModelInfo
from .actions import make_action
from .banner import BannerArea
from .controls import ControlsPanel
from .overlay import ProgressOverlay
from .settings import AppSettings, parse_resolution
from .status_bar import StatusBar
from .tasks import TaskSet
from .video_view import VideoView


class EngineController(QObject):
    loadingChanged = Signal(bool)
    ready = Signal(object)  # ModelInfo, once shown
    message = Signal(str, int)  # a status-bar message and how long to show it (ms)

    def __init__(self, window: QWidget, worker: EngineWorker, settings: AppSettings, controls: ControlsPanel,
                 overlay: ProgressOverlay, banners: BannerArea, status: StatusBar, stylized_view: VideoView,
                 tasks: TaskSet, cli_model: Path | None = None, cli_device: str | None = None):
        super().__init__(window)
        self.window, self.worker, self.settings, self.controls = window, worker, settings, controls
        self.overlay, self.banners, self.status, self.stylized_view = overlay, banners, status, stylized_view
        self.tasks, self._cli_model, self._cli_device = tasks, cli_model, cli_device
        self.model_info: ModelInfo | None = None
        self.applied: dict | None = None  # the engine values of the model running now
        self.loading = False

        self.model_action = make_action(self, "Choose model folder…", self.choose_model_folder)
        worker.loadStarted.connect(overlay.set_title)
        worker.loadProgress.connect(overlay.progress)
        worker.engineError.connect(self._engine_error)
        worker.halted.connect(self._halted)
        controls.strengthChanged.connect(self._set_strength)
        controls.speedChanged.connect(self._set_speed)
        controls.crossfadeChanged.connect(self._set_crossfade)
        controls.browseModelRequested.connect(self.choose_model_folder)
        controls.reloadRequested.connect(self.reload)

    def apply_cli_overrides(self) -> None:
        v = self.controls.engine_values()
        self.controls.set_engine_values(str(self._cli_model) if self._cli_model else v["model_dir"],
                                        self._cli_device or v["device"], v["resolution"])

    def start_worker(self) -> None:
        self.worker.set_crossfade(self.controls.crossfade_value() / 1000)
        self.worker.start()

    # ------------------------------------------------------------------------------ loading
    def load_request(self) -> LoadRequest:
        """What the controls show now."""
        v = self.controls.engine_values()
        return LoadRequest(folder=Path(v["model_dir"]) if v["model_dir"] else None, device=v["device"],
                           resolution=parse_resolution(v["resolution"]), speed=self.controls.speed_request(),
                           strength=self.controls.strength_value())

    def applied_load_request(self) -> LoadRequest:
        """The model running now with the live settings shown (an export renders with this)."""
        req = self.load_request()
        if self.applied:
            v = self.applied
            req.folder = Path(v["model_dir"]) if v["model_dir"] else None
            req.device, req.resolution = v["device"], parse_resolution(v["resolution"])
        return req

    def reload(self) -> asyncio.Future:
        """Load the model with the engine settings shown; the window keeps running meanwhile."""
        req = self.load_request()
        self._set_loading(True)
        self.overlay.start("Loading model", str(req.folder) if req.folder else "embedded default model")
        if self.model_info is None:
            self.stylized_view.clear("")
        return self.tasks.spawn(self._load(req, self.controls.engine_values()))

    def _set_loading(self, on: bool) -> None:
        self.loading = on
        self.loadingChanged.emit(on)

    async def _load(self, req: LoadRequest, engine: dict) -> None:
        try:
            info = await asyncio.wrap_future(self.worker.load(req))
        except Exception as e:
            self._failed(e, req)
        else:
            self._ready(info, engine)
        finally:
            self._set_loading(False)
            self.overlay.finish()

    def _ready(self, info: ModelInfo, engine: dict) -> None:
        self.model_info = info
        self.applied = dict(engine)
        # persist only what was actually applied (command-line overrides are for this run only)
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
        self.ready.emit(info)
        self.message.emit(f"Model {info.name} ready on {info.device_label}", 4000)

    def _failed(self, exc: Exception, req: LoadRequest) -> None:
        msg = str(exc).strip() or exc.__class__.__name__
        actions = [("Choose model folder…", self.choose_model_folder)]
        if req.folder is not None and DEFAULT_MODEL_DIR.is_dir():
            actions.append(("Use embedded model", self.use_default_model))
        if msg.startswith("model folder not found"):
            msg += "\nChoose a model folder (a folder with config.json and .safetensors weights)."
        still = f"\nStill running the previous model ({self.model_info.name})." if self.model_info else ""
        self.banners.show_message("model", f"The model could not be loaded: {msg}{still}", actions=actions)
        if self.model_info is None:
            self.stylized_view.clear("No model loaded — choose a model folder")
            self.status.set_model("none")
        self.controls.set_applied(self.applied)

    def choose_model_folder(self) -> None:
        start = self.controls.engine_values()["model_dir"] or str(DEFAULT_MODEL_DIR.parent)
        folder = QFileDialog.getExistingDirectory(self.window, "Choose a model folder", start)
        if folder:
            self.set_model_folder(folder)

    def set_model_folder(self, folder: str | Path) -> asyncio.Future:
        self.controls.set_model_dir(str(folder))
        return self.reload()

    def use_default_model(self) -> None:
        self.set_model_folder("")

    # ------------------------------------------------------------------------------ live settings
    def _set_strength(self, value: float) -> None:
        self.worker.set_strength(value)
        self.settings.set("live/strength", value)

    def _set_speed(self, speed: SpeedRequest) -> None:
        self.worker.set_speed(speed)
        self.settings.set("live/speed", speed.preset)
        self.settings.set("live/steps", speed.steps or 0)
        self.settings.set("live/adacache", speed.adacache or "")

    def _set_crossfade(self, ms: int) -> None:
        self.worker.set_crossfade(ms / 1000)
        self.settings.set("live/crossfade", ms > 0)
        if ms > 0:
            self.settings.set("live/crossfade_ms", ms)

    def settings_reset(self, engine_before: dict) -> None:
        """After "Reset to defaults": the live settings shown go to the engine; a changed engine reloads."""
        self.apply_cli_overrides()
        self.worker.set_strength(self.controls.strength_value())
        self.worker.set_speed(self.controls.speed_request())
        self.worker.set_crossfade(self.controls.crossfade_value() / 1000)
        now = self.controls.engine_values()
        if now != engine_before or now != self.applied:
            self.reload()

    # ------------------------------------------------------------------------------ errors
    def _engine_error(self, kind: str, message: str) -> None:
        actions = [("Retry", self._retry), ("Reload", self.reload)] if kind in ("oom", "engine") else []
        self.banners.show_message("engine", message, actions=actions)

    def _halted(self, halted: bool) -> None:
        if halted:
            self.stylized_view.set_message("Stylizing paused after an error")
        else:
            self.banners.clear("engine")
            self.stylized_view.set_message("")

    def _retry(self) -> None:
        self.banners.clear("engine")
        self.worker.resume()
