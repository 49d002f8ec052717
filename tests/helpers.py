"""Test helpers: deterministic footage, a model-free stand-in stylizer, and the window's test drivers.

``FakeStylizer`` satisfies ``model.protocols.Stylizer`` without a network: a chunk comes back as soon
as it is complete, each frame a fixed function of its source and of the kind of style (``fake_render``:
a test can tell output from input, and one style from another). It is
for tests about the window and the engine's plumbing; what the model does is tested on real small
models elsewhere.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model.config import ModelConfig
from model.speed import SpeedSettings, speed_settings
from model.style import StyleSpec

ROOT = Path(__file__).resolve().parent.parent  # the repository
WAIT = 30000  # ms; generous for a loaded CI machine, the waits end as soon as the condition holds


def moving_frames(n: int, height: int = 72, width: int = 128, seed: int = 0) -> list[np.ndarray]:
    """A textured image panning right: deterministic test footage."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (height, width * 2, 3), dtype=np.uint8)
    return [np.ascontiguousarray(base[:, i * 2: i * 2 + width]) for i in range(n)]


def synthetic_photo(seed: int, h: int = 150, w: int = 220) -> np.ndarray:
    """A smooth random image with a few discs: a stand-in photograph for the training-data builder."""
    import cv2

    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(4):
        c = tuple(int(v) for v in rng.integers(0, 256, 3))
        cv2.circle(img, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.integers(8, 40)), c, -1)
    return img


# ------------------------------------------------------------------------------ fake stylizer
def fake_render(source: np.ndarray, kind: str) -> np.ndarray:
    """What FakeStylizer makes of a frame: the inverse for a text style, a dim copy for a reference."""
    return 255 - source if kind == "text" else source // 2


@dataclass
class FakeModel:
    config: ModelConfig
    folder: Path | None = None
    card: dict = field(default_factory=lambda: {"name": "fake", "trained": False})

    @property
    def name(self) -> str:
        return self.card["name"]

    @property
    def trained(self) -> bool:
        return bool(self.card.get("trained"))


class FakeCache:
    def __init__(self):
        self.cross_ready = False
        self.condition_version = 0
        self.ref_len = 0
        self._frames: list[int] = []

    def frames_in_window(self) -> list[int]:
        return list(self._frames)


class FakeTimes:
    def __init__(self):
        self.frames = 0
        self.chunks = 0

    def per_frame(self) -> dict:
        return {"encode_ms": 0.0, "dit_ms": 0.0, "cache_write_ms": 0.0, "decode_ms": 0.0,
                "frames": self.frames, "chunks": self.chunks}


