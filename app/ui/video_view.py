"""A video view: paints the newest frame scaled to fit (aspect ratio kept), with a caption chip and a
centred message when there is nothing to show."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget


def to_qimage(frame: np.ndarray) -> QImage:
    """Wrap a uint8 HxWx3 RGB array as a QImage (the array must stay alive while the image is used)."""
    h, w = frame.shape[:2]
    return QImage(frame.data, w, h, frame.strides[0], QImage.Format.Format_RGB888)


class VideoView(QWidget):
    def __init__(self, caption: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.caption = caption
        self.badge = ""  # e.g. "REC" (drawn top-right in red)
        self._frame: np.ndarray | None = None
        self._image: QImage | None = None
        self._message = ""
        self.frames_shown = 0
        self.setMinimumSize(160, 100)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    # ------------------------------------------------------------------------------- content
    def set_frame(self, frame: np.ndarray) -> None:
        frame = np.ascontiguousarray(frame)
        self._frame = frame
        self._image = to_qimage(frame)
        self._message = ""
        self.frames_shown += 1
        self.update()

    def clear(self, message: str = "") -> None:
        self._frame, self._image = None, None
        self._message = message
        self.update()

    def set_message(self, message: str) -> None:
        """Text drawn over the view (centred when empty, at the bottom over a frame)."""
        self._message = message
        self.update()

    def set_badge(self, badge: str) -> None:
        self.badge = badge
        self.update()

    @property
    def frame(self) -> np.ndarray | None:
        return self._frame

    @property
    def message(self) -> str:
        return self._message

    def sizeHint(self) -> QSize:
        return QSize(480, 300)

    def image_rect(self) -> QRect:
        """Where the frame is drawn: the largest rectangle of its aspect ratio inside the view."""
        if self._image is None:
            return QRect()
        iw, ih = self._image.width(), self._image.height()
        scale = min(self.width() / iw, self.height() / ih)
        w, h = max(1, round(iw * scale)), max(1, round(ih * scale))
        return QRect((self.width() - w) // 2, (self.height() - h) // 2, w, h)

    # -------------------------------------------------------------------------------- paint
    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(18, 18, 20))
        if self._image is not None:
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            p.drawImage(self.image_rect(), self._image)
        font = QFont(self.font())
        font.setPointSizeF(max(8.0, font.pointSizeF()))
        p.setFont(font)
        fm = p.fontMetrics()
        if self.caption:
            self._chip(p, QRect(8, 8, fm.horizontalAdvance(self.caption) + 16, fm.height() + 8),
                       self.caption, QColor(0, 0, 0, 150), QColor(235, 235, 235))
        if self.badge:
            w = fm.horizontalAdvance(self.badge) + 16
            self._chip(p, QRect(self.width() - w - 8, 8, w, fm.height() + 8), self.badge,
                       QColor(200, 30, 30, 220), QColor(255, 255, 255))
        if self._message:
            p.setPen(QColor(200, 200, 200))
            if self._image is None:
                p.drawText(self.rect().adjusted(16, 16, -16, -16),
                           Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._message)
            else:
                r = QRect(8, self.height() - fm.height() - 16, self.width() - 16, fm.height() + 8)
                p.fillRect(r, QColor(0, 0, 0, 150))
                p.drawText(r, Qt.AlignmentFlag.AlignCenter, self._message)
        p.end()

    @staticmethod
    def _chip(p: QPainter, rect: QRect, text: str, bg: QColor, fg: QColor) -> None:
        path = QPainterPath()
        path.addRoundedRect(QRectF(rect), 6, 6)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillPath(path, bg)
        p.setPen(QPen(fg))
        p.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
