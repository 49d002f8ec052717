"""Where an output file may go, and how it gets there without ever damaging a file on disk.

- ``check_output``: the output is resolved (symlinks, ``..``, another spelling) and compared with every
  input (the video, each reference image) before anything is opened for writing, hard links included;
  an existing output must be a writable file, its folder must exist.
- ``PartialFile``: the writer writes to a new file beside the target (``take.3fa9c1.partial.mp4``) and
  the target is replaced in one step (``os.replace``) only once the file is finished or stopped, so an
  existing file is never half-overwritten. A process that is killed leaves the partial file, which
  plays up to its last whole fragment (see ``mp4.Mp4Writer``).
"""
from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path
from typing import Iterable


class OutputPathError(ValueError):
    """An output path that must not be written (it is an input, a folder, read-only...)."""


def _same_file(a: str, b: str) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)  # hard links, bind mounts, case-insensitive file systems
    except OSError:
        return False


def check_output(output: str | Path, inputs: Iterable[tuple[str, str | Path | None]] = ()) -> Path:
    """Refuse an output that is one of the ``inputs`` ((what, path) pairs, e.g. ("the input video", p)),
    a folder, a read-only file or in a missing folder. Returns the resolved target path."""
    output = Path(output)
    for what, path in inputs:
        if path is not None and os.path.exists(path) and _same_file(str(output), str(path)):
            raise OutputPathError(f"the output {output} is {what} ({path}); choose another output file")
    target = Path(os.path.realpath(output))
    if not target.parent.is_dir():
        raise OutputPathError(f"output folder does not exist: {output.parent}")
    if target.is_dir():
        raise OutputPathError(f"the output is a folder: {output}")
    # no write bit at all counts too: someone protected the file (root may write it all the same)
    if target.exists() and (not os.access(target, os.W_OK) or not target.stat().st_mode & 0o222):
        raise OutputPathError(f"the output {output} is read-only; choose another file or make it writable")
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"cannot write in {output.parent}: permission denied")
    return target


class PartialFile:
    """A new, uniquely named file beside ``target`` that becomes ``target`` on ``commit``."""

    def __init__(self, target: str | Path):
        self.target = Path(os.path.realpath(target))
        existed = self.target.exists()
        self._mode = stat.S_IMODE(self.target.stat().st_mode) if existed else None
        stem, suffix = self.target.stem, self.target.suffix
        while True:
            path = self.target.with_name(f"{stem}.{secrets.token_hex(3)}.partial{suffix}")
            try:  # O_EXCL: never reuse a file; 0o666 lets the umask decide, as for any new file
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
                break
            except FileExistsError:
                continue
        self.path = path
        self.committed = False

    @property
    def target_exists(self) -> bool:
        return self.target.exists()

    def commit(self) -> Path:
        """Replace the target with the finished file (an existing target keeps its permissions)."""
        if self._mode is not None:
            try:
                os.chmod(self.path, self._mode)
            except OSError:
                pass
        os.replace(self.path, self.target)
        self.committed = True
        return self.target

    def discard(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
