"""The source-guided codec (output at the source's size) and its resumable trainer, on tiny configs."""
import json

import numpy as np
import pytest
import torch

from model.checkpoint import build_tiny_parts, load_model, save_tiny_model
from model.config import ModelConfig
from model.guided_codec import GuidedAutoencoder, GuidedCodec
from model.style import StyleSpec
from model.stylizer import StreamStylizer
from tests.conftest import moving_frames, synthetic_photo


def test_codec_shapes_and_guides():
    ae = GuidedAutoencoder(8, (4, 8, 8, 16))
    x = torch.rand(2, 3, 64, 96) * 2 - 1
    z, guides = ae.features(x)
    assert z.shape == (2, 8, 4, 6) and [g.shape[-1] for g in guides] == [48, 24, 12]
    out = ae.decode(z, guides)
    assert out.shape == x.shape and out.abs().max() <= 1
    other = ae.decode(z, ae.guides(-x))
    assert not torch.allclose(out, other), "the decoder uses the source's guide features"


def test_decode_needs_its_chunk():
    codec = GuidedCodec(GuidedAutoencoder(8, (4, 8, 8, 16)))
    with pytest.raises(RuntimeError, match="call encode first"):
        codec.decode(torch.zeros(1, 2, 8, 4, 6))


@pytest.mark.parametrize("hw", [(72, 128), (50, 66)])
def test_output_at_the_source_size(guided_model, hw):
    s = StreamStylizer(guided_model, steps=2)
    s.set_text("thermal camera")
    frames = moving_frames(6, *hw)
    out = s.push(frames) + s.flush()
    assert len(out) == 6 and all(o.shape == (*hw, 3) for o in out)
    grid = s.cache.grid
    step = 32
    assert grid == (-(-hw[0] // step), -(-hw[1] // step))


def test_a_small_camera_is_stylized_at_the_models_size_and_shown_at_its_own(guided_model):
    from model.stylizer import working_size

    assert working_size(120, 160, 288) == (288, 384) and working_size(360, 640, 288) == (360, 640)
    assert working_size(100, 1000, 288) == (128, 1280), "never past the largest output"
    low = min(guided_model.config.resolution)
    s = StreamStylizer(guided_model, steps=1)
    s.set_text("thermal camera")
    hw = (low // 2, low * 2 // 3)
    out = s.push(moving_frames(2, *hw))
    assert [o.shape for o in out] == [(*hw, 3)] * 2, "shown at the camera's own size"
    assert s.cache.grid == (-(-low // 32), -(-(low * 4 // 3) // 32)), "the tokens of the enlarged frame"


def test_large_sources_are_shrunk_and_a_new_stream_takes_its_own_size(guided_model):
    s = StreamStylizer(guided_model, steps=1)
    s.set_reference(synthetic_photo(3, 90, 90))
    assert s._guided_frame(np.zeros((1080, 1920, 3), np.uint8)).shape == (720, 1280, 3)
    assert s.cache.grid == (23, 40), "the token grid follows the shrunk size (736x1280 / 32)"
    s.reset()
    small = moving_frames(2, 40, 72)
    assert s.push(small)[0].shape == (40, 72, 3), "reference re-encoded for the new grid"


def test_codec_training_resumes_exactly(tmp_path, photo_dir):
    from model.train import codec, data

    ds = tmp_path / "ds"
    data.build_dataset(ds, [photo_dir], n_train=4, n_val=2, frames=2, size=(64, 96), seed=0, styles=["thermal"])
    args = dict(data_dir=ds, batch=2, crop=32, lr=1e-3, latent_channels=4, widths=(4, 4, 8, 8), seed=0,
                save_every=2, n_threads=1)
    whole = codec.train_codec(out=tmp_path / "a", steps=4, resume=False, **args)
    codec.train_codec(out=tmp_path / "b", steps=2, resume=False, **args)
    codec.train_codec(out=tmp_path / "b", steps=4, resume=True, **args)
    from safetensors.torch import load_file

    a, b = load_file(str(tmp_path / "a" / "codec.safetensors")), load_file(str(tmp_path / "b" / "codec.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    report = json.loads((tmp_path / "a" / "codec_report.json").read_text())
    assert report["val_psnr_db"]["thermal"] > 5 and whole["steps"] == 4


def test_eval_compares_a_guided_model_at_the_source_size(guided_model):
    """Targets must be computed on the frame the model renders (uncropped, at the source's size)."""
    from model.train.video_eval import Clip, Evaluator

    ev = Evaluator(guided_model.folder)
    frames = moving_frames(4, 60, 80)  # 4:3, unlike the config's 64x96
    clip = Clip("c", frames, ev.fit)
    assert clip.frames[0].shape == (60, 80, 3) and np.array_equal(clip.frames[0], frames[0])
    outs = ev.run(clip, text="thermal camera")
    assert outs[0].shape == (60, 80, 3)


def test_fixed_noise_renders_a_still_scene_the_same_every_chunk(guided_model):
    still = [moving_frames(1, 64, 96)[0]] * 6
    outs = {}
    for mode in ("fresh", "fixed"):
        s = StreamStylizer(guided_model, steps=2, noise=mode)
        s.set_window(s.cfg.chunk_frames)  # no context chunk: only the noise can differ between chunks
        s.set_text("thermal camera")
        outs[mode] = s.push(still)
    assert np.array_equal(outs["fixed"][0], outs["fixed"][2]) and np.array_equal(outs["fixed"][2], outs["fixed"][4])
    assert not np.array_equal(outs["fresh"][0], outs["fresh"][2]), "fresh noise differs chunk to chunk"
    with pytest.raises(ValueError, match="noise must be one of"):
        StreamStylizer(guided_model, noise="frozen")


@pytest.fixture(scope="module")
def styled_guided_model(tmp_path_factory, text_encoder):
    """A guided model whose DiT has style modulation (a style vector the decoder can take)."""
    cfg = ModelConfig.named("tiny").replace(vae="guided", latent_channels=8, vae_stride=(1, 16, 16),
                                            codec_widths=(4, 8, 8, 16), resolution=(64, 96), window_frames=4,
                                            style_modulation=True)
    torch.manual_seed(0)
    dit, ae = build_tiny_parts(cfg)
    with torch.no_grad():
        dit.style_text.weight.normal_(0, 0.2)  # as if trained: text styles give different style vectors
    folder = save_tiny_model(tmp_path_factory.mktemp("styled") / "m", cfg, dit, ae, {"name": "styled-random"})
    return load_model(folder, text_encoder=text_encoder)


@pytest.mark.parametrize("affine,film", [(False, False), (True, False), (True, True)])
def test_decoder_tuning_changes_only_the_decoder_and_resumes_exactly(tmp_path, photo_dir, guided_model,
                                                                     styled_guided_model, affine, film):
    from safetensors.torch import load_file

    from model.train import data, decoder

    guided_model = styled_guided_model if film else guided_model
    ds = tmp_path / "ds"
    data.build_dataset(ds, [photo_dir], n_train=3, n_val=1, frames=2, size=(64, 96), seed=0, styles=["thermal"])
    args = dict(model_dir=guided_model.folder, data_dir=ds, styles=["thermal"], batch=2, crop=32, lr=1e-2,
                scales=[1.0, 0.5], max_clips=3, frames=2, seed=0, save_every=2, n_threads=1, affine=affine,
                style_film=film)
    rec = decoder.train_decoder(out=tmp_path / "a", steps=4, resume=False, **args)
    streamed = np.load(tmp_path / "a" / decoder.LATENTS_FILE)
    grids = {s: streamed[f"lat{i}"].shape[-2:] for i, (_, s) in enumerate(streamed["index"])}
    assert grids[0.5][0] < grids[1.0][0], "half-size clips stream at their own size, not enlarged"
    decoder.train_decoder(out=tmp_path / "b", steps=2, resume=False, **args)
    decoder.train_decoder(out=tmp_path / "b", steps=4, resume=True, **args)
    before = load_file(str(guided_model.folder / "vae.safetensors"))
    a, b = (load_file(str(tmp_path / x / "model" / "vae.safetensors")) for x in "ab")
    assert all(torch.equal(a[k], b[k]) for k in a), "a resumed run is the same run"
    parts = decoder.DECODER_PARTS
    assert all(torch.equal(a[k], before[k]) for k in a if not k.startswith(parts)), "the encoder is frozen"
    assert any(a[k].shape != before[k].shape or not torch.equal(a[k], before[k])
               for k in a if k.startswith(parts)), "the decoder learned"
    config = ModelConfig.load(tmp_path / "a" / "model" / "config.json")
    assert config.codec_head == ("affine" if affine else "rgb")
    assert config.codec_style_dim == (guided_model.config.dim if film else 0)
    assert load_model(tmp_path / "a" / "model").codec.ae.style_dim == config.codec_style_dim
    card = json.loads((tmp_path / "a" / "model" / "model_card.json").read_text())
    assert card["stream_noise"] == "fixed" and card["training"]["decoder"]["steps"] == 4
    assert rec["held_out_after"]["clips"] == 1 and load_model(tmp_path / "a" / "model").codec.guided


def test_a_smoothing_only_fit_with_the_temporal_term_learns_the_blur_and_nothing_else(tmp_path, photo_dir,
                                                                                     styled_guided_model):
    from safetensors.torch import load_file

    from model.train import data, decoder

    ds = tmp_path / "ds"
    data.build_dataset(ds, [photo_dir], n_train=3, n_val=1, frames=2, size=(64, 96), seed=0, styles=["thermal"])
    args = dict(model_dir=styled_guided_model.folder, data_dir=ds, styles=["thermal"], batch=2, crop=32, lr=1e-2,
                scales=[1.0], max_clips=3, frames=2, seed=0, save_every=2, n_threads=1, style_film=True)
    with pytest.raises(ValueError, match="--smoothing-only needs --style-smoothing"):
        decoder.train_decoder(out=tmp_path / "x", steps=1, resume=False, smoothing_only=True, **args)
    rec = decoder.train_decoder(out=tmp_path / "a", steps=3, resume=False, style_smoothing=True, temporal=2.0,
                                smoothing_only=True, **args)
    assert rec["style_smoothing"] and rec["temporal"] == 2.0 and rec["smoothing_only"]
    before = load_file(str(styled_guided_model.folder / "vae.safetensors"))
    after = load_file(str(tmp_path / "a" / "model" / "vae.safetensors"))
    assert all(torch.equal(after[k], before[k]) for k in before), "only the blur learned"
    assert after["style_smooth.bias"].item() != -3.0, "the blur learned"
    model = load_model(tmp_path / "a" / "model")
    assert model.config.codec_style_smoothing and model.codec.ae.style_smoothing


def test_the_affine_head_starts_as_the_plain_decoder_and_adds_the_source_detail():
    from model.guided_codec import detail_layer, set_detail_gain, with_affine_head

    torch.manual_seed(0)
    plain = GuidedAutoencoder(8, (4, 8, 8, 16))
    for p in plain.parameters():
        p.data.normal_(0, 0.1)
    ae = with_affine_head(plain)
    x = torch.rand(2, 3, 64, 96) * 2 - 1
    z, guides = ae.features(x)
    assert len(guides) == 4 and torch.equal(guides[3], x)
    base = plain.decode(*plain.features(x))
    assert torch.allclose(ae.decode(z, guides), base)
    set_detail_gain(ae, 1.0)  # the matrix = identity: the base plus every edge of the source
    assert torch.allclose(ae.decode(z, guides), (base + detail_layer(x)).clamp(-1, 1), atol=1e-6)
    flat = torch.full_like(x, 0.3)
    assert detail_layer(x).abs().mean() > 0.1 and torch.allclose(detail_layer(flat), torch.zeros_like(x), atol=1e-6)


def test_smoothing_steadies_the_stream_and_a_style_switch_shows_at_once(guided_model):
    frames = moving_frames(8, 64, 96)
    rng = np.random.default_rng(0)  # a still scene seen through a noisy sensor
    still = synthetic_photo(1, 64, 96).astype(np.int16)
    jitter = [np.clip(still + rng.integers(-6, 7, still.shape), 0, 255).astype(np.uint8) for _ in range(8)]
    outs = {}
    for strength in (0.0, 0.8):
        s = StreamStylizer(guided_model, noise="fixed", smoothing=strength)
        s.set_text("thermal camera")
        outs[strength] = s.push(jitter)
        change = [np.abs(a.astype(int) - b).mean() for a, b in zip(outs[strength][:-1], outs[strength][1:])]
        outs[strength, "change"] = float(np.mean(change))
        s.set_text("oil painting")  # after a switch the first frame is the new style's own, not a blend
        outs[strength, "switch"] = s.push(frames[:2])
    assert outs[0.8, "change"] < outs[0.0, "change"], "a camera shaking on the spot flickers less"
    assert np.array_equal(outs[0.8, "switch"][0], outs[0.0, "switch"][0])
    assert not np.array_equal(outs[0.8, "switch"][1], outs[0.0, "switch"][1])
    assert StreamStylizer(guided_model).smoother.strength == 0.0, "a model whose card says nothing: off"


def test_the_style_film_starts_at_zero_and_lets_the_style_change_the_decoder():
    from model.guided_codec import with_affine_head, with_style_film

    torch.manual_seed(0)
    plain = GuidedAutoencoder(8, (4, 8, 8, 16))
    for p in plain.parameters():
        p.data.normal_(0, 0.1)
    film = with_style_film(plain, 12)
    x = torch.rand(2, 3, 64, 96) * 2 - 1
    z, guides = film.features(x)
    styles = torch.randn(2, 12)
    assert torch.allclose(film.decode(z, guides, styles), plain.decode(z, guides)), "zero at first"
    with torch.no_grad():
        film.style_film.weight.normal_(0, 0.3)
    a, b = film.decode(z, guides, styles), film.decode(z, guides, styles.flip(0))
    assert (a - b).abs().mean() > 1e-3, "another style vector, another rendering"
    assert torch.allclose(film.decode(z, guides, None), plain.decode(z, guides)), "no style: the plain decoder"
    assert with_affine_head(film).style_dim == 12, "growing the head keeps the film"


def test_the_style_blur_is_learnt_per_style_and_skipped_where_it_is_not_used():
    from model.guided_codec import SMOOTH_SIGMA, gaussian_blur, with_style_film, with_style_smoothing

    with pytest.raises(ValueError, match="style film"):
        with_style_smoothing(GuidedAutoencoder(8, (4, 8, 8, 16)))
    torch.manual_seed(0)
    film = with_style_film(GuidedAutoencoder(8, (4, 8, 8, 16), affine=True), 12)
    for p in film.parameters():
        p.data.normal_(0, 0.1)
    smooth = with_style_smoothing(film).eval()
    x = torch.rand(2, 3, 96, 128) * 2 - 1
    z, guides = smooth.features(x)
    styles = torch.randn(2, 12)
    styles[:, 0] = torch.tensor([1.0, -1.0])
    with torch.no_grad():
        plain = film.decode(z, guides, styles)
        assert torch.equal(smooth.decode(z, guides, styles), plain), "no blur at first (under the run-time cut)"
    trained = smooth.decode(z, guides, styles)
    assert 0 < (trained - plain).abs().max() < 0.05, "in training the small weight is applied, so that it can grow"
    trained.sum().backward()
    assert smooth.style_smooth.bias.grad.abs() > 0
    with torch.no_grad():
        smooth.style_smooth.weight[0, 0] = 20.0  # the first style vector blurs, the second not at all
        out = smooth.decode(z, guides, styles)
        blurred = gaussian_blur(plain, SMOOTH_SIGMA * 96)
        assert torch.allclose(out[0], blurred[0], atol=1e-4) and torch.equal(out[1], plain[1])
        smooth.style_smooth.weight.zero_(), smooth.style_smooth.bias.fill_(-2.9)  # 5.2 %: applied
        assert not torch.equal(smooth.decode(z, guides, styles), plain)
        smooth.style_smooth.bias.fill_(-3.0)  # 4.7 %: not computed
        assert torch.equal(smooth.decode(z, guides, styles), plain)
    lap = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]).view(1, 1, 3, 3)
    conv = torch.nn.functional.conv2d
    detail = conv(blurred[:1, :1], lap).var() / conv(plain[:1, :1], lap).var()
    assert detail < 0.05, "the blur removes the fine detail"
    assert torch.allclose(gaussian_blur(torch.full((1, 3, 20, 30), 0.3), 2.0), torch.full((1, 3, 20, 30), 0.3))
    for shape, sigma in (((2, 3, 36, 64), 3.75), ((1, 3, 9, 13), 3.75)):  # run time (OpenCV) = training (torch)
        x = torch.rand(shape) * 2 - 1
        with torch.no_grad():
            fast = gaussian_blur(x, sigma)
        assert torch.allclose(fast, gaussian_blur(x.clone().requires_grad_(True), sigma), atol=1e-6)


def test_the_stylizer_hands_the_style_vector_to_the_decoder(styled_guided_model):
    from model.guided_codec import with_style_film

    model = styled_guided_model
    frames = moving_frames(2, 64, 96)
    plain_ae = model.codec.ae
    outs = []
    for scale in (0.0, 0.5):
        ae = with_style_film(plain_ae, model.config.dim)
        with torch.no_grad():
            ae.style_film.weight.normal_(0, scale)
        model.codec = GuidedCodec(ae)
        s = StreamStylizer(model, noise="fixed")
        s.set_text("oil painting")
        outs.append(s.push(frames))
    model.codec = GuidedCodec(plain_ae)
    assert not np.array_equal(outs[0][0], outs[1][0]), "the decoder saw the stream's style"


def test_the_source_is_shown_at_the_size_the_output_has(guided_model):
    from model.stylizer import at_output_size, output_size

    s = StreamStylizer(guided_model, steps=1)
    s.set_text("thermal camera")
    frames = moving_frames(2, 50, 66)
    out = s.push(frames)
    assert all(s.as_output(f).shape == o.shape for f, o in zip(frames, out))
    assert output_size(1080, 1920) == (720, 1280) and output_size(360, 640) == (360, 640)
    big = np.zeros((1080, 1920, 3), np.uint8)
    assert at_output_size(big).shape == (720, 1280, 3) and at_output_size(frames[0]) is frames[0]


def test_the_engine_sizes_a_large_camera_frame_once(guided_model, monkeypatch):
    """A frame above 1280x720 is shrunk once: the stylizer and the side-by-side view share that copy."""
    import cv2

    from app.engine import LiveEngine, LoadRequest
    from tests.test_engine import Recorder

    rec = Recorder()
    eng = LiveEngine(rec)
    eng.start()
    try:
        eng.load(LoadRequest(folder=guided_model.folder, device="cpu", warmup=False)).result(60)
        eng.set_style(StyleSpec(prompt="thermal camera"), "thermal")
        calls = []
        resize = cv2.resize

        def counting(img, *a, **k):
            if img.shape[:2] == (1080, 1920):
                calls.append(img.shape)
            return resize(img, *a, **k)

        monkeypatch.setattr(cv2, "resize", counting)
        big = np.zeros((1080, 1920, 3), np.uint8)
        for t in range(2):
            eng.submit(big, float(t))
        rec.wait(lambda: len(rec.frames) >= 2, timeout=120)
        assert rec.frames[0].source.shape == rec.frames[0].image.shape == (720, 1280, 3)
        assert len(calls) == 2, f"each 1920x1080 frame resized once, not {len(calls) / 2:g} times"
    finally:
        assert eng.stop(timeout=30)


def test_a_narrower_decoder_fit_trains_only_on_its_styles_from_a_wider_cache():
    from model.train import decoder

    got = {"entries": [{"style": "thermal"}, {"style": "cartoon"}, {"style": "thermal"}],
           "index": [(0, 1.0), (0, 0.5), (1, 1.0), (2, 1.0)], "latents": ["t1", "t.5", "c1", "t2"],
           "styles": ["st1", "st.5", "sc1", "st2"], "frames": 2}
    only = decoder.only_styles(got, ["thermal"])
    assert only["latents"] == ["t1", "t.5", "t2"] and only["styles"] == ["st1", "st.5", "st2"]
    assert only["index"] == [(0, 1.0), (0, 0.5), (2, 1.0)] and only["entries"] is got["entries"]
    with pytest.raises(ValueError, match="no clips of the styles ink_wash"):
        decoder.only_styles(got, ["ink_wash"])


def test_decoding_a_chunk_frame_by_frame_matches_decoding_it_whole():
    from model.guided_codec import with_affine_head, with_style_film

    torch.manual_seed(0)
    codec = GuidedCodec(with_style_film(with_affine_head(GuidedAutoencoder(8, (4, 8, 8, 16))), 12))
    with torch.no_grad():
        codec.ae.style_film.weight.normal_(0, 0.3)
        codec.ae.to_rgb[0].weight.normal_(0, 0.1)
    z = codec.encode(torch.rand(1, 3, 3, 64, 96) * 2 - 1)
    style = torch.randn(1, 12)
    whole = codec.decode(z, style)
    parts = torch.cat([codec.decode(z[:, i:i + 1], style, frames=slice(i, i + 1)) for i in range(3)], 1)
    assert torch.allclose(whole, parts, atol=1e-5)
    assert not torch.allclose(parts[:, 0], parts[:, 1], atol=1e-3), "each part decoded with its own guides"
    with pytest.raises(ValueError, match="2 latent frames for 1 source frames"):
        codec.decode(z[:, :2], style, frames=slice(0, 1))


def test_the_first_frame_of_a_chunk_leaves_before_the_next_is_decoded(guided_model):
    s = StreamStylizer(guided_model, steps=1, noise="fixed")
    s.set_text("thermal camera")
    frames = moving_frames(4, 64, 96)
    calls = []
    decode = s.model.codec.decode
    s.model.codec.decode = lambda *a, **k: calls.append(1) or decode(*a, **k)
    try:
        with pytest.raises(ValueError, match="uint8 HxWx3"):
            s.stream([np.zeros((64, 96), np.uint8)])  # a bad frame is refused at the call, not later
        it = s.stream(frames[:2])
        assert not calls, "nothing is decoded before it is asked for"
        first = next(it)
        assert len(calls) == 1, "the chunk's first frame comes out after one decode, not after the chunk's"
        streamed = [first, *it]
    finally:
        s.model.codec.decode = decode
    s.reset()
    assert all(np.array_equal(a, b) for a, b in zip(streamed, s.push(frames[:2]))), "push gives the same frames"


def test_a_decoder_fit_can_draw_one_style_more_often():
    from model.train import decoder

    got = {"entries": [{"style": "thermal"}, {"style": "cartoon"}], "index": [(0, 1.0), (1, 1.0), (1, 0.5)],
           "latents": [None] * 3, "styles": [None] * 3, "frames": 2}
    rng = np.random.default_rng(0)
    plain = decoder.DecoderPairs("data", got)
    assert abs(np.mean([plain.draw(rng) == 0 for _ in range(3000)]) - 1 / 3) < 0.04
    weighted = decoder.DecoderPairs("data", got, {"thermal": 4.0})
    assert abs(np.mean([weighted.draw(rng) == 0 for _ in range(3000)]) - 4 / 6) < 0.04

def test_decoder_style_weights_are_checked(tmp_path):
    from model.train import decoder

    (tmp_path / "manifest.json").write_text("{}")
    args = ["--model", "resources/models/default", "--data", str(tmp_path), "--out", str(tmp_path / "o")]
    with pytest.raises(SystemExit, match="positive weight, got 'cartoon=-1'"):
        decoder.main(args + ["--style-weight", "cartoon=-1"])
    with pytest.raises(SystemExit, match="names pixel_art, which this fit does not train"):
        decoder.main(args + ["--style-weight", "pixel_art=2"])
