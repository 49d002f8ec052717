"""Reference mode's palette (model/palette.py) and its fit (model/train/palette.py), on tiny inputs."""
import json

import cv2
import numpy as np
import pytest

from model.palette import FEATURES, ReferencePalette, lab_stats
from model.stylizer import StreamStylizer
from model.train import palette as fit
from tests.conftest import synthetic_photo


def lighter_by(amount: float) -> np.ndarray:
    """Weights that predict the output's own mean colour with its lightness raised by ``amount``."""
    w = np.zeros((FEATURES, 3))
    w[0, 0] = w[1, 1] = w[2, 2] = 1.0
    w[-1, 0] = amount
    return w


def test_frames_pass_unchanged_without_weights_or_without_a_reference():
    frame = synthetic_photo(0, 48, 64)
    assert ReferencePalette(None)(frame) is frame
    text_style = ReferencePalette(lighter_by(20))
    text_style.set_reference(None)
    assert text_style(frame) is frame and not text_style.active


def test_the_output_mean_moves_by_one_offset_to_the_predicted_colour():
    frame = (synthetic_photo(1, 48, 64) // 2).astype(np.uint8)  # dark: no clipping at the top
    p = ReferencePalette(lighter_by(20))
    p.set_reference(synthetic_photo(2, 80, 80))
    out = p(frame)
    diff = out.astype(int) - frame.astype(int)
    assert out.dtype == np.uint8 and out.shape == frame.shape
    assert (diff == diff[0, 0]).all(), "the same offset for every pixel"
    assert abs(lab_stats(out)[0][0] - lab_stats(frame)[0][0] - 20) < 3  # lightness up by about 20


def test_the_running_mean_keeps_colours_from_pumping_and_reset_forgets_it():
    dark, bright = np.full((32, 32, 3), 40, np.uint8), np.full((32, 32, 3), 200, np.uint8)
    w = np.zeros((FEATURES, 3))
    w[-1] = (150, 128, 128)  # every output's mean colour predicted as the same mid grey
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
    """A data set of reference clips whose targets are their sources washed in their reference's colour."""
    rng = np.random.default_rng(0)
    clips = []
    for i in range(28):
        split = "val" if i >= 24 else "train"
        src = np.stack([synthetic_photo(20 + i, 64, 96)] * 2)
        ref = np.full((64, 64, 3), rng.integers(30, 220, 3), np.uint8)
        tgt = (0.2 * src + 0.8 * ref[0, 0]).astype(np.uint8)
        (tmp_path / split).mkdir(exist_ok=True)
        np.save(tmp_path / f"{split}/{i:05d}.npy", src)
        np.save(tmp_path / f"{split}/{i:05d}.target.npy", tgt)
        cv2.imwrite(str(tmp_path / f"{split}/{i:05d}.ref.png"), ref[..., ::-1])
        clips.append({"file": f"{split}/{i:05d}.npy", "split": split, "style": "reference",
                      "reference": f"{split}/{i:05d}.ref.png", "target": f"{split}/{i:05d}.target.npy"})
    (tmp_path / "manifest.json").write_text(json.dumps({"version": 2, "clips": clips}))
    return tmp_path


def test_the_fit_learns_a_palette_and_writes_it_to_the_card(tmp_path, guided_model, reference_clips):
    import shutil

    folder = shutil.copytree(guided_model.folder, tmp_path / "model")
    rec = fit.fit_palette(folder, reference_clips, log=lambda *a: None)
    assert rec["clips"] == 24 and rec["val_clips"] == 4
    assert rec["mean_colour_error_cv"]["with"] < 0.5 * rec["mean_colour_error_cv"]["without"]
    assert rec["mean_colour_error_val"]["with"] < 0.5 * rec["mean_colour_error_val"]["without"]
    card = json.loads((folder / "model_card.json").read_text())
    assert np.array(card["reference_palette"]["weights"]).shape == (FEATURES, 3)
    assert StreamStylizer(folder).palette.weights is not None


def test_the_fit_needs_enough_reference_clips_and_says_so(tmp_path, guided_model, reference_clips):
    man = json.loads((reference_clips / "manifest.json").read_text())
    man["clips"] = man["clips"][:5]
    (reference_clips / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(SystemExit, match="has 5 training reference clips"):
        fit.main(["--model", str(guided_model.folder), "--data", str(reference_clips)])
