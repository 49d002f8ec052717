"""The engine across the network, on this machine only (127.0.0.1): ``main.py serve`` runs the embedded
model on the CPU in a child process, ``RemoteEngine`` drives it over WebRTC.

Covers: a clip streamed through the server comes back whole and in order (ids and capture timestamps);
a wrong token gets 401 and a second client 409; 1,000 random data-channel messages leave the server
serving; a killed server is reported and the client reconnects to its successor; sessions leave
nothing behind; and the pieces without a network (message checks, image headers, tokens, the
jitter buffer that releases a frame at its RTP marker)."""
from __future__ import annotations

import asyncio
import json
import os
import queue
import random
import re
import socket
import struct
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest

from app.engine import EngineEvents, LoadRequest
from app.remote import protocol as P
from app.remote.client import RemoteEngine, parse_url
from app.remote.server import read_token
from model.style import StyleSpec
from tests.helpers import ROOT

EMBEDDED = ROOT / "resources" / "models" / "default"
SAMPLE = ROOT / "resources" / "sample" / "sample.mp4"
TOKEN = "test-token-0123456789abcdef"


# ------------------------------------------------------------------------------------ helpers
class Server:
    """``main.py serve`` in a child process; its output is read on a thread (and kept for messages)."""

    def __init__(self, token_file, port: int = 0):
        env = dict(os.environ, OMP_NUM_THREADS="1")
        env.pop("PYTHONPATH", None)
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "main.py"), "serve", "--model", str(EMBEDDED), "--device", "cpu",
             "--host", "127.0.0.1", "--port", str(port), "--token-file", str(token_file), "--threads", "1",
             "--heartbeat-timeout", "3"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=str(ROOT))
        self.lines: list[str] = []
        ready: queue.Queue = queue.Queue()

        def read():
            for line in self.proc.stdout:
                self.lines.append(line.rstrip())
                m = re.search(r"at http://127\.0\.0\.1:(\d+) ", line)
                if m:
                    ready.put(int(m.group(1)))
            ready.put(None)
        threading.Thread(target=read, daemon=True).start()
        try:
            self.port = ready.get(timeout=120)
        except queue.Empty:
            self.port = None
        if self.port is None:
            self.stop()
            raise AssertionError("the server did not start:\n" + "\n".join(self.lines))
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture(scope="module")
def token_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("token") / "token.txt"
    path.write_text(TOKEN + "\n")
    return path


@pytest.fixture(scope="module")
def server(token_file):
    s = Server(token_file)
    yield s
    s.stop()


class Events(EngineEvents):
    def __init__(self):
        self.frames: list = []
        self.states: list[tuple[str, str]] = []
        self.errors: list[tuple[str, str]] = []
        self.styles: list = []
        self.lock = threading.Lock()

    def on_frames(self, frames):
        with self.lock:
            self.frames.extend(frames)

    def on_connection(self, state, detail):
        self.states.append((state, detail))

    def on_error(self, kind, message):
        self.errors.append((kind, message))

    def on_style_applied(self, change):
        self.styles.append(change)


