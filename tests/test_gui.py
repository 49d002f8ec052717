"""The real main window, end to end, on a file source with a small real model (pytest-qt, offscreen).

Covers: stylized frames arriving; style switches by gallery click, prompt + Enter, dropped image
(with the worker's cache state checked); instant and reload settings; a slow model not blocking the
GUI thread; recording, screenshot and offline export to files on disk; errors shown in the window
with recovery; clean shutdown (threads joined, timers stopped).
"""
from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QElapsedTimer, Qt, QTimer
from PySide6.QtWidgets import QApplication, QPushButton

from app.gui import build_parser
from app.sources.video_file import VideoFileReader
from app.ui.gallery import load_presets
from model.speed import SpeedRequest
from model.style import StyleSpec
from tests.helpers import WAIT, applied, drop_files, wait_frames


def test_window_stylizes_and_switches_styles(qtbot, make_window, tmp_path):
    w = make_window()
    assert w.overlay.isVisible()  # model loading: a progress overlay over the stylized view ...
    fired = []
    QTimer.singleShot(0, lambda: fired.append(w.worker.loading))
    qtbot.waitUntil(lambda: bool(fired), timeout=WAIT)  # ... while the event loop keeps running
    qtbot.waitUntil(lambda: w.model_info is not None, timeout=WAIT)
    assert not w.overlay.isVisible()
    assert w.model_info.name == "tiny-random" and w.status.device.text() == "Device: CPU"
    assert "tiny-random" in w.status.model.text()
    wait_frames(qtbot, w, 3)
    assert w.source_view.frames_shown > 0
    assert w.stylized_view.frame.shape == (64, 96, 3)
    assert w.styles.current is not None and w.styles.current.label == "Ink wash"  # first preset
    assert "untrained" in w.banners.all_text()  # told plainly that random weights are not a style
    st = w.worker.stylizer

    # gallery click (real mouse click on the second thumbnail)
    lst = w.gallery.list
    rect = lst.visualItemRect(lst.item(1))
    change = applied(qtbot, w.worker, lambda: qtbot.mouseClick(lst.viewport(), Qt.MouseButton.LeftButton,
                                                        pos=rect.center()))
    assert change.label == "Pencil sketch" and change.kind == "text"
    assert change.cross_changed and change.ref_len == 0
    assert change.window_after == [max(change.window_before)]  # the self-attention cache kept the last frame
    assert w.controls.strength_value() == pytest.approx(0.8)  # the preset's strength
    qtbot.waitUntil(lambda: st.strength == pytest.approx(0.8), timeout=WAIT)
    assert lst.currentRow() == 1
    wait_frames(qtbot, w, 2)

    # prompt + Enter
    w.prompt.edit.setFocus()
    w.prompt.edit.clear()
    qtbot.keyClicks(w.prompt.edit, "neon city at night")
    change = applied(qtbot, w.worker, lambda: qtbot.keyClick(w.prompt.edit, Qt.Key.Key_Return))
    assert change.spec.prompt == "neon city at night" and change.kind == "text"
    assert st.style == StyleSpec(prompt="neon city at night") and st.cache.ref_len == 0 and st.cache.cross_ready
    assert lst.currentItem() is None  # a typed prompt is not a preset

    # an image dropped onto the window becomes a reference style and a saved user preset
    img = tmp_path / "my style.png"
    cv2.imwrite(str(img), np.random.default_rng(5).integers(0, 255, (90, 140, 3), dtype=np.uint8))
    change = applied(qtbot, w.worker, lambda: drop_files(w, img))
    assert change.kind == "reference" and change.ref_len > 0 and change.cross_changed
    assert change.window_after == [max(change.window_before)]
    assert st.cache.ref_len > 0 and st.style.kind == "reference"
    user = w.settings.user_presets
    assert len(user) == 1 and user[0]["name"] == "my style"
    stored = w.data_dir / "styles"
    assert any(p.suffix == ".png" for p in stored.iterdir())
    assert w.styles.presets[-1].user and lst.currentRow() == len(w.styles.presets) - 1
    wait_frames(qtbot, w, 2)

    # Ctrl+1 selects the first preset (the window's shortcut, pressed on the focused prompt box)
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is not None, timeout=WAIT)
    change = applied(qtbot, w.worker, lambda: qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_1,
                                                      Qt.KeyboardModifier.ControlModifier))
    assert change.label == "Ink wash"

    # the style and the user preset are restored in a new session
    w.close()
    w2 = make_window(start=False)
    assert [p.name for p in w2.styles.presets][-1] == "my style"
    assert w2.settings.last_style == {"kind": "preset", "key": "preset:Ink wash"}


