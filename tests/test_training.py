"""The whole training pipeline end to end on a tiny config, through the real commands
(``main.py train data|vae|latents|teacher|student|dmd``, called in-process): synthetic photos ->
clips -> autoencoder -> latents -> teacher -> causal student -> DMD, a few steps each at 48x64.

Checks what each stage hands to the next and to the app: loadable model folders with the right card
(stage, causal flag, training history carried over), the style vocabulary, weights that actually
train and start from the previous stage, a streaming run of the final model, and one-line errors
for bad inputs."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from model.checkpoint import build_tiny_parts, load_model
from model.config import ModelConfig
from model.stylizer import StreamStylizer
from model.train import cli
from model.train.styles import STYLES
from model.vocabulary import StyleVocabulary
from tests.helpers import ROOT, moving_frames

H, W = 48, 64  # a multiple of vae stride 8 x patch 2; latents are 6x8
FRAMES = 4  # video frames per clip = latent frames (the tiny VAE is per-frame); 2 chunks of 2
N_TRAIN = 3
STEPS = {"teacher": 3, "student": 2, "dmd": 2}
COMMON = ["--batch", "2", "--frames", str(FRAMES), "--crop", "6", "8", "--log-every", "1", "--seed", "0"]


def train(*args) -> None:
    assert cli.main([str(a) for a in args]) == 0


@pytest.fixture(scope="module")
def one_thread():
    """Two OpenMP threads on a busy two-core machine spin against each other (20x slower steps)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def run(photo_dir, tmp_path_factory, one_thread):
    root = tmp_path_factory.mktemp("train")
    p = {k: root / k for k in ("data", "vae", "teacher", "student", "dmd")}
    p["latents"] = root / "latents.npz"
    p["config"] = root / "tiny-48x64.json"
    ModelConfig.named("tiny").replace(name="tiny-48x64", resolution=(H, W)).save(p["config"])
    train("data", "--out", p["data"], "--photos", photo_dir, "--train", N_TRAIN, "--val", 2,
          "--frames", FRAMES, "--size", f"{H}x{W}", "--seed", 1)
    train("vae", "--data", p["data"], "--out", p["vae"], "--steps", 3, "--batch", 4, "--crop", 32)
    train("latents", "--data", p["data"], "--vae", p["vae"] / "vae.safetensors", "--out", p["latents"],
          "--frames", FRAMES, "--workers", 1)
    train("teacher", "--latents", p["latents"], "--out", p["teacher"], "--config", p["config"],
          "--vae", p["vae"] / "vae.safetensors", "--steps", STEPS["teacher"], "--p-text", 0.5, *COMMON)
    train("student", "--latents", p["latents"], "--out", p["student"], "--init", p["teacher"],
          "--steps", STEPS["student"], *COMMON)
    train("dmd", "--latents", p["latents"], "--out", p["dmd"], "--init", p["student"], "--teacher", p["teacher"],
          "--steps", STEPS["dmd"], "--name", "tiny-dmd-test", *COMMON)
    return p


