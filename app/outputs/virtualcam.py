"""Virtual camera output: the stylized video as a webcam other programs (Zoom, OBS, browsers) can pick.

Built on pyvirtualcam, an optional dependency imported only when this output is used. The camera
has a fixed format, 1280x720 or 1920x1080 at 30 fps; frames of any size are fitted inside it
keeping their aspect ratio (letterboxed on black). ``virtual_camera_status()`` says whether it can
work on this machine and, when not, exactly what to install:

- the pyvirtualcam package (``pip install pyvirtualcam``);
- a system backend: the OBS Studio virtual camera (Windows, macOS), Unity Capture (Windows), or the
  v4l2loopback kernel module (Linux).
"""
from __future__ import annotations

import sys
import threading

import numpy as np

from .layout import check_frame, letterbox

SIZES = ((1280, 720), (1920, 1080))
DEFAULT_FPS = 30.0


class VirtualCameraError(RuntimeError):
    """The virtual camera cannot be started or stopped working; the message says what to do."""


def _backend_help(platform: str | None = None) -> str:
    platform = platform or sys.platform
    if platform.startswith("linux"):
        return ("no v4l2loopback device was found: install v4l2loopback (for example "
                "`sudo apt install v4l2loopback-dkms`) and load it with "
                "`sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=\"RTR Studio\"`")
    if platform.startswith("win"):
        return ("no virtual camera driver was found: install OBS Studio (26 or newer) and start its "
                "virtual camera once (Tools > Start Virtual Camera), or install Unity Capture")
    if platform == "darwin":
        return ("no virtual camera was found: install OBS Studio (26.1 or newer) and start its virtual "
                "camera once so that macOS installs the camera extension")
    return f"pyvirtualcam has no virtual camera backend for this platform ({platform})"


def _import_pyvirtualcam():
    try:
        import pyvirtualcam
    except ImportError as e:
        raise VirtualCameraError("Virtual camera not available: it needs the Python package pyvirtualcam "
                                 f"(pip install pyvirtualcam), and then {_backend_help().split(': ', 1)[-1]}") from e
    return pyvirtualcam


def _check_format(width: int, height: int, fps: float) -> None:
    if (width, height) not in SIZES:
        sizes = " or ".join(f"{w}x{h}" for w, h in SIZES)
        raise ValueError(f"the virtual camera is {sizes}, not {width}x{height}")
    if not fps or fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")


def _open_camera(pyvirtualcam, width: int, height: int, fps: float, backend: str | None, device: str | None):
    try:
        return pyvirtualcam.Camera(width, height, fps, fmt=pyvirtualcam.PixelFormat.RGB, backend=backend,
                                   device=device)
    except (RuntimeError, OSError, ValueError, KeyError) as e:
        detail = " ".join(str(e).split()) or e.__class__.__name__
        raise VirtualCameraError(f"Virtual camera not available: {_backend_help()}. (pyvirtualcam: {detail})") from e


def virtual_camera_status(width: int = 1280, height: int = 720, fps: float = DEFAULT_FPS,
                          probe: bool = True) -> tuple[bool, str]:
    """(available, message). With ``probe`` the camera is briefly opened to prove a backend works."""
    try:
        pyvirtualcam = _import_pyvirtualcam()
    except VirtualCameraError as e:
        return False, str(e)
    backends = getattr(getattr(pyvirtualcam, "camera", None), "BACKENDS", None)
    if backends is not None and not backends:
        return False, f"Virtual camera not available: {_backend_help()}"
    if not probe:
        return True, "pyvirtualcam is installed (the camera was not opened to check its backend)"
    try:
        cam = _open_camera(pyvirtualcam, width, height, fps, None, None)
    except VirtualCameraError as e:
        return False, str(e)
    try:
        return True, f"virtual camera ready: {cam.device} ({cam.backend}, {width}x{height} at {fps:g} fps)"
    finally:
        cam.close()


class VirtualCamera:
    """Send RGB frames of any size to a virtual webcam of a fixed format.

    ``start()`` opens it (``VirtualCameraError`` with what to install when it cannot), ``send(rgb)``
    fits the frame into the camera's picture and sends it, ``stop()`` closes it. ``send`` may be
    called from any one thread at a time; ``stop`` from another thread is safe.
    """

    def __init__(self, width: int = 1280, height: int = 720, fps: float = DEFAULT_FPS, *,
                 backend: str | None = None, device: str | None = None):
        _check_format(width, height, fps)
        self.width, self.height, self.fps = width, height, float(fps)
        self.backend_name = backend
        self.device_name = device
        self.frames_sent = 0
        self._cam = None
        self._buf = np.zeros((height, width, 3), np.uint8)
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._cam is not None

    @property
    def device(self) -> str | None:
        """The device other programs see (e.g. '/dev/video4', 'OBS Virtual Camera')."""
        return self._cam.device if self._cam is not None else None

    @property
    def backend(self) -> str | None:
        return self._cam.backend if self._cam is not None else None

    def start(self) -> None:
        with self._lock:
            if self._cam is not None:
                return
            pyvirtualcam = _import_pyvirtualcam()
            self._cam = _open_camera(pyvirtualcam, self.width, self.height, self.fps, self.backend_name,
                                     self.device_name)
            self.frames_sent = 0

    def fit(self, rgb: np.ndarray) -> np.ndarray:
        """The camera picture for this frame (aspect kept, letterboxed); a view of an internal buffer."""
        return letterbox(check_frame(rgb), self.width, self.height, self._buf)

    def send(self, rgb: np.ndarray) -> None:
        with self._lock:
            if self._cam is None:
                raise VirtualCameraError("the virtual camera is not started")
            picture = self.fit(rgb)
            try:
                self._cam.send(picture)
            except (RuntimeError, OSError, ValueError) as e:
                raise VirtualCameraError(f"the virtual camera stopped working: {e}") from e
            self.frames_sent += 1

    def stop(self) -> None:
        with self._lock:
            cam, self._cam = self._cam, None
            if cam is not None:
                cam.close()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
