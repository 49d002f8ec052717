"""Shared fixtures: small real model folders and clips, built once per session; torch's thread count
restored after every test (a model load sets it), so results never depend on the order tests run in.
Helpers (footage, the fake stylizer, window drivers) live in tests/helpers.py."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from tests.helpers import moving_frames, synthetic_photo  # noqa: E402, F401  (for imports not yet moved)

# Tests that take seconds each (`--durations` on the 2-core machine: about 3.5 s or more): real models end to
# end, subprocesses, servers. `pytest -m "not slow"` is the quick loop while editing; CI runs everything.
SLOW_MODULES = {"test_gui.py", "test_selftest.py", "test_remote.py", "test_training.py", "test_cli.py", "test_bench.py"}
SLOW_TESTS = {
    "tests/test_stylizer.py::test_same_seed_same_output_and_reset_restarts",
    "tests/test_stylizer.py::test_switch_keeps_last_frame_and_anchors_reference",
    "tests/test_vocabulary.py::test_cli_reports_the_matched_style",
    "tests/test_export.py::test_render_side_by_side_with_audio_passthrough",
    "tests/test_guided.py::test_large_sources_are_shrunk_and_a_new_stream_takes_its_own_size",
    "tests/test_guided.py::test_output_at_the_source_size",
    "tests/test_adacache.py::test_adacache_bench_runs_end_to_end",
    "tests/test_wan_components.py::test_wan_codec_interface",
    "tests/test_wan_components.py::test_vae_streaming_decode_equals_one_pass",
    "tests/test_wan_components.py::test_wan_folder_streams_end_to_end",
    "tests/test_engine.py::test_build_stylizer_applies_the_request",
    "tests/test_bad_input.py::test_a_long_prompt_is_never_echoed_in_full",
}


def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.name in SLOW_MODULES or item.nodeid.split("[")[0] in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _torch_threads_restored():
    """Whatever a test (or a model load in it) does to torch's thread count is undone after it."""
    import torch

    before = torch.get_num_threads()
    yield
    if torch.get_num_threads() != before:
        torch.set_num_threads(before)


@pytest.fixture
def one_torch_thread():
    """Run a test on one torch thread (figures and timings that must not depend on the core count)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def qasync_loop(qapp):
    """asyncio on the Qt event loop (what the window's controllers await on), one per test module."""
    import asyncio

    from app.gui import ensure_qasync_loop

    loop = ensure_qasync_loop(qapp)
    yield loop
    asyncio.events._set_running_loop(None)
    asyncio.set_event_loop(None)


@pytest.fixture(scope="session")
def text_encoder():
    from model.text import MiniLMEncoder

    return MiniLMEncoder()


@pytest.fixture(scope="session")
def random_model_dir(tmp_path_factory):
    """A model folder with the tiny config and random weights (fast, real code paths)."""
    import torch

    from model.checkpoint import build_tiny_parts, save_tiny_model
    from model.config import ModelConfig

    cfg = ModelConfig.named("tiny").replace(resolution=(64, 96))
    torch.manual_seed(0)
    dit, ae = build_tiny_parts(cfg)
    return save_tiny_model(tmp_path_factory.mktemp("model") / "tiny-random", cfg, dit, ae,
                           {"name": "tiny-random", "trained": False})


@pytest.fixture(scope="session")
def random_model(random_model_dir, text_encoder):
    from model.checkpoint import load_model

    return load_model(random_model_dir, text_encoder=text_encoder)


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory):
    """Synthetic photos in a temporary folder, so data and training tests never depend on which
    wallpaper packages are installed: 8 loose images, one KDE-style wallpaper ("Meadow") and a
    non-image file. Read-only for the tests that use it."""
    import cv2

    d = tmp_path_factory.mktemp("photos")
    for i in range(8):
        cv2.imwrite(str(d / f"photo_{i}.{'png' if i % 2 else 'jpg'}"), synthetic_photo(i))
    kde = d / "Meadow" / "contents"  # a KDE-style wallpaper: counts once, as "Meadow"
    (kde / "images").mkdir(parents=True)
    cv2.imwrite(str(kde / "images" / "320x200.jpg"), synthetic_photo(20, 200, 320))
    cv2.imwrite(str(kde / "images" / "160x100.jpg"), synthetic_photo(21, 100, 160))
    cv2.imwrite(str(kde / "screenshot.jpg"), synthetic_photo(22))
    (d / "notes.txt").write_text("not an image")
    return d


