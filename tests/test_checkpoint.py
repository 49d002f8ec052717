"""Model folders are checked tensor by tensor, with every problem named."""
from __future__ import annotations

import shutil

import pytest
import torch
from safetensors.torch import save_file

from model.checkpoint import CheckpointError, load_model, read_header


def copy_folder(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_loads_and_round_trips(random_model_dir, text_encoder):
    m = load_model(random_model_dir, text_encoder=text_encoder)
    assert m.config.name == "tiny" and not m.trained
    assert m.name == "tiny-random"


def test_missing_folder_and_files(tmp_path, random_model_dir, text_encoder):
    with pytest.raises(CheckpointError, match="model folder not found"):
        load_model(tmp_path / "nope", text_encoder=text_encoder)
    d = copy_folder(random_model_dir, tmp_path / "m")
    (d / "vae.safetensors").unlink()
    with pytest.raises(CheckpointError, match="weights file not found.*vae.safetensors"):
        load_model(d, text_encoder=text_encoder)


def test_names_missing_extra_and_misshapen_tensors(tmp_path, random_model_dir, text_encoder):
    d = copy_folder(random_model_dir, tmp_path / "m")
    state = read_header(d / "dit.safetensors")
    from safetensors import safe_open

    with safe_open(str(d / "dit.safetensors"), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in state}
    del tensors["blocks.0.ffn.0.weight"]
    tensors["blocks.1.self_attn.q.weight"] = torch.zeros(3, 3)
    tensors["extra.weight"] = torch.zeros(2)
    tensors["head.head.bias"] = tensors["head.head.bias"].to(torch.int32)
    save_file(tensors, str(d / "dit.safetensors"))
    with pytest.raises(CheckpointError) as e:
        load_model(d, text_encoder=text_encoder)
    msg = str(e.value)
    assert "missing blocks.0.ffn.0.weight" in msg
    assert "wrong shape for blocks.1.self_attn.q.weight: expected [128, 128], found [3, 3]" in msg
    assert "unexpected extra.weight" in msg
    assert "wrong dtype for head.head.bias" in msg


def test_truncated_and_garbage_files(tmp_path, random_model_dir, text_encoder):
    d = copy_folder(random_model_dir, tmp_path / "m")
    data = (d / "dit.safetensors").read_bytes()
    (d / "dit.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_model(d, text_encoder=text_encoder)
    (d / "dit.safetensors").write_bytes(b"hello")
    with pytest.raises(CheckpointError, match="truncated"):
        load_model(d, text_encoder=text_encoder)
    (d / "config.json").write_text("[]")
    with pytest.raises(CheckpointError, match="JSON object"):
        load_model(d, text_encoder=text_encoder)


def _with_config(src, dst, **changes):
    import json

    d = copy_folder(src, dst)
    data = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**data, **changes}))
    return d


@pytest.mark.parametrize("changes, message", [
    ({"dim": "128"}, "dim must be an integer, got '128'"),
    ({"dim": 128.0}, "dim must be an integer, got 128.0"),
    ({"patch_size": 2}, "patch_size must be a list of 3 integers, got 2"),
    ({"patch_size": [1, 2]}, "patch_size must be a list of 3 integers, got [1, 2]"),
    ({"num_heads": 0}, "num_heads must be between 1 and 256, got 0"),
    ({"num_layers": -4}, "num_layers must be between 1 and 256, got -4"),
    ({"resolution": [192000, 320000]}, "resolution must be between 16 and 4096 pixels a side, got [192000, 320000]"),
    ({"resolution": [0, 320]}, "resolution must be between 16 and 4096 pixels a side, got [0, 320]"),
    ({"vae_stride": [1, 0, 8]}, "vae_stride must hold integers between 1 and 64, got [1, 0, 8]"),
    ({"denoising_steps": "1000"}, "denoising_steps must be a list of integer timesteps, got '1000'"),
    ({"shift": "fast"}, "shift must be a number, got 'fast'"),
    ({"shift": 0}, "shift must be between"),
    ({"eps": 1.0}, "eps must be between"),
    ({"source_conditioning": "yes"}, "source_conditioning must be true or false, got 'yes'"),
    ({"name": 7}, "name must be a string, got 7"),
    ({"window_frames": 10 ** 9}, "window_frames must be between 1 and 1024"),
])
def test_config_with_a_wrong_type_or_value_is_named(tmp_path, random_model_dir, text_encoder, changes, message):
    """A config.json value of the wrong type or out of range: one clear CheckpointError, no TypeError or
    ZeroDivisionError from deep inside, and no huge allocation."""
    d = _with_config(random_model_dir, tmp_path / "m", **changes)
    with pytest.raises(CheckpointError) as e:
        load_model(d, text_encoder=text_encoder)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_models_check_names_a_bad_config_and_nan_weights(tmp_path, random_model_dir, capsys):
    from safetensors.torch import load_file

    from app.cli import main

    d = _with_config(random_model_dir, tmp_path / "heads", num_heads=0)
    assert main(["models", "check", str(d)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL") and "num_heads must be between 1 and 256, got 0" in out

    d = copy_folder(random_model_dir, tmp_path / "nan")
    state = load_file(d / "dit.safetensors")
    state["blocks.1.ffn.0.weight"][3, 5] = float("nan")
    state["head.head.bias"][:] = float("inf")
    save_file(state, str(d / "dit.safetensors"))
    assert main(["models", "check", str(d)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL") and "dit.safetensors" in out
    assert "2 tensors hold values that are not finite (NaN or infinite): blocks.1.ffn.0.weight, head.head.bias" in out

    assert main(["models", "check", str(random_model_dir)]) == 0  # the good folder still passes
    assert capsys.readouterr().out.startswith("OK")
