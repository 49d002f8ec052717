"""Quality measures against the ground-truth filters: PSNR, SSIM and flow-warped flicker."""
from __future__ import annotations

import cv2
import numpy as np


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-10)))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM over the three channels (Gaussian window, sigma 1.5, the usual constants)."""
    x, y = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = lambda t: cv2.GaussianBlur(t, (11, 11), 1.5)  # noqa: E731
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(s.mean())


def flow_between(prev_rgb: np.ndarray, next_rgb: np.ndarray) -> np.ndarray:
    """Dense flow from ``next`` back to ``prev`` (Farneback on the source frames)."""
    p = cv2.cvtColor(prev_rgb, cv2.COLOR_RGB2GRAY)
    n = cv2.cvtColor(next_rgb, cv2.COLOR_RGB2GRAY)
    return cv2.calcOpticalFlowFarneback(n, p, None, 0.5, 3, 15, 3, 5, 1.2, 0)


def warped_difference(prev_out: np.ndarray, next_out: np.ndarray, flow: np.ndarray) -> float:
    """Mean |next - warp(prev)| over pixels whose flow stays inside the frame (0..255 scale)."""
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx, my = gx + flow[..., 0], gy + flow[..., 1]
    warped = cv2.remap(prev_out, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    valid = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
    diff = np.abs(next_out.astype(np.float32) - warped.astype(np.float32)).mean(axis=2)
    return float(diff[valid].mean()) if valid.any() else 0.0


def flicker(frames: list[np.ndarray], flows: list[np.ndarray]) -> float:
    """Temporal instability of a sequence: mean flow-warped difference between consecutive frames."""
    vals = [warped_difference(frames[i - 1], frames[i], flows[i - 1]) for i in range(1, len(frames))]
    return float(np.mean(vals)) if vals else 0.0
