"""Encode training clips and their stylized targets once, so the DiT stages never run a filter or the
autoencoder in their inner loop. Also embeds every training prompt with the text encoder."""
from __future__ import annotations

import argparse
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import CheckpointError, load_weights
from ..text import MiniLMEncoder
from ..vae import TinyAutoencoder
from .common import fail, require_file
from .data import load_clip, load_manifest
from .styles import STYLES


def _stylize_all(clip: np.ndarray) -> np.ndarray:
    """[F, H, W, 3] -> [S, F, H, W, 3], every style (a process-pool job)."""
    return np.stack([np.stack([s.apply(f) for f in clip]) for s in STYLES.values()])


def _encode(ae: TinyAutoencoder, frames: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(np.array(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1.0  # a writable copy (mmap)
    with torch.no_grad():
        return torch.cat([ae.encode(x[i: i + 32]) for i in range(0, len(x), 32)]).half().numpy()


def build_latents(data_dir: Path, vae_path: Path, out: Path, split: str = "train", max_clips: int = 300,
                  frames: int = 8, latent_channels: int = 8, workers: int = 2) -> Path:
    man = load_manifest(data_dir)
    entries = [e for e in man["clips"] if e["split"] == split][:max_clips]
    ae = TinyAutoencoder(latent_channels)
    load_weights(ae, vae_path)
    ae.eval()
    clips = [np.asarray(load_clip(data_dir, e)[:frames]) for e in entries]
    from tqdm import tqdm

    src, tgt = [], []
    with Pool(workers) as pool:
        for clip, styled in tqdm(zip(clips, pool.imap(_stylize_all, clips, chunksize=4)), total=len(clips),
                                 desc=f"latents ({split})", unit="clip"):
            src.append(_encode(ae, clip))
            s, f = styled.shape[:2]
            tgt.append(_encode(ae, styled.reshape(s * f, *styled.shape[2:])).reshape(s, f, *src[-1].shape[1:]))
    enc = MiniLMEncoder()
    names = list(STYLES)
    prompts = [list(STYLES[n].prompts) for n in names]
    p = min(len(x) for x in prompts)
    prompt_emb = torch.stack([enc.embed(x[:p]) for x in prompts]).numpy()
    ref_prompt = enc.embed(["Transfer the video style to match the reference image style"]).numpy()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, source=np.stack(src), target=np.stack(tgt), prompt_emb=prompt_emb, ref_prompt=ref_prompt,
             styles=np.array(names), motion=np.array([e["motion"] for e in entries]))
    print(f"wrote {out}: {len(src)} clips x {frames} frames x {len(names)} styles")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="main.py train latents")
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--vae", type=Path, help="vae.safetensors from `train vae` (data sets without stored targets)")
    ap.add_argument("--out", required=True, type=Path, help="output .npz")
    ap.add_argument("--split", default="train")
    ap.add_argument("--max-clips", type=int, default=300)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--config", help="config name or JSON path of the codec in --vae (data sets with stored targets, "
                                      "e.g. tiny-guided with `train codec`'s codec.safetensors)")
    ap.add_argument("--styles",
                    help="with stored targets: comma-separated styles to keep (reference for reference clips)")
    a = ap.parse_args(argv)
    require_file(a.data / "manifest.json", "data set manifest", "data")
    if a.vae is None:
        fail("--vae is required (the autoencoder or codec weights that encode the clips)")
    require_file(a.vae, "autoencoder weights", "vae or codec")
    man = load_manifest(a.data)
    if not any(e["split"] == a.split for e in man["clips"]):
        fail(f"the data set {a.data} has no {a.split!r} clips")
    if any("target" in e for e in man["clips"]):  # data set v2: stored targets, one style per clip
        from ..config import ConfigError, ModelConfig
        from .styled_latents import build_styled_latents

        try:
            name = a.config or "tiny-guided"
            cfg = ModelConfig.load(name) if Path(name).exists() else ModelConfig.named(name)
            build_styled_latents(a.data, cfg, a.vae, a.out, a.split, a.max_clips, a.frames,
                                 a.styles.split(",") if a.styles else None)
        except (ConfigError, CheckpointError, ValueError, KeyError) as e:
            fail(" ".join(str(e).split()))
        return 0
    try:
        build_latents(a.data, a.vae, a.out, a.split, a.max_clips, a.frames, workers=a.workers)
    except CheckpointError as e:
        fail(" ".join(str(e).split()))
    return 0
