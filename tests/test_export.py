"""MP4 export: the writer (timestamps, fragments, disk full), layouts, offline render and the CLI flags."""
from __future__ import annotations

import errno
import io
import os
from fractions import Fraction

import av
import numpy as np
import pytest

from app.outputs.layout import Compositor, even, fit_size, letterbox, normalize_layout
from app.outputs.mp4 import Mp4Writer
from app.outputs.write_errors import VideoWriteError, probe_saved
from tests.helpers import moving_frames


# ----------------------------------------------------------------- helpers
class QuotaFile(io.FileIO):
    """A real file on a disk that fills up after ``quota`` bytes: a short write, then ENOSPC."""

    def __init__(self, path, quota: int):
        super().__init__(path, "w")
        self.quota = quota

    def write(self, data):
        room = self.quota - self.tell()
        if room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(bytes(data)[:room])


def beep_signal(n_samples: int, rate: int) -> np.ndarray:
    """440 Hz for the first 0.1 s of every half second, silence otherwise (easy to align)."""
    t = np.arange(n_samples) / rate
    return (0.5 * np.sin(2 * np.pi * 440 * t) * ((t % 0.5) < 0.1)).astype(np.float32)


def make_clip(path, n_frames=20, fps=24, audio_rate: int | None = 44100, size=(128, 72)):
    """An H.264 clip of panning texture, with a stereo AAC beep track when ``audio_rate`` is set."""
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = size[0], size[1], "yuv420p"
        a = None
        if audio_rate:
            a = c.add_stream("aac", rate=audio_rate)
            a.layout = "stereo"
        for i, f in enumerate(moving_frames(n_frames, size[1], size[0])):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts = i
            c.mux(v.encode(vf))
        c.mux(v.encode(None))
        if a is not None:
            sig = beep_signal(int(n_frames / fps * audio_rate), audio_rate)
            for k in range(0, len(sig), 1024):
                chunk = np.ascontiguousarray(np.stack([sig[k:k + 1024]] * 2))
                af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                af.sample_rate, af.pts = audio_rate, k
                c.mux(a.encode(af))
            c.mux(a.encode(None))
    return path


def read_video(path):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = list(c.decode(s))
        return frames, float(s.average_rate or 0)


def read_audio(path):
    """(mono float samples, sample rate, first frame time) or None when there is no audio stream."""
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return None
        frames = list(c.decode(c.streams.audio[0]))
        data = np.concatenate([f.to_ndarray().reshape(f.layout.nb_channels, -1)[0] for f in frames])
        return data, frames[0].sample_rate, float(frames[0].time)


