"""One speed vocabulary: the window, ``stylize`` and ``bench`` offer the same names (quality, balanced,
fast; AdaCache off, slow, fast) and a request means the same engine settings wherever it is applied:
at load, or live on a stream that was running with other settings."""
from __future__ import annotations

import itertools

import pytest
from PySide6.QtWidgets import QComboBox

from app.ui.controls import ControlsPanel
from model.adacache import MODES
from model.speed import ADACACHE_MODES, SPEED_PRESETS, SpeedRequest, speed_settings
from model.stylizer import StreamStylizer


def choices(parser, *argv) -> dict:
    sub = next(a for a in parser._actions if a.dest == "command").choices[argv[0]] if argv else parser
    return {a.dest: list(a.choices) for a in sub._actions if a.dest in ("speed", "adacache")}


def test_window_cli_and_bench_offer_the_same_names(qtbot):
    from app.cli import build_parser
    from benchmarks.stream_bench import build_parser as bench_parser

    assert ADACACHE_MODES == MODES
    expected = {"speed": list(SPEED_PRESETS), "adacache": list(ADACACHE_MODES)}
    assert choices(build_parser(), "stylize") == expected
    assert choices(bench_parser()) == expected
    panel = ControlsPanel([("cpu", "CPU")])
    qtbot.addWidget(panel)
    speed, ada = panel.findChild(QComboBox, "speed"), panel.findChild(QComboBox, "adacache")
    assert [speed.itemData(i) for i in range(speed.count())] == expected["speed"]
    assert [ada.itemData(i) for i in range(1, ada.count())] == expected["adacache"]  # after "preset's"


def settings_of(s: StreamStylizer) -> tuple:
    return s.speed, list(s.schedule.steps), s.window_frames, s.adacache.mode


@pytest.mark.parametrize("request_", [SpeedRequest(p, st, a) for p, st, a in
                                      itertools.product(SPEED_PRESETS, (None, 3), (None, "off", "fast"))],
                         ids=lambda r: r.describe())
def test_a_request_means_the_same_at_load_and_live(random_model, request_):
    fresh = StreamStylizer(random_model)
    request_.apply(fresh)  # what stylize/bench build
    preset = speed_settings(request_.preset, random_model.config)
    steps = preset.steps if request_.steps is None else [1000, 667, 333]
    assert settings_of(fresh) == (request_.preset, steps, preset.window_frames, request_.adacache or preset.adacache)
    live = StreamStylizer(random_model)
    SpeedRequest("fast", 1, "slow").apply(live)  # the window was running something else
    request_.apply(live)  # the engine's live set_speed
    assert settings_of(live) == settings_of(fresh)


def test_requests_are_checked():
    with pytest.raises(ValueError, match="quality, balanced, fast"):
        SpeedRequest("turbo")
    with pytest.raises(ValueError, match="steps"):
        SpeedRequest("fast", steps=0)
    with pytest.raises(ValueError, match="off, slow, fast"):
        SpeedRequest("fast", adacache="on")
    assert SpeedRequest().describe() == "quality"
    assert SpeedRequest("fast", 3, "off").describe() == "fast (3 steps, AdaCache off)"
