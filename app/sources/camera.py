"""Webcams: listed by name, captured with OpenCV on a thread.

Cameras are discovered by asking the platform for its video inputs by name (QtMultimedia's
``QMediaDevices.videoInputs()`` when Qt Multimedia is importable and an application object exists;
otherwise Linux's ``/sys/class/video4linux/*/name``), never by opening index after index (probing
indices triggers crashy backends on some platforms). Capture opens the device with the platform's
native OpenCV backend, asks for MJPG at the requested size and rate up front, and measures the real
frame rate (drivers often report a wrong one). A camera that cannot be opened gives "camera not
available: ..."; one that stops delivering frames gives "camera disconnected: ...".
"""
from __future__ import annotations

import re
import sys
import threading
import time
from collections import deque
from pathlib import Path

from .base import ErrorCallback, FrameSink, FrameSource, SourceError, SourceInfo, StateCallback

SYSFS_V4L = Path("/sys/class/video4linux")


def _qt_cameras() -> list[SourceInfo] | None:
    """Cameras from QtMultimedia, or None when it cannot be asked (not installed, no application)."""
    try:
        from PySide6.QtCore import QCoreApplication
        from PySide6.QtMultimedia import QMediaDevices
    except ImportError:
        return None
    if QCoreApplication.instance() is None:
        return None
    found = []
    for i, dev in enumerate(QMediaDevices.videoInputs()):
        raw_id = bytes(dev.id().data()).decode("utf-8", "replace")
        m = re.search(r"video(\d+)$", raw_id)
        # On Linux the id is the device node; elsewhere the platform lists cameras in the order the
        # native OpenCV backend (DirectShow / AVFoundation) numbers them.
        index = int(m.group(1)) if m else i
        found.append(SourceInfo("camera", dev.description() or f"Camera {index}", f"camera:{index}",
                                index=index, device_id=raw_id))
    return found


def _sysfs_cameras(root: Path = SYSFS_V4L) -> list[SourceInfo]:
    """Linux capture nodes with their names (metadata nodes, whose ``index`` is not 0, are skipped)."""
    if not root.is_dir():
        return []
    found = []
    for node in sorted(root.iterdir(), key=lambda p: _node_number(p.name)):
        m = re.fullmatch(r"video(\d+)", node.name)
        if not m:
            continue
        try:
            if (node / "index").is_file() and (node / "index").read_text().strip() not in ("", "0"):
                continue
            name = (node / "name").read_text().strip() if (node / "name").is_file() else ""
        except OSError:
            continue
        index = int(m.group(1))
        found.append(SourceInfo("camera", name or f"Camera {index}", f"camera:{index}", index=index,
                                device_id=f"/dev/{node.name}"))
    return found


def _node_number(name: str) -> int:
    m = re.search(r"(\d+)$", name)
    return int(m.group(1)) if m else 1 << 30


def list_cameras(use_qt: bool = True, sysfs_root: Path | None = None) -> list[SourceInfo]:
    """Cameras attached to this machine, by name. Empty when there are none."""
    if use_qt:
        cams = _qt_cameras()
        if cams:
            return cams
    if sys.platform.startswith("linux"):
        return _sysfs_cameras(sysfs_root or SYSFS_V4L)
    return []


def parse_camera_address(address: str) -> int:
    """'camera:2' -> 2, with a clear error for anything else."""
    m = re.fullmatch(r"camera:(\d+)", address.strip())
    if not m:
        raise SourceError(f"not a camera address: {address!r} (expected camera:N, e.g. camera:0)")
    return int(m.group(1))


def _backends() -> list[int]:
    """The platform's native capture backends, in order. Never CAP_ANY where a native one exists:
    letting OpenCV try every backend on a missing index reaches backends that crash (OBSENSOR)."""
    import cv2

    if sys.platform.startswith("win"):
        return [cv2.CAP_DSHOW, cv2.CAP_MSMF]  # DirectShow numbers cameras in the order Windows lists them
    if sys.platform == "darwin":
        return [cv2.CAP_AVFOUNDATION]
    if sys.platform.startswith("linux"):
        return [cv2.CAP_V4L2]
    return [cv2.CAP_ANY]


def _quiet_opencv() -> None:
    """OpenCV logs its own warnings for a camera it cannot open; the source reports that itself."""
    try:
        import cv2

        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    except (ImportError, AttributeError):
        pass


class CameraSource(FrameSource):
    kind = "camera"

    #: consecutive failed reads, or seconds without a frame, after which the camera counts as disconnected
    max_failed_reads = 30
    stall_seconds = 3.0

    def __init__(self, camera: SourceInfo | int, sink: FrameSink, on_error: ErrorCallback | None = None,
                 on_state: StateCallback | None = None, width: int = 640, height: int = 360, fps: float = 30.0):
        super().__init__(sink, on_error, on_state)
        if isinstance(camera, int):
            camera = SourceInfo("camera", f"Camera {camera}", f"camera:{camera}", index=camera)
        if camera.index is None:
            raise SourceError(f"camera {camera.name!r} has no device index")
        self._info = camera
        self.request = (width, height, fps)
        self.measured_fps = 0.0
        self.opened = threading.Event()

    @classmethod
    def available(cls) -> tuple[bool, str]:
        try:
            import cv2  # noqa: F401
        except ImportError:
            return False, "cameras need OpenCV (pip install opencv-python)"
        return True, ""

    @property
    def info(self) -> SourceInfo:
        return self._info

    @property
    def nominal_fps(self) -> float:
        return self.measured_fps or self.request[2]

    def _open(self):
        import cv2

        width, height, fps = self.request
        index = self._info.index
        _quiet_opencv()
        cap = None
        for backend in _backends():
            cap = cv2.VideoCapture(index, backend)
            if cap.isOpened():
                break
            cap.release()
            cap = None
        if cap is None:
            return None
        # Format, size and rate are set before the first read: some drivers ignore later changes,
        # and uncompressed YUYV over USB is limited to a few frames per second at 640x360 and above.
        cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        cap.set(cv2.CAP_PROP_FPS, fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        return cap

    def _run(self) -> None:
        import cv2

        name = self._info.name
        cap = self._open()
        if cap is None:
            self._fail(f"camera not available: {name} ({self._info.address}). It may be in use by another "
                       "program, unplugged, or blocked by the system's camera permissions.")
            return
        self.opened.set()
        self.on_state("playing")
        stamps: deque[float] = deque(maxlen=30)
        failed = 0
        last_ok = time.perf_counter()
        try:
            while not self._stop.is_set():
                ok, bgr = cap.read()
                now = time.perf_counter()
                if not ok or bgr is None:
                    failed += 1
                    if failed >= self.max_failed_reads or (failed >= 2 and now - last_ok > self.stall_seconds):
                        self._fail(f"camera disconnected: {name} stopped sending frames")
                        return
                    time.sleep(0.02)
                    continue
                failed, last_ok = 0, now
                stamps.append(now)
                if len(stamps) >= 2:
                    self.measured_fps = (len(stamps) - 1) / max(stamps[-1] - stamps[0], 1e-6)
                if bgr.ndim == 2:
                    rgb = cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
                else:
                    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                self._deliver(rgb, now)
        finally:
            cap.release()
