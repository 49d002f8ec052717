"""The three training stages of the paper, at any scale (single process or torchrun/DDP).

1. ``teacher``: bidirectional DiT, flow matching on (source, stylized) pairs, text or reference guided.
2. ``student``: causal (block-causal) DiT initialised from the teacher, trained on the fixed few-step
   timestep list with clean context chunks (teacher forcing).
3. ``dmd``: Self Forcing rollouts of the student (each chunk conditioned on its own previous output)
   trained with Distribution Matching Distillation: a frozen real-score network (the teacher) and a
   trained fake-score network (initialised from the teacher) on the student's samples.

Inputs come from ``train latents`` (encoded clips, targets and prompt embeddings); outputs are model
folders in the engine's format (config.json, dit.safetensors, vae.safetensors, model_card.json).
"""
from __future__ import annotations

import argparse
import copy
import shutil
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..checkpoint import CheckpointError, build_tiny_parts, load_weights, save_weights
from ..config import ConfigError, ModelConfig
from ..dit import CausalDiT
from ..schedule import FlowSchedule
from ..vocabulary import StyleVocabulary
from .common import Dist, Log, fail, require_file, require_model_folder, unwrap, write_card
from .styles import STYLES


def latent_pairs(path: Path, frames: int, crop: tuple[int, int], p_text: float, seed: int, device,
                 styles: list[str] | None = None):
    """The batches of a `train latents` file in either format (every style per clip, or stored targets)."""
    from .styled_latents import FORMAT, StyledLatentPairs

    try:
        d = np.load(path)
        fmt = str(d["format"]) if "format" in d else None
    except (OSError, ValueError, TypeError) as e:  # not an .npz at all
        raise ValueError(f"{path} is not a `train latents` file ({e})") from None
    if fmt == FORMAT:
        return StyledLatentPairs(d, frames, crop, p_text, seed, device, styles)
    if styles:
        raise ValueError("--styles needs latents of a data set with stored targets (`train latents --config ...`)")
    return LatentPairs(path, frames, crop, p_text, seed, device)


class LatentPairs:
    """Random training batches from the encoded data set: crops of ``frames`` consecutive latent frames."""

    def __init__(self, path: Path, frames: int, crop: tuple[int, int], p_text: float, seed: int, device):
        try:
            d = np.load(path)
            missing = [k for k in ("source", "target", "prompt_emb", "ref_prompt", "styles") if k not in d]
        except (OSError, ValueError, TypeError) as e:  # not an .npz at all
            raise ValueError(f"{path} is not a `train latents` file ({e})") from None
        if missing:
            raise ValueError(f"{path} is not a `train latents` file (no {', '.join(missing)})")
        self.source = torch.from_numpy(d["source"])  # [N, F, C, h, w] fp16
        self.target = torch.from_numpy(d["target"])  # [N, S, F, C, h, w]
        self.prompt_emb = torch.from_numpy(d["prompt_emb"]).float()  # [S, P, D]
        self.ref_prompt = torch.from_numpy(d["ref_prompt"]).float()  # [1, D]
        self.styles = [str(s) for s in d["styles"]]
        self.frames, self.crop, self.p_text = frames, crop, p_text
        self.g = np.random.default_rng(seed)
        self.device = device
        n, f = self.source.shape[:2]
        if f < frames:
            raise ValueError(f"the latents hold {f} frames per clip, training needs {frames}")

    def vocabulary(self) -> dict:
        """The styles and text prompts these pairs train on (the model folder's ``styles.json``)."""
        p = self.prompt_emb.shape[1]
        return {n: {"title": STYLES[n].title, "prompts": list(STYLES[n].prompts[:p])} for n in self.styles}

    def batch(self, size: int) -> dict:
        g = self.g
        n, f, c, h, w = self.source.shape
        ch, cw = min(self.crop[0], h), min(self.crop[1], w)
        clip = g.integers(n, size=size)
        style = g.integers(len(self.styles), size=size)
        f0 = g.integers(0, f - self.frames + 1, size=size)
        y, x = g.integers(0, h - ch + 1), g.integers(0, w - cw + 1)
        sl = lambda t, i: t[..., f0[i]: f0[i] + self.frames, :, y: y + ch, x: x + cw]  # noqa: E731
        src = torch.stack([sl(self.source[clip[i]], i) for i in range(size)])
        tgt = torch.stack([sl(self.target[clip[i], style[i]], i) for i in range(size)])
        text = g.random() < self.p_text
        if text:
            pick = g.integers(self.prompt_emb.shape[1], size=size)
            ctx = self.prompt_emb[style, pick][:, None]
            ref = None
        else:  # a frame of a *different* clip in the same style, as in the paper
            other = (clip + 1 + g.integers(n - 1, size=size)) % n
            fr = g.integers(f, size=size)
            ry, rx = g.integers(0, h - ch + 1), g.integers(0, w - cw + 1)
            ref = torch.stack([self.target[other[i], style[i], fr[i], :, ry: ry + ch, rx: rx + cw]
                               for i in range(size)]).float().to(self.device)
            ctx = self.ref_prompt.expand(size, -1)[:, None]
        dev = self.device
        return {"source": src.float().to(dev), "target": tgt.float().to(dev), "context": ctx.to(dev),
                "ref": ref, "style": style}


