"""Deterministic non-photorealistic filters: the ground truth of the built-in styles.

Why filters: every training pair then has an exact target, so fidelity and temporal stability of
the model can be measured instead of eyeballed (see DESIGN.md, "Quality is measured").

Why they are temporally stable: each style is a pure function of one RGB frame. Every texture
(paper, film grain, hatching, halftone grids, glass cells) is a fixed pattern made from a constant
seed and anchored to image coordinates, so a still scene gives bit-identical frames and nothing
flickers by itself. Spatial sizes scale with the frame's short side (reference 192 px), so a style
looks alike at 192x320 and at 1080p; heavy smoothing runs on a frame capped at a work resolution.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import math
from dataclasses import dataclass, field
from typing import Callable

import cv2
import numpy as np

REF_SHORT_SIDE = 192  # the training resolution's short side; sizes below are in pixels at it
WORK_SHORT_SIDE = 288  # edge-preserving smoothing never runs on more than this short side
_TILE = 256  # period in pixels (at reference scale) of every noise texture


# ----------------------------------------------------------------------------- helpers
_SCALE = contextvars.ContextVar("style_scale", default=None)


def _scale(img: np.ndarray) -> float:
    forced = _SCALE.get()
    return forced if forced is not None else round(min(img.shape[:2]) / REF_SHORT_SIDE, 3)


@contextlib.contextmanager
def style_scale(scale: float):
    """Render every filter as if the frame had a short side of ``scale * 192``.

    Why: a target rendered once from a still photograph (then moved with the camera) must have the
    strokes, dots and grain of a frame the size of the clip, not of the photograph."""
    token = _SCALE.set(round(float(scale), 3))
    try:
        yield
    finally:
        _SCALE.reset(token)


def _odd(x: float) -> int:
    k = max(1, int(round(x)))
    return k if k % 2 else k + 1


def _f32(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) * np.float32(1 / 255)


def _u8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def _luma(x: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    return x if sigma < 0.3 else cv2.GaussianBlur(x, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


def _wide_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """A large Gaussian blur done at reduced resolution (glows, blooms): same look, far cheaper."""
    f = int(sigma // 3)
    if f < 2:
        return _blur(x, sigma)
    h, w = x.shape[:2]
    small = cv2.resize(x, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
    return cv2.resize(_blur(small, sigma / f), (w, h), interpolation=cv2.INTER_LINEAR)


def _ss(x: np.ndarray, a: float, b: float) -> np.ndarray:
    """Smoothstep: soft thresholds avoid the aliasing that makes hard thresholds shimmer."""
    t = np.clip((x - a) * np.float32(1 / (b - a)), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _work(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    f = WORK_SHORT_SIDE / min(h, w)
    if f >= 1:
        return rgb
    return cv2.resize(rgb, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)


def _back(x: np.ndarray, h: int, w: int) -> np.ndarray:
    return x if x.shape[:2] == (h, w) else cv2.resize(x, (w, h), interpolation=cv2.INTER_LINEAR)


def _smooth(rgb: np.ndarray, passes: int = 2, sigma_color: float = 35) -> np.ndarray:
    """Edge-preserving smoothing (bilateral) at work resolution, returned at full size."""
    h, w = rgb.shape[:2]
    x = _work(rgb)
    sw = min(x.shape[:2]) / REF_SHORT_SIDE
    d = min(9, _odd(5 * sw))
    for _ in range(passes):
        x = cv2.bilateralFilter(x, d, sigma_color, 3 * sw + 0.5)
    return _back(x, h, w)


def _dog_lines(g: np.ndarray, s: float, sigma: float = 1.0, lo: float = 0.008, hi: float = 0.03):
    """Ink lines on the dark side of edges (difference of Gaussians), soft in [0, 1]."""
    a = _blur(g, sigma * s)
    b = _blur(g, 1.6 * sigma * s)
    return _ss(b - a, lo, hi)


@functools.lru_cache(maxsize=None)
def _noise_tile(seed: int, sigma: float, aniso: float = 1.0, angle: float = 0.0) -> np.ndarray:
    """A periodic Gaussian-filtered noise tile (zero mean, unit std), filtered in Fourier space
    so it tiles without seams; ``aniso`` stretches it along ``angle`` (brush strokes)."""
    rng = np.random.default_rng(seed)
    white = rng.standard_normal((_TILE, _TILE))
    fy = np.fft.fftfreq(_TILE)[:, None]
    fx = np.fft.fftfreq(_TILE)[None, :]
    u = fx * math.cos(angle) + fy * math.sin(angle)
    v = -fx * math.sin(angle) + fy * math.cos(angle)
    gain = np.exp(-2 * math.pi**2 * ((u * sigma * aniso) ** 2 + (v * sigma) ** 2))
    t = np.real(np.fft.ifft2(np.fft.fft2(white) * gain))
    return ((t - t.mean()) / (t.std() + 1e-8)).astype(np.float32)


@functools.lru_cache(maxsize=64)
def _texture(h: int, w: int, s: float, seed: int, sigma: float, aniso: float = 1.0, angle: float = 0.0):
    """The noise tile scaled by ``s`` and repeated from the top-left corner (anchored)."""
    tile = _noise_tile(seed, sigma, aniso, angle)
    n = max(8, int(round(_TILE * s)))
    if n != _TILE:
        tile = cv2.resize(tile, (n, n), interpolation=cv2.INTER_LINEAR)
    out = np.ascontiguousarray(np.tile(tile, (-(-h // n), -(-w // n)))[:h, :w])
    out.flags.writeable = False
    return out


@functools.lru_cache(maxsize=32)
def _coords(h: int, w: int):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return yy, xx


@functools.lru_cache(maxsize=32)
def _radius(h: int, w: int) -> np.ndarray:
    """Distance from the centre, 1.0 at the corners."""
    yy, xx = _coords(h, w)
    r = np.sqrt(((yy - (h - 1) / 2) / (h / 2)) ** 2 + ((xx - (w - 1) / 2) / (w / 2)) ** 2) / math.sqrt(2)
    return r.astype(np.float32)


def _ramp(stops, n: int = 256) -> np.ndarray:
    """A colour ramp LUT (n x 3 float32) through (position, (r, g, b)) stops."""
    pos = np.array([p for p, _ in stops], np.float32)
    col = np.array([c for _, c in stops], np.float32)
    t = np.linspace(0, 1, n, dtype=np.float32)
    return np.stack([np.interp(t, pos, col[:, k]) for k in range(3)], -1).astype(np.float32)


def _apply_ramp(v: np.ndarray, lut: np.ndarray) -> np.ndarray:
    return lut[(np.clip(v, 0, 1) * (len(lut) - 1) + 0.5).astype(np.int32)]


def _saturate(x: np.ndarray, sat: float, val: float = 1.0) -> np.ndarray:
    hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV)  # float32: H in degrees, S and V in [0, 1]
    hsv[..., 1] = np.clip(hsv[..., 1] * sat, 0, 1)
    hsv[..., 2] = np.clip(hsv[..., 2] * val, 0, 1)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


# ----------------------------------------------------------------------------- filters
def ink_wash(rgb: np.ndarray) -> np.ndarray:
    """Sumi-e: three soft ink washes that bleed, dark brush lines, granulating ink, rice paper."""
    h, w = rgb.shape[:2]
    s = _scale(rgb)
    g = _luma(_f32(rgb))
    g = np.clip(g + 0.8 * (g - _wide_blur(g, 10 * s)), 0, 1)  # local contrast: washes follow forms
    d = 1 - _blur(g, 1.2 * s)
    wash = 0.18 * _ss(d, 0.27, 0.35) + 0.26 * _ss(d, 0.47, 0.55) + 0.4 * _ss(d, 0.68, 0.76)
    wash = _blur(wash, 1.6 * s)
    fiber = _texture(h, w, s, 11, 5.0)
    grain = _texture(h, w, s, 12, 0.8)
    wash = wash * (0.85 + 0.08 * fiber + 0.07 * grain)
    lines = 0.9 * _dog_lines(_blur(g, 0.8 * s), s, 1.2, 0.015, 0.05)
    ink = (1 - (1 - wash) * (1 - lines))[..., None]
    paper = np.array([0.95, 0.92, 0.84], np.float32) * (1 + 0.025 * fiber[..., None])
    return _u8(paper * (1 - ink) + np.array([0.07, 0.07, 0.09], np.float32) * ink)


def pencil_sketch(rgb: np.ndarray) -> np.ndarray:
    """Graphite: colour-dodge outlines plus diagonal hatching whose density follows the tone."""
    h, w = rgb.shape[:2]
    s = _scale(rgb)
    g = _blur(_luma(_f32(rgb)), 0.6 * s)
    outline = np.clip(g / (_blur(g, 3 * s) + 1e-3), 0, 1) ** 4
    dark = np.clip(1.15 - 1.2 * _blur(g, 2 * s), 0, 1)
    yy, xx = _coords(h, w)
    wobble = _texture(h, w, s, 21, 3.0) * 0.25
    period = 4.5 * s
    tri1 = np.abs(((xx + yy) / period + wobble) % 1.0 - 0.5) * 2
    tri2 = np.abs(((xx - yy) / period + wobble) % 1.0 - 0.5) * 2
    hatch1 = _ss(np.clip(dark * 0.9 - 0.1, 0, 0.7) - tri1, -0.05, 0.15)
    hatch2 = _ss(np.clip(dark * 0.9 - 0.5, 0, 0.5) - tri2, -0.05, 0.15)
    grain = 0.75 + 0.25 * np.clip(_texture(h, w, s, 22, 0.7), -1, 1)
    v = outline * (1 - 0.5 * hatch1 * grain) * (1 - 0.5 * hatch2 * grain)
    v = v[..., None]
    paper = np.array([0.97, 0.965, 0.95], np.float32)
    return _u8(paper * v + np.array([0.2, 0.21, 0.24], np.float32) * (1 - v))


def watercolor(rgb: np.ndarray) -> np.ndarray:
    """Soft pigment blobs with darkened wet edges, bleeding, uneven flow and paper granulation."""
    h, w = rgb.shape[:2]
    s = _scale(rgb)
    x = _work(rgb)
    x = cv2.resize(x, (max(1, x.shape[1] // 2), max(1, x.shape[0] // 2)), interpolation=cv2.INTER_AREA)
    x = cv2.bilateralFilter(x, 5, 45, 3)
    x = cv2.medianBlur(cv2.bilateralFilter(x, 5, 45, 3), 3)
    c = _f32(_back(x, h, w))
    yy, xx = _coords(h, w)
    dx = _texture(h, w, s, 31, 6.0) * 1.6 * s
    dy = _texture(h, w, s, 32, 6.0) * 1.6 * s
    c = cv2.remap(c, xx + dx, yy + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    density = (1 - c) * 0.72
    lum = _luma(c)
    gx = cv2.Sobel(lum, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(lum, cv2.CV_32F, 0, 1, ksize=3)
    edge = _ss(np.sqrt(gx * gx + gy * gy), 0.05, 0.4)
    flow = 1 + 0.15 * _texture(h, w, s, 33, 10.0) + 0.06 * _texture(h, w, s, 34, 1.2)
    density = density * (flow * (1 + 0.45 * edge))[..., None]
    paper = 1 - 0.02 * np.clip(_texture(h, w, s, 35, 1.5), -2, 2)
    return _u8((1 - density) * paper[..., None])


def _kuwahara(x: np.ndarray, r: int) -> np.ndarray:
    """Kuwahara filter: each pixel takes the mean colour of its least varying (r+1)^2 quadrant.
    One box filter on a padded frame, read at four offsets, gives all four quadrants."""
    h, w = x.shape[:2]
    k, pad = (r + 1, r + 1), (r, r, r, r, cv2.BORDER_REFLECT)
    mc = cv2.boxFilter(cv2.copyMakeBorder(x, *pad), -1, k, anchor=(0, 0))
    lum = _luma(x)
    ml = cv2.boxFilter(cv2.copyMakeBorder(lum, *pad), -1, k, anchor=(0, 0))
    ml2 = cv2.boxFilter(cv2.copyMakeBorder(lum * lum, *pad), -1, k, anchor=(0, 0))
    best_v = best_c = None
    for oy in (0, r):
        for ox in (0, r):
            v = ml2[oy:oy + h, ox:ox + w] - ml[oy:oy + h, ox:ox + w] ** 2
            c = mc[oy:oy + h, ox:ox + w]
            if best_v is None:
                best_v, best_c = v, c.copy()
            else:
                better = (v < best_v).view(np.uint8)
                best_v = np.minimum(v, best_v)
                cv2.copyTo(c, better, best_c)
    return best_c


def oil_paint(rgb: np.ndarray) -> np.ndarray:
    """Impressionist oil: Kuwahara paint patches, rich colour, lit impasto brush strokes, canvas."""
    h, w = rgb.shape[:2]
    s = _scale(rgb)
    x = _f32(_work(rgb))
    sw = min(x.shape[:2]) / REF_SHORT_SIDE
    x = _kuwahara(x, max(2, int(round(3.5 * sw))))
    x = _saturate(_back(x, h, w), 1.45, 1.05)
    strokes = _texture(h, w, s, 41, 1.0, aniso=5.0, angle=0.7)
    bump = 0.35 * strokes + 6.0 * _blur(_luma(x), 0.7 * s)
    shade = (cv2.Sobel(bump, cv2.CV_32F, 1, 0, ksize=3) + cv2.Sobel(bump, cv2.CV_32F, 0, 1, ksize=3)) / s
    yy, xx = _coords(h, w)
    canvas = np.sin(xx * (2.1 / s)) * np.sin(yy * (2.1 / s)) * 0.03
    light = (1 - 0.12 * np.tanh(shade) + canvas)[..., None]
    x = 0.04 + 0.92 * x
    return _u8(x * light + 0.06 * np.clip(-np.tanh(shade), 0, 1)[..., None])


def cartoon(rgb: np.ndarray) -> np.ndarray:
    """Cel shading: flattened colours, banded lightness, saturated hues and bold black outlines."""
    h, w = rgb.shape[:2]
    s = _scale(rgb)
    x = _f32(_smooth(rgb, passes=2, sigma_color=40))
    lines = _dog_lines(_luma(x), s, 1.3, 0.01, 0.025)
    lab = cv2.cvtColor(x, cv2.COLOR_RGB2Lab)
    v = lab[..., 0] / 20.0
    lab[..., 0] = np.clip((np.floor(v) + _ss(v - np.floor(v), 0.42, 0.58)) * 20.0 + 6.0, 0, 100)
    lab[..., 1:] *= 1.35
    x = np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB), 0, 1)
    return _u8(x * (1 - lines)[..., None] + 0.05 * lines[..., None])


_PICO8 = np.array([[0x00, 0x00, 0x00], [0x1D, 0x2B, 0x53], [0x7E, 0x25, 0x53], [0x00, 0x87, 0x51],
                   [0xAB, 0x52, 0x36], [0x5F, 0x57, 0x4F], [0xC2, 0xC3, 0xC7], [0xFF, 0xF1, 0xE8],
                   [0xFF, 0x00, 0x4D], [0xFF, 0xA3, 0x00], [0xFF, 0xEC, 0x27], [0x00, 0xE4, 0x36],
                   [0x29, 0xAD, 0xFF], [0x83, 0x76, 0x9C], [0xFF, 0x77, 0xA8], [0xFF, 0xCC, 0xAA]], np.uint8)


@functools.lru_cache(maxsize=None)
def _palette_lut() -> np.ndarray:
    """32^3 RGB bins -> nearest PICO-8 colour in Lab space (computed once)."""
    c = (np.arange(32, dtype=np.uint8) * 8 + 4)
    grid = np.stack(np.meshgrid(c, c, c, indexing="ij"), -1).reshape(-1, 1, 3)
    lab = cv2.cvtColor(_f32(grid), cv2.COLOR_RGB2Lab).reshape(-1, 1, 3)
    pal = cv2.cvtColor(_f32(_PICO8[:, None]), cv2.COLOR_RGB2Lab).reshape(1, -1, 3)
    return _PICO8[np.argmin(((lab - pal) ** 2).sum(-1), 1)].reshape(32, 32, 32, 3)


def pixel_art(rgb: np.ndarray) -> np.ndarray:
    """8-bit pixel art: big square pixels on a fixed grid, snapped to the PICO-8 palette."""
    h, w = rgb.shape[:2]
    b = max(2, int(round(5 * _scale(rgb))))
    gh, gw = -(-h // b), -(-w // b)
    x = cv2.copyMakeBorder(rgb, 0, gh * b - h, 0, gw * b - w, cv2.BORDER_REPLICATE)
    small = _f32(cv2.resize(x, (gw, gh), interpolation=cv2.INTER_AREA))
    small = _u8(_saturate(np.clip((small - 0.5) * 1.15 + 0.5, 0, 1), 1.3))
    q = _palette_lut()[small[..., 0] >> 3, small[..., 1] >> 3, small[..., 2] >> 3]
    return np.ascontiguousarray(np.repeat(np.repeat(q, b, 0), b, 1)[:h, :w])


_NEON = _ramp([(0.0, (0.0, 1.0, 1.0)), (0.25, (0.3, 0.3, 1.0)), (0.5, (1.0, 0.1, 0.9)),
               (0.75, (1.0, 0.2, 0.4)), (1.0, (0.0, 1.0, 1.0))])


def neon_edges(rgb: np.ndarray) -> np.ndarray:
    """Glowing neon tubes along the edges on a near-black scene; hue follows edge direction."""
    s = _scale(rgb)
    x = _f32(rgb)
    g = _blur(_luma(x), 1.2 * s)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    e = _ss(np.sqrt(gx * gx + gy * gy) * s, 0.1, 0.4)
    hue = (np.arctan2(gy, gx) % math.pi) / math.pi
    core = _apply_ramp(hue, _NEON) * e[..., None]
    glow = 1.4 * _blur(core, 2.5 * s) + 1.2 * _wide_blur(core, 7 * s)
    hot = (0.6 * e * e)[..., None]
    return _u8(0.07 * x + core + glow + hot)


_IRONBOW = _ramp([(0.0, (0.0, 0.0, 0.06)), (0.18, (0.15, 0.0, 0.45)), (0.38, (0.6, 0.0, 0.58)),
                  (0.56, (0.92, 0.2, 0.2)), (0.72, (1.0, 0.55, 0.0)), (0.88, (1.0, 0.86, 0.2)),
                  (1.0, (1.0, 1.0, 0.92))])


def thermal(rgb: np.ndarray) -> np.ndarray:
    """Thermal camera: a blurry heat estimate from brightness and warm hues, ironbow palette."""
    s = _scale(rgb)
    x = _f32(rgb)
    heat = 0.6 * _luma(x) + 0.3 * x[..., 0] + 0.1 * np.clip(x[..., 0] - x[..., 2], 0, 1)
    heat = np.clip((_blur(heat, 2.0 * s) - 0.06) / 0.86, 0, 1)
    return _u8(_apply_ramp(heat, _IRONBOW))


_POP = np.array([[0.12, 0.04, 0.32], [1.0, 0.12, 0.55], [0.0, 0.78, 0.92], [1.0, 0.93, 0.1]], np.float32)


def pop_art(rgb: np.ndarray) -> np.ndarray:
    """Warhol screen print: four flat fluorescent colours by lightness band, heavy outlines."""
    s = _scale(rgb)
    g = _luma(_f32(_smooth(rgb, passes=1, sigma_color=30)))
    lines = _dog_lines(g, s, 1.4, 0.012, 0.03)[..., None]
    g = _blur(g, 0.8 * s)
    p = _POP
    x = p[0] + _ss(g, 0.27, 0.31)[..., None] * (p[1] - p[0])
    x = x + _ss(g, 0.47, 0.51)[..., None] * (p[2] - p[1]) + _ss(g, 0.67, 0.71)[..., None] * (p[3] - p[2])
    return _u8(x * (1 - lines) + 0.02 * lines)


@functools.lru_cache(maxsize=16)
def _film_defects(h: int, w: int, s: float) -> np.ndarray:
    """Fixed scratches and dust: a darkening mask, the same on every frame."""
    rng = np.random.default_rng(51)
    mask = np.zeros((h, w), np.float32)
    for fx in rng.uniform(0.05, 0.95, 3):
        x0 = int(fx * w)
        mask[:, x0:x0 + max(1, int(round(s * 0.8)))] = rng.uniform(0.08, 0.16)
    dust = _texture(h, w, s, 52, 1.2)
    mask += 0.5 * _ss(dust, 2.6, 3.2)
    return mask


def vintage_film(rgb: np.ndarray) -> np.ndarray:
    """Old film print: faded sepia grade, soft focus, vignette, fixed grain, scratches and dust."""
    h, w = rgb.shape[:2]
    s = _scale(rgb)
    x = _blur(_f32(rgb), 0.8 * s)
    x = _ss(x, -0.1, 1.1)  # a print's S-curve: more contrast before the fade
    lum = _luma(x)[..., None]
    x = lum + 0.3 * (x - lum)
    x = 0.55 * x + 0.45 * lum * np.array([1.12, 0.95, 0.72], np.float32)
    x = 0.1 + 0.8 * x + (0.05 * (1 - lum)) * np.array([0.6, 0.3, 0.0], np.float32)
    vign = 1 - 0.55 * _radius(h, w) ** 2.2
    grain = 1 + 0.07 * np.clip(_texture(h, w, s, 53, 0.7), -2.5, 2.5)
    dark = 1 - _film_defects(h, w, s)
    return _u8(x * (vign * grain * dark)[..., None])


@functools.lru_cache(maxsize=16)
def _dot_screens(h: int, w: int, s: float) -> np.ndarray:
    """Four halftone threshold maps (C, M, Y, K) on grids rotated 15, 75, 0 and 45 degrees."""
    yy, xx = _coords(h, w)
    f = 2 * math.pi / (5.0 * s)
    out = []
    for deg in (15, 75, 0, 45):
        a = math.radians(deg)
        u = (xx * math.cos(a) + yy * math.sin(a)) * f
        v = (-xx * math.sin(a) + yy * math.cos(a)) * f
        out.append(0.5 + 0.25 * (np.cos(u) + np.cos(v)))
    return np.stack(out, -1).astype(np.float32)


def comic_halftone(rgb: np.ndarray) -> np.ndarray:
    """Comic book print: flat inks as rotated CMYK Ben-Day dots on newsprint, inked outlines."""
    h, w = rgb.shape[:2]
    s = _scale(rgb)
    sm = _f32(_smooth(rgb, passes=1, sigma_color=30))
    lines = _dog_lines(_luma(sm), s, 1.2, 0.01, 0.03)[..., None]
    x = _saturate(sm, 1.4)
    x = np.round(x * 3) / 3 * 0.6 + x * 0.4
    cmy = 1 - x
    grey = cmy.min(-1, keepdims=True)
    ink = np.dstack([cmy - 0.6 * grey, np.clip(grey * 1.4 - 0.35, 0, 1)])
    dots = np.clip((ink - (1 - _dot_screens(h, w, s))) / 0.12 + 0.5, 0, 1)
    paper = np.array([1.0, 0.97, 0.88], np.float32)
    out = paper * (1 - 0.92 * dots[..., :3]) * (1 - 0.9 * dots[..., 3:])
    return _u8(out * (1 - lines) + 0.05 * lines)


@functools.lru_cache(maxsize=16)
def _grid(h: int, w: int, s: float) -> np.ndarray:
    yy, xx = _coords(h, w)
    minor = ((xx % (12 * s) < 1) | (yy % (12 * s) < 1)).astype(np.float32)
    major = ((xx % (48 * s) < 1.5) | (yy % (48 * s) < 1.5)).astype(np.float32)
    return 0.13 * minor + 0.22 * major


def blueprint(rgb: np.ndarray) -> np.ndarray:
    """Architect's blueprint: white technical lines on Prussian blue with a drafting grid."""
    h, w = rgb.shape[:2]
    s = _scale(rgb)
    g = _luma(_f32(rgb))
    gb = _blur(g, 1.2 * s)
    gx = cv2.Sobel(gb, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gb, cv2.CV_32F, 0, 1, ksize=3)
    e = _ss(np.sqrt(gx * gx + gy * gy) * s, 0.06, 0.3)
    shade = 0.1 * (1 - _blur(g, 3 * s))
    a = np.clip(0.95 * e + _grid(h, w, s) + shade, 0, 1)
    mottle = 1 + 0.05 * _texture(h, w, s, 61, 8.0)
    bg = np.array([0.07, 0.24, 0.52], np.float32) * mottle[..., None]
    return _u8(bg * (1 - a[..., None]) + np.array([0.9, 0.95, 1.0], np.float32) * a[..., None])


