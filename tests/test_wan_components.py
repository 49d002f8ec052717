"""Paper-scale (Wan2.1) components: key/shape parity with the public checkpoints on the meta device,
numerics at reduced width, streaming VAE == one pass, Wan-layout folders (check, convert, load, stream)."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from model.checkpoint import CheckpointError, expected_shapes, load_model, load_weights
from model.config import ModelConfig
from model.dit import Block, CausalDiT, Head, attend
from model.rope import apply_rope, rope_angles
from model.umt5 import (
    T5RelativeBias,
    UMT5Config,
    UMT5Encoder,
    UMT5TextEncoder,
    load_tokenizer,
    relative_position_bucket,
)
from model.wan_vae import WAN_LATENT_MEAN, WAN_LATENT_STD, WanCodec, WanVAE, WanVAEConfig

ROOT = Path(__file__).resolve().parent.parent
SHEET = [ROOT.parent / "shared" / "research" / "wan2.1-1.3b-parameters.txt",  # the research sheet, if present
         ROOT / "tests" / "data" / "wan21_parameters.txt"]  # its copy in the repo (CI)
EXTRAS = ("source_embedding", "ref_adapter")


# --------------------------------------------------------------------------- the public parameter sheet
def parameter_sheet() -> dict:
    path = next(p for p in SHEET if p.is_file())
    sections, current = {}, None
    for line in path.read_text().splitlines():
        if line.startswith("## "):
            m = re.search(r"([\d,]+) tensors, ([\d,]+) parameters", line)
            key = "dit" if "WanModel" in line else "vae" if "WanVAE" in line else "umt5"
            current = sections[key] = {"tensors": int(m.group(1).replace(",", "")),
                                       "parameters": int(m.group(2).replace(",", "")), "shapes": {}}
        elif current is not None and "\t" in line:
            name, shape = line.split("\t")
            current["shapes"][name] = tuple(int(v) for v in re.findall(r"\d+", shape))
    return sections


@pytest.fixture(scope="module")
def sheet():
    return parameter_sheet()


def meta_shapes(factory) -> dict:
    with torch.device("meta"):
        module = factory()
    return expected_shapes(module)


def test_dit_config_is_wan_1_3b():
    cfg = ModelConfig.named("wan-1.3b")
    assert (cfg.dim, cfg.num_layers, cfg.num_heads, cfg.ffn_dim, cfg.freq_dim) == (1536, 30, 12, 8960, 256)
    assert (cfg.patch_size, cfg.text_dim, cfg.text_len, cfg.latent_channels) == ((1, 2, 2), 4096, 512, 16)
    assert (cfg.vae, cfg.text_encoder, cfg.vae_stride) == ("wan", "umt5", (4, 8, 8))


def test_dit_names_and_shapes_match_public_checkpoint(sheet):
    ours = meta_shapes(lambda: CausalDiT(ModelConfig.named("wan-1.3b")))
    core = {k: v for k, v in ours.items() if not k.startswith(EXTRAS)}
    public = sheet["dit"]["shapes"]
    assert len(public) == sheet["dit"]["tensors"] == 825
    assert sorted(set(public) - set(core)) == [] and sorted(set(core) - set(public)) == []
    assert {k: v for k, v in core.items() if public[k] != v} == {}
    assert sum(math.prod(s) for s in core.values()) == sheet["dit"]["parameters"]
    assert {k.split(".")[0] for k in set(ours) - set(core)} == set(EXTRAS)


def test_vae_names_and_shapes_match_public_checkpoint(sheet):
    ours = meta_shapes(WanVAE)
    public = sheet["vae"]["shapes"]
    assert len(public) == sheet["vae"]["tensors"] == 194
    assert ours == public
    assert sum(math.prod(s) for s in ours.values()) == sheet["vae"]["parameters"]


def test_umt5_names_and_shapes_match_public_checkpoint(sheet):
    ours = meta_shapes(UMT5Encoder)
    public = sheet["umt5"]["shapes"]
    # every listed tensor matches (the sheet's list may be cut short; its stated totals are complete)
    assert {k: v for k, v in public.items() if ours.get(k) != v} == {}
    assert len(ours) == sheet["umt5"]["tensors"] == 242
    assert sum(math.prod(s) for s in ours.values()) == sheet["umt5"]["parameters"]
    block0 = {k[len("blocks.0."):]: v for k, v in public.items() if k.startswith("blocks.0.")}
    assert len(block0) == 10
    for i in range(24):
        assert {k[len(f"blocks.{i}."):]: v for k, v in ours.items() if k.startswith(f"blocks.{i}.")} == block0
    assert ours["token_embedding.weight"] == (256384, 4096) and ours["norm.weight"] == (4096,)


# --------------------------------------------------------------------------- DiT numerics
def small_cfg(**kw) -> ModelConfig:
    base = dict(name="wan-small", dim=24, num_layers=2, num_heads=2, ffn_dim=48, text_dim=16, text_len=8,
                latent_channels=4, chunk_frames=2, window_frames=4, resolution=(16, 32), vae="wan",
                vae_stride=(4, 8, 8), text_encoder="umt5", denoising_steps=[1000, 750, 500, 250], shift=5.0)
    base.update(kw)
    return ModelConfig.named("wan-1.3b").replace(**base)


def test_plain_checkpoint_loads_with_rtr_extras_optional(tmp_path):
    cfg = small_cfg()
    torch.manual_seed(0)
    donor = CausalDiT(cfg)
    state = {k: v for k, v in donor.state_dict().items() if not k.startswith(EXTRAS)}
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "plain.safetensors"))
    dit = CausalDiT(cfg).eval()
    absent = load_weights(dit, tmp_path / "plain.safetensors", optional=EXTRAS)
    assert absent and all(a.startswith(EXTRAS) for a in absent)
    with pytest.raises(CheckpointError, match="missing source_embedding.weight"):
        load_weights(CausalDiT(cfg), tmp_path / "plain.safetensors")
    # the zero-initialised source embedding leaves a plain text-to-video model unchanged
    g = torch.Generator().manual_seed(1)
    noisy, source = torch.randn(1, 2, 4, 2, 4, generator=g), torch.randn(1, 2, 4, 2, 4, generator=g)
    ctx, t = torch.randn(1, 8, 16, generator=g), torch.full((1, 2), 500.0)
    with torch.no_grad():
        assert torch.equal(dit(noisy, source, t, ctx), dit(noisy, None, t, ctx))


def wan_rope_reference(x, frames, h, w):
    """Wan2.1's RoPE written with complex numbers: per-axis frequencies, consecutive channel pairs."""
    d = x.shape[-1]
    c = d // 2
    split = [c - 2 * (c // 3), c // 3, c // 3]

    def freqs(dim, n):
        return torch.polar(torch.ones(n, dim // 2, dtype=torch.float64),
                           torch.outer(torch.arange(n, dtype=torch.float64),
                                       1.0 / 10000 ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)))

    ft, fh, fw = freqs(2 * split[0], max(frames) + 1), freqs(2 * split[1], h), freqs(2 * split[2], w)
    f = len(frames)
    table = torch.cat([ft[frames][:, None, None].expand(f, h, w, -1), fh[None, :, None].expand(f, h, w, -1),
                       fw[None, None, :].expand(f, h, w, -1)], -1).reshape(f * h * w, 1, c)
    xc = torch.view_as_complex(x.double().reshape(*x.shape[:-1], c, 2))
    return torch.view_as_real(xc * table).flatten(-2).float()


@pytest.mark.parametrize("head_dim", [12, 24, 128])
def test_rope_matches_wan_formula(head_dim):
    frames, h, w = [3, 4, 7], 2, 3
    x = torch.randn(1, len(frames) * h * w, 2, head_dim)
    cos, sin = rope_angles(torch.tensor(frames), h, w, head_dim)
    ours = apply_rope(x, cos, sin)
    ref = torch.stack([wan_rope_reference(x[0, :, i: i + 1], frames, h, w)[:, 0] for i in range(2)], 1)[None]
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


def test_block_and_head_modulation_match_wan_formula():
    cfg = small_cfg()
    torch.manual_seed(0)
    blk, head = Block(cfg).eval(), Head(cfg).eval()
    b, groups, n, d = 1, 2, 3, cfg.dim
    x = torch.randn(b, groups * n, d)
    e0 = torch.randn(b, groups, 6, d)
    ctx_kv = blk.cross_attn.kv(torch.randn(b, 5, d))

    def plain_attention(q, k, v):
        return attend(q, k, v)

    with torch.no_grad():
        out = blk(x, e0, groups, plain_attention, ctx_kv)
        # Wan: e = modulation + e0; shift/scale/gate (0,1,2) for attention, (3,4,5) for the FFN, per frame
        e = [(blk.modulation[0, i] + e0[:, :, i]).repeat_interleave(n, 1) for i in range(6)]
        q, k, v = blk.self_attn.qkv(blk.norm1(x) * (1 + e[1]) + e[0])
        y = blk.self_attn.o(attend(q, k, v).reshape(b, -1, d))
        ref = x + y * e[2]
        ref = ref + blk.cross_attn(blk.norm3(ref), *ctx_kv)
        ref = ref + blk.ffn(blk.norm2(ref) * (1 + e[4]) + e[3]) * e[5]
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
        et = torch.randn(b, groups, d)
        shift = (head.modulation[0, 0] + et).repeat_interleave(n, 1)
        scale = (head.modulation[0, 1] + et).repeat_interleave(n, 1)
        torch.testing.assert_close(head(x, et, groups), head.head(head.norm(x) * (1 + scale) + shift))


# --------------------------------------------------------------------------- umT5
@pytest.mark.parametrize("rel,bucket", [
    (0, 0), (-1, 1), (-7, 7), (-8, 8), (-12, 9), (-16, 10), (-32, 12), (-64, 14), (-127, 15), (-128, 15),
    (-1000, 15), (1, 17), (7, 23), (8, 24), (20, 26), (64, 30), (500, 31),
])
def test_relative_position_bucket_hand_values(rel, bucket):
    # 32 buckets, bidirectional: keys after the query use buckets 16..31; distances < 8 exact, then
    # 8 + floor(log(d/8) / log(128/8) * 8), capped at 15 (e.g. d=12: 8 + floor(1.17) = 9; d=20: 8 + 2 = 10)
    assert relative_position_bucket(torch.tensor([rel])).item() == bucket


def test_relative_bias_is_per_layer_and_shaped():
    torch.manual_seed(0)
    enc = UMT5Encoder(UMT5Config(vocab=50, dim=16, dim_attn=16, dim_ffn=32, num_heads=4, num_layers=2))
    b0, b1 = enc.blocks[0].pos_embedding(5, 5), enc.blocks[1].pos_embedding(5, 5)
    assert b0.shape == (1, 4, 5, 5) and not torch.equal(b0, b1)
    rb = T5RelativeBias(32, 4, 128)
    expected = rb.embedding.weight[relative_position_bucket(torch.tensor(3 - 1))]  # key 3, query 1
    assert torch.equal(rb(4, 4)[0, :, 1, 3], expected)


def make_tokenizer(path: Path) -> Path:
    """A small Unigram tokenizer in the HF tokenizer.json format, with T5's '</s>' post-processor."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    words = "ink wash painting pencil sketch watercolor cartoon pixel art style of a the in".split()
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    vocab += [(f"\u2581{w}", -1.0 - i * 0.01) for i, w in enumerate(words)]
    vocab += [(c, -5.0) for c in "abcdefghijklmnopqrstuvwxyz"]
    tok = Tokenizer(models.Unigram(vocab, unk_id=2))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))
    return path


T5_SMALL = UMT5Config(vocab=64, dim=16, dim_attn=16, dim_ffn=32, num_heads=2, num_layers=2)


def test_umt5_text_encoder_pads_like_wan_and_caches(tmp_path):
    torch.manual_seed(0)
    enc = UMT5Encoder(T5_SMALL)
    text = UMT5TextEncoder(enc, load_tokenizer(make_tokenizer(tmp_path / "tokenizer.json")), text_len=12)
    ids = text.tokenize("  ink &amp;  wash\n painting ")
    assert ids[-1] == text.eos_id and len(ids) < 12
    out = text.encode("ink &amp; wash painting")
    assert out.shape == (1, 12, 16)
    assert torch.count_nonzero(out[0, len(ids):]) == 0 and torch.count_nonzero(out[0, : len(ids)]) > 0
    assert text.encode("ink  &  wash painting") is out  # cleaned prompts share the cache entry
    # running on the real tokens only equals Wan's padded, masked batch
    padded = torch.zeros(1, 12, dtype=torch.long)
    padded[0, : len(ids)] = torch.tensor(ids)
    mask = (torch.arange(12) < len(ids)).long()[None]
    with torch.no_grad():
        torch.testing.assert_close(enc(padded, mask)[0, : len(ids)], out[0, : len(ids)], atol=1e-5, rtol=1e-5)
    long_ids = text.tokenize(" ".join(["ink"] * 40))
    assert len(long_ids) == 12 and long_ids[-1] == text.eos_id


def test_umt5_tokenizer_missing_is_a_clear_error(tmp_path):
    from model.text import TextEncoderError

    with pytest.raises(TextEncoderError, match="google/umt5-xxl/tokenizer.json"):
        load_tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(TextEncoderError, match="cannot read the umT5 tokenizer"):
        load_tokenizer(tmp_path / "tokenizer.json")


# --------------------------------------------------------------------------- VAE
VAE_SMALL = WanVAEConfig(dim=4, z_dim=4)


@pytest.fixture(scope="module")
def small_vae():
    torch.manual_seed(0)
    vae = WanVAE(VAE_SMALL).eval()
    with torch.no_grad():  # the attention output projections start at zero: make them matter
        for m in vae.modules():
            if isinstance(m, torch.nn.Conv2d) and not m.weight.any():
                m.weight.normal_(0, 0.2)
    return vae


def test_latent_constants_are_the_published_ones():
    assert len(WAN_LATENT_MEAN) == len(WAN_LATENT_STD) == 16
    assert WAN_LATENT_MEAN[0] == -0.7571 and WAN_LATENT_STD[-1] == 1.9160
    vae = WanVAE(WanVAEConfig(dim=4))
    z = torch.zeros(1, 16, 1, 1, 1)
    mean, std = vae._stat(z)
    assert torch.allclose(mean.flatten(), torch.tensor(WAN_LATENT_MEAN))
    assert torch.allclose(std.flatten(), torch.tensor(WAN_LATENT_STD))


def test_vae_streaming_encode_equals_one_pass(small_vae):
    x = torch.rand(1, 3, 13, 16, 24) * 2 - 1
    with torch.no_grad():
        whole = small_vae.encode(x)
        assert whole.shape == (1, 4, 4, 2, 3)  # 1 + 4k frames -> 1 + k latents, 8x smaller
        for bounds in ([0, 1, 5, 9, 13], [0, 5, 13]):  # Wan's 1, 4, 4, 4 split; the stylizer's 5, 8
            state = {}
            parts = [small_vae.encode(x[:, :, a:b], state) for a, b in zip(bounds[:-1], bounds[1:])]
            torch.testing.assert_close(torch.cat(parts, 2), whole, atol=1e-5, rtol=1e-4)
        # the first frame is encoded on its own: later frames cannot change its latent
        torch.testing.assert_close(small_vae.encode(x[:, :, :1]), whole[:, :, :1], atol=1e-5, rtol=1e-4)


def test_vae_streaming_decode_equals_one_pass(small_vae):
    z = torch.randn(1, 4, 4, 2, 3)
    with torch.no_grad():
        whole = small_vae.decode(z)
        assert whole.shape == (1, 3, 13, 16, 24)
        for bounds in ([0, 1, 2, 3, 4], [0, 2, 4]):
            state = {}
            parts = [small_vae.decode(z[:, :, a:b], state) for a, b in zip(bounds[:-1], bounds[1:])]
            torch.testing.assert_close(torch.cat(parts, 2), whole, atol=1e-5, rtol=1e-4)


def test_wan_codec_interface(small_vae):
    codec = WanCodec(small_vae)
    assert codec.temporal_stride == 4 and codec.frames_needed(2) == 5
    frames = torch.rand(1, 13, 3, 16, 32) * 2 - 1
    with torch.no_grad():
        with pytest.raises(ValueError, match="1 \\+ 4k"):
            codec.encode(frames[:, :4])
        a = codec.encode(frames[:, :5])
        assert a.shape == (1, 2, 4, 2, 4) and codec.frames_needed(2) == 8
        with pytest.raises(ValueError, match="multiple of 4"):
            codec.encode(frames[:, 5:10])
        b = codec.encode(frames[:, 5:13])
        whole = small_vae.encode(frames.transpose(1, 2)).transpose(1, 2)
        torch.testing.assert_close(torch.cat([a, b], 1), whole, atol=1e-5, rtol=1e-4)
        video = torch.cat([codec.decode(a), codec.decode(b)], 1)
        assert video.shape == (1, 13, 3, 16, 32) and video.abs().max() <= 1
        assert codec.encode_image(frames[:, 0]).shape == (1, 4, 2, 4)
        codec.reset()
        assert codec.frames_needed(3) == 9


# --------------------------------------------------------------------------- Wan-layout folders
def build_small_folder(folder: Path, shards: int = 1, extras: bool = True) -> Path:
    from model.wan_loader import save_wan_folder

    cfg = small_cfg()
    torch.manual_seed(0)
    tok = make_tokenizer(folder.parent / f"{folder.name}-tokenizer.json")
    return save_wan_folder(folder, cfg, CausalDiT(cfg), WanVAE(VAE_SMALL), UMT5Encoder(T5_SMALL), tok,
                           {"name": "wan-small", "trained": False}, dit_shards=shards, include_extras=extras)


@pytest.fixture(scope="module")
def wan_folder(tmp_path_factory):
    return build_small_folder(tmp_path_factory.mktemp("wan") / "wan-small", shards=2)


def run_cli(argv, capsys):
    from app.cli import main

    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out + out.err


def test_models_check_passes_on_wan_folder(wan_folder, capsys):
    rc, out = run_cli(["models", "check", str(wan_folder)], capsys)
    assert rc == 0, out
    assert out.startswith("OK") and "dit: OK" in out and "diffusion_pytorch_model-00002-of-00002" in out
    assert "vae: OK, 194 tensors" in out and "text encoder: OK, 22 tensors" in out and "tokenizer: OK" in out


def test_wan_folder_streams_end_to_end(wan_folder):
    from model.stylizer import StreamStylizer
    from model.umt5 import UMT5TextEncoder as Text

    model = load_model(wan_folder)
    assert isinstance(model.codec, WanCodec) and isinstance(model.text_encoder, Text)
    assert model.card["default_strength"] == 0.6
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (24, 40, 3), dtype=np.uint8) for _ in range(16)]
    outs = []
    for strength in (None, 1.0):
        s = StreamStylizer(model, strength=strength, seed=3)
        assert s.strength == (0.6 if strength is None else 1.0)
        s.set_text("ink wash painting")
        assert s.chunk_size == 5  # 1 + 4 (c - 1) frames for c = 2 latent frames
        got = s.push(frames[:5])
        assert len(got) == 5 and s.chunk_size == 8
        got += s.push(frames[5:13])
        s.set_text("pixel art")  # style switch: new cross-attention, last frame kept, codec continues
        got += s.push(frames[13:]) + s.flush()
        assert len(got) == 16 and got[0].shape == (16, 32, 3) and got[0].dtype == np.uint8
        assert s.times.chunks == 3 and len(s.times.steps) == (1 if strength is None else 4)
        outs.append(got)
        s.reset()
        assert s.chunk_size == 5
    again = StreamStylizer(model, seed=3)
    again.set_text("ink wash painting")
    assert all(np.array_equal(a, b) for a, b in zip(again.push(frames[:5]), outs[0][:5]))


def test_public_release_layout_with_pth_checks_then_converts(tmp_path, capsys):
    folder = build_small_folder(tmp_path / "release", extras=False)
    (folder / "model_card.json").unlink()
    for stem in ("Wan2.1_VAE", "models_t5_umt5-xxl-enc-bf16"):
        from safetensors.torch import load_file

        torch.save(load_file(str(folder / f"{stem}.safetensors")), folder / f"{stem}.pth")
        (folder / f"{stem}.safetensors").unlink()
    rc, out = run_cli(["models", "check", str(folder)], capsys)
    assert rc == 0, out
    assert "source_embedding absent" in out and "ref_adapter absent" in out and "models convert" in out
    with pytest.raises(CheckpointError, match="convert"):
        load_model(folder)
    for stem in ("Wan2.1_VAE", "models_t5_umt5-xxl-enc-bf16"):
        src, dst = folder / f"{stem}.pth", folder / f"{stem}.safetensors"
        rc, out = run_cli(["models", "convert", str(src), str(dst)], capsys)
        assert rc == 0 and "wrote" in out, out
        (folder / f"{stem}.pth").unlink()
    model = load_model(folder)
    assert model.card["default_strength"] == 0.6 and model.trained
    assert not model.dit.source_embedding.weight.any()  # plain checkpoint: extras start neutral


def test_models_check_names_every_problem(tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    folder = build_small_folder(tmp_path / "broken")
    dit = load_file(str(folder / "diffusion_pytorch_model.safetensors"))
    del dit["blocks.1.ffn.0.weight"]
    dit["head.head.bias"] = torch.zeros(5)
    dit["blocks.7.extra"] = torch.zeros(2)
    save_file(dit, str(folder / "diffusion_pytorch_model.safetensors"))
    vae = folder / "Wan2.1_VAE.safetensors"
    vae.write_bytes(vae.read_bytes()[:-100])
    torch.save({"token_embedding.weight": torch.zeros(2), "fn": math.floor}, folder / "models_t5_umt5-xxl-enc-bf16.pth")
    (folder / "models_t5_umt5-xxl-enc-bf16.safetensors").unlink()
    rc, out = run_cli(["models", "check", str(folder)], capsys)
    assert rc == 1 and out.startswith("FAIL")
    assert "missing blocks.1.ffn.0.weight (expected shape [48, 24])" in out
    assert "wrong shape for head.head.bias: expected [16], found [5]" in out
    assert "unexpected blocks.7.extra (shape [2])" in out
    assert "Wan2.1_VAE.safetensors is truncated" in out
    assert "refused by weights-only loading" in out
    with pytest.raises(CheckpointError, match="missing blocks.1.ffn.0.weight"):
        load_model(folder)


def test_models_check_without_config_assumes_wan_1_3b(tmp_path, capsys):
    folder = build_small_folder(tmp_path / "noconfig")
    (folder / "config.json").unlink()
    (folder / "wan_components.json").unlink()
    rc, out = run_cli(["models", "check", str(folder)], capsys)
    assert rc == 1 and "the folder has no config.json; wan-1.3b assumed" in out
    assert "wrong shape for patch_embedding.weight: expected [1536, 16, 1, 2, 2], found [24, 4, 1, 2, 2]" in out
    assert "wrong shape for encoder.conv1.weight: expected [96, 3, 3, 3, 3]" in out


def test_release_config_json_is_recognised_and_init_replaces_it(tmp_path, capsys):
    folder = build_small_folder(tmp_path / "release-config")
    release = {"_class_name": "WanModel", "dim": 24, "eps": 1e-06, "ffn_dim": 48, "freq_dim": 256, "in_dim": 4,
               "model_type": "t2v", "num_heads": 2, "num_layers": 2, "out_dim": 4, "text_len": 8}
    (folder / "config.json").write_text(json.dumps(release))
    (folder / "model_card.json").unlink()
    rc, out = run_cli(["models", "check", str(folder)], capsys)
    assert "config.json is the Wan release's own" in out and "models init" in out
    # the release config sets the DiT shape; text_dim stays 4096 (umT5-XXL), which the small encoder lacks
    assert rc == 1 and "the DiT expects text_dim 4096" in out and "patch_embedding" not in out
    rc, out = run_cli(["models", "init", str(folder), "--config", "wan-1.3b"], capsys)
    assert rc == 0 and "wan_release_config.json" in out, out
    written = ModelConfig.load(folder / "config.json")
    assert (written.dim, written.num_layers, written.latent_channels, written.vae) == (24, 2, 4, "wan")
    assert json.loads((folder / "model_card.json").read_text())["default_strength"] == 0.6
    rc, out = run_cli(["models", "init", str(folder), "--config", "wan-1.3b"], capsys)
    assert rc == 2 and "already exists" in out


def test_missing_tokenizer_and_shard_are_named(wan_folder, tmp_path, capsys):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(wan_folder, folder)
    shutil.rmtree(folder / "google")
    (folder / "diffusion_pytorch_model-00002-of-00002.safetensors").unlink()
    rc, out = run_cli(["models", "check", str(folder)], capsys)
    assert rc == 1
    assert "shard files that are missing: diffusion_pytorch_model-00002-of-00002.safetensors" in out
    assert "umT5 tokenizer not found" in out


# --------------------------------------------------------------------------- convert
def test_convert_roundtrip_nested_and_bad_files(tmp_path, capsys):
    from safetensors import safe_open

    from model.convert import pth_header, write_safetensors

    state = {"a.weight": torch.randn(3, 4, dtype=torch.bfloat16), "b": torch.arange(5), "c": torch.ones(2) > 0}
    write_safetensors(state, tmp_path / "w.safetensors", {"k": 1})
    with safe_open(str(tmp_path / "w.safetensors"), "pt") as f:
        assert all(torch.equal(f.get_tensor(k), v) for k, v in state.items())
    torch.save({"generator": {"model.x": torch.ones(1)}, "generator_ema": {"model.x": torch.full((2, 2), 3.0)},
                "step": 7}, tmp_path / "sf.pt")
    assert pth_header(tmp_path / "sf.pt") == {"x": ((2, 2), "F32")}
    rc, out = run_cli(["models", "convert", str(tmp_path / "sf.pt"), str(tmp_path / "sf.safetensors")], capsys)
    assert rc == 0 and "generator_ema" in out and "'model.'" in out, out
    with safe_open(str(tmp_path / "sf.safetensors"), "pt") as f:
        assert list(f.keys()) == ["x"] and torch.equal(f.get_tensor("x"), torch.full((2, 2), 3.0))
    rc, out = run_cli(["models", "convert", str(tmp_path / "sf.pt"), str(tmp_path / "g.safetensors"),
                       "--key", "generator", "--strip-prefix", "model."], capsys)
    assert rc == 0, out
    torch.save({"w": torch.ones(3), "hook": math.floor}, tmp_path / "evil.pth")
    rc, out = run_cli(["models", "convert", str(tmp_path / "evil.pth"), str(tmp_path / "e.safetensors")], capsys)
    assert rc == 2 and "refused by weights-only loading" in out and len(out.strip().splitlines()) == 1
    assert not (tmp_path / "e.safetensors").exists()
    good = tmp_path / "good.pth"
    torch.save({"w": torch.ones(1000)}, good)
    (tmp_path / "trunc.pth").write_bytes(good.read_bytes()[:300])
    rc, out = run_cli(["models", "convert", str(tmp_path / "trunc.pth"), str(tmp_path / "t.safetensors")], capsys)
    assert rc == 2 and "truncated or not a PyTorch checkpoint" in out and len(out.strip().splitlines()) == 1
    rc, out = run_cli(["models", "convert", str(good)], capsys)
    assert rc == 2 and "usage" in out
