"""The live recorder: real timestamps, layouts, never blocking, crash safety, disk full, audio."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import av
import numpy as np
import pytest

from app.outputs import mp4
from app.outputs.recorder import Recorder, RecordingSummary
from app.outputs.write_errors import VideoWriteError, probe_saved
from tests.helpers import ROOT, moving_frames
from tests.test_export import QuotaFile, beep_onsets, make_clip, read_audio, read_video


def record(rec: Recorder, items, pace: float = 0.0) -> list[bool]:
    rec.start()
    taken = []
    for item in items:
        taken.append(rec.submit(*item))
        if pace:
            time.sleep(pace)
    return taken


def test_variable_rate_round_trip_keeps_real_timestamps(tmp_path):
    rng = np.random.default_rng(3)
    gaps = rng.uniform(1 / 60, 1 / 12, size=47)  # a live source between 12 and 60 fps
    stamps = 5000.0 + np.concatenate([[0.0], np.cumsum(gaps)])  # capture clock, any origin
    frames = moving_frames(48)
    rec = Recorder(tmp_path / "vfr.mp4", fps_hint=30, queue_seconds=10)
    taken = record(rec, [(f, None, t) for f, t in zip(frames, stamps)])
    summary = rec.stop()
    assert all(taken) and isinstance(summary, RecordingSummary)
    assert (summary.frames, summary.dropped, summary.error) == (48, 0, None)
    decoded, _ = read_video(summary.path)
    assert len(decoded) == 48
    assert (decoded[0].width, decoded[0].height) == (128, 72)
    assert [f.time for f in decoded] == pytest.approx(list(stamps - stamps[0]), abs=2e-5)
    assert summary.duration == pytest.approx(stamps[-1] - stamps[0] + gaps[-1], abs=1e-3)
    with av.open(str(summary.path)) as c:  # what a player shows as the length
        assert c.duration / 1e6 == pytest.approx(summary.duration, abs=0.02)
    assert summary.bytes == summary.path.stat().st_size > 0


def test_side_by_side_layout_size_and_content(tmp_path):
    stylized = np.zeros((64, 96, 3), np.uint8)
    stylized[...] = (220, 40, 40)
    source = np.zeros((72, 128, 3), np.uint8)
    source[...] = (40, 200, 40)
    rec = Recorder(tmp_path / "sbs.mp4", layout="side_by_side", fps_hint=10)
    record(rec, [(stylized, source, i / 10) for i in range(5)] + [(stylized, None, 0.5)])
    summary = rec.stop()
    decoded, _ = read_video(summary.path)
    assert len(decoded) == 6 and (decoded[0].width, decoded[0].height) == (192, 64)
    img = decoded[2].to_ndarray(format="rgb24").astype(int)
    assert np.abs(img[10:54, 100:188] - (220, 40, 40)).mean() < 8  # stylized on the right
    assert np.abs(img[10:54, 4:92] - (40, 200, 40)).mean() < 8  # source on the left, letterboxed
    assert img[:4, :96].max() < 24 and img[-4:, :96].max() < 24  # 5 px black bars above and below
    last = decoded[5].to_ndarray(format="rgb24").astype(int)
    assert last[:, :90].max() < 24  # no source for that frame: black panel


def test_submit_never_blocks_and_reports_when_behind(tmp_path):
    frames = moving_frames(8, 360, 640)
    rec = Recorder(tmp_path / "busy.mp4", fps_hint=30, queue_seconds=0.1)  # a 4-frame queue
    rec.start()
    slowest, results = 0.0, []
    for i in range(60):  # far faster than real time: the encoder cannot keep up
        t = time.perf_counter()
        results.append(rec.submit(frames[i % 8], None, i / 30))
        slowest = max(slowest, time.perf_counter() - t)
        if i == 40:
            assert rec.behind
    assert slowest < 0.05
    dropped = results.count(False)
    assert dropped > 0 and rec.dropped == dropped
    summary = rec.stop()
    assert summary.dropped == dropped and summary.frames == 60 - dropped
    assert len(read_video(summary.path)[0]) == 60 - dropped
    assert not rec.behind and rec.submit(frames[0], None, 9.0) is False  # stopped: nothing taken


def test_fragments_reach_the_disk_during_recording(tmp_path):
    path = tmp_path / "live.mp4"
    rec = Recorder(path, fps_hint=30, queue_seconds=10)
    record(rec, [(f, None, 100 + i / 30) for i, f in enumerate(moving_frames(100))])
    deadline = time.monotonic() + 20
    while rec.frames_written < 100 and time.monotonic() < deadline:
        time.sleep(0.02)
    saved = probe_saved(rec.partial_path)  # read while the recorder still holds the file open
    assert saved.playable and saved.frames >= 90 and saved.duration >= 3.0 - 1e-6
    summary = rec.stop()
    assert summary.frames == 100 and summary.path == path and probe_saved(path).frames == 100


def test_a_recording_never_overwrites_its_source_or_half_overwrites_a_file(tmp_path, sample_video):
    source = sample_video.read_bytes()
    for inputs, audio in (([("the source video", sample_video)], None), ((), sample_video)):
        rec = Recorder(sample_video, audio_source=audio, inputs=inputs)
        with pytest.raises(VideoWriteError, match="is the (source video|audio source)"):
            rec.start()
    assert sample_video.read_bytes() == source
    old = tmp_path / "take.mp4"
    old.write_bytes(b"an earlier take")
    rec = Recorder(old, fps_hint=30, queue_seconds=10)
    record(rec, [(f, None, i / 30) for i, f in enumerate(moving_frames(40))])
    deadline = time.monotonic() + 20
    while rec.frames_written < 40 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert old.read_bytes() == b"an earlier take"  # whole until the recording is finished
    assert rec.stop().frames == 40 and len(read_video(old)[0]) == 40
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


KILL_SCRIPT = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
from app.outputs.recorder import Recorder
rng = np.random.default_rng(0)
base = rng.integers(0, 256, (144, 512, 3), dtype=np.uint8)
rec = Recorder(sys.argv[2], layout="side_by_side", fps_hint=30)
rec.start()
i = 0
while True:
    frame = np.ascontiguousarray(base[:, i % 256: i % 256 + 256])
    rec.submit(frame, frame[::-1], time.monotonic())
    i += 1
    if i % 5 == 0:
        print(i, rec.frames_written, flush=True)
    time.sleep(1 / 30)
"""


