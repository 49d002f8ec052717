"""The controls panel. Two clearly separate groups: *Live* settings apply instantly (between chunks);
*Engine* settings (model folder, device, resolution) need a reload and only take effect on
"Apply && reload". Output settings and "Reset to defaults" sit below.

Speed uses the engine's own words (``model.speed``): quality / balanced / fast, with an Advanced
override for the step count and the AdaCache mode that means what ``stylize --steps/--adacache`` mean.
The window talks to the panel through the accessors and signals below, never through its widgets.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from model.speed import ADACACHE_MODES, SPEED_PRESETS, SpeedRequest

from .settings import AppSettings, format_resolution, parse_resolution

RESOLUTION_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
SPEED_TIPS = {
    "quality": "The steps and attention window the model was trained for, every block computed",
    "balanced": "The model's steps and window, with AdaCache 'slow' (reuses work when the picture barely moves)",
    "fast": "At most two steps, a window of at most two chunks, AdaCache 'fast'",
}


def resolution_choices(native: tuple[int, int], step: tuple[int, int]) -> list[tuple[int, int]]:
    """Resolutions (height, width) near the model's own, rounded to what the model can take."""
    out = []
    for s in RESOLUTION_SCALES:
        h = max(step[0] * 2, round(native[0] * s / step[0]) * step[0])
        w = max(step[1] * 2, round(native[1] * s / step[1]) * step[1])
        if (h, w) not in out:
            out.append((h, w))
    return out


def _named(widget, name: str):
    widget.setObjectName(name)
    return widget


