"""The style gallery: presets (built-in from resources/gallery/presets.json, plus the user's own
reference images) shown as a grid of thumbnails. Clicking one switches the style live; the first nine
carry their Ctrl+N shortcut on the thumbnail."""
from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QLinearGradient, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..styles import StyleSpec

RESOURCES = Path(__file__).resolve().parent.parent.parent / "resources"
DEFAULT_GALLERY_DIR = RESOURCES / "gallery"
THUMB = QSize(112, 70)


@dataclass
class Preset:
    name: str
    prompt: str | None = None
    reference: Path | None = None
    thumbnail: Path | None = None
    strength: float | None = None
    style: str | None = None  # the built-in style family it shows (informational)
    user: bool = False

    @property
    def key(self) -> str:
        return f"user:{self.reference}" if self.user else f"preset:{self.name}"

    @property
    def kind(self) -> str:
        return "reference" if self.reference is not None else "text"

    def spec(self) -> StyleSpec:
        return StyleSpec(prompt=self.prompt, reference=self.reference)

    def describe(self) -> str:
        parts = [self.name]
        if self.reference is not None:
            parts.append(f"reference image: {self.reference.name}")
        if self.prompt:
            parts.append(f"prompt: {self.prompt}")
        if self.strength is not None:
            parts.append(f"strength {self.strength:.2f}")
        return "\n".join(parts)

    def to_user_dict(self) -> dict:
        return {"name": self.name, "reference": str(self.reference)}


def load_presets(gallery_dir: str | Path | None = None) -> tuple[list[Preset], list[str]]:
    """Built-in presets from ``gallery_dir/presets.json``; returns (presets, problems)."""
    folder = Path(gallery_dir) if gallery_dir else DEFAULT_GALLERY_DIR
    path = folder / "presets.json"
    if not path.is_file():
        return [], [f"no style presets found ({path} is missing)"]
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return [], [f"{path.name} could not be read: {e}"]
    if isinstance(data, dict):
        data = data.get("presets", [])
    if not isinstance(data, list):
        return [], [f"{path.name} must hold a list of presets"]
    presets, problems = [], []
    for i, entry in enumerate(data):
        if not isinstance(entry, dict) or not entry.get("name"):
            problems.append(f"preset {i + 1} has no name")
            continue
        name = str(entry["name"])
        prompt = entry.get("prompt") or None
        ref = entry.get("reference")
        reference = (folder / ref) if ref else None
        if reference is not None and not reference.is_file():
            problems.append(f"preset {name!r}: reference image {ref} is missing")
            continue
        if prompt is None and reference is None:
            problems.append(f"preset {name!r} has neither a prompt nor a reference image")
            continue
        thumb = entry.get("thumbnail")
        strength = entry.get("strength")
        try:
            strength = float(strength) if strength is not None else None
        except (TypeError, ValueError):
            strength = None
        presets.append(Preset(name, prompt, reference, (folder / thumb) if thumb else None, strength,
                              entry.get("style")))
    return presets, problems


def user_presets_from(entries: list[dict]) -> list[Preset]:
    out = []
    for e in entries:
        try:
            ref = Path(e["reference"])
        except (KeyError, TypeError):
            continue
        if ref.is_file():
            out.append(Preset(str(e.get("name") or ref.stem), reference=ref, thumbnail=ref, user=True))
    return out


def import_reference_image(path: str | Path, styles_dir: str | Path) -> Path:
    """Copy a dropped image into the app's data folder (named by its content, so the same image
    dropped twice is stored once) and return the copy's path."""
    path = Path(path)
    data = path.read_bytes()
    digest = hashlib.sha1(data).hexdigest()[:10]
    styles_dir = Path(styles_dir)
    styles_dir.mkdir(parents=True, exist_ok=True)
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in path.stem)[:40] or "image"
    target = styles_dir / f"{stem}-{digest}{path.suffix.lower()}"
    if not target.exists():
        shutil.copyfile(path, target)
    return target


# ------------------------------------------------------------------------------- thumbnails
def _tile_color(name: str) -> QColor:
    h = int(hashlib.md5(name.encode()).hexdigest()[:4], 16) % 360
    return QColor.fromHsv(h, 120, 170)