def test_recording_killed_with_sigkill_still_plays(tmp_path):
    path = tmp_path / "killed.mp4"
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(ROOT), str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    submitted = 0
    try:
        deadline = time.monotonic() + 60
        for line in proc.stdout:
            submitted, written = map(int, line.split())
            if written >= 75 or time.monotonic() > deadline:  # about 2.5 s recorded
                break
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    assert submitted >= 75, proc.stderr.read()
    assert not path.exists()  # the target appears only when a recording is finished...
    partial, = tmp_path.glob("killed.*.partial.mp4")  # ...what a killed one wrote is beside it
    decoded = []
    with av.open(str(partial)) as c:
        try:
            for f in c.decode(video=0):
                decoded.append(f)
        except av.error.FFmpegError:
            pass  # killed in the middle of writing a fragment: the whole ones before it still play
    assert len(decoded) >= 30  # at least the first one-second fragment, usually two
    assert len(decoded) <= submitted
    assert (decoded[0].width, decoded[0].height) == (512, 144)
    assert decoded[-1].time == pytest.approx((len(decoded) - 1) / 30, abs=0.5)


@pytest.fixture
def full_disk(tmp_path, monkeypatch):
    """A folder whose disk holds 300 KB: a real tmpfs when this process may mount one (root on
    Linux); otherwise the output file is a quota double that fails like a full disk (short write,
    then ENOSPC) at the file layer PyAV writes through."""
    folder = tmp_path / "small-disk"
    folder.mkdir()
    mounted = False
    if sys.platform.startswith("linux") and os.geteuid() == 0:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(folder)],
                                 capture_output=True).returncode == 0
    if not mounted:
        monkeypatch.setattr(mp4, "open_output_file", lambda p: QuotaFile(p, 300 * 1024))
    yield folder
    if mounted:  # lazily if a failed test left a file open there, so the mount never outlives the test
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], check=True)


