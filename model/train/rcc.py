"""Read files out of a Qt binary resource (``.rcc``) without Qt.

Why: some packages (GCompris) ship their photographs inside ``.rcc`` archives, and ``model/`` must not
import Qt. The format is small: a header, a tree of 22-byte nodes, a names table (UTF-16) and a data
table; a file is stored raw, zlib-compressed (qCompress) or zstd-compressed.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

_COMPRESSED, _DIRECTORY, _ZSTD = 1, 2, 4


class RccError(ValueError):
    pass


def read_rcc(path) -> dict[str, bytes]:
    """Every file of the archive as {path inside the archive: bytes} (zstd entries are skipped)."""
    buf = Path(path).read_bytes()
    if buf[:4] != b"qres":
        raise RccError(f"{path}: not a Qt resource file")
    version, tree, data, names = struct.unpack(">4I", buf[4:20])
    if version < 2:
        raise RccError(f"{path}: resource format version {version} is not supported")
    node = 22

    def name_at(off: int) -> str:
        (n,) = struct.unpack(">H", buf[names + off: names + off + 2])
        return buf[names + off + 6: names + off + 6 + 2 * n].decode("utf-16-be")

    out: dict[str, bytes] = {}

    def walk(index: int, prefix: str) -> None:
        base = tree + index * node
        name_off, flags = struct.unpack(">IH", buf[base: base + 6])
        name = name_at(name_off) if index else ""
        full = f"{prefix}/{name}" if name else prefix
        if flags & _DIRECTORY:
            count, first = struct.unpack(">II", buf[base + 6: base + 14])
            for child in range(first, first + count):
                walk(child, full)
            return
        (off,) = struct.unpack(">I", buf[base + 10: base + 14])
        (size,) = struct.unpack(">I", buf[data + off: data + off + 4])
        blob = buf[data + off + 4: data + off + 4 + size]
        if flags & _ZSTD:
            return
        out[full.lstrip("/")] = zlib.decompress(blob[4:]) if flags & _COMPRESSED else blob

    walk(0, "")
    return out


def extract_rcc(path, out_dir, suffixes=(".jpg", ".jpeg", ".png", ".webp", ".txt", "README")) -> int:
    """Write the archive's images (and licence notes) under ``out_dir``; returns the number written."""
    n = 0
    for name, blob in read_rcc(path).items():
        if not name.lower().endswith(tuple(s.lower() for s in suffixes)):
            continue
        dst = Path(out_dir) / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(blob)
        n += 1
    return n
