"""Frame composition for outputs: even sizes, aspect-preserving fit (letterbox), side by side.

Shared by the MP4 writer, the recorder, the offline render and the virtual camera, so every output
frames pictures the same way: never stretched, centred on black, with even dimensions (yuv420p).
"""
from __future__ import annotations

import cv2
import numpy as np

STYLIZED = "stylized"
SIDE_BY_SIDE = "side_by_side"
LAYOUTS = (STYLIZED, SIDE_BY_SIDE)

_ALIASES = {"stylized": STYLIZED, "side_by_side": SIDE_BY_SIDE, "side-by-side": SIDE_BY_SIDE,
            "sidebyside": SIDE_BY_SIDE, "sbs": SIDE_BY_SIDE}


def normalize_layout(name: str) -> str:
    """'stylized' or 'side_by_side' (also accepts 'side-by-side'); a clear error otherwise."""
    key = str(name).strip().lower().replace(" ", "_")
    if key not in _ALIASES:
        raise ValueError(f"unknown layout {name!r}: use 'stylized' or 'side_by_side'")
    return _ALIASES[key]


def even(n: int) -> int:
    """The even number at or below ``n`` (at least 2)."""
    return max(2, int(n) - int(n) % 2)


def check_frame(frame: np.ndarray, what: str = "frame") -> np.ndarray:
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        desc = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise ValueError(f"{what} must be a uint8 HxWx3 RGB array, got {desc}")
    if frame.shape[0] < 2 or frame.shape[1] < 2:
        raise ValueError(f"{what} is too small: {frame.shape[1]}x{frame.shape[0]}")
    return frame


def fit_size(width: int, height: int, box_width: int, box_height: int) -> tuple[int, int]:
    """The largest (w, h) with the aspect ratio of ``width x height`` that fits inside the box."""
    scale = min(box_width / width, box_height / height)
    w = min(box_width, max(1, round(width * scale)))
    h = min(box_height, max(1, round(height * scale)))
    return w, h


def letterbox(frame: np.ndarray, width: int, height: int, out: np.ndarray | None = None) -> np.ndarray:
    """Fit ``frame`` inside ``width x height`` keeping its aspect ratio, centred on black.

    A frame that is only one row/column too big (an odd size going to an even one) is cropped
    rather than resampled. ``out`` (uint8 height x width x 3), when given, is filled and returned.
    """
    h, w = frame.shape[:2]
    if out is None:
        out = np.zeros((height, width, 3), np.uint8)
    if (h, w) == (height, width):
        out[...] = frame
        return out
    if 0 <= h - height <= 1 and 0 <= w - width <= 1:
        out[...] = frame[:height, :width]
        return out
    fw, fh = fit_size(w, h, width, height)
    interp = cv2.INTER_AREA if fw < w or fh < h else cv2.INTER_LINEAR
    resized = cv2.resize(np.ascontiguousarray(frame), (fw, fh), interpolation=interp)
    y, x = (height - fh) // 2, (width - fw) // 2
    out[:y] = 0
    out[y + fh:] = 0
    out[y:y + fh, :x] = 0
    out[y:y + fh, x + fw:] = 0
    out[y:y + fh, x:x + fw] = resized
    return out


class Compositor:
    """Builds output frames of one fixed, even size from (stylized, source) pairs.

    The size is fixed by the first frame (or given): ``stylized`` is the stylized frame's size
    rounded down to even; ``side_by_side`` puts the source (left) and the stylized frame (right)
    in two panels of that size. Frames of another size later on are letterboxed into their panel,
    and a missing source frame leaves its panel black.
    """

    def __init__(self, layout: str = STYLIZED, size: tuple[int, int] | None = None):
        self.layout = normalize_layout(layout)
        self.size: tuple[int, int] | None = None  # (width, height) of the composed frame
        self.panel: tuple[int, int] | None = None
        if size is not None:
            self._set_size(int(size[0]), int(size[1]))

    def _set_size(self, width: int, height: int) -> None:
        if self.layout == SIDE_BY_SIDE:
            pw, ph = even(width // 2), even(height)
            self.panel, self.size = (pw, ph), (2 * pw, ph)
        else:
            self.panel = self.size = (even(width), even(height))

    def output_size(self, stylized_shape: tuple[int, ...]) -> tuple[int, int]:
        """The composed (width, height) for a first stylized frame of this shape."""
        if self.size is None:
            h, w = stylized_shape[:2]
            self._set_size(2 * w if self.layout == SIDE_BY_SIDE else w, h)
        return self.size

    def compose(self, stylized: np.ndarray, source: np.ndarray | None = None) -> np.ndarray:
        check_frame(stylized, "the stylized frame")
        width, height = self.output_size(stylized.shape)
        pw, ph = self.panel
        if self.layout == STYLIZED:
            if stylized.shape[:2] == (height, width):
                return stylized
            return letterbox(stylized, width, height)
        out = np.empty((height, width, 3), np.uint8)
        if source is None:
            out[:, :pw] = 0
        else:
            letterbox(check_frame(source, "the source frame"), pw, ph, out[:, :pw])
        letterbox(stylized, pw, ph, out[:, pw:])
        return out


def compose(layout: str, stylized: np.ndarray, source: np.ndarray | None = None) -> np.ndarray:
    """One-off composition (sizes from this stylized frame)."""
    return Compositor(layout).compose(stylized, source)
