"""``main.py eval --videos DIR``: the quality report on real video, with a contact sheet.

Why real video: synthetic camera motion over photographs flatters a model (the synthetic set is what
it was trained on). Here every target is computed on the fly from plain video files: the filters,
the painterly network styles and reference images rendered by the arbitrary-style network, each
applied to every frame at the model's output size. Reported per style and overall: PSNR and SSIM
against the target, sharpness (the output's variance of the Laplacian over the target's), temporal
flicker (optical-flow-warped consecutive difference over the source's own; also the target's, which
for network styles is the per-frame network's), structure kept (edge correlation with the source,
over the target's), and which style unseen paraphrases select.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from ..checkpoint import DEFAULT_MODEL_DIR, CheckpointError, load_model
from ..stylizer import NOISE_MODES, StreamStylizer, at_output_size, fit_frame
from .metrics import flicker, flow_between, psnr, ssim
from .painterly import PAINTERLY, MissingExtraError, ReferenceStyle, get_any_style
from .photos import MIN_STYLE_SIDE, find_images, find_photos_in, load_photo, load_sources, split_photos

VIDEO_EXTS = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".ogv", ".mpg", ".mpeg")
DEFAULT_VIDEOS = Path(__file__).resolve().parents[2] / "resources" / "eval"
TILE = (160, 96)  # contact-sheet tile (width, height)


class VideoError(ValueError):
    """A video that cannot be read; the message names it."""


def read_video(path: Path, max_frames: int) -> tuple[list[np.ndarray], float]:
    """RGB frames (up to ``max_frames``) and the frame rate; OpenCV first, PyAV as a fallback."""
    frames, fps = [], 0.0
    cap = cv2.VideoCapture(str(path))
    if cap.isOpened():
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        while len(frames) < max_frames:
            ok, f = cap.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
    cap.release()
    if not frames:
        try:
            import av

            with av.open(str(path)) as box:
                stream = box.streams.video[0]
                fps = float(stream.average_rate or 0)
                for fr in box.decode(stream):
                    frames.append(fr.to_ndarray(format="rgb24"))
                    if len(frames) >= max_frames:
                        break
        except Exception as e:  # PyAV raises many error types for a broken file
            raise VideoError(f"{path.name}: not a readable video ({type(e).__name__}: {e})") from None
    if len(frames) < 4:
        raise VideoError(f"{path.name}: only {len(frames)} frames could be read (need at least 4)")
    return frames, fps or 24.0


def find_videos(folder: Path) -> list[Path]:
    if folder.is_file():
        return [folder]
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder of videos: {folder}")
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_EXTS and p.is_file())
    if not found:
        raise FileNotFoundError(f"no video files ({', '.join(VIDEO_EXTS)}) in {folder}")
    return found


def sharpness(img: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def _edges(img: np.ndarray) -> np.ndarray:
    g = cv2.GaussianBlur(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 1.0)
    return np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1)).ravel()


def structure(img: np.ndarray, source: np.ndarray) -> float:
    """Correlation of edge strength with the source's: is the scene still there?"""
    a, b = _edges(img), _edges(source)
    return float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else 0.0


class Clip:
    """One evaluated video at the model's output size, with its source flicker and flows."""

    def __init__(self, name: str, frames: list[np.ndarray], fit):
        self.name = name
        self.full = frames
        self.frames = [np.ascontiguousarray(fit(f)) for f in frames]
        self.flows = [flow_between(a, b) for a, b in zip(self.frames[:-1], self.frames[1:])]
        self.source_flicker = max(flicker(self.frames, self.flows), 1e-6)


def score(outs: list[np.ndarray], targets: list[np.ndarray], clip: Clip) -> dict:
    n = min(len(outs), len(targets))
    outs, targets = outs[:n], targets[:n]
    return {"psnr": float(np.mean([psnr(o, t) for o, t in zip(outs, targets)])),
            "ssim": float(np.mean([ssim(o, t) for o, t in zip(outs, targets)])),
            "sharpness": float(np.mean([sharpness(o) for o in outs])
                               / max(np.mean([sharpness(t) for t in targets]), 1e-6)),
            "flicker": flicker(outs, clip.flows) / clip.source_flicker,
            "target_flicker": flicker(targets, clip.flows) / clip.source_flicker,
            "structure": float(np.mean([structure(o, s) for o, s in zip(outs, clip.frames)])),
            "target_structure": float(np.mean([structure(t, s) for t, s in zip(targets, clip.frames)]))}


