"""Self-test of an installed or frozen RTR Studio: ``main.py --selftest`` (``rtr-studio --selftest``).

    rtr-studio --selftest [--model DIR] [--frames N] [--device cpu|cuda] [--threads N] [--no-gui]
                          [--timeout S]

Two checks, each a fresh look at what a user's first start does:

1. GUI (a child process, so a Qt abort such as a missing platform library becomes a clear reason
   rather than a crash): the main window opens off screen (``QT_QPA_PLATFORM=offscreen`` unless the
   variable is set), with the built-in gallery, the bundled sample clip as source and the model;
   it passes when the window is shown, the model has loaded, a stylized frame has been displayed
   and the window closes with every thread joined. The child reports how long after its start the
   window was shown (the cold start a user sees) and the first stylized frame appeared.
2. Headless: the bundled sample clip is stylized (a few dozen frames, a text style, then a switch to
   a gallery reference image) into an MP4 in a temporary folder, which is then decoded with PyAV:
   codec, frame count, frame size and frame rate must be what was asked for.

Prints one line, ``selftest OK: ...`` (exit 0) or ``selftest FAILED: <stage>: <reason>`` (exit 1),
to stdout; details and progress go to stderr. No file outside the temporary folder is written (the
GUI keeps its settings and data there too) and nothing is downloaded.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESOURCES = ROOT / "resources"
SAMPLE_CLIP = RESOURCES / "sample" / "sample.mp4"
GALLERY_DIR = RESOURCES / "gallery"
EMBEDDED_MODEL = RESOURCES / "models" / "default"
GUI_TAG = "SELFTEST-GUI "  # prefix of the child's one JSON line on stdout
_MAIN_STARTED = time.time()  # fallback origin where the OS does not say when the process started


class SelfTestError(Exception):
    """A failed check: ``stage`` names the check, the message says what was wrong."""

    def __init__(self, stage: str, message: str):
        super().__init__(message)
        self.stage = stage


def frozen() -> bool:
    return bool(getattr(sys, "frozen", False))


def process_started() -> tuple[float, str]:
    """(epoch seconds when this process started, what that origin is)."""
    if sys.platform.startswith("linux"):
        try:
            stat = Path("/proc/self/stat").read_text()
            ticks = int(stat[stat.rindex(")") + 2:].split()[19])  # field 22: start time in clock ticks
            uptime = float(Path("/proc/uptime").read_text().split()[0])
            return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK")), "process start"
        except (OSError, ValueError, IndexError):
            pass
    elif sys.platform == "win32":
        import ctypes
        from ctypes import wintypes

        times = [wintypes.FILETIME() for _ in range(4)]
        kernel32 = ctypes.windll.kernel32
        kernel32.GetCurrentProcess.restype = wintypes.HANDLE
        if kernel32.GetProcessTimes(kernel32.GetCurrentProcess(), *(ctypes.byref(t) for t in times)):
            created = (times[0].dwHighDateTime << 32) | times[0].dwLowDateTime  # 100 ns since 1601
            return created / 1e7 - 11644473600.0, "process start"
    return _MAIN_STARTED, "interpreter start"


def describe(exc: BaseException) -> str:
    """One line for an exception: its root cause (e.g. the library that failed to load, rather than
    NumPy's long ImportError advice) with its type."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = one_line(str(exc), 400)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def one_line(text: str, limit: int = 600) -> str:
    text = " ".join(ln.strip() for ln in text.splitlines() if ln.strip())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _log(msg: str) -> None:
    print(f"[selftest] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ resources
def check_resources(model_dir: Path | None) -> tuple[Path, dict, Path | None]:
    """The model folder to use, the first text preset and the first reference image of the gallery."""
    if not SAMPLE_CLIP.is_file():
        raise SelfTestError("resources", f"the sample clip is missing: {SAMPLE_CLIP}")
    presets_file = GALLERY_DIR / "presets.json"
    try:
        presets = json.loads(presets_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise SelfTestError("resources", f"the gallery presets cannot be read ({presets_file}): {e}") from None
    if isinstance(presets, dict):
        presets = presets.get("presets", [])
    text = next((p for p in presets if isinstance(p, dict) and p.get("prompt") and not p.get("reference")), None)
    if text is None:
        raise SelfTestError("resources", f"{presets_file} has no text preset")
    ref = next((p for p in presets if isinstance(p, dict) and p.get("reference")), None)
    ref_path = GALLERY_DIR / ref["reference"] if ref else None
    if ref_path is not None and not ref_path.is_file():
        raise SelfTestError("resources", f"gallery reference image missing: {ref_path}")
    for p in presets:
        thumb = p.get("thumbnail") if isinstance(p, dict) else None
        if thumb and not (GALLERY_DIR / thumb).is_file():
            raise SelfTestError("resources", f"gallery thumbnail missing: {GALLERY_DIR / thumb}")
    if model_dir is None:
        if not (EMBEDDED_MODEL / "config.json").is_file():
            raise SelfTestError("model", f"the embedded model is missing ({EMBEDDED_MODEL}); "
                                         "pass --model DIR to test with another model folder")
        model_dir = EMBEDDED_MODEL
    elif not model_dir.is_dir():
        raise SelfTestError("model", f"model folder not found: {model_dir}")
    return model_dir, text, ref_path


# ------------------------------------------------------------------------------ headless
def verify_mp4(path: Path, frames: int, width: int, height: int, fps: float | None = None) -> dict:
    """Decode every frame of ``path`` with PyAV and check codec, count, size and rate."""
    import av

    if not path.is_file() or path.stat().st_size == 0:
        raise SelfTestError("verify", f"{path.name} was not written")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise SelfTestError("verify", f"{path.name} has no video stream")
            stream = container.streams.video[0]
            codec = stream.codec_context.name
            rate = float(stream.average_rate) if stream.average_rate else None
            count, spread, sizes = 0, 0.0, set()
            for frame in container.decode(stream):
                img = frame.to_ndarray(format="rgb24")
                sizes.add((frame.width, frame.height))
                spread = max(spread, float(img.std()))
                count += 1
    except av.FFmpegError as e:
        raise SelfTestError("verify", f"{path.name} does not decode: {e}") from None
    if codec != "h264":
        raise SelfTestError("verify", f"{path.name} is {codec}, expected h264")
    if count != frames:
        raise SelfTestError("verify", f"{path.name} decodes to {count} frames, expected {frames}")
    if sizes != {(width, height)}:
        found = ", ".join(f"{w}x{h}" for w, h in sorted(sizes))
        raise SelfTestError("verify", f"{path.name} has frames of {found}, expected {width}x{height}")
    if fps is not None and (rate is None or abs(rate - fps) > 0.01 * fps):
        raise SelfTestError("verify", f"{path.name} plays at {rate} frames/s, expected {fps:g}")
    if spread == 0.0:
        raise SelfTestError("verify", f"every frame of {path.name} is one flat colour")
    return {"codec": codec, "frames": count, "width": width, "height": height, "fps": rate,
            "bytes": path.stat().st_size}


def run_headless(model_dir: Path, text: dict, ref_path: Path | None, frames: int, device: str,
                 workdir: Path, threads: int | None = None) -> dict:
    """Stylize the sample clip into ``workdir`` and verify the MP4."""
    t0 = time.perf_counter()
    stage = "import"
    try:
        import torch

        if threads:
            torch.set_num_threads(threads)

        from model.build import StylizerRequest, build_stylizer

        from .render import render_file
        from .sources.video_file import VideoFileReader
        from .styles import ScheduledStyle, StyleSpec

        stage = "model"
        stylizer = build_stylizer(StylizerRequest(folder=model_dir, device=device)).stylizer
        model = stylizer.model
        load_s = time.perf_counter() - t0
        _log(f"model '{model.name}' ({model.config.name}) loaded from {model_dir} in {load_s:.1f} s")
        stage = "stylize"
        reader = VideoFileReader(SAMPLE_CLIP)
        available, fps = reader.frame_count, float(reader.fps)
        reader.close()
        n = min(frames, available) if available else frames
        switches = [ScheduledStyle(n // 2, None, StyleSpec(reference=ref_path))] if ref_path else []
        out = workdir / "selftest.mp4"
        t1 = time.perf_counter()
        result = render_file(stylizer, SAMPLE_CLIP, out, StyleSpec(prompt=text["prompt"]), switches,
                             max_frames=n, audio=False)
        render_s = time.perf_counter() - t1
    except SelfTestError:
        raise
    except Exception as e:
        _log(traceback.format_exc().rstrip())
        raise SelfTestError(stage, describe(e)) from None
    if result.cancelled or result.frames_out != n:
        raise SelfTestError("stylize", f"{result.frames_out} of {n} frames came out")
    height, width = model.config.resolution
    info = verify_mp4(out, n, width, height, fps)
    styles = f"'{text['prompt']}'" + (f" then reference {ref_path.name}" if ref_path else "")
    _log(f"stylized {n} frames ({styles}) in {render_s:.1f} s -> {out.name}: {info['codec']} "
         f"{width}x{height}, {info['frames']} frames, {info['bytes']} bytes")
    return {"model": model.name, "config": model.config.name, "trained": model.trained, "frames": n,
            "width": width, "height": height, "render_s": render_s, "fps": n / render_s if render_s else 0.0,
            "load_s": load_s, "torch": torch.__version__, "styles": styles}


# ------------------------------------------------------------------------------ GUI
def gui_child(model_dir: str | None, device: str, timeout: float) -> int:
    """Runs in the child process: open the main window off screen, wait for a stylized frame, close."""
    t_proc, _origin = process_started()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    report: dict = {"ok": False}

    def emit() -> None:
        print(GUI_TAG + json.dumps(report), flush=True)

    try:
        import asyncio

        import qasync
        from PySide6.QtCore import QCoreApplication
        from PySide6.QtGui import QImage
        from PySide6.QtWidgets import QApplication

        from .sources.camera import _qt_cameras
        from .ui.main_window import MainWindow
        from .ui.settings import APPLICATION, ORGANIZATION, AppSettings
    except Exception as e:
        _log(traceback.format_exc().rstrip())
        report["error"] = f"the GUI modules do not import: {describe(e)}"
        emit()
        return 1
    report["imported_s"] = time.time() - t_proc

    deadline = time.monotonic() + timeout
    window = loop = None

    def banner_error() -> str | None:
        for key in ("model", "engine", "source"):
            text = window.banners.text(key)
            if text:
                return f"{key}: {one_line(text, 300)}"
        return None

    async def wait_for(what: str, ready) -> float:
        while not ready():
            problem = banner_error()
            if problem:
                raise SelfTestError("gui", f"the window shows an error while waiting for {what}: {problem}")
            if time.monotonic() > deadline:
                raise SelfTestError("gui", f"timed out after {timeout:g} s waiting for {what}")
            await asyncio.sleep(0.02)
        return time.time() - t_proc

    async def drive() -> None:
        window.show()
        handle = window.windowHandle()
        report["shown_s"] = await wait_for("the window to be shown", lambda: window.isVisible()
                                           and handle is not None and handle.isExposed())
        _log(f"window shown {report['shown_s']:.2f} s after start ({report['platform']})")
        if not window.builtin_presets:
            raise SelfTestError("gui", f"the style gallery is empty ({window.gallery_dir})")
        report["presets"] = len(window.builtin_presets)
        thumb = next((p.thumbnail for p in window.builtin_presets if p.thumbnail), None)
        if thumb is not None and QImage(str(thumb)).isNull():  # Qt's image format plugins
            raise SelfTestError("gui", f"Qt cannot decode the gallery thumbnail {thumb.name}")
        cams = _qt_cameras()
        if cams is None:
            raise SelfTestError("gui", "QtMultimedia is unavailable: cameras cannot be listed by name")
        report["cameras"] = len(cams)
        window.start()
        report["model_s"] = await wait_for("the model to load", lambda: window.model_info is not None)
        report["model"] = window.model_info.name
        report["frame_s"] = await wait_for("the first stylized frame",
                                           lambda: window.stylized_view.frames_shown > 0)
        _log(f"model '{report['model']}' loaded at {report['model_s']:.2f} s, first stylized frame "
             f"at {report['frame_s']:.2f} s")

    with tempfile.TemporaryDirectory(prefix="rtr-selftest-gui-") as tmp:
        try:
            QCoreApplication.setOrganizationName(ORGANIZATION)
            QCoreApplication.setApplicationName(APPLICATION)
            app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "rtr-studio"])
            report["platform"] = QApplication.platformName()
            loop = qasync.QEventLoop(app)
            asyncio.set_event_loop(loop)
            window = MainWindow(settings=AppSettings(path=Path(tmp) / "settings.ini"), model_dir=model_dir,
                                source=str(SAMPLE_CLIP), device=device, data_dir=Path(tmp) / "data")
            window.resize(1200, 760)
            loop.run_until_complete(drive())
        except SelfTestError as e:
            report["error"] = str(e)
        except Exception as e:
            _log(traceback.format_exc().rstrip())
            report["error"] = describe(e)
        finally:
            alive = []
            if window is not None:
                window.close()  # joins the engine, source and output threads, saves settings (in tmp)
                loop.run_until_complete(asyncio.sleep(0.05))  # let cancelled tasks finish
                alive = window.threads_alive
            if loop is not None:
                loop.close()
                asyncio.set_event_loop(None)
        if alive and "error" not in report:
            report["error"] = f"threads still running after the window closed: {', '.join(alive)}"
    report["ok"] = "error" not in report
    emit()
    return 0 if report["ok"] else 1


def _self_command() -> list[str]:
    """How to start this program again: the frozen executable, or this interpreter on main.py."""
    if frozen():
        return [sys.executable]
    return [sys.executable, str(ROOT / "main.py")]


def run_gui_check(model_dir: Path, device: str, timeout: float) -> dict:
    """Start the GUI check in a child process and read its report."""
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    cmd = [*_self_command(), "--selftest", "--gui-child", "--model", str(model_dir), "--device", device,
           "--timeout", str(timeout)]
    try:
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=timeout + 60)
    except subprocess.TimeoutExpired:
        raise SelfTestError("gui", f"the GUI check did not finish within {timeout + 60:g} s") from None
    if proc.stderr.strip():
        sys.stderr.write(proc.stderr if proc.stderr.endswith("\n") else proc.stderr + "\n")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(GUI_TAG)]
    if not lines:
        tail = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()][-3:]
        how = f"exit status {proc.returncode}" if proc.returncode >= 0 else f"signal {-proc.returncode}"
        raise SelfTestError("gui", f"the GUI process died ({how}) before reporting" +
                            (": " + " | ".join(tail) if tail else ""))
    report = json.loads(lines[-1][len(GUI_TAG):])
    if not report.get("ok"):
        raise SelfTestError("gui", report.get("error") or f"failed (exit status {proc.returncode})")
    return report


