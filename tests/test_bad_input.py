"""The bad-input catalogue: every way a hostile but fair user can get ``main.py stylize`` wrong, with
the one-line error it must give. Each row is run in-process against the same setting: a real clip,
a small real model, and an output file from an earlier render that must come through untouched
(a refused command never opens its output for writing). The next case is one line to add.

A row is ``(id, changes, expected)``: ``changes`` edits the base command
``stylize CLIP -o OUT --style ink --model MODEL -q`` (``{"-o": X}`` replaces an option's value,
``{"+": [...]}`` appends arguments, ``{"-": "--style"}`` drops an option and its value); ``{clip}``,
``{out}``, ``{dir}`` (the test's folder) and ``{model}`` are filled in. ``expected`` must appear in
the single ``error:`` line.
"""
from __future__ import annotations

import json
import os
import shutil

import pytest

from app.cli import main

LONG_PROMPT = "x" * 100_000

CASES = [
    # --- finding 1: the output is one of the inputs (any spelling of the path)
    ("output-is-input", {"-o": "{clip}"}, "is the input video"),
    ("output-is-input-dotted", {"-o": "{dir}/sub/../clip.mp4"}, "is the input video"),
    ("output-is-input-symlink", {"-o": "{dir}/link.mp4"}, "is the input video"),
    ("output-is-input-hardlink", {"-o": "{dir}/hard.mp4"}, "is the input video"),
    ("output-is-reference", {"-": "--style", "+": ["--reference", "{dir}/ref.mp4"], "-o": "{dir}/ref.mp4"},
     "is the --reference image"),
    ("output-is-switch-image", {"+": ["--switch", "4:{dir}/frame.png"], "-o": "{dir}/frame.png"},
     "the output must be an .mp4 file"),
    # --- finding 2: every --switch is parsed and its image read before anything else
    ("switch-image-missing", {"+": ["--switch", "100:{dir}/typo.png"]}, "reference image not found"),
    ("switch-image-broken", {"+": ["--switch", "5:{dir}/broken.png"]}, "not an image"),
    ("switch-second-of-two-bad", {"+": ["--switch", "2:pencil sketch", "--switch", "9:{dir}/typo.png"]},
     "--switch '9:"),
    ("switch-inf-seconds", {"+": ["--switch", "infs:pencil sketch"]}, "'infs' is not a frame number"),
    ("switch-nan-seconds", {"+": ["--switch", "nans:pencil sketch"]}, "'nans' is not a frame number"),
    ("switch-negative-frame", {"+": ["--switch", "-3:pencil sketch"]}, "'-3' is not a frame number"),
    ("switch-no-style", {"+": ["--switch", "12"]}, "--switch expects FRAME:STYLE"),
    ("switch-empty-style", {"+": ["--switch", "12:  "]}, "--switch expects FRAME:STYLE"),
    # --- finding 5: values out of range, named with the range allowed
    ("strength-zero", {"+": ["--strength", "0"]}, "--strength must be in (0, 1], got 0"),
    ("strength-negative", {"+": ["--strength", "-1"]}, "--strength must be in (0, 1], got -1"),
    ("strength-nan", {"+": ["--strength", "nan"]}, "--strength must be in (0, 1], got nan"),
    ("strength-two", {"+": ["--strength", "2"]}, "--strength must be in (0, 1], got 2"),
    ("strength-inf", {"+": ["--strength", "inf"]}, "--strength must be in (0, 1], got inf"),
    ("strength-text", {"+": ["--strength", "strong"]}, "argument --strength: invalid float value: 'strong'"),
    ("steps-zero", {"+": ["--steps", "0"]}, "--steps must be between 1 and 1000, got 0"),
    ("steps-negative", {"+": ["--steps", "-2"]}, "--steps must be between 1 and 1000, got -2"),
    ("steps-huge", {"+": ["--steps", "5000"]}, "--steps must be between 1 and 1000, got 5000"),
    ("max-frames-zero", {"+": ["--max-frames", "0"]}, "--max-frames must be >= 1, got 0"),
    ("max-frames-negative", {"+": ["--max-frames", "-1"]}, "--max-frames must be >= 1, got -1"),
    ("seed-negative", {"+": ["--seed", "-1"]}, "--seed must be between 0 and 2**64 - 1, got -1"),
    ("seed-huge", {"+": ["--seed", str(2 ** 70)]}, "--seed must be between 0 and 2**64 - 1"),
    ("device-unknown", {"+": ["--device", "toaster"]}, "--device 'toaster' is not a device"),
    ("empty-prompt", {"--style": "   "}, "the style prompt is empty"),
    ("no-style", {"-": "--style"}, "give a style: --style TEXT or --reference IMAGE"),
    ("long-prompt-with-typo-switch", {"--style": LONG_PROMPT, "+": ["--switch", "3:{dir}/typo.png"]},
     "reference image not found"),
    # --- paths
    ("input-missing", {"input": "{dir}/nope.mp4"}, "input file not found"),
    ("input-not-video", {"input": "{dir}/notes.mp4"}, "not a readable video"),
    ("reference-missing", {"-": "--style", "+": ["--reference", "{dir}/nope.png"]}, "reference image not found"),
    ("output-not-mp4", {"-o": "{dir}/out.avi"}, "the output must be an .mp4 file"),
    ("output-folder-missing", {"-o": "{dir}/missing/out.mp4"}, "output folder does not exist"),
    ("output-is-folder", {"-o": "{dir}/folder.mp4"}, "is a folder"),
    ("output-read-only", {"-o": "{dir}/locked.mp4"}, "is read-only"),
    # --- finding 4: the model folder's config.json, type and range of every field
    ("config-dim-string", {"config": {"dim": "128"}}, "dim must be an integer, got '128'"),
    ("config-patch-size-int", {"config": {"patch_size": 2}}, "patch_size must be a list of 3 integers, got 2"),
    ("config-num-heads-zero", {"config": {"num_heads": 0}}, "num_heads must be between 1 and"),
    ("config-resolution-absurd", {"config": {"resolution": [192000, 320000]}}, "resolution must be"),
    ("config-resolution-string", {"config": {"resolution": "192x320"}}, "resolution must be a list of 2 integers"),
    ("config-steps-mixed", {"config": {"denoising_steps": [1000, "500"]}}, "denoising_steps must be"),
    ("config-eps-negative", {"config": {"eps": -1}}, "eps must be"),
    ("config-shift-nan", {"config": {"shift": float("nan")}}, "shift must be"),
    ("config-layers-bool", {"config": {"num_layers": True}}, "num_layers must be an integer, got true"),
    ("config-not-object", {"config": [1, 2]}, "must hold a JSON object"),
    ("weights-nan", {"weights": "nan"}, "not finite"),
]


