"""Regenerate the committed resources: the sample clip, the gallery thumbnails and presets.

Why a script: the resources are derived data (a held-out photograph, the synthetic camera of
``data.py`` and the filters of ``styles.py``), so they are rebuilt, never hand-edited, and they
stay consistent with the styles. Everything is seeded; the same inputs give the same files.
Only a held-out (validation) photograph is used, so neither the sample nor the gallery shows an
image the model was trained on. The default photograph is CC-BY-4.0 (see the READMEs written
beside the resources).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from ..checkpoint import DEFAULT_MODEL_DIR
from ..vocabulary import StyleVocabulary
from .motion import Motion, synth_clip
from .painterly import get_any_style
from .photos import find_photos, load_photo, photo_split, split_photos
from .styles import STYLES

RESOURCES = Path(__file__).resolve().parents[2] / "resources"
SAMPLE_PHOTO = "aitzgorri_by_Aitzol_Berasategi.jpg"  # lomiri-wallpapers-16.04, CC-BY-4.0, held out
SAMPLE_MOTION = Motion(pan=(0.9, 0.9), zoom=0.0015, rot=0.02, shake=0.8, fg_speed=(1.6, 1.6))
REFERENCE_STYLES = (("watercolor", 0.75), ("pop_art", 0.25))  # style, horizontal centre of the crop
THUMB, REF = (160, 90), (256, 144)  # (width, height)


def _crop(img: np.ndarray, size, cx: float = 0.5, cy: float = 0.5, zoom: float = 1.0) -> np.ndarray:
    """The largest crop of aspect size[0]:size[1] (shrunk by ``zoom``) around (cx, cy), resized."""
    h, w = img.shape[:2]
    cw = min(w, h * size[0] / size[1]) / zoom
    ch = cw * size[1] / size[0]
    x0 = int(np.clip(cx * w - cw / 2, 0, w - cw))
    y0 = int(np.clip(cy * h - ch / 2, 0, h - ch))
    return cv2.resize(img[y0:y0 + int(ch), x0:x0 + int(cw)], size, interpolation=cv2.INTER_AREA)


def _jpg(path: Path, rgb: np.ndarray) -> None:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise RuntimeError(f"JPEG encoding failed for {path}")
    path.write_bytes(buf.tobytes())


def write_mp4(path: Path, frames: np.ndarray, fps: int = 24, crf: int = 20) -> None:
    """H.264 yuv420p MP4 (plays everywhere) from RGB frames, with PyAV."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as box:
        st = box.add_stream("libx264", rate=fps)
        st.width, st.height, st.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        st.options = {"crf": str(crf), "preset": "slow", "threads": "1"}
        for f in frames:
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24").reformat(format="yuv420p")
            box.mux(st.encode(vf))
        box.mux(st.encode())


def make_sample(photo: np.ndarray, out: Path, seconds: float = 6.0, fps: int = 24) -> Path:
    """A ~6 s 640x360 clip: slow smooth camera drift plus one cut-out gliding across."""
    clip = synth_clip(np.random.default_rng(2024), photo, [np.ascontiguousarray(photo[:, ::-1])], int(seconds * fps),
                      (360, 640), SAMPLE_MOTION, n_cutouts=1)
    path = out / "sample" / "sample.mp4"
    write_mp4(path, clip, fps)
    return path


def shipped_styles(model_dir: Path = DEFAULT_MODEL_DIR) -> list:
    """The styles the embedded model was trained on (filters and painterly), else every filter."""
    vocab = StyleVocabulary.load(model_dir) if Path(model_dir).is_dir() else None
    return [get_any_style(n) for n in vocab.styles] if vocab else list(STYLES.values())


def make_gallery(photo: np.ndarray, out: Path, styles: list | None = None) -> list[dict]:
    """Thumbnails of every shipped style, two reference images, and ``presets.json``."""
    gal = out / "gallery"
    gal.mkdir(parents=True, exist_ok=True)
    base = _crop(photo, (320, 180))
    presets = []
    for old in gal.glob("*.jpg"):  # thumbnails of styles no longer shipped go with them
        old.unlink()
    for st in styles if styles is not None else shipped_styles():
        _jpg(gal / f"{st.name}.jpg", cv2.resize(st.apply(base), THUMB, interpolation=cv2.INTER_AREA))
        presets.append({"name": st.title, "style": st.name, "prompt": st.prompts[0],
                        "thumbnail": f"{st.name}.jpg", "strength": 1.0})
    for name, cx in REFERENCE_STYLES:
        st = STYLES[name]
        ref = cv2.resize(st.apply(_crop(photo, (320, 180), cx=cx, cy=0.5, zoom=1.25)), REF,
                         interpolation=cv2.INTER_AREA)
        _jpg(gal / f"ref_{name}.jpg", ref)
        _jpg(gal / f"ref_{name}_thumb.jpg", cv2.resize(ref, THUMB, interpolation=cv2.INTER_AREA))
        presets.append({"name": f"{st.title} (reference image)", "reference": f"ref_{name}.jpg",
                        "thumbnail": f"ref_{name}_thumb.jpg", "strength": 1.0, "reference_style": name})
    (gal / "presets.json").write_text(json.dumps(presets, indent=2) + "\n")
    return presets


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model.train.make_resources", description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=RESOURCES, help="resources directory")
    ap.add_argument("--photos", action="append", metavar="DIR", help="photo directory (default: wallpapers)")
    ap.add_argument("--photo", default=SAMPLE_PHOTO, help="id of the held-out photograph to use")
    ap.add_argument("--gallery-only", action="store_true", help="leave the sample clip as it is")
    a = ap.parse_args(argv)
    photos = dict(find_photos(a.photos))
    _, val = split_photos(sorted(photos.items()))
    pid = a.photo if a.photo in photos and photo_split(a.photo) == "val" else val[0][0]
    if pid != a.photo:
        print(f"{a.photo!r} is not an available held-out photo; using {pid!r}")
    photo = load_photo(photos[pid], short_side=1080)
    presets = make_gallery(photo, a.out)
    print(f"from {pid}: wrote {len(presets)} presets in {a.out / 'gallery'}")
    if not a.gallery_only:
        path = make_sample(photo, a.out)
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
