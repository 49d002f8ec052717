"""Soak: the live path for a long time, to show that memory stays flat, speed steady, every style
switch lands and the recording of the whole run plays.

The bundled sample clip is looped into a ``StreamStylizer`` (the embedded model, as the app runs it)
as fast as it goes; every stylized frame is recorded by the live ``Recorder`` with its wall-clock
time; the style changes every ``--switch-seconds`` (gallery prompts and reference images in turn).
Every ``--sample-seconds`` the resident memory (RSS) and the frames/s since the last sample are
written down. At the end the recording is decoded with PyAV and its frames counted.

    python -m benchmarks.soak --minutes 62 --threads 1 --out benchmarks/results/soak-cpu-1h.json

Figures (JSON): ``samples`` (time, RSS MiB, frames/s, frames, switches, recorder queue/drops);
``summary``: RSS growth in MiB/min (least squares after the warm-up), frames/s trend (per hour, and
first vs last quarter), switches requested vs applied, recording frames vs decoded.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "resources" / "sample" / "sample.mp4"
GALLERY = ROOT / "resources" / "gallery"


def rss_mib() -> float:
    """Resident memory now (Linux /proc; elsewhere the peak, which can only show growth)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2 ** 20 if sys.platform == "darwin" else peak / 1024


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs (0 with fewer than two points)."""
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var if var else 0.0


def styles() -> list[tuple[str, str]]:
    """The switch cycle: every gallery preset's prompt, with the reference images in between."""
    presets = json.loads((GALLERY / "presets.json").read_text())
    prompts = [("text", p["prompt"]) for p in presets if p.get("prompt") and not p.get("reference")]
    refs = [("reference", str(GALLERY / p["reference"])) for p in presets if p.get("reference")]
    refs = refs or [("reference", str(p)) for p in sorted(GALLERY.glob("ref_*.jpg")) if "_thumb" not in p.name]
    cycle = []
    for i, p in enumerate(prompts):
        cycle.append(p)
        if refs and i % 4 == 3:
            cycle.append(refs[(i // 4) % len(refs)])
    return cycle


def load_clip(path: Path):
    from app.sources.video_file import VideoFileReader

    with VideoFileReader(path) as reader:
        return [frame for _, frame in reader.frames()], float(reader.fps)


def count_frames(path: Path) -> tuple[int, float]:
    """Decode every frame of the recording: (frames, time of the last one)."""
    import av

    n, last = 0, 0.0
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            n += 1
            last = float(f.time or 0.0)
    return n, last


def run(args) -> dict:
    import torch

    from app.outputs.recorder import Recorder
    from benchmarks.stream_bench import device_name
    from model.stylizer import StreamStylizer, load_image

    torch.set_num_threads(args.threads)
    frames, clip_fps = load_clip(Path(args.clip))
    stylizer = StreamStylizer(args.model, device="cpu", seed=0)
    cycle = styles()
    images = {v: load_image(v) for k, v in cycle if k == "reference"}  # read once, like the gallery

    def apply(style) -> None:
        kind, value = style
        if kind == "text":
            stylizer.set_text(value)
        else:
            stylizer.set_reference(images[value])

    def applied(style) -> bool:
        """The stylizer runs this style now (model.style.StyleSpec: the prompt, or the very image)."""
        kind, value = style
        now = stylizer.style
        if now is None or now.kind != kind:
            return False
        return now.prompt == value if kind == "text" else now.image is images[value]

    folder = Path(tempfile.mkdtemp(prefix="soak-")) if not args.recording else None
    recording = Path(args.recording) if args.recording else folder / "soak.mp4"
    recorder = Recorder(recording, fps_hint=max(1.0, args.fps_hint), queue_seconds=2.0)
    apply(cycle[0])
    requested, landed = 1, 0
    current = cycle[0]
    samples: list[dict] = []
    frames_out = submitted = 0
    t0 = time.monotonic()
    end = t0 + args.minutes * 60
    next_switch = t0 + args.switch_seconds
    next_sample = t0 + args.sample_seconds
    last_sample_t, last_sample_frames = t0, 0
    recorder.start()
    i = 0
    wait_landing = True
    print(f"soak: {args.minutes} min, {args.threads} thread(s), {len(frames)}-frame clip at {clip_fps:g} fps, "
          f"a switch every {args.switch_seconds:g} s over {len(cycle)} styles; recording to {recording}", flush=True)
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if now >= next_switch:  # between chunks, as the engine applies commands
            current = cycle[requested % len(cycle)]
            apply(current)
            requested += 1
            wait_landing = True
            next_switch += args.switch_seconds
        chunk = [frames[(i + k) % len(frames)] for k in range(stylizer.chunk_size)]
        i += len(chunk)
        out = stylizer.push(chunk)
        if out and wait_landing and applied(current):
            landed += 1  # the first chunk stylized with the new style came out
            wait_landing = False
        for frame in out:
            frames_out += 1
            submitted += recorder.submit(frame, None, time.monotonic())
        now = time.monotonic()
        if now >= next_sample:
            fps = (frames_out - last_sample_frames) / (now - last_sample_t)
            samples.append({"t_s": round(now - t0, 2), "rss_mib": round(rss_mib(), 2), "fps": round(fps, 3),
                            "frames": frames_out, "switches": requested, "recorder_queue": recorder.queued,
                            "recorder_dropped": recorder.dropped})
            last_sample_t, last_sample_frames = now, frames_out
            next_sample += args.sample_seconds
            if not args.quiet:
                print(f"{(now - t0) / 60:6.1f} min  RSS {samples[-1]['rss_mib']:8.1f} MiB  {fps:5.2f} frames/s  "
                      f"{requested} switches", flush=True)
    seconds = time.monotonic() - t0
    summary = recorder.stop()
    decoded, last_time = count_frames(summary.path)
    warm = [s for s in samples if s["t_s"] >= args.warmup_minutes * 60] or samples
    q = max(1, len(warm) // 4)
    fps_first, fps_last = (sum(s["fps"] for s in warm[:q]) / q, sum(s["fps"] for s in warm[-q:]) / q)
    result = {
        "name": Path(args.out).stem if args.out else "soak",
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": "python -m benchmarks.soak " + " ".join(sys.argv[1:]),
        "device": {"type": "cpu", "name": device_name(torch.device("cpu")), "cores": os.cpu_count(),
                   "threads": args.threads,
                   "torch": torch.__version__, "python": platform.python_version(),
                   "load_average_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None},
        "config": {"model": stylizer.model.name, "model_config": stylizer.cfg.name,
                   "resolution": list(stylizer.cfg.resolution), "steps": list(stylizer.schedule.steps),
                   "window_latent_frames": stylizer.window_frames, "chunk_video_frames": stylizer.chunk_size,
                   "clip": str(Path(args.clip).relative_to(ROOT) if Path(args.clip).is_relative_to(ROOT)
                               else args.clip), "clip_frames": len(frames),
                   "switch_seconds": args.switch_seconds, "sample_seconds": args.sample_seconds,
                   "warmup_minutes": args.warmup_minutes, "styles": [v if k == "text" else Path(v).name
                                                                     for k, v in cycle]},
        "samples": samples,
        "summary": {
            "minutes": round(seconds / 60, 2), "frames": frames_out, "fps_mean": round(frames_out / seconds, 3),
            "rss_start_mib": warm[0]["rss_mib"] if warm else None, "rss_end_mib": warm[-1]["rss_mib"] if warm else None,
            "rss_growth_mib_per_min": round(slope([s["t_s"] / 60 for s in warm], [s["rss_mib"] for s in warm]), 4),
            "fps_trend_per_hour": round(60 * slope([s["t_s"] / 60 for s in warm], [s["fps"] for s in warm]), 4),
            "fps_first_quarter": round(fps_first, 3), "fps_last_quarter": round(fps_last, 3),
            "switches_requested": requested, "switches_applied": landed,
            "switch_pending_at_end": wait_landing,
            "recording": {"frames_submitted": submitted, "frames_dropped": summary.dropped,
                          "frames_in_file": summary.frames, "frames_decoded": decoded,
                          "duration_s": round(summary.duration, 2), "last_frame_time_s": round(last_time, 2),
                          "bytes": summary.bytes, "error": summary.error},
        },
    }
    s = result["summary"]
    # a switch asked for in the last chunk before the end may not have had a chunk yet: not a failure
    switches_ok = landed == requested or (landed == requested - 1 and wait_landing)
    s["checks"] = {
        "memory_growth_under_1_mib_per_min": s["rss_growth_mib_per_min"] < 1.0,
        "every_switch_applied": switches_ok,
        "recording_plays_whole": decoded == summary.frames == submitted and summary.error is None
                                 and last_time >= seconds - 30,
    }
    if folder is not None and not args.keep_recording:
        summary.path.unlink(missing_ok=True)
        folder.rmdir()
    else:
        s["recording"]["path"] = str(summary.path)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=60.0, help="how long to run (default 60)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--out", help="JSON result (default benchmarks/results/soak-cpu-<minutes>min.json)")
    p.add_argument("--model", help="model folder (default: the embedded model)")
    p.add_argument("--clip", default=str(SAMPLE), help="the clip to loop (default: the bundled sample)")
    p.add_argument("--switch-seconds", type=float, default=10.0)
    p.add_argument("--sample-seconds", type=float, default=10.0)
    p.add_argument("--warmup-minutes", type=float, default=1.0, help="left out of the trends (default 1)")
    p.add_argument("--fps-hint", type=float, default=10.0, help="the recorder's expected frame rate")
    p.add_argument("--recording", help="keep the recording here (default: a temporary file, checked, deleted)")
    p.add_argument("--keep-recording", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    args = p.parse_args(argv)
    if not args.minutes > 0 or args.threads < 1 or not args.switch_seconds > 0 or not args.sample_seconds > 0:
        p.error("--minutes, --threads, --switch-seconds and --sample-seconds must be positive")
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"soak-cpu-{args.minutes:g}min.json"
    args.out = str(out)
    result = run(args)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    s = result["summary"]
    print(f"wrote {out}: {s['minutes']} min, {s['frames']} frames, {s['fps_mean']} frames/s "
          f"(first quarter {s['fps_first_quarter']}, last {s['fps_last_quarter']}); RSS "
          f"{s['rss_growth_mib_per_min']:+.3f} MiB/min; switches {s['switches_applied']}/{s['switches_requested']}; "
          f"recording {s['recording']['frames_decoded']} frames decoded of {s['recording']['frames_submitted']} "
          f"submitted; checks {s['checks']}")
    return 0 if all(s["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