def make_thumbnail(preset: Preset, number: int | None) -> QPixmap:
    pix = QPixmap(THUMB)
    pix.fill(QColor(40, 40, 44))
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    source = preset.thumbnail if preset.thumbnail and preset.thumbnail.is_file() else preset.reference
    img = QPixmap(str(source)) if source is not None and Path(source).is_file() else QPixmap()
    if not img.isNull():
        scaled = img.scaled(THUMB, Qt.AspectRatioMode.KeepAspectRatioByExpanding,
                            Qt.TransformationMode.SmoothTransformation)
        x, y = (scaled.width() - THUMB.width()) // 2, (scaled.height() - THUMB.height()) // 2
        p.drawPixmap(0, 0, scaled, x, y, THUMB.width(), THUMB.height())
    else:  # a prompt with no picture: a coloured tile with its initials
        base = _tile_color(preset.name)
        grad = QLinearGradient(0, 0, THUMB.width(), THUMB.height())
        grad.setColorAt(0, base.lighter(130))
        grad.setColorAt(1, base.darker(160))
        p.fillRect(pix.rect(), grad)
        f = QFont()
        f.setPointSize(20)
        f.setBold(True)
        p.setFont(f)
        p.setPen(QColor(255, 255, 255, 220))
        initials = "".join(w[0] for w in preset.name.split()[:2]).upper() or "?"
        p.drawText(pix.rect(), Qt.AlignmentFlag.AlignCenter, initials)
    if number is not None:
        f = QFont()
        f.setPointSize(8)
        f.setBold(True)
        p.setFont(f)
        r = QRect(4, 4, 18, 16)
        p.setBrush(QColor(0, 0, 0, 170))
        p.setPen(Qt.PenStyle.NoPen)
        p.drawRoundedRect(r, 4, 4)
        p.setPen(QColor(255, 255, 255))
        p.drawText(r, Qt.AlignmentFlag.AlignCenter, str(number))
    if preset.user:
        p.setBrush(QColor(40, 120, 220, 200))
        p.setPen(Qt.PenStyle.NoPen)
        p.drawEllipse(QPoint(THUMB.width() - 10, 10), 5, 5)
    p.end()
    return pix


# ----------------------------------------------------------------------------------- widgets
class GalleryList(QListWidget):
    presetActivated = Signal(object)  # Preset
    removeRequested = Signal(object)  # a user Preset

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.presets: list[Preset] = []
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(True)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setIconSize(THUMB)
        self.setGridSize(QSize(THUMB.width() + 14, THUMB.height() + 34))
        self.setUniformItemSizes(True)
        self.setWordWrap(True)
        self.setSpacing(2)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setDragDropMode(QAbstractItemView.DragDropMode.NoDragDrop)
        self.setAcceptDrops(False)
        self.viewport().setAcceptDrops(False)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu)
        self.itemClicked.connect(self._activated)
        self.itemActivated.connect(self._activated)

    def set_presets(self, presets: list[Preset]) -> None:
        current = self.current_key()
        self.presets = list(presets)
        self.clear()
        for i, preset in enumerate(self.presets):
            number = i + 1 if i < 9 else None
            item = QListWidgetItem(QIcon(make_thumbnail(preset, number)), preset.name)
            tip = preset.describe() + (f"\nShortcut: Ctrl+{number}" if number else "")
            if preset.user:
                tip += "\n(your image; right-click to remove)"
            item.setToolTip(tip)
            item.setData(Qt.ItemDataRole.UserRole, i)
            item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
            self.addItem(item)
        if current:
            self.highlight(current)

    def preset_for(self, item: QListWidgetItem) -> Preset:
        return self.presets[item.data(Qt.ItemDataRole.UserRole)]

    def current_key(self) -> str | None:
        item = self.currentItem()
        return self.preset_for(item).key if item is not None and self.presets else None

    def highlight(self, key: str | None) -> None:
        """Select the preset with ``key`` (or nothing) without switching style."""
        self.blockSignals(True)
        try:
            self.clearSelection()
            self.setCurrentItem(None)
            for i, preset in enumerate(self.presets):
                if preset.key == key:
                    self.setCurrentRow(i)
                    self.scrollToItem(self.item(i))
                    break
        finally:
            self.blockSignals(False)

    def _activated(self, item: QListWidgetItem) -> None:
        self.presetActivated.emit(self.preset_for(item))

    def _menu(self, pos) -> None:
        item = self.itemAt(pos)
        if item is None:
            return
        preset = self.preset_for(item)
        menu = QMenu(self)
        use = menu.addAction("Use this style")
        remove = menu.addAction("Remove from gallery") if preset.user else None
        chosen = menu.exec(self.viewport().mapToGlobal(pos))
        if chosen is use:
            self.presetActivated.emit(preset)
        elif remove is not None and chosen is remove:
            self.removeRequested.emit(preset)


class GalleryPanel(QWidget):
    """Title row + the grid."""

    addImageRequested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.list = GalleryList(self)
        title = QLabel("<b>Styles</b>")
        hint = QLabel("Click a style · Ctrl+1…9 · drop an image anywhere to use it as a reference")
        hint.setStyleSheet("color: palette(mid);")
        self.add_button = QPushButton("Add image…")
        self.add_button.setToolTip("Add a reference image as a new style")
        self.add_button.clicked.connect(self.addImageRequested)
        self.notice = QLabel("")
        self.notice.setStyleSheet("color: #c08a00;")
        self.notice.setVisible(False)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(title)
        row.addSpacing(8)
        row.addWidget(hint, 1)
        row.addWidget(self.add_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        lay.addLayout(row)
        lay.addWidget(self.notice)
        lay.addWidget(self.list, 1)

    def set_notice(self, text: str) -> None:
        self.notice.setText(text)
        self.notice.setVisible(bool(text))
