"""Reference mode's palette: the output's colours mapped to where the reference's targets put them.

Why: in reference mode the DiT tells paintings apart too little. Three Japanese prints came out as
nearly the same dark blue-grey picture, darker than every target, and the best colour map of the
outputs onto their targets (an oracle) was worth up to 4.8 dB. Which colour map is predictable: a
per-frame affine map of the output's RGB (a 3x3 matrix and an offset) whose twelve entries are linear
in the output's running Lab mean and spread and in the reference image's Lab mean and spread. Its
weights are fitted by least squares on a data set's reference clips (``main.py train palette``).

The map recolours the frame's base (the frame at ``BASE_SIDE`` pixels on its short side, enlarged
again) and leaves the detail above it as the decoder painted it: the best map for squared error
lowers contrast where the output's detail and the target's disagree, and applied to the whole frame
it halved the detail kept (the variance of the Laplacian) for the same PSNR within 0.01 dB (real
clips, twelve frames).

At run time the output's statistics are a running mean over the stream, so a frame's colours do not
pump with what is in view.

Invariants: without weights or without a reference image, frames pass unchanged (the same array);
``reset`` forgets the running statistics; one map is applied to every pixel of a frame, and detail
finer than the base passes unchanged (up to 8-bit saturation).
"""
from __future__ import annotations

import cv2
import numpy as np

FEATURES = 13  # the output's running Lab mean (3) and spread (3), the reference's mean (3) and spread (3), 1
MAP_SHAPE = (FEATURES, 4, 3)  # feature x [R, G, B, 1] of the output pixel x the change of R, G, B
RUNNING = 0.2  # weight of each new frame in the output's running statistics
STATS_SIDE = 64  # the longer side of the thumbnail the statistics are taken on
BASE_SIDE = 72  # the base the map recolours: the frame at this short side (a quarter of data set v4's)


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


def colour_map(features: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The [4, 3] change of [R, G, B] (in 0..1) per [R, G, B, 1] of the output pixel."""
    return np.einsum("a,aik->ik", features, weights)


def _small(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    f = min(1.0, BASE_SIDE / min(h, w))
    return cv2.resize(frame, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)


def _enlarge(small: np.ndarray, like: np.ndarray) -> np.ndarray:
    return cv2.resize(small, (like.shape[1], like.shape[0]), interpolation=cv2.INTER_LINEAR)


def base(frame: np.ndarray) -> np.ndarray:
    """The part of ``frame`` the map recolours."""
    return _enlarge(_small(frame), frame)


def apply_map(frame: np.ndarray, change: np.ndarray, small: np.ndarray | None = None) -> np.ndarray:
    """``frame`` + [base, 1] @ ``change``, in 8-bit RGB, saturating. The change is affine in the base, so it
    is computed on the small frame and enlarged, with no float image."""
    m = np.concatenate([np.eye(3) + change[:3].T, 255.0 * change[3][:, None]], 1)  # rows: output channels
    small = _small(frame) if small is None else small
    mapped = cv2.transform(small, m)
    up, down = cv2.subtract(mapped, small), cv2.subtract(small, mapped)  # the signed change, in two halves
    return cv2.subtract(cv2.add(frame, _enlarge(up, frame)), _enlarge(down, frame))


class ReferencePalette:
    """Owns the colour map of one stream; ``weights`` of shape ``MAP_SHAPE`` or None (the model has none)."""

    def __init__(self, weights=None):
        if weights is not None and np.size(weights) != np.prod(MAP_SHAPE):
            raise ValueError(f"reference_palette weights have {np.size(weights)} numbers, not "
                             f"{int(np.prod(MAP_SHAPE))}: refit them with `main.py train palette`")
        self.weights = None if weights is None else np.asarray(weights, np.float64).reshape(MAP_SHAPE)
        self._reference: np.ndarray | None = None
        self._stats: np.ndarray | None = None

    def set_reference(self, image: np.ndarray | None) -> None:
        """The reference image of the style now in effect (None: a text style)."""
        self._reference = None if image is None else np.concatenate(lab_stats(image, square=True))
        self.reset()

    def reset(self) -> None:
        self._stats = None

    @property
    def active(self) -> bool:
        return self.weights is not None and self._reference is not None

    def features(self, frame: np.ndarray, small: np.ndarray | None = None) -> np.ndarray:
        """Take ``frame`` (``small``: its base's small frame) into the running statistics; the features the
        map of this frame is made from."""
        stats = np.concatenate(lab_stats(_small(frame) if small is None else small))
        self._stats = stats if self._stats is None else self._stats + RUNNING * (stats - self._stats)
        return np.concatenate([self._stats / 255.0, self._reference / 255.0, [1.0]])

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        if not self.active:
            return frame
        small = _small(frame)
        return apply_map(frame, colour_map(self.features(frame, small), self.weights), small)
