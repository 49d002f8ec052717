"""The style controller (app/ui/style_controller.py), in the window on the fake stylizer: presets,
prompts and reference images reach the engine; the gallery, the prompt box and the remembered style
follow what the engine applied; bad images and vanished styles are reported and recovered from."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from PySide6.QtGui import QImage

from model.style import StyleSpec
from tests.helpers import WAIT, applied, fake_render, wait_frames


def image(path, seed=0, size=(70, 110)):
    cv2.imwrite(str(path), np.random.default_rng(seed).integers(0, 255, (*size, 3), dtype=np.uint8))
    return path


@pytest.fixture
def window(make_window, qtbot):
    w = make_window(fake=True)
    qtbot.waitUntil(lambda: w.styles.current is not None, timeout=WAIT)
    return w


def test_first_run_starts_on_the_first_preset(window):
    w = window
    assert w.styles.current.label == "Ink wash" and w.worker.stylizer.style == StyleSpec(prompt="ink wash painting")
    assert [p.name for p in w.builtin_presets] == ["Ink wash", "Pencil sketch", "Watercolor ref"]
    assert w.gallery.list.currentRow() == 0 and w.prompt.current.text() == "Now: Ink wash"
    assert [a.text() for a in w.styles.preset_actions] == ["Ink wash", "Pencil sketch", "Watercolor ref"]


def test_presets_and_prompts_switch_the_engine_and_are_remembered(qtbot, window):
    w, styles = window, window.styles
    change = applied(qtbot, w.worker, lambda: styles.select_preset(1))
    assert change.label == "Pencil sketch" and w.controls.strength_value() == pytest.approx(0.8)
    assert w.settings.last_style == {"kind": "preset", "key": "preset:Pencil sketch"}
    assert w.gallery.list.currentRow() == 1
    styles.select_preset(7)  # no such preset: nothing happens
    change = applied(qtbot, w.worker, lambda: styles.apply_prompt("  neon city  "))
    assert change.spec == StyleSpec(prompt="neon city") and change.kind == "text"
    assert w.settings.last_style == {"kind": "text", "prompt": "neon city"}
    assert w.gallery.list.currentItem() is None and "neon city" in w.statusBar().currentMessage()
    change = applied(qtbot, w.worker, lambda: styles.select_preset(2))
    assert change.kind == "reference" and change.ref_len > 0
    assert w.settings.last_style == {"kind": "preset", "key": "preset:Watercolor ref"}


def test_a_reference_image_becomes_a_saved_user_preset(qtbot, window, tmp_path):
    w, styles = window, window.styles
    src = image(tmp_path / "my style.png", seed=3)
    change = applied(qtbot, w.worker, lambda: styles.add_reference_image(src), lambda c: c.kind == "reference")
    stored = w.data_dir / "styles"
    assert change.kind == "reference" and change.spec.reference.parent == stored
    assert w.settings.user_presets[0]["name"] == "my style" and styles.presets[-1].user
    assert [a.text() for a in styles.preset_actions][-1] == "my style"  # Ctrl+4
    again = styles.add_reference_image(src)  # the same picture again: no second preset
    assert len(styles.user_presets) == 1 and again is styles.user_presets[0]
    qimg = QImage(str(image(tmp_path / "pixels.png", seed=4)))
    change = applied(qtbot, w.worker, lambda: styles.add_image_data(qimg),  # a dropped picture, not a file
                     lambda c: c.spec.reference is not None and c.spec.reference.name.startswith("dropped-"))
    assert change.kind == "reference" and len(styles.user_presets) == 2
    assert set(stored.iterdir()) == {p.reference for p in styles.user_presets}  # no temporary file left
    styles.remove_user_preset(again)  # the gallery's "Remove": the stored copy goes too
    assert len(w.settings.user_presets) == 1 and not again.reference.exists()
    assert change.spec.reference.is_file() and [p.name for p in styles.presets][-1].startswith("dropped-")


def test_bad_images_are_reported_and_nothing_is_saved(qtbot, window, tmp_path):
    w, styles = window, window.styles
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    assert styles.add_reference_image(bad) is None
    assert "broken.png" in w.banners.text("style") and w.settings.user_presets == []
    assert styles.add_image_data(QImage()) is None and "could not be read" in w.banners.text("style")


def test_the_last_style_comes_back_and_a_vanished_one_falls_back(qtbot, make_window, tmp_path):
    w = make_window(fake=True, start=False)
    w.settings.last_style = {"kind": "text", "prompt": "charcoal drawing"}
    w.start()
    qtbot.waitUntil(lambda: w.styles.current is not None, timeout=WAIT)
    assert w.styles.current.spec == StyleSpec(prompt="charcoal drawing")
    w.close()

    ref = image(tmp_path / "ref.png", seed=9)
    w2 = make_window(fake=True, start=False, settings_name="second.ini")
    w2.settings.last_style = {"kind": "reference", "reference": str(ref)}
    w2.start()
    qtbot.waitUntil(lambda: w2.styles.current is not None, timeout=WAIT)
    assert w2.styles.current.spec == StyleSpec(reference=ref) and w2.styles.current.label == "ref"
    ref.write_bytes(b"gone bad")  # the remembered image is no longer an image: the next load falls back
    with qtbot.waitSignal(w2.worker.styleFailed, timeout=WAIT) as failed:
        w2.engine.reload()
    assert "ref.png" in failed.args[0]
    qtbot.waitUntil(lambda: w2.styles.current.label == "Ink wash", timeout=WAIT)  # the first preset instead
    assert w2.settings.last_style == {"kind": "preset", "key": "preset:Ink wash"}


def test_a_style_switch_cross_fades_in_the_view_when_asked(qtbot, window):
    """Through the public controls only: with a 1 s cross-fade the first frames of the new style are
    still mixed with the old output and the mix moves to the new style; with it off, the first frame is
    the new style already."""
    w = window
    wait_frames(qtbot, w, 2)  # something on screen to fade from
    shown = []
    w.display.shown.connect(shown.append)

    def off_new_style(f, kind):  # 0: exactly the new style's rendering of this frame's source
        return float(np.abs(f.image.astype(np.float32) - fake_render(f.source, kind)).mean())

    w.controls.set_crossfade(1000)
    qtbot.waitUntil(lambda: w.worker.crossfade_s == 1.0, timeout=WAIT)
    change = applied(qtbot, w.worker, lambda: w.styles.select_preset(2))  # text -> reference image

    def after() -> list[float]:
        return [off_new_style(f, "reference") for f in shown if f.style_serial == change.serial]

    qtbot.waitUntil(lambda: 0.0 in after(), timeout=WAIT)
    d = after()
    fading = d[:d.index(0.0)]
    assert len(fading) >= 3 and fading[0] > 20, d  # spread over frames, starting far from the new style
    assert fading[-1] < fading[0]

    w.controls.set_crossfade(0)
    qtbot.waitUntil(lambda: w.worker.crossfade_s == 0.0, timeout=WAIT)
    change = applied(qtbot, w.worker, lambda: w.styles.select_preset(0))  # back to text, no fade
    qtbot.waitUntil(lambda: any(f.style_serial == change.serial for f in shown), timeout=WAIT)
    first = next(f for f in shown if f.style_serial == change.serial)
    assert off_new_style(first, "text") == 0.0
