"""Shared fixtures: small real model folders and clips, built once per session."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session")
def text_encoder():
    from model.text import MiniLMEncoder

    return MiniLMEncoder()


@pytest.fixture(scope="session")
def random_model_dir(tmp_path_factory):
    """A model folder with the tiny config and random weights (fast, real code paths)."""
    import torch

    from model.checkpoint import build_tiny_parts, save_tiny_model
    from model.config import ModelConfig

    cfg = ModelConfig.named("tiny").replace(resolution=(64, 96))
    torch.manual_seed(0)
    dit, ae = build_tiny_parts(cfg)
    return save_tiny_model(tmp_path_factory.mktemp("model") / "tiny-random", cfg, dit, ae,
                           {"name": "tiny-random", "trained": False})


@pytest.fixture(scope="session")
def random_model(random_model_dir, text_encoder):
    from model.checkpoint import load_model

    return load_model(random_model_dir, text_encoder=text_encoder)


def synthetic_photo(seed: int, h: int = 150, w: int = 220) -> np.ndarray:
    """A smooth random image with a few discs: a stand-in photograph for the training-data builder."""
    import cv2

    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(4):
        c = tuple(int(v) for v in rng.integers(0, 256, 3))
        cv2.circle(img, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.integers(8, 40)), c, -1)
    return img


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory):
    """Synthetic photos in a temporary folder, so data and training tests never depend on which
    wallpaper packages are installed: 8 loose images, one KDE-style wallpaper ("Meadow") and a
    non-image file. Read-only for the tests that use it."""
    import cv2

    d = tmp_path_factory.mktemp("photos")
    for i in range(8):
        cv2.imwrite(str(d / f"photo_{i}.{'png' if i % 2 else 'jpg'}"), synthetic_photo(i))
    kde = d / "Meadow" / "contents"  # a KDE-style wallpaper: counts once, as "Meadow"
    (kde / "images").mkdir(parents=True)
    cv2.imwrite(str(kde / "images" / "320x200.jpg"), synthetic_photo(20, 200, 320))
    cv2.imwrite(str(kde / "images" / "160x100.jpg"), synthetic_photo(21, 100, 160))
    cv2.imwrite(str(kde / "screenshot.jpg"), synthetic_photo(22))
    (d / "notes.txt").write_text("not an image")
    return d


def moving_frames(n: int, height: int = 72, width: int = 128, seed: int = 0) -> list[np.ndarray]:
    """A textured image panning right: deterministic test footage."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (height, width * 2, 3), dtype=np.uint8)
    return [np.ascontiguousarray(base[:, i * 2: i * 2 + width]) for i in range(n)]


@pytest.fixture
def sample_video(tmp_path):
    from app.outputs.mp4 import Mp4Writer

    path = tmp_path / "clip.mp4"
    with Mp4Writer(path, 24) as w:
        for f in moving_frames(20):
            w.write(f)
    return path
