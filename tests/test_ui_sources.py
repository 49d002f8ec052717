"""Sources and transport (app/ui/source_controller.py) without a model: frames reach the engine's queue
from the source's thread, the source view gets the newest, play / pause / seek / loop act on the file,
and bad sources are reported in the window."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PySide6.QtWidgets import QWidget

from app.sources.file_source import FileSource
from app.ui.banner import BannerArea
from app.ui.live_display import LiveDisplay
from app.ui.settings import AppSettings
from app.ui.source_controller import SourceBridge, SourceController
from app.ui.status_bar import RateMeter, StatusBar
from app.ui.transport import TransportBar
from app.ui.video_view import VideoView
from app.worker import EngineWorker
from tests.helpers import WAIT


# ------------------------------------------------------------------------------ SourceBridge
def test_bridge_feeds_the_engine_and_keeps_only_the_newest_frame_for_the_view(qtbot):
    worker, rate = EngineWorker(), RateMeter()
    bridge = SourceBridge(worker, rate)
    notified = []
    bridge.frameAvailable.connect(lambda: notified.append(1))
    frames = [np.full((4, 4, 3), i, np.uint8) for i in range(5)]

    def produce():  # the source's thread
        for i, f in enumerate(frames):
            bridge.sink(f, 10.0 + i / 30)

    t = threading.Thread(target=produce)
    t.start()
    t.join()
    assert worker.frames.put_count == 5  # every frame was offered to the engine
    qtbot.waitUntil(lambda: len(notified) >= 1, timeout=WAIT)
    latest = bridge.take()
    assert latest[0] is frames[-1] and latest[1] == pytest.approx(10.0 + 4 / 30)
    assert len(notified) == 1  # one notification per batch the GUI has not taken yet
    assert bridge.take() is None
    assert rate.rate(now=10.0 + 4 / 30) == pytest.approx(30.0)

    bridge.sink(frames[0], 11.0)  # after a take, the next frame notifies again
    qtbot.waitUntil(lambda: len(notified) == 2, timeout=WAIT)
    bridge.active = False  # a source being replaced: its late frames and errors go nowhere
    errors = []
    bridge.error.connect(errors.append)
    bridge.sink(frames[1], 12.0)
    bridge.on_error("gone")
    assert worker.frames.put_count == 6 and errors == []


# ------------------------------------------------------------------------------ SourceController
@pytest.fixture
def harness(qtbot, tmp_path):
    window = QWidget()
    qtbot.addWidget(window)
    worker = EngineWorker(window)
    source_view, stylized_view = VideoView("Source"), VideoView("Stylized")
    display = LiveDisplay(stylized_view, StatusBar(), worker, parent=window)
    settings = AppSettings(path=tmp_path / "settings.ini")
    banners, transport = BannerArea(), TransportBar()
    ctl = SourceController(window, worker, display, settings, banners, source_view, stylized_view, transport,
                           tmp_path / "no-sample.mp4")
    yield ctl
    ctl.shutdown()
    assert not ctl.running


def test_a_file_plays_into_the_engine_and_the_source_view(qtbot, harness, sample_video):
    ctl = harness
    opened = []
    ctl.opened.connect(opened.append)
    assert ctl.open_file(sample_video)
    assert isinstance(ctl.source, FileSource) and opened[0].address == str(sample_video)
    qtbot.waitUntil(lambda: ctl.source_view.frames_shown > 2, timeout=WAIT)
    assert ctl.worker.frames.put_count > 2
    assert ctl.settings.last_source["address"] == str(sample_video)
    t = ctl.transport
    assert t.play_button.isEnabled() and t.seek.isEnabled() and t.seek.maximum() > 0
    labels = [t.source_combo.itemText(i) for i in range(t.source_combo.count())]
    assert f"File: {sample_video.name}" in labels and labels[-1] == "Open video file…"
    assert t.source_combo.currentText() == f"File: {sample_video.name}"

    t.set_loop(False)  # the checkbox: the running source and the settings follow
    assert ctl.source.loop is False and ctl.settings.get("source/loop") is False
    ctl.toggle_play()
    assert not ctl.source.playing
    time.sleep(0.1)
    n = ctl.source.frames_delivered
    ctl.seek_to(0.5)  # paused: the frame at 0.5 s is delivered
    qtbot.waitUntil(lambda: ctl.source.frames_delivered == n + 1, timeout=WAIT)
    assert ctl.source.position == pytest.approx(0.5, abs=0.05)
    ctl.toggle_play()
    qtbot.waitUntil(lambda: ctl.source.at_end, timeout=WAIT)
    qtbot.waitUntil(lambda: "End of video" in ctl.source_view.message, timeout=WAIT)


def test_bad_sources_are_reported_and_the_next_good_one_clears_it(qtbot, harness, tmp_path, sample_video):
    ctl = harness
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"nope")
    assert not ctl.open_file(junk)
    assert "not a readable video" in ctl.banners.text("source") and ctl.source is None
    assert ctl.stylized_view.message == "No source"
    assert not ctl.transport.play_button.isEnabled()
    ctl.open_source(ctl.resolve_address("camera:63"))
    qtbot.waitUntil(lambda: ctl.banners.text("source") is not None
                    and "camera" in ctl.banners.text("source").lower(), timeout=WAIT)
    assert ctl.resolve_address("camera:x") is None and "camera" in ctl.banners.text("source").lower()
    assert not ctl.open_sample()  # this harness has no sample clip: said so, with a way out
    assert "sample clip is missing" in ctl.banners.text("source")
    assert ctl.open_file(sample_video)
    assert ctl.banners.text("source") is None and ctl.stylized_view.message == ""


def test_opening_the_last_source_or_the_sample(qtbot, harness, sample_video):
    ctl = harness
    ctl.settings.last_source = {"kind": "file", "name": sample_video.name, "address": str(sample_video)}
    ctl.open_initial()
    assert ctl.info.address == str(sample_video)
    ctl.close()
    ctl.settings.last_source = {"kind": "file", "address": str(sample_video.parent / "gone.mp4")}
    ctl.open_initial()  # the file is gone, and there is no sample clip here
    assert ctl.source is None and "sample clip is missing" in ctl.banners.text("source")
