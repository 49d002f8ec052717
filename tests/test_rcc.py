"""The Qt resource reader used to take photographs out of packaged .rcc archives (no Qt in model/)."""
import os
import subprocess
from pathlib import Path

import pytest

from model.train.rcc import RccError, extract_rcc, read_rcc


def qt_rcc() -> Path:
    import PySide6

    return Path(os.path.dirname(PySide6.__file__)) / "Qt" / "libexec" / "rcc"


@pytest.fixture
def archive(tmp_path):
    """A binary .rcc made by Qt's own rcc: one compressible text file, one incompressible image."""
    if not qt_rcc().is_file():
        pytest.skip("PySide6 ships no rcc tool on this platform")
    src = tmp_path / "src"
    (src / "img").mkdir(parents=True)
    (src / "README").write_text("licence notes " * 200)  # rcc compresses this one (zlib)
    (src / "img" / "a.webp").write_bytes(os.urandom(3000))  # and stores this one raw
    qrc = src / "res.qrc"
    qrc.write_text('<RCC><qresource prefix="/act/resource"><file>README</file><file>img/a.webp</file>'
                   "</qresource></RCC>")
    out = tmp_path / "res.rcc"
    subprocess.run([str(qt_rcc()), "-binary", "--compress-algo", "zlib", str(qrc), "-o", str(out)], check=True)
    return out, src


def test_files_come_out_identical(archive, tmp_path):
    rcc, src = archive
    files = read_rcc(rcc)
    assert files["act/resource/README"] == (src / "README").read_bytes()
    assert files["act/resource/img/a.webp"] == (src / "img" / "a.webp").read_bytes()
    assert extract_rcc(rcc, tmp_path / "out") == 2
    assert (tmp_path / "out" / "act/resource/img/a.webp").read_bytes() == (src / "img" / "a.webp").read_bytes()


def test_not_an_archive(tmp_path):
    bad = tmp_path / "x.rcc"
    bad.write_bytes(b"not qres")
    with pytest.raises(RccError, match="not a Qt resource file"):
        read_rcc(bad)
