"""``main.py train decoder``: fit a guided codec's decoder to the latents the DiT really produces.

Why: the codec is trained to rebuild a stylized frame from *that frame's own* latent, which carries
the target's detail; the DiT's latent is smoother than that, and a decoder that learned to read detail
from the latent then renders the DiT's output soft. Here the DiT is frozen and streams every training
clip exactly as the app does (same chunks, cache, strength and fixed noise); its latents are kept, and
only the decoder learns to rebuild the target from them plus the source frame's guide features, so the
detail has to come from the camera frame. The encoder (the DiT's input and the guides) is frozen too,
so the model folder's DiT stays valid. Clips are also streamed at half size, as a webcam's small frames.
Resumable: ``--resume`` continues from ``OUT/train_state.safetensors``. ``--style-film`` gives the
decoder the DiT's style vector (kept with each streamed clip's latents) to specialise per style;
``--style-smoothing`` lets that vector also set a blur of the output (learnt SMOOTH_LR_GAIN times faster
than the rest, so that a style whose target is smooth reaches its blur within a short fit).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from ..checkpoint import load_model, save_weights
from ..config import ModelConfig
from ..guided_codec import STRIDE, GuidedCodec, set_detail_gain, with_affine_head, with_style_film, with_style_smoothing
from ..stylizer import StreamStylizer
from .codec import _grad_l1, lr_at, texture_l1, to_tensor
from .common import Log, fail, require_model_folder, threads, write_card
from .data import load_clip, load_manifest, load_target
from .metrics import psnr
from .painterly import REFERENCE_STYLE, get_any_style
from .resume import STATE_FILE, load_state, save_state
from .video_eval import sharpness

LATENTS_FILE = "dit_latents.npz"
DECODER_PARTS = ("from_latent", "up3", "up2", "up1", "to_rgb", "style_film")
SMOOTH_LR_GAIN = 30.0  # the style blur is one logit per style, started far from where thermal needs it


class RecordingCodec(GuidedCodec):
    """The model's own codec that also keeps every latent it is asked to decode, and the style vector."""

    def __init__(self, codec: GuidedCodec):
        super().__init__(codec.ae)
        self.latents: list[torch.Tensor] = []
        self.style: torch.Tensor | None = None

    def decode(self, latents: torch.Tensor, style: torch.Tensor | None = None,
               frames: slice | None = None) -> torch.Tensor:
        self.latents.append(latents[0].float().clone())
        self.style = None if style is None else style[0].float().clone()
        return super().decode(latents, style, frames)


def _scaled(frames: np.ndarray, scale: float) -> np.ndarray:
    """Frames resized by ``scale`` to a multiple of the codec's stride (both sides)."""
    h, w = frames.shape[1:3]
    nh, nw = max(STRIDE, round(h * scale / STRIDE) * STRIDE), max(STRIDE, round(w * scale / STRIDE) * STRIDE)
    if (nh, nw) == (h, w):
        return np.asarray(frames)
    return np.stack([cv2.resize(np.asarray(f), (nw, nh), interpolation=cv2.INTER_AREA) for f in frames])