@pytest.fixture
def sample_video(tmp_path):
    from app.outputs.mp4 import Mp4Writer

    path = tmp_path / "clip.mp4"
    with Mp4Writer(path, 24) as w:
        for f in moving_frames(20):
            w.write(f)
    return path


@pytest.fixture
def gallery_dir(tmp_path):
    """A small style gallery: two text presets (one with a thumbnail and a strength) and a reference."""
    import json

    import cv2
    import numpy as np

    folder = tmp_path / "gallery"
    folder.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(folder / "ink.jpg"), rng.integers(0, 255, (60, 96, 3), dtype=np.uint8))
    cv2.imwrite(str(folder / "ref_wc.jpg"), rng.integers(0, 255, (80, 120, 3), dtype=np.uint8))
    (folder / "presets.json").write_text(json.dumps([
        {"name": "Ink wash", "style": "ink_wash", "prompt": "ink wash painting", "thumbnail": "ink.jpg",
         "strength": 1.0},
        {"name": "Pencil sketch", "style": "pencil_sketch", "prompt": "pencil sketch", "strength": 0.8},
        {"name": "Watercolor ref", "reference": "ref_wc.jpg", "thumbnail": "ref_wc.jpg"},
    ]))
    return folder


@pytest.fixture
def make_window(qtbot, qasync_loop, tmp_path, gallery_dir, random_model_dir, sample_video, monkeypatch):
    """``make(...)`` opens the real main window on a small real model (or, with ``fake=True``, on
    tests.helpers.FakeStylizer: the window's own behaviour, fast); every window is closed at the end
    and must leave no thread or timer running."""
    from app.ui.main_window import MainWindow
    from app.ui.settings import AppSettings
    from tests.helpers import use_fake_stylizer

    windows = []

    def make(model_dir=random_model_dir, source=sample_video, settings_name="settings.ini", start=True,
             fake=False):
        if fake:
            make.fakes = use_fake_stylizer(monkeypatch)
        settings = AppSettings(path=tmp_path / settings_name)
        settings.set("output/folder", str(tmp_path / "out"))
        w = MainWindow(settings=settings, model_dir=model_dir, source=str(source) if source else None,
                       device="cpu", gallery_dir=gallery_dir, data_dir=tmp_path / "data")
        qtbot.addWidget(w)
        if settings.get_bytes("window/geometry") is None:
            w.resize(1200, 760)
        w.show()
        if start:
            w.start()
        windows.append(w)
        return w

    yield make
    for w in windows:
        w.close()
        assert w.threads_alive == []
        assert not w.display.status_timer.isActive() and not w.sources.transport_timer.isActive()
        assert not w.display.timer.isActive()


@pytest.fixture(scope="module")
def guided_model(tmp_path_factory, text_encoder):
    """A random tiny source-guided model (output at the source's size), saved as a model folder."""
    import torch

    from model.checkpoint import build_tiny_parts, load_model, save_tiny_model
    from model.config import ModelConfig

    cfg = ModelConfig.named("tiny").replace(vae="guided", latent_channels=8, vae_stride=(1, 16, 16),
                                            codec_widths=(4, 8, 8, 16), resolution=(64, 96), window_frames=4)
    torch.manual_seed(0)
    dit, ae = build_tiny_parts(cfg)
    folder = save_tiny_model(tmp_path_factory.mktemp("guided") / "m", cfg, dit, ae, {"name": "guided-random"})
    return load_model(folder, text_encoder=text_encoder)