def _save(folder: Path, cfg: ModelConfig, dit: CausalDiT, vae_path: Path, card: dict, pairs: LatentPairs) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    cfg.save(folder / "config.json")
    StyleVocabulary.save(folder, pairs.vocabulary())
    save_weights(dit, folder / "dit.safetensors")
    if Path(vae_path).resolve() != (folder / "vae.safetensors").resolve():
        shutil.copyfile(vae_path, folder / "vae.safetensors")
    write_card(folder, card)


def _load_dit(folder: Path) -> tuple[ModelConfig, CausalDiT]:
    cfg = ModelConfig.load(folder / "config.json")
    dit, _ = build_tiny_parts(cfg)
    load_weights(dit, folder / "dit.safetensors")
    return cfg, dit


def sample_sigma(size: int, device) -> torch.Tensor:
    """Logit-normal noise levels (rectified-flow practice): most training near the middle."""
    return torch.sigmoid(torch.randn(size, device=device))


def teacher_step(dit, b, device):
    x0, src = b["target"], b["source"]
    bsz, f = x0.shape[:2]
    sigma = sample_sigma(bsz, device)
    noise = torch.randn_like(x0)
    s = sigma.view(-1, 1, 1, 1, 1)
    xt = (1 - s) * x0 + s * noise
    v = dit(xt, src, (sigma * 1000)[:, None].expand(bsz, f), b["context"], b["ref"], causal=False)
    return F.mse_loss(v, noise - x0)


