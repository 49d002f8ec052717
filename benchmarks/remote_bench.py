"""Local engine versus the same engine behind ``main.py serve`` on loopback, in one run.

    python -m benchmarks.remote_bench                      # embedded model, CPU, 320x192 and 640x360
    python -m benchmarks.remote_bench --device cuda --resolutions 480x832 --threads 8

A camera is simulated: a moving texture, ``--capture-fps`` frames a second, each stamped with its
capture time. Each row is a size: a model that renders at the source's size (the embedded one) gets a
camera of that size and works at its own rule, as in the app; any other model gets a 640x360 camera
and that working size (a multiple of its 16 pixels). Each row is measured with the in-process
``LiveEngine`` and with a ``RemoteEngine`` driving a ``main.py serve`` child process over WebRTC on
127.0.0.1 (both with the same torch threads), alternating ``--repeats`` times so that a change in the
machine's load hits both. After a warm-up, for ``--seconds``:

- ``fps``: stylized frames delivered per second.
- ``capture_to_display_ms`` p50/p99: from a frame's capture to the moment the engine hands it to the
  display callback (``EngineEvents.on_frames``; the window's pacer then spreads a chunk's frames out).
- remote only: ``rtt_ms`` (a ping's round trip on the data channel), ``server_ms`` (a frame's time in
  the server's engine) and ``network_ms`` (its round trip less that: video encode, transport, decode);
  ``server_dropped`` (sent frames the server's engine dropped for newer ones) and ``upload_paced``
  (captured frames the client did not send, ``app/remote/upload_pacing.py``).

Then ``--connects`` clients connect and leave one after another; the server's resident memory is read
(after a garbage collection) after the first tenth and at the end: it should stay flat.

JSON in ``benchmarks/results/``.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.engine import EngineEvents, LiveEngine, LoadRequest  # noqa: E402
from app.remote.client import RemoteEngine  # noqa: E402
from model.style import StyleSpec  # noqa: E402

BARS = {"fps_ratio_min": 0.90, "added_p50_ms_max": 40.0}


class Collector(EngineEvents):
    """Arrival time and capture timestamp of every stylized frame handed to the display."""

    def __init__(self):
        self.arrivals: list[tuple[float, float]] = []
        self.lock = threading.Lock()

    def on_frames(self, frames) -> None:
        now = time.perf_counter()
        with self.lock:
            self.arrivals.extend((now, f.timestamp) for f in frames)

    def window(self, start: float, end: float) -> list[tuple[float, float]]:
        with self.lock:
            return [a for a in self.arrivals if start <= a[0] < end]


def camera_frames(n: int = 90, height: int = 360, width: int = 640, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 8 + n, width // 8 + n, 3), dtype=np.uint8)
    big = np.repeat(np.repeat(small, 8, axis=0), 8, axis=1)
    return [np.ascontiguousarray(big[i * 3: i * 3 + height, i * 4: i * 4 + width]) for i in range(n)]


class Camera:
    """Submits frames at a fixed rate on its own thread, stamped at submission (the capture time)."""

    def __init__(self, engine, fps: float, frames: list[np.ndarray]):
        self.engine, self.period, self.frames = engine, 1.0 / fps, frames
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="bench-camera", daemon=True)
        self.submitted = 0

    def _run(self) -> None:
        t0 = time.perf_counter()
        i = 0
        while not self._stop.is_set():
            delay = t0 + i * self.period - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            self.engine.submit(self.frames[i % len(self.frames)], time.perf_counter())
            self.submitted += 1
            i += 1

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self.thread.join(5)


def pct(values, q):
    return float(np.percentile(values, q)) if len(values) else None


def measure(engine, events: Collector, args, camera: tuple[int, int]) -> dict:
    frames = camera_frames(height=camera[0], width=camera[1])
    with Camera(engine, args.capture_fps, frames) as cam:
        time.sleep(args.warmup)
        start = time.perf_counter()
        time.sleep(args.seconds)
        end = time.perf_counter()
        submitted = cam.submitted
    got = events.window(start, end)
    lat = [(a - c) * 1000 for a, c in got]
    return {"frames": len(got), "seconds": end - start, "fps": len(got) / (end - start),
            "capture_to_display_ms": {"p50": pct(lat, 50), "p99": pct(lat, 99), "mean": float(np.mean(lat)) if lat
                                      else None},
            "frames_captured": submitted}


def run_local(model: str | None, row: "Row", args) -> dict:
    events = Collector()
    engine = LiveEngine(events)
    engine.start()
    try:
        engine.set_style(StyleSpec(prompt=args.prompt), "bench")
        engine.load(LoadRequest(folder=model, device=args.device, resolution=row.resolution,
                                cpu_threads=args.threads)).result(600)
        result = measure(engine, events, args, row.camera)
        stats = engine.stats()
        result["stages_ms_per_frame"] = {k: stats.get(k) for k in ("encode_ms", "dit_ms", "decode_ms")}
        return result
    finally:
        engine.stop()


def run_remote(url: str, token: str, row: "Row", args) -> dict:
    events = Collector()
    engine = RemoteEngine(url, token, events)
    engine.start()
    try:
        engine.set_style(StyleSpec(prompt=args.prompt), "bench")
        engine.load(LoadRequest(device=args.device, resolution=row.resolution)).result(600)
        result = measure(engine, events, args, row.camera)
        stats = engine.stats()
        result["stages_ms_per_frame"] = {k: stats.get(k) for k in ("encode_ms", "dit_ms", "decode_ms")}
        for key in ("rtt_ms", "server_ms", "network_ms"):
            result[key] = stats.get(key)
        for key in ("server_dropped", "upload_paced"):
            result[key] = stats.get(key)
        return result
    finally:
        engine.stop()


class ServerProcess:
    def __init__(self, args, token_file: Path):
        cmd = [sys.executable, str(ROOT / "main.py"), "serve", "--device", args.device, "--port", "0",
               "--token-file", str(token_file)]
        if args.model:
            cmd += ["--model", args.model]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=str(ROOT))
        found: queue.Queue = queue.Queue()
        self.lines: list[str] = []

        def read():
            for line in self.proc.stdout:
                self.lines.append(line.rstrip())
                m = re.search(r"at (http://127\.0\.0\.1:\d+) ", line)
                if m:
                    found.put(m.group(1))
            found.put(None)
        threading.Thread(target=read, daemon=True).start()
        self.url = found.get(timeout=600)
        if self.url is None:
            raise RuntimeError("the server did not start:\n" + "\n".join(self.lines[-10:]))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def server_status(url: str, token: str) -> dict:
    import asyncio

    import aiohttp

    async def go():
        async with aiohttp.ClientSession() as s:
            async with s.get(url + "/status?gc=1", headers={"Authorization": f"Bearer {token}"}) as r:
                return await r.json()
    return asyncio.run(go())


def connect_cycles(url: str, token: str, n: int) -> dict:
    """``n`` clients connect and leave; the server's memory after the first tenth and at the end."""
    marks = {}
    t0 = time.perf_counter()
    first = max(1, n // 10)
    marks[0] = server_status(url, token)["rss_mib"]
    for i in range(1, n + 1):
        engine = RemoteEngine(url, token, backoff_s=(0.1, 0.5))
        engine.start()
        deadline = time.monotonic() + 60
        while not engine.connected:
            if time.monotonic() > deadline:
                raise RuntimeError(f"connect {i} did not succeed: {engine.state_detail}")
            time.sleep(0.01)
        engine.stop()
        deadline = time.monotonic() + 30
        while server_status(url, token)["busy"]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"session {i} did not end on the server")
            time.sleep(0.02)
        if i in (first, n):
            marks[i] = server_status(url, token)["rss_mib"]
    end = server_status(url, token)
    growth = (marks[n] - marks[first]) / (n - first) if n > first else None
    return {"connects": n, "seconds": time.perf_counter() - t0, "rss_mib": marks,
            "rss_growth_kib_per_connect_after_first_tenth": growth * 1024 if growth is not None else None,
            "sessions_alive_at_end": end["sessions_alive"], "sessions_served": end["sessions_served"]}


