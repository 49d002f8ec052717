"""The file object the MP4 writer hands PyAV: it reaches the disk one whole fragment at a time.

This is what makes a killed or failed recording playable up to its last fragment, so it is kept
small and on its own (the writer decides when to commit, cut back and release it).
"""
from __future__ import annotations

import errno
import os
from typing import BinaryIO


class FragmentFile:
    """The file object PyAV writes through.

    Bytes are held in memory until the writer commits them after a mux call, so each fragment
    reaches the disk in one system call (a process killed mid-fragment is all but impossible), and
    ``size`` is always the end of the last whole fragment. It has no ``close``, so PyAV leaves
    closing (and cutting back after an error) to the writer.
    """

    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self.pos = 0
        self.size = 0  # bytes committed to the file
        self._pending = bytearray()
        self._pending_at = 0  # file offset of the first pending byte

    def write(self, data) -> int:
        if not self._pending:
            self._pending_at = self.pos
        self._pending += data
        self.pos += len(data)
        return len(data)

    def commit(self) -> None:
        """Write the pending bytes (retrying short writes); OSError (ENOSPC...) if the disk refuses."""
        if not self._pending:
            return
        if self.raw.tell() != self._pending_at:
            self.raw.seek(self._pending_at)
        view = memoryview(bytes(self._pending))  # immutable: a failed write cannot pin the buffer
        done = 0
        while done < len(view):
            n = self.raw.write(view[done:])
            if not n:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            done += n
        self.size = max(self.size, self._pending_at + len(self._pending))
        self._pending.clear()

    def seek(self, offset: int, whence: int = 0) -> int:
        self.commit()
        self.pos = self.raw.seek(offset, whence)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def seekable(self) -> bool:
        return True

    def cut(self, size: int) -> None:
        """Drop anything not committed and truncate the file to ``size`` bytes."""
        self._pending.clear()
        self.raw.truncate(size)
        self.size = size

    def release(self) -> None:
        self.raw.close()
