"""Error banners: messages shown inside the window (never a blocking dialog), one per cause.

Each banner has a key (``"source"``, ``"model"``, ``"engine"`` ...). Showing a key again replaces its
message; clearing the key when the cause is fixed removes it. Banners can carry action buttons
("Choose model folder…", "Retry") and can be dismissed.
"""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QStyle, QToolButton, QVBoxLayout, QWidget

COLORS = {
    "error": ("#5c1d1d", "#ffb4b4", "#b33a3a"),
    "warning": ("#4d3d10", "#ffe09a", "#b08a20"),
    "info": ("#16324f", "#b8dcff", "#3a78b3"),
}


class Banner(QFrame):
    closed = Signal(str)

    def __init__(self, key: str, level: str, text: str, actions: list[tuple[str, Callable[[], None]]],
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.key, self.level = key, level
        bg, fg, border = COLORS.get(level, COLORS["error"])
        self.setObjectName("banner")
        self.setStyleSheet(f"#banner {{ background: {bg}; border: 1px solid {border}; border-radius: 4px; }}"
                           f"#banner QLabel {{ color: {fg}; }}")
        self.label = QLabel(text)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 6, 6, 6)
        icon = QLabel()
        pixmap = {"error": QStyle.StandardPixmap.SP_MessageBoxCritical,
                  "warning": QStyle.StandardPixmap.SP_MessageBoxWarning,
                  "info": QStyle.StandardPixmap.SP_MessageBoxInformation}.get(level,
                                                                           QStyle.StandardPixmap.SP_MessageBoxWarning)
        icon.setPixmap(self.style().standardIcon(pixmap).pixmap(18, 18))
        lay.addWidget(icon, 0, Qt.AlignmentFlag.AlignTop)
        lay.addWidget(self.label, 1)
        self.buttons: dict[str, QPushButton] = {}
        for title, callback in actions:
            b = QPushButton(title)
            b.clicked.connect(callback)
            lay.addWidget(b, 0, Qt.AlignmentFlag.AlignTop)
            self.buttons[title] = b
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(lambda: self.closed.emit(self.key))
        lay.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)

    @property
    def text(self) -> str:
        return self.label.text()


class BannerArea(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.banners: dict[str, Banner] = {}
        self._lay = QVBoxLayout(self)
        self._lay.setContentsMargins(0, 0, 0, 0)
        self._lay.setSpacing(4)
        self.setVisible(False)

    def show_message(self, key: str, text: str, level: str = "error",
                     actions: list[tuple[str, Callable[[], None]]] | None = None) -> Banner:
        self.clear(key)
        b = Banner(key, level, text, actions or [], self)
        b.closed.connect(self.clear)
        self.banners[key] = b
        self._lay.addWidget(b)
        self.setVisible(True)
        return b

    def clear(self, key: str) -> None:
        b = self.banners.pop(key, None)
        if b is not None:
            b.hide()
            self._lay.removeWidget(b)
            b.deleteLater()
        self.setVisible(bool(self.banners))

    def text(self, key: str) -> str | None:
        b = self.banners.get(key)
        return b.text if b is not None else None

    def all_text(self) -> str:
        return "\n".join(b.text for b in self.banners.values())
