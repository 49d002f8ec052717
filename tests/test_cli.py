"""`main.py stylize` end to end and its one-line errors."""
from __future__ import annotations

import subprocess
import sys

import av
import pytest

from tests.conftest import ROOT


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


@pytest.mark.parametrize("case", ["missing", "not_video", "empty", "bad_ref", "bad_model", "no_style"])
def test_bad_input_gives_one_line_error(case, sample_video, random_model_dir, tmp_path):
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
    assert r.stderr.strip().splitlines()[-1].startswith("error: ")
