"""`main.py eval --videos`: the quality report on real video files, on a tiny random model."""
import json

import cv2
import numpy as np
import pytest

from model.train import video_eval
from tests.conftest import moving_frames, synthetic_photo


@pytest.fixture
def video_dir(tmp_path):
    from app.outputs.mp4 import Mp4Writer

    d = tmp_path / "videos"
    d.mkdir()
    with Mp4Writer(d / "pan.mp4", 24) as w:
        for f in moving_frames(10, 72, 128):
            w.write(f)
    (d / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video")
    (d / "notes.txt").write_text("not a video")
    return d


@pytest.fixture
def style_images(tmp_path):
    d = tmp_path / "styles"
    d.mkdir()
    cv2.imwrite(str(d / "a.png"), synthetic_photo(7, 96, 96))
    return d


def test_report_json_and_contact_sheet(random_model_dir, video_dir, style_images, tmp_path, capsys):
    out = tmp_path / "report.json"
    assert video_eval.main(["--videos", str(video_dir), "--model", str(random_model_dir), "--styles",
                            "thermal,pop_art", "--references", "1", "--style-images", str(style_images),
                            "--max-frames", "8", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["videos"] == ["pan.mp4"] and len(r["skipped"]) == 1 and "broken.mp4" in r["skipped"][0]
    assert "skipped: broken.mp4" in capsys.readouterr().out
    for row in list(r["styles"].values()) + list(r["references"].values()):
        assert set(row) == {"psnr", "ssim", "sharpness", "flicker", "target_flicker", "structure", "target_structure"}
        assert 0 < row["psnr"] < 100 and row["sharpness"] > 0 and row["target_flicker"] > 0
    unseen = r["unseen_prompts"]
    assert unseen["total"] == 6 and unseen["clips"] == ["pan.mp4"]
    assert unseen["selected_rate"] is None, "a model without a style vocabulary has no prompt matching to rate"
    peer = r["per_frame_network_flicker"]
    assert "starry_swirls" in peer and "ref:a.png" in peer and peer["mean"] > 0
    sheet = cv2.imread(str(out.with_suffix(".png")))
    assert sheet is not None and sheet.shape[0] > 3 * video_eval.TILE[1]


def test_identity_scores_perfectly():
    frames = moving_frames(6, 48, 64)
    clip = video_eval.Clip("c", frames, lambda f: f)
    row = video_eval.score(frames, frames, clip)
    assert row["psnr"] > 60 and row["ssim"] == pytest.approx(1.0) and row["sharpness"] == pytest.approx(1.0)
    assert row["flicker"] == pytest.approx(row["target_flicker"])
    blurred = [cv2.GaussianBlur(f, (0, 0), 3) for f in frames]
    assert video_eval.score(blurred, frames, clip)["sharpness"] < 0.3, "a blur keeps little detail"


def test_unreadable_folder_is_one_line(random_model_dir, tmp_path, video_dir):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no video files"):
        video_eval.main(["--videos", str(tmp_path / "empty"), "--model", str(random_model_dir)])
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "x.mp4").write_bytes(b"garbage")
    with pytest.raises(SystemExit, match="none of the videos could be read: x.mp4"):
        video_eval.main(["--videos", str(only_bad), "--model", str(random_model_dir), "--styles", "thermal",
                         "--references", "0"])


def test_bundled_clips_are_real_and_small():
    vids = video_eval.find_videos(video_eval.DEFAULT_VIDEOS)
    assert len(vids) >= 3 and sum(v.stat().st_size for v in vids) <= 5 * 2**20
    for v in vids:
        frames, fps = video_eval.read_video(v, 8)
        assert len(frames) == 8 and fps > 0 and np.std(frames[0]) > 10