@pytest.fixture
def setting(tmp_path, sample_video, random_model_dir):
    """The folder every row runs in: the clip, an earlier render at the output path, odd files."""
    import cv2
    import numpy as np

    clip = tmp_path / "clip.mp4"
    shutil.move(sample_video, clip)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"an earlier render the user wants to keep")
    (tmp_path / "sub").mkdir()
    os.symlink(clip, tmp_path / "link.mp4")
    os.link(clip, tmp_path / "hard.mp4")
    image = np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "frame.png"), image)
    ok, png = cv2.imencode(".png", image)
    (tmp_path / "ref.mp4").write_bytes(png.tobytes())  # an image named .mp4: OpenCV decodes it by content
    (tmp_path / "broken.png").write_bytes(b"\x89PNG broken")
    (tmp_path / "notes.mp4").write_text("not a video")
    (tmp_path / "folder.mp4").mkdir()
    locked = tmp_path / "locked.mp4"
    locked.write_bytes(b"a file the user protected")
    locked.chmod(0o444)
    return {"clip": clip, "out": out, "dir": tmp_path, "model": random_model_dir}


def _model_with(base, folder, config=None, weights=None):
    """A copy of the small model with its config.json changed (or its DiT weights made NaN)."""
    shutil.copytree(base, folder)
    if config is not None:
        data = json.loads((folder / "config.json").read_text())
        data = {**data, **config} if isinstance(config, dict) else config
        (folder / "config.json").write_text(json.dumps(data))
    if weights == "nan":
        import torch
        from safetensors.torch import load_file, save_file

        state = load_file(folder / "dit.safetensors")
        save_file({k: torch.full_like(v, float("nan")) for k, v in state.items()}, folder / "dit.safetensors")
    return folder


def build_args(setting, changes) -> list[str]:
    fill = {k: str(v) for k, v in setting.items()}
    opts = {"input": "{clip}", "-o": "{out}", "--style": "ink", "--model": "{model}"}
    if "config" in changes or "weights" in changes:
        folder = _model_with(setting["model"], setting["dir"] / "bad-model", changes.get("config"),
                             changes.get("weights"))
        opts["--model"] = str(folder)
    for key, value in changes.items():
        if key in opts:
            opts[key] = value
    if changes.get("-") in opts:
        del opts[changes["-"]]
    args = ["stylize", opts.pop("input").format(**fill)]
    for key, value in opts.items():
        args += [key, value.format(**fill) if value is not LONG_PROMPT else value]
    return args + [a.format(**fill) for a in changes.get("+", [])] + ["-q"]


def run_cli(args, capsys) -> tuple[int, str]:
    try:
        rc = main(args)
    except SystemExit as e:  # argparse
        rc = e.code
    return rc, capsys.readouterr().err


@pytest.mark.parametrize("changes, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_catalogue(setting, changes, expected, capsys):
    before = {p.name: p.read_bytes() for p in setting["dir"].iterdir() if p.is_file() and not p.is_symlink()}
    rc, err = run_cli(build_args(setting, changes), capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, err[-2000:]
    assert "Traceback" not in err
    assert lines and lines[-1].startswith("error: "), err[-2000:]
    assert expected in lines[-1], lines[-1][:2000]
    assert len(lines[-1]) < 400, "the error line must stay one readable line"
    assert not any(line.startswith("error: ") for line in lines[:-1])
    after = {p.name: p.read_bytes() for p in setting["dir"].iterdir() if p.is_file() and not p.is_symlink()}
    assert after == before, "a refused command must leave every file as it was"


def test_a_long_prompt_is_never_echoed_in_full(sample_video, tmp_path, capsys, one_torch_thread):
    """A 100,000-character prompt is matched to a trained style and the note names it by an excerpt."""
    out = tmp_path / "o.mp4"
    rc, err = run_cli(["stylize", str(sample_video), "-o", str(out), "--style", "ink wash " + LONG_PROMPT,
                       "--max-frames", "2", "-q"], capsys)  # the embedded model: it lists its styles
    assert rc == 0, err[-500:]
    assert "style 'ink wash xxx" in err and "->" in err  # the match note is still there
    assert len(err) < 1000, f"{len(err)} characters on stderr"
