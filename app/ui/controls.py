"""The controls panel. Two clearly separate groups: *Live* settings apply instantly (between chunks);
*Engine* settings (model folder, device, resolution) need a reload and only take effect on
"Apply && reload". Output settings and "Reset to defaults" sit below."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit,
                               QPushButton, QSlider, QSpinBox, QToolButton, QVBoxLayout, QWidget)

from .settings import AppSettings, format_resolution, parse_resolution

RESOLUTION_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)


def resolution_choices(native: tuple[int, int], step: tuple[int, int]) -> list[tuple[int, int]]:
    """Resolutions (height, width) near the model's own, rounded to what the model can take."""
    out = []
    for s in RESOLUTION_SCALES:
        h = max(step[0] * 2, round(native[0] * s / step[0]) * step[0])
        w = max(step[1] * 2, round(native[1] * s / step[1]) * step[1])
        if (h, w) not in out:
            out.append((h, w))
    return out


class ControlsPanel(QWidget):
    strengthChanged = Signal(float)
    stepsChanged = Signal(object)  # int, or None for the model's schedule
    adacacheChanged = Signal(bool)
    crossfadeChanged = Signal(int)  # milliseconds, 0 = off
    layoutChanged = Signal(str)  # "stylized" or "side_by_side"
    outputFolderChanged = Signal(str)
    browseModelRequested = Signal()
    browseOutputRequested = Signal()
    reloadRequested = Signal()
    resetRequested = Signal()

    def __init__(self, devices: list[tuple[str, str]], parent: QWidget | None = None):
        super().__init__(parent)
        self._applied: dict | None = None
        self._native: tuple[int, int] | None = None
        self._quiet = False

        # --- live ----------------------------------------------------------------------------
        live = QGroupBox("Live — applies instantly")
        form = QFormLayout(live)
        self.strength = QSlider(Qt.Orientation.Horizontal)
        self.strength.setRange(1, 100)
        self.strength.setToolTip("How far the output moves from the source towards the style")
        self.strength_label = QLabel("1.00")
        self.strength_label.setMinimumWidth(32)
        row = QHBoxLayout()
        row.addWidget(self.strength, 1)
        row.addWidget(self.strength_label)
        form.addRow("Strength", row)
        self.crossfade = QCheckBox("Cross-fade on style switch")
        self.crossfade_ms = QSpinBox()
        self.crossfade_ms.setRange(50, 3000)
        self.crossfade_ms.setSingleStep(50)
        self.crossfade_ms.setSuffix(" ms")
        row = QHBoxLayout()
        row.addWidget(self.crossfade, 1)
        row.addWidget(self.crossfade_ms)
        form.addRow(row)
        self.advanced_toggle = QToolButton()
        self.advanced_toggle.setText("Advanced")
        self.advanced_toggle.setCheckable(True)
        self.advanced_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_toggle.setAutoRaise(True)
        form.addRow(self.advanced_toggle)
        self.advanced = QWidget()
        adv = QFormLayout(self.advanced)
        adv.setContentsMargins(12, 0, 0, 0)
        self.steps = QSpinBox()
        self.steps.setRange(0, 8)
        self.steps.setSpecialValueText("model default")
        self.steps.setToolTip("Denoising steps per chunk: fewer is faster, more follows the style more closely")
        adv.addRow("Steps", self.steps)
        self.adacache = QCheckBox("AdaCache (skip work when little changes)")
        adv.addRow(self.adacache)
        self.adacache.setVisible(False)
        self.advanced.setVisible(False)
        form.addRow(self.advanced)

        # --- engine --------------------------------------------------------------------------
        engine = QGroupBox("Engine — needs reload")
        eform = QFormLayout(engine)
        self.model_dir = QLineEdit()
        self.model_dir.setPlaceholderText("embedded default model")
        self.model_dir.setToolTip("A model folder: config.json plus .safetensors weights")
        eform.addRow("Model", _with_browse(self.model_dir, self.browseModelRequested, "Choose a model folder"))
        self.device = QComboBox()
        for value, label in devices:
            self.device.addItem(label, value)
        eform.addRow("Device", self.device)
        self.resolution = QComboBox()
        self.resolution.addItem("Model default", "")
        eform.addRow("Resolution", self.resolution)
        self.reload_button = QPushButton("Apply && reload")
        self.reload_button.setToolTip("Reload the model with these engine settings")
        self.pending_label = QLabel("")
        self.pending_label.setStyleSheet("color: #c08a00;")
        self.pending_label.setWordWrap(True)
        eform.addRow(self.reload_button)
        eform.addRow(self.pending_label)

        # --- output --------------------------------------------------------------------------
        output = QGroupBox("Output")
        oform = QFormLayout(output)
        self.layout_combo = QComboBox()
        self.layout_combo.addItem("Stylized only", "stylized")
        self.layout_combo.addItem("Side by side", "side_by_side")
        self.layout_combo.setToolTip("What recordings and screenshots contain")
        oform.addRow("Record / screenshot", self.layout_combo)
        self.output_folder = QLineEdit()
        self.output_folder.setToolTip("Where recordings and screenshots are saved")
        oform.addRow("Save to", _with_browse(self.output_folder, self.browseOutputRequested, "Choose the output folder"))

        self.reset_button = QPushButton("Reset to defaults")
        self.reset_button.setToolTip("Restore every setting and the window layout (your own styles are kept)")

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(live)
        lay.addWidget(engine)
        lay.addWidget(output)
        lay.addStretch(1)
        lay.addWidget(self.reset_button)

        # --- wiring --------------------------------------------------------------------------
        self.strength.valueChanged.connect(self._strength_moved)
        self.crossfade.toggled.connect(self._crossfade_changed)
        self.crossfade_ms.valueChanged.connect(self._crossfade_changed)
        self.advanced_toggle.toggled.connect(self._toggle_advanced)
        self.steps.valueChanged.connect(lambda v: self._emit(self.stepsChanged, v or None))
        self.adacache.toggled.connect(lambda v: self._emit(self.adacacheChanged, v))
        self.layout_combo.currentIndexChanged.connect(
            lambda _: self._emit(self.layoutChanged, self.layout_combo.currentData()))
        self.output_folder.editingFinished.connect(
            lambda: self._emit(self.outputFolderChanged, self.output_folder.text().strip()))
        self.model_dir.textChanged.connect(self._update_pending)
        self.device.currentIndexChanged.connect(self._update_pending)
        self.resolution.currentIndexChanged.connect(self._update_pending)
        self.reload_button.clicked.connect(self.reloadRequested)
        self.reset_button.clicked.connect(self.resetRequested)

    # ------------------------------------------------------------------------------ values
    def _emit(self, signal, value) -> None:
        if not self._quiet:
            signal.emit(value)

    def _strength_moved(self, v: int) -> None:
        self.strength_label.setText(f"{v / 100:.2f}")
        self._emit(self.strengthChanged, v / 100)

    def _crossfade_changed(self, *_):
        self.crossfade_ms.setEnabled(self.crossfade.isChecked())
        self._emit(self.crossfadeChanged, self.crossfade_ms.value() if self.crossfade.isChecked() else 0)

    def _toggle_advanced(self, on: bool) -> None:
        self.advanced.setVisible(on)
        self.advanced_toggle.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)

    def strength_value(self) -> float:
        return self.strength.value() / 100

    def set_strength(self, value: float, emit: bool = True) -> None:
        self._quiet = not emit
        try:
            self.strength.setValue(round(min(max(value, 0.01), 1.0) * 100))
            self.strength_label.setText(f"{self.strength.value() / 100:.2f}")
        finally:
            self._quiet = False

    def steps_value(self) -> int | None:
        return self.steps.value() or None

    def crossfade_value(self) -> int:
        return self.crossfade_ms.value() if self.crossfade.isChecked() else 0

    def load_from(self, s: AppSettings) -> None:
        """Show stored settings without emitting change signals."""
        self._quiet = True
        try:
            self.strength.setValue(round(float(s.get("live/strength")) * 100))
            self.strength_label.setText(f"{self.strength.value() / 100:.2f}")
            self.steps.setValue(int(s.get("live/steps")))
            self.adacache.setChecked(bool(s.get("live/adacache")))
            self.crossfade.setChecked(bool(s.get("live/crossfade")))
            self.crossfade_ms.setValue(int(s.get("live/crossfade_ms")))
            self.crossfade_ms.setEnabled(self.crossfade.isChecked())
            i = self.layout_combo.findData(s.get("output/layout"))
            self.layout_combo.setCurrentIndex(max(i, 0))
            self.output_folder.setText(str(s.output_folder()))
            self.set_engine_values(s.get("engine/model_dir"), s.get("engine/device"), s.get("engine/resolution"))
        finally:
            self._quiet = False
        self._update_pending()

    # ------------------------------------------------------------------------------ engine
    def set_engine_values(self, model_dir: str, device: str, resolution: str) -> None:
        self.model_dir.setText(model_dir or "")
        i = self.device.findData(device or "auto")
        if i < 0:  # a device stored on another machine: show it, reloading will say it is not here
            self.device.addItem(f"{device} (not available here)", device)
            i = self.device.count() - 1
        self.device.setCurrentIndex(i)
        self._select_resolution(resolution or "")

    def _select_resolution(self, value: str) -> None:
        i = self.resolution.findData(value)
        if i < 0:
            hw = parse_resolution(value)
            if hw is None:
                i = 0
            else:
                self.resolution.addItem(f"{hw[1]}×{hw[0]}", value)
                i = self.resolution.count() - 1
        self.resolution.setCurrentIndex(i)

    def engine_values(self) -> dict:
        return {"model_dir": self.model_dir.text().strip(), "device": self.device.currentData() or "auto",
                "resolution": self.resolution.currentData() or ""}

    def set_model_info(self, info, applied: dict) -> None:
        """After a load: resolution choices for this model, step default, AdaCache availability."""
        self._quiet = True
        try:
            self._native = info.native_resolution
            current = self.resolution.currentData() or ""
            self.resolution.blockSignals(True)
            self.resolution.clear()
            nh, nw = info.native_resolution
            self.resolution.addItem(f"Model default ({nw}×{nh})", "")
            for h, w in resolution_choices(info.native_resolution, info.resolution_step):
                if (h, w) != info.native_resolution:
                    self.resolution.addItem(f"{w}×{h}", format_resolution((h, w)))
            self.resolution.blockSignals(False)
            self._select_resolution(current)
            self.steps.setSpecialValueText(f"model default ({info.default_steps})")
            self.adacache.setVisible(True)
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

    def _update_pending(self, *_):
        if self.pending:
            self.pending_label.setText("Changed: press “Apply && reload” to use these engine settings")
            self.reload_button.setStyleSheet("font-weight: bold;")
        else:
            self.pending_label.setText("")
            self.reload_button.setStyleSheet("")


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