def wait_for(predicate, timeout=60.0, what="a condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.01)


def connect(url, token=TOKEN, style="ink wash painting", **kw) -> tuple[RemoteEngine, Events]:
    ev = Events()
    eng = RemoteEngine(url, token, ev, **kw)
    eng.start()
    eng.set_style(StyleSpec(prompt=style), "Ink")
    eng.load(LoadRequest(device="cpu")).result(90)
    wait_for(lambda: ev.styles, what="the style to be applied")
    return eng, ev


def clip(n: int) -> list[np.ndarray]:
    from app.sources.video_file import VideoFileReader

    with VideoFileReader(SAMPLE) as r:
        out = []
        for _, frame in r.frames():
            out.append(frame)
            if len(out) == n:
                return out
    return out


def stream_lockstep(eng: RemoteEngine, ev: Events, frames, timeout=120.0) -> list:
    """Send frames so that none is ever dropped (one more only once the queue is empty), return what
    came back."""
    start = len(ev.frames)
    stamps = []
    for i, f in enumerate(frames):
        wait_for(lambda: len(eng.frames) == 0, timeout, "the client to send the previous frame")
        t = time.perf_counter()
        stamps.append(t)
        assert eng.submit(f, t, tag=i) == 0
    wait_for(lambda: len(ev.frames) - start >= len(frames), timeout, f"{len(frames)} stylized frames")
    out = ev.frames[start:]
    return out, stamps


def http(method: str, url: str, token: str | None, body=None) -> tuple[int, dict]:
    import aiohttp

    async def go():
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with aiohttp.ClientSession() as s:
            async with s.request(method, url, json=body, headers=headers) as r:
                return r.status, await r.json(content_type=None)
    return asyncio.run(go())


# ---------------------------------------------------------------------------- over the network
@pytest.mark.slow
def test_a_clip_comes_back_whole_and_in_order(server):
    from model.build import StylizerRequest, build_stylizer

    local = build_stylizer(StylizerRequest(folder=EMBEDDED, device="cpu", cpu_threads=1)).stylizer
    eng, ev = connect(server.url, max_in_flight=2)
    try:
        info = eng.model_info
        assert info.remote == server.url and info.name == local.model.name and info.source_size == local.guided
        assert info.resolution == (local.height, local.width)
        assert info.device_label == "CPU · remote 127.0.0.1" and eng.stylizer is None
        frames = clip(24)
        out, stamps = stream_lockstep(eng, ev, frames)
        assert [f.tag for f in out] == list(range(24))  # every frame, in order
        assert [f.timestamp for f in out] == stamps  # with its capture timestamp
        assert [f.index for f in out] == sorted(f.index for f in out)
        for f, src in zip(out, frames):  # at the size the model renders (the source's own, or its working size)
            shown = local.as_output(src)
            assert f.image.shape == shown.shape and np.array_equal(f.source, shown)
            assert f.finished > f.timestamp
        # it is the stylized video: different from the source, and close to the local engine's output
        local.set_text("ink wash painting")
        expected = local.push(frames[:8])
        psnr = [cv2.PSNR(a.image, b) for a, b in zip(out, expected)]
        source_psnr = [cv2.PSNR(a.image, a.source) for a in out[:8]]
        assert np.median(psnr) > 20 and np.median(psnr) > np.median(source_psnr) + 3, (psnr, source_psnr)
        s = eng.stats()
        assert s["connection"] == "connected" and s["rtt_ms"] is not None and s["network_ms"] is not None
        assert s["server_ms"] > 0 and "dit_ms" in s
    finally:
        assert eng.stop(30)


@pytest.mark.slow
def test_a_wrong_token_gets_401_and_a_second_client_409(server):
    status, body = http("POST", server.url + "/offer", "wrong-token", {"sdp": "x", "type": "offer"})
    assert status == 401 and body["error"] == "unauthorized: wrong or missing token"
    assert http("GET", server.url + "/status", None)[0] == 401
    status, body = http("POST", server.url + "/offer", TOKEN, {"type": "offer"})
    assert status == 400 and "must be JSON" in body["error"]

    ev = Events()
    bad = RemoteEngine(server.url, "wrong-token", ev)
    bad.start()
    fut = bad.load(LoadRequest(device="cpu"))
    with pytest.raises(Exception, match="unauthorized"):
        fut.result(30)
    assert ev.states[-1][0] == "failed" and ev.errors == [("network", "Remote engine: unauthorized: wrong or "
                                                                       "missing token")]
    assert bad.stop(10)

    first, _ = connect(server.url)
    try:
        status, body = http("POST", server.url + "/offer", TOKEN, {"sdp": "x", "type": "offer"})
        assert status == 409 and body["error"].startswith("busy:")
        ev2 = Events()
        second = RemoteEngine(server.url, TOKEN, ev2, backoff_s=(0.2, 0.5))
        second.start()
        wait_for(lambda: any("busy" in d for s, d in ev2.states if s == "lost"), 30, "a busy report")
        assert second.stop(10)
        assert first.connected  # the first client kept its stream
    finally:
        assert first.stop(30)


def random_message(rng: random.Random):
    """Something a broken or hostile client might send."""
    kinds = ["ping", "load", "style", "strength", "speed", "steps", "crossfade", "reset", "resume", "reference",
             "hello", "chunk", "", "x" * 300]
    pick = rng.random()
    if pick < 0.15:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 3000)))
    if pick < 0.25:
        return "".join(chr(rng.randint(32, 0xD7FF)) for _ in range(rng.randint(0, 200)))
    if pick < 0.28:
        return "[" * 5000 + "]" * 5000
    if pick < 0.30:
        return json.dumps({"type": "ping", "pad": "x" * 70000})  # over the 64 KiB limit
    values = [None, True, -1, 0, 1, 2, 17, 2 ** 40, -1e308, 0.5, float("nan"), "", "fast", "quality", "x" * 100,
              [1, 2], [96, 160], [16], {"preset": "warp"}, {"preset": "fast", "steps": 99}, "a" * 64]
    msg = {"type": rng.choice(kinds)}
    for key in rng.sample(["value", "request", "resolution", "speed", "strength", "seed", "prompt", "reference",
                           "label", "id", "size", "t", "preset", "steps", "adacache"], rng.randint(0, 5)):
        msg[key] = rng.choice(values)
    if msg["type"] == "load" and msg.get("resolution") == [96, 160]:
        msg["resolution"] = [97, 160]  # no real reloads: they would only make this test slow
    if pick < 0.34:  # a reference header followed by pieces that do not match it
        data = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", 100000, 100000)
        return [json.dumps({"type": "reference", "id": P.sha256(data), "size": len(data)}), data,
                json.dumps({"type": "reference", "id": "0" * 64, "size": 10}), b"0123456789"]
    return json.dumps(msg)


