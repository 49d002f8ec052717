"""Style specifications shared by the CLI and the GUI: a prompt or a reference image, and schedules."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


@dataclass(frozen=True)
class StyleSpec:
    prompt: str | None = None
    reference: Path | None = None

    @classmethod
    def parse(cls, text: str) -> "StyleSpec":
        """An image path becomes a reference style; anything else is a prompt."""
        p = Path(text)
        if p.suffix.lower() in IMAGE_SUFFIXES:
            return cls(reference=p)
        return cls(prompt=text)

    def apply(self, stylizer) -> None:
        if self.reference is not None:
            stylizer.set_reference(self.reference, self.prompt)
        else:
            stylizer.set_text(self.prompt or "")

    def __str__(self) -> str:
        return f"reference {self.reference.name}" if self.reference else repr(self.prompt)


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
