"""Reproducible training data: natural photographs made into short moving clips.

Why synthetic motion: the stylization model must learn to follow a moving camera and moving
objects without flicker, and every target must be exact. A still photograph with a known, smooth
camera path (pan, zoom, rotation, handheld shake) plus cut-outs of other photographs sliding over
it gives real image statistics, real motion and, through the deterministic filters of
``styles.py``, an exact stylized target for every frame. Targets are not stored: they are
recomputed with ``Style.apply``.

Photographs come from Debian wallpaper packages (``WALLPAPER_PACKAGES``), installed with
``apt-get install mate-backgrounds lomiri-wallpapers-16.04 lomiri-wallpapers-20.04
plasma-workspace-wallpapers``. With the default directories only the listed photographs
(``DEFAULT_PHOTOS``: real photographs, not the abstract art the packages also ship) are used, so
the data set does not change with whatever else is installed; with explicit ``--photos``
directories every image found is used. Photos are split into train and held-out validation by a
hash of their id, so the split never depends on order or on which other photos exist.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .styles import STYLES, Style, get_style

WALLPAPER_PACKAGES = ("mate-backgrounds", "lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04",
                      "plasma-workspace-wallpapers")
DEFAULT_PHOTO_DIRS = ("/usr/share/backgrounds", "/usr/share/wallpapers", "/usr/share/images/desktop-base")
_LOMIRI = ("Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "Picture_0B_by_freespace",
           "Picture_1A_by_freespace", "Wine_by_Jakkub_Mede", "aitzgorri_by_Aitzol_Berasategi",
           "free_by_Peter_Nerlich", "friends_by_Aitzol_Berasategi", "greentock_by_Peter_Nerlich",
           "life_by_Aitzol_Berasategi", "picosdeeuropa_by_Aitzol_Berasategi",
           "seeding_by_Clements_Engelhardt", "sunset_by_Aitzol_Berasategi")
_MATE = ("Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops",
         "Storm", "TwoWings", "Wood", "YellowFlower")
_KDE = ("BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey",
        "Kite", "OneStandsOut", "Path", "summer_1am")
# photo id -> the Debian package that ships it (ids: file names, or the wallpaper folder for KDE)
DEFAULT_PHOTOS = {**{f"{n}.jpg": "lomiri-wallpapers-16.04" for n in _LOMIRI},
                  "Kleiber_by_Lukas_Baubkus.jpg": "lomiri-wallpapers-20.04",
                  **{f"{n}.jpg": "mate-backgrounds" for n in _MATE},
                  **{n: "plasma-workspace-wallpapers" for n in _KDE}}
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp")
VAL_FRACTION = 0.1
PHOTO_SHORT_SIDE = 600  # photos are kept in memory at this short side


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


# ----------------------------------------------------------------------------- photographs
def _kde_size(p: Path) -> int:
    m = re.fullmatch(r"(\d+)x(\d+)", p.stem)
    return int(m[1]) * int(m[2]) if m else 0


def find_photos(photo_dirs=None) -> list[tuple[str, Path]]:
    """(id, path) of every photograph under the directories, sorted by id.

    KDE-style wallpapers (``<Name>/contents/images/WxH.jpg``) count once, as ``<Name>``, using their
    largest real file; screenshots and dark variants are skipped. With ``photo_dirs=None`` the
    default directories are searched and only ``DEFAULT_PHOTOS`` are kept."""
    default = photo_dirs is None
    dirs = [Path(d) for d in (DEFAULT_PHOTO_DIRS if default else photo_dirs)]
    found: dict[str, Path] = {}
    for d in dirs:
        if not d.is_dir():
            continue
        for p in sorted(d.rglob("*")):
            if p.suffix.lower() not in IMAGE_EXTS or not p.is_file() or p.stem == "screenshot" \
                    or "images_dark" in p.parts:
                continue
            if p.parent.name == "images" and p.parent.parent.name == "contents":
                pid = p.parent.parent.parent.name
                old = found.get(pid)
                if old is None or _kde_size(p.resolve()) > _kde_size(old.resolve()):
                    found[pid] = p
            else:
                found.setdefault(p.name, p)
    if default:
        found = {k: v for k, v in found.items() if k in DEFAULT_PHOTOS}
    if not found:
        where = ", ".join(str(d) for d in dirs)
        hint = f" (install: apt-get install {' '.join(WALLPAPER_PACKAGES)})" if default else ""
        raise FileNotFoundError(f"no photographs ({'/'.join(IMAGE_EXTS)}) found in {where}{hint}")
    return sorted(found.items())


def photo_split(photo_id: str, val_fraction: float = VAL_FRACTION) -> str:
    """'train' or 'val' from a hash of the id: stable whatever else is in the pool."""
    h = int(hashlib.sha1(photo_id.encode()).hexdigest()[:8], 16) / 2**32
    return "val" if h < val_fraction else "train"


def split_photos(photos, val_fraction: float = VAL_FRACTION):
    """Split (id, path) pairs into (train, val); each side gets at least one photo when possible."""
    train = [p for p in photos if photo_split(p[0], val_fraction) == "train"]
    val = [p for p in photos if photo_split(p[0], val_fraction) == "val"]
    key = lambda p: hashlib.sha1(p[0].encode()).hexdigest()  # noqa: E731
    if not val and len(train) > 1:
        val = [min(train, key=key)]
        train = [p for p in train if p not in val]
    if not train and len(val) > 1:
        train = [max(val, key=key)]
        val = [p for p in val if p not in train]
    return train, val


def load_photo(path, short_side: int = PHOTO_SHORT_SIDE) -> np.ndarray:
    """An RGB uint8 photograph, shrunk so its short side is at most ``short_side``."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"cannot read image {path}")
    h, w = img.shape[:2]
    f = short_side / min(h, w)
    if f < 1:
        img = cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


