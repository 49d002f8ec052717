"""``main.py train palette``: fit reference mode's colour map (``model/palette.py``) on a data set.

Every reference clip of the data set is streamed through the model as the app streams it (fixed noise,
the map off). Each frame gives the map's features (the running statistics the stylizer would use) and,
on ``SAMPLES`` pixels drawn at random at full resolution, the colours of the output's base (what the
map recolours), of the output and of the target. The map's weights minimise the squared difference
over all of them (RGB, so PSNR is what improves), with a small ridge toward no change; the sums they
need are 4x4 and 4x3 a frame, so the fit is one linear solve. The weights go into the model folder's
card (``reference_palette``) with the fit's record: PSNR on the sampled pixels without the map and
with it, on five folds of the training clips held out in turn and on the validation clips.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..checkpoint import load_model
from ..palette import FEATURES, MAP_SHAPE, ReferencePalette, base
from ..stylizer import StreamStylizer
from .common import fail, write_card
from .data import load_clip, load_manifest, load_target
from .painterly import REFERENCE_STYLE

SAMPLES = 4096  # pixels a frame


@dataclass
class FrameSums:
    """Per frame: features [N, F], sum of x x^T [N, 4, 4], of x r^T [N, 4, 3], of |r|^2 [N], pixels [N];
    x = [R, G, B, 1] of the output's base, r = target - output, colours in 0..1; ``clip`` [N] numbers
    the clips."""
    f: np.ndarray
    xx: np.ndarray
    xr: np.ndarray
    rr: np.ndarray
    pixels: np.ndarray
    clip: np.ndarray

    def take(self, mask: np.ndarray) -> "FrameSums":
        return FrameSums(*(a[mask] for a in (self.f, self.xx, self.xr, self.rr, self.pixels, self.clip)))

    def squared_error(self, weights: np.ndarray | None) -> np.ndarray:
        """Each frame's summed squared error with the map (None: without)."""
        if weights is None:
            return self.rr
        m = np.einsum("na,aik->nik", self.f, weights)
        return self.rr - 2 * np.einsum("nik,nik->n", m, self.xr) + np.einsum("nik,nij,njk->n", m, self.xx, m)

    def psnr(self, weights: np.ndarray | None) -> float | None:
        """Mean over clips of each clip's PSNR on its sampled pixels."""
        err = self.squared_error(weights)
        clips = np.unique(self.clip)
        if not len(clips):
            return None
        mse = [err[self.clip == c].sum() / (3 * self.pixels[self.clip == c].sum()) for c in clips]
        return round(float(np.mean(10 * np.log10(1.0 / np.maximum(mse, 1e-12)))), 3)


def frame_sums(model_dir: Path, data_dir: Path, split: str, limit: int, log=print) -> FrameSums:
    entries = [e for e in load_manifest(data_dir)["clips"]
               if e.get("style") == REFERENCE_STYLE and e["split"] == split and e.get("reference")][:limit]
    model = load_model(model_dir)
    model.card.pop("reference_palette", None)  # the outputs as the DiT and decoder paint them (and a stale map)
    st = StreamStylizer(model, noise="fixed", min_side=0)
    probe = ReferencePalette()
    rng = np.random.default_rng(0)
    rows: dict[str, list] = {k: [] for k in ("f", "xx", "xr", "rr", "pixels", "clip")}
    for k, e in enumerate(entries):
        src, tgt = np.asarray(load_clip(data_dir, e)), np.asarray(load_target(data_dir, e))
        ref = cv2.cvtColor(cv2.imread(str(Path(data_dir) / e["reference"])), cv2.COLOR_BGR2RGB)
        st.reset()
        st.set_reference(ref)
        probe.set_reference(ref)
        for out, target in zip(st.push(list(src)) + st.flush(), tgt):
            pick = rng.integers(0, out.shape[0] * out.shape[1], SAMPLES)
            o = out.reshape(-1, 3)[pick].astype(np.float64) / 255.0
            x = np.concatenate([base(out).reshape(-1, 3)[pick] / 255.0, np.ones((SAMPLES, 1))], 1)
            r = np.asarray(target).reshape(-1, 3)[pick] / 255.0 - o
            for key, value in (("f", probe.features(out)), ("xx", x.T @ x), ("xr", x.T @ r),
                               ("rr", float((r * r).sum())), ("pixels", SAMPLES), ("clip", k)):
                rows[key].append(value)
        if (k + 1) % 100 == 0:
            log(f"[palette] {split}: {k + 1}/{len(entries)} clips")
    if not rows["f"]:
        return FrameSums(np.zeros((0, FEATURES)), np.zeros((0, 4, 4)), np.zeros((0, 4, 3)), *(np.zeros(0),) * 3)
    return FrameSums(*(np.array(rows[k]) for k in ("f", "xx", "xr", "rr", "pixels", "clip")))