def test_settings_toggle_persist_and_reset(qtbot, make_window):
    w = make_window()
    qtbot.waitUntil(lambda: w.model_info is not None, timeout=WAIT)
    wait_frames(qtbot, w)
    st = w.worker.stylizer
    c = w.controls
    c.set_strength(0.4)
    qtbot.waitUntil(lambda: st.strength == pytest.approx(0.4), timeout=WAIT)
    c.set_speed_request(SpeedRequest("quality", steps=3))  # Advanced: the step count replaces the preset's
    qtbot.waitUntil(lambda: len(st.schedule.steps) == 3, timeout=WAIT)
    c.set_speed_request(SpeedRequest("quality"))  # back to the preset's (the model's) schedule
    qtbot.waitUntil(lambda: st.schedule.steps == list(st.cfg.denoising_steps), timeout=WAIT)
    c.set_crossfade(0)
    qtbot.waitUntil(lambda: w.worker.crossfade_s == 0, timeout=WAIT)
    c.set_speed_request(SpeedRequest("fast"))  # what `stylize --speed fast` does
    qtbot.waitUntil(lambda: st.speed == "fast" and st.adacache.mode == "fast", timeout=WAIT)
    c.set_speed_request(SpeedRequest("fast", adacache="off"))  # what `--speed fast --adacache off` does
    qtbot.waitUntil(lambda: st.adacache.mode == "off", timeout=WAIT)
    w.side_action.trigger()  # single view
    assert not w.source_view.isVisible() and w.stylized_view.isVisible()
    wait_frames(qtbot, w)
    s = w.settings
    assert s.get("live/strength") == pytest.approx(0.4) and s.get("live/crossfade") is False
    assert (s.get("live/speed"), s.get("live/steps"), s.get("live/adacache")) == ("fast", 0, "off")
    assert s.get("view/single") is True

    # reload settings are marked pending until applied
    assert not c.pending
    assert "48x32" in c.resolution_options()
    v = c.engine_values()
    c.set_engine_values(v["model_dir"], v["device"], "48x32")
    assert c.pending and "Apply" in c.pending_message()
    c.findChild(QPushButton, "reload").click()
    qtbot.waitUntil(lambda: w.model_info.resolution == (32, 48) and not w.worker.loading, timeout=WAIT)
    assert not c.pending and s.get("engine/resolution") == "48x32"
    wait_frames(qtbot, w)
    assert w.stylized_view.frame.shape == (32, 48, 3)

    w.reset_to_defaults()
    assert s.get("live/strength") == 1.0 and s.get("view/single") is False and w.source_view.isVisible()
    assert c.strength_value() == 1.0 and c.crossfade_value() > 0 and c.speed_request() == SpeedRequest()
    qtbot.waitUntil(lambda: w.model_info.resolution == (64, 96) and not w.worker.loading, timeout=WAIT)
    qtbot.waitUntil(lambda: w.worker.stylizer.strength == 1.0 and w.worker.stylizer.speed == "quality"
                    and w.worker.stylizer.adacache.mode == "off", timeout=WAIT)
    wait_frames(qtbot, w)


