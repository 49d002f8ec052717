"""A model folder's style vocabulary: free prompts are matched to the closest trained style."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from model.checkpoint import DEFAULT_MODEL_DIR, CheckpointError, load_model
from model.style import StyleSpec
from model.stylizer import StreamStylizer
from model.vocabulary import StyleVocabulary, VocabularyError

ROOT = Path(__file__).resolve().parent.parent
STYLES = {
    "ink_wash": {"title": "Ink wash", "prompts": ["ink wash painting", "black ink on rice paper"]},
    "thermal": {"title": "Thermal camera", "prompts": ["thermal camera view", "an infrared heat map"]},
    "pixel_art": {"title": "Pixel art", "prompts": ["pixel art", "a retro 8-bit video game"]},
}


@pytest.fixture(scope="module")
def model_with_vocabulary(random_model_dir, text_encoder, tmp_path_factory):
    folder = tmp_path_factory.mktemp("vocab") / "tiny-vocab"
    shutil.copytree(random_model_dir, folder)
    StyleVocabulary.save(folder, STYLES)
    return load_model(folder, text_encoder=text_encoder)


def test_paraphrases_land_on_the_right_trained_style(model_with_vocabulary, text_encoder):
    vocab = model_with_vocabulary.vocabulary
    assert vocab.styles == ["ink_wash", "thermal", "pixel_art"]
    exact = vocab.match("  Ink wash   PAINTING ", text_encoder)
    assert (exact.style, exact.trained_prompt, exact.exact) == ("ink_wash", "ink wash painting", True)
    assert exact.similarity == 1.0 and exact.describe() == "Ink wash"
    assert vocab._embeddings is None  # a trained prompt is matched without embedding them all
    for prompt, style in [("a painting made with black brush ink", "ink_wash"),
                          ("show me what a heat camera sees", "thermal"),
                          ("make it look like an old video game with big square pixels", "pixel_art")]:
        m = vocab.match(prompt, text_encoder)
        assert m.style == style, (prompt, m)
        assert not m.exact and "closest trained prompt" in m.describe()


def test_stylizer_conditions_on_the_matched_prompt(model_with_vocabulary):
    matched = StreamStylizer(model_with_vocabulary)
    matched.set_text("show me what a heat camera sees")
    assert matched.style == StyleSpec(prompt="show me what a heat camera sees")  # the person's words are kept
    assert matched.prompt_match.style == "thermal"
    trained = StreamStylizer(model_with_vocabulary)
    trained.set_text(matched.prompt_match.trained_prompt)
    assert torch.equal(matched.cache.cross_k, trained.cache.cross_k)  # same conditioning as the trained prompt
    typed = StreamStylizer(model_with_vocabulary, match_prompts=False)
    typed.set_text("show me what a heat camera sees")
    assert typed.prompt_match is None and not torch.equal(typed.cache.cross_k, matched.cache.cross_k)
    matched.set_reference(torch.zeros(64, 96, 3, dtype=torch.uint8).numpy())
    assert matched.prompt_match is None


def test_folders_without_vocabulary_take_prompts_as_typed(random_model):
    assert random_model.vocabulary is None
    st = StreamStylizer(random_model)
    st.set_text("anything at all")
    assert st.prompt_match is None


def test_embedded_model_lists_its_styles():
    from model.train.painterly import PAINTERLY

    vocab = StyleVocabulary.load(DEFAULT_MODEL_DIR)
    assert vocab is not None and len(vocab.styles) >= 8
    painterly = {"watercolor", "oil_paint", "ink_wash", *PAINTERLY}
    assert len(painterly & set(vocab.styles)) >= 3


@pytest.mark.parametrize("content, message", [
    ("{not json", "unreadable style vocabulary"),
    ('{"styles": {}}', "lists no styles"),
    ('{"styles": {"x": {"prompts": []}}}', "lists no usable prompts"),
    ('{"other": 1}', "unreadable style vocabulary"),
])
def test_a_broken_vocabulary_is_a_clear_checkpoint_error(random_model_dir, tmp_path, content, message):
    folder = tmp_path / "m"
    shutil.copytree(random_model_dir, folder)
    (folder / "styles.json").write_text(content)
    with pytest.raises(CheckpointError, match=message):
        load_model(folder)
    with pytest.raises(VocabularyError):
        StyleVocabulary.save(tmp_path, {"x": {"prompts": [" "]}})


def test_cli_reports_the_matched_style(model_with_vocabulary, sample_video, tmp_path):
    out = tmp_path / "out.mp4"
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), "stylize", str(sample_video), "-o", str(out),
                           "--model", str(model_with_vocabulary.folder), "--style", "show me what a heat camera sees",
                           "--switch", "2:a retro 8-bit video game", "--switch", "3:an old video game with big pixels",
                           "--max-frames", "4", "--quiet"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "style 'show me what a heat camera sees' -> Thermal camera (closest trained prompt" in proc.stderr
    assert "style 'an old video game with big pixels' -> Pixel art (closest trained prompt" in proc.stderr
    assert "a retro 8-bit video game' ->" not in proc.stderr  # a trained prompt is used as it is