@functools.lru_cache(maxsize=8)
def _glass_cells(h: int, w: int, s: float):
    """Fixed Voronoi cells (jittered grid anchored at the top-left): labels and lead lines."""
    c = 14.0 * s
    jit = np.random.default_rng(71).uniform(0.1, 0.9, (64, 64, 2)).astype(np.float32)
    yy, xx = _coords(h, w)
    ci, cj = (yy // c).astype(np.int32), (xx // c).astype(np.int32)
    best = np.full((h, w), np.inf, np.float32)
    label = np.zeros((h, w), np.int64)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            i, j = ci + di, cj + dj
            sy = (i + jit[i % 64, j % 64, 0]) * c
            sx = (j + jit[i % 64, j % 64, 1]) * c
            d = (yy - sy) ** 2 + (xx - sx) ** 2
            closer = d < best
            best[closer] = d[closer]
            label[closer] = ((i + 2) * 100003 + (j + 2))[closer]
    _, label = np.unique(label, return_inverse=True)
    label = label.reshape(h, w).astype(np.int32)
    edge = np.zeros((h, w), np.uint8)
    edge[:, 1:] |= (label[:, 1:] != label[:, :-1]).astype(np.uint8)
    edge[1:, :] |= (label[1:, :] != label[:-1, :]).astype(np.uint8)
    lead = _blur(cv2.dilate(edge, np.ones((2, 2), np.uint8), iterations=max(1, round(s))).astype(np.float32), 0.5 * s)
    counts = np.bincount(label.ravel()).astype(np.float32)
    return label, counts, np.clip(lead, 0, 1)


def stained_glass(rgb: np.ndarray) -> np.ndarray:
    """Stained glass: fixed irregular panes, each filled with its mean colour made luminous,
    separated by dark lead cames."""
    h, w = rgb.shape[:2]
    s = _scale(rgb)
    label, counts, lead = _glass_cells(h, w, s)
    flat = label.ravel()
    x = _f32(rgb).reshape(-1, 3)
    means = np.stack([np.bincount(flat, x[:, k], len(counts)) for k in range(3)], -1) / counts[:, None]
    means = _saturate(means[:, None].astype(np.float32), 1.6, 1.2)[:, 0]
    pane = means[label]
    glass = 0.9 + 0.12 * _texture(h, w, s, 72, 2.5)[..., None]
    out = pane * glass * (1 - lead[..., None]) + 0.1 * lead[..., None]
    return _u8(out)


@functools.lru_cache(maxsize=16)
def _scope(h: int, w: int, s: float) -> np.ndarray:
    yy, _ = _coords(h, w)
    scan = 1 - 0.18 * np.sin(yy * (math.pi / (1.5 * s))) ** 2
    tube = 1 - _ss(_radius(h, w), 0.55, 1.0)
    return (scan * (0.15 + 0.85 * tube)).astype(np.float32)


def night_vision(rgb: np.ndarray) -> np.ndarray:
    """Image-intensifier goggles: amplified green phosphor, bloom, fixed sensor noise, scanlines."""
    h, w = rgb.shape[:2]
    s = _scale(rgb)
    g = _blur(_luma(_f32(rgb)), 0.8 * s)
    v = np.clip(g * 1.5 + 0.04, 0, 1) ** 0.8
    v = v + 0.5 * _wide_blur(np.clip(v - 0.75, 0, 1), 4 * s) + 0.07 * np.clip(_texture(h, w, s, 81, 0.6), -2.5, 2.5)
    v = np.clip(v * _scope(h, w, s), 0, 1)
    return _u8(np.dstack([0.55 * v * v, v, 0.35 * v * v]))


# ----------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class Style:
    """A built-in style: an id, a title, prompts that name it, and its exact ground-truth filter."""

    name: str
    title: str
    prompts: tuple[str, ...]
    held_out_prompts: tuple[str, ...]
    fn: Callable[[np.ndarray], np.ndarray] = field(repr=False, compare=False)

    def apply(self, frame_rgb: np.ndarray) -> np.ndarray:
        """uint8 HxWx3 RGB in -> uint8 HxWx3 RGB out, same size; a pure function of the frame."""
        if not isinstance(frame_rgb, np.ndarray) or frame_rgb.dtype != np.uint8 \
                or frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3:
            raise ValueError(f"style {self.name!r} needs a uint8 HxWx3 RGB array, got "
                             f"{getattr(frame_rgb, 'dtype', type(frame_rgb))} {getattr(frame_rgb, 'shape', '')}")
        if min(frame_rgb.shape[:2]) < 8:
            raise ValueError(f"style {self.name!r} needs frames of at least 8x8, got {frame_rgb.shape[:2]}")
        return self.fn(np.ascontiguousarray(frame_rgb))


def _style(fn, title, prompts, held_out) -> Style:
    return Style(fn.__name__, title, tuple(prompts), tuple(held_out), fn)


STYLES: dict[str, Style] = {st.name: st for st in (
    _style(ink_wash, "Ink wash", [
        "ink wash painting", "make it look like a Chinese ink wash painting",
        "turn this into a sumi-e brush painting", "an ink wash painting of the scene",
        "black ink on rice paper", "monochrome East Asian brush and ink art",
        "paint the video with diluted black ink washes"],
        ["a traditional Japanese sumi-e artwork", "render it in Chinese brush ink",
         "the scene as a monochrome ink and wash drawing"]),
    _style(pencil_sketch, "Pencil sketch", [
        "pencil sketch", "make it look like a pencil drawing", "turn this into a graphite sketch",
        "a hand-drawn pencil sketch of the scene", "cross-hatched graphite drawing on white paper",
        "draw the video with a pencil", "black and white sketchbook drawing"],
        ["a detailed graphite illustration", "render it as a hatched pencil study",
         "the scene sketched in pencil on paper"]),
    _style(watercolor, "Watercolor", [
        "watercolor painting", "make it look like a watercolor painting",
        "turn this into a soft watercolour", "a watercolor painting of the scene",
        "translucent washes of watercolor on textured paper", "paint it with wet watercolors",
        "delicate aquarelle with bleeding colors"],
        ["a loose watercolour illustration", "render the video as an aquarelle",
         "the scene in soft wet-on-wet watercolor"]),
    _style(oil_paint, "Oil painting", [
        "oil painting", "make it look like an impressionist oil painting",
        "turn this into a thick impasto painting", "an oil painting of the scene on canvas",
        "impressionist brush strokes with rich colors", "paint it in oils like Monet",
        "painterly style with visible brushwork"],
        ["a Van Gogh style oil on canvas", "render the video as an impressionist painting",
         "the scene painted with heavy oil paint"]),
    _style(cartoon, "Cartoon", [
        "cartoon", "make it look like a cartoon", "turn this into cel-shaded animation",
        "a cartoon drawing of the scene with bold outlines", "flat colors and thick black outlines",
        "anime cel shading", "animated TV show style"],
        ["a comic strip cartoon look", "render the video as a cel-shaded cartoon",
         "the scene as hand-inked animation"]),
    _style(pixel_art, "Pixel art", [
        "pixel art", "make it look like 8-bit pixel art", "turn this into a retro video game",
        "a pixel art version of the scene", "chunky pixels with a limited retro palette",
        "16-color PICO-8 style", "low resolution game graphics"],
        ["an old-school arcade game look", "render the video as 8-bit sprites",
         "the scene in blocky retro pixels"]),
    _style(neon_edges, "Neon edges", [
        "neon edges", "make it look like glowing neon lines", "turn this into a neon sign",
        "a neon outline drawing of the scene in the dark", "glowing cyan and magenta outlines on black",
        "synthwave neon glow", "electric light tubes tracing the edges"],
        ["a cyberpunk neon wireframe", "render the video as glowing neon contours",
         "the scene drawn with luminous neon tubes"]),
    _style(thermal, "Thermal camera", [
        "thermal camera", "make it look like a thermal image", "turn this into infrared heat vision",
        "a thermal camera view of the scene", "heat map colors from purple to yellow",
        "FLIR thermography", "ironbow infrared palette"],
        ["a predator heat vision look", "render the video as thermographic imaging",
         "the scene seen through an infrared camera"]),
    _style(pop_art, "Pop art", [
        "pop art", "make it look like Andy Warhol pop art", "turn this into a silkscreen print",
        "a pop art poster of the scene", "four flat fluorescent colors with bold outlines",
        "posterized pink yellow and cyan", "1960s screen print style"],
        ["a Warhol style portrait print", "render the video as a posterized pop poster",
         "the scene in loud flat pop colors"]),
    _style(vintage_film, "Vintage film", [
        "vintage film", "make it look like old film footage", "turn this into a faded sepia movie",
        "an old film photograph of the scene", "grainy scratched film with vignette",
        "1920s silent movie look", "faded retro film stock"],
        ["an antique home movie reel", "render the video as aged celluloid",
         "the scene as a worn sepia film print"]),
    _style(comic_halftone, "Comic halftone", [
        "comic halftone", "make it look like a printed comic book", "turn this into Ben-Day dots",
        "a comic book panel of the scene", "halftone dots with inked outlines on newsprint",
        "Roy Lichtenstein style dots", "vintage comic print with CMYK dots"],
        ["an old newspaper comic strip print", "render the video as halftone comic art",
         "the scene printed in dotted comic ink"]),
    _style(blueprint, "Blueprint", [
        "blueprint", "make it look like a blueprint", "turn this into an architectural drawing",
        "a blueprint of the scene", "white technical lines on blue paper with a grid",
        "engineering cyanotype drawing", "draftsman's plan on blue paper"],
        ["a technical schematic on blueprint paper", "render the video as an architect's plan",
         "the scene drafted in white on blue"]),
    _style(stained_glass, "Stained glass", [
        "stained glass", "make it look like a stained glass window", "turn this into a glass mosaic",
        "a stained glass window of the scene", "luminous colored glass panes with lead lines",
        "cathedral window art", "mosaic of glowing glass pieces"],
        ["a church window of colored glass", "render the video as leaded glass",
         "the scene assembled from stained glass tiles"]),
    _style(night_vision, "Night vision", [
        "night vision", "make it look like night vision goggles", "turn this into green night vision",
        "a night vision view of the scene", "green phosphor image intensifier with scanlines",
        "military night vision camera", "NVG green glow"],
        ["a surveillance night scope view", "render the video through night vision goggles",
         "the scene in glowing green low-light vision"]),
)}


def get_style(name: str) -> Style:
    """Look a style up by id; the error lists every valid id."""
    try:
        return STYLES[name]
    except KeyError:
        raise KeyError(f"unknown style {name!r}; valid styles: {', '.join(STYLES)}") from None