def test_gui_stays_responsive_while_the_model_is_slow(qtbot, make_window):
    """The event loop keeps turning while the engine sits in a 2-second model call. A GUI thread that
    waited on the model would answer a probe after ~2 s; the bound here (1 s) only tells those apart.
    How fast the loop answers is a measured figure: benchmarks/ui_responsiveness.py."""
    w = make_window()
    qtbot.waitUntil(lambda: w.model_info is not None, timeout=WAIT)
    wait_frames(qtbot, w)
    st = w.worker.stylizer
    real_stream = st.stream
    slow_calls = []

    def slow_push(frames):
        slow_calls.append(time.perf_counter())
        time.sleep(2.0)  # the model takes two seconds per call
        return real_stream(frames)

    st.stream = slow_push
    qtbot.waitUntil(lambda: len(slow_calls) >= 1, timeout=WAIT)
    latencies = []
    while len(slow_calls) < 2 or len(latencies) < 8:  # probes across at least one whole slow call
        timer = QElapsedTimer()
        fired = []
        timer.start()
        QTimer.singleShot(10, lambda: fired.append(timer.elapsed()))
        qtbot.waitUntil(lambda: bool(fired), timeout=5000)
        latencies.append(fired[0])
        qtbot.wait(150)
    assert max(latencies) < 1000, latencies  # the Qt event loop kept running
    st.stream = real_stream
    wait_frames(qtbot, w)


def test_record_screenshot_and_export(qtbot, make_window, tmp_path, sample_video):
    w = make_window()
    qtbot.waitUntil(lambda: w.model_info is not None, timeout=WAIT)
    wait_frames(qtbot, w)

    out = tmp_path / "take.mp4"
    assert w.outputs.start_recording(out)
    assert w.outputs.record_action.isChecked() and w.stylized_view.badge == "REC"
    qtbot.waitUntil(lambda: w.outputs.recorder is not None and w.outputs.recorder.frames_written >= 6, timeout=WAIT)
    w.outputs.stop_recording()
    qtbot.waitUntil(lambda: w.outputs.last_recording is not None, timeout=WAIT)
    assert w.outputs.last_recording.error is None and w.outputs.last_recording.frames >= 6
    with VideoFileReader(out) as r:
        frames = [f for _, f in r.frames()]
    assert len(frames) >= 6 and frames[0].shape == (64, 96, 3)
    assert not w.outputs.record_action.isChecked()

    shot = w.outputs.save_screenshot(tmp_path / "shot.png")
    assert shot is not None and cv2.imread(str(shot)).shape == (64, 96, 3)
    w.controls.set_record_layout("side_by_side")
    shot2 = w.outputs.save_screenshot(tmp_path / "shot2.png")
    assert cv2.imread(str(shot2)).shape == (64, 192, 3)
    assert w.settings.get("output/layout") == "side_by_side"

    # side-by-side recording through the Record action, into the output folder
    w.outputs.last_recording = None
    w.outputs.record_action.trigger()
    assert w.outputs.recorder is not None
    qtbot.waitUntil(lambda: w.outputs.recorder.frames_written >= 4, timeout=WAIT)
    w.outputs.record_action.trigger()
    qtbot.waitUntil(lambda: w.outputs.last_recording is not None, timeout=WAIT)
    sbs = w.outputs.last_recording.path
    assert sbs.parent == tmp_path / "out" and sbs.suffix == ".mp4"
    with VideoFileReader(sbs) as r:
        assert (r.width, r.height) == (192, 64) and sum(1 for _ in r.frames()) >= 4

    # offline export on its own model instance: every frame, while the live view keeps going
    live_stylizer = w.worker.stylizer
    exported = tmp_path / "export.mp4"
    task = w.exports.start(sample_video, exported)
    assert task is not None and w.export_panel.isVisible()
    qtbot.waitUntil(lambda: task.done(), timeout=60000)
    assert w.exports.export.last_error is None, w.exports.export.last_error
    assert w.exports.export.last_result.frames_out == 20 and not w.exports.export.last_result.cancelled
    with VideoFileReader(exported) as r:
        assert sum(1 for _ in r.frames()) == 20
    assert w.worker.stylizer is live_stylizer
    assert not w.export_panel.isVisible() and w.exports.action.isEnabled()
    wait_frames(qtbot, w)

    # Cancel (pressed at once, while the export's model is still loading): nothing is written
    task = w.exports.start(sample_video, tmp_path / "cancelled.mp4")
    w.export_panel.cancel.click()
    qtbot.waitUntil(lambda: task.done(), timeout=60000)
    assert w.exports.export.was_cancelled and w.exports.export.last_error is None
    assert not (tmp_path / "cancelled.mp4").exists() and w.exports.action.isEnabled()

    # virtual camera: on, or a clear "not available" message in the window
    w.outputs.vcam_action.trigger()
    if w.outputs.vcam is None:
        assert not w.outputs.vcam_action.isChecked()
        assert "not available" in w.banners.text("vcam").lower()
    else:
        wait_frames(qtbot, w)
        w.outputs.vcam_action.trigger()
        assert w.outputs.vcam is None