@pytest.mark.slow
def test_a_thousand_random_messages_leave_the_server_serving(server):
    from aiortc import RTCPeerConnection, RTCSessionDescription

    from app.remote.media import loopback_only

    async def fuzz() -> list:
        loopback_only(True)
        pc = RTCPeerConnection()
        ch = pc.createDataChannel(P.CHANNEL)
        replies: list = []
        opened = asyncio.Event()
        ch.on("open", opened.set)
        ch.on("message", replies.append)
        await pc.setLocalDescription(await pc.createOffer())
        status, answer = await asyncio.to_thread(http, "POST", server.url + "/offer", TOKEN,
                                                 {"sdp": pc.localDescription.sdp, "type": "offer"})
        assert status == 200, answer
        await pc.setRemoteDescription(RTCSessionDescription(**answer))
        await asyncio.wait_for(opened.wait(), 30)
        rng = random.Random(15)
        sent = 0
        while sent < 1000:
            msg = random_message(rng)
            for part in msg if isinstance(msg, list) else [msg]:
                ch.send(part)
            sent += 1
            if sent % 25 == 0:
                await asyncio.sleep(0.01)
        ch.send(json.dumps({"type": "ping", "t": 12345.5}))
        deadline = time.monotonic() + 90
        while not any(isinstance(r, str) and '"t":12345.5' in r for r in replies):
            assert time.monotonic() < deadline, "no pong after the fuzz"
            await asyncio.sleep(0.05)
        await pc.close()
        return replies

    replies = asyncio.run(fuzz())
    errors = [json.loads(r) for r in replies if isinstance(r, str) and '"type":"error"' in r]
    assert len(errors) >= 300, len(errors)
    texts = " | ".join(e["message"] for e in errors)
    for expected in ("not valid JSON", "message too large", "binary data without a 'reference' header",
                     "unknown message type", "each side must be 8 to 4096", "does not match its sha256"):
        assert expected in texts, expected
    assert all(e["kind"] in ("protocol", "reference") for e in errors), {e["kind"] for e in errors}
    # the server still serves the next client
    eng, ev = connect(server.url, max_in_flight=2)
    try:
        out, _ = stream_lockstep(eng, ev, clip(4))
        assert len(out) == 4
    finally:
        assert eng.stop(30)