def _condition(st: StreamStylizer, data_dir: Path, entry: dict) -> None:
    if entry["style"] == REFERENCE_STYLE:
        img = cv2.imread(str(Path(data_dir) / entry["reference"]))
        st.set_reference(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    else:
        st.set_text(get_any_style(entry["style"]).prompts[0])


def select_clips(data_dir: Path, split: str, styles: list[str], limit: int) -> list[dict]:
    man = load_manifest(data_dir)
    picked = [e for e in man["clips"] if e["split"] == split and "target" in e and e["style"] in styles]
    if not picked:
        raise ValueError(f"{data_dir} has no {split} clips with stored targets in the styles {', '.join(styles)}")
    return picked[:limit]


def stream_latents(model_dir: Path, data_dir: Path, entries: list[dict], scales: list[float], frames: int,
                   log=print) -> dict:
    """Stream every clip at every scale through the frozen model; keep the latents it decodes."""
    model = load_model(model_dir)
    if not isinstance(model.codec, GuidedCodec):
        raise ValueError(f"{model_dir} does not use a guided codec (config vae: 'guided')")
    rec = RecordingCodec(model.codec)
    model.codec = rec
    st = StreamStylizer(model, noise="fixed", min_side=0)  # each scale at its own size, as the pairs crop it
    chunk = st.chunk_size
    frames = max(chunk, frames // chunk * chunk)
    lat, styles, index = [], [], []
    t0 = time.perf_counter()
    for n, e in enumerate(entries):
        clip = np.asarray(load_clip(data_dir, e)[:frames])
        for scale in scales:
            st.reset()
            _condition(st, data_dir, e)
            rec.latents.clear()
            st.push(list(_scaled(clip, scale)))
            lat.append(torch.cat(rec.latents).half().numpy())
            styles.append(np.zeros(0, np.float32) if rec.style is None else rec.style.numpy())
            index.append((n, scale))
        if (n + 1) % 50 == 0:
            log(f"[decoder] streamed {n + 1}/{len(entries)} clips ({time.perf_counter() - t0:.0f} s)")
    return {"entries": entries, "index": index, "latents": lat, "styles": styles, "frames": frames}


def _fingerprint(model_dir: Path) -> str:
    h = hashlib.sha256()
    for name in ("dit.safetensors", "config.json"):
        h.update((Path(model_dir) / name).read_bytes())
    return h.hexdigest()[:16]


def only_styles(got: dict, styles: list[str]) -> dict:
    """The streamed clips of ``styles`` only: a cache streamed for more styles serves a narrower fit."""
    keep = [k for k, (n, _) in enumerate(got["index"]) if got["entries"][n]["style"] in styles]
    if not keep:
        raise ValueError(f"the streamed latents hold no clips of the styles {', '.join(styles)}")
    return {**got, "index": [got["index"][k] for k in keep], "latents": [got["latents"][k] for k in keep],
            "styles": [got["styles"][k] for k in keep]}


def save_latents(path: Path, got: dict, fingerprint: str) -> None:
    np.savez(path, fingerprint=np.array(fingerprint), frames=np.array(got["frames"]),
             entries=np.array(json.dumps(got["entries"])), index=np.array(got["index"], dtype=np.float64),
             **{f"lat{i}": v for i, v in enumerate(got["latents"])},
             **{f"sty{i}": v for i, v in enumerate(got["styles"])})


def load_latents(path: Path, fingerprint: str) -> dict | None:
    if not path.is_file():
        return None
    d = np.load(path)
    if str(d["fingerprint"]) != fingerprint or "sty0" not in d.files:
        return None  # a different DiT (its latents are not this model's), or stored without style vectors
    index = [(int(n), float(s)) for n, s in d["index"]]
    return {"entries": json.loads(str(d["entries"])), "index": index, "frames": int(d["frames"]),
            "latents": [d[f"lat{i}"] for i in range(len(index))], "styles": [d[f"sty{i}"] for i in range(len(index))]}


class DecoderPairs:
    """Random crops of (DiT latent, source frame, target frame) aligned on the latent grid. ``weights``:
    how much more often a style's clips are drawn (default 1), to spend the fit where a style is weakest."""

    def __init__(self, data_dir: Path, got: dict, weights: dict[str, float] | None = None):
        self.dir, self.got = Path(data_dir), got
        self.p = None
        if weights:
            w = np.array([weights.get(got["entries"][n]["style"], 1.0) for n, _ in got["index"]], np.float64)
            self.p = w / w.sum()

    def draw(self, rng: np.random.Generator) -> int:
        n = len(self.got["index"])
        return int(rng.integers(n)) if self.p is None else int(rng.choice(n, p=self.p))

    def sample(self, rng: np.random.Generator, crop: int, frames: int = 1):
        """``frames`` consecutive frames of one clip, one crop: (sources, targets, latents, crop box, style)."""
        k = self.draw(rng)
        n, scale = self.got["index"][k]
        e = self.got["entries"][n]
        lat = self.got["latents"][k]
        i = int(rng.integers(len(lat) - frames + 1))
        src = _scaled(np.asarray(load_clip(self.dir, e)[i:i + frames]), scale)
        tgt = _scaled(np.asarray(load_target(self.dir, e)[i:i + frames]), scale)
        lh, lw = lat.shape[-2:]
        ch, cw = min(crop // STRIDE, lh), min(crop // STRIDE, lw)
        y, x = int(rng.integers(lh - ch + 1)), int(rng.integers(lw - cw + 1))
        style = self.got["styles"][k]
        return src, tgt, lat[i:i + frames], (y, x, ch, cw), (torch.from_numpy(style)[None] if style.size else None)


def decoder_loss(ae, pairs: DecoderPairs, rng, batch: int, crop: int, texture: float = 0.0,
                 temporal: float = 0.0) -> torch.Tensor:
    """L1 + gradient L1 of decoded crops (+ ``texture`` x the texture-strength L1); guides come from the
    whole frame, as when streaming. With ``temporal``, samples are pairs of consecutive frames (half as
    many) and the output's change between them is penalised where it exceeds the target's: a style's
    flicker beyond its own target's, which the per-frame terms cannot see."""
    losses = []
    frames = 2 if temporal else 1
    for _ in range(max(1, batch // frames)):
        src, tgt, lat, (y, x, ch, cw), style = pairs.sample(rng, crop, frames)
        with torch.no_grad():
            g = ae.guides(to_tensor(src))
        crops = tuple(t[..., y * s:(y + ch) * s, x * s:(x + cw) * s] for t, s in zip(g, (8, 4, 2, STRIDE)))
        z = torch.from_numpy(lat[:, :, y:y + ch, x:x + cw].astype(np.float32))
        out = ae.decode(z, crops, None if style is None else style.expand(frames, -1),
                        short_side=min(src.shape[1:3]))
        t = to_tensor(tgt[:, y * STRIDE:(y + ch) * STRIDE, x * STRIDE:(x + cw) * STRIDE])
        loss = (out - t).abs().mean() + _grad_l1(out, t)
        if texture:
            loss = loss + texture * texture_l1(out, t)
        if temporal:
            loss = loss + temporal * torch.relu((out[1] - out[0]).abs() - (t[1] - t[0]).abs()).mean()
        losses.append(loss)
    return torch.stack(losses).mean()


@torch.no_grad()
def measure(model_dir: Path, data_dir: Path, entries: list[dict], frames: int = 4) -> dict:
    """Held-out clips streamed end to end: mean PSNR and detail kept (Laplacian variance ratio)."""
    st = StreamStylizer(load_model(model_dir), noise="fixed")
    ps, sh = [], []
    for e in entries:
        clip, target = np.asarray(load_clip(data_dir, e)[:frames]), np.asarray(load_target(data_dir, e)[:frames])
        st.reset()
        _condition(st, data_dir, e)
        outs = st.push(list(clip)) + st.flush()
        ps += [psnr(o, t) for o, t in zip(outs, target)]
        sh.append(np.mean([sharpness(o) for o in outs]) / max(np.mean([sharpness(t) for t in target]), 1e-6))
    return {"psnr": round(float(np.mean(ps)), 2), "sharpness": round(float(np.median(sh)), 3), "clips": len(entries)}


def train_decoder(model_dir: Path, data_dir: Path, out: Path, styles: list[str], steps: int, batch: int, crop: int,
                  lr: float, scales: list[float], max_clips: int, frames: int, seed: int, resume: bool,
                  save_every: int, n_threads: int | None, val_clips: int = 24, affine: bool = False,
                  detail_gain: float | None = None, style_film: bool = False, texture: float = 0.0,
                  style_weights: dict[str, float] | None = None, style_smoothing: bool = False,
                  temporal: float = 0.0, smoothing_only: bool = False) -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    train = select_clips(data_dir, "train", styles, max_clips)
    val = select_clips(data_dir, "val", styles, val_clips)
    with threads(n_threads):
        fp = _fingerprint(model_dir)
        got = load_latents(out / LATENTS_FILE, fp) if resume else None
        if got is None:
            got = stream_latents(model_dir, data_dir, train, scales, frames)
            save_latents(out / LATENTS_FILE, got, fp)
        before = measure(model_dir, data_dir, val)
        print(f"[decoder] held out before: {before}")
        model = load_model(model_dir)
        ae = model.codec.ae.float().to(memory_format=torch.contiguous_format)
        if affine and not ae.affine:
            ae = with_affine_head(ae)
        if style_film and not ae.style_dim:
            if not model.dit.cfg.style_modulation:
                raise ValueError(f"{model_dir}: --style-film needs a style-modulated DiT (its style vector)")
            ae = with_style_film(ae, model.dit.cfg.dim)
        if style_smoothing and not ae.style_smoothing:
            ae = with_style_smoothing(ae)
        if detail_gain is not None and ae.affine:
            set_detail_gain(ae, detail_gain)
        ae.requires_grad_(False)
        if smoothing_only and not ae.style_smoothing:
            raise ValueError("--smoothing-only needs --style-smoothing (or a decoder that has it)")
        groups = [] if smoothing_only else [
            {"params": [p for name in DECODER_PARTS if hasattr(ae, name) for p in getattr(ae, name).parameters()],
             "gain": 1.0}]
        if ae.style_smoothing:
            groups.append({"params": list(ae.style_smooth.parameters()), "gain": SMOOTH_LR_GAIN, "weight_decay": 0.0})
        params = [p for g in groups for p in g["params"]]
        for p in params:
            p.requires_grad_(True)
        opt = torch.optim.AdamW(groups, lr=lr, weight_decay=1e-4)
        rng = np.random.default_rng(seed)
        start, history = 0, []
        if resume and (out / STATE_FILE).is_file():
            start, extra = load_state(out, ae, opt, rng)
            history = extra.get("history", [])
            print(f"resumed from {out / STATE_FILE} at step {start}")
        pairs = DecoderPairs(data_dir, only_styles(got, styles), style_weights)
        log = Log("decoder", steps, every=50)
        t0 = time.perf_counter()
        for i in range(start, steps):
            for g in opt.param_groups:
                g["lr"] = lr_at(i, steps, lr, warmup=100) * g["gain"]
            loss = decoder_loss(ae, pairs, rng, batch, crop, texture, temporal)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            log.step(i, loss=loss.item())
            if (i + 1) % save_every == 0 or i + 1 == steps:
                history += log.history[-1:]
                save_state(out, ae, opt, i + 1, rng, {"history": history[-200:], "model": str(model_dir)})
        folder = out / "model"
        if folder.resolve() != Path(model_dir).resolve():
            shutil.copytree(model_dir, folder, dirs_exist_ok=True)
        save_weights(ae.eval(), folder / "vae.safetensors")
        ModelConfig.load(folder / "config.json").replace(
            codec_head="affine" if ae.affine else "rgb", codec_style_dim=ae.style_dim,
            codec_style_smoothing=ae.style_smoothing).save(folder / "config.json")
        after = measure(folder, data_dir, val)
    print(f"[decoder] held out after: {after}")
    record = {"steps": steps, "batch": batch, "head": "affine" if ae.affine else "rgb",
              "style_film": bool(ae.style_dim), "style_smoothing": ae.style_smoothing, "texture": texture,
              "temporal": temporal, "smoothing_only": smoothing_only, "style_weights": style_weights or {},
              "crop": crop, "lr": lr, "scales": scales, "clips": len(train),
              "styles": styles, "seconds_this_run": round(time.perf_counter() - t0), "history": history[-10:],
              "held_out_before": before, "held_out_after": after}
    card = json.loads((folder / "model_card.json").read_text()) if (folder / "model_card.json").exists() else {}
    training = card.get("training", {})
    key, k = "decoder", 2
    while key in training:
        key, k = f"decoder-{k}", k + 1
    write_card(folder, {"training": {**training, key: record}, "stream_noise": "fixed"})
    (out / "decoder_report.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="main.py train decoder", description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, type=Path, help="model folder with a guided codec (a trained student)")
    ap.add_argument("--data", required=True, type=Path, help="the data set with stored targets")
    ap.add_argument("--out", required=True, type=Path, help="run folder; the tuned model is written to OUT/model")
    ap.add_argument("--styles", help="comma-separated styles (default: the model's trained styles and reference)")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=128, help="crop side in pixels (a multiple of 16)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--scales", default="1.0,0.5", help="frame scales the clips are streamed at")
    ap.add_argument("--max-clips", type=int, default=100000)
    ap.add_argument("--frames", type=int, default=6, help="frames streamed per clip")
    ap.add_argument("--affine-head", action="store_true",
                    help="give the decoder the affine head (a colour transform of each source pixel)")
    ap.add_argument("--style-film", action="store_true",
                    help="let the DiT's style vector scale and shift the decoder's features (FiLM, from zero)")
    ap.add_argument("--style-smoothing", action="store_true",
                    help="with the style film: let the style vector also set a blur of the output, per style")
    ap.add_argument("--smoothing-only", action="store_true",
                    help="train the style blur alone (the rest of the decoder stays as it is)")
    ap.add_argument("--temporal", type=float, default=0.0,
                    help="weight of a loss on the output's change between consecutive frames beyond the target's")
    ap.add_argument("--detail-gain", type=float,
                    help="with the affine head: start with the source's detail layer passed through times this")
    ap.add_argument("--texture", type=float, default=0.0,
                    help="weight of a loss on each 8x8 cell's texture strength (Laplacian RMS), against smoothing")
    ap.add_argument("--style-weight", action="append", default=[], metavar="STYLE=W",
                    help="draw this style's clips W times as often as the others' (repeatable)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resume", action="store_true", help=f"continue from OUT/{STATE_FILE} and OUT/{LATENTS_FILE}")
    ap.add_argument("--save-every", type=int, default=100)
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args(argv)
    require_model_folder(a.model, "--model", "student")
    if not (a.data / "manifest.json").is_file():
        fail(f"{a.data} is not a data set (no manifest.json; build one with `main.py train data`)")
    if a.crop < 16 or a.crop % 16:
        fail(f"--crop must be a positive multiple of 16, got {a.crop}")
    for name, v in (("--texture", a.texture), ("--temporal", a.temporal)):
        if v < 0:
            fail(f"{name} must be 0 or more, got {v}")
    weights = {}
    for item in a.style_weight:
        name, _, value = item.partition("=")
        try:
            weights[name] = float(value)
            if weights[name] <= 0:
                raise ValueError
        except ValueError:
            fail(f"--style-weight must look like cartoon=3 with a positive weight, got {item!r}")
    for name, v in (("--steps", a.steps), ("--batch", a.batch), ("--save-every", a.save_every), ("--frames", a.frames)):
        if v < 1:
            fail(f"{name} must be at least 1, got {v}")
    try:
        scales = [float(s) for s in a.scales.split(",")]
        if not scales or min(scales) <= 0 or max(scales) > 1:
            raise ValueError
    except ValueError:
        fail(f"--scales must be numbers in (0, 1], e.g. 1.0,0.5; got {a.scales!r}")
    if a.styles:
        styles = a.styles.split(",")
    else:
        vocab = load_model(a.model).vocabulary
        styles = (vocab.styles if vocab else []) + [REFERENCE_STYLE]
    unknown = sorted(set(weights) - set(styles))
    if unknown:
        fail(f"--style-weight names {', '.join(unknown)}, which this fit does not train (--styles)")
    try:
        for s in styles:
            if s != REFERENCE_STYLE:
                get_any_style(s)
        train_decoder(a.model, a.data, a.out, styles, a.steps, a.batch, a.crop, a.lr, scales, a.max_clips,
                      a.frames, a.seed, a.resume, a.save_every, a.threads, affine=a.affine_head,
                      detail_gain=a.detail_gain, style_film=a.style_film, texture=a.texture,
                      style_weights=weights, style_smoothing=a.style_smoothing, temporal=a.temporal,
                      smoothing_only=a.smoothing_only)
    except (KeyError, ValueError) as e:
        fail(str(e).strip("'"))
    return 0
