"""``main.py train codec``: train the source-guided codec on (source, stylized target) frame pairs.

The decoder must rebuild a stylized frame from that frame's own 1/16 latent plus the features of the
*source* frame, so the latent learns to carry style (colour, tone, texture) and the source carries
the edges. Loss: L1 plus L1 on image gradients (keeps lines, dots and strokes crisp). Training is
resumable: ``--resume`` continues from ``OUT/train_state.safetensors`` (step, optimizer, data order).
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from ..checkpoint import save_weights
from ..guided_codec import GuidedAutoencoder
from .common import Log, fail, require_file, threads
from .data import load_clip, load_manifest, load_target
from .metrics import psnr
from .resume import STATE_FILE, load_state, save_state


def _grad_l1(a, b):
    dx = lambda t: t[..., :, 1:] - t[..., :, :-1]  # noqa: E731
    dy = lambda t: t[..., 1:, :] - t[..., :-1, :]  # noqa: E731
    return (dx(a) - dx(b)).abs().mean() + (dy(a) - dy(b)).abs().mean()


_LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])[None, None]


def texture_energy(x: torch.Tensor, box: int = 8) -> torch.Tensor:
    """RMS of the grey image's Laplacian over ``box`` x ``box`` cells: how much fine texture each place has,
    whatever its phase (the quantity the sharpness metric, a Laplacian variance, sums)."""
    grey = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]
    lap = torch.nn.functional.conv2d(grey, _LAPLACIAN.to(x), padding=1)
    return torch.nn.functional.avg_pool2d(lap.square(), box).add(1e-6).sqrt()


def texture_l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Why: L1 alone pays a decoder to paint the mean of textures it cannot place exactly, i.e. none; this
    term pays it for texture of the target's strength in each cell, so it stops smoothing it away."""
    return (texture_energy(a) - texture_energy(b)).abs().mean()


def to_tensor(batch: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(batch)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def to_image(x: torch.Tensor) -> np.ndarray:
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


class PairSampler:
    """Random (source, target) crops from a data set built with stored targets."""

    def __init__(self, data_dir: Path, split: str, styles: list[str] | None = None):
        man = load_manifest(data_dir)
        self.dir = Path(data_dir)
        self.entries = [e for e in man["clips"] if e["split"] == split and "target" in e
                        and (not styles or e["style"] in styles)]
        if not self.entries:
            raise ValueError(f"the data set {data_dir} has no {split} clips with stored targets "
                             f"(build it with `main.py train data --styles ...`)")
        self.size = tuple(man["size"])

    def batch(self, rng: np.random.Generator, n: int, crop: int) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = self.size
        src, tgt = [], []
        for _ in range(n):
            e = self.entries[rng.integers(len(self.entries))]
            clip, target = load_clip(self.dir, e), load_target(self.dir, e)
            i = rng.integers(len(clip))
            y, x = rng.integers(0, h - crop + 1), rng.integers(0, w - crop + 1)
            s, t = clip[i, y:y + crop, x:x + crop], target[i, y:y + crop, x:x + crop]
            if rng.random() < 0.5:
                s, t = s[:, ::-1], t[:, ::-1]
            src.append(s), tgt.append(t)
        return to_tensor(np.stack(src)), to_tensor(np.stack(tgt))


def lr_at(step: int, total: int, base: float, warmup: int = 200) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup)))))