def test_errors_show_in_window_and_recover(qtbot, make_window, tmp_path, random_model_dir, sample_video):
    w = make_window(model_dir=tmp_path / "no-model-here")
    qtbot.waitUntil(lambda: w.banners.text("model") is not None, timeout=WAIT)
    assert "model folder not found" in w.banners.text("model")
    assert "Choose model folder…" in w.banners.banners["model"].buttons
    assert w.model_info is None and "No model" in w.stylized_view.message
    qtbot.waitUntil(lambda: w.source_view.frames_shown > 3, timeout=WAIT)  # the app keeps running

    w.engine.set_model_folder(random_model_dir)  # the user picks a valid folder: recovers
    qtbot.waitUntil(lambda: w.model_info is not None, timeout=WAIT)
    assert w.banners.text("model") is None
    wait_frames(qtbot, w)

    # an unreadable dropped image
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    drop_files(w, bad)
    assert "broken.png" in w.banners.text("style")
    assert w.settings.user_presets == []

    # a file that is not a video; then a good one
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"nope")
    assert not w.sources.open_file(junk)
    assert "not a readable video" in w.banners.text("source")
    assert w.sources.open_file(sample_video)
    assert w.banners.text("source") is None
    wait_frames(qtbot, w)

    # a camera that does not exist
    w.sources.open_source(w.sources.resolve_address("camera:63"))
    qtbot.waitUntil(lambda: w.banners.text("source") is not None, timeout=WAIT)
    assert "camera not available" in w.banners.text("source")
    assert w.sources.open_sample() or w.sources.open_file(sample_video)
    wait_frames(qtbot, w)


def test_sources_and_layout_are_restored(qtbot, make_window, sample_video, tmp_path):
    w = make_window()
    qtbot.waitUntil(lambda: w.source_view.frames_shown > 0, timeout=WAIT)
    w.resize(720, 540)  # inside the offscreen screen (800x800): restoreGeometry keeps windows on screen
    w.views.setSizes([200, 400])
    qtbot.wait(50)
    sizes, size = w.views.sizes(), (w.width(), w.height())
    w.close()
    w2 = make_window(source=None)  # no --source: the last source comes back
    assert w2.sources.info.address == str(sample_video)
    assert (w2.width(), w2.height()) == size
    assert w2.views.sizes() == sizes
    qtbot.waitUntil(lambda: w2.source_view.frames_shown > 0, timeout=WAIT)
    w2.close()
    w3 = make_window(source=None, settings_name="fresh.ini")  # first run: the bundled sample clip
    if w3.sample_clip.is_file():
        assert w3.sources.info.name == "Sample clip"
    else:
        assert "sample clip is missing" in w3.banners.text("source")


