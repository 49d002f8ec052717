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
