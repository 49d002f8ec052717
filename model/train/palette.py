"""``main.py train palette``: fit reference mode's palette map (``model/palette.py``) on a data set.

Every reference clip of the data set is streamed through the model as the app streams it (fixed noise,
the palette off); the mean colour of its outputs, its reference image's mean and spread, and the mean
colour of its targets make one row, and ridge regression maps the first two to the third. The weights
go into the model folder's card (``reference_palette``) with the fit's record: the mean-colour error
without the map and with it, on five folds of the training clips held out in turn and on the
validation clips.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from ..checkpoint import load_model
from ..palette import FEATURES, features, lab_stats
from ..stylizer import StreamStylizer
from .common import fail, write_card
from .data import load_clip, load_manifest, load_target
from .painterly import REFERENCE_STYLE


def palette_rows(model_dir: Path, data_dir: Path, split: str, limit: int, log=print) -> tuple[np.ndarray, ...]:
    """(features [N, FEATURES], target means [N, 3], output means [N, 3]) of a split's reference clips."""
    entries = [e for e in load_manifest(data_dir)["clips"]
               if e.get("style") == REFERENCE_STYLE and e["split"] == split and e.get("reference")][:limit]
    st = StreamStylizer(load_model(model_dir), noise="fixed", min_side=0)
    st.palette.weights = None  # the outputs as the DiT and decoder paint them
    xs, ys, outs = [], [], []
    for k, e in enumerate(entries):
        src, tgt = np.asarray(load_clip(data_dir, e)), np.asarray(load_target(data_dir, e))
        ref = cv2.cvtColor(cv2.imread(str(Path(data_dir) / e["reference"])), cv2.COLOR_BGR2RGB)
        st.reset()
        st.set_reference(ref)
        frames = (st.push(list(src)) + st.flush())[:len(tgt)]
        out_mean = np.mean([lab_stats(f)[0] for f in frames], 0)
        xs.append(features(out_mean, lab_stats(ref, square=True)))
        ys.append(np.mean([lab_stats(t)[0] for t in tgt], 0))
        outs.append(out_mean)
        if (k + 1) % 100 == 0:
            log(f"[palette] {split}: {k + 1}/{len(entries)} clips")
    return np.array(xs).reshape(-1, FEATURES), np.array(ys).reshape(-1, 3), np.array(outs).reshape(-1, 3)


def ridge(x: np.ndarray, y: np.ndarray, strength: float) -> np.ndarray:
    return np.linalg.solve(x.T @ x + strength * np.eye(x.shape[1]), x.T @ y)


def error(pred: np.ndarray, y: np.ndarray) -> float:
    """Mean squared distance of mean colours, in Lab units squared."""
    return round(float(np.mean(np.sum((pred.reshape(-1, 3) - y) ** 2, 1))), 1) if len(y) else None


def fit_palette(model_dir: Path, data_dir: Path, strength: float = 1.0, max_clips: int = 100000,
                folds: int = 5, log=print) -> dict:
    t0 = time.perf_counter()
    x, y, out = palette_rows(model_dir, data_dir, "train", max_clips, log)
    if len(y) < FEATURES:
        raise ValueError(f"{data_dir} has {len(y)} training reference clips; the palette needs at least "
                         f"{FEATURES} (build the data set with reference clips)")
    order = np.random.default_rng(0).permutation(len(y))
    held = []
    for part in np.array_split(order, folds):
        keep = np.setdiff1d(order, part)
        held.append(x[part] @ ridge(x[keep], y[keep], strength))
    cv_pred = np.empty_like(y)
    cv_pred[np.concatenate(np.array_split(order, folds))] = np.concatenate(held)
    weights = ridge(x, y, strength)
    vx, vy, vout = palette_rows(model_dir, data_dir, "val", max_clips, log)
    record = {"clips": len(y), "val_clips": len(vy), "ridge": strength,
              "mean_colour_error_cv": {"without": error(out, y), "with": error(cv_pred, y)},
              "mean_colour_error_val": {"without": error(vout, vy), "with": error(vx @ weights, vy)},
              "seconds": round(time.perf_counter() - t0)}
    write_card(model_dir, {"reference_palette": {"weights": weights.round(6).tolist(), "fit": record}})
    log(f"[palette] {record}")
    return record


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="main.py train palette", description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, type=Path, help="model folder; its card gets the palette weights")
    ap.add_argument("--data", required=True, type=Path, help="a data set with reference clips and stored targets")
    ap.add_argument("--ridge", type=float, default=1.0, help="ridge regression's strength (default 1)")
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
