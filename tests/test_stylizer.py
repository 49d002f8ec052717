"""StreamStylizer: chunking, determinism, style switching and bad input, on a real (random) model."""
from __future__ import annotations

import numpy as np
import pytest

from model.style import StyleSpec
from model.stylizer import StreamStylizer, StyleError
from tests.helpers import moving_frames


def make(random_model, **kw):
    return StreamStylizer(random_model, seed=kw.pop("seed", 0), **kw)


def assert_pictures(frames) -> None:
    """Real pictures, not a blank: an all-black (or flat) output fails, whatever its shape."""
    for f in frames:
        assert f.std() > 2.0 and 3.0 < f.mean() < 252.0, f"a flat frame (mean {f.mean():.1f}, std {f.std():.2f})"


def test_push_buffers_to_chunks_and_flush_pads(random_model):
    s = make(random_model)
    s.set_text("ink wash painting")
    frames = moving_frames(5)
    out = s.push(frames[:1])
    assert out == [] and s.pending == 1
    out += s.push(frames[1:])
    assert len(out) == 4 and s.pending == 1
    out += s.flush()
    assert len(out) == 5 and s.pending == 0
    assert all(o.shape == (64, 96, 3) and o.dtype == np.uint8 for o in out)
    assert_pictures(out)
    assert not np.array_equal(out[0], out[3])  # the frames follow the moving input


def test_same_seed_same_output_and_reset_restarts(random_model):
    frames = moving_frames(6)
    a, b = make(random_model), make(random_model)
    for s in (a, b):
        s.set_text("pencil sketch")
    out_a, out_b = a.push(frames), b.push(frames)
    assert all(np.array_equal(x, y) for x, y in zip(out_a, out_b))
    a.reset()
    again = a.push(frames)
    assert all(np.array_equal(x, y) for x, y in zip(out_a, again))
    c = make(random_model, seed=1)
    c.set_text("pencil sketch")
    assert not all(np.array_equal(x, y) for x, y in zip(out_a, c.push(frames)))


def test_switch_keeps_last_frame_and_anchors_reference(random_model):
    s = make(random_model)
    s.set_text("watercolor")
    s.push(moving_frames(8))
    assert s.cache.ref_len == 0 and len(s.cache.frames_in_window()) == 6
    last = s.cache.frames_in_window()[-1]
    ref = moving_frames(1, 50, 80, seed=3)[0]
    s.set_reference(ref)
    assert s.cache.frames_in_window() == [last]
    assert s.cache.ref_len == s.cache.ref_capacity and s.cache.cross_ready
    assert s.style.kind == "reference"
    s.push(moving_frames(20))
    assert s.cache.ref_len == s.cache.ref_capacity
    s.set_text("cartoon")
    assert s.cache.ref_len == 0 and s.style == StyleSpec(prompt="cartoon")


def test_bad_inputs_raise_clear_errors(random_model, tmp_path):
    s = make(random_model)
    with pytest.raises(StyleError, match="no style set"):
        s.push(moving_frames(2))
    with pytest.raises(StyleError, match="empty"):
        s.set_text("   ")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(StyleError, match="not an image"):
        s.set_reference(bad)
    with pytest.raises(StyleError, match="not found"):
        s.set_reference(tmp_path / "missing.png")
    s.set_text("ink")
    with pytest.raises(ValueError, match="uint8 HxWx3"):
        s.push([np.zeros((10, 10), np.uint8)])
    with pytest.raises(ValueError, match="strength"):
        s.set_strength(0)


def test_any_input_size_is_fitted(random_model):
    s = make(random_model)
    s.set_text("pixel art")
    out = s.push([moving_frames(1, 480, 270)[0], moving_frames(1, 30, 200)[0]])
    assert [o.shape for o in out] == [(64, 96, 3)] * 2
    assert_pictures(out)


def test_the_codec_runs_channels_last_and_matches_the_plain_autoencoder(random_model):
    """The live codec keeps its autoencoder channels-last for speed; its latents and frames must be
    those of the plain (contiguous) network."""
    import copy

    import torch

    codec = random_model.codec
    plain = copy.deepcopy(codec.ae).to(memory_format=torch.contiguous_format)
    video = torch.rand(1, 2, 3, 64, 96) * 2 - 1
    with torch.no_grad():
        z = codec.encode(video)
        frames = codec.decode(z)
        torch.testing.assert_close(z[0], plain.encode(video[0]), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(frames[0], plain.decode(z[0]), atol=1e-5, rtol=1e-4)
    assert z.is_contiguous() and frames.is_contiguous() and frames.shape == video.shape
