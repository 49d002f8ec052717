"""The output controller (app/ui/output_controller.py), in the window on the fake stylizer: recordings
hold the engine's frames in the chosen layout, screenshots hold what is shown, the virtual camera is
on or says why not, and an unusable output folder is reported with nothing started."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from app.sources.video_file import VideoFileReader
from tests.helpers import WAIT, wait_frames


@pytest.fixture
def window(make_window, qtbot):
    w = make_window(fake=True)
    wait_frames(qtbot, w, 2)
    return w


def test_recording_writes_the_engine_frames_then_stops_cleanly(qtbot, window, tmp_path):
    w, out = window, window.outputs
    path = tmp_path / "take.mp4"
    assert out.start_recording(path)
    assert out.record_action.isChecked() and out.record_action.text() == "■ Stop recording"
    assert w.stylized_view.badge == "REC"
    qtbot.waitUntil(lambda: out.recorder is not None and out.recorder.frames_written >= 6, timeout=WAIT)
    out.update_status()
    assert w.status.record.text().startswith("● REC")
    out.stop_recording()
    assert not out.record_action.isChecked() and out.record_action.text() == "● Record" and w.stylized_view.badge == ""
    qtbot.waitUntil(lambda: out.last_recording is not None, timeout=WAIT)
    assert out.last_recording.error is None and out.last_recording.frames >= 6
    with VideoFileReader(path) as r:
        first = next(f for _, f in r.frames())
    assert first.shape == (48, 64, 3)
    assert "Saved" in w.statusBar().currentMessage()


def test_a_recording_onto_the_silent_source_file_is_refused_and_the_source_is_intact(window, sample_video):
    w, out = window, window.outputs
    before = sample_video.read_bytes()
    assert not out.start_recording(sample_video)  # the clip has no audio: it is protected all the same
    assert out.recorder is None and not out.record_action.isChecked()
    assert "is the source video" in w.banners.text("record")
    assert sample_video.read_bytes() == before


def test_the_record_action_records_side_by_side_into_the_output_folder(qtbot, window, tmp_path):
    w, out = window, window.outputs
    w.controls.set_record_layout("side_by_side")
    out.record_action.trigger()
    qtbot.waitUntil(lambda: out.recorder is not None and out.recorder.frames_written >= 4, timeout=WAIT)
    out.record_action.trigger()
    qtbot.waitUntil(lambda: out.last_recording is not None, timeout=WAIT)
    path = out.last_recording.path
    assert path.parent == tmp_path / "out" and path.name.startswith("RTR-") and path.suffix == ".mp4"
    with VideoFileReader(path) as r:
        assert (r.width, r.height) == (128, 48)


def test_screenshots_hold_what_is_shown(qtbot, window, tmp_path):
    w, out = window, window.outputs
    shown = w.display.last_shown  # no event runs between this and the save
    shot = out.save_screenshot(tmp_path / "shot.png")
    img = cv2.cvtColor(cv2.imread(str(shot)), cv2.COLOR_BGR2RGB)
    assert shot == out.last_screenshot and np.array_equal(img, shown.image)
    w.controls.set_record_layout("side_by_side")
    auto = out.save_screenshot()  # a time-stamped name in the output folder
    assert auto.parent == tmp_path / "out" and cv2.imread(str(auto)).shape == (48, 128, 3)


def test_nothing_to_save_before_a_frame_is_shown(make_window):
    w = make_window(fake=True, start=False)
    assert w.outputs.save_screenshot() is None and "Nothing to save" in w.statusBar().currentMessage()


def test_an_unusable_output_folder_is_reported_and_nothing_starts(window, tmp_path):
    w, out = window, window.outputs
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    w.settings.set("output/folder", str(blocker / "out"))
    out.record_action.trigger()
    assert out.recorder is None and not out.record_action.isChecked()
    assert "Cannot create" in w.banners.text("record")
    assert out.save_screenshot() is None and "Cannot create" in w.banners.text("screenshot")


def test_virtual_camera_is_on_or_says_why_not(qtbot, window):
    w, out = window, window.outputs
    out.vcam_action.trigger()
    if out.vcam is None:
        assert not out.vcam_action.isChecked() and w.banners.text("vcam")
    else:
        wait_frames(qtbot, w)
        out.vcam_action.trigger()
        assert out.vcam is None and not out.vcam_action.isChecked()
