"""One way to make the window's menu and toolbar actions (each controller makes its own)."""
from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QKeySequence


def make_action(parent: QObject, text: str, slot: Callable, shortcut: str | None = None, checkable: bool = False,
                tip: str | None = None) -> QAction:
    """``slot`` gets ``triggered`` (or ``toggled(bool)`` when ``checkable``); the tooltip names the shortcut."""
    a = QAction(text, parent)
    if shortcut:
        a.setShortcut(QKeySequence(shortcut))
    a.setCheckable(checkable)
    if tip:
        a.setToolTip(f"{tip} ({shortcut})" if shortcut else tip)
    (a.toggled if checkable else a.triggered).connect(slot)
    return a


def set_checked_quietly(action: QAction, on: bool) -> None:
    """Show a state the program reached by itself without firing the action's slot again."""
    action.blockSignals(True)
    action.setChecked(on)
    action.blockSignals(False)
