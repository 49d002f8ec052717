"""The style filters are the ground truth of training and evaluation, so they must be exact:
right shape and dtype at any size, deterministic, free of flicker, and clearly different styles."""
import itertools

import cv2
import numpy as np
import pytest

from model.train.styles import STYLES, Style, get_style


def scene(h: int = 240, w: int = 400, seed: int = 0) -> np.ndarray:
    """A synthetic photo-like RGB image: sky gradient, ground, coloured shapes, soft texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    img[:] = np.stack([0.45 + 0.3 * yy / h, 0.6 + 0.2 * yy / h, 0.95 - 0.2 * yy / h], -1)
    ground = yy > h * (0.55 + 0.08 * np.sin(xx / w * 6))
    img[ground] = (0.25, 0.5, 0.2)
    for _ in range(7):
        c = tuple(float(v) for v in rng.uniform(0.05, 1.0, 3))
        center = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        if rng.random() < 0.5:
            cv2.circle(img, center, int(rng.integers(h // 12, h // 4)), c, -1, cv2.LINE_AA)
        else:
            corner = (center[0] + int(rng.integers(20, w // 3)), center[1] + int(rng.integers(20, h // 3)))
            cv2.rectangle(img, center, corner, c, -1)
    tex = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 1.5)
    img = cv2.GaussianBlur(img, (0, 0), 1.0) + 0.06 * tex[..., None]
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


PHOTO = scene()
FRAME = np.ascontiguousarray(PHOTO[20:212, 30:350])  # 192x320, the training size
NAMES = list(STYLES)


def mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


def test_registry():
    assert len(STYLES) >= 12
    assert {"ink_wash", "pencil_sketch", "watercolor", "oil_paint", "cartoon", "pixel_art", "neon_edges", "thermal",
            "pop_art", "vintage_film", "comic_halftone", "blueprint"} <= set(STYLES)
    all_prompts = set()
    for name, st in STYLES.items():
        assert isinstance(st, Style) and st.name == name and st.title
        assert len(st.prompts) >= 6 and len(st.held_out_prompts) >= 3
        assert not set(st.prompts) & set(st.held_out_prompts)
        prompts = set(st.prompts) | set(st.held_out_prompts)
        assert not prompts & all_prompts, "a prompt may name only one style"
        all_prompts |= prompts


def test_get_style():
    assert get_style("pixel_art") is STYLES["pixel_art"]
    with pytest.raises(KeyError, match="ink_wash.*blueprint"):
        get_style("no_such_style")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("size", [(192, 320), (64, 64), (97, 131), (270, 480)])
def test_shape_dtype(name, size):
    frame = np.ascontiguousarray(cv2.resize(PHOTO, size[::-1], interpolation=cv2.INTER_AREA))
    out = STYLES[name].apply(frame)
    assert out.shape == frame.shape and out.dtype == np.uint8


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_and_still_scene_is_stable(name):
    before = FRAME.copy()
    a = STYLES[name].apply(FRAME)
    b = STYLES[name].apply(FRAME.copy())  # the next frame of a still scene
    assert np.array_equal(a, b)
    assert np.array_equal(FRAME, before), "the input must not be modified"


@pytest.mark.parametrize("name", NAMES)
def test_one_pixel_shift_changes_little(name):
    """A 1-pixel camera move must not make the output jump: it moves with the content
    (pure filters) or stays put (textures anchored to the image grid), far less than a real change."""
    st = STYLES[name]
    a = st.apply(np.ascontiguousarray(PHOTO[20:212, 30:350]))
    b = st.apply(np.ascontiguousarray(PHOTO[20:212, 31:351]))  # content moved left by 1 px
    far = st.apply(np.ascontiguousarray(PHOTO[40:232, 70:390]))  # a 40 px move
    moved = mad(a[8:-8, 9:-8], b[8:-8, 8:-9])
    stayed = mad(a[8:-8, 8:-8], b[8:-8, 8:-8])
    assert min(moved, stayed) < 0.3 * mad(a, far), (moved, stayed, mad(a, far))


def test_styles_are_distinct():
    outs = {n: STYLES[n].apply(FRAME) for n in NAMES}
    for n, out in outs.items():
        assert mad(out, FRAME) > 10, f"{n} is too close to the source"
    for a, b in itertools.combinations(NAMES, 2):
        assert mad(outs[a], outs[b]) > 12, f"{a} and {b} look alike"


@pytest.mark.parametrize("bad", [np.zeros((32, 32, 3), np.float32), np.zeros((32, 32), np.uint8),
                                 np.zeros((32, 32, 4), np.uint8), np.zeros((4, 4, 3), np.uint8)])
def test_bad_input_is_rejected(bad):
    with pytest.raises(ValueError):
        STYLES["cartoon"].apply(bad)
