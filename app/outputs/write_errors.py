"""What a failed video write reports: the error, and what it left on disk.

Shared by the MP4 writer (which raises and measures) and its callers (the recorder, the CLI and the
GUI export), which tell the user how much was saved and where.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass
from pathlib import Path

import av


@dataclass(frozen=True)
class SavedPart:
    """What a failed write left on disk (the file is cut back to its last whole fragment)."""
    frames: int
    duration: float
    bytes: int
    playable: bool
    path: Path | None = None  # where the saved file is (None when nothing was kept)

    def describe(self) -> str:
        if not self.frames:
            return "nothing could be saved"
        return f"the first {self.frames} frames ({self.duration:.1f} s, {_human_bytes(self.bytes)}) were saved"


class VideoWriteError(RuntimeError):
    """The output could not be written (bad path, disk full, encoder error).

    ``disk_full`` is set for ENOSPC/EDQUOT; ``saved`` describes the finalised partial file when the
    failure happened after writing began.
    """

    def __init__(self, message: str, *, disk_full: bool = False, saved: SavedPart | None = None):
        super().__init__(message)
        self.disk_full = disk_full
        self.saved = saved


def probe_saved(path: str | Path) -> SavedPart:
    """Count the video frames a (possibly partial) MP4 holds and how long they last, without decoding."""
    path = Path(path)
    size = path.stat().st_size if path.exists() else 0
    frames, end = 0, 0.0
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                return SavedPart(0, 0.0, size, False)
            s = c.streams.video[0]
            try:
                for p in c.demux(s):
                    if p.size == 0 or p.pts is None:
                        continue
                    frames += 1
                    end = max(end, float((p.pts + (p.duration or 0)) * p.time_base))
            except av.error.FFmpegError:
                pass  # a damaged tail: what came before it counts
    except (av.error.FFmpegError, OSError):
        return SavedPart(0, 0.0, size, False)
    return SavedPart(frames, end, size, frames > 0)


def is_disk_full(exc: BaseException) -> bool:
    return getattr(exc, "errno", None) in (errno.ENOSPC, getattr(errno, "EDQUOT", -1), errno.EFBIG)


def error_reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or exc.__class__.__name__


def _human_bytes(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"
