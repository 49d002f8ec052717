"""Synthetic camera motion: a still photograph and cut-outs made into a moving clip.

Why a plan separate from rendering: the same camera path and cut-out trajectories must move both the
source photograph and its stylized version, so a target rendered once from the still moves exactly
with the source and is stable in time by construction (a per-frame network is not). ``plan_clip``
draws every random number; ``render_clip`` only warps layers along the plan.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np


@dataclass(frozen=True)
class Motion:
    """Ranges of one motion level, in output pixels per frame at a 192-pixel short side."""

    pan: tuple[float, float]
    zoom: float  # max |d log zoom| per frame
    rot: float  # max degrees per frame
    shake: float  # handheld shake amplitude, pixels
    fg_speed: tuple[float, float]


MOTIONS = {"static": Motion((0, 0), 0, 0, 0, (0, 0)),
           "slow": Motion((0.3, 1.5), 0.004, 0.15, 0.6, (0.5, 2.0)),
           "fast": Motion((2.5, 7.0), 0.015, 0.8, 2.0, (3.0, 9.0))}
MOTION_P = (0.2, 0.45, 0.35)


def _rot(deg: float) -> np.ndarray:
    a = math.radians(deg)
    return np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])


def _shake(rng, frames: int, amp: float) -> np.ndarray:
    """Smooth handheld shake: two low-frequency sinusoids per axis, shape [frames, 2]."""
    t = np.arange(frames)[:, None]
    f = rng.uniform(0.02, 0.12, (2, 2))
    ph = rng.uniform(0, 2 * math.pi, (2, 2))
    return amp * (np.sin(2 * math.pi * f[0] * t + ph[0]) + 0.5 * np.sin(2 * math.pi * f[1] * t + ph[1]))


@dataclass
class CutoutPlan:
    """One cut-out: a crop box of its photograph, the patch size, its soft mask and its path."""

    box: tuple[int, int, int, int]  # y0, x0, height, width in the photograph
    size: tuple[int, int]  # patch height, width in output pixels
    mask: np.ndarray
    pos: np.ndarray  # [F, 2] centre
    rot: np.ndarray  # [F] degrees
    scl: np.ndarray  # [F] scale

    def patch(self, photo: np.ndarray) -> np.ndarray:
        y0, x0, ch, cw = self.box
        return cv2.resize(photo[y0:y0 + ch, x0:x0 + cw], (self.size[1], self.size[0]), interpolation=cv2.INTER_AREA)


@dataclass
class ClipPlan:
    """Everything random about a clip; apply it to any layer of the same geometry."""

    size: tuple[int, int]
    photo_size: tuple[int, int]  # (h, w) the background photograph is resized to before warping
    matrices: np.ndarray  # [F, 2, 3] inverse maps, output pixel -> photo pixel
    cutouts: list[CutoutPlan] = field(default_factory=list)

    @property
    def frames(self) -> int:
        return len(self.matrices)

    @property
    def texture_scale(self) -> float:
        """The filter scale (short side / 192) at which a layer of this plan shows like a frame."""
        return min(self.size) / 192 * float(np.mean(np.hypot(self.matrices[:, 0, 0], self.matrices[:, 0, 1])))

    def background(self, photo: np.ndarray) -> np.ndarray:
        h, w = self.photo_size
        if photo.shape[:2] == (h, w):
            return photo
        return cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA)

    def patches(self, cutout_photos) -> list[np.ndarray]:
        return [c.patch(cutout_photos[k % len(cutout_photos)]) for k, c in enumerate(self.cutouts)]


def _plan_cutout(rng, photo_shape, h: int, w: int, s: float) -> tuple[tuple, tuple, np.ndarray]:
    """Crop box, patch size and soft elliptical or polygonal mask (float32, [0, 1]) of one cut-out."""
    ph = max(8, int(rng.uniform(0.3, 0.55) * h))
    pw = max(8, int(ph * rng.uniform(0.6, 1.6)))
    H, W = photo_shape[:2]
    f = rng.uniform(0.5, 1.0) * min(H / ph, W / pw)
    ch, cw = max(2, int(ph * f)), max(2, int(pw * f))
    y0, x0 = rng.integers(0, H - ch + 1), rng.integers(0, W - cw + 1)
    mask = np.zeros((ph, pw), np.float32)
    centre, axes = (pw / 2, ph / 2), (pw / 2 * 0.85, ph / 2 * 0.85)
    if rng.random() < 0.5:
        cv2.ellipse(mask, (round(centre[0]), round(centre[1])), (round(axes[0]), round(axes[1])),
                    0, 0, 360, 1.0, -1, cv2.LINE_AA)
    else:
        ang = np.sort(rng.uniform(0, 2 * math.pi, rng.integers(5, 9)))
        rad = rng.uniform(0.6, 1.0, len(ang))
        pts = np.stack([centre[0] + axes[0] * rad * np.cos(ang), centre[1] + axes[1] * rad * np.sin(ang)], -1)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1.0, cv2.LINE_AA)
    return (int(y0), int(x0), ch, cw), (ph, pw), cv2.GaussianBlur(mask, (0, 0), 1.5 * s)


def pick_n_cutouts(rng: np.random.Generator, motion: str) -> int:
    return int(rng.choice([0, 1]) if motion == "static" else rng.choice([0, 1, 2], p=[0.3, 0.5, 0.2]))


def plan_clip(rng: np.random.Generator, photo_shape, cutout_shapes=(), frames: int = 16, size=(192, 320),
              motion: str | Motion = "slow", n_cutouts: int | None = None) -> ClipPlan:
    """A smooth camera path over a photograph of ``photo_shape`` plus moving cut-outs (cut-out k from
    the photograph of ``cutout_shapes[k]``). All randomness comes from ``rng``."""
    H, W = size
    s = min(H, W) / 192
    m = MOTIONS[motion] if isinstance(motion, str) else motion
    t = np.arange(frames, dtype=np.float64)
    # camera: zoom (photo px per output px), rotation, centre; chosen so the view stays inside
    ang = rng.uniform(-3, 3) + rng.uniform(-m.rot, m.rot) * t
    amax = math.radians(np.abs(ang).max())
    ex, ey = W / 2 * math.cos(amax) + H / 2 * math.sin(amax), W / 2 * math.sin(amax) + H / 2 * math.cos(amax)
    ph, pw = photo_shape[:2]
    zfit = min(pw / (2 * ex), ph / (2 * ey))
    zoom = zfit * rng.uniform(0.45, 0.85) * np.exp(rng.uniform(-m.zoom, m.zoom) * (t - t.mean()))
    zoom = np.minimum(zoom, zfit * 0.97)
    zref = zoom.min()
    if zref > 1.2:  # shrink the photo first so the warp never minifies much (no aliasing)
        npw, nph = max(1, round(pw / zref)), max(1, round(ph / zref))
        zoom = zoom * npw / pw
        ph, pw = nph, npw
    zmax = zoom.max()
    shake = _shake(rng, frames, m.shake * s) * zmax
    margin = np.abs(shake).max(0) if frames else np.zeros(2)
    lo = np.array([zmax * ex + margin[0], zmax * ey + margin[1]])
    hi = np.array([pw - lo[0], ph - lo[1]])
    lo, hi = np.minimum(lo, (lo + hi) / 2), np.maximum(hi, (lo + hi) / 2)
    c0 = rng.uniform(lo, hi)
    d = rng.uniform(0, 2 * math.pi)
    travel = rng.uniform(*m.pan) * s * zmax * max(frames - 1, 1)
    c1 = np.clip(c0 + travel * np.array([math.cos(d), math.sin(d)]), lo, hi)
    ease = rng.uniform(0, 1)
    u = t / max(frames - 1, 1)
    u = (1 - ease) * u + ease * u * u * (3 - 2 * u)
    centre = c0 + (c1 - c0) * u[:, None] + shake
    half = np.array([W / 2, H / 2])
    mats = np.empty((frames, 2, 3))
    for i in range(frames):
        A = zoom[i] * _rot(ang[i])
        mats[i] = np.hstack([A, (centre[i] - A @ half)[:, None]])
    plan = ClipPlan((H, W), (ph, pw), mats)
    if n_cutouts is None:
        n_cutouts = pick_n_cutouts(rng, motion if isinstance(motion, str) else "slow")
    for k in range(n_cutouts if len(cutout_shapes) else 0):
        box, psize, mask = _plan_cutout(rng, cutout_shapes[k % len(cutout_shapes)], H, W, s)
        d = rng.uniform(0, 2 * math.pi)
        v = rng.uniform(*m.fg_speed) * s * np.array([math.cos(d), math.sin(d)])
        mid = rng.uniform([0.2 * W, 0.2 * H], [0.8 * W, 0.8 * H])
        wob = _shake(rng, frames, 0.5 * m.shake * s)
        pos = mid + v * (t - t.mean())[:, None] + wob
        rot = rng.uniform(-15, 15) + rng.uniform(-1, 1) * m.rot * t
        scl = rng.uniform(0.8, 1.2) * np.exp(rng.uniform(-1, 1) * m.zoom * t)
        plan.cutouts.append(CutoutPlan(box, psize, mask, pos, rot, scl))
    return plan


def render_clip(plan: ClipPlan, background: np.ndarray, patches=()) -> np.ndarray:
    """Warp a prepared background layer (``plan.background``) and patch layers (``plan.patches``)
    along the plan: [frames, H, W, 3] uint8."""
    H, W = plan.size
    clip = np.empty((plan.frames, H, W, 3), np.uint8)
    for i in range(plan.frames):
        frame = cv2.warpAffine(background, plan.matrices[i], (W, H), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REFLECT101)
        if plan.cutouts:
            frame = frame.astype(np.float32)
            for c, patch in zip(plan.cutouts, patches):
                F = cv2.getRotationMatrix2D((patch.shape[1] / 2, patch.shape[0] / 2), float(c.rot[i]), float(c.scl[i]))
                F[:, 2] += c.pos[i] - np.array([patch.shape[1] / 2, patch.shape[0] / 2])
                p = cv2.warpAffine(patch, F, (W, H), flags=cv2.INTER_LINEAR).astype(np.float32)
                a = cv2.warpAffine(c.mask, F, (W, H), flags=cv2.INTER_LINEAR)[..., None]
                frame = frame * (1 - a) + p * a
            frame = np.clip(frame + 0.5, 0, 255).astype(np.uint8)
        clip[i] = frame
    return clip


def synth_clip(rng: np.random.Generator, photo: np.ndarray, cutout_photos=(), frames: int = 16,
               size=(192, 320), motion: str | Motion = "slow", n_cutouts: int | None = None) -> np.ndarray:
    """A clip [frames, H, W, 3] uint8 RGB: a smooth camera path over ``photo`` plus moving cut-outs
    (cut-out k from ``cutout_photos[k]``). All randomness comes from ``rng``; a 'static' clip repeats one frame."""
    plan = plan_clip(rng, photo.shape, [p.shape for p in cutout_photos], frames, size, motion, n_cutouts)
    return render_clip(plan, plan.background(photo), plan.patches(cutout_photos))
