"""Virtual camera output: availability messages, fixed format, aspect-preserving fit."""
from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from app.outputs import virtualcam
from app.outputs.virtualcam import VirtualCamera, VirtualCameraError, virtual_camera_status


def fake_pyvirtualcam(fail: str | None = None):
    """A stand-in for the pyvirtualcam module: its Camera either fails like a missing backend
    (the message pyvirtualcam gives) or records what it is sent."""
    mod = types.ModuleType("pyvirtualcam")
    mod.PixelFormat = types.SimpleNamespace(RGB="RGB")
    mod.camera = types.SimpleNamespace(BACKENDS={"fake": object})
    mod.opened = []

    class Camera:
        def __init__(self, width, height, fps, *, fmt=None, backend=None, device=None):
            if fail:
                raise RuntimeError(fail)
            self.width, self.height, self.fps, self.fmt = width, height, fps, fmt
            self.device, self.backend = "/dev/video7", "fake"
            self.frames, self.closed = [], False
            mod.opened.append(self)

        def send(self, frame):
            assert frame.shape == (self.height, self.width, 3) and frame.dtype == np.uint8
            self.frames.append(frame.copy())

        def close(self):
            self.closed = True

    mod.Camera = Camera
    return mod


def test_missing_package_names_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)  # import fails as if not installed
    available, message = virtual_camera_status()
    assert not available and message.startswith("Virtual camera not available")
    assert "pip install pyvirtualcam" in message
    with pytest.raises(VirtualCameraError, match="pip install pyvirtualcam"):
        VirtualCamera().start()


LINUX_ERROR = ("'v4l2loopback' backend: No v4l2 loopback device found at /dev/video[0-99]. "
               "Did you run 'modprobe v4l2loopback'? See also pyvirtualcam's documentation.")


@pytest.mark.parametrize("platform, names", [("linux", ["v4l2loopback", "modprobe"]),
                                             ("win32", ["OBS Studio", "Unity Capture"]),
                                             ("darwin", ["OBS Studio"])])
def test_missing_backend_names_the_system_camera_to_install(monkeypatch, platform, names):
    monkeypatch.setitem(sys.modules, "pyvirtualcam", fake_pyvirtualcam(fail=LINUX_ERROR))
    monkeypatch.setattr(sys, "platform", platform)
    available, message = virtual_camera_status()
    assert not available and message.startswith("Virtual camera not available")
    for name in names:
        assert name in message
    assert "No v4l2 loopback device" in message  # the backend's own words, for bug reports
    with pytest.raises(VirtualCameraError, match="not available"):
        VirtualCamera(1920, 1080).start()


def test_status_on_this_machine_is_the_one_its_system_gives():
    """The real package and system, whatever they are here: the answer expected from what is
    installed (read without the app's code), never just "one of the two"."""
    import importlib.util
    from pathlib import Path

    available, message = virtual_camera_status()
    if importlib.util.find_spec("pyvirtualcam") is None:
        assert not available
        assert message.startswith("Virtual camera not available") and "pip install pyvirtualcam" in message
        return
    if sys.platform.startswith("linux"):
        loopback = any("loopback" in (p / "name").read_text().lower()
                       for p in Path("/sys/class/video4linux").glob("video*") if (p / "name").is_file())
        if not loopback:
            assert not available and "v4l2loopback" in message and "modprobe" in message
            return
    if available:
        assert message.startswith("virtual camera ready: ")
    else:  # Windows/macOS without OBS or Unity Capture, or a loopback device that refused to open
        assert message.startswith("Virtual camera not available") and "(pyvirtualcam: " in message


def test_frames_are_letterboxed_into_the_fixed_format(monkeypatch):
    mod = fake_pyvirtualcam()
    monkeypatch.setitem(sys.modules, "pyvirtualcam", mod)
    assert virtual_camera_status() == (True, "virtual camera ready: /dev/video7 (fake, 1280x720 at 30 fps)")
    assert mod.opened[-1].closed  # the probe does not keep the camera

    cam = VirtualCamera()
    with pytest.raises(VirtualCameraError, match="not started"):
        cam.send(np.zeros((64, 96, 3), np.uint8))
    cam.start()
    assert cam.running and cam.device == "/dev/video7" and cam.backend == "fake"
    dev = mod.opened[-1]
    assert (dev.width, dev.height, dev.fps, dev.fmt) == (1280, 720, 30.0, "RGB")

    cam.send(np.full((64, 96, 3), 200, np.uint8))  # 3:2 -> 1080x720 between 100 px pillars
    pic = dev.frames[-1]
    assert (pic[:, :100] == 0).all() and (pic[:, 1180:] == 0).all() and (pic[:, 100:1180] == 200).all()
    cam.send(np.full((480, 1920, 3), 90, np.uint8))  # 4:1 -> 1280x320 between 200 px bars
    pic = dev.frames[-1]
    assert (pic[:200] == 0).all() and (pic[520:] == 0).all() and (pic[200:520] == 90).all()
    cam.send(np.full((720, 1280, 3), 7, np.uint8))  # exact size: as is
    assert (dev.frames[-1] == 7).all()
    assert cam.frames_sent == 3
    cam.stop()
    assert dev.closed and not cam.running
    cam.stop()  # twice is fine


def test_only_the_supported_formats(monkeypatch):
    with pytest.raises(ValueError, match="1280x720 or 1920x1080"):
        VirtualCamera(640, 480)
    with pytest.raises(ValueError, match="fps"):
        VirtualCamera(fps=0)
    monkeypatch.setitem(sys.modules, "pyvirtualcam", fake_pyvirtualcam())
    with VirtualCamera(1920, 1080) as cam:
        cam.send(np.zeros((1080, 1920, 3), np.uint8))
        with pytest.raises(ValueError, match="uint8 HxWx3"):
            cam.send(np.zeros((1080, 1920, 4), np.uint8))
    assert not cam.running
    assert virtualcam.SIZES == ((1280, 720), (1920, 1080))
