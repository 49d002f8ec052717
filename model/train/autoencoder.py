"""Train the tiny per-frame autoencoder on source and stylized frames.

It has to reproduce both photographs and the flat colours/thin lines of the filters, so each batch
mixes source crops with the same crops through random styles. Loss: L1 plus an L1 on image
gradients (keeps pencil lines and halftone dots crisp). Afterwards the per-channel latent mean/std
are measured and stored so the DiT sees unit-scale latents.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import save_weights
from ..vae import TinyAutoencoder
from .common import Log, fail, require_file
from .data import load_clip, load_manifest
from .styles import STYLES


def _grad_l1(a, b):
    dx = lambda t: t[..., :, 1:] - t[..., :, :-1]  # noqa: E731
    dy = lambda t: t[..., 1:, :] - t[..., :-1, :]  # noqa: E731
    return (dx(a) - dx(b)).abs().mean() + (dy(a) - dy(b)).abs().mean()


def frame_pool(data_dir: Path, split: str, max_clips: int, frames_per_clip: int, seed: int) -> np.ndarray:
    man = load_manifest(data_dir)
    entries = [e for e in man["clips"] if e["split"] == split][:max_clips]
    rng = np.random.default_rng(seed)
    out = []
    for e in entries:
        clip = load_clip(data_dir, e)
        for i in rng.choice(len(clip), size=min(frames_per_clip, len(clip)), replace=False):
            out.append(np.asarray(clip[i]))
    return np.stack(out)


def stylized_pool(frames: np.ndarray, seed: int) -> np.ndarray:
    """Each frame through one style (cycled), so every style is represented."""
    names = list(STYLES)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(frames))
    return np.stack([STYLES[names[k % len(names)]].apply(frames[i]) for k, i in enumerate(order)])


def to_tensor(batch: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def train_autoencoder(data_dir: Path, out: Path, steps: int = 2000, batch: int = 16, crop: int = 96,
                      lr: float = 1e-3, latent_channels: int = 8, seed: int = 0, max_clips: int = 300) -> dict:
    torch.manual_seed(seed)
    frames = frame_pool(data_dir, "train", max_clips, 4, seed)
    pool = np.concatenate([frames, stylized_pool(frames, seed)])
    ae = TinyAutoencoder(latent_channels)
    opt = torch.optim.AdamW(ae.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=max(0.05, 2 / steps))
    rng = np.random.default_rng(seed)
    log = Log("autoencoder", steps, every=100)
    h, w = pool.shape[1:3]
    for i in range(steps):
        idx = rng.integers(len(pool), size=batch)
        y, x = rng.integers(0, h - crop + 1), rng.integers(0, w - crop + 1)
        img = to_tensor(pool[idx, y: y + crop, x: x + crop])
        if rng.random() < 0.5:
            img = img.flip(-1)
        z = ae.encoder(img)
        rec = ae.decoder(z + 0.02 * torch.randn_like(z))  # a little latent noise keeps the decoder robust
        loss = (rec - img).abs().mean() + _grad_l1(rec, img) + 1e-4 * z.pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        log.step(i, loss=loss.item())
    ae.eval()
    with torch.no_grad():  # latent statistics over full frames
        zs = torch.cat([ae.encoder(to_tensor(pool[j: j + 32])) for j in range(0, min(len(pool), 512), 32)])
        ae.latent_mean.copy_(zs.mean(dim=(0, 2, 3)))
        ae.latent_std.copy_(zs.std(dim=(0, 2, 3)).clamp_min(1e-3))
    val = frame_pool(data_dir, "val", 40, 2, seed + 1)
    val = np.concatenate([val, stylized_pool(val, seed + 1)])
    with torch.no_grad():
        x = to_tensor(val)
        rec = torch.cat([ae.decode(ae.encode(x[j: j + 16])) for j in range(0, len(x), 16)])
        mse = ((rec - x) / 2).pow(2).mean(dim=(1, 2, 3))
        psnr = (10 * torch.log10(1 / mse.clamp_min(1e-10))).mean().item()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_weights(ae, out / "vae.safetensors")
    report = {"steps": steps, "batch": batch, "crop": crop, "lr": lr, "seconds": round(log.seconds),
              "val_psnr_db": round(psnr, 2), "train_frames": int(len(pool)), "loss_history": log.history[-5:]}
    (out / "autoencoder_report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"autoencoder: held-out reconstruction PSNR {psnr:.2f} dB -> {out / 'vae.safetensors'}")
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="main.py train vae", description="Train the tiny per-frame autoencoder.")
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path, help="folder for vae.safetensors")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop", type=int, default=96)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--latent-channels", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    require_file(a.data / "manifest.json", "data set manifest", "data")
    man = load_manifest(a.data)
    for split in ("train", "val"):
        if not any(e["split"] == split for e in man["clips"]):
            fail(f"the data set {a.data} has no {split} clips (the autoencoder needs both splits)")
    if a.crop > min(man["size"]):
        fail(f"--crop {a.crop} is larger than the data set's frames ({man['size'][0]}x{man['size'][1]})")
    train_autoencoder(a.data, a.out, a.steps, a.batch, a.crop, a.lr, a.latent_channels, a.seed)
    return 0