def student_step(dit, b, sched: FlowSchedule, chunk: int, gen: np.random.Generator, device, sdedit: bool = False):
    """Causal student on the fixed timestep list: chunk k is noisy, chunks < k are clean context.

    With ``sdedit`` the first step starts, as the stylizer does with a strength below 1, from the noised
    *source* latent, so the student learns the residual from source to target instead of a target
    from noise (which regresses to the mean and blurs)."""
    x0, src = b["target"], b["source"]
    bsz, f = x0.shape[:2]
    k = int(gen.integers(f // chunk))
    a, e = k * chunk, (k + 1) * chunk
    idx = torch.from_numpy(gen.integers(len(sched.sigmas), size=bsz))
    sig = torch.tensor(sched.sigmas, device=device)[idx]
    s = sig.view(-1, 1, 1, 1, 1)
    noise = torch.randn_like(x0[:, a:e])
    start = x0[:, a:e]
    if sdedit:
        first = (idx == 0).to(device).view(-1, 1, 1, 1, 1)
        start = torch.where(first, src[:, a:e], start)
    xt = (1 - s) * start + s * noise
    inp = torch.cat([x0[:, :a], xt], 1)
    t = torch.cat([torch.zeros(bsz, a, device=device), (sig * 1000)[:, None].expand(bsz, chunk)], 1)
    v = dit(inp, src[:, :e], t, b["context"], b["ref"], causal=True)[:, a:e]
    pred_x0 = xt - s * v
    return F.mse_loss(pred_x0, x0[:, a:e])


def self_forcing_step(dit, b, sched: FlowSchedule, chunk: int, device):
    """Self Forcing as the app streams: every chunk starts from the noised source latent with the same
    noise (the stream's fixed noise), is denoised on the timestep list conditioned on the model's own
    clean previous chunks, and is regressed onto its target; only each chunk's last step has gradients.

    Why: a student trained with clean target chunks as context (``student_step``) meets its own, softer
    output as context when it streams with a longer window, and loses ~2.5 dB; here it trains on that."""
    src, x0 = b["source"], b["target"]
    bsz, f = src.shape[:2]
    sig = sched.sigmas
    noise = [torch.randn_like(src[:, :chunk]) for _ in sig]
    outs = []
    for a in range(0, f, chunk):
        e = a + chunk
        ctx = torch.cat(outs, 1).detach() if outs else src[:, :0]
        x = (1 - sig[0]) * src[:, a:e] + sig[0] * noise[0]
        for j, s in enumerate(sig):
            last = j == len(sig) - 1
            t = torch.cat([torch.zeros(bsz, a, device=device), torch.full((bsz, chunk), s * 1000, device=device)], 1)
            with torch.set_grad_enabled(last):
                pred = x - s * dit(torch.cat([ctx, x], 1), src[:, :e], t, b["context"], b["ref"], causal=True)[:, a:]
            if not last:
                x = (1 - sig[j + 1]) * pred.detach() + sig[j + 1] * noise[j + 1]
        outs.append(pred)
    return F.mse_loss(torch.cat(outs, 1), x0)


def rollout(gen_dit, b, sched: FlowSchedule, chunk: int):
    """Self Forcing: generate chunk by chunk from noise, each conditioned on the model's own clean
    previous chunks; only the final denoising step of each chunk carries gradients."""
    src, ctx, ref = b["source"], b["context"], b["ref"]
    bsz, f = src.shape[:2]
    sigmas = sched.sigmas
    outs = []
    for a in range(0, f, chunk):
        e = a + chunk
        ctx_frames = torch.cat(outs, 1).detach() if outs else src[:, :0]
        x = torch.randn_like(src[:, a:e])
        for j, sg in enumerate(sigmas):
            last = j == len(sigmas) - 1
            t = torch.cat([torch.zeros(bsz, a, device=src.device),
                           torch.full((bsz, chunk), sg * 1000, device=src.device)], 1)
            with torch.set_grad_enabled(last):
                v = gen_dit(torch.cat([ctx_frames, x], 1), src[:, :e], t, ctx, ref, causal=True)[:, a:]
                x0 = x - sg * v
            if not last:
                x = (1 - sigmas[j + 1]) * x0 + sigmas[j + 1] * torch.randn_like(x0)
        outs.append(x0)
    return torch.cat(outs, 1)


def dmd_losses(gen_out, b, real, fake, device):
    """DMD generator loss (reverse-KL gradient = fake score - real score) and the fake-score loss."""
    bsz, f = gen_out.shape[:2]
    sigma = (0.02 + 0.96 * torch.rand(bsz, device=device))
    s = sigma.view(-1, 1, 1, 1, 1)
    t = (sigma * 1000)[:, None].expand(bsz, f)
    x = gen_out.detach()
    noise = torch.randn_like(x)
    xt = (1 - s) * x + s * noise
    with torch.no_grad():
        x0_real = xt - s * real(xt, b["source"], t, b["context"], b["ref"], causal=False)
        x0_fake = xt - s * fake(xt, b["source"], t, b["context"], b["ref"], causal=False)
        norm = (x - x0_real).abs().mean(dim=(1, 2, 3, 4), keepdim=True).clamp_min(1e-4)
        grad = (x0_fake - x0_real) / norm
    g_loss = 0.5 * F.mse_loss(gen_out, (gen_out - grad).detach())
    # fake score: flow matching on the generator's (detached) samples
    sigma2 = sample_sigma(bsz, device)
    s2 = sigma2.view(-1, 1, 1, 1, 1)
    n2 = torch.randn_like(x)
    v = fake(((1 - s2) * x + s2 * n2), b["source"], (sigma2 * 1000)[:, None].expand(bsz, f), b["context"], b["ref"],
             causal=False)
    f_loss = F.mse_loss(v, n2 - x)
    return g_loss, f_loss


def run_stage(stage: str, a) -> int:
    d = Dist()
    torch.manual_seed(a.seed + d.rank)
    gen = np.random.default_rng(a.seed + 1000 * d.rank)
    device = d.device
    fresh = stage == "teacher" or (stage == "student" and a.init is None)  # a student may start from scratch
    try:  # everything read from disk is checked before the first step: a bad input is a one-line error
        if fresh:
            cfg = (ModelConfig.load(a.config) if a.config and Path(a.config).exists()
                   else ModelConfig.named(a.config or "tiny"))
            if cfg.vae not in ("tiny", "guided"):
                raise ConfigError(f"config {cfg.name!r} uses the {cfg.vae!r} VAE; "
                                  "these stages train CPU-sized models only")
            dit, ae = build_tiny_parts(cfg)
            vae_path = Path(a.vae)
            try:  # the autoencoder must match the config's latent channels
                load_weights(ae, vae_path)
            except CheckpointError as e:
                first = (str(e).splitlines() + [""])[1].strip()
                raise CheckpointError(f"--vae {vae_path} is not an autoencoder for config {cfg.name!r} ({first}, ...)")
        else:
            cfg, dit = _load_dit(Path(a.init))
            vae_path = Path(a.init) / "vae.safetensors"
            if getattr(a, "add_layers", 0) or getattr(a, "style_modulation", False) \
                    or getattr(a, "reference_spread", False):
                from .grow import grow

                cfg, dit = grow(dit, cfg, a.add_layers, a.style_modulation, a.reference_spread)
        if a.steps_list:
            cfg = cfg.replace(denoising_steps=[int(x) for x in a.steps_list.split(",")], shift=a.shift)
        if stage != "teacher" and a.frames % cfg.chunk_frames:
            raise ValueError(f"--frames {a.frames} must be a multiple of the config's chunk_frames {cfg.chunk_frames}")
        if getattr(a, "self_forcing", False):  # it streams with the window it was trained to roll out over
            a.sdedit = True
            cfg = cfg.replace(window_frames=a.frames)
        sched = FlowSchedule(cfg.denoising_steps, cfg.shift)
        pairs = latent_pairs(a.latents, a.frames, tuple(a.crop), a.p_text, a.seed + d.rank, device,
                             a.styles.split(",") if a.styles else None)
        if stage == "dmd":
            _, real = _load_dit(Path(a.teacher))
    except (ConfigError, CheckpointError, ValueError) as e:
        d.close()
        fail(" ".join(str(e).split()))
    dit = dit.to(device).train()
    model = d.wrap(dit)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.01, betas=(0.9, 0.99))
    if stage == "dmd":
        real = real.to(device).eval().requires_grad_(False)
        fake_m = copy.deepcopy(real).train().requires_grad_(True)
        fake = d.wrap(fake_m)
        opt_f = torch.optim.AdamW(fake.parameters(), lr=a.lr_fake, weight_decay=0.01, betas=(0.9, 0.99))
    log = Log(stage, a.steps, every=a.log_every, enabled=d.main)
    warm = max(1, a.steps // 20)
    lr_at = lambda i: a.lr * min(1.0, (i + 1) / warm) * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * i / a.steps)))  # noqa: E731
    for i in range(a.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(i)
        b = pairs.batch(a.batch)
        if stage == "teacher":
            loss = teacher_step(model, b, device)
            vals = {"loss": loss.item()}
        elif stage == "student":
            if getattr(a, "self_forcing", False):
                loss = self_forcing_step(model, b, sched, cfg.chunk_frames, device)
            else:
                loss = student_step(model, b, sched, cfg.chunk_frames, gen, device, a.sdedit)
            vals = {"loss": loss.item()}
        else:
            out = rollout(model, b, sched, cfg.chunk_frames)
            g_loss, f_loss = dmd_losses(out, b, real, fake, device)
            reg = F.mse_loss(out, b["target"])
            loss = g_loss + a.regression * reg
            opt_f.zero_grad(set_to_none=True)
            f_loss.backward()
            opt_f.step()
            vals = {"dmd": g_loss.item(), "fake": f_loss.item(), "regression_mse": reg.item()}
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        log.step(i, **vals)
        if d.main and a.save_every and (i + 1) % a.save_every == 0 and i + 1 < a.steps:
            partial = {"stage": stage, "steps_done": i + 1}
            if getattr(a, "sdedit", False):
                partial["default_strength"] = round(float(sched.sigmas[0]), 4)
            _save(Path(a.out), cfg, unwrap(model), vae_path, partial, pairs)
    if d.main:
        card = {"name": a.name or f"tiny-{stage}", "trained": True, "stage": stage, "causal": stage != "teacher",
                "training": {stage: {"steps": a.steps, "batch": a.batch * d.world, "lr": a.lr, "frames": a.frames,
                                     "crop": list(a.crop), "p_text": a.p_text, "seconds": round(log.seconds),
                                     "world_size": d.world, "device": str(device), "history": log.history[-4:],
                                     **({"regression_weight": a.regression, "lr_fake": a.lr_fake}
                                        if stage == "dmd" else {}),
                                     **({"sdedit": True} if getattr(a, "sdedit", False) else {}),
                                     **({"self_forcing": True, "window_frames": a.frames}
                                        if getattr(a, "self_forcing", False) else {}),
                                     **({"added_layers": a.add_layers} if getattr(a, "add_layers", 0) else {}),
                                     **({"added_style_modulation": True}
                                        if getattr(a, "style_modulation", False) else {}),
                                     **({"added_reference_spread": True}
                                        if getattr(a, "reference_spread", False) else {})}}}
        if getattr(a, "sdedit", False):  # the stylizer starts from the noised source at the first step's level
            card["default_strength"] = round(float(sched.sigmas[0]), 4)
        src_card = Path(a.init) / "model_card.json" if not fresh else None
        if src_card and src_card.exists():
            import json

            prev_card = json.loads(src_card.read_text())
            if "default_strength" in prev_card and "default_strength" not in card:
                card["default_strength"] = prev_card["default_strength"]
            prev = prev_card.get("training", {})
            key, n = stage, 2
            while key in prev:  # a stage run again (e.g. a second student run) keeps the earlier runs
                key, n = f"{stage}-{n}", n + 1
            card["training"] = {**prev, key: card["training"][stage]}
        _save(Path(a.out), cfg, unwrap(model), vae_path, card, pairs)
        print(f"{stage}: saved {a.out} after {a.steps} steps in {log.seconds:.0f} s")
    d.barrier()
    d.close()
    return 0


def main(stage: str, argv=None) -> int:
    ap = argparse.ArgumentParser(prog=f"main.py train {stage}")
    ap.add_argument("--latents", required=True, type=Path, help=".npz from `train latents`")
    ap.add_argument("--out", required=True, type=Path, help="output model folder")
    if stage == "teacher":
        ap.add_argument("--config", default="tiny", help="config name or JSON path")
        ap.add_argument("--vae", required=True, type=Path, help="vae.safetensors from `train vae`")
    elif stage == "student":
        ap.add_argument("--init", type=Path, help="model folder to start from (a teacher); or --config and --vae")
        ap.add_argument("--config", default="tiny", help="with no --init: config name or JSON path of a fresh DiT")
        ap.add_argument("--vae", type=Path, help="with no --init: the autoencoder or codec weights")
        ap.add_argument("--add-layers", type=int, default=0,
                        help="with --init: grow the DiT by this many blocks, each starting as the identity")
        ap.add_argument("--style-modulation", action="store_true",
                        help="with --init: add style modulation (the style shifts every block's adaLN), from zero")
        ap.add_argument("--reference-spread", action="store_true",
                        help="with --init: the reference tokens' spread (not only their mean) enters the style, "
                             "from zero")
    else:
        ap.add_argument("--init", required=True, type=Path, help="model folder to start from (teacher / student)")
    if stage == "dmd":
        ap.add_argument("--teacher", required=True, type=Path, help="teacher folder (frozen real score)")
        ap.add_argument("--lr-fake", type=float, default=1e-4)
        ap.add_argument("--regression", type=float, default=0.25,
                        help="weight of an extra L2 to the ground-truth target (0 = pure DMD)")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default={"teacher": 3e-4, "student": 2e-4, "dmd": 2e-5}[stage])
    ap.add_argument("--frames", type=int, default=6, help="latent frames per sample")
    ap.add_argument("--crop", type=int, nargs=2, default=(12, 20), metavar=("H", "W"), help="latent crop")
    ap.add_argument("--p-text", type=float, default=0.7, help="fraction of text-guided batches")
    ap.add_argument("--steps-list", help="denoising timesteps for the student, e.g. 1000,500")
    if stage == "student":
        ap.add_argument("--sdedit", action="store_true",
                        help="first step from the noised source latent (the model then streams with strength "
                             "= the first step's noise level, recorded as the card's default_strength)")
        ap.add_argument("--self-forcing", action="store_true",
                        help="train on the model's own rollouts over --frames (implies --sdedit); the model then "
                             "streams with a window of --frames latent frames")
    ap.add_argument("--shift", type=float, default=1.0)
    ap.add_argument("--styles", help="train on these styles only (comma-separated; 'reference' keeps reference "
                                     "clips); latents with stored targets")
    ap.add_argument("--name")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--save-every", type=int, default=0)
    a = ap.parse_args(argv)
    require_file(a.latents, "latents", "latents")
    if stage == "teacher" or (stage == "student" and a.init is None):
        if a.vae is None:
            fail("--vae is required to start a student from scratch (or give --init)")
        require_file(a.vae, "autoencoder weights", "vae or codec")
    else:
        require_model_folder(a.init, "--init model", {"student": "teacher", "dmd": "student"}[stage])
    if stage == "dmd":
        require_model_folder(a.teacher, "--teacher model", "teacher")
    return run_stage(stage, a)