def loss_fn(ae: GuidedAutoencoder, src: torch.Tensor, tgt: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    z, _ = ae.features(tgt)
    _, guides = ae.features(src)
    noise = torch.randn(z.shape, generator=gen)
    rec = ae.decode(z + 0.05 * noise, guides)  # latent noise: the DiT's output is never exact
    return (rec - tgt).abs().mean() + _grad_l1(rec, tgt) + 1e-4 * z.pow(2).mean()


@torch.no_grad()
def measure_latents(ae: GuidedAutoencoder, sampler: PairSampler, rng, n: int = 64) -> None:
    """Per-channel latent mean/std over stylized frames, so the DiT sees unit-scale latents."""
    ae.latent_mean.zero_(), ae.latent_std.fill_(1.0)
    zs = []
    for _ in range(max(1, n // 16)):
        src, tgt = sampler.batch(rng, 16, min(sampler.size))
        zs += [ae.encode(tgt), ae.encode(src)]
    z = torch.cat(zs)
    ae.latent_mean.copy_(z.mean(dim=(0, 2, 3)))
    ae.latent_std.copy_(z.std(dim=(0, 2, 3)).clamp_min(1e-3))


@torch.no_grad()
def evaluate_codec(ae: GuidedAutoencoder, data_dir: Path, sheet: Path | None = None, per_style: int = 2) -> dict:
    """Held-out reconstruction PSNR per style on whole frames, and a contact sheet (source | target | codec)."""
    sampler = PairSampler(data_dir, "val")
    by_style: dict[str, list[float]] = {}
    rows = []
    for e in sampler.entries:
        if len(by_style.get(e["style"], [])) >= per_style:
            continue
        src = np.asarray(load_clip(data_dir, e)[:1])
        tgt = np.asarray(load_target(data_dir, e)[:1])
        s, t = to_tensor(src), to_tensor(tgt)
        rec = to_image(ae.decode(ae.encode(t), ae.guides(s)))[0]
        by_style.setdefault(e["style"], []).append(psnr(rec, tgt[0]))
        if len(by_style[e["style"]]) == 1:
            rows.append(np.concatenate([src[0], tgt[0], rec], 1))
    report = {k: round(float(np.mean(v)), 2) for k, v in sorted(by_style.items())}
    report["mean"] = round(float(np.mean([v for k, v in report.items()])), 2)
    if sheet is not None and rows:
        small = [cv2.resize(r, (r.shape[1] // 2, r.shape[0] // 2), interpolation=cv2.INTER_AREA) for r in rows]
        half = (len(small) + 1) // 2
        pad = [np.zeros_like(small[0])] * (2 * half - len(small))
        cols = [np.concatenate(small[:half], 0), np.concatenate(small[half:] + pad, 0)]
        cv2.imwrite(str(sheet), cv2.cvtColor(np.concatenate(cols, 1), cv2.COLOR_RGB2BGR))
    return report


def train_codec(data_dir: Path, out: Path, steps: int, batch: int, crop: int, lr: float, latent_channels: int,
                widths: tuple[int, ...], seed: int, resume: bool, save_every: int, n_threads: int | None,
                styles: list[str] | None = None) -> dict:
    torch.manual_seed(seed)
    sampler = PairSampler(data_dir, "train", styles)
    if crop > min(sampler.size):
        fail(f"--crop {crop} is larger than the data set's frames ({sampler.size[0]}x{sampler.size[1]})")
    ae = GuidedAutoencoder(latent_channels, tuple(widths))
    opt = torch.optim.AdamW(ae.parameters(), lr=lr, weight_decay=1e-4)
    rng = np.random.default_rng(seed)
    out = Path(out)
    start, history = 0, []
    if resume and (out / STATE_FILE).is_file():
        start, extra = load_state(out, ae, opt, rng)
        history = extra.get("history", [])
        print(f"resumed from {out / STATE_FILE} at step {start}")
    log = Log("codec", steps, every=50)
    t0 = time.perf_counter()
    with threads(n_threads):
        for i in range(start, steps):
            for g in opt.param_groups:
                g["lr"] = lr_at(i, steps, lr)
            src, tgt = sampler.batch(rng, batch, crop)
            # every random draw comes from rng, whose state the checkpoint keeps: a resumed run is the same run
            loss = loss_fn(ae, src, tgt, torch.Generator().manual_seed(int(rng.integers(2**31))))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(ae.parameters(), 1.0)
            opt.step()
            log.step(i, loss=loss.item())
            if (i + 1) % save_every == 0 or i + 1 == steps:
                history += log.history[-1:]
                save_state(out, ae, opt, i + 1, rng, {"history": history[-200:], "data": str(data_dir),
                                                     "latent_channels": latent_channels, "widths": list(widths)})
        ae.eval()
        measure_latents(ae, sampler, np.random.default_rng(seed + 1))
        report = evaluate_codec(ae, data_dir, out / "codec_sheet.png")
    save_weights(ae, out / "codec.safetensors")
    summary = {"steps": steps, "batch": batch, "crop": crop, "lr": lr, "latent_channels": latent_channels,
               "widths": list(widths), "params": sum(p.numel() for p in ae.parameters()),
               "seconds_this_run": round(time.perf_counter() - t0), "val_psnr_db": report, "history": history[-20:]}
    (out / "codec_report.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"codec: held-out reconstruction PSNR {report['mean']:.2f} dB (per style: {report}) -> {out}")
    return summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="main.py train codec", description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, type=Path, help="data set with stored targets (`train data --styles`)")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--steps", type=int, default=4000, help="total steps (a resumed run continues to this)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--latent-channels", type=int, default=16)
    ap.add_argument("--widths", default="16,32,64,96", help="channels at 1/2, 1/4, 1/8, 1/16")
    ap.add_argument("--styles", help="comma-separated subset of styles to train on")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resume", action="store_true", help=f"continue from OUT/{STATE_FILE}")
    ap.add_argument("--save-every", type=int, default=250)
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args(argv)
    require_file(a.data / "manifest.json", "data set manifest", "data")
    try:
        widths = tuple(int(x) for x in a.widths.split(","))
        if len(widths) != 4 or min(widths) < 1:
            raise ValueError
    except ValueError:
        fail(f"--widths must be four positive integers, e.g. 16,32,64,96; got {a.widths!r}")
    for name, v in (("--steps", a.steps), ("--batch", a.batch), ("--crop", a.crop), ("--save-every", a.save_every)):
        if v < 1:
            fail(f"{name} must be at least 1, got {v}")
    if a.crop % 16:
        fail(f"--crop must be a multiple of 16, got {a.crop}")
    try:
        train_codec(a.data, a.out, a.steps, a.batch, a.crop, a.lr, a.latent_channels, widths, a.seed, a.resume,
                    a.save_every, a.threads, a.styles.split(",") if a.styles else None)
    except ValueError as e:
        fail(str(e))
    return 0