# ----------------------------------------------------------------------------- clips
def _rot(deg: float) -> np.ndarray:
    a = math.radians(deg)
    return np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])


def _shake(rng, frames: int, amp: float) -> np.ndarray:
    """Smooth handheld shake: two low-frequency sinusoids per axis, shape [frames, 2]."""
    t = np.arange(frames)[:, None]
    f = rng.uniform(0.02, 0.12, (2, 2))
    ph = rng.uniform(0, 2 * math.pi, (2, 2))
    return amp * (np.sin(2 * math.pi * f[0] * t + ph[0]) + 0.5 * np.sin(2 * math.pi * f[1] * t + ph[1]))


def _cutout(rng, photo: np.ndarray, h: int, w: int, s: float):
    """A patch of a photograph and its soft elliptical or polygonal mask (float32, [0, 1])."""
    ph = max(8, int(rng.uniform(0.3, 0.55) * h))
    pw = max(8, int(ph * rng.uniform(0.6, 1.6)))
    H, W = photo.shape[:2]
    f = rng.uniform(0.5, 1.0) * min(H / ph, W / pw)
    ch, cw = max(2, int(ph * f)), max(2, int(pw * f))
    y0, x0 = rng.integers(0, H - ch + 1), rng.integers(0, W - cw + 1)
    patch = cv2.resize(photo[y0:y0 + ch, x0:x0 + cw], (pw, ph), interpolation=cv2.INTER_AREA)
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
    return patch, cv2.GaussianBlur(mask, (0, 0), 1.5 * s)


def pick_n_cutouts(rng: np.random.Generator, motion: str) -> int:
    return int(rng.choice([0, 1]) if motion == "static" else rng.choice([0, 1, 2], p=[0.3, 0.5, 0.2]))


