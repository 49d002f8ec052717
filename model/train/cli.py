"""``main.py train <stage>``: each stage of the pipeline is one command (runs under torchrun too)."""
from __future__ import annotations

import sys

STAGES = {
    "data": ("model.train.data", "build the synthetic clip data set"),
    "targets": ("model.train.target_agreement", "measure how closely a data set's targets agree with the styles"),
    "vae": ("model.train.autoencoder", "train the tiny per-frame autoencoder"),
    "codec": ("model.train.codec", "train the source-guided codec (full-resolution output)"),
    "decoder": ("model.train.decoder", "fit a guided codec's decoder to the latents its DiT produces"),
    "palette": ("model.train.palette", "fit reference mode's colour map to a data set's reference clips"),
    "latents": ("model.train.latents", "encode clips and their stylized targets once, for the DiT stages"),
    "teacher": ("model.train.stages", "stage 1: bidirectional teacher, flow matching"),
    "student": ("model.train.stages", "stage 2: causal few-step student on the fixed timestep list"),
    "dmd": ("model.train.stages", "stage 3: Self Forcing rollouts + Distribution Matching Distillation"),
    "resources": ("model.train.make_resources", "regenerate the gallery thumbnails and the sample clip"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in STAGES:
        print("usage: main.py train STAGE [options]\n\nstages:")
        for name, (_, text) in STAGES.items():
            print(f"  {name:10s} {text}")
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    import importlib

    module = importlib.import_module(STAGES[argv[0]][0])
    if module.__name__.endswith("stages"):
        return module.main(argv[0], argv[1:])
    return module.main(argv[1:]) or 0