class ControlsPanel(QWidget):
    strengthChanged = Signal(float)
    speedChanged = Signal(object)  # model.speed.SpeedRequest
    crossfadeChanged = Signal(int)  # milliseconds, 0 = off
    layoutChanged = Signal(str)  # what recordings and screenshots hold: "stylized" or "side_by_side"
    outputFolderChanged = Signal(str)
    browseModelRequested = Signal()
    browseOutputRequested = Signal()
    reloadRequested = Signal()
    resetRequested = Signal()

    def __init__(self, devices: list[tuple[str, str]], parent: QWidget | None = None):
        super().__init__(parent)
        self._applied: dict | None = None
        self._quiet = False

        # --- live ----------------------------------------------------------------------------
        live = QGroupBox("Live — applies instantly")
        form = QFormLayout(live)
        self._strength = _named(QSlider(Qt.Orientation.Horizontal), "strength")
        self._strength.setRange(1, 100)
        self._strength.setValue(100)
        self._strength.setToolTip("How far the output moves from the source towards the style")
        self._strength_label = QLabel("1.00")
        self._strength_label.setMinimumWidth(32)
        row = QHBoxLayout()
        row.addWidget(self._strength, 1)
        row.addWidget(self._strength_label)
        form.addRow("Strength", row)
        self._speed = _named(QComboBox(), "speed")
        for name in SPEED_PRESETS:
            self._speed.addItem(name.capitalize(), name)
            self._speed.setItemData(self._speed.count() - 1, SPEED_TIPS[name], Qt.ItemDataRole.ToolTipRole)
        self._speed.setToolTip("Speed preset (as `stylize --speed`): quality, balanced or fast")
        form.addRow("Speed", self._speed)
        self._crossfade = _named(QCheckBox("Cross-fade on style switch"), "crossfade")
        self._crossfade_ms = _named(QSpinBox(), "crossfade_ms")
        self._crossfade_ms.setRange(50, 3000)
        self._crossfade_ms.setSingleStep(50)
        self._crossfade_ms.setSuffix(" ms")
        row = QHBoxLayout()
        row.addWidget(self._crossfade, 1)
        row.addWidget(self._crossfade_ms)
        form.addRow(row)
        self._advanced_toggle = _named(QToolButton(), "advanced_toggle")
        self._advanced_toggle.setText("Advanced")
        self._advanced_toggle.setCheckable(True)
        self._advanced_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self._advanced_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self._advanced_toggle.setAutoRaise(True)
        form.addRow(self._advanced_toggle)
        self._advanced = QWidget()
        adv = QFormLayout(self._advanced)
        adv.setContentsMargins(12, 0, 0, 0)
        self._steps = _named(QSpinBox(), "steps")
        self._steps.setRange(0, 8)
        self._steps.setSpecialValueText("preset's")
        self._steps.setToolTip("Denoising steps per chunk, replacing the preset's (as `stylize --steps`): "
                               "fewer is faster, more follows the style more closely")
        adv.addRow("Steps", self._steps)
        self._adacache = _named(QComboBox(), "adacache")
        self._adacache.addItem("preset's", "")
        for mode in ADACACHE_MODES:
            self._adacache.addItem(mode, mode)
        self._adacache.setToolTip("AdaCache mode, replacing the preset's (as `stylize --adacache`): reuse "
                                  "work when the picture barely moves")
        adv.addRow("AdaCache", self._adacache)
        self._advanced.setVisible(False)
        form.addRow(self._advanced)

        # --- engine --------------------------------------------------------------------------
        engine = QGroupBox("Engine — needs reload")
        eform = QFormLayout(engine)
        self._model_dir = _named(QLineEdit(), "model_dir")
        self._model_dir.setPlaceholderText("embedded default model")
        self._model_dir.setToolTip("A model folder: config.json plus .safetensors weights")
        eform.addRow("Model", _with_browse(self._model_dir, self.browseModelRequested, "Choose a model folder"))
        self._device = _named(QComboBox(), "device")
        for value, label in devices:
            self._device.addItem(label, value)
        eform.addRow("Device", self._device)
        self._resolution = _named(QComboBox(), "resolution")
        self._resolution.addItem("Model default", "")
        eform.addRow("Resolution", self._resolution)
        self._reload_button = _named(QPushButton("Apply && reload"), "reload")
        self._reload_button.setToolTip("Reload the model with these engine settings")
        self._pending_label = QLabel("")
        self._pending_label.setStyleSheet("color: #c08a00;")
        self._pending_label.setWordWrap(True)
        eform.addRow(self._reload_button)
        eform.addRow(self._pending_label)

        # --- output --------------------------------------------------------------------------
        output = QGroupBox("Output")
        oform = QFormLayout(output)
        self._layout = _named(QComboBox(), "record_layout")
        self._layout.addItem("Stylized only", "stylized")
        self._layout.addItem("Side by side", "side_by_side")
        self._layout.setToolTip("What recordings and screenshots contain")
        oform.addRow("Record / screenshot", self._layout)
        self._output_folder = _named(QLineEdit(), "output_folder")
        self._output_folder.setToolTip("Where recordings and screenshots are saved")
        oform.addRow("Save to", _with_browse(self._output_folder, self.browseOutputRequested,
                                             "Choose the output folder"))

        self._reset_button = _named(QPushButton("Reset to defaults"), "reset")
        self._reset_button.setToolTip("Restore every setting and the window layout (your own styles are kept)")

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(live)
        lay.addWidget(engine)
        lay.addWidget(output)
        lay.addStretch(1)
        lay.addWidget(self._reset_button)

        # --- wiring --------------------------------------------------------------------------
        self._strength.valueChanged.connect(self._strength_moved)
        self._crossfade.toggled.connect(self._crossfade_changed)
        self._crossfade_ms.valueChanged.connect(self._crossfade_changed)
        self._advanced_toggle.toggled.connect(self._toggle_advanced)
        for speed_widget in (self._speed, self._adacache):
            speed_widget.currentIndexChanged.connect(self._speed_changed)
        self._steps.valueChanged.connect(self._speed_changed)
        self._layout.currentIndexChanged.connect(lambda _: self._emit(self.layoutChanged, self.record_layout()))
        self._output_folder.editingFinished.connect(lambda: self._emit(self.outputFolderChanged, self.output_folder()))
        self._model_dir.textChanged.connect(self._update_pending)
        self._device.currentIndexChanged.connect(self._update_pending)
        self._resolution.currentIndexChanged.connect(self._update_pending)
        self._reload_button.clicked.connect(self.reloadRequested)
        self._reset_button.clicked.connect(self.resetRequested)

    # ------------------------------------------------------------------------------ live
    def _emit(self, signal, value) -> None:
        if not self._quiet:
            signal.emit(value)

    def _strength_moved(self, v: int) -> None:
        self._strength_label.setText(f"{v / 100:.2f}")
        self._emit(self.strengthChanged, v / 100)

    def _crossfade_changed(self, *_):
        self._crossfade_ms.setEnabled(self._crossfade.isChecked())
        self._emit(self.crossfadeChanged, self.crossfade_value())

    def _speed_changed(self, *_):
        self._emit(self.speedChanged, self.speed_request())

    def _toggle_advanced(self, on: bool) -> None:
        self._advanced.setVisible(on)
        self._advanced_toggle.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)

    def strength_value(self) -> float:
        return self._strength.value() / 100

    def set_strength(self, value: float, emit: bool = True) -> None:
        self._quiet = not emit
        try:
            self._strength.setValue(round(min(max(value, 0.01), 1.0) * 100))
            self._strength_label.setText(f"{self._strength.value() / 100:.2f}")
        finally:
            self._quiet = False

    def speed_request(self) -> SpeedRequest:
        return SpeedRequest(self._speed.currentData() or "quality", self._steps.value() or None,
                            self._adacache.currentData() or None)

    def set_speed_request(self, speed: SpeedRequest, emit: bool = True) -> None:
        """Show ``speed``; emits ``speedChanged`` once (if ``emit``) when it differs from what was shown."""
        before = self.speed_request()
        self._quiet = True
        try:
            self._show_speed(speed)
        finally:
            self._quiet = False
        if emit and self.speed_request() != before:
            self.speedChanged.emit(self.speed_request())

    def _show_speed(self, speed: SpeedRequest) -> None:
        self._speed.setCurrentIndex(max(self._speed.findData(speed.preset), 0))
        self._steps.setValue(speed.steps or 0)
        self._adacache.setCurrentIndex(max(self._adacache.findData(speed.adacache or ""), 0))

    def crossfade_value(self) -> int:
        return self._crossfade_ms.value() if self._crossfade.isChecked() else 0

    def set_crossfade(self, ms: int) -> None:
        """0: off; otherwise on, at ``ms`` milliseconds (emits ``crossfadeChanged``)."""
        if ms > 0:
            self._crossfade_ms.setValue(ms)
        self._crossfade.setChecked(ms > 0)

    def advanced_shown(self) -> bool:
        return self._advanced_toggle.isChecked()

    def show_advanced(self, on: bool) -> None:
        self._advanced_toggle.setChecked(on)

    # ------------------------------------------------------------------------------ output
    def record_layout(self) -> str:
        return self._layout.currentData() or "stylized"

    def set_record_layout(self, layout: str) -> None:
        self._layout.setCurrentIndex(max(self._layout.findData(layout), 0))

    def output_folder(self) -> str:
        return self._output_folder.text().strip()

    def set_output_folder(self, folder: str) -> None:
        self._output_folder.setText(folder)
        self._emit(self.outputFolderChanged, self.output_folder())

    def load_from(self, s: AppSettings) -> None:
        """Show stored settings without emitting change signals."""
        self._quiet = True
        try:
            self._strength.setValue(round(float(s.get("live/strength")) * 100))
            self._strength_label.setText(f"{self._strength.value() / 100:.2f}")
            self._show_speed(speed_from_settings(s))
            self._crossfade.setChecked(bool(s.get("live/crossfade")))
            self._crossfade_ms.setValue(int(s.get("live/crossfade_ms")))
            self._crossfade_ms.setEnabled(self._crossfade.isChecked())
            self.set_record_layout(s.get("output/layout"))
            self._output_folder.setText(str(s.output_folder()))
            self.set_engine_values(s.get("engine/model_dir"), s.get("engine/device"), s.get("engine/resolution"))
        finally:
            self._quiet = False
        self._update_pending()

    # ------------------------------------------------------------------------------ engine
    def set_model_dir(self, folder: str) -> None:
        self._model_dir.setText(folder)

    def set_engine_values(self, model_dir: str, device: str, resolution: str) -> None:
        self._model_dir.setText(model_dir or "")
        i = self._device.findData(device or "auto")
        if i < 0:  # a device stored on another machine: show it, reloading will say it is not here
            self._device.addItem(f"{device} (not available here)", device)
            i = self._device.count() - 1
        self._device.setCurrentIndex(i)
        self._select_resolution(resolution or "")

    def _select_resolution(self, value: str) -> None:
        i = self._resolution.findData(value)
        if i < 0:
            hw = parse_resolution(value)
            if hw is None:
                i = 0
            else:
                self._resolution.addItem(f"{hw[1]}×{hw[0]}", value)
                i = self._resolution.count() - 1
        self._resolution.setCurrentIndex(i)

    def engine_values(self) -> dict:
        return {"model_dir": self._model_dir.text().strip(), "device": self._device.currentData() or "auto",
                "resolution": self._resolution.currentData() or ""}

    def resolution_options(self) -> list[str]:
        """The resolutions offered ("WxH"; "" is the model's own)."""
        return [self._resolution.itemData(i) for i in range(self._resolution.count())]

    def set_model_info(self, info, applied: dict) -> None:
        """After a load: resolution choices for this model, the step count its presets start from."""
        self._quiet = True
        try:
            current = self._resolution.currentData() or ""
            self._resolution.blockSignals(True)
            self._resolution.clear()
            nh, nw = info.native_resolution
            self._resolution.addItem(f"Model default ({nw}×{nh})", "")
            for h, w in resolution_choices(info.native_resolution, info.resolution_step):
                if (h, w) != info.native_resolution:
                    self._resolution.addItem(f"{w}×{h}", format_resolution((h, w)))
            self._resolution.blockSignals(False)
            self._select_resolution(current)
            self._steps.setSpecialValueText(f"preset's (model: {info.default_steps})")
        finally:
            self._quiet = False
        self._applied = dict(applied)
        self._update_pending()

    def set_applied(self, applied: dict | None) -> None:
        self._applied = dict(applied) if applied else None
        self._update_pending()

    @property
    def pending(self) -> bool:
        return self._applied is not None and self.engine_values() != self._applied

    def pending_message(self) -> str:
        return self._pending_label.text()

    def _update_pending(self, *_):
        if self.pending:
            self._pending_label.setText("Changed: press “Apply && reload” to use these engine settings")
            self._reload_button.setStyleSheet("font-weight: bold;")
        else:
            self._pending_label.setText("")
            self._reload_button.setStyleSheet("")


def speed_from_settings(s: AppSettings) -> SpeedRequest:
    """The stored speed; values a newer or older version wrote that mean nothing here fall back."""
    preset = s.get("live/speed")
    mode = s.get("live/adacache")
    return SpeedRequest(preset if preset in SPEED_PRESETS else "quality", max(0, int(s.get("live/steps"))) or None,
                        mode if mode in ADACACHE_MODES else None)


def _with_browse(edit: QLineEdit, requested, tip: str) -> QHBoxLayout:
    """A path field with a "…" button beside it that emits ``requested``."""
    browse = QPushButton("…")
    browse.setToolTip(tip)
    browse.setFixedWidth(32)
    browse.clicked.connect(requested)
    row = QHBoxLayout()
    row.addWidget(edit, 1)
    row.addWidget(browse)
    return row