def test_disk_full_is_reported_and_the_partial_file_plays(full_disk):
    errors = []
    path = full_disk / "take.mp4"
    rec = Recorder(path, fps_hint=30, on_error=errors.append, queue_seconds=100)
    frames = moving_frames(64, 144, 256)
    rec.start()
    try:
        for i in range(1000):
            if not rec.submit(frames[i % 64], None, i / 30):
                break
            time.sleep(0.002)
        deadline = time.monotonic() + 30
        while rec.error is None and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        summary = rec.stop()
    assert summary.error is not None and "disk is full" in summary.error
    assert errors == [summary.error]  # on_error once, same message
    assert summary.frames > 0 and f"first {summary.frames} frames" in summary.error
    assert summary.frames < rec.frames_written  # the unfinished fragment was cut off
    assert path.stat().st_size == summary.bytes <= 300 * 1024
    decoded, _ = read_video(path)  # decodes cleanly to the end
    assert len(decoded) == summary.frames
    assert decoded[-1].time == pytest.approx((summary.frames - 1) / 30, abs=1e-3)
    assert summary.duration == pytest.approx(summary.frames / 30, abs=0.05)
    assert rec.submit(frames[0], None, 99.0) is False


def test_audio_passthrough_follows_the_file_position(tmp_path):
    src = make_clip(tmp_path / "song.mp4", n_frames=96, fps=24)  # 4 s, a beep every 0.5 s
    rec = Recorder(tmp_path / "with-audio.mp4", fps_hint=24, audio_source=src, queue_seconds=10)
    frames = moving_frames(36)
    # the GUI's file source: 0.8 s from 2.9 s into the file, then it loops back to its start
    media = [2.9 + i / 24 for i in range(19)] + [i / 24 for i in range(17)]
    record(rec, [(f, None, 300 + i / 24, m) for i, (f, m) in enumerate(zip(frames, media))])
    summary = rec.stop()
    assert summary.has_audio and summary.frames == 36 and summary.error is None
    samples, rate, start = read_audio(summary.path)
    assert start == pytest.approx(0.0, abs=1e-3)
    assert len(samples) / rate == pytest.approx(1.5, abs=0.05)
    # the beeps at 3.0 and 3.5 s in the file play at 0.1 and 0.6 s; after the loop (at 19/24 s)
    # the beeps at 0 and 0.5 s follow it
    assert beep_onsets(samples, rate) == pytest.approx([0.1, 0.6, 19 / 24, 19 / 24 + 0.5], abs=0.011)


def test_audio_source_without_audio_and_other_edges(tmp_path, sample_video):
    rec = Recorder(tmp_path / "x.mp4", audio_source=sample_video)
    record(rec, [(f, None, i / 30) for i, f in enumerate(moving_frames(3))])
    summary = rec.stop()
    assert summary.frames == 3 and not summary.has_audio and "no audio stream" in summary.audio_note

    empty = Recorder(tmp_path / "none.mp4")
    empty.start()
    s = empty.stop()
    assert (s.frames, s.error) == (0, None) and not (tmp_path / "none.mp4").exists()

    with pytest.raises(VideoWriteError, match="output folder does not exist"):
        Recorder(tmp_path / "missing" / "a.mp4").start()
    with pytest.raises(ValueError, match="unknown layout"):
        Recorder(tmp_path / "a.mp4", layout="grid")
    rec = Recorder(tmp_path / "b.mp4")
    rec.start()
    with pytest.raises(ValueError, match="uint8 HxWx3"):
        rec.submit(np.zeros((8, 8, 3), np.float32), None, 0.0)
    with pytest.raises(RuntimeError, match="already started"):
        rec.start()
    rec.stop()