def test_file_transport_from_the_window(qtbot, make_window, sample_video, tmp_path):
    w = make_window(source=None, settings_name="fresh.ini")
    other = tmp_path / "other.mp4"
    other.write_bytes(sample_video.read_bytes())
    drop_files(w, other)  # a video dropped on the window becomes the source
    assert w.sources.info.address == str(other) and isinstance(w.sources.source.path, type(other))
    qtbot.waitUntil(lambda: w.source_view.frames_shown > 2, timeout=WAIT)
    assert w.transport.play_button.isEnabled() and w.transport.seek.isEnabled()
    w.transport.loop_check.setChecked(False)
    assert w.sources.source.loop is False and w.settings.get("source/loop") is False
    w.sources.toggle_play()
    assert not w.sources.source.playing
    qtbot.wait(100)
    n = w.sources.source.frames_delivered
    w.sources.seek_to(0.5)  # while paused: the frame at 0.5 s is shown
    qtbot.waitUntil(lambda: w.sources.source.frames_delivered == n + 1, timeout=WAIT)
    assert w.sources.source.position == pytest.approx(0.5, abs=0.05)
    qtbot.wait(150)
    assert w.sources.source.frames_delivered == n + 1
    w.sources.toggle_play()
    qtbot.waitUntil(lambda: w.sources.source.at_end, timeout=WAIT)  # stops at the end without looping
    qtbot.waitUntil(lambda: "End of video" in w.source_view.message, timeout=WAIT)
    assert not w.sources.source.playing


def test_command_line_and_bundled_gallery():
    args, rest = build_parser().parse_known_args(["--model", "m", "--source", "camera:0", "--device", "cpu",
                                                  "-platform", "offscreen"])
    assert (args.model, args.source, args.device) == ("m", "camera:0", "cpu") and rest == ["-platform", "offscreen"]
    presets, problems = load_presets()  # resources/gallery as shipped: it must load whole
    assert presets and not problems, problems
    assert all(p.prompt or p.reference for p in presets)
    assert all(p.thumbnail is not None and p.thumbnail.is_file() for p in presets)


def test_typed_prompt_shows_the_trained_style_it_was_matched_to(qtbot, make_window, random_model_dir, tmp_path):
    import shutil

    from model.vocabulary import StyleVocabulary

    folder = tmp_path / "tiny-vocab"
    shutil.copytree(random_model_dir, folder)
    StyleVocabulary.save(folder, {"thermal": {"title": "Thermal camera", "prompts": ["thermal camera view"]},
                                  "pixel_art": {"title": "Pixel art", "prompts": ["pixel art"]}})
    w = make_window(model_dir=folder)
    wait_frames(qtbot, w)
    w.prompt.edit.setFocus()
    w.prompt.edit.clear()
    qtbot.keyClicks(w.prompt.edit, "show me what a heat camera sees")
    change = applied(qtbot, w.worker, lambda: qtbot.keyClick(w.prompt.edit, Qt.Key.Key_Return))
    assert change.matched.startswith("Thermal camera (closest trained prompt 'thermal camera view'")
    assert w.prompt.current.text() == "Now: \u201cshow me what a heat camera sees\u201d  \u2192 Thermal camera"
    assert "rendered as Thermal camera" in w.statusBar().currentMessage()
    w.prompt.edit.setText("pixel art")
    change = applied(qtbot, w.worker, lambda: qtbot.keyClick(w.prompt.edit, Qt.Key.Key_Return))
    assert change.matched is None and w.prompt.current.text() == "Now: \u201cpixel art\u201d"


def test_unusable_output_folder_is_reported_and_nothing_starts(qtbot, make_window, tmp_path):
    w = make_window()
    wait_frames(qtbot, w)
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    w.settings.set("output/folder", str(blocker / "out"))
    assert w.outputs.start_recording() is False and w.outputs.recorder is None
    assert "Cannot create" in w.banners.text("record")
    assert w.outputs.save_screenshot() is None
    assert "Cannot create" in w.banners.text("screenshot")
