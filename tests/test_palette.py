"""Reference mode's colour map (model/palette.py) and its fit (model/train/palette.py), on tiny inputs."""
import json

import cv2
import numpy as np
import pytest

from model.checkpoint import CheckpointError
from model.palette import MAP_SHAPE, ReferencePalette, base, lab_stats
from model.stylizer import StreamStylizer
from model.train import palette as fit
from tests.conftest import synthetic_photo

ONE = -1  # the constant feature


def lighter_by(amount: float) -> np.ndarray:
    """Weights that add ``amount`` (8-bit) to every channel, whatever the frame and reference."""
    w = np.zeros(MAP_SHAPE)
    w[ONE, 3, :] = amount / 255.0
    return w


def test_frames_pass_unchanged_without_weights_or_without_a_reference():
    frame = synthetic_photo(0, 48, 64)
    assert ReferencePalette(None)(frame) is frame
    text_style = ReferencePalette(lighter_by(20))
    text_style.set_reference(None)
    assert text_style(frame) is frame and not text_style.active


def test_one_map_per_frame_offset_and_gain_as_weighted():
    frame = (synthetic_photo(1, 48, 64) // 2).astype(np.uint8)  # dark: no clipping at the top
    p = ReferencePalette(lighter_by(20))
    p.set_reference(synthetic_photo(2, 80, 80))
    out = p(frame)
    diff = out.astype(int) - frame.astype(int)
    assert out.dtype == np.uint8 and out.shape == frame.shape
    assert (diff == 20).all(), "the same offset for every pixel"
    assert lab_stats(out)[0][0] > lab_stats(frame)[0][0] + 10
    w = np.zeros(MAP_SHAPE)
    w[ONE, 0, 0] = 0.5  # red gains half of its base; green and blue stay
    p = ReferencePalette(w)
    p.set_reference(synthetic_photo(2, 80, 80))
    out = p(frame).astype(int)
    assert np.abs(out[..., 0] - (frame[..., 0] + 0.5 * base(frame)[..., 0])).max() <= 1.5
    assert np.array_equal(out[..., 1:], frame[..., 1:])


def test_a_map_that_lowers_contrast_keeps_the_fine_detail():
    grain = np.random.default_rng(0).integers(-24, 25, (288, 384, 1))
    frame = np.clip(synthetic_photo(4, 288, 384) // 2 + 64 + grain, 0, 255).astype(np.uint8)  # no clipping
    w = np.zeros(MAP_SHAPE)
    for c in range(3):
        w[ONE, c, c] = -0.5  # every channel's base at half contrast ...
    w[ONE, 3, :] = 0.25  # ... around mid grey
    p = ReferencePalette(w)
    p.set_reference(synthetic_photo(2, 80, 80))
    out = p(frame)

    def detail(img):
        return cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()

    assert out.std() < 0.8 * frame.std(), "the base's contrast is lowered"
    assert detail(out) > 0.8 * detail(frame), "the detail above the base is not"


def test_weights_of_the_wrong_shape_are_refused_in_one_line(tmp_path, guided_model):
    import shutil

    with pytest.raises(ValueError, match="refit them with `main.py train palette`"):
        ReferencePalette(np.zeros((10, 3)))
    folder = shutil.copytree(guided_model.folder, tmp_path / "model")
    card = json.loads((folder / "model_card.json").read_text()) if (folder / "model_card.json").exists() else {}
    card["reference_palette"] = {"weights": np.zeros((10, 3)).tolist()}  # an earlier version's offset map
    (folder / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="model_card.json: reference_palette weights have 30 numbers"):
        StreamStylizer(folder)


def test_the_running_mean_keeps_colours_from_pumping_and_reset_forgets_it():
    dark, bright = np.full((32, 32, 3), 40, np.uint8), np.full((32, 32, 3), 200, np.uint8)
    w = np.zeros(MAP_SHAPE)
    w[0, 3, :] = -1.0  # the running lightness (feature 0, in 0..1) taken off every channel ...
    w[ONE, 3, :] = 0.5  # ... and half of full scale added: every frame's mean led toward one grey
    p = ReferencePalette(w)
    p.set_reference(dark)
    assert p(dark).mean() > 100  # lifted toward the grey
    # the running mean is still mostly the dark frame's: a bright frame gets nearly the same lift
    assert p(bright).mean() > bright.mean() + 20
    p.reset()
    assert p(bright).mean() < bright.mean() - 20  # alone, the bright frame is brought down to the grey


def test_the_stylizer_applies_it_in_reference_mode_only(guided_model):
    frames = [synthetic_photo(3 + i, 64, 96) for i in range(4)]
    st = StreamStylizer(guided_model, noise="fixed")
    plain = {}
    for mode in ("text", "reference"):
        st.reset()
        st.set_text("ink wash painting") if mode == "text" else st.set_reference(synthetic_photo(9, 80, 80))
        plain[mode] = st.push(frames) + st.flush()
    st.palette.weights = lighter_by(25)
    for mode in ("text", "reference"):
        st.reset()
        st.set_text("ink wash painting") if mode == "text" else st.set_reference(synthetic_photo(9, 80, 80))
        got = st.push(frames) + st.flush()
        same = all(np.array_equal(a, b) for a, b in zip(got, plain[mode]))
        assert same == (mode == "text"), mode
    assert np.mean(got) > np.mean(plain["reference"]) + 5


@pytest.fixture
def reference_clips(tmp_path):
    """A data set of reference clips whose targets are their sources, with half their contrast, washed in
    their reference's colour."""
    rng = np.random.default_rng(0)
    clips = []
    for i in range(72):
        split = "val" if i >= 60 else "train"
        src = np.stack([synthetic_photo(20 + i, 64, 96)] * 2)
        ref = np.full((64, 64, 3), rng.integers(30, 220, 3), np.uint8)
        tgt = (0.5 * src + 0.5 * ref[0, 0]).astype(np.uint8)
        (tmp_path / split).mkdir(exist_ok=True)
        np.save(tmp_path / f"{split}/{i:05d}.npy", src)
        np.save(tmp_path / f"{split}/{i:05d}.target.npy", tgt)
        cv2.imwrite(str(tmp_path / f"{split}/{i:05d}.ref.png"), ref[..., ::-1])
        clips.append({"file": f"{split}/{i:05d}.npy", "split": split, "style": "reference",
                      "reference": f"{split}/{i:05d}.ref.png", "target": f"{split}/{i:05d}.target.npy"})
    (tmp_path / "manifest.json").write_text(json.dumps({"version": 2, "clips": clips}))
    return tmp_path


def test_the_fit_learns_a_colour_map_and_writes_it_to_the_card(tmp_path, guided_model, reference_clips):
    import shutil

    folder = shutil.copytree(guided_model.folder, tmp_path / "model")
    rec = fit.fit_palette(folder, reference_clips, log=lambda *a: None)
    assert rec["clips"] == 60 and rec["val_clips"] == 12
    assert rec["psnr_cv"]["with"] > rec["psnr_cv"]["without"] + 1.5, rec
    assert rec["psnr_val"]["with"] > rec["psnr_val"]["without"] + 1.5, rec
    card = json.loads((folder / "model_card.json").read_text())
    assert np.array(card["reference_palette"]["weights"]).shape == MAP_SHAPE
    assert StreamStylizer(folder).palette.weights is not None


def test_the_fit_needs_enough_reference_clips_and_says_so(tmp_path, guided_model, reference_clips):
    man = json.loads((reference_clips / "manifest.json").read_text())
    man["clips"] = man["clips"][:5]
    (reference_clips / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(SystemExit, match="has 5 training reference clips"):
        fit.main(["--model", str(guided_model.folder), "--data", str(reference_clips)])
