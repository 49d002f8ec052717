"""The styles a model was trained on, and matching a free prompt to the closest of them.

A small model trained on a fixed set of styles answers its training prompts well but a paraphrase it
never saw only partly: its text embedding lies between the trained ones and the DiT, which has seen
a few points per style, does not interpolate reliably (the embedded model picks the right style for
about one unseen paraphrase in five). The sentence encoder itself ranks paraphrases far better, so a
model folder may list its training prompts in ``styles.json``; the stylizer then conditions on the
trained prompt closest (cosine similarity of sentence embeddings) to what the person typed, and says
which style it chose. Folders without the file (paper-scale text-to-video models) take prompts as typed.

``styles.json``: ``{"styles": {"<id>": {"title": "...", "prompts": ["...", ...]}, ...}}``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

VOCABULARY_FILE = "styles.json"


class VocabularyError(ValueError):
    pass


def _normal(prompt: str) -> str:
    return " ".join(prompt.split()).lower()


@dataclass(frozen=True)
class PromptMatch:
    """The trained prompt a free prompt was matched to."""
    prompt: str  # what was typed
    style: str  # style id
    title: str
    trained_prompt: str  # the prompt whose embedding conditions the model
    similarity: float  # cosine similarity of the two sentence embeddings

    @property
    def exact(self) -> bool:
        return _normal(self.prompt) == _normal(self.trained_prompt)

    def describe(self) -> str:
        if self.exact:
            return f"{self.title}"
        return f"{self.title} (closest trained prompt '{self.trained_prompt}', similarity {self.similarity:.2f})"


class StyleVocabulary:
    def __init__(self, styles: dict[str, dict]):
        if not styles:
            raise VocabularyError("the style vocabulary lists no styles")
        self.entries: list[tuple[str, str, str]] = []  # (style id, title, prompt)
        for sid, spec in styles.items():
            prompts = spec.get("prompts") if isinstance(spec, dict) else None
            if not prompts or not all(isinstance(p, str) and p.strip() for p in prompts):
                raise VocabularyError(f"style {sid!r} lists no usable prompts")
            title = str(spec.get("title") or sid)
            self.entries.extend((sid, title, p) for p in prompts)
        self._embeddings: torch.Tensor | None = None
        self._encoder_id: int | None = None

    @classmethod
    def load(cls, folder: str | Path) -> "StyleVocabulary | None":
        """The folder's vocabulary, or None when it has none."""
        path = Path(folder) / VOCABULARY_FILE
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
            return cls(data["styles"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise VocabularyError(f"unreadable style vocabulary {path}: {e}") from None

    @staticmethod
    def save(folder: str | Path, styles: dict[str, dict]) -> Path:
        StyleVocabulary(styles)  # validate before writing
        path = Path(folder) / VOCABULARY_FILE
        path.write_text(json.dumps({"styles": styles}, indent=1) + "\n")
        return path

    @property
    def styles(self) -> list[str]:
        return list(dict.fromkeys(sid for sid, _, _ in self.entries))

    def _trained_embeddings(self, text_encoder) -> torch.Tensor:
        if self._embeddings is None or self._encoder_id != id(text_encoder):
            self._embeddings = text_encoder.embed([p for _, _, p in self.entries]).float()
            self._encoder_id = id(text_encoder)
        return self._embeddings

    def match(self, prompt: str, text_encoder) -> PromptMatch:
        """The style whose three most similar trained prompts are on average most similar to ``prompt``
        (steadier than the single nearest prompt, which one odd paraphrase can win, and not diluted by a
        style's prompts about other aspects of it, as the mean of all is), conditioned on its nearest prompt."""
        key = _normal(prompt)
        for sid, title, trained in self.entries:  # a trained prompt as typed: no need to embed them all
            if _normal(trained) == key:
                return PromptMatch(prompt, sid, title, trained, 1.0)
        query = text_encoder.embed([key]).float()
        sims = (self._trained_embeddings(text_encoder) @ query[0]).tolist()
        per_style: dict[str, list[int]] = {}
        for i, (sid, _, _) in enumerate(self.entries):
            per_style.setdefault(sid, []).append(i)
        nearest = max(range(len(sims)), key=sims.__getitem__)
        if sims[nearest] > 0.98:  # a trained prompt (or a trivial variant of one): take it as it is
            style = self.entries[nearest][0]
        else:
            def top3(sid: str) -> float:
                best3 = sorted((sims[i] for i in per_style[sid]), reverse=True)[:3]
                return sum(best3) / len(best3)

            style = max(per_style, key=top3)
        best = max(per_style[style], key=sims.__getitem__)
        sid, title, trained = self.entries[best]
        return PromptMatch(prompt, sid, title, trained, float(sims[best]))
