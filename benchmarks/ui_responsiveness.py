"""How quickly the desktop app's event loop answers while the engine stylizes live.

    python -m benchmarks.ui_responsiveness                       # embedded model, sample clip, 20 s a phase
    python -m benchmarks.ui_responsiveness --slow-ms 500 --name slow-model

The real main window runs (off screen unless a display is set) on the sample clip. Once the first
stylized frame is shown, the event loop is probed for ``--seconds``: every ``--every-ms`` a 10 ms
single-shot Qt timer is started and the time it really took is recorded; its lateness (taken - 10 ms)
is how long anything the person does (a click, a key, a redraw) would have waited. With ``--slow-ms`` a
second phase makes every model call that much slower: a window that waited on the model would show it
in this figure. This replaces a timed assertion in the tests: tests/test_gui.py only tells a loop that
turns from one that waits on the model; the figure itself lives here.

Figures (JSON in ``benchmarks/results/ui_responsiveness-<name>.json``), per phase: probe lateness
p50/p95/p99/max (ms), probes taken, stylized frames shown per second and capture-to-display latency.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PROBE_MS = 10


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    import numpy as np

    return float(np.percentile(values, q))


async def _probe(seconds: float, every_ms: int) -> list[float]:
    """Lateness (ms) of a 10 ms single-shot timer, started every ``every_ms`` for ``seconds``."""
    from PySide6.QtCore import QElapsedTimer, QTimer

    late: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        timer, done = QElapsedTimer(), asyncio.get_event_loop().create_future()
        timer.start()
        QTimer.singleShot(PROBE_MS, lambda t=timer, d=done: d.done() or d.set_result(t.nsecsElapsed() / 1e6))
        late.append(await done - PROBE_MS)
        await asyncio.sleep(every_ms / 1000)
    return late


async def _phase(window, seconds: float, every_ms: int) -> dict:
    d = window.display
    shown0, t0 = window.stylized_view.frames_shown, time.perf_counter()
    d.latency.reset()
    late = await _probe(seconds, every_ms)
    elapsed = time.perf_counter() - t0
    return {"probes": len(late), "lateness_ms": {"p50": _pct(late, 50), "p95": _pct(late, 95), "p99": _pct(late, 99),
                                                 "max": max(late) if late else None},
            "stylized_fps_shown": (window.stylized_view.frames_shown - shown0) / elapsed,
            "latency_ms": {"mean": d.latency.mean_ms(), "max": d.latency.max_ms()},
            "dropped_after_model": window.worker.stats().get("display_skipped", 0) + d.pacer.dropped}


def run(args) -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen" if not os.environ.get("DISPLAY") else "xcb")
    import qasync
    import torch
    from PySide6.QtWidgets import QApplication

    from app.ui.main_window import SAMPLE_CLIP, MainWindow
    from app.ui.settings import AppSettings

    app = QApplication.instance() or QApplication([sys.argv[0]])
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    result: dict = {}
    with tempfile.TemporaryDirectory(prefix="rtr-ui-bench-") as tmp:
        window = MainWindow(settings=AppSettings(path=Path(tmp) / "settings.ini"), model_dir=args.model,
                            source=str(args.source or SAMPLE_CLIP), device=args.device, data_dir=Path(tmp) / "data")
        window.resize(1200, 760)

        async def drive() -> None:
            window.show()
            window.start()
            deadline = time.monotonic() + 300
            while window.stylized_view.frames_shown < 1:
                if time.monotonic() > deadline or window.banners.text("model"):
                    raise RuntimeError(f"no stylized frame: {window.banners.all_text() or 'timed out'}")
                await asyncio.sleep(0.05)
            await asyncio.sleep(args.warmup)
            result["live"] = await _phase(window, args.seconds, args.every_ms)
            if args.slow_ms:
                st = window.worker.stylizer
                real_push = st.push

                def slow_push(frames):
                    time.sleep(args.slow_ms / 1000)
                    return real_push(frames)

                st.push = slow_push
                result["slow_model"] = await _phase(window, args.seconds, args.every_ms)
                st.push = real_push

        try:
            loop.run_until_complete(drive())
            info = window.model_info
        finally:
            window.close()
            loop.run_until_complete(asyncio.sleep(0.05))
            loop.close()
            asyncio.set_event_loop(None)
    return {
        "name": args.name,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "device": {"type": info.device, "name": info.device_label, "cpu": platform.processor() or platform.machine(),
                   "cores": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version(),
                   "qt_platform": QApplication.platformName(),
                   "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None},
        "settings": {"model": info.name, "resolution": list(info.resolution), "chunk_frames": info.chunk_size,
                     "source": str(args.source or SAMPLE_CLIP), "seconds_per_phase": args.seconds,
                     "probe_ms": PROBE_MS, "probe_every_ms": args.every_ms, "warmup_s": args.warmup,
                     "slow_model_ms": args.slow_ms or None},
        "figures": result,
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ui_responsiveness", description="Event-loop responsiveness of the desktop "
                                "app while it stylizes live.")
    p.add_argument("--model", help="model folder (default: the embedded model)")
    p.add_argument("--source", help="video file (default: the sample clip)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, ... (default cpu)")
    p.add_argument("--seconds", type=float, default=20.0, help="probing time per phase (default 20)")
    p.add_argument("--every-ms", type=int, default=50, help="time between probes (default 50)")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds after the first frame before probing")
    p.add_argument("--slow-ms", type=int, default=0, help="also probe with every model call this much slower")
    p.add_argument("--name", default="cpu", help="result name: benchmarks/results/ui_responsiveness-<name>.json")
    p.add_argument("--out", help="write the JSON here instead")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    report = run(args)
    out = Path(args.out) if args.out else RESULTS_DIR / f"ui_responsiveness-{args.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    for phase, f in report["figures"].items():
        lat = f["lateness_ms"]
        print(f"{phase}: event loop late by p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms, max {lat['max']:.1f} ms "
              f"over {f['probes']} probes; {f['stylized_fps_shown']:.1f} stylized frames/s shown")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
