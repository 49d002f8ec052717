"""Capture sources: file playback (loop / stop at end / seek / errors) and cameras listed by name."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from app.sources.base import SourceError, SourceInfo
from app.sources.camera import CameraSource, list_cameras, parse_camera_address
from app.sources.file_source import FileSource


class Collector:
    def __init__(self):
        self.frames: list[tuple[np.ndarray, float]] = []
        self.errors: list[str] = []
        self.states: list[str] = []
        self.lock = threading.Lock()

    def sink(self, frame, ts):
        with self.lock:
            self.frames.append((frame, ts))

    def error(self, msg):
        self.errors.append(msg)

    def state(self, s):
        self.states.append(s)


def wait_for(cond, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def test_file_source_stops_at_end_and_restarts(sample_video):
    c = Collector()
    src = FileSource(sample_video, c.sink, c.error, c.state, loop=False)
    assert src.fps == pytest.approx(24) and src.width == 128 and src.height == 72
    assert src.available()[0]
    src.start()
    try:
        assert wait_for(lambda: "ended" in c.states)
        time.sleep(0.1)
        assert len(c.frames) == 20  # every frame once, then it stops
        assert not src.playing and src.at_end
        frame, ts = c.frames[0]
        assert frame.shape == (72, 128, 3) and frame.dtype == np.uint8
        stamps = [t for _, t in c.frames]
        assert stamps == sorted(stamps)
        span = stamps[-1] - stamps[0]
        assert span > 0.5  # paced at the file's rate (19 intervals at 24 fps = 0.79 s), not decoded flat out
        src.play()  # at the end, Play starts again from the beginning
        assert wait_for(lambda: len(c.frames) >= 25)
        assert not c.errors
    finally:
        src.stop()
    assert not src.running


def test_file_source_loops(sample_video):
    c = Collector()
    src = FileSource(sample_video, c.sink, c.error, c.state, loop=True)
    src.start()
    try:
        assert wait_for(lambda: src.loops >= 1 and len(c.frames) > 22)
        assert "looped" in c.states and "ended" not in c.states
    finally:
        src.stop()


def test_file_source_pause_and_seek(sample_video):
    c = Collector()
    src = FileSource(sample_video, c.sink, c.error, c.state, loop=True, start_paused=True)
    src.start()
    try:
        time.sleep(0.2)
        assert len(c.frames) == 0  # paused: nothing delivered
        src.seek(0.5)  # a seek while paused still shows the frame there
        assert wait_for(lambda: len(c.frames) == 1)
        assert src.position == pytest.approx(0.5, abs=1 / 24 + 1e-6)
        time.sleep(0.15)
        assert len(c.frames) == 1
        src.play()
        assert wait_for(lambda: len(c.frames) >= 4)
        src.pause()
        time.sleep(0.1)
        n = len(c.frames)
        time.sleep(0.2)
        assert len(c.frames) == n
    finally:
        src.stop()


def test_file_source_errors(tmp_path):
    with pytest.raises(SourceError, match="not found"):
        FileSource(tmp_path / "missing.mp4", lambda f, t: None)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video")
    with pytest.raises(SourceError, match="not a readable video"):
        FileSource(bad, lambda f, t: None)


def _fake_sysfs(root, nodes):
    for node, name, index in nodes:
        d = root / node
        d.mkdir(parents=True)
        (d / "name").write_text(name + "\n")
        (d / "index").write_text(f"{index}\n")
    return root


def test_camera_listing_by_name(tmp_path):
    root = _fake_sysfs(tmp_path / "video4linux", [
        ("video0", "Integrated Camera: Integrated C", 0),
        ("video1", "Integrated Camera: Integrated C", 1),  # metadata node of the same camera
        ("video2", "Logitech BRIO", 0),
        ("video10", "OBS Virtual Camera", 0),
    ])
    cams = list_cameras(use_qt=False, sysfs_root=root)
    assert [c.name for c in cams] == ["Integrated Camera: Integrated C", "Logitech BRIO", "OBS Virtual Camera"]
    assert [c.index for c in cams] == [0, 2, 10]
    assert [c.address for c in cams] == ["camera:0", "camera:2", "camera:10"]
    assert all(c.kind == "camera" and c.available for c in cams)
    assert list_cameras(use_qt=False, sysfs_root=tmp_path / "nothing") == []


def _capture_nodes_read_directly() -> list[int] | None:
    """The Linux capture nodes, read straight from the kernel's lists (no app code): sysfs where it
    exists, else the /dev/videoN nodes; None off Linux."""
    import re
    import sys

    if not sys.platform.startswith("linux"):
        return None
    sysfs = Path("/sys/class/video4linux")
    if sysfs.is_dir():
        found = []
        for node in sysfs.glob("video*"):
            index = node / "index"
            if not index.is_file() or index.read_text().strip() in ("", "0"):  # metadata nodes say 1
                found.append(int(re.sub(r"\D", "", node.name)))
        return sorted(found)
    return sorted(int(p.name[5:]) for p in Path("/dev").glob("video*") if p.name[5:].isdigit())


def test_camera_listing_on_this_machine(qapp):
    """The real platform query (QtMultimedia, then sysfs) lists exactly the cameras the system has:
    none that it lacks (on a machine without cameras, the list is empty), and on Linux every capture
    node, each by a real name, at the address that opens it."""
    cams = list_cameras()
    assert all(isinstance(c, SourceInfo) and c.kind == "camera" and c.name.strip() for c in cams)
    assert [c.address for c in cams] == [f"camera:{c.index}" for c in cams]
    assert len({c.address for c in cams}) == len(cams)
    nodes = _capture_nodes_read_directly()
    if nodes is not None:
        assert sorted(c.index for c in cams) == nodes
        if Path("/sys/class/video4linux").is_dir():  # the app's own sysfs reading agrees
            assert [c.index for c in list_cameras(use_qt=False)] == nodes


def test_missing_camera_gives_clear_error():
    c = Collector()
    cam = CameraSource(SourceInfo("camera", "Imaginary Cam", "camera:63", index=63), c.sink, c.error, c.state)
    cam.start()
    try:
        assert wait_for(lambda: bool(c.errors), timeout=15)
    finally:
        cam.stop()
    assert c.errors[0].startswith("camera not available: Imaginary Cam")
    assert not c.frames and not cam.running


def test_camera_address_parsing():
    assert parse_camera_address("camera:3") == 3
    with pytest.raises(SourceError, match="camera:N"):
        parse_camera_address("webcam")