def solve(sums: FrameSums, strength: float) -> np.ndarray:
    """The least-squares weights [FEATURES, 4, 3], ridge ``strength`` per sampled pixel."""
    n = FEATURES * 4
    gram = np.einsum("na,nb,nij->aibj", sums.f, sums.f, sums.xx).reshape(n, n)
    rhs = np.einsum("na,nik->aik", sums.f, sums.xr).reshape(n, 3)
    return np.linalg.solve(gram + strength * sums.pixels.sum() * np.eye(n), rhs).reshape(MAP_SHAPE)


def fit_palette(model_dir: Path, data_dir: Path, strength: float = 1e-5, max_clips: int = 100000,
                folds: int = 5, log=print) -> dict:
    t0 = time.perf_counter()
    train = frame_sums(model_dir, data_dir, "train", max_clips, log)
    clips = np.unique(train.clip)
    if len(clips) < 10:
        raise ValueError(f"{data_dir} has {len(clips)} training reference clips; the colour map needs at "
                         f"least 10 (build the data set with reference clips)")
    held_err = np.empty(len(train.clip))
    for part in np.array_split(np.random.default_rng(0).permutation(clips), folds):
        held = np.isin(train.clip, part)
        held_err[held] = train.take(held).squared_error(solve(train.take(~held), strength))
    cv = FrameSums(train.f, train.xx, train.xr, held_err, train.pixels, train.clip)  # the held-out errors
    weights = solve(train, strength)
    val = frame_sums(model_dir, data_dir, "val", max_clips, log)
    record = {"clips": len(clips), "val_clips": len(np.unique(val.clip)), "ridge": strength,
              "samples_per_frame": SAMPLES,
              "psnr_cv": {"without": train.psnr(None), "with": cv.psnr(None)},
              "psnr_val": {"without": val.psnr(None), "with": val.psnr(weights)},
              "seconds": round(time.perf_counter() - t0)}
    write_card(model_dir, {"reference_palette": {"weights": weights.round(6).tolist(), "fit": record}})
    log(f"[palette] {record}")
    return record


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="main.py train palette", description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, type=Path, help="model folder; its card gets the palette weights")
    ap.add_argument("--data", required=True, type=Path, help="a data set with reference clips and stored targets")
    ap.add_argument("--ridge", type=float, default=1e-5, help="ridge strength per sampled pixel (default 1e-5)")
    ap.add_argument("--max-clips", type=int, default=100000)
    a = ap.parse_args(argv)
    if not (a.model / "config.json").is_file():
        fail(f"{a.model} is not a model folder (no config.json)")
    if not (a.data / "manifest.json").is_file():
        fail(f"{a.data} is not a data set (no manifest.json; build one with `main.py train data`)")
    if a.ridge < 0:
        fail(f"--ridge must be 0 or more, got {a.ridge}")
    try:
        fit_palette(a.model, a.data, a.ridge, a.max_clips)
    except ValueError as e:
        fail(str(e))
    return 0
