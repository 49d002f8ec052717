"""Style schedules for the CLI (``--switch``); the style type itself is ``model.style.StyleSpec``."""
from __future__ import annotations

from dataclasses import dataclass

from model.style import IMAGE_SUFFIXES, StyleSpec

__all__ = ["IMAGE_SUFFIXES", "ScheduledStyle", "StyleSpec", "parse_switch"]


@dataclass(frozen=True)
class ScheduledStyle:
    frame: int | None
    seconds: float | None
    style: StyleSpec

    def start_frame(self, fps: float) -> int:
        return self.frame if self.frame is not None else int(round(self.seconds * fps))


def parse_switch(text: str) -> ScheduledStyle:
    """'120:pencil sketch' (frame 120) or '4.5s:ref.png' (at 4.5 seconds)."""
    when, sep, style = text.partition(":")
    if not sep or not style.strip():
        raise ValueError(f"--switch expects FRAME:STYLE or SECONDSs:STYLE, got {text!r}")
    when = when.strip()
    try:
        if when.endswith("s"):
            seconds = float(when[:-1])
            if seconds < 0:
                raise ValueError
            return ScheduledStyle(None, seconds, StyleSpec.parse(style.strip()))
        frame = int(when)
        if frame < 0:
            raise ValueError
        return ScheduledStyle(frame, None, StyleSpec.parse(style.strip()))
    except ValueError:
        raise ValueError(f"--switch: {when!r} is not a frame number or a time like 2.5s") from None