def _mean(rows: list[dict]) -> dict:
    return {k: round(float(np.mean([r[k] for r in rows])), 4) for k in rows[0]} if rows else {}


class Evaluator:
    def __init__(self, model_dir: Path, seed: int = 0, noise: str | None = None, smoothing: float | None = None):
        self.model = load_model(model_dir)
        self.stylizer = StreamStylizer(self.model, seed=seed, noise=noise, smoothing=smoothing)
        self.height, self.width = self.model.config.resolution

    def fit(self, frame: np.ndarray) -> np.ndarray:
        """The source frame as the model's output shows it: cropped and resized to the working size, or,
        for a model that renders at the source's size, the frame itself (shrunk to fit MAX_OUTPUT)."""
        return fit_frame(frame, self.height, self.width) if not self.stylizer.guided else at_output_size(frame)

    def run(self, clip: Clip, text: str | None = None, reference: np.ndarray | None = None) -> list[np.ndarray]:
        s = self.stylizer
        s.reset()
        if reference is not None:
            s.set_reference(reference)
        else:
            s.set_text(text)
        outs = s.push(clip.full) + s.flush()
        return [o if o.shape[:2] == clip.frames[0].shape[:2]
                else cv2.resize(o, clip.frames[0].shape[1::-1], interpolation=cv2.INTER_AREA) for o in outs]


def held_out_style_images(n: int, folder: Path | None = None) -> list[tuple[str, np.ndarray]]:
    """The first ``n`` held-out style images of the data card (never trained on), or of a folder."""
    if folder is not None:
        val = find_photos_in([folder])[:n]
    else:
        images, _ = find_images(load_sources("styles"), MIN_STYLE_SIDE)
        val = split_photos(images)[1][:n]
    return [(i, load_photo(p, 384)) for i, p in val]


