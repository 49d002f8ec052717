"""Latents of a data set with stored targets (data set v2) and the DiT's training batches from them.

Why a second format: in data set v2 every clip has one target in one style (a filter, a painterly
network style, or a reference image), rendered on the still and moved with the camera, so targets
cannot be recomputed per frame as the version-1 stages do. Here each clip keeps its source latents,
its target latents, its style and, for reference clips, the latent of its reference image.
``train latents`` writes this format when the data set has stored targets; the stages read either.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from ..checkpoint import load_weights
from ..config import ModelConfig
from ..stylizer import fit_frame
from ..text import MiniLMEncoder
from .data import load_clip, load_manifest, load_target
from .painterly import REFERENCE_STYLE, get_any_style

FORMAT = "styled-v2"


def _autoencoder(config: ModelConfig, weights: Path):
    from ..checkpoint import build_tiny_parts

    _, ae = build_tiny_parts(config)
    load_weights(ae, weights)
    return ae.eval()


def _encode(ae, frames: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(np.array(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    with torch.no_grad():
        return torch.cat([ae.encode(x[i: i + 16]) for i in range(0, len(x), 16)]).half().numpy()


def build_styled_latents(data_dir: Path, config: ModelConfig, weights: Path, out: Path, split: str = "train",
                         max_clips: int = 100000, frames: int = 8, styles: list[str] | None = None) -> Path:
    """Encode every clip with a stored target (optionally only some styles) into one .npz."""
    from tqdm import tqdm

    man = load_manifest(data_dir)
    entries = [e for e in man["clips"] if e["split"] == split and "target" in e
               and (not styles or e["style"] in styles or e["style"] == REFERENCE_STYLE and REFERENCE_STYLE in styles)]
    entries = entries[:max_clips]
    if not entries:
        raise ValueError(f"{data_dir} has no {split} clips with stored targets"
                         + (f" in the styles {', '.join(styles)}" if styles else ""))
    ae = _autoencoder(config, weights)
    h, w = man["size"]
    src, tgt, ref, style_idx = [], [], [], []
    names = sorted({e["style"] for e in entries if e["style"] != REFERENCE_STYLE})
    for e in tqdm(entries, desc=f"latents ({split})", unit="clip"):
        src.append(_encode(ae, np.asarray(load_clip(data_dir, e)[:frames])))
        tgt.append(_encode(ae, np.asarray(load_target(data_dir, e)[:frames])))
        if e["style"] == REFERENCE_STYLE:
            img = cv2.cvtColor(cv2.imread(str(Path(data_dir) / e["reference"])), cv2.COLOR_BGR2RGB)
            ref.append(_encode(ae, fit_frame(img, h, w)[None])[0])
            style_idx.append(-1)
        else:
            ref.append(np.zeros_like(src[-1][0]))
            style_idx.append(names.index(e["style"]))
    enc = MiniLMEncoder()
    prompts = [list(get_any_style(n).prompts) for n in names]
    p = min(len(x) for x in prompts) if prompts else 1
    prompt_emb = (torch.stack([enc.embed(x[:p]) for x in prompts]).numpy() if prompts
                  else np.zeros((0, p, 384), np.float32))
    ref_prompt = enc.embed([config.reference_prompt]).numpy()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, format=np.array(FORMAT), source=np.stack(src), target=np.stack(tgt), reference=np.stack(ref),
             style_index=np.array(style_idx), prompt_emb=prompt_emb, ref_prompt=ref_prompt, styles=np.array(names),
             motion=np.array([e["motion"] for e in entries]))
    print(f"wrote {out}: {len(src)} clips x {frames} frames ({sum(i < 0 for i in style_idx)} reference-guided), "
          f"{len(names)} text styles")
    return out


class StyledLatentPairs:
    """Training batches from ``build_styled_latents``: text pairs from text-styled clips, reference pairs
    from reference clips (their own reference image), in the same dict as ``stages.LatentPairs``."""

    def __init__(self, d, frames: int, crop: tuple[int, int], p_text: float, seed: int, device,
                 styles: list[str] | None = None):
        names = [str(s) for s in d["styles"]]
        index = d["style_index"]
        keep = np.ones(len(index), bool)
        if styles:  # train on a subset: those text styles, and reference clips if "reference" is listed
            unknown = sorted(set(styles) - set(names) - {REFERENCE_STYLE})
            if unknown:
                raise ValueError(f"the latents hold no clips of {', '.join(unknown)}; they hold {', '.join(names)}")
            wanted = [names.index(n) for n in styles if n != REFERENCE_STYLE]
            keep = np.isin(index, wanted) | ((index < 0) & (REFERENCE_STYLE in styles))
            remap = {old: new for new, old in enumerate(wanted)}
            index = np.array([remap.get(int(i), -1) for i in index])
            d = {**{k: d[k] for k in d.files}, "prompt_emb": d["prompt_emb"][wanted],
                 "styles": np.array([names[i] for i in wanted])}
        self.source = torch.from_numpy(d["source"][keep])  # [N, F, C, h, w] fp16
        self.target = torch.from_numpy(d["target"][keep])
        self.reference = torch.from_numpy(d["reference"][keep])  # [N, C, h, w]
        self.style_index = index[keep]
        self.prompt_emb = torch.from_numpy(d["prompt_emb"]).float()
        self.ref_prompt = torch.from_numpy(d["ref_prompt"]).float()
        self.styles = [str(s) for s in d["styles"]]
        self.frames, self.crop, self.p_text, self.device = frames, crop, p_text, device
        self.g = np.random.default_rng(seed)
        self.text_clips = np.flatnonzero(self.style_index >= 0)
        self.ref_clips = np.flatnonzero(self.style_index < 0)
        if self.source.shape[1] < frames:
            raise ValueError(f"the latents hold {self.source.shape[1]} frames per clip, training needs {frames}")
        if not len(self.text_clips) and not len(self.ref_clips):
            raise ValueError("the latents hold no clips")

    def vocabulary(self) -> dict:
        p = self.prompt_emb.shape[1]
        return {n: {"title": get_any_style(n).title, "prompts": list(get_any_style(n).prompts[:p])}
                for n in self.styles}

    def batch(self, size: int) -> dict:
        g = self.g
        n, f, c, h, w = self.source.shape
        ch, cw = min(self.crop[0], h), min(self.crop[1], w)
        text = len(self.text_clips) and (not len(self.ref_clips) or g.random() < self.p_text)
        clip = g.choice(self.text_clips if text else self.ref_clips, size=size)
        f0 = g.integers(0, f - self.frames + 1, size=size)
        y, x = g.integers(0, h - ch + 1), g.integers(0, w - cw + 1)
        sl = lambda t, i: t[f0[i]: f0[i] + self.frames, :, y: y + ch, x: x + cw]  # noqa: E731
        src = torch.stack([sl(self.source[clip[i]], i) for i in range(size)])
        tgt = torch.stack([sl(self.target[clip[i]], i) for i in range(size)])
        style = self.style_index[clip]
        if text:
            pick = g.integers(self.prompt_emb.shape[1], size=size)
            ctx, ref = self.prompt_emb[style, pick][:, None], None
        else:
            ry, rx = g.integers(0, h - ch + 1), g.integers(0, w - cw + 1)
            ref = self.reference[clip][:, :, ry: ry + ch, rx: rx + cw].float().to(self.device)
            ctx = self.ref_prompt.expand(size, -1)[:, None]
        dev = self.device
        return {"source": src.float().to(dev), "target": tgt.float().to(dev), "context": ctx.to(dev),
                "ref": ref, "style": style}