def parse_resolutions(text: str) -> list[tuple[int, int]]:
    """'320x192,640x360' (width x height) -> [(192, 320), (360, 640)]."""
    out = []
    for part in text.split(","):
        w, h = (int(v) for v in part.lower().split("x"))
        out.append((h, w))
    return out


class Row(NamedTuple):
    size: tuple[int, int]  # (height, width), as reported
    camera: tuple[int, int]  # the simulated camera's frames
    resolution: tuple[int, int] | None  # the working size requested (None: the model's own rule)


def plan_rows(sizes: list[tuple[int, int]], source_size: bool) -> list[Row]:
    """A source-size model is measured as the app runs it: a camera of each size, no override. Others
    work at each size (rounded up to their 16 pixels) from a 640x360 camera."""
    if source_size:
        return [Row(hw, hw, None) for hw in sizes]
    return [Row(hw, (360, 640), (-(-hw[0] // 16) * 16, -(-hw[1] // 16) * 16)) for hw in sizes]


def renders_at_source_size(model: str | None) -> bool:
    from model.checkpoint import DEFAULT_MODEL_DIR
    from model.config import ModelConfig

    return ModelConfig.load(Path(model or DEFAULT_MODEL_DIR) / "config.json").vae == "guided"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="remote_bench", description="Local engine vs the same engine over loopback "
                                "WebRTC (main.py serve): frames/s and capture-to-display latency.")
    p.add_argument("--model", help="model folder (default: the embedded model)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--resolutions", default="320x192,640x360",
                   help="sizes, WxH, comma-separated: the camera's for a model that renders at the source's size")
    p.add_argument("--seconds", type=float, default=20.0, help="measured seconds per run (default 20)")
    p.add_argument("--warmup", type=float, default=4.0, help="seconds streamed before measuring (default 4)")
    p.add_argument("--repeats", type=int, default=1, help="local/remote pairs per resolution (default 1)")
    p.add_argument("--capture-fps", type=float, default=30.0)
    p.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) - 1),
                   help="torch threads, locally and on the server (default: all cores but one, like the app)")
    p.add_argument("--connects", type=int, default=100, help="connect/disconnect cycles for the leak check (0: skip)")
    p.add_argument("--prompt", default="ink wash painting")
    p.add_argument("--out", help="JSON path (default benchmarks/results/remote-<model>-<device>.json)")
    return p


