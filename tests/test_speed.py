"""Speed presets: resolved per model config, applied to a live stylizer (steps, window, AdaCache), and
reachable from the CLI and the benchmark."""
from __future__ import annotations

import json

import numpy as np
import pytest

from model.config import ModelConfig
from model.speed import SPEED_PRESETS, speed_settings
from model.stylizer import StreamStylizer
from tests.helpers import moving_frames

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # one thread, set per test (not at import)


def test_presets_resolve_against_the_model_config():
    wan = ModelConfig.named("wan-1.3b")
    q, b, f = (speed_settings(n, wan) for n in SPEED_PRESETS)
    assert (q.steps, q.window_frames, q.adacache) == ([1000, 750, 500, 250], 18, "off")
    assert (b.steps, b.window_frames, b.adacache) == ([1000, 750, 500, 250], 18, "slow")
    assert (f.steps, f.window_frames, f.adacache) == ([1000, 500], 6, "fast")
    tiny = ModelConfig.named("tiny").replace(window_frames=2)
    fast = speed_settings("fast", tiny)
    assert fast.steps == [1000, 500] and fast.window_frames == 2  # never longer than what the model has
    assert "2 steps" in fast.describe()
    with pytest.raises(ValueError, match="quality, balanced, fast"):
        speed_settings("turbo", tiny)


def test_a_preset_changes_steps_window_and_adacache_and_the_stream_restarts(random_model):
    s = StreamStylizer(random_model, seed=0, speed="fast")
    assert s.speed == "fast" and s.adacache.mode == "fast" and s.window_frames == 4
    assert s.cache.window_frames == 4 and list(s.schedule.steps) == [1000, 500]
    s.set_text("ink wash painting")
    frames = moving_frames(12)
    out = s.push(frames)
    assert len(out) == 12 and s.cache.rolls > 0  # 6 chunks through a 2-chunk window
    small = s.cache.memory_bytes()
    s.set_speed("quality")
    assert s.window_frames == 6 and s.adacache.mode == "off" and s.cache.count == 0  # a fresh stream
    assert s.cache.memory_bytes() > small
    again = s.push(frames)  # the style survived the new cache
    plain = StreamStylizer(random_model, seed=0)
    plain.set_text("ink wash painting")
    assert all(np.array_equal(a, b) for a, b in zip(again, plain.push(frames)))  # quality == the model's own
    with pytest.raises(ValueError, match="multiple of the chunk"):
        s.set_window(3)


def test_cli_and_bench_take_a_speed_preset(sample_video, random_model_dir, tmp_path, capsys):
    from app.cli import main

    out = tmp_path / "fast.mp4"
    assert main(["stylize", str(sample_video), "-o", str(out), "--style", "ink wash painting",
                 "--model", str(random_model_dir), "--speed", "fast", "-q"]) == 0
    assert out.stat().st_size > 0
    res = tmp_path / "bench.json"
    assert main(["bench", "--config", "tiny", "--resolution", "64x96", "--frames", "8", "--speed", "fast",
                 "--adacache", "off", "--out", str(res)]) == 0
    data = json.loads(res.read_text())
    assert data["settings"]["speed_preset"] == "fast" and data["settings"]["window_latent_frames"] == 4
    assert data["adacache"]["mode"] == "off"  # an explicit --adacache refines the preset
    with pytest.raises(SystemExit) as e:
        main(["stylize", str(sample_video), "-o", str(out), "--style", "ink", "--speed", "warp"])
    assert e.value.code == 2 and "invalid choice" in capsys.readouterr().err
