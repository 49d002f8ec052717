"""The engine controller (app/ui/engine_controller.py), in the window on the fake stylizer: loading
with progress, what is persisted (not the command line's overrides), failures with their ways out,
live settings reaching the engine in the speed vocabulary, reset to defaults, engine errors."""
from __future__ import annotations

import pytest
from PySide6.QtWidgets import QPushButton

from model.speed import SpeedRequest
from tests.helpers import WAIT, wait_frames


def test_loading_shows_progress_and_persists_only_what_the_person_chose(qtbot, make_window, random_model_dir):
    w = make_window(fake=True)
    assert w.overlay.isVisible() and not w.outputs.record_action.isEnabled()  # while loading
    qtbot.waitUntil(lambda: w.model_info is not None, timeout=WAIT)
    assert not w.overlay.isVisible() and w.outputs.record_action.isEnabled()
    assert w.model_info.name == "fake" and "untrained" in w.banners.text("model_note")
    assert w.status.device.text() == "Device: CPU" and "fake (untrained)" in w.status.model.text()
    assert w.settings.get("engine/model_dir") == ""  # --model and --device are for this run only
    assert w.settings.get("engine/device") == "auto"
    assert w.controls.engine_values()["model_dir"] == str(random_model_dir)
    wait_frames(qtbot, w)


def test_a_failed_load_offers_ways_out_and_the_window_keeps_running(qtbot, make_window, tmp_path, random_model_dir):
    w = make_window(model_dir=tmp_path / "nowhere")  # the real loader: a folder that is not there
    qtbot.waitUntil(lambda: w.banners.text("model") is not None, timeout=WAIT)
    assert "model folder not found" in w.banners.text("model") and "Choose a model folder" in w.banners.text("model")
    assert list(w.banners.banners["model"].buttons)[:2] == ["Choose model folder…", "Use embedded model"]
    assert w.model_info is None and "No model" in w.stylized_view.message
    qtbot.waitUntil(lambda: w.source_view.frames_shown > 2, timeout=WAIT)
    w.engine.set_model_folder(random_model_dir)
    qtbot.waitUntil(lambda: w.model_info is not None, timeout=WAIT)
    assert w.banners.text("model") is None and w.settings.get("engine/model_dir") == str(random_model_dir)


def test_live_settings_reach_the_engine_and_are_saved(qtbot, make_window):
    w = make_window(fake=True)
    wait_frames(qtbot, w)
    st, c, s = w.worker.stylizer, w.controls, w.settings
    c.set_strength(0.35)
    qtbot.waitUntil(lambda: st.strength == pytest.approx(0.35), timeout=WAIT)
    c.set_speed_request(SpeedRequest("fast", steps=3, adacache="slow"))
    qtbot.waitUntil(lambda: st.speed == "fast" and len(st.steps) == 3 and st.adacache_mode == "slow", timeout=WAIT)
    assert (s.get("live/speed"), s.get("live/steps"), s.get("live/adacache")) == ("fast", 3, "slow")
    c.set_crossfade(0)
    qtbot.waitUntil(lambda: w.worker.crossfade_s == 0, timeout=WAIT)
    assert s.get("live/crossfade") is False and s.get("live/strength") == pytest.approx(0.35)
    # the next load starts with these settings (they are part of the load request)
    req = w.engine.load_request()
    assert req.speed == SpeedRequest("fast", 3, "slow") and req.strength == pytest.approx(0.35)


def test_reset_to_defaults_restores_settings_and_reloads_a_changed_engine(qtbot, make_window):
    w = make_window(fake=True)
    qtbot.waitUntil(lambda: w.model_info is not None, timeout=WAIT)
    built = len(make_window.fakes)
    c = w.controls
    c.set_speed_request(SpeedRequest("balanced"))
    v = c.engine_values()
    c.set_engine_values(v["model_dir"], v["device"], "48x32")
    c.findChild(QPushButton, "reload").click()
    qtbot.waitUntil(lambda: w.model_info.resolution == (32, 48), timeout=WAIT)
    assert w.settings.get("engine/resolution") == "48x32" and not c.pending
    w.reset_to_defaults()
    assert c.speed_request() == SpeedRequest() and w.settings.get("live/speed") == "quality"
    qtbot.waitUntil(lambda: w.model_info.resolution == (48, 64) and len(make_window.fakes) == built + 2,
                    timeout=WAIT)
    qtbot.waitUntil(lambda: w.worker.stylizer.speed == "quality", timeout=WAIT)


def test_engine_errors_pause_with_retry(qtbot, make_window):
    w = make_window(fake=True)
    wait_frames(qtbot, w)
    st = w.worker.stylizer
    real_stream = st.stream

    def broken(frames):
        raise RuntimeError("kernel exploded")

    st.stream = broken
    qtbot.waitUntil(lambda: w.banners.text("engine") is not None, timeout=WAIT)
    assert "kernel exploded" in w.banners.text("engine")
    assert list(w.banners.banners["engine"].buttons) == ["Retry", "Reload"]
    qtbot.waitUntil(lambda: "paused" in w.stylized_view.message, timeout=WAIT)
    st.stream = real_stream
    w.banners.banners["engine"].buttons["Retry"].click()
    qtbot.waitUntil(lambda: w.banners.text("engine") is None and w.stylized_view.message == "", timeout=WAIT)
    wait_frames(qtbot, w)
