"""Offline render: every frame of a file through the stylizer into an MP4 (no drops), Qt-free.

Used by ``main.py stylize`` and by the GUI's "Export file..." (which runs it off the GUI thread and
reports progress through the callback).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .outputs.mp4 import Mp4Writer
from .sources.video_file import VideoFileReader, VideoReadError
from .styles import ScheduledStyle, StyleSpec


class RenderCancelled(Exception):
    pass


@dataclass
class RenderResult:
    frames_in: int
    frames_out: int
    seconds: float
    fps: float
    output: Path
    stage_ms: dict
    cancelled: bool = False


def render_file(stylizer, source: str | Path, output: str | Path, style: StyleSpec,
                switches: list[ScheduledStyle] = (), max_frames: int | None = None,
                progress: Callable[[int, int], None] | None = None,
                should_cancel: Callable[[], bool] | None = None) -> RenderResult:
    """Stylize ``source`` into ``output``; the style changes at the scheduled frames."""
    reader = VideoFileReader(source)
    total = reader.frame_count
    if max_frames:
        total = min(total, max_frames) if total else max_frames
    fps = float(reader.fps)
    schedule = sorted(((s.start_frame(fps), s.style) for s in switches), key=lambda x: x[0])
    style.apply(stylizer)
    stylizer.reset()
    writer = Mp4Writer(output, reader.fps)
    n_in = n_out = 0
    t0 = time.perf_counter()
    cancelled = False
    try:
        for _, frame in reader.frames():
            if max_frames and n_in >= max_frames:
                break
            if should_cancel and should_cancel():
                cancelled = True
                break
            while schedule and schedule[0][0] <= n_in:
                # styles switch on chunk boundaries: finish the frames before the switch first
                for out in stylizer.flush():
                    writer.write(out)
                    n_out += 1
                schedule.pop(0)[1].apply(stylizer)
            for out in stylizer.push(frame):
                writer.write(out)
                n_out += 1
            n_in += 1
            if progress:
                progress(n_in, total)
        for out in stylizer.flush():
            writer.write(out)
            n_out += 1
    finally:
        reader.close()
        writer.close()
    if n_in == 0:
        Path(output).unlink(missing_ok=True)
        raise VideoReadError(f"{Path(source).name} has no decodable frames")
    secs = time.perf_counter() - t0
    return RenderResult(n_in, n_out, secs, n_out / secs if secs else 0.0, Path(output),
                        stylizer.times.per_frame(), cancelled)
