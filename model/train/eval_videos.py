"""Bundle the default real-video evaluation set (``resources/eval``) from packaged clips.

Why these: real camera footage, freely licensed, from Debian packages, none of it in the training
data (which is made of still photographs): a person at a webcam, an office, a dog indoors,
pedestrians, a classroom. Each clip is cut to a few seconds, scaled down to at most 360 pixels on
its short side (never up) and re-encoded to H.264 so the set stays under 5 MiB.
``python -m model.train.eval_videos`` rebuilds it; the README written beside the clips credits them.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .make_resources import RESOURCES, write_mp4
from .video_eval import read_video


@dataclass(frozen=True)
class EvalClip:
    name: str
    package: str
    path: str
    frames: int
    licence: str
    credit: str
    shows: str


CLIPS = (
    EvalClip("webcam_person", "kphotoalbum", "/usr/share/kphotoalbum/demo/movie.avi", 68, "GPL-2+",
             "KPhotoAlbum demo data, Jesper K. Pedersen et al.", "a man at a webcam in a room with bookshelves"),
    EvalClip("office_window", "python3-imageio",
             "/usr/lib/python3/dist-packages/imageio/resources/images/realshort.mp4",
             36, "BSD-2-Clause", "imageio contributors", "hand-held: an office window sill, a plant, papers"),
    EvalClip("dog_indoor", "forensics-samples-files",
             "/usr/share/forensics-samples/original-files/movie1/VID_20191220_170832.mp4", 41, "CC-BY-SA-4.0",
             "Joao Eriberto Mota Filho", "phone camera: a white dog lying on a floor"),
    EvalClip("pedestrians", "opencv-doc", "/usr/share/doc/opencv-doc/examples/data/vtest.avi", 48,
             "Apache-2.0 AND BSD-3-Clause (Debian copyright, Files: *)", "OpenCV sample data",
             "fixed camera: people walking on a campus path"),
    EvalClip("classroom_ball", "python3-mecavideo", "/usr/share/pymecavideo/data/video/balle-jbart.mp4", 48,
             "CC-BY-SA-3.0", "Benoit Markey, 2007 (pymecavideo examples)", "a person throwing a ball in a classroom"),
)


def _even_size(h: int, w: int, short: int = 360) -> tuple[int, int]:
    f = min(1.0, short / min(h, w))
    return max(2, int(round(h * f / 2)) * 2), max(2, int(round(w * f / 2)) * 2)


def bundle(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written, credits = [], []
    for c in CLIPS:
        frames, fps = read_video(Path(c.path), c.frames)
        h, w = _even_size(*frames[0].shape[:2])
        frames = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames])
        path = out / f"{c.name}.mp4"
        write_mp4(path, frames, fps=int(round(fps)), crf=23)
        written.append(path)
        credits.append(f"| `{c.name}.mp4` | {len(frames)} frames, {w}x{h}, {round(fps)} fps | {c.shows} | "
                       f"`{c.package}`: `{c.path}` | {c.credit} | {c.licence} |")
    total = sum(p.stat().st_size for p in written)
    (out / "README.md").write_text(
        "# Real-video evaluation clips\n\n"
        "The default set of `main.py eval --videos` (real camera footage, never used for training). Made by\n"
        "`python -m model.train.eval_videos` from Debian packages (install: `apt-get install "
        + " ".join(sorted({c.package for c in CLIPS})) + "`):\n"
        "cut to the first frames listed, scaled to at most 360 px on the short side, re-encoded to H.264.\n\n"
        "| file | frames | shows | source | author | licence |\n|---|---|---|---|---|---|\n"
        + "\n".join(credits) + f"\n\nTotal {total / 2**20:.2f} MiB.\n")
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model.train.eval_videos", description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=RESOURCES / "eval")
    a = ap.parse_args(argv)
    paths = bundle(a.out)
    print(f"wrote {len(paths)} clips, {sum(p.stat().st_size for p in paths) / 2**20:.2f} MiB, to {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