# ------------------------------------------------------------------------------ entry
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rtr-studio --selftest", description="Check that this installation works: "
                                "stylize the sample clip to an MP4 and open the main window off screen.")
    p.add_argument("--model", metavar="DIR", help="model folder (default: the embedded model)")
    p.add_argument("--frames", type=int, default=36, help="frames of the sample clip to stylize (default 36)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--threads", type=int, help="CPU threads for the headless render (default: torch's)")
    p.add_argument("--no-gui", action="store_true", help="skip the window check")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds allowed for the window check")
    p.add_argument("--gui-child", action="store_true", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args([a for a in (sys.argv[1:] if argv is None else argv) if a != "--selftest"])
    if args.gui_child:
        return gui_child(args.model, args.device, args.timeout)
    t_proc, origin = process_started()
    where = "frozen" if frozen() else "source"
    try:
        if args.frames < 1:
            raise SelfTestError("options", "--frames must be at least 1")
        if args.threads is not None and args.threads < 1:
            raise SelfTestError("options", "--threads must be at least 1")
        model_dir, text, ref_path = check_resources(Path(args.model) if args.model else None)
        _log(f"{where} build, {sys.executable}; resources {RESOURCES}")
        gui = None
        if not args.no_gui:
            gui = run_gui_check(model_dir, args.device, args.timeout)
        with tempfile.TemporaryDirectory(prefix="rtr-selftest-") as tmp:
            head = run_headless(model_dir, text, ref_path, args.frames, args.device, Path(tmp), args.threads)
    except SelfTestError as e:
        print(f"selftest FAILED: {e.stage}: {one_line(str(e))}", flush=True)
        return 1
    total = time.time() - t_proc
    parts = [f"model {head['model']} ({head['config']}, {'trained' if head['trained'] else 'untrained'}) "
             f"on {args.device}, torch {head['torch']}",
             f"stylized {head['frames']} frames -> MP4 h264 {head['width']}x{head['height']} verified "
             f"({head['render_s']:.1f} s, {head['fps']:.1f} frames/s)"]
    if gui is not None:
        parts.append(f"gui: window shown {gui['shown_s']:.2f} s after start, model loaded {gui['model_s']:.2f} s, "
                     f"first stylized frame {gui['frame_s']:.2f} s, {gui['presets']} presets, "
                     f"{gui['cameras']} camera(s), closed cleanly")
    else:
        parts.append("gui: skipped")
    parts.append(f"total {total:.1f} s since {origin} [{where}]")
    print("selftest OK: " + "; ".join(parts), flush=True)
    return 0