def synth_clip(rng: np.random.Generator, photo: np.ndarray, cutout_photos=(), frames: int = 16,
               size=(192, 320), motion: str | Motion = "slow", n_cutouts: int | None = None) -> np.ndarray:
    """A clip [frames, H, W, 3] uint8 RGB: a smooth camera path over ``photo`` plus moving cut-outs
    (cut-out k from ``cutout_photos[k]``). All randomness comes from ``rng``; a 'static' clip repeats one frame."""
    H, W = size
    s = min(H, W) / 192
    m = MOTIONS[motion] if isinstance(motion, str) else motion
    t = np.arange(frames, dtype=np.float64)
    # camera: zoom (photo px per output px), rotation, centre; chosen so the view stays inside
    ang = rng.uniform(-3, 3) + rng.uniform(-m.rot, m.rot) * t
    amax = math.radians(np.abs(ang).max())
    ex, ey = W / 2 * math.cos(amax) + H / 2 * math.sin(amax), W / 2 * math.sin(amax) + H / 2 * math.cos(amax)
    ph, pw = photo.shape[:2]
    zfit = min(pw / (2 * ex), ph / (2 * ey))
    zoom = zfit * rng.uniform(0.45, 0.85) * np.exp(rng.uniform(-m.zoom, m.zoom) * (t - t.mean()))
    zoom = np.minimum(zoom, zfit * 0.97)
    zref = zoom.min()
    if zref > 1.2:  # shrink the photo first so the warp never minifies much (no aliasing)
        photo = cv2.resize(photo, (max(1, round(pw / zref)), max(1, round(ph / zref))), interpolation=cv2.INTER_AREA)
        zoom = zoom * photo.shape[1] / pw
        ph, pw = photo.shape[:2]
    zmax = zoom.max()
    shake = _shake(rng, frames, m.shake * s) * zmax
    margin = np.abs(shake).max(0) if frames else np.zeros(2)
    lo = np.array([zmax * ex + margin[0], zmax * ey + margin[1]])
    hi = np.array([pw - lo[0], ph - lo[1]])
    lo, hi = np.minimum(lo, (lo + hi) / 2), np.maximum(hi, (lo + hi) / 2)
    c0 = rng.uniform(lo, hi)
    d = rng.uniform(0, 2 * math.pi)
    c1 = np.clip(c0 + rng.uniform(*m.pan) * s * zmax * max(frames - 1, 1) * np.array([math.cos(d), math.sin(d)]), lo, hi)
    ease = rng.uniform(0, 1)
    u = t / max(frames - 1, 1)
    u = (1 - ease) * u + ease * u * u * (3 - 2 * u)
    centre = c0 + (c1 - c0) * u[:, None] + shake
    # foreground cut-outs from other photographs
    if n_cutouts is None:
        n_cutouts = pick_n_cutouts(rng, motion if isinstance(motion, str) else "slow")
    fgs = []
    for k in range(n_cutouts if len(cutout_photos) else 0):
        patch, mask = _cutout(rng, cutout_photos[k % len(cutout_photos)], H, W, s)
        d = rng.uniform(0, 2 * math.pi)
        v = rng.uniform(*m.fg_speed) * s * np.array([math.cos(d), math.sin(d)])
        mid = rng.uniform([0.2 * W, 0.2 * H], [0.8 * W, 0.8 * H])
        wob = _shake(rng, frames, 0.5 * m.shake * s)
        pos = mid + v * (t - t.mean())[:, None] + wob
        rot = rng.uniform(-15, 15) + rng.uniform(-1, 1) * m.rot * t
        scl = rng.uniform(0.8, 1.2) * np.exp(rng.uniform(-1, 1) * m.zoom * t)
        fgs.append((patch, mask, pos, rot, scl))
    clip = np.empty((frames, H, W, 3), np.uint8)
    half = np.array([W / 2, H / 2])
    for i in range(frames):
        A = zoom[i] * _rot(ang[i])
        M = np.hstack([A, (centre[i] - A @ half)[:, None]])
        frame = cv2.warpAffine(photo, M, (W, H), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REFLECT101)
        if fgs:
            frame = frame.astype(np.float32)
            for patch, mask, pos, rot, scl in fgs:
                F = cv2.getRotationMatrix2D((patch.shape[1] / 2, patch.shape[0] / 2), float(rot[i]), float(scl[i]))
                F[:, 2] += pos[i] - np.array([patch.shape[1] / 2, patch.shape[0] / 2])
                p = cv2.warpAffine(patch, F, (W, H), flags=cv2.INTER_LINEAR).astype(np.float32)
                a = cv2.warpAffine(mask, F, (W, H), flags=cv2.INTER_LINEAR)[..., None]
                frame = frame * (1 - a) + p * a
            frame = np.clip(frame + 0.5, 0, 255).astype(np.uint8)
        clip[i] = frame
    return clip


def stylize_clip(clip: np.ndarray, style: Style | str) -> np.ndarray:
    """The exact target of a clip: the style's filter on every frame."""
    style = get_style(style) if isinstance(style, str) else style
    return np.stack([style.apply(f) for f in clip])


def make_pair(rng: np.random.Generator, clip: np.ndarray, style: Style | str, other_clip: np.ndarray,
              kind: str | None = None, p_text: float = 0.5) -> dict:
    """A training pair as in RTR-DiT: text-guided (a prompt of the style) or reference-guided
    (one frame of a *different* clip stylized with the same style). Keys: kind, style, source,
    target, prompt (text pairs, else None), reference (reference pairs, else None)."""
    style = get_style(style) if isinstance(style, str) else style
    if kind is None:
        kind = "text" if rng.random() < p_text else "reference"
    if kind not in ("text", "reference"):
        raise ValueError(f"kind must be 'text' or 'reference', got {kind!r}")
    pair = {"kind": kind, "style": style.name, "source": clip, "target": stylize_clip(clip, style),
            "prompt": None, "reference": None}
    if kind == "text":
        pair["prompt"] = style.prompts[rng.integers(len(style.prompts))]
    else:
        if other_clip is clip or (other_clip.shape == clip.shape and np.array_equal(other_clip, clip)):
            raise ValueError("the reference must come from a different clip than the source")
        pair["reference"] = style.apply(np.ascontiguousarray(other_clip[rng.integers(len(other_clip))]))
    return pair


