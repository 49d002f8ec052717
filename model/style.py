"""StyleSpec: the one description of a style, shared by the stylizer, the live engine, the CLI and the window.

A style is a text prompt, or a reference image (a file, or pixels already in memory) with an optional
prompt. The stylizer records the StyleSpec it runs; the app keeps and compares them (they are
hashable), so there is no second, tuple-shaped vocabulary for "which style is on".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from .protocols import StyleTarget

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


@dataclass(frozen=True)
class StyleSpec:
    prompt: str | None = None
    reference: Path | None = None  # a reference image file
    # a reference image already in memory (uint8 HxWx3); not part of equality or the hash
    image: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def kind(self) -> str:
        """``"reference"`` or ``"text"``."""
        return "reference" if self.reference is not None or self.image is not None else "text"

    @classmethod
    def parse(cls, text: str) -> StyleSpec:
        """An image path becomes a reference style; anything else is a prompt."""
        p = Path(text)
        if p.suffix.lower() in IMAGE_SUFFIXES:
            return cls(reference=p)
        return cls(prompt=text)

    def apply(self, stylizer: StyleTarget) -> None:
        """Switch ``stylizer`` to this style (raises ``model.stylizer.StyleError`` when it cannot be used)."""
        if self.kind == "reference":
            stylizer.set_reference(self.image if self.image is not None else self.reference, self.prompt)
        else:
            stylizer.set_text(self.prompt or "")

    def __str__(self) -> str:
        if self.reference is not None:
            return f"reference {self.reference.name}"
        return "reference image" if self.image is not None else repr(self.prompt)
