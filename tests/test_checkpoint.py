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