class FakeStylizer:
    """``model.protocols.Stylizer`` without a model (see the module doc)."""

    def __init__(self, height: int = 48, width: int = 64, chunk_size: int = 2):
        self.height, self.width, self._chunk = height, width, chunk_size
        self.guided = False
        self.model = FakeModel(ModelConfig.named("tiny").replace(resolution=(height, width)))
        self.cache = FakeCache()
        self.times = FakeTimes()
        self.strength = 1.0
        self.style: StyleSpec | None = None
        self.prompt_match = None
        self.speed: str | None = None
        self.steps: list[int] = list(self.model.config.denoising_steps)
        self.adacache_mode = "off"
        self.window_frames = self.model.config.window_frames
        self.pushed = 0  # frames taken, for tests
        self._pending: list[np.ndarray] = []
        self._lock = threading.Lock()

    @property
    def chunk_size(self) -> int:
        return self._chunk

    def as_output(self, frame: np.ndarray) -> np.ndarray:
        from model.stylizer import fit_frame

        return fit_frame(frame, self.height, self.width)

    # -- styles
    def set_text(self, prompt: str) -> None:
        from model.stylizer import StyleError

        if not (prompt or "").strip():
            raise StyleError("the style prompt is empty")
        self._switch(StyleSpec(prompt=prompt.strip()), 0)

    def set_reference(self, image, prompt: str | None = None) -> None:
        from model.stylizer import load_image

        if isinstance(image, np.ndarray):
            self._switch(StyleSpec(prompt=prompt, image=image), 16)
        else:
            load_image(image)  # the real stylizer's checks and errors
            self._switch(StyleSpec(prompt=prompt, reference=Path(image)), 16)

    def _switch(self, spec: StyleSpec, ref_len: int) -> None:
        c = self.cache
        c._frames = c._frames[-1:]  # like the real cache: the last frame stays
        c.cross_ready, c.ref_len = True, ref_len
        c.condition_version += 1
        self.style = spec

    # -- settings
    def set_strength(self, strength: float) -> None:
        if not 0.0 < strength <= 1.0:
            raise ValueError("strength must be in (0, 1]")
        self.strength = strength

    def set_steps(self, steps) -> None:
        if steps is None:
            steps = list(self.model.config.denoising_steps)
        elif isinstance(steps, int):
            steps = [round(1000 * (1 - i / steps)) for i in range(steps)]
        self.steps = list(steps)

    def set_adacache(self, mode) -> None:
        self.adacache_mode = mode if isinstance(mode, str) else ("slow" if mode else "off")

    def set_speed(self, name: str) -> SpeedSettings:
        settings = speed_settings(name, self.model.config)
        self.set_steps(settings.steps)
        self.set_adacache(settings.adacache)
        self.window_frames = settings.window_frames
        self.speed = name
        return settings

    # -- streaming
    def stream(self, frames):
        return iter(self.push(frames))

    def push(self, frames) -> list[np.ndarray]:
        from model.stylizer import StyleError, fit_frame

        if self.style is None:
            raise StyleError("no style set: call set_text or set_reference first")
        if isinstance(frames, np.ndarray) and frames.ndim == 3:
            frames = [frames]
        out = []
        with self._lock:
            for f in frames:
                self._pending.append(fit_frame(np.asarray(f), self.height, self.width))
                self.pushed += 1
            while len(self._pending) >= self._chunk:
                chunk, self._pending = self._pending[:self._chunk], self._pending[self._chunk:]
                out += [fake_render(f, self.style.kind) for f in chunk]
                self.times.chunks += 1
                self.times.frames += len(chunk)
                nxt = (self.cache._frames[-1] + 1) if self.cache._frames else 0
                self.cache._frames = [nxt]
        return out

    def flush(self) -> list[np.ndarray]:
        with self._lock:
            real, self._pending = self._pending, []
        return [fake_render(f, self.style.kind) for f in real]

    def reset(self) -> None:
        with self._lock:
            self._pending = []
        self.cache._frames = []


def use_fake_stylizer(monkeypatch, **kw) -> list[FakeStylizer]:
    """Make every engine load build a FakeStylizer instead of reading a model folder (the request's
    speed and strength are applied as the real builder does). Returns the stylizers built, newest last."""
    import app.engine
    from model.build import BuiltStylizer

    built: list[FakeStylizer] = []

    def build(req, progress=None, model=None):
        if progress:
            progress(50, "fake model")
        st = FakeStylizer(**kw)
        if req.resolution:
            st.height, st.width = req.resolution
        req.speed.apply(st)
        if req.strength is not None:
            st.set_strength(req.strength)
        built.append(st)
        return BuiltStylizer(st, "cpu", (kw.get("height", 48), kw.get("width", 64)))

    monkeypatch.setattr(app.engine, "build_stylizer", build)
    return built


# ------------------------------------------------------------------------------ window drivers
def wait_frames(qtbot, w, more: int = 1) -> None:
    """Until the window's stylized view has shown ``more`` further frames."""
    start = w.stylized_view.frames_shown
    qtbot.waitUntil(lambda: w.stylized_view.frames_shown >= start + more, timeout=WAIT)


def drop_files(w, *paths) -> None:
    """A real drag: enter (the window must accept it), then drop."""
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = QPointF(w.width() / 2, w.height() / 2)
    enter = QDragEnterEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(w, enter)
    assert enter.isAccepted()
    drop = QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(w, drop)
    assert drop.isAccepted()


def applied(qtbot, worker, action, is_it=None):
    """Run ``action`` and return the StyleChange the engine reports for it. ``is_it(change)`` tells it
    apart from a change an earlier action may still be delivering on a busy machine."""
    check = (lambda change: bool(is_it(change))) if is_it else None
    with qtbot.waitSignal(worker.styleApplied, timeout=WAIT, check_params_cb=check) as sig:
        action()
    return sig.args[0]
