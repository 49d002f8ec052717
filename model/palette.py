"""Reference mode's palette: the output's mean colour moved to where the reference's targets put it.

Why: in reference mode the DiT tells paintings apart too little. Three Japanese prints came out as
nearly the same dark blue-grey picture, darker than every target, and the best colour map of the
outputs onto their targets (an oracle) was worth up to 4.8 dB. The target's mean colour (OpenCV's
8-bit CIE Lab) is predictable from the output's own mean and the reference image's mean and spread: a
linear map fitted by ridge regression on a data set's reference clips (``main.py train palette``)
cut the mean-colour error on its clips from 146 to 46 (Lab units squared, five folds held out in
turn). At run time the output's mean is a running mean over the stream, so a frame's colours do not
pump with what is in view, and the move is one RGB offset per frame.

Invariants: without weights or without a reference image, frames pass unchanged (the same array);
``reset`` forgets the running mean; the offset is the same for every pixel of a frame.
"""
from __future__ import annotations

import cv2
import numpy as np

FEATURES = 10  # the output's mean (3), the reference's mean (3) and spread (3), and 1
RUNNING = 0.2  # weight of each new frame in the output's running mean
STATS_SIDE = 64  # the longer side of the thumbnail the means are taken on


def lab_stats(image: np.ndarray, square: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Mean and spread of an RGB uint8 image in OpenCV's 8-bit Lab, on a small thumbnail; ``square``:
    of its centre square, as reference images are seen in training."""
    h, w = image.shape[:2]
    if square:
        s = min(h, w)
        image, h, w = image[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s], s, s
    f = min(1.0, STATS_SIDE / max(h, w))
    small = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(np.ascontiguousarray(small), cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float64)
    return lab.mean(0), lab.std(0)


def features(output_mean: np.ndarray, reference: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    return np.concatenate([output_mean, reference[0], reference[1], [1.0]])


def _lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    px = np.clip(np.round(lab), 0, 255).astype(np.uint8).reshape(1, 1, 3)
    return cv2.cvtColor(px, cv2.COLOR_LAB2RGB).reshape(3).astype(np.int16)


class ReferencePalette:
    """Owns the palette map of one stream; ``weights`` [FEATURES, 3] or None (the model has none)."""

    def __init__(self, weights=None):
        self.weights = None if weights is None else np.asarray(weights, np.float64).reshape(FEATURES, 3)
        self._reference: tuple[np.ndarray, np.ndarray] | None = None
        self._mean: np.ndarray | None = None

    def set_reference(self, image: np.ndarray | None) -> None:
        """The reference image of the style now in effect (None: a text style)."""
        self._reference = None if image is None else lab_stats(image, square=True)
        self.reset()

    def reset(self) -> None:
        self._mean = None

    @property
    def active(self) -> bool:
        return self.weights is not None and self._reference is not None

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        if not self.active:
            return frame
        mean = lab_stats(frame)[0]
        self._mean = mean if self._mean is None else self._mean + RUNNING * (mean - self._mean)
        target = features(self._mean, self._reference) @ self.weights
        offset = _lab_to_rgb(target) - _lab_to_rgb(self._mean)
        return cv2.add(frame, (*(float(v) for v in offset), 0.0))  # saturating, in OpenCV: 0.2 ms at 640x360
