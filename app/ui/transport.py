"""The row under the views: which source plays, and play / seek / loop for video files."""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QSlider, QStyle, QToolButton, QWidget

from .overlay import format_duration


class SourceCombo(QComboBox):
    aboutToShowPopup = Signal()

    def showPopup(self) -> None:
        self.aboutToShowPopup.emit()
        super().showPopup()


class TransportBar(QWidget):
    chosen = Signal(object)  # the data of the entry picked: a SourceInfo, "open" or "none"
    aboutToShowSources = Signal()
    playToggled = Signal()
    seekRequested = Signal(float)  # seconds
    loopToggled = Signal(bool)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
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
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Source:"))
        row.addWidget(self.source_combo)
        row.addWidget(self.play_button)
        row.addWidget(self.seek, 1)
        row.addWidget(self.time_label)
        row.addWidget(self.loop_check)

        self.source_combo.aboutToShowPopup.connect(self.aboutToShowSources)
        self.source_combo.activated.connect(lambda i: self.chosen.emit(self.source_combo.itemData(i)))
        self.play_button.clicked.connect(self.playToggled)
        self.seek.sliderReleased.connect(self._seek_here)
        self.seek.actionTriggered.connect(self._seek_action)
        self.loop_check.toggled.connect(self.loopToggled)

    def _seek_here(self) -> None:
        self.seekRequested.emit(self.seek.value() / 1000)

    def _seek_action(self, action: int) -> None:
        if action in (QSlider.SliderAction.SliderPageStepAdd, QSlider.SliderAction.SliderPageStepSub,
                      QSlider.SliderAction.SliderSingleStepAdd, QSlider.SliderAction.SliderSingleStepSub):
            QTimer.singleShot(0, self._seek_here)  # the slider's value moves after this signal

    # ------------------------------------------------------------------------------ state
    def loop(self) -> bool:
        return self.loop_check.isChecked()

    def set_loop(self, on: bool) -> None:
        self.loop_check.setChecked(on)

    def set_sources(self, items: list[tuple[str, object]], current: int, disabled: tuple = ("none",)) -> None:
        """Fill the source menu with (label, data) entries, without emitting ``chosen``."""
        combo = self.source_combo
        combo.blockSignals(True)
        combo.clear()
        for i, (label, data) in enumerate(items):
            combo.addItem(label, data)
            if isinstance(data, str) and data in disabled:
                combo.model().item(i).setEnabled(False)
        combo.setCurrentIndex(max(current, 0))
        combo.blockSignals(False)

    def show_sources(self) -> None:
        self.source_combo.showPopup()

    def show_live(self, has_source: bool) -> None:
        """A camera, or nothing: no transport."""
        for w in (self.play_button, self.seek, self.loop_check):
            w.setEnabled(False)
        self.time_label.setText("live" if has_source else "–")
        self.seek.setRange(0, 0)

    def show_file(self, playing: bool, position: float, duration: float | None) -> None:
        for w in (self.play_button, self.seek, self.loop_check):
            w.setEnabled(True)
        self.play_button.setIcon(self.style().standardIcon(
            QStyle.StandardPixmap.SP_MediaPause if playing else QStyle.StandardPixmap.SP_MediaPlay))
        dur = duration or 0.0
        if not self.seek.isSliderDown():
            self.seek.blockSignals(True)
            self.seek.setRange(0, int(dur * 1000))
            self.seek.setPageStep(max(1000, int(dur * 100)))
            self.seek.setValue(int(position * 1000))
            self.seek.blockSignals(False)
        self.time_label.setText(f"{format_duration(position)} / {format_duration(dur)}")