def blocks(img: np.ndarray, size: int = 6) -> np.ndarray:
    """Mean colour of size x size blocks (compares pictures without codec noise)."""
    h, w = img.shape[0] // size * size, img.shape[1] // size * size
    return img[:h, :w].astype(float).reshape(h // size, size, w // size, size, 3).mean(axis=(1, 3))


def beep_onsets(samples: np.ndarray, rate: int) -> list[float]:
    """Times (s) where the beep starts, from a 5 ms envelope."""
    win = rate // 200
    env = np.abs(samples[: len(samples) // win * win]).reshape(-1, win).max(1) > 0.2
    return [i * win / rate for i in range(len(env)) if env[i] and (i == 0 or not env[i - 1])]


# ------------------------------------------------------------------ layout
def test_layout_letterbox_even_sizes_and_side_by_side():
    assert even(97) == 96 and even(64) == 64
    assert fit_size(128, 72, 96, 64) == (96, 54)
    assert normalize_layout("side-by-side") == "side_by_side"
    with pytest.raises(ValueError, match="unknown layout"):
        normalize_layout("mosaic")

    src = np.full((72, 128, 3), 200, np.uint8)
    boxed = letterbox(src, 96, 64)
    assert boxed.shape == (64, 96, 3)
    assert (boxed[:5] == 0).all() and (boxed[-5:] == 0).all() and (boxed[5:59] == 200).all()

    sty = np.full((65, 97, 3), 50, np.uint8)  # odd size: cropped to even, not resampled
    comp = Compositor("side_by_side")
    out = comp.compose(sty, src)
    assert out.shape == (64, 192, 3) and comp.size == (192, 64)
    assert (out[:, 96:] == 50).all()
    assert (out[5:59, :96] == 200).all() and (out[:5, :96] == 0).all()
    # a later frame of another size is letterboxed into the fixed panel; no source -> black panel
    out2 = comp.compose(np.full((32, 96, 3), 80, np.uint8), None)
    assert out2.shape == (64, 192, 3)
    assert (out2[:, :96] == 0).all() and (out2[16:48, 96:] == 80).all() and (out2[:16, 96:] == 0).all()
    only = Compositor("stylized").compose(sty)
    assert only.shape == (64, 96, 3)
    with pytest.raises(ValueError, match="uint8 HxWx3"):
        comp.compose(np.zeros((64, 96), np.uint8))


# ------------------------------------------------------------------ writer
def test_writer_constant_rate_even_size_and_letterbox(tmp_path):
    path = tmp_path / "cfr.mp4"
    frames = moving_frames(12, 71, 127)  # odd size -> 126x70
    with Mp4Writer(path, Fraction(30000, 1001)) as w:
        for f in frames:
            w.write(f)
        w.write(np.full((140, 126, 3), 255, np.uint8))  # other aspect: letterboxed, not stretched
    decoded, rate = read_video(path)
    assert len(decoded) == 13
    assert (decoded[0].width, decoded[0].height) == (126, 70)
    assert rate == pytest.approx(29.97, abs=0.01)
    times = [f.time for f in decoded]
    assert times == pytest.approx([i * 1001 / 30000 for i in range(13)], abs=1e-4)
    last = decoded[-1].to_ndarray(format="rgb24").astype(int)
    assert last[:, :25].mean() < 20 and last[:, 45:80].mean() > 230  # pillarboxed white frame


def test_writer_keeps_fragments_on_disk_while_writing(tmp_path):
    """Crash safety: before close, the file already plays up to the last whole fragment (<= ~1 s ago)."""
    path = tmp_path / "open.mp4"
    w = Mp4Writer(path, 30, live=True)
    for i, f in enumerate(moving_frames(106)):  # 3.5 s of video
        w.write(f, timestamp=10.0 + i / 30)
    partial = w.partial_path  # written beside the target, which appears when the file is closed
    assert partial.parent == tmp_path and partial.name.startswith("open.") and not path.exists()
    saved = probe_saved(partial)
    assert saved.playable
    assert saved.frames >= 90 and saved.duration >= 3.0 - 1e-6  # fragments at 1 s, 2 s, 3 s are out
    assert w.bytes_on_disk == partial.stat().st_size
    w.close()
    assert probe_saved(path).frames == 106 and not partial.exists()


def test_writer_replaces_an_existing_file_only_when_finished(tmp_path):
    """An existing file is never half-overwritten: it stays whole while the new one is written and
    is replaced in one step at the end, keeping its permissions."""
    path = tmp_path / "take.mp4"
    path.write_bytes(b"yesterday's render")
    path.chmod(0o640)
    w = Mp4Writer(path, 30)
    for f in moving_frames(40):
        w.write(f)
    assert path.read_bytes() == b"yesterday's render"
    assert w.partial_path.exists() and w.partial_path.parent == tmp_path
    w.close()
    assert len(read_video(path)[0]) == 40 and (path.stat().st_mode & 0o777) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.mp4"]


def test_writer_failure_keeps_an_existing_file_and_names_the_partial(tmp_path):
    path = tmp_path / "keep.mp4"
    path.write_bytes(b"the only copy")
    w = Mp4Writer(path, 30, opener=lambda p: QuotaFile(p, 150_000))
    base = np.random.default_rng(2).integers(0, 256, (90, 160, 3), np.uint8)
    with pytest.raises(VideoWriteError) as info:
        for i in range(600):
            w.write(np.roll(base, 3 * i, axis=1), timestamp=i / 30)
    saved = info.value.saved
    assert path.read_bytes() == b"the only copy"
    assert saved.frames > 0 and saved.path != path and saved.path.parent == tmp_path
    assert str(saved.path) in str(info.value) and "keep.mp4 was left as it was" in str(info.value)
    assert len(read_video(saved.path)[0]) == saved.frames


def test_writer_refuses_an_input_as_its_output(tmp_path, sample_video):
    before = sample_video.read_bytes()
    link = tmp_path / "link.mp4"
    link.symlink_to(sample_video)
    for spelling in (sample_video, link, tmp_path / "." / ".." / tmp_path.name / sample_video.name):
        with pytest.raises(VideoWriteError, match="is the input video"):
            Mp4Writer(spelling, 24, inputs=[("the input video", sample_video)])
    with pytest.raises(VideoWriteError, match="is the audio source"):
        Mp4Writer(sample_video, 24, audio_from=sample_video)
    assert sample_video.read_bytes() == before


def test_writer_disk_full_is_finalised_at_last_fragment(tmp_path):
    path = tmp_path / "full.mp4"
    quota = 200_000
    w = Mp4Writer(path, 30, opener=lambda p: QuotaFile(p, quota))
    rng = np.random.default_rng(1)
    base = rng.integers(0, 256, (90, 160, 3), np.uint8)
    with pytest.raises(VideoWriteError) as info:
        for i in range(600):
            w.write(np.roll(base, 3 * i, axis=1), timestamp=i / 30)
    err = info.value
    assert err.disk_full and "disk is full" in str(err)
    assert err.saved.frames > 0 and err.saved.frames < w.frames_written
    assert f"first {err.saved.frames} frames" in str(err)
    assert path.stat().st_size <= quota and path.stat().st_size == err.saved.bytes
    decoded, _ = read_video(path)  # plays cleanly to the end: no damaged tail
    assert len(decoded) == err.saved.frames
    assert decoded[-1].time == pytest.approx((err.saved.frames - 1) / 30, abs=1e-3)
    with pytest.raises(VideoWriteError):
        w.write(base)
    w.close()  # after a failure: nothing more to do, no second error


def test_writer_errors_are_clear(tmp_path):
    with pytest.raises(VideoWriteError, match="output folder does not exist"):
        Mp4Writer(tmp_path / "nope" / "x.mp4", 30)
    w = Mp4Writer(tmp_path / "x.mp4", 30)
    with pytest.raises(ValueError, match="uint8 HxWx3"):
        w.write(np.zeros((10, 10), np.float32))
    w.close()
    assert not (tmp_path / "x.mp4").exists()  # nothing written, no empty file left behind


def test_writer_audio_passthrough_aligned_to_media_time(tmp_path):
    src = make_clip(tmp_path / "src.mp4", n_frames=48, fps=24)  # 2 s, beeps at 0, 0.5, 1.0, 1.5 s
    out = tmp_path / "a.mp4"
    with Mp4Writer(out, 24, audio_from=src) as w:
        for i, f in enumerate(moving_frames(30)):
            w.write(f, timestamp=100 + i / 24, media_time=0.3 + i / 24)  # recording starts 0.3 s into the file
    assert w.has_audio
    samples, rate, start = read_audio(out)
    assert rate == 44100 and start == pytest.approx(0.0, abs=1e-3)
    assert len(samples) / rate == pytest.approx(30 / 24, abs=0.05)
    assert beep_onsets(samples, rate) == pytest.approx([0.2, 0.7, 1.2], abs=0.011)


def test_writer_without_audio_in_source_notes_it(tmp_path, sample_video):
    out = tmp_path / "na.mp4"
    with Mp4Writer(out, 24, audio_from=sample_video) as w:
        w.write(moving_frames(1)[0])
    assert not w.has_audio and "no audio stream" in w.audio_note
    assert read_audio(out) is None


# ------------------------------------------------------------ offline render
class StyleLog:
    """Wraps a StreamStylizer and records the style each output frame was made with."""

    def __init__(self, inner):
        self.inner = inner
        self.styles: list[str] = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def _log(self, out):
        self.styles += [self.inner.style.prompt] * len(out)
        return out

    def push(self, frames):
        return self._log(self.inner.push(frames))

    def flush(self):
        return self._log(self.inner.flush())


@pytest.fixture
def stylizer(random_model):
    from model.stylizer import StreamStylizer

    return StreamStylizer(random_model, seed=0, steps=1)  # one step: the same code path, faster


def test_render_style_schedule_switches_at_the_right_frame(stylizer, tmp_path):
    from app.render import render_file
    from app.styles import ScheduledStyle, StyleSpec

    clip = make_clip(tmp_path / "clip.mp4", n_frames=12, fps=24, audio_rate=None)
    log = StyleLog(stylizer)
    assert log.chunk_size == 2  # switches at frames 3 and 7 fall inside chunks: they must not lag
    calls = []
    switches = [ScheduledStyle(None, 0.3, StyleSpec("watercolor")),  # 0.3 s at 24 fps: frame 7 (7.2)
                ScheduledStyle(3, None, StyleSpec("pencil sketch"))]
    out = tmp_path / "sched.mp4"
    result = render_file(log, clip, out, StyleSpec("ink wash"), switches,
                         progress=lambda d, t: calls.append((d, t)))
    assert log.styles == ["ink wash"] * 3 + ["pencil sketch"] * 4 + ["watercolor"] * 5
    assert (result.frames_in, result.frames_out, result.cancelled) == (12, 12, False)
    assert calls == [(i, 12) for i in range(1, 13)]
    decoded, rate = read_video(out)
    assert len(decoded) == 12 and rate == pytest.approx(24, rel=0.01)
    assert [f.time for f in decoded] == pytest.approx([i / 24 for i in range(12)], abs=1e-4)
    assert not result.has_audio and result.audio_note is None


def test_render_side_by_side_with_audio_passthrough(stylizer, tmp_path):
    from app.render import render_file
    from app.styles import StyleSpec

    src = make_clip(tmp_path / "talk.mp4", n_frames=14, fps=24)
    out = tmp_path / "sbs.mp4"
    result = render_file(stylizer, src, out, StyleSpec("ink"), layout="side_by_side")
    assert result.has_audio and result.frames_out == 14 and result.layout == "side_by_side"
    decoded, _ = read_video(out)
    assert len(decoded) == 14 and (decoded[0].width, decoded[0].height) == (192, 64)
    # the left panel is the source letterboxed into 96x64 (a 96x54 picture between 5 px bars)
    source = moving_frames(14)
    got = blocks(decoded[10].to_ndarray(format="rgb24")[5:59, :96])
    assert np.abs(got - blocks(letterbox(source[10], 96, 64)[5:59])).mean() < 6
    assert decoded[10].to_ndarray(format="rgb24")[:4, :96].mean() < 10
    samples, rate, start = read_audio(out)
    assert start == pytest.approx(0.0, abs=1e-3)
    assert len(samples) / rate == pytest.approx(14 / 24, abs=0.05)
    assert beep_onsets(samples, rate) == pytest.approx([0.02, 0.5], abs=0.011)

    out2 = tmp_path / "mute.mp4"
    r2 = render_file(stylizer, src, out2, StyleSpec("ink"), max_frames=2, audio=False)
    assert not r2.has_audio and read_audio(out2) is None and len(read_video(out2)[0]) == 2


def test_render_cancel_finalises_a_playable_file(stylizer, sample_video, tmp_path):
    from app.render import render_file
    from app.styles import StyleSpec

    asked = []

    def should_cancel():
        asked.append(1)
        return len(asked) > 3

    out = tmp_path / "cancel.mp4"
    result = render_file(stylizer, sample_video, out, StyleSpec("ink"), should_cancel=should_cancel)
    assert result.cancelled and result.frames_in == 3
    assert result.frames_out == 2  # one whole chunk was done; the half chunk is dropped
    decoded, _ = read_video(out)
    assert len(decoded) == result.frames_out
    assert stylizer.pending == 0  # the unfinished chunk was dropped, the stylizer is clean


def test_cli_stylize_layout_and_no_audio(random_model_dir, tmp_path, capsys):
    from app.cli import main

    src = make_clip(tmp_path / "in.mp4", n_frames=4, fps=24)
    out = tmp_path / "cli.mp4"
    rc = main(["stylize", str(src), "-o", str(out), "--style", "ink", "--model", str(random_model_dir),
               "--layout", "side-by-side", "--no-audio", "-q"])
    assert rc == 0, capsys.readouterr().err
    decoded, _ = read_video(out)
    assert len(decoded) == 4 and decoded[0].width == 192
    assert read_audio(out) is None
    assert "wrote" in capsys.readouterr().out


def test_app_export_refuses_its_source_as_the_output(qapp, sample_video, random_model_dir, tmp_path):
    """The window's Export with the source chosen as the target (directly, by a link, by another
    spelling): refused with one line, before a model is loaded, and the source is untouched."""
    import asyncio

    from app.styles import StyleSpec
    from app.ui.export import ExportController, ExportJob
    from app.worker import LoadRequest

    before = sample_video.read_bytes()
    link = tmp_path / "link.mp4"
    link.symlink_to(sample_video)
    load = LoadRequest(folder=random_model_dir, device="cpu", warmup=False)
    for target in (sample_video, link, sample_video.parent / "." / sample_video.name):
        controller = ExportController()
        failed = []
        controller.failed.connect(failed.append)

        async def run():
            await controller.start(ExportJob(sample_video, target, StyleSpec("ink"), load))

        asyncio.run(run())
        controller.shutdown()
        assert controller.last_result is None and len(failed) == 1
        assert "is the source video" in failed[0] and "\n" not in failed[0]
        assert sample_video.read_bytes() == before


def test_render_failing_midway_keeps_an_existing_output_and_says_where_the_frames_are(stylizer, sample_video,
                                                                                   tmp_path, one_torch_thread):
    from app.render import render_file
    from app.styles import StyleSpec
    from model.stylizer import StyleError

    class FailsAtFrame:
        def __init__(self, inner, at):
            self.inner, self.at, self.n = inner, at, 0

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def push(self, frame):
            self.n += 1
            if self.n > self.at:
                raise StyleError("the style could not be applied")
            return self.inner.push(frame)

    out = tmp_path / "out.mp4"
    out.write_bytes(b"the finished render of yesterday")
    with pytest.raises(StyleError) as info:
        render_file(FailsAtFrame(stylizer, 12), sample_video, out, StyleSpec("ink"))
    assert out.read_bytes() == b"the finished render of yesterday"
    kept, = tmp_path.glob("out.*.partial.mp4")
    assert info.value.__notes__ == [f"the 12 frames rendered before it are in {kept}"]
    assert len(read_video(kept)[0]) == 12