# ----------------------------------------------------------------------------- data set
def build_dataset(out_dir, photo_dirs=None, n_train: int = 400, n_val: int = 40, frames: int = 16,
                  size=(192, 320), seed: int = 0, progress: bool = False) -> dict:
    """Write ``train/*.npy`` and ``val/*.npy`` clips ([F, H, W, 3] uint8 RGB) and ``manifest.json``.
    Each clip is drawn from its own generator seeded by (seed, split, index): reproducible and
    independent of the other clips. Validation clips use only held-out photographs."""
    out = Path(out_dir)
    photos = find_photos(photo_dirs)
    train_p, val_p = split_photos(photos)
    if (n_train and not train_p) or (n_val and not val_p):
        raise ValueError(f"need photos on both sides of the split, got {len(train_p)} train / {len(val_p)} val")
    cache: dict[str, np.ndarray] = {}

    def img(p):
        if p[0] not in cache:
            cache[p[0]] = load_photo(p[1])
        return cache[p[0]]

    jobs = [("train", i, train_p) for i in range(n_train)] + [("val", i, val_p) for i in range(n_val)]
    entries = []
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(jobs), unit="clip", desc="building clips")
    for split, i, pool in jobs:
        code = 0 if split == "train" else 1
        order = np.random.default_rng([seed, code, 1 << 20]).permutation(len(pool))
        bg = pool[order[i % len(pool)]]
        rng = np.random.default_rng([seed, code, i])
        motion = str(rng.choice(list(MOTIONS), p=MOTION_P))
        others = [p for p in pool if p[0] != bg[0]] or pool
        n_cut = pick_n_cutouts(rng, motion)
        fg = [others[j] for j in rng.choice(len(others), size=min(n_cut, len(others)), replace=False)]
        clip = synth_clip(rng, img(bg), [img(p) for p in fg], frames, size, motion, n_cutouts=len(fg))
        rel = f"{split}/{i:05d}.npy"
        (out / split).mkdir(parents=True, exist_ok=True)
        np.save(out / rel, clip)
        entries.append({"file": rel, "split": split, "index": i, "photo": bg[0], "cutout_photos": [p[0] for p in fg],
                        "motion": motion, "seed": [seed, code, i]})
        if bar:
            bar.update()
    if bar:
        bar.close()
    manifest = {"version": 1, "seed": seed, "frames": frames, "size": list(size),
                "packages": list(WALLPAPER_PACKAGES) if photo_dirs is None else None,
                "photo_dirs": [str(d) for d in (DEFAULT_PHOTO_DIRS if photo_dirs is None else photo_dirs)],
                "photos": {"train": [p[0] for p in train_p], "val": [p[0] for p in val_p]},
                "styles": list(STYLES), "clips": entries}
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def load_manifest(out_dir) -> dict:
    return json.loads((Path(out_dir) / "manifest.json").read_text())


def load_clip(out_dir, entry: dict, mmap: bool = True) -> np.ndarray:
    return np.load(Path(out_dir) / entry["file"], mmap_mode="r" if mmap else None)


def _size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)x(\d+)", text.strip().lower())
    if not m or int(m[1]) < 16 or int(m[2]) < 16:
        raise argparse.ArgumentTypeError(f"size must be HxW with both at least 16, e.g. 192x320; got {text!r}")
    return int(m[1]), int(m[2])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="main.py train data", description="Build the synthetic training clips.")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--train", type=int, default=400, help="number of training clips")
    ap.add_argument("--val", type=int, default=40, help="number of validation clips (held-out photos)")
    ap.add_argument("--frames", type=int, default=16, help="frames per clip")
    ap.add_argument("--size", type=_size, default=(192, 320), help="frame size HxW")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--photos", action="append", metavar="DIR",
                    help="photo directory (repeatable); default: the Debian wallpaper directories")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    try:
        man = build_dataset(a.out, a.photos, a.train, a.val, a.frames, a.size, a.seed, progress=True)
    except (FileNotFoundError, ValueError) as e:  # no photos, an unreadable one, or too few to split
        raise SystemExit(f"error: {e}") from None
    print(f"wrote {len(man['clips'])} clips ({len(man['photos']['train'])} train / "
          f"{len(man['photos']['val'])} held-out photos) to {a.out} in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