@pytest.mark.slow
def test_sessions_leave_nothing_behind(server):
    for _ in range(4):
        ev = Events()
        eng = RemoteEngine(server.url, TOKEN, ev, backoff_s=(0.2, 0.5))
        eng.start()
        wait_for(lambda: eng.connected, 30, "a connection")
        assert eng.stop(30)
        wait_for(lambda: not http("GET", server.url + "/status", TOKEN)[1]["busy"], 30, "the session to end")
    # a closed session's last tasks (aiortc transports, engine callbacks) end asynchronously: wait for them,
    # then nothing may stay alive; a real leak never reaches zero
    deadline = time.monotonic() + 30
    while http("GET", server.url + "/status?gc=1", TOKEN)[1]["sessions_alive"] and time.monotonic() < deadline:
        time.sleep(0.25)
    status, body = http("GET", server.url + "/status?gc=1", TOKEN)
    assert status == 200 and body["sessions_alive"] == 0 and body["queued_frames"] == 0
    assert body["sessions_served"] >= 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_killed_server_is_reported_and_the_client_reconnects(token_file):
    port = free_port()
    first = Server(token_file, port)
    recorded: list = []
    eng = None
    try:
        eng, ev = connect(first.url, silence_s=1.5, backoff_s=(0.2, 1.0), max_in_flight=2)
        eng.add_sink(recorded.extend)
        out, _ = stream_lockstep(eng, ev, clip(4))
        kept = list(recorded)
        assert len(kept) == 4
        first.proc.kill()  # no goodbye: the client has to notice
        first.proc.wait(10)
        t0 = time.monotonic()
        wait_for(lambda: eng.state == "lost", 15, "the client to report the lost connection")
        assert time.monotonic() - t0 < 10
        lost = [d for s, d in ev.states if s == "lost"]
        assert "lost" in lost[0] or "cannot connect" in lost[0]
        for f in clip(3):  # frames captured meanwhile are dropped, nothing raises
            eng.submit(f, time.perf_counter())
        second = Server(token_file, port)
        try:
            wait_for(lambda: eng.connected, 60, "the client to reconnect")
            assert eng.reconnects >= 1 or sum(s == "connecting" for s, _ in ev.states) >= 2
            wait_for(lambda: eng.model_info is not None and len(ev.styles) >= 2, 60, "the style to be re-sent")
            out, _ = stream_lockstep(eng, ev, clip(4))
            assert len(out) == 4
            assert recorded[:4] == kept  # what was recorded before the loss is kept
        finally:
            second.stop()
    finally:
        if eng is not None:
            assert eng.stop(30)
        first.stop()


# ---------------------------------------------------------------------------- without a network
def test_messages_are_checked_with_readable_errors():
    with pytest.raises(P.ProtocolError, match="not valid JSON"):
        P.decode("{nope")
    with pytest.raises(P.ProtocolError, match="message too large"):
        P.decode("x" * (P.MAX_TEXT_MESSAGE + 1))
    with pytest.raises(P.ProtocolError, match="JSON object with a string 'type'"):
        P.decode("[1, 2]")
    with pytest.raises(P.ProtocolError, match="'strength' must be between 0.01 and 1"):
        P.parse_load({"type": "load", "request": 1, "strength": 3, "seed": 0})
    with pytest.raises(P.ProtocolError, match=r"'resolution' must be \[height, width\]"):
        P.parse_load({"type": "load", "request": 1, "resolution": [10, "a"], "strength": 1, "seed": 0})
    with pytest.raises(P.ProtocolError, match="unknown speed preset 'warp'"):
        P.parse_load({"type": "load", "request": 1, "strength": 1, "seed": 0, "speed": {"preset": "warp"}})
    load = P.parse_load({"type": "load", "request": 3, "resolution": [96, 160], "strength": 0.5, "seed": 2,
                         "speed": {"preset": "fast", "steps": 1}})
    assert load.resolution == (96, 160) and load.speed.preset == "fast" and load.speed.steps == 1
    with pytest.raises(P.ProtocolError, match="non-empty 'prompt' or a 'reference'"):
        P.parse_style({"type": "style", "request": 1, "prompt": "  "})
    with pytest.raises(P.ProtocolError, match="sha256"):
        P.parse_style({"type": "style", "request": 1, "reference": "abc"})
    with pytest.raises(P.ProtocolError, match="'value' must be a number"):
        P.parse_value({"type": "strength", "value": True}, 0, 1)
    with pytest.raises(P.ProtocolError, match="between 0 and 1"):
        P.parse_value({"type": "strength", "value": float("nan")}, 0, 1)
    assert [P.frame_id(p) for p in (0, 2999, 6000, 11999)] == [0, 1, 2, 4]
    assert P.frame_id(P.frame_pts(7), origin=5) == 12
    assert P.is_loopback("127.0.0.1") and P.is_loopback("localhost") and P.is_loopback("::1")
    assert not P.is_loopback("0.0.0.0") and not P.is_loopback("192.168.1.2") and not P.is_loopback("gpu.local")
    assert parse_url("gpu-box:8765") == "http://gpu-box:8765"
    with pytest.raises(ValueError, match="http://HOST:PORT"):
        parse_url("ftp://x")


