"""The prompt box: type a style and press Enter. Up/Down walk through earlier prompts."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QPushButton, QWidget


class PromptEdit(QLineEdit):
    submitted = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.history: list[str] = []
        self._pos = 0
        self.setAcceptDrops(False)  # files dropped here go to the window (reference images, videos)
        self.setClearButtonEnabled(True)
        self.setPlaceholderText("Describe a style and press Enter, e.g. “ink wash painting”")
        self.returnPressed.connect(self._submit)

    def _submit(self) -> None:
        text = self.text().strip()
        if not text:
            return
        if not self.history or self.history[-1] != text:
            self.history.append(text)
            del self.history[:-50]
        self._pos = len(self.history)
        self.submitted.emit(text)

    def keyPressEvent(self, event) -> None:
        if event.key() in (Qt.Key.Key_Up, Qt.Key.Key_Down) and self.history:
            step = -1 if event.key() == Qt.Key.Key_Up else 1
            self._pos = min(max(self._pos + step, 0), len(self.history))
            self.setText(self.history[self._pos] if self._pos < len(self.history) else "")
            return
        super().keyPressEvent(event)


class PromptBox(QWidget):
    submitted = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.edit = PromptEdit(self)
        self.button = QPushButton("Apply")
        self.button.setToolTip("Switch to this prompt (Enter)")
        self.current = QLabel("")
        self.current.setTextFormat(Qt.TextFormat.PlainText)
        self.current.setStyleSheet("color: palette(mid);")
        self.current.setMinimumWidth(120)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(QLabel("Prompt:"))
        lay.addWidget(self.edit, 1)
        lay.addWidget(self.button)
        lay.addWidget(self.current)
        self.edit.submitted.connect(self.submitted)
        self.button.clicked.connect(self.edit._submit)

    def focus_edit(self) -> None:
        self.edit.setFocus()

    def show_style(self, label: str, prompt: str | None, matched: str | None = None) -> None:
        """Show what is running now; the edit shows the prompt (empty for an image style).

        ``matched``: the trained style a free prompt was matched to (models that list their styles).
        """
        self.current.setText(f"Now: {label}" + (f"  \u2192 {matched.split(' (')[0]}" if matched else ""))
        self.current.setToolTip(f"{label}\nrendered as: {matched}" if matched else label)
        if not self.edit.hasFocus():
            self.edit.setText(prompt or "")
