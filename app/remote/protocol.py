"""The remote engine's wire format, shared by server and client: limits, frame ids, and the data
channel's messages, each parsed into checked fields or refused with one readable sentence.

Video frames carry their id in the RTP timestamp: frame ``k`` has ``pts = k * PTS_STEP`` on a 90 kHz
clock. A WebRTC receiver sees timestamps relative to the first frame it got, so each side learns one
anchor: the client numbers the frames of a connection from 0, and the server announces the id of the
first stylized frame it sends (``origin``). Everything else travels as JSON text messages on the
"control" data channel; a reference image travels as binary messages after a ``reference`` header.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import math
import struct
from dataclasses import dataclass
from fractions import Fraction

PROTOCOL_VERSION = 1
CHANNEL = "control"
TIME_BASE = Fraction(1, 90000)  # the RTP video clock
PTS_STEP = 3000  # one frame id = 1/30 s of RTP clock
MAX_TEXT_MESSAGE = 64 * 1024  # bytes of one JSON message
MAX_BINARY_MESSAGE = 64 * 1024  # bytes of one reference-image piece
REFERENCE_PIECE = 60 * 1024  # what the client sends per piece
MAX_REFERENCE_BYTES = 8 * 1024 * 1024  # an encoded reference image
MAX_REFERENCE_SIDE = 4096  # pixels; larger images are refused before decoding
CLIENT_REFERENCE_SIDE = 1024  # the client scales references down to this before sending
MAX_OFFER_BYTES = 256 * 1024  # the HTTP signalling request
MAX_RESOLUTION_SIDE = 4096
BUSY_STATUS = 409


class ProtocolError(ValueError):
    """A message that cannot be used; the text is sent back to the client as it is."""


# ---------------------------------------------------------------------------------- frame ids
def frame_pts(frame_id: int) -> int:
    return frame_id * PTS_STEP


def frame_id(pts: int, origin: int = 0) -> int:
    """The id of a received frame whose timestamp (relative to the first one received) is ``pts``."""
    return origin + round(pts / PTS_STEP)


# ---------------------------------------------------------------------------------- addresses
def is_loopback(host: str) -> bool:
    if host.strip().lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# ---------------------------------------------------------------------------------- messages
def encode(message: dict) -> str:
    return json.dumps(message, separators=(",", ":"), allow_nan=False)


def decode(text: str) -> dict:
    """A client's JSON message as a dict with a string ``type``; ProtocolError otherwise."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_TEXT_MESSAGE:
        raise ProtocolError(f"message too large ({len(text)} characters; the limit is {MAX_TEXT_MESSAGE} bytes)")
    try:
        msg = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise ProtocolError(f"not valid JSON: {str(e)[:80]}") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise ProtocolError("a message must be a JSON object with a string 'type'")
    return msg


def _number(msg: dict, key: str, lo: float, hi: float, *, integer: bool = False, optional: bool = False):
    value = msg.get(key)
    if value is None and optional:
        return None
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise ProtocolError(f"'{msg['type']}': '{key}' must be {kind}, got {_show(value)}")
    if not math.isfinite(value) or not lo <= value <= hi:
        raise ProtocolError(f"'{msg['type']}': '{key}' must be between {lo:g} and {hi:g}, got {_show(value)}")
    return value


def _text(msg: dict, key: str, limit: int, *, optional: bool = True) -> str | None:
    value = msg.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise ProtocolError(f"'{msg['type']}': '{key}' must be a string of at most {limit} characters")
    return value


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_speed(msg: dict):
    """{"preset": "fast", "steps": 2, "adacache": "off"} -> model.speed.SpeedRequest."""
    from model.speed import SpeedRequest

    speed = msg.get("speed", msg)
    if not isinstance(speed, dict):
        raise ProtocolError(f"'{msg['type']}': 'speed' must be an object")
    preset = speed.get("preset", "quality")
    steps = speed.get("steps")
    adacache = speed.get("adacache")
    if not isinstance(preset, str) or (steps is not None and (isinstance(steps, bool) or not isinstance(steps, int)))\
            or (adacache is not None and not isinstance(adacache, str)):
        raise ProtocolError(f"'{msg['type']}': speed needs a preset name, an integer 'steps' and an AdaCache mode name")
    if steps is not None and steps > 64:
        raise ProtocolError(f"'{msg['type']}': at most 64 steps, got {steps}")
    try:
        return SpeedRequest(preset, steps, adacache)
    except ValueError as e:
        raise ProtocolError(f"'{msg['type']}': {e}") from None


def speed_message(speed) -> dict:
    return {"preset": speed.preset, "steps": speed.steps, "adacache": speed.adacache}


@dataclass
class LoadSettings:
    """What a client may ask of the server's model: its working size and stream settings (never a
    folder or a device: those belong to whoever started the server)."""
    request: int
    resolution: tuple[int, int] | None
    speed: object  # SpeedRequest
    strength: float
    seed: int


