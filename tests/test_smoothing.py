"""Motion-gated temporal smoothing of output latents (model/smoothing.py)."""
import pytest
import torch

from model.smoothing import LatentSmoother, smooth_frame


def test_a_small_change_is_damped_a_large_one_passes_and_zero_strength_is_the_identity():
    prev = torch.zeros(1, 4, 3, 5)
    small = torch.full((1, 4, 3, 5), 0.1)
    assert torch.allclose(smooth_frame(prev, small, 0.8, gate=1.0), small * (1 - 0.8 * 0.9))
    large = torch.full((1, 4, 3, 5), 1.5)
    assert torch.equal(smooth_frame(prev, large, 0.8, gate=1.0), large), "motion is not smeared"
    mixed = small.clone()
    mixed[..., 0, 0] = 2.0  # one moving latent pixel among still ones: gated per pixel
    out = smooth_frame(prev, mixed, 0.8)
    assert out[..., 0, 0].eq(2.0).all() and out[..., 1, 1].lt(0.1).all()
    assert torch.equal(smooth_frame(prev, small, 0.0), small)


def test_the_smoother_blends_across_chunks_starts_clean_and_leaves_still_streams_alone():
    torch.manual_seed(0)
    chunks = [torch.randn(1, 2, 4, 3, 5) * 0.1 for _ in range(3)]
    off = LatentSmoother(0.0)
    assert all(off(c) is c for c in chunks)
    on = LatentSmoother(0.5)
    first = on(chunks[0])
    assert torch.equal(first[:, 0], chunks[0][:, 0]) and not torch.equal(first[:, 1], chunks[0][:, 1])
    second = on(chunks[1])
    assert not torch.equal(second[:, 0], chunks[1][:, 0]), "the blend carries over the chunk boundary"
    on.reset()
    assert torch.equal(on(chunks[2])[:, 0], chunks[2][:, 0]), "after reset the first frame passes"
    still = torch.randn(1, 1, 4, 3, 5).repeat(1, 2, 1, 1, 1)
    on.reset()
    assert torch.equal(on(still), still) and torch.equal(on(still), still)
    assert on(torch.randn(1, 2, 4, 6, 10)).shape == (1, 2, 4, 6, 10), "a new size starts over"


@pytest.mark.parametrize("strength,gate", [(-0.1, 1.0), (1.0, 1.0), (0.5, 0.0)])
def test_bad_settings_are_refused(strength, gate):
    with pytest.raises(ValueError, match="smoothing"):
        LatentSmoother(strength, gate)