def summarize(runs: list[dict]) -> dict:
    keys = ("fps",)
    out = {k: float(np.mean([r[k] for r in runs])) for k in keys}
    for q in ("p50", "p99"):
        out[f"capture_to_display_{q}_ms"] = float(np.mean([r["capture_to_display_ms"][q] for r in runs]))
    for k in ("rtt_ms", "server_ms", "network_ms"):
        vals = [r[k] for r in runs if r.get(k) is not None]
        if vals:
            out[k] = float(np.mean(vals))
    return out


def main(argv: list[str] | None = None) -> int:
    import secrets
    import tempfile

    import aiortc
    import av
    import torch

    args = build_parser().parse_args(argv)
    rows = plan_rows(parse_resolutions(args.resolutions), renders_at_source_size(args.model))
    torch.set_num_threads(args.threads)
    load_start = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    token = secrets.token_urlsafe(24)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        token_file = Path(tmp) / "token"
        token_file.write_text(token)
        server = ServerProcess(args, token_file)
        try:
            for row in rows:
                res = row.size
                local_runs, remote_runs = [], []
                for rep in range(args.repeats):
                    order = ("local", "remote") if rep % 2 == 0 else ("remote", "local")
                    for mode in order:
                        print(f"{res[1]}x{res[0]} {mode} (run {rep + 1}/{args.repeats})...", file=sys.stderr,
                              flush=True)
                        if mode == "local":
                            local_runs.append(run_local(args.model, row, args))
                        else:
                            remote_runs.append(run_remote(server.url, token, row, args))
                local, remote = summarize(local_runs), summarize(remote_runs)
                entry = {"resolution": list(res), "camera": list(row.camera),
                         "working_size_requested": list(row.resolution) if row.resolution else "the model's own",
                         "local": local, "remote": remote,
                         "remote_vs_local": {
                             "fps_ratio": remote["fps"] / local["fps"] if local["fps"] else None,
                             "added_p50_ms": remote["capture_to_display_p50_ms"] - local["capture_to_display_p50_ms"],
                             "added_p99_ms": remote["capture_to_display_p99_ms"] - local["capture_to_display_p99_ms"]},
                         "runs": {"local": local_runs, "remote": remote_runs}}
                rv = entry["remote_vs_local"]
                rv["meets_bars"] = bool(rv["fps_ratio"] is not None and rv["fps_ratio"] >= BARS["fps_ratio_min"]
                                        and rv["added_p50_ms"] <= BARS["added_p50_ms_max"])
                results.append(entry)
                print(f"{res[1]}x{res[0]}: local {local['fps']:.2f} FPS, p50 {local['capture_to_display_p50_ms']:.0f} "
                      f"ms; remote {remote['fps']:.2f} FPS, p50 {remote['capture_to_display_p50_ms']:.0f} ms "
                      f"(ratio {rv['fps_ratio']:.2f}, +{rv['added_p50_ms']:.0f} ms)", file=sys.stderr, flush=True)
            leak = connect_cycles(server.url, token, args.connects) if args.connects > 0 else None
        finally:
            server.stop()
    from benchmarks.stream_bench import device_name

    result = {
        "name": "remote-vs-local",
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "device": {"type": args.device, "name": device_name(torch.device(args.device)), "threads": args.threads,
                   "cores": os.cpu_count(), "torch": torch.__version__, "aiortc": aiortc.__version__,
                   "av": av.__version__, "python": platform.python_version(),
                   "load_average_at_start": load_start,
                   "load_average_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None},
        "settings": {"model": args.model or "embedded (resources/models/default)", "capture_fps": args.capture_fps,
                     "seconds": args.seconds, "warmup_s": args.warmup,
                     "repeats": args.repeats, "prompt": args.prompt, "transport": "WebRTC over 127.0.0.1 (aiortc "
                     "default codec, VP8), server in a child process", "display": "frames handed to on_frames"},
        "bars": BARS,
        "results": results,
        "leak_check": leak,
    }
    name = Path(args.model).name if args.model else "tiny-default"
    out = Path(args.out) if args.out else RESULTS_DIR / f"remote-{name}-{args.device.split(':')[0]}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    if leak:
        print(f"leak check: {leak['connects']} connects, server RSS {leak['rss_mib']}, "
              f"{leak['sessions_alive_at_end']} sessions alive", file=sys.stderr)
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
