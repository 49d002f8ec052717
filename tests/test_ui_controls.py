"""The controls panel: what it emits when a person changes something, what it shows from the settings
(without emitting), the engine values marked pending until applied, and the speed vocabulary."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QPushButton, QSlider, QSpinBox

from app.ui.controls import ControlsPanel, resolution_choices, speed_from_settings
from app.ui.settings import AppSettings
from model.speed import ADACACHE_MODES, SPEED_PRESETS, SpeedRequest

DEVICES = [("auto", "Auto"), ("cpu", "CPU")]


@pytest.fixture
def panel(qtbot):
    p = ControlsPanel(DEVICES)
    qtbot.addWidget(p)
    p.show()
    return p


@pytest.fixture
def settings(tmp_path):
    return AppSettings(path=tmp_path / "settings.ini")


def record(signal) -> list:
    got = []
    signal.connect(lambda *a: got.append(a[0] if len(a) == 1 else a))
    return got


def test_people_changing_live_settings_emit_values(panel, qtbot):
    strength, speed, fade = record(panel.strengthChanged), record(panel.speedChanged), record(panel.crossfadeChanged)
    slider = panel.findChild(QSlider, "strength")
    slider.setFocus()
    qtbot.keyClick(slider, Qt.Key.Key_PageDown)  # a person moving the slider (it starts at 1.00)
    assert strength and strength[-1] == pytest.approx(panel.strength_value()) == slider.value() / 100 < 1.0

    combo = panel.findChild(QComboBox, "speed")
    assert [combo.itemData(i) for i in range(combo.count())] == list(SPEED_PRESETS)
    combo.setCurrentIndex(combo.findData("fast"))
    assert speed[-1] == SpeedRequest("fast")
    panel.findChild(QSpinBox, "steps").setValue(3)
    assert speed[-1] == SpeedRequest("fast", steps=3)
    ada = panel.findChild(QComboBox, "adacache")
    assert [ada.itemData(i) for i in range(ada.count())] == [""] + list(ADACACHE_MODES)
    ada.setCurrentIndex(ada.findData("off"))
    assert speed[-1] == SpeedRequest("fast", steps=3, adacache="off") == panel.speed_request()

    panel.set_crossfade(450)
    assert fade[-1] == 450 and panel.crossfade_value() == 450
    panel.set_crossfade(0)
    assert fade[-1] == 0 and panel.crossfade_value() == 0


def test_set_speed_request_emits_once_and_only_on_change(panel):
    speed = record(panel.speedChanged)
    panel.set_speed_request(SpeedRequest("balanced", adacache="fast"))
    assert speed == [SpeedRequest("balanced", adacache="fast")]
    panel.set_speed_request(SpeedRequest("balanced", adacache="fast"))
    panel.set_speed_request(SpeedRequest("quality"), emit=False)
    assert len(speed) == 1 and panel.speed_request() == SpeedRequest("quality")


def test_settings_are_shown_without_emitting(panel, settings):
    settings.set("live/strength", 0.3)
    settings.set("live/speed", "fast")
    settings.set("live/steps", 1)
    settings.set("live/crossfade", False)
    settings.set("output/layout", "side_by_side")
    settings.set("engine/device", "cpu")
    settings.set("engine/resolution", "48x32")
    emitted = [record(s) for s in (panel.strengthChanged, panel.speedChanged, panel.crossfadeChanged,
                                   panel.layoutChanged, panel.outputFolderChanged)]
    panel.load_from(settings)
    assert not any(emitted)
    assert panel.strength_value() == pytest.approx(0.3) and panel.speed_request() == SpeedRequest("fast", 1)
    assert panel.crossfade_value() == 0 and panel.record_layout() == "side_by_side"
    assert panel.engine_values() == {"model_dir": "", "device": "cpu", "resolution": "48x32"}


def test_stored_speed_from_another_version_falls_back(settings):
    settings.q.setValue("live/adacache", True)  # the old on/off toggle
    settings.q.setValue("live/speed", "turbo")
    settings.q.setValue("live/steps", -2)
    assert speed_from_settings(settings) == SpeedRequest("quality", None, None)
    settings.set("live/adacache", "slow")
    assert speed_from_settings(settings).adacache == "slow"


def test_engine_values_are_pending_until_applied(panel, qtbot):
    info = SimpleNamespace(native_resolution=(64, 96), resolution_step=(16, 16), default_steps=2)
    applied = {"model_dir": "", "device": "auto", "resolution": ""}
    panel.set_model_info(info, applied)
    assert panel.resolution_options()[0] == "" and "48x32" in panel.resolution_options()
    assert not panel.pending and panel.pending_message() == ""
    panel.set_engine_values("", "cpu", "")
    assert panel.pending and "Apply" in panel.pending_message()
    reload = record(panel.reloadRequested)
    qtbot.mouseClick(panel.findChild(QPushButton, "reload"), Qt.MouseButton.LeftButton)
    assert len(reload) == 1
    panel.set_applied(panel.engine_values())
    assert not panel.pending
    panel.set_engine_values("", "cuda:7", "")  # stored on another machine: shown, not silently dropped
    assert panel.engine_values()["device"] == "cuda:7"


def test_output_settings_and_reset_button(panel, qtbot):
    layout, folder, reset = record(panel.layoutChanged), record(panel.outputFolderChanged), record(panel.resetRequested)
    panel.set_record_layout("side_by_side")
    panel.set_output_folder("/tmp/somewhere")
    assert layout == ["side_by_side"] and folder == ["/tmp/somewhere"] and panel.output_folder() == "/tmp/somewhere"
    qtbot.mouseClick(panel.findChild(QPushButton, "reset"), Qt.MouseButton.LeftButton)
    assert len(reset) == 1


def test_resolution_choices_are_multiples_of_the_step():
    choices = resolution_choices((64, 96), (16, 16))
    assert (64, 96) in choices and (32, 48) in choices
    assert all(h % 16 == 0 and w % 16 == 0 and h >= 32 and w >= 32 for h, w in choices)
    assert len(choices) == len(set(choices))