def evaluate_videos(model_dir: Path, videos: list[Path], styles: list[str], references: int = 4,
                    max_frames: int = 48, unseen: bool = True, peer: bool = True, sheet: Path | None = None,
                    seed: int = 0, log=print, style_images: Path | None = None, noise: str | None = None,
                    smoothing: float | None = None) -> dict:
    ev = Evaluator(model_dir, seed, noise, smoothing)
    clips, skipped = [], []
    for v in videos:
        try:
            frames, fps = read_video(v, max_frames)
        except VideoError as e:
            log(f"skipped: {e}")
            skipped.append(str(e))
            continue
        clips.append(Clip(v.name, frames, ev.fit))
    if not clips:
        raise VideoError("none of the videos could be read: " + "; ".join(skipped))
    refs = held_out_style_images(references, style_images) if references else []
    report = {"model": str(model_dir), "model_name": ev.model.name, "videos": [c.name for c in clips],
              "skipped": skipped, "frames_per_video": max_frames,
              "noise": ev.stylizer.noise, "smoothing": ev.stylizer.smoother.strength,
              "output_size": list(clips[0].frames[0].shape[:2]),
              "source_flicker": {c.name: round(c.source_flicker, 3) for c in clips}, "styles": {}, "references": {}}
    t0 = time.perf_counter()
    sheet_rows: list[tuple[str, list[np.ndarray]]] = [("source", [c.frames[len(c.frames) // 2] for c in clips])]
    known_peer: dict[str, float] = {}  # a network style's target flicker is the per-frame network's own
    for name in styles:
        st = get_any_style(name)
        rows, tiles = [], []
        for c in clips:
            outs = ev.run(c, text=st.prompts[0])
            tg = [st.apply(f) for f in c.frames]
            rows.append(score(outs, tg, c))
            k = len(c.frames) // 2
            tiles += [outs[k], tg[k]]
        report["styles"][name] = _mean(rows)
        if name in PAINTERLY:
            known_peer[name] = report["styles"][name]["target_flicker"]
        sheet_rows.append((st.title, tiles))
        log(f"{name:16s} " + " ".join(f"{k} {v:.3g}" for k, v in report["styles"][name].items()))
    for ref_id, img in refs:
        rs = ReferenceStyle(img)
        rows, tiles = [], []
        for c in clips:
            outs = ev.run(c, reference=img)
            tg = [rs.apply(f) for f in c.frames]
            rows.append(score(outs, tg, c))
            k = len(c.frames) // 2
            tiles += [outs[k], tg[k]]
        report["references"][ref_id] = _mean(rows)
        known_peer["ref:" + ref_id] = report["references"][ref_id]["target_flicker"]
        sheet_rows.append(("ref " + Path(ref_id.split(":")[-1]).stem[:12], tiles))
        log(f"ref {ref_id[:40]:40s} " + " ".join(f"{k} {v:.3g}" for k, v in report["references"][ref_id].items()))
    report["mean_text"] = _mean(list(report["styles"].values()))
    report["mean_reference"] = _mean(list(report["references"].values()))
    report["mean_all"] = _mean(list(report["styles"].values()) + list(report["references"].values()))
    if styles:
        report["min_style_psnr"] = round(min(r["psnr"] for r in report["styles"].values()), 3)
        report["min_style_sharpness"] = round(min(r["sharpness"] for r in report["styles"].values()), 4)
    if unseen and len(styles) > 1:
        report["unseen_prompts"] = unseen_prompt_selection(ev, clips, styles)
    if peer:
        report["per_frame_network_flicker"] = per_frame_peer(clips, refs, known_peer)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    if sheet is not None:
        write_contact_sheet(sheet, sheet_rows, [c.name for c in clips], ev.model.name)
        report["contact_sheet"] = str(sheet)
    return report


def unseen_prompt_selection(ev: Evaluator, clips: list[Clip], styles: list[str], frames: int = 12) -> dict:
    """How often a held-out paraphrase renders the intended style: the style whose targets the output is
    closest to (mean PSNR over ``frames`` frames of every clip; one clip alone lets a bland scene, where
    several styles' targets look alike, decide). ``selected``: how often the model's prompt matching
    picked the intended style, which tells a misread prompt from a style rendered too weakly."""
    short = [Clip(c.name, c.full[:frames], ev.fit) for c in clips]
    targets = {n: [[get_any_style(n).apply(f) for f in c.frames] for c in short] for n in styles}
    hits, selected, total, misses = 0, 0, 0, []
    for n in styles:
        for prompt in get_any_style(n).held_out_prompts:
            outs = [ev.run(c, text=prompt) for c in short]
            match = ev.stylizer.prompt_match
            best = max(styles, key=lambda m: np.mean([psnr(o, t) for co, ct in zip(outs, targets[m])
                                                      for o, t in zip(co, ct)]))
            total += 1
            hits += best == n
            selected += match is not None and match.style == n
            if best != n:
                misses.append({"prompt": prompt, "intended": n, "rendered": best,
                               "selected": match.style if match else None})
    return {"hits": hits, "total": total, "rate": round(hits / max(total, 1), 3),
            "selected_rate": round(selected / max(total, 1), 3) if ev.model.vocabulary else None,
            "clips": [c.name for c in short], "misses": misses}


def per_frame_peer(clips: list[Clip], refs, known: dict[str, float] | None = None) -> dict:
    """Flicker (over the source's) of the per-frame networks on these videos: the figure a video model
    must beat. Fixed painterly styles and reference images, each network run on every frame (figures
    already measured as a target's own flicker are reused)."""
    known = known or {}

    def measure(style) -> float:
        return round(float(np.mean([flicker([style.apply(f) for f in c.frames], c.flows) / c.source_flicker
                                    for c in clips])), 3)

    out = {name: round(known[name], 3) if name in known else measure(st) for name, st in PAINTERLY.items()}
    for ref_id, img in refs:
        key = "ref:" + ref_id
        out[key] = round(known[key], 3) if key in known else measure(ReferenceStyle(img))
    out["mean"] = round(float(np.mean(list(out.values()))), 3)
    return out


def write_contact_sheet(path: Path, rows, video_names: list[str], model_name: str) -> None:
    """Rows: the source, then every style (model output above target, per video)."""
    tw, th = TILE
    label_w, head = 130, 24
    ncol = len(video_names)
    W = label_w + ncol * (tw + 4)
    blocks = []
    for label, tiles in rows:
        if label == "source":
            row = np.full((th + 4, W, 3), 255, np.uint8)
            for j, t in enumerate(tiles):
                x = label_w + j * (tw + 4)
                row[2:2 + th, x: x + tw] = cv2.resize(t, (tw, th), interpolation=cv2.INTER_AREA)
        else:
            row = np.full((2 * th + 8, W, 3), 255, np.uint8)
            for j in range(ncol):
                out, tgt = tiles[2 * j], tiles[2 * j + 1]
                x = label_w + j * (tw + 4)
                row[2:2 + th, x:x + tw] = cv2.resize(out, (tw, th), interpolation=cv2.INTER_AREA)
                row[th + 4:2 * th + 4, x:x + tw] = cv2.resize(tgt, (tw, th), interpolation=cv2.INTER_AREA)
            cv2.putText(row, "model", (4, th // 2 + 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (90, 90, 90), 1, cv2.LINE_AA)
            cv2.putText(row, "target", (4, th + th // 2 + 8), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (90, 90, 90), 1,
                        cv2.LINE_AA)
        cv2.putText(row, label[:16], (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        blocks.append(row)
    top = np.full((head, W, 3), 255, np.uint8)
    cv2.putText(top, f"{model_name}: held-out real video, model output above target", (4, 16),
                cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    sheet = np.concatenate([top] + blocks, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write the contact sheet {path}")


def format_table(r: dict) -> str:
    cols = ("psnr", "ssim", "sharpness", "flicker", "target_flicker", "structure")
    lines = [f"{'style':24s} " + " ".join(f"{c:>14s}" for c in cols)]
    refs = [(f"ref {k.split(':')[-1][:20]}", v) for k, v in r["references"].items()]
    for name, row in list(r["styles"].items()) + refs:
        lines.append(f"{name:24s} " + " ".join(f"{row[c]:14.3f}" for c in cols))
    for k in ("mean_text", "mean_reference", "mean_all"):
        if r.get(k):
            lines.append(f"{k:24s} " + " ".join(f"{r[k][c]:14.3f}" for c in cols))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="main.py eval --videos", description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=Path, nargs="?", const=DEFAULT_VIDEOS, default=DEFAULT_VIDEOS,
                    help="a folder of video files or one file (default: the bundled real clips)")
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR, help="model folder (default: embedded)")
    ap.add_argument("--styles", help="comma-separated styles (default: the model's trained styles)")
    ap.add_argument("--references", type=int, default=4, help="held-out style images to use as references")
    ap.add_argument("--style-images", type=Path,
                    help="folder of reference images (default: the data card's held-out ones)")
    ap.add_argument("--max-frames", type=int, default=48, help="frames read per video")
    ap.add_argument("--no-unseen", action="store_true", help="skip the unseen-paraphrase test")
    ap.add_argument("--no-peer", action="store_true", help="skip the per-frame network's flicker")
    ap.add_argument("--noise", choices=NOISE_MODES, help="noise per chunk (default: the model card's choice)")
    ap.add_argument("--smoothing", type=float,
                    help="temporal smoothing of the output latents, in [0, 1) (default: the model card's choice)")
    ap.add_argument("--json", type=Path, help="write the full report here")
    ap.add_argument("--sheet", type=Path, help="contact sheet PNG (default: beside --json, else eval_sheet.png)")
    a = ap.parse_args(argv)
    if a.max_frames < 4:
        ap.error(f"--max-frames must be at least 4, got {a.max_frames}")
    if a.smoothing is not None and not 0 <= a.smoothing < 1:
        ap.error(f"--smoothing must be in [0, 1), got {a.smoothing}")
    try:
        videos = find_videos(a.videos)
        model = load_model(a.model)
        styles = a.styles.split(",") if a.styles else (model.vocabulary.styles if model.vocabulary else [])
        for s in styles:
            get_any_style(s)
        sheet = a.sheet or (a.json.with_suffix(".png") if a.json else Path("eval_sheet.png"))
        r = evaluate_videos(a.model, videos, styles, a.references, a.max_frames, not a.no_unseen,
                            not a.no_peer, sheet, style_images=a.style_images, noise=a.noise,
                            smoothing=a.smoothing)
    except (FileNotFoundError, VideoError, KeyError, MissingExtraError, CheckpointError) as e:
        raise SystemExit(f"error: {str(e).strip(chr(39))}") from None
    print(format_table(r))
    print(json.dumps({k: v for k, v in r.items() if k not in ("styles", "references")}, indent=1))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(r, indent=1) + "\n")
    return 0
