"""Command line: ``main.py stylize | models | bench | train | eval`` (headless, no Qt imported)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _fail(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is one line (``error: argument --steps: invalid int value: 'x'``)."""

    def error(self, message: str):
        print(f"error: {_short(message, 300)} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def _short(text: str, limit: int = 60) -> str:
    """A user's text (a prompt, a path) cut to fit in a one-line message."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _check_stylize_args(args) -> tuple[list, object]:
    """Every value and file of ``stylize`` checked before the model is loaded or the output opened:
    (the switches, the first style). Raises ValueError with one line naming the value and the range."""
    import math

    import torch

    from model.stylizer import load_image

    from .outputs.output_path import check_output
    from .sources.video_file import VideoFileReader
    from .styles import StyleSpec, parse_switch

    if args.strength is not None and not (math.isfinite(args.strength) and 0 < args.strength <= 1):
        raise ValueError(f"--strength must be in (0, 1], got {args.strength:g}")
    if args.steps is not None and not 1 <= args.steps <= 1000:
        raise ValueError(f"--steps must be between 1 and 1000, got {args.steps}")
    if args.max_frames is not None and args.max_frames < 1:
        raise ValueError(f"--max-frames must be >= 1, got {args.max_frames}")
    if not 0 <= args.seed < 2 ** 64:
        raise ValueError(f"--seed must be between 0 and 2**64 - 1, got {_short(str(args.seed), 30)}")
    try:
        torch.device(args.device)
    except (RuntimeError, ValueError):
        raise ValueError(f"--device {_short(args.device, 30)!r} is not a device (cpu, cuda, cuda:N, mps)") from None
    if args.style is not None and not args.style.strip():
        raise ValueError("the style prompt is empty")
    spec = StyleSpec(prompt=args.style, reference=Path(args.reference) if args.reference else None)
    if spec.reference is not None:
        load_image(spec.reference)  # StyleError: not found / not an image
    switches = []
    for text in args.switch:
        try:
            sw = parse_switch(text)
            if sw.seconds is not None and not math.isfinite(sw.seconds):
                when = text.partition(":")[0].strip()
                raise ValueError(f"--switch: {when!r} is not a frame number or a time like 2.5s")
            if sw.style.reference is not None:
                load_image(sw.style.reference)
        except ValueError as e:  # StyleError is one
            msg = str(e)
            raise ValueError(msg if msg.startswith("--switch") else f"--switch {_short(text)!r}: {msg}") from None
        switches.append(sw)
    VideoFileReader(args.input).close()  # a bad input fails before the model is loaded
    if Path(args.output).suffix.lower() != ".mp4":
        raise ValueError(f"the output must be an .mp4 file, got {_short(args.output, 200)}")
    inputs = [("the input video", args.input)]
    if spec.reference is not None:
        inputs.append(("the --reference image", spec.reference))
    inputs += [(f"the --switch {_short(t)!r} image", sw.style.reference) for t, sw in zip(args.switch, switches)
               if sw.style.reference is not None]
    check_output(args.output, inputs)  # OutputPathError (a ValueError): the output is an input, read-only...
    return switches, spec


def _input_short_note(args, result) -> str:
    return (f"{Path(args.input).name} ended early: {result.short_input_note()}; "
            f"{Path(args.output).name} holds the {result.frames_out} stylized frames")


def cmd_stylize(args) -> int:
    import signal
    import threading

    from tqdm import tqdm

    from model.build import StylizerRequest, build_stylizer
    from model.checkpoint import CheckpointError
    from model.speed import SpeedRequest
    from model.stylizer import StyleError
    from model.text import TextEncoderError

    from .outputs.write_errors import VideoWriteError
    from .render import render_file
    from .sources.video_file import VideoReadError

    if args.style is None and not args.reference:
        return _fail("give a style: --style TEXT or --reference IMAGE")
    try:
        switches, spec = _check_stylize_args(args)
        speed = SpeedRequest(args.speed or "quality", steps=args.steps, adacache=args.adacache)
        stylizer = build_stylizer(StylizerRequest(
            folder=args.model, device=args.device, speed=speed, strength=args.strength, seed=args.seed,
            anchor_reference=not args.no_anchor, match_prompts=not args.exact_prompt)).stylizer
        model = stylizer.model
        if not model.trained:
            print(f"note: model '{model.name}' has untrained (random) weights; the output is not a style",
                  file=sys.stderr)
        if stylizer.match_prompts and model.vocabulary is not None:
            prompts = [sp.prompt for sp in [spec] + [sw.style for sw in switches] if sp.reference is None]
            for prompt in dict.fromkeys(p for p in prompts if p and p.strip()):
                match = model.vocabulary.match(prompt, model.text_encoder)
                if not match.exact:
                    print(f"style '{_short(prompt)}' -> {match.describe()}", file=sys.stderr)
        # Ctrl+C cancels cleanly (the file is finalised with the frames done); a second one stops at once
        interrupted: list[bool] = []

        def on_sigint(signum, frame):
            if interrupted:
                raise KeyboardInterrupt
            interrupted.append(True)
            print("\ninterrupted: finalising the output (Ctrl+C again to stop at once)", file=sys.stderr)

        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, on_sigint) if main_thread else None
        try:
            with tqdm(unit="frame", desc="stylize", disable=args.quiet) as bar:

                def progress(done, total):
                    if total and bar.total != total:
                        bar.total = total
                    bar.update(done - bar.n)

                result = render_file(stylizer, args.input, args.output, spec, switches, args.max_frames, progress,
                                     should_cancel=lambda: bool(interrupted), audio=not args.no_audio,
                                     layout=args.layout)
        finally:
            if main_thread:
                signal.signal(signal.SIGINT, previous)
    except (VideoReadError, VideoWriteError, CheckpointError, StyleError, TextEncoderError, ValueError,
            RuntimeError) as e:
        msg = str(e).splitlines()[0] if not isinstance(e, CheckpointError) else str(e)
        notes = "; ".join(getattr(e, "__notes__", ()))  # e.g. where the frames rendered before a failure are
        return _fail(f"{msg}; {notes}" if notes else msg)
    except KeyboardInterrupt:
        return _fail("interrupted; the frames written so far were finalised")
    if result.cancelled:
        done = (f"{args.output} holds the first {result.frames_out} frames" if result.frames_out
                else "nothing was written")
        print(f"cancelled after {result.frames_in} frames: {done}", file=sys.stderr)
        return 130
    if result.has_audio:
        audio = ", with audio"
    elif args.no_audio:
        audio = ""
    else:
        audio = f", no audio ({result.audio_note})" if result.audio_note else ", no audio in the source"
    if result.input_short:
        note = _input_short_note(args, result)
        if not args.allow_partial:
            return _fail(f"{note} (pass --allow-partial to accept a partial input)")
        print(f"warning: {note}", file=sys.stderr)
    st = result.stage_ms
    print(f"wrote {result.output} ({result.frames_out} frames{audio}, {result.fps:.1f} frames/s; per frame: "
          f"encode {st['encode_ms']:.1f} ms, DiT {st['dit_ms']:.1f} ms, cache write {st['cache_write_ms']:.1f} ms, "
          f"decode {st['decode_ms']:.1f} ms)")
    return 0


def cmd_models(args) -> int:
    from model.checkpoint import DEFAULT_MODEL_DIR, CheckpointError, load_model

    if args.action == "check":
        from model.wan_loader import check_wan_folder, folder_kind

        folder = Path(args.dir) if args.dir else DEFAULT_MODEL_DIR
        if folder.is_dir() and folder_kind(folder) == "wan":  # headers only: never loads the weights
            try:
                report = check_wan_folder(folder)
            except CheckpointError as e:
                print(f"FAIL {e}")
                return 1
            print("\n".join(report.lines()))
            return 0 if report.ok else 1
        try:
            m = load_model(folder)
        except CheckpointError as e:
            print(f"FAIL {e}")
            return 1
        n = sum(p.numel() for p in m.dit.parameters())
        print(f"OK {m.folder}: config '{m.config.name}', DiT {n / 1e6:.2f} M parameters, "
              f"{'trained' if m.trained else 'untrained'}")
        return 0
    if args.action == "init":
        import torch

        from model.checkpoint import build_tiny_parts, save_tiny_model
        from model.config import ConfigError, ModelConfig

        try:
            cfg = ModelConfig.named(args.config)
        except ConfigError as e:
            return _fail(str(e))
        if cfg.vae == "wan":  # a folder of public Wan2.1 files: add our config and model card
            from model.wan_loader import init_wan_folder

            try:
                for line in init_wan_folder(args.dir, cfg):
                    print(line)
            except (CheckpointError, OSError) as e:
                return _fail(str(e))
            print(f"next: put the Wan2.1 files in {args.dir}, convert any .pth with `main.py models convert`, "
                  f"then `main.py models check {args.dir}`")
            return 0
        torch.manual_seed(args.seed)
        dit, ae = build_tiny_parts(cfg)
        save_tiny_model(args.dir, cfg, dit, ae, {"name": f"{cfg.name}-random", "trained": False})
        print(f"wrote an untrained '{cfg.name}' model folder to {args.dir}")
        return 0
    if args.action == "convert":
        from model.convert import convert

        if not args.dir or not args.dest:
            return _fail("usage: main.py models convert SRC.pth DST.safetensors")
        try:
            info = convert(args.dir, args.dest, key=args.key, strip_prefix=args.strip_prefix)
        except CheckpointError as e:
            return _fail(str(e).splitlines()[0])
        except OSError as e:
            return _fail(f"cannot write {args.dest}: {e.strerror or e}")
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(info["dtypes"].items()))
        for note in info["notes"]:
            print(f"note: {note}")
        print(f"wrote {info['destination']}: {info['tensors']} tensors ({kinds}), "
              f"{info['parameters'] / 1e6:.1f} M parameters, {info['bytes'] / 2 ** 20:.1f} MiB")
        return 0
    return _fail(f"unknown models action {args.action}")


def cmd_bench(args) -> int:
    from benchmarks.stream_bench import main as bench_main

    return bench_main(args.rest)


def cmd_train(args) -> int:
    from model.train.cli import main as train_main

    return train_main(args.rest)


def cmd_eval(args) -> int:
    from model.train.evaluate import main as eval_main

    return eval_main(args.rest)


def build_parser() -> argparse.ArgumentParser:
    from model.speed import SPEED_PRESETS  # plain data: keeps --help free of torch

    p = _Parser(prog="main.py", description="RTR Studio: real-time video stylization. "
                                "Without a subcommand the desktop app opens.")
    sub = p.add_subparsers(dest="command")

    s = sub.add_parser("stylize", help="stylize a video file into an MP4 (every frame, no drops)")
    s.add_argument("input", help="input video file")
    s.add_argument("-o", "--output", required=True, help="output .mp4")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--style", help="style prompt, e.g. 'ink wash painting'")
    g.add_argument("--reference", help="reference image whose style to follow")
    s.add_argument("--model", help="model folder (default: the embedded model)")
    s.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    s.add_argument("--max-frames", type=int, help="stop after N input frames")
    s.add_argument("--switch", action="append", default=[], metavar="FRAME:STYLE",
                   help="switch style at a frame (120:STYLE) or time (4.5s:STYLE); STYLE may be an image path")
    s.add_argument("--steps", type=int, help="denoising steps (default: the model's)")
    s.add_argument("--strength", type=float, help="style strength in (0, 1]; default: the model card's (1.0)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--no-anchor", action="store_true", help="disable the reference-preserving cache (ablation)")
    s.add_argument("--exact-prompt", action="store_true",
                   help="condition on the prompt as typed, not on the closest style the model was trained on")
    s.add_argument("--speed", choices=list(SPEED_PRESETS),
                   help="speed preset: quality (the model's steps and window), balanced (+ AdaCache slow), "
                        "fast (<= 2 steps, a short window, AdaCache fast); default: the model's settings")
    s.add_argument("--adacache", choices=["off", "slow", "fast"], default=None,
                   help="reuse DiT block residuals across chunks when the source barely moves (default off, "
                        "or the speed preset's)")
    s.add_argument("--layout", choices=["stylized", "side-by-side"], default="stylized",
                   help="the stylized video only, or the source and the stylized video side by side")
    s.add_argument("--no-audio", action="store_true", help="do not copy the source's audio into the output")
    s.add_argument("--allow-partial", action="store_true",
                   help="accept an input that ends before its header says (truncated, corrupt): exit 0, with a warning")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_stylize)

    m = sub.add_parser("models", help="check, create or convert model folders and weights")
    m.add_argument("action", choices=["check", "init", "convert"],
                   help="check DIR | init DIR | convert SRC.pth DST.safetensors")
    m.add_argument("dir", nargs="?", help="model folder (check, init) or source .pth/.pt file (convert)")
    m.add_argument("dest", nargs="?", help="convert: destination .safetensors file")
    m.add_argument("--config", default="tiny", help="config name for init")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--key", help="convert: the entry holding the weights (e.g. generator_ema); default: auto")
    m.add_argument("--strip-prefix", help="convert: remove this prefix from every name (default: auto)")
    m.set_defaults(func=cmd_models)

    b = sub.add_parser("bench", help="streaming benchmark (see benchmarks/stream_bench.py --help)")
    b.add_argument("rest", nargs=argparse.REMAINDER)
    b.set_defaults(func=cmd_bench)

    t = sub.add_parser("train", help="build the data set and train models (see main.py train --help)")
    t.add_argument("rest", nargs=argparse.REMAINDER)
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="quality report on held-out clips (see main.py eval --help)")
    e.add_argument("rest", nargs=argparse.REMAINDER)
    e.set_defaults(func=cmd_eval)
    return p


def opens_gui(argv: list[str]) -> bool:
    """No subcommand (nothing, or only the app's options such as ``--model DIR``): the desktop app opens
    (``app.gui.run_gui``) instead of ``main``."""
    return not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help"))


def main(argv: list[str] | None = None) -> int:
    """Run a headless subcommand; returns the exit status. ``opens_gui(argv)`` says when to open the app instead."""
    argv = list(sys.argv[1:] if argv is None else argv)
    passthrough = {"train": "model.train.cli", "eval": "model.train.evaluate", "bench": "benchmarks.stream_bench"}
    if argv and argv[0] in passthrough:  # these parse their own options
        import importlib

        return importlib.import_module(passthrough[argv[0]]).main(argv[1:]) or 0
    if opens_gui(argv):
        return _fail("no subcommand given (run main.py without one to open the desktop app; main.py -h lists them)")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "models" and args.action == "init" and not args.dir:
        return _fail("models init needs a folder")
    return args.func(args)
