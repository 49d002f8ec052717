"""Progress displays that never block the window: an overlay over one widget (model loading) and a
compact panel with ETA and Cancel (file export)."""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget


class ProgressOverlay(QWidget):
    """Covers its parent with a translucent layer and a card: title, message, progress bar.
    Only the covered widget is obscured; everything else keeps working."""

    def __init__(self, parent: QWidget):
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_NoSystemBackground)
        card = QFrame(self)
        card.setObjectName("card")
        card.setStyleSheet("#card { background: rgba(30, 30, 34, 230); border: 1px solid #555; border-radius: 8px; }"
                           "#card QLabel { color: #eee; }")
        self.title = QLabel("")
        self.title.setStyleSheet("font-weight: bold; font-size: 12pt;")
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.bar = QProgressBar()
        self.bar.setTextVisible(False)
        self.bar.setFixedHeight(8)
        lay = QVBoxLayout(card)
        lay.setContentsMargins(16, 12, 16, 14)
        lay.addWidget(self.title)
        lay.addWidget(self.message)
        lay.addWidget(self.bar)
        self.card = card
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        outer.addWidget(card, 0, Qt.AlignmentFlag.AlignHCenter)
        outer.addStretch(1)
        card.setMinimumWidth(260)
        card.setMaximumWidth(420)
        parent.installEventFilter(self)
        self.hide()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if obj is self.parent() and event.type() in (QEvent.Type.Resize, QEvent.Type.Show):
            self.setGeometry(self.parentWidget().rect())
        return False

    def start(self, title: str, message: str = "") -> None:
        self.title.setText(title)
        self.message.setText(message)
        self.bar.setRange(0, 0)
        self.setGeometry(self.parentWidget().rect())
        self.show()
        self.raise_()

    def set_title(self, title: str) -> None:
        self.title.setText(title)

    def progress(self, percent: int, message: str) -> None:
        if percent < 0:
            self.bar.setRange(0, 0)  # busy: no estimate for this step
        else:
            self.bar.setRange(0, 100)
            self.bar.setValue(percent)
        self.message.setText(message)

    def finish(self) -> None:
        self.hide()

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(0, 0, 0, 110))
        p.end()


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class ExportPanel(QWidget):
    """'Exporting clip.mp4 — 45 % · 120/264 frames · ETA 0:12 [Cancel]'."""

    cancelRequested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.label = QLabel("")
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(160)
        self.bar.setFixedHeight(14)
        self.cancel = QPushButton("Cancel")
        self.cancel.clicked.connect(self.cancelRequested)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.label)
        lay.addWidget(self.bar)
        lay.addWidget(self.cancel)
        self.hide()

    def begin(self, name: str) -> None:
        self.name = name
        self.label.setText(f"Exporting {name}: loading model…")
        self.bar.setRange(0, 0)
        self.cancel.setEnabled(True)
        self.show()

    def update_progress(self, done: int, total: int, elapsed: float) -> None:
        eta = ""
        if total:
            self.bar.setRange(0, total)
            self.bar.setValue(min(done, total))
            if done:
                eta = f" · ETA {format_duration(elapsed / done * (total - done))}"
            self.label.setText(f"Exporting {self.name}: {done}/{total} frames{eta}")
        else:
            self.bar.setRange(0, 0)
            self.label.setText(f"Exporting {self.name}: {done} frames")

    def cancelling(self) -> None:
        self.cancel.setEnabled(False)
        self.label.setText(f"Exporting {self.name}: cancelling…")
