"""The window's export flow (app/ui/export_flow.py) on the fake stylizer: what the finished message
tells the user about the file it rendered."""
from __future__ import annotations

import app.engine
import app.ui.export
from tests.helpers import wait_frames
from tests.test_cli import truncated_sample


def test_an_export_of_a_truncated_input_says_the_input_ended_early(qtbot, make_window, monkeypatch, tmp_path):
    w = make_window(fake=True)
    monkeypatch.setattr(app.ui.export, "build_stylizer", app.engine.build_stylizer)  # the export's own fake model
    wait_frames(qtbot, w, 2)
    cut = truncated_sample(tmp_path, 0.3)  # its header announces 144 frames
    task = w.exports.start(cut, tmp_path / "cut-stylized.mp4")
    assert task is not None
    qtbot.waitUntil(lambda: task.done(), timeout=60000)
    result = w.exports.export.last_result
    assert w.exports.export.last_error is None and result is not None and result.input_short
    message = w.statusBar().currentMessage()
    assert message.startswith("Export done: ")
    assert f"the input ended early: {result.frames_in} of the 144 frames" in message, message
    assert 0 < result.frames_in < 144