def test_reference_images_are_size_checked_before_decoding():
    img = np.random.default_rng(0).integers(0, 255, (60, 90, 3), dtype=np.uint8)
    for ext in (".png", ".jpg"):
        data = cv2.imencode(ext, img)[1].tobytes()
        assert P.image_size(data) == (90, 60)
        assert P.decode_reference(data).shape == (60, 90, 3)
    huge = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", 100000, 100000) + b"\0" * 20
    with pytest.raises(P.ProtocolError, match="100000x100000; each side must be 8 to 4096"):
        P.decode_reference(huge)
    with pytest.raises(P.ProtocolError, match="must be a PNG or a JPEG"):
        P.decode_reference(b"GIF89a....")
    with pytest.raises(P.ProtocolError, match="does not decode"):
        P.decode_reference(cv2.imencode(".png", img)[1].tobytes()[:200])
    big = np.zeros((3000, 2000, 3), np.uint8)
    assert P.image_size(P.encode_reference(big)) == (683, 1024)  # scaled down before it is sent


def test_tokens_and_addresses(tmp_path):
    from app.remote.server import main as serve_main

    with pytest.raises(ValueError, match="refusing to listen on 0.0.0.0 without --token-file"):
        read_token(None, "0.0.0.0")
    token, generated = read_token(None, "127.0.0.1")
    assert generated and len(token) >= 24
    f = tmp_path / "t.txt"
    f.write_text("\n")
    with pytest.raises(ValueError, match="must hold one token"):
        read_token(str(f), "0.0.0.0")
    f.write_text("two words")
    with pytest.raises(ValueError, match="several words"):
        read_token(str(f), "0.0.0.0")
    f.write_text(TOKEN + "\n")
    assert read_token(str(f), "0.0.0.0") == (TOKEN, False)
    with pytest.raises(ValueError, match="cannot read the token file"):
        read_token(str(tmp_path / "missing"), "0.0.0.0")
    assert serve_main(["--host", "0.0.0.0", "--port", "0"]) == 2  # refused before anything is loaded


def test_a_video_frame_is_released_at_its_marker_packet():
    from aiortc.jitterbuffer import JitterBuffer
    from aiortc.rtp import RtpPacket

    from app.remote.media import MarkerJitterBuffer

    def packets():
        out = []
        for seq, (ts, marker) in enumerate([(3000, 0), (3000, 1), (6000, 1)]):
            p = RtpPacket(payload_type=96, sequence_number=seq, timestamp=ts, marker=marker)
            p._data = bytes([seq])
            out.append(p)
        return out

    plain, marked = JitterBuffer(capacity=128, is_video=True), MarkerJitterBuffer(capacity=128, is_video=True)
    got_plain = [plain.add(p)[1] for p in packets()]
    got_marked = [marked.add(p)[1] for p in packets()]
    assert got_plain[1] is None  # aiortc waits for the next frame to begin ...
    assert got_marked[0] is None and got_marked[1].timestamp == 3000 and got_marked[1].data == b"\0\1"
    assert got_marked[2].timestamp == 6000 and got_marked[2].data == b"\2"  # ... this one does not


def test_vp8_is_encoded_without_the_denoiser_and_decodes_back():
    """Both ends' senders get the lean encoder: same rate control, no temporal denoiser, frames that
    decode to what was sent, and a new encoder when the frame size or the bit rate changes."""
    import fractions

    import av
    from aiortc import rtcrtpsender
    from aiortc.codecs import depayload
    from aiortc.codecs.vpx import Vp8Decoder, Vp8Encoder
    from aiortc.jitterbuffer import JitterFrame
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters

    from app.remote.media import LeanVp8Encoder, lean_vp8

    lean_vp8()
    lean_vp8()
    vp8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
    h264 = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=97)
    enc = rtcrtpsender.get_encoder(vp8)
    assert isinstance(enc, LeanVp8Encoder) and not isinstance(rtcrtpsender.get_encoder(h264), LeanVp8Encoder)

    def frame(image, i):
        f = av.VideoFrame.from_ndarray(image, format="rgb24")
        f.pts, f.time_base = i * 3000, fractions.Fraction(1, 90000)
        return f

    def psnr_through(encoder, images) -> float:
        dec, psnrs = Vp8Decoder(), []
        for i, image in enumerate(images):
            payloads, timestamp = encoder.encode(frame(image, i), force_keyframe=i == 0)
            for out in dec.decode(JitterFrame(data=b"".join(depayload(vp8, p) for p in payloads), timestamp=timestamp)):
                got = out.to_ndarray(format="rgb24").astype(np.float64)
                psnrs.append(10 * np.log10(255 ** 2 / np.mean((got - image) ** 2)))
        assert len(psnrs) == len(images)
        return float(np.mean(psnrs[4:]))

    images = clip(16)
    lean, denoised = psnr_through(enc, images), psnr_through(Vp8Encoder(), images)
    assert lean > 30 and lean > denoised, (lean, denoised)  # the same bit rate, nothing smoothed away
    assert enc.opened_with["noise-sensitivity"] == "0"
    first = enc.codec
    enc.target_bitrate = first.bit_rate * 2
    enc.encode(frame(images[0], 12))
    assert enc.codec is not first and enc.codec.bit_rate == enc.target_bitrate
    second = enc.codec
    enc.encode(frame(np.ascontiguousarray(images[0][:96, :160]), 13))
    assert enc.codec is not second and (enc.codec.width, enc.codec.height) == (160, 96)


