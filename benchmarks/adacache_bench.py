"""AdaCache benchmark: speed and quality of the presets on still, slowly and fast moving scenes.

    python -m benchmarks.adacache_bench                      # embedded model (random tiny weights if absent)
    python -m benchmarks.adacache_bench --model runs/student --ablations

Clips are synthesised with ``model.train.motion.synth_clip`` from held-out (validation) photographs, one per
motion level (static, slow pan, fast motion), at the model's resolution. Every configuration streams the
same frames with the same seed; ``off`` is the plain engine. Per configuration and clip:

- ``skipped``: reused block computations / all block computations (the clean cache-write passes,
  which are never reused, included); ``skipped_denoise``: the same over the denoising passes only.
- ``fps``: frames / wall time of the whole stream (encode, DiT, decode), the best of ``--repeats`` runs
  (the machine may be shared); ``gain``: fps / fps of ``off`` on the same clip; ``cpu_gain``: the same
  ratio in process CPU time (steadier than wall time when other jobs share the cores); ``steady_fps`` /
  ``steady_gain``: wall figures after the first ``--warmup-chunks`` chunks (the ring filling up and the
  first caching decisions), what a long stream settles to.
- ``psnr_uncached``: PSNR (dB) of the output against the uncached (``off``) output over the whole clip
  (MSE of all frames; ``None``: identical). ``seed_floor_psnr``: the same for the plain engine with the
  next seed, i.e. how much the output varies with the sampling noise alone.
- ``psnr_target`` / ``target_loss_db``: clip PSNR against the style's exact filter (``STYLES[...].apply``) and
  its drop from ``off``.
- ``flicker``: mean flow-warped difference of consecutive output frames (flow from the source frames,
  ``model.train.metrics``); ``flicker_change``: the difference to ``off``.

Writes ``benchmarks/results/adacache_<name>.json`` and prints a markdown table.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
CASES = ("static", "slow", "fast")


def load(model_arg: str | None):
    """(LoadedModel, weights label): the given folder, else the embedded model, else random tiny weights."""
    from model.checkpoint import DEFAULT_MODEL_DIR, load_model

    folder = Path(model_arg) if model_arg else DEFAULT_MODEL_DIR
    if model_arg or folder.is_dir():
        return load_model(folder), str(folder)
    from benchmarks.stream_bench import random_model
    from model.config import ModelConfig

    return random_model(ModelConfig.named("tiny"), torch.device("cpu"), torch.float32), "random"


def make_clips(size, frames: int, seed: int, photo: str) -> dict[str, np.ndarray]:
    """Static, slow and fast clips over a held-out photo (an id of the validation split, or an image
    file); the moving cut-out comes from another held-out photo (or the mirrored image)."""
    from model.train.motion import synth_clip
    from model.train.photos import find_photos, load_photo, split_photos

    if Path(photo).is_file():
        main = load_photo(photo)
        other = [np.ascontiguousarray(main[::-1, ::-1])]
    else:
        _, val = split_photos(find_photos())
        names = [p[0] for p in val]
        if photo not in names:
            raise ValueError(f"--photo must be an image file or one of the held-out photos {names}")
        main = load_photo(dict(val)[photo])
        other = [load_photo(p) for n, p in val if n != photo][:1]
    clips = {}
    for i, motion in enumerate(CASES):
        rng = np.random.default_rng([seed, i])
        clips[motion] = synth_clip(rng, main, other, frames=frames, size=tuple(size), motion=motion,
                                   n_cutouts=0 if motion == "static" else 1)
    return clips


PRESETS = ("off", "slow", "fast")


def configs(ablations: bool) -> dict:
    from model.adacache import with_options

    out = {name: name for name in PRESETS}
    if ablations:
        out["fast-no-moreg"] = with_options("fast", name="fast-no-moreg", moreg=False, motion_guard=None)
        out["fast-fresh-noise"] = with_options("fast", name="fast-fresh-noise", lock_noise=False)
        out["steps"] = with_options("slow", name="steps", where="steps")
        out["steps-forced-2"] = with_options("slow", name="steps-forced-2", where="steps", force_rate=2)
    return out


def stream(stylizer, frames, skip_chunks: int = 0) -> tuple[list[np.ndarray], float, float, float, int]:
    """One fresh stream over ``frames``, pushed a chunk at a time: outputs, wall seconds, process CPU
    seconds, and the wall seconds and frames after the first ``skip_chunks`` chunks (steady state)."""
    stylizer.reset()
    frames = list(frames)
    out: list[np.ndarray] = []
    t0, c0 = time.perf_counter(), time.process_time()
    t_steady, n_steady, i, chunks = t0, 0, 0, 0
    while i < len(frames):
        n = stylizer.chunk_size
        got = stylizer.push(frames[i:i + n])
        i += n
        if not got and i >= len(frames):
            got = stylizer.flush()
        out += got
        chunks += 1 if got else 0
        if chunks == skip_chunks:
            t_steady = time.perf_counter()
        elif chunks > skip_chunks:
            n_steady += len(got)
    end = time.perf_counter()
    return out, end - t0, time.process_time() - c0, end - t_steady, n_steady


def clip_psnr(a, b) -> float | None:
    """PSNR (dB) of a whole clip: the MSE over all its frames (frames that are identical count as such,
    rather than as an arbitrary per-frame cap); None when the clips are identical."""
    mse = float(np.mean([np.mean((x.astype(np.float64) - y.astype(np.float64)) ** 2) for x, y in zip(a, b)]))
    return None if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def run(args) -> dict:
    from model.stylizer import StreamStylizer
    from model.train.metrics import flicker, flow_between
    from model.train.styles import STYLES

    torch.set_num_threads(args.threads)
    model, weights = load(args.model)
    cfg = model.config
    style = STYLES[args.style]
    clips = make_clips(cfg.resolution, args.frames, args.seed, args.photo)
    targets = {k: [style.apply(f) for f in v] for k, v in clips.items()}
    flows = {k: [flow_between(v[i - 1], v[i]) for i in range(1, len(v))] for k, v in clips.items()}
    setups = configs(args.ablations)
    stylizers = {}
    for name, mode in setups.items():
        s = StreamStylizer(model, seed=args.seed, adacache=mode)
        s.set_text(style.prompts[0])
        s.push(list(clips["static"][: 2 * s.chunk_size]))  # warm-up (allocations), then a fresh stream
        stylizers[name] = s
    other_seed = StreamStylizer(model, seed=args.seed + 1)  # sampling variation of the plain engine
    other_seed.set_text(style.prompts[0])

    rows: dict = {case: {} for case in CASES}
    for case in CASES:
        frames = clips[case]
        best = {name: float("inf") for name in setups}
        best_cpu, best_steady = dict(best), dict(best)
        outputs, stats = {}, {}
        for rep in range(args.repeats):
            for name, s in stylizers.items():  # interleaved, so that load changes hit every setup alike
                if rep and name not in PRESETS:
                    continue  # ablations are timed once
                out, secs, cpu, steady_s, steady_n = stream(s, frames, args.warmup_chunks)
                best[name], best_cpu[name] = min(best[name], secs), min(best_cpu[name], cpu)
                best_steady[name] = min(best_steady[name], steady_s)
                if rep == 0:
                    outputs[name] = out
                    st = s.adacache.stats
                    stats[name] = {**st.as_dict(), "decisions": [list(d) for d in st.decisions],
                                   "motion": [list(m) for m in st.motion],
                                   "dit_ms_per_frame": s.times.per_frame()["dit_ms"]}
        base = outputs["off"]
        base_target = clip_psnr(base, targets[case])
        base_flicker = flicker(base, flows[case])
        seed_floor = clip_psnr(stream(other_seed, frames)[0], base)
        for name in setups:
            out = outputs[name]
            fps = len(out) / best[name]
            steady_fps = steady_n / best_steady[name] if steady_n else None
            p_t = clip_psnr(out, targets[case])
            fl = flicker(out, flows[case])
            st = stats[name]
            rows[case][name] = {
                "skipped": st["skipped_fraction"], "skipped_denoise": st["denoise_skipped_fraction"],
                "fps": fps, "gain": fps / (len(base) / best["off"]), "cpu_gain": best_cpu["off"] / best_cpu[name],
                "steady_fps": steady_fps, "steady_gain": best_steady["off"] / best_steady[name] if steady_n else None,
                "seed_floor_psnr": seed_floor,
                "psnr_uncached": clip_psnr(out, base), "psnr_target": p_t, "target_loss_db": base_target - p_t,
                "flicker": fl, "flicker_change": fl - base_flicker, "seconds": best[name],
                "cpu_seconds": best_cpu[name], "frames": len(out), "timed_runs": args.repeats if name in PRESETS else 1,
                "dit_ms_per_frame": st["dit_ms_per_frame"], "adacache": st,
            }
        if not args.quiet:
            print(f"  {case}: done ({', '.join(f'{n} {best[n]:.2f} s' for n in setups)})", file=sys.stderr)
    return {
        "name": args.name,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "device": {"type": "cpu", "threads": torch.get_num_threads(), "torch": torch.__version__,
                   "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None},
        "settings": {"weights": weights, "trained": bool(model.card.get("trained")), "config": cfg.name,
                     "resolution": list(cfg.resolution), "steps": list(stylizers["off"].schedule.steps),
                     "chunk_latent_frames": cfg.chunk_frames, "window_latent_frames": cfg.window_frames,
                     "frames": args.frames, "repeats": args.repeats, "warmup_chunks": args.warmup_chunks,
                     "style": args.style,
                     "prompt": style.prompts[0], "photo": args.photo, "seed": args.seed,
                     "presets": {n: (m if isinstance(m, str) else repr(m)) for n, m in setups.items()}},
        "results": rows,
    }


def _x(v) -> str:
    return "-" if v is None else f"{v:.2f}x"


def table(result: dict) -> str:
    lines = ["| case | preset | skipped (all / denoise) | FPS | gain (wall / steady / CPU) | PSNR vs uncached "
             "| PSNR vs target (loss) | flicker (change) |", "|---|---|---|---|---|---|---|---|"]
    for case, per in result["results"].items():
        for name, r in per.items():
            if r["psnr_uncached"] is None:
                pu = "identical" + (f" (other seed: {r['seed_floor_psnr']:.2f} dB)" if r.get("seed_floor_psnr") else "")
            else:
                pu = f"{r['psnr_uncached']:.2f} dB"
            lines.append(f"| {case} | {name} | {100 * r['skipped']:.0f}% / {100 * r['skipped_denoise']:.0f}% "
                         f"| {r['fps']:.2f} | {r['gain']:.2f}x / {_x(r.get('steady_gain'))} / {r['cpu_gain']:.2f}x "
                         f"| {pu} | {r['psnr_target']:.2f} dB "
                         f"({r['target_loss_db']:+.2f}) | {r['flicker']:.2f} ({r['flicker_change']:+.2f}) |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="adacache_bench", description="AdaCache presets: speed and quality.")
    p.add_argument("--model", help="model folder (default: the embedded model; random tiny weights if absent)")
    p.add_argument("--frames", type=int, default=48, help="frames per clip (default 48)")
    p.add_argument("--repeats", type=int, default=2, help="timed runs per setup, the best counts (default 2)")
    p.add_argument("--style", default="ink_wash", help="built-in style whose filter is the target")
    p.add_argument("--photo", default="aitzgorri_by_Aitzol_Berasategi.jpg",
                   help="held-out photo id (validation split) or an image file for the clips")
    p.add_argument("--warmup-chunks", type=int, default=4,
                   help="chunks left out of the steady-state figures (window filling, first decisions)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--ablations", action="store_true",
                   help="also: fast without MoReg and guard, fast with fresh noise, reuse across steps")
    p.add_argument("--name", default="tiny_cpu", help="result name: benchmarks/results/adacache_<name>.json")
    p.add_argument("--out", help="JSON path (overrides --name)")
    p.add_argument("-q", "--quiet", action="store_true")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.frames < 4 or args.repeats < 1:
        print("error: --frames must be >= 4 and --repeats >= 1", file=sys.stderr)
        return 2
    try:
        with torch.no_grad():
            result = run(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else RESULTS_DIR / f"adacache_{args.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    s = result["settings"]
    print(f"AdaCache on {s['config']} ({s['weights']}, {s['resolution'][0]}x{s['resolution'][1]}, steps {s['steps']}, "
          f"{s['frames']} frames per clip, style {s['style']}):")
    print(table(result))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