def parse_load(msg: dict) -> LoadSettings:
    request = _number(msg, "request", 0, 2 ** 31, integer=True)
    res = msg.get("resolution")
    if res is not None:
        if (not isinstance(res, list) or len(res) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in res)
                or not all(16 <= v <= MAX_RESOLUTION_SIDE for v in res)):
            raise ProtocolError(f"'load': 'resolution' must be [height, width] in pixels (16 to "
                                f"{MAX_RESOLUTION_SIDE}), got {_show(res)}")
        res = (res[0], res[1])
    strength = _number(msg, "strength", 0.01, 1.0)
    seed = _number(msg, "seed", 0, 2 ** 31, integer=True)
    return LoadSettings(request, res, parse_speed(msg), float(strength), seed)


@dataclass
class StyleCommand:
    request: int
    label: str
    prompt: str | None
    reference: str | None  # sha256 of an uploaded reference image


def parse_style(msg: dict) -> StyleCommand:
    request = _number(msg, "request", 0, 2 ** 31, integer=True)
    prompt = _text(msg, "prompt", 1000)
    reference = _text(msg, "reference", 64)
    label = _text(msg, "label", 200) or ""
    if reference is not None and not _is_sha256(reference):
        raise ProtocolError("'style': 'reference' must be the sha256 (64 hex digits) of an uploaded image")
    if reference is None and not (prompt or "").strip():
        raise ProtocolError("'style': give a non-empty 'prompt' or a 'reference'")
    return StyleCommand(request, label, prompt, reference)


@dataclass
class ReferenceHeader:
    id: str
    size: int


def parse_reference(msg: dict) -> ReferenceHeader:
    ref = _text(msg, "id", 64, optional=False)
    if not _is_sha256(ref):
        raise ProtocolError("'reference': 'id' must be the sha256 (64 hex digits) of the image")
    size = _number(msg, "size", 1, MAX_REFERENCE_BYTES, integer=True)
    return ReferenceHeader(ref, size)


def parse_value(msg: dict, lo: float, hi: float, *, integer: bool = False, optional: bool = False):
    return _number(msg, "value", lo, hi, integer=integer, optional=optional)


def _is_sha256(text: str) -> bool:
    return isinstance(text, str) and len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------- images
def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG or JPEG header, read before any decoding (so that a small file
    that claims to be enormous is refused instead of allocating gigabytes)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise ProtocolError("the reference image is a damaged PNG (no header)")
        return struct.unpack(">II", data[16:24])
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 4 <= len(data):
            if data[i] != 0xFF:
                raise ProtocolError("the reference image is a damaged JPEG")
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            length = struct.unpack(">H", data[i + 2: i + 4])[0]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                if i + 9 > len(data):
                    break
                height, width = struct.unpack(">HH", data[i + 5: i + 9])
                return width, height
            i += 2 + length
        raise ProtocolError("the reference image is a damaged JPEG (no frame header)")
    raise ProtocolError("the reference image must be a PNG or a JPEG")


def decode_reference(data: bytes):
    """Checked bytes -> uint8 RGB array, or ProtocolError saying why not."""
    import cv2
    import numpy as np

    width, height = image_size(data)
    if not (8 <= width <= MAX_REFERENCE_SIDE and 8 <= height <= MAX_REFERENCE_SIDE):
        raise ProtocolError(f"the reference image is {width}x{height}; each side must be 8 to "
                            f"{MAX_REFERENCE_SIDE} pixels")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None or img.shape[:2] != (height, width):
        raise ProtocolError("the reference image does not decode (damaged or truncated file)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def encode_reference(image) -> bytes:
    """uint8 RGB array -> PNG bytes for sending, scaled down to CLIENT_REFERENCE_SIDE (JPEG when the
    PNG would be very large)."""
    import cv2

    h, w = image.shape[:2]
    scale = CLIENT_REFERENCE_SIDE / max(h, w)
    if scale < 1:
        image = cv2.resize(image, (max(8, round(w * scale)), max(8, round(h * scale))), interpolation=cv2.INTER_AREA)
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, png = cv2.imencode(".png", bgr)
    if ok and len(png) <= MAX_REFERENCE_BYTES // 2:
        return png.tobytes()
    ok, jpg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 92])
    if not ok:
        raise ValueError("the reference image cannot be encoded")
    return jpg.tobytes()


# ---------------------------------------------------------------------------------- payloads
def model_info_message(info, request: int | None) -> dict:
    return {"type": "model", "request": request, "name": info.name, "folder": str(info.folder or ""),
            "trained": info.trained, "config": info.config_name, "device": info.device,
            "device_label": info.device_label, "resolution": list(info.resolution),
            "native_resolution": list(info.native_resolution), "resolution_step": list(info.resolution_step),
            "chunk_size": info.chunk_size, "default_steps": info.default_steps, "load_seconds": info.load_seconds,
            "source_size": info.source_size}


def style_change_message(change, request: int | None) -> dict:
    return {"type": "style_applied", "request": request, "serial": change.serial, "kind": change.kind,
            "cross_ready": change.cross_ready, "cross_changed": change.cross_changed, "ref_len": change.ref_len,
            "window_before": change.window_before, "window_after": change.window_after, "matched": change.matched}
