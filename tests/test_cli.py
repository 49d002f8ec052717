"""`main.py stylize` end to end and its one-line errors."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import av
import pytest

from tests.helpers import ROOT


def run(*args):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)


def decode_all(path):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = [f for f in c.decode(s)]
        return frames, s


def test_stylize_writes_playable_mp4_with_same_count_and_rate(sample_video, random_model_dir, tmp_path):
    out = tmp_path / "out.mp4"
    r = run("stylize", sample_video, "-o", out, "--style", "ink wash painting", "--model", random_model_dir,
            "--switch", "9:pencil sketch", "-q")
    assert r.returncode == 0, r.stderr
    frames, stream = decode_all(out)
    assert len(frames) == 20
    assert (frames[0].width, frames[0].height) == (96, 64)
    assert float(stream.average_rate) == pytest.approx(24, rel=0.01)
    assert "untrained" in r.stderr  # random weights are never presented as a style


@pytest.mark.parametrize("case, message", [
    ("missing", "error: input file not found: "),
    ("not_video", "error: cannot open text.mp4: not a readable video"),
    ("empty", "error: cannot open empty.mp4: not a readable video"),
    ("bad_ref", "error: cannot read ref.png: not an image OpenCV can decode"),
    ("bad_model", "error: invalid model folder "),
    ("no_style", "error: give a style: --style TEXT or --reference IMAGE"),
])
def test_bad_input_gives_one_line_error(case, message, sample_video, random_model_dir, tmp_path):
    """Through main.py: exit status 2, the specific message as the only line, nothing written."""
    out = tmp_path / "o.mp4"
    args = ["stylize", sample_video, "-o", out, "--style", "ink", "--model", random_model_dir]
    if case == "missing":
        args[1] = tmp_path / "nope.mp4"
    elif case == "not_video":
        p = tmp_path / "text.mp4"
        p.write_text("hello")
        args[1] = p
    elif case == "empty":
        p = tmp_path / "empty.mp4"
        p.write_bytes(b"")
        args[1] = p
    elif case == "bad_ref":
        p = tmp_path / "ref.png"
        p.write_bytes(b"\x89PNG broken")
        args[4:6] = ["--reference", p]
    elif case == "bad_model":
        args[-1] = tmp_path
    elif case == "no_style":
        del args[4:6]
    r = run(*args)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(message), r.stderr
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if p.suffix == ".mp4" and "o." in p.name] == []


def truncated_sample(tmp_path, fraction=0.3):
    """The first ``fraction`` of the bundled sample's bytes: a file whose header announces 144 frames."""
    data = (ROOT / "resources" / "sample" / "sample.mp4").read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def test_truncated_input_is_reported_and_fails_unless_allowed(random_model_dir, tmp_path, capsys, one_torch_thread):
    from app.cli import main

    cut = truncated_sample(tmp_path, 0.2)
    out = tmp_path / "out.mp4"
    args = ["stylize", str(cut), "-o", str(out), "--style", "ink", "--model", str(random_model_dir), "-q"]
    rc = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    frames, _ = decode_all(out)  # what was read was stylized and kept
    n = len(frames)
    assert 0 < n < 144
    assert err[-1].startswith("error: cut.mp4 ended early: ")
    assert f"{n} of the 144 frames its header announces" in err[-1]
    assert f"at {frames[-1].time + 1 / 24:.1f} s of {144 / 24:.1f} s" in err[-1]
    assert f"{out.name} holds the {n} stylized frames" in err[-1] and "--allow-partial" in err[-1]

    rc = main(args + ["--allow-partial"])
    captured = capsys.readouterr()
    assert rc == 0
    assert any(line.startswith("warning: cut.mp4 ended early") for line in captured.err.splitlines())
    assert f"({n} frames" in captured.out
    assert len(decode_all(out)[0]) == n


def test_opencv_wheel_brings_no_second_qt():
    """The window uses PySide6's Qt only; the GUI build of OpenCV ships its own Qt plugins, whose
    folder Qt then searches first (and names in its abort message). The headless wheel has none."""
    import re

    import cv2

    assert not (Path(cv2.__file__).parent / "qt").exists()
    deps = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'"opencv-python-headless[<>=~ ]', deps) and not re.search(r'"opencv-python[<>=~ ]', deps)
    for path in list((ROOT / "app").rglob("*.py")) + list((ROOT / "model").rglob("*.py")):
        assert not re.search(r"cv2\.(imshow|namedWindow|waitKey|destroy\w*Window)", path.read_text()), path


def test_gui_without_a_display_library_says_what_to_install(tmp_path):
    """On Linux, Qt's xcb plugin aborts the process (SIGABRT) when a system library is missing; the app
    checks first and prints one line naming the package(s) to install, or the missing display."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the xcb platform is Linux's")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["QT_QPA_PLATFORM"] = "xcb"
    r = subprocess.run([sys.executable, str(ROOT / "main.py"), "--settings", str(tmp_path / "s.ini")],
                       capture_output=True, text=True, cwd=ROOT, timeout=120, env=env)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2, r.stderr[-2000:]  # not 134 / -6 (Qt's abort)
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr[-2000:]
    from app.qt_platform import missing_xcb_libraries

    missing = missing_xcb_libraries()
    if missing:
        assert "apt-get install" in lines[0]
        for soname, package in missing:
            assert package in lines[0] and soname in lines[0]
    else:
        assert "DISPLAY" in lines[0]


def test_debian_package_names_for_missing_libraries():
    from app.qt_platform import debian_package, parse_ldd

    assert debian_package("libxcb-cursor.so.0") == "libxcb-cursor0"
    assert debian_package("libxkbcommon-x11.so.0") == "libxkbcommon-x11-0"
    assert debian_package("libxcb-icccm.so.4") == "libxcb-icccm4"
    assert debian_package("libEGL.so.1") == "libegl1"
    assert debian_package("libdbus-1.so.3") == "libdbus-1-3"
    ldd = ("\tlibQt6XcbQpa.so.6 => /x/libQt6XcbQpa.so.6 (0x1)\n\tlibxcb-cursor.so.0 => not found\n"
           "\tlibxcb-icccm.so.4 => not found\n\tlibxcb-cursor.so.0 => not found\n\tlibc.so.6 => /lib/libc.so.6 (0x2)\n")
    assert parse_ldd(ldd) == ["libxcb-cursor.so.0", "libxcb-icccm.so.4"]
