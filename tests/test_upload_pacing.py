"""Upload pacing (app/remote/upload_pacing.py) as a pure function of what the server said and of the
capture times offered: everything is sent until the server has said when its engine takes frames;
then only the frames that can be among the newest at the next take, and everything again when the
server is late."""
from __future__ import annotations

import numpy as np

from app.remote.upload_pacing import UploadPacer

STAGES_50_MS = {"encode_ms": 8.0, "dit_ms": 16.0, "cache_write_ms": 1.0, "decode_ms": 25.0}  # 20 frames/s
CAMERA = 1 / 30


def offer(pacer: UploadPacer, t0: float, t1: float) -> list[float]:
    times = np.arange(round(t0 / CAMERA), round(t1 / CAMERA)) * CAMERA
    return [float(t) for t in times if pacer.admit(float(t))]


def test_every_frame_is_sent_until_the_server_has_said_when_it_takes_frames():
    pacer = UploadPacer()
    assert len(offer(pacer, 0.0, 2.0)) == 60
    assert pacer.skipped == 0 and abs(pacer.interval - CAMERA) < 1e-6


def test_after_a_take_only_the_frames_due_for_the_next_one_are_sent():
    pacer = UploadPacer(slack_frames=0.25)
    offer(pacer, 0.0, 1.0)  # the camera's interval is measured
    pacer.chunk_ended(1.0, STAGES_50_MS, chunk_frames=2, uplink_s=0.01)  # next take at 1.1 s
    assert abs(pacer.closes_at - 1.09) < 1e-6 and abs(pacer.opens_at - (1.09 - 2.25 * CAMERA)) < 1e-6
    sent = offer(pacer, 1.0, 1.12)
    assert np.allclose(sent, [1.0 + CAMERA, 1.0 + 2 * CAMERA]), "the two newest that reach the take, no other"
    assert pacer.skipped == 2, "the one before and the one too late for the take"
    assert np.allclose(offer(pacer, 1.125, 1.2), [1.0 + 4 * CAMERA, 1.0 + 5 * CAMERA]), "a late take: send again"


def test_a_saturated_engine_at_twice_the_camera_interval_gets_two_frames_a_chunk():
    pacer = UploadPacer()
    offer(pacer, 0.0, 0.5)
    stages = {"encode_ms": 14.0, "dit_ms": 28.0, "decode_ms": 44.0}  # 86 ms a frame: 172 ms a chunk of 2
    sent, t = [], 0.5
    for _ in range(20):  # the server takes frames every 172 ms; it says so at each take
        pacer.chunk_ended(t, stages, chunk_frames=2, uplink_s=0.01)
        sent += offer(pacer, t, t + 0.172)
        t += 0.172
    per_chunk = len(sent) / 20
    assert 1.9 <= per_chunk <= 2.5, per_chunk  # against 5.2 a chunk without pacing
    ages = [t_take - max(s for s in sent if s < t_take) for t_take in 0.5 + 0.172 * np.arange(2, 20)]
    assert max(ages) < 2 * CAMERA, "the newest frame at each take is fresh"


def test_a_late_server_gets_every_frame_and_bad_stats_turn_pacing_off():
    pacer = UploadPacer()
    offer(pacer, 0.0, 0.5)
    pacer.chunk_ended(0.5, STAGES_50_MS, chunk_frames=2)
    assert len(offer(pacer, 0.65, 1.65)) == 30, "well past the predicted take, nothing is held back"
    for stats, frames in (({}, 2), ({"encode_ms": "fast"}, 2), ({"dit_ms": -3.0}, 2), (STAGES_50_MS, 0),
                          (STAGES_50_MS, None)):
        pacer.chunk_ended(1.6, stats, chunk_frames=frames)
        assert pacer.opens_at is None
    assert len(offer(pacer, 1.6, 2.0)) == 12


def test_an_engine_faster_than_the_camera_is_never_starved():
    pacer = UploadPacer()
    offer(pacer, 0.0, 0.5)
    fast = {"encode_ms": 5.0, "dit_ms": 10.0, "decode_ms": 10.0}  # 25 ms a frame: 50 ms a chunk of 2
    pacer.chunk_ended(0.5, fast, chunk_frames=2, uplink_s=0.005)
    assert pacer.opens_at is None and len(offer(pacer, 0.5, 0.6)) == 3