def test_data_vae_and_latents(run):
    man = json.loads((run["data"] / "manifest.json").read_text())
    assert [c["split"] for c in man["clips"]] == ["train"] * N_TRAIN + ["val"] * 2
    assert np.load(run["data"] / man["clips"][0]["file"]).shape == (FRAMES, H, W, 3)
    report = json.loads((run["vae"] / "autoencoder_report.json").read_text())
    assert report["steps"] == 3 and np.isfinite(report["val_psnr_db"])
    lat = np.load(run["latents"])
    assert lat["source"].shape == (N_TRAIN, FRAMES, 8, H // 8, W // 8)
    assert lat["target"].shape == (N_TRAIN, len(STYLES), FRAMES, 8, H // 8, W // 8)
    assert list(lat["styles"]) == list(STYLES)
    assert lat["prompt_emb"].shape[:1] == (len(STYLES),) and lat["ref_prompt"].shape == (1, 384)
    assert np.isfinite(lat["source"]).all() and np.isfinite(lat["target"]).all()
    # a stylized target differs from its source (the filters reached the latents)
    assert not np.allclose(lat["target"][:, 0], lat["source"])


@pytest.mark.parametrize("stage", ["teacher", "student", "dmd"])
def test_stage_folder_loads_with_card(run, stage, text_encoder):
    m = load_model(run[stage], text_encoder=text_encoder)
    assert m.config.resolution == (H, W) and m.config.name == "tiny-48x64" and m.trained
    card = m.card
    assert card["stage"] == stage and card["causal"] is (stage != "teacher")
    assert card["name"] == ("tiny-dmd-test" if stage == "dmd" else f"tiny-{stage}")
    earlier = ["teacher", "student", "dmd"][: ["teacher", "student", "dmd"].index(stage) + 1]
    assert list(card["training"]) == earlier, "the history of earlier stages is carried over"
    mine = card["training"][stage]
    assert mine["steps"] == STEPS[stage] and mine["frames"] == FRAMES and mine["crop"] == [6, 8]
    assert [h["step"] for h in mine["history"]] == list(range(1, STEPS[stage] + 1))[-4:]
    assert all(np.isfinite(v) for h in mine["history"] for v in h.values())
    if stage != "teacher":  # the earlier stages' entries are copied unchanged
        prev = json.loads((run["teacher"] / "model_card.json").read_text())["training"]["teacher"]
        assert card["training"]["teacher"] == prev
    if stage == "dmd":
        assert mine["regression_weight"] == 0.25 and "lr_fake" in mine
    # every folder carries the trained autoencoder unchanged
    assert (run[stage] / "vae.safetensors").read_bytes() == (run["vae"] / "vae.safetensors").read_bytes()


def test_style_vocabulary_is_the_trained_prompts(run, text_encoder):
    lat = np.load(run["latents"])
    n_prompts = lat["prompt_emb"].shape[1]
    for stage in ("teacher", "student", "dmd"):
        voc = StyleVocabulary.load(run[stage])
        assert voc is not None and voc.styles == [str(s) for s in lat["styles"]]
        by_style = {}
        for sid, title, prompt in voc.entries:
            assert title == STYLES[sid].title
            by_style.setdefault(sid, []).append(prompt)
        assert by_style == {s: list(STYLES[s].prompts[:n_prompts]) for s in voc.styles}
    # the prompts listed are exactly those whose embeddings the DiT was trained on
    for i, s in enumerate(voc.styles):
        assert torch.allclose(text_encoder.embed(by_style[s]), torch.from_numpy(lat["prompt_emb"][i]), atol=1e-5)
    match = voc.match(by_style["watercolor"][0], text_encoder)
    assert match.style == "watercolor" and match.exact


def test_weights_train_and_start_from_previous_stage(run):
    w = {s: load_file(str(run[s] / "dit.safetensors")) for s in ("teacher", "student", "dmd")}
    torch.manual_seed(0)  # the teacher's initialisation (run_stage seeds with --seed 0 before building)
    init = build_tiny_parts(ModelConfig.load(run["config"]))[0].state_dict()
    assert w["teacher"].keys() == init.keys() == w["student"].keys() == w["dmd"].keys()

    def diff(a, b):
        return {k: (a[k].float() - b[k].float()).abs().max().item() for k in a}

    steps = ((init, w["teacher"], "teacher", 3e-4), (w["teacher"], w["student"], "student", 2e-4),
             (w["student"], w["dmd"], "dmd", 2e-5))
    for before, after, stage, lr in steps:
        d = diff(before, after)
        changed = [k for k, v in d.items() if v > 0]
        assert len(changed) > 0.8 * len(d), f"{stage}: only {len(changed)}/{len(d)} tensors trained"
        # AdamW moves a weight by at most about lr per step: each stage started from `before`
        assert max(d.values()) < 1.5 * lr * STEPS[stage], (stage, max(d.values()))
    key = "blocks.0.self_attn.q.weight"
    assert not torch.equal(w["teacher"][key], w["student"][key]) and not torch.equal(w["student"][key], w["dmd"][key])


def test_a_repeated_stage_keeps_the_earlier_run_in_the_card(run, tmp_path, one_thread):
    """The shipped model ran the student stage twice (with context, then single-chunk): both stay on record."""
    out = tmp_path / "student-again"
    common = [a if a != str(FRAMES) else "2" for a in COMMON]  # one chunk per sample, no context
    train("student", "--latents", run["latents"], "--out", out, "--init", run["student"], "--steps", 1, *common)
    card = json.loads((out / "model_card.json").read_text())
    first = json.loads((run["student"] / "model_card.json").read_text())["training"]
    assert list(card["training"]) == ["teacher", "student", "student-2"]
    assert card["training"]["student"] == first["student"]
    assert card["training"]["student-2"]["frames"] == 2 and card["training"]["student-2"]["steps"] == 1


def test_dmd_model_streams(run, text_encoder):
    m = load_model(run["dmd"], text_encoder=text_encoder)
    s = StreamStylizer(m, seed=0)
    s.set_text("pencil sketch, graphite on paper")
    assert s.prompt_match is not None and s.prompt_match.style in STYLES
    frames = moving_frames(5, H, W)
    out = s.push(frames)
    assert len(out) == 4 and s.pending == 1
    out += s.flush()
    assert len(out) == 5 and all(o.shape == (H, W, 3) and o.dtype == np.uint8 for o in out)
    s.set_reference(moving_frames(1, 60, 90, seed=4)[0])
    ref_out = s.push(moving_frames(2, H, W, seed=5))
    assert len(ref_out) == 2 and all(o.shape == (H, W, 3) and o.dtype == np.uint8 for o in ref_out)
    for f in out + ref_out:  # pictures, not a blank: an all-black output must fail
        assert f.std() > 2.0 and 3.0 < f.mean() < 252.0, f"a flat frame (mean {f.mean():.1f}, std {f.std():.2f})"


def _error(*args) -> str:
    with pytest.raises(SystemExit) as e:
        cli.main([str(a) for a in args])
    msg = e.value.code
    assert isinstance(msg, str) and msg.startswith("error: ") and "\n" not in msg, msg
    return msg


def test_bad_inputs_are_one_line_errors(run, tmp_path, one_thread):
    nope = tmp_path / "nope"
    lat, vae = run["latents"], run["vae"] / "vae.safetensors"
    assert "no photographs" in _error("data", "--out", tmp_path / "d", "--photos", tmp_path, "--train", 1)
    msg = _error("vae", "--data", nope, "--out", tmp_path / "v")
    assert "data set manifest not found" in msg and "train data" in msg
    assert "larger than" in _error("vae", "--data", run["data"], "--out", tmp_path / "v", "--crop", 96)
    msg = _error("latents", "--data", run["data"], "--vae", nope, "--out", tmp_path / "l.npz")
    assert "autoencoder weights not found" in msg and "train vae" in msg
    msg = _error("teacher", "--latents", nope, "--vae", vae, "--out", tmp_path / "t")
    assert "latents not found" in msg and "train latents" in msg
    assert "no config named 'huge'" in _error("teacher", "--latents", lat, "--vae", vae, "--out", tmp_path / "t",
                                              "--config", "huge")
    msg = _error("teacher", "--latents", lat, "--vae", run["teacher"] / "dit.safetensors", "--out", tmp_path / "t",
                 "--config", run["config"])
    assert "is not an autoencoder for config 'tiny-48x64' (missing latent_mean" in msg
    msg = _error("student", "--latents", lat, "--init", nope, "--out", tmp_path / "s")
    assert str(nope) in msg and "--init model folder not found" in msg and "train teacher" in msg
    msg = _error("dmd", "--latents", lat, "--init", run["student"], "--teacher", run["data"], "--out", tmp_path / "x")
    assert "--teacher model folder" in msg and "has no config.json, dit.safetensors, vae.safetensors" in msg
    msg = _error("student", "--latents", lat, "--init", run["teacher"], "--out", tmp_path / "s", "--frames", 3)
    assert "multiple of the config's chunk_frames 2" in msg
    msg = _error("student", "--latents", lat, "--init", run["teacher"], "--out", tmp_path / "s", "--frames", 8)
    assert f"hold {FRAMES} frames per clip, training needs 8" in msg
    msg = _error("student", "--latents", run["teacher"] / "vae.safetensors", "--init", run["teacher"],
                 "--out", tmp_path / "s")
    assert "not a `train latents` file" in msg or "cannot be read" in msg, msg
    assert not (tmp_path / "s").exists() and not (tmp_path / "t").exists(), "nothing written on a bad input"
    assert cli.main(["nonsense"]) == 2
    # through main.py: exit status 1 and the message, no traceback
    r = subprocess.run([sys.executable, str(ROOT / "main.py"), "train", "student", "--latents", str(lat),
                        "--init", str(nope), "--out", str(tmp_path / "s")], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: --init model folder not found")


def _random_dit_and_inputs(cfg):
    """A DiT with random weights (not its zero-initialised parts' zeros) and one clip's inputs for it."""
    from model.dit import CausalDiT

    torch.manual_seed(0)
    dit = CausalDiT(cfg).eval()
    for p in dit.parameters():
        p.data.normal_(0, 0.2)
    g = torch.Generator().manual_seed(1)
    x, src = torch.randn(1, 4, 4, 8, 8, generator=g), torch.randn(1, 4, 4, 8, 8, generator=g)
    ctx, ref = torch.randn(1, 1, 16, generator=g), torch.randn(1, 4, 8, 8, generator=g)
    return dit, (x, src, torch.full((1, 4), 600.0), ctx), ref


@pytest.mark.parametrize("extra, style", [(2, False), (0, True), (1, True)])
def test_a_grown_dit_computes_what_it_grew_from(extra, style):
    from model.config import ModelConfig
    from model.train.grow import grow, new_positions

    cfg = ModelConfig(dim=32, num_heads=2, num_layers=3, ffn_dim=64, latent_channels=4, text_dim=16, text_len=1,
                      chunk_frames=2, window_frames=4, resolution=(64, 64))
    dit, inputs, ref = _random_dit_and_inputs(cfg)
    grown_cfg, grown = grow(dit, cfg, extra, style)
    assert grown_cfg.num_layers == 3 + extra and grown_cfg.style_modulation == style
    assert len(new_positions(3, extra)) == extra
    with torch.no_grad():
        for r in (None, ref):
            assert torch.allclose(dit(*inputs, r), grown(*inputs, r), atol=1e-6)
        grown.style_text.weight.add_(0.1) if style else grown.blocks[new_positions(3, extra)[0]].ffn[2].bias.add_(0.1)
        assert not torch.allclose(dit(*inputs, None), grown(*inputs, None), atol=1e-3)


def test_the_reference_spread_starts_at_zero_and_then_moves_only_reference_styles():
    from model.config import ConfigError, ModelConfig
    from model.train.grow import grow

    cfg = ModelConfig(dim=32, num_heads=2, num_layers=2, ffn_dim=64, latent_channels=4, text_dim=16, text_len=1,
                      chunk_frames=2, window_frames=4, resolution=(64, 64), style_modulation=True)
    with pytest.raises(ConfigError, match="reference_spread needs style_modulation"):
        cfg.replace(style_modulation=False, reference_spread=True)
    dit, inputs, ref = _random_dit_and_inputs(cfg)
    grown_cfg, grown = grow(dit, cfg, reference_spread=True)
    assert grown_cfg.reference_spread and not cfg.reference_spread
    with torch.no_grad():
        for r in (None, ref):
            assert torch.allclose(dit(*inputs, r), grown(*inputs, r), atol=1e-6)
        grown.style_ref_spread.weight.add_(0.1)
        assert torch.allclose(dit(*inputs, None), grown(*inputs, None), atol=1e-6)
        assert not torch.allclose(dit(*inputs, ref), grown(*inputs, ref), atol=1e-3)


def test_self_forcing_student_grows_and_streams_with_its_rollout_window(run, tmp_path, one_thread, text_encoder):
    out = tmp_path / "sf"
    common = [a if a != str(FRAMES) else "4" for a in COMMON]
    train("student", "--latents", run["latents"], "--out", out, "--init", run["student"], "--steps", 2,
          "--self-forcing", "--add-layers", "1", "--style-modulation", *common)
    m = load_model(out, text_encoder=text_encoder)
    assert (m.config.window_frames, m.config.num_layers, m.config.style_modulation) == (4, 5, True)
    card = json.loads((out / "model_card.json").read_text())
    assert card["default_strength"] == 1.0 and card["training"]["student-2"]["self_forcing"]
    s = StreamStylizer(m)
    s.set_text("ink wash painting")
    assert len(s.push(moving_frames(6, H, W)) + s.flush()) == 6