# ---------------------------------------------------------------------------------- the window
@pytest.mark.slow
def test_the_window_drives_a_remote_engine(qtbot, make_window, token_file, tmp_path):
    """Settings ▸ Remote engine: the real window streams through a server, switches a reference style
    (uploaded once), records what comes back, shows the round trip and the network's share, reports a
    killed server in a banner, and goes back to this computer."""
    from app.sources.video_file import VideoFileReader
    from tests.helpers import applied, drop_files, wait_frames

    srv = Server(token_file, free_port())
    try:
        w = make_window()
        qtbot.waitUntil(lambda: w.model_info is not None, timeout=60000)
        wait_frames(qtbot, w)
        w.remote.connect_to(srv.url, TOKEN)
        qtbot.waitUntil(lambda: w.model_info is not None and w.model_info.remote == srv.url, timeout=60000)
        assert w.status.device.text() == "Device: CPU · remote 127.0.0.1" and w.worker.stylizer is None
        assert w.settings.get_json("remote/engine") == {"url": srv.url, "token": TOKEN, "on": True}
        assert w.remote.local_action.isEnabled() and w.remote.hud.isVisible()
        wait_frames(qtbot, w, 3)
        info = w.model_info  # the server's model, at the size it renders: the source's, or its working size
        assert info.source_size or w.stylized_view.frame.shape == (*info.resolution, 3)
        assert w.source_view.frame.shape == w.stylized_view.frame.shape, "the source is shown as it was rendered"
        qtbot.waitUntil(lambda: "network" in w.remote.hud.text(), timeout=30000)
        assert re.match(r"Remote: round trip \d+ ms · network \d+ ms \(\d+%\)", w.remote.hud.text())

        img = tmp_path / "my style.png"
        cv2.imwrite(str(img), np.random.default_rng(5).integers(0, 255, (90, 140, 3), dtype=np.uint8))
        change = applied(qtbot, w.worker, lambda: drop_files(w, img))
        assert change.kind == "reference" and change.ref_len > 0 and change.label == "my style"

        out = tmp_path / "remote.mp4"
        assert w.outputs.start_recording(out)
        qtbot.waitUntil(lambda: w.outputs.recorder.frames_written >= 4, timeout=60000)
        srv.proc.kill()  # the connection goes away mid-recording
        qtbot.waitUntil(lambda: w.banners.text("remote") is not None, timeout=30000)
        banner = w.banners.banners["remote"]
        assert "What was recorded so far is kept" in banner.text
        assert {"Reconnect now", "Use this computer"} <= set(banner.buttons)
        w.outputs.stop_recording()
        qtbot.waitUntil(lambda: w.outputs.last_recording is not None, timeout=30000)
        assert w.outputs.last_recording.error is None
        with VideoFileReader(out) as r:
            shown = w.stylized_view.frame.shape
            assert sum(1 for _ in r.frames()) >= 4 and (r.height, r.width) == shown[:2]

        banner.buttons["Use this computer"].click()
        qtbot.waitUntil(lambda: w.model_info is not None and w.model_info.remote is None, timeout=60000)
        assert w.banners.text("remote") is None and not w.remote.hud.isVisible()
        assert w.settings.get_json("remote/engine")["on"] is False
        wait_frames(qtbot, w, 2)
        assert w.worker.stylizer is not None and w.worker.style[1] == "my style"  # the style came along
    finally:
        srv.stop()
