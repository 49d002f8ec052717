"""How closely a data set's stored targets agree with each style applied to the frame itself.

Why: ``eval --videos`` scores a model against the style applied to every real frame. A data set whose
targets were rendered on the still photograph and moved with the camera (``--targets still``) teaches
something else: on data set v3 those targets scored 13.4-17.5 dB for the painterly network styles,
18.6-33.8 dB for the filters and 12.9 dB for reference images against the same style applied to the
same frames. A model cannot beat its data, so this is measured before training on a data set.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..stylizer import load_image
from .common import fail
from .data import load_clip, load_manifest, load_target
from .metrics import psnr
from .painterly import REFERENCE_STYLE, ReferenceStyle, get_any_style


def _style_of(data_dir: Path, entry: dict):
    if entry["style"] == REFERENCE_STYLE:
        return ReferenceStyle(load_image(Path(data_dir) / entry["reference"]))
    return get_any_style(entry["style"])


def target_agreement(data_dir: Path, split: str = "val", clips_per_style: int = 3,
                     frames: tuple[int, ...] = (0, -1)) -> dict[str, float]:
    """Mean PSNR (dB) of stored target frames against the style applied to their source frames, per
    style (reference clips as ``reference``), over the first ``clips_per_style`` clips of each."""
    man = load_manifest(data_dir)
    entries = [e for e in man["clips"] if e["split"] == split and "target" in e]
    if not entries:
        raise ValueError(f"{data_dir} has no {split} clips with stored targets")
    scores: dict[str, list[float]] = {}
    for e in entries:
        got = scores.setdefault(e["style"], [])
        if len(got) >= clips_per_style * len(frames):
            continue
        style, src, tgt = _style_of(data_dir, e), load_clip(data_dir, e), load_target(data_dir, e)
        got += [psnr(style.apply(np.ascontiguousarray(src[f])), tgt[f]) for f in frames]
    return {name: round(float(np.mean(v)), 2) for name, v in sorted(scores.items())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="main.py train targets", description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, type=Path, help="a data set built with --styles")
    ap.add_argument("--split", default="val")
    ap.add_argument("--clips", type=int, default=3, help="clips per style")
    a = ap.parse_args(argv)
    if not (a.data / "manifest.json").is_file():
        fail(f"{a.data} is not a data set (no manifest.json; made by `main.py train data`)")
    try:
        result = target_agreement(a.data, a.split, a.clips)
    except (ValueError, KeyError, OSError) as e:
        fail(" ".join(str(e).split()))
    for name, db in result.items():
        print(f"{name:16s} " + ("identical" if db > 100 else f"{db:6.2f} dB"))
    return 0
