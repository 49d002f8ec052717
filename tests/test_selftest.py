"""``main.py --selftest`` from source (the frozen bundle runs the same code; packaging/check.sh runs it
there): the headless render + MP4 check and the off-screen window check, on a small random model."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.outputs.mp4 import Mp4Writer
from app.selftest import SelfTestError, verify_mp4
from tests.helpers import moving_frames

ROOT = Path(__file__).resolve().parent.parent


def run_selftest(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", OMP_NUM_THREADS="1")
    env.pop("PYTHONPATH", None)  # main.py must find its own packages, as the frozen app does
    return subprocess.run([sys.executable, str(ROOT / "main.py"), "--selftest", *args], cwd=cwd, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)


def test_selftest_passes_with_gui(random_model_dir, tmp_path):
    proc = run_selftest("--model", str(random_model_dir), "--frames", "8", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("selftest OK: "), proc.stdout
    line = lines[0]
    assert "model tiny-random (tiny, untrained)" in line
    assert "stylized 8 frames -> MP4 h264 96x64 verified" in line  # the fixture's 64x96 resolution
    assert "gui: window shown" in line and "closed cleanly" in line and "[source]" in line
    assert "then reference" in proc.stderr  # the style switch to a gallery reference image ran
    assert list(tmp_path.iterdir()) == []  # nothing written outside the temporary folders


def test_selftest_reports_a_bad_model_folder(tmp_path):
    proc = run_selftest("--model", str(tmp_path / "nowhere"), "--no-gui", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stdout.strip() == f"selftest FAILED: model: model folder not found: {tmp_path / 'nowhere'}"


def test_selftest_reports_an_invalid_model(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text('{"name": "tiny"}')
    proc = run_selftest("--model", str(bad), "--no-gui", "--frames", "2", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stdout.startswith("selftest FAILED: model: CheckpointError: invalid model folder"), proc.stdout


def test_verify_mp4_checks_count_size_and_rate(tmp_path):
    path = tmp_path / "clip.mp4"
    with Mp4Writer(path, 24) as w:
        for f in moving_frames(6, 64, 96):
            w.write(f)
    info = verify_mp4(path, 6, 96, 64, 24)
    assert info["frames"] == 6 and info["codec"] == "h264"
    with pytest.raises(SelfTestError, match="decodes to 6 frames, expected 7"):
        verify_mp4(path, 7, 96, 64)
    with pytest.raises(SelfTestError, match="frames of 96x64, expected 128x64"):
        verify_mp4(path, 6, 128, 64)
    with pytest.raises(SelfTestError, match="plays at 24.0 frames/s, expected 30"):
        verify_mp4(path, 6, 96, 64, 30)
    path.write_bytes(b"not a video at all")
    with pytest.raises(SelfTestError, match="does not decode"):
        verify_mp4(path, 6, 96, 64)
