"""Wan2.1-layout model folders: checked tensor by tensor, loaded without a second copy in memory.

A folder laid out like the public Wan2.1-T2V-1.3B release (plus our ``config.json``)::

    config.json                                   ModelConfig with vae "wan", text_encoder "umt5"
    model_card.json                               optional: name, trained, default_strength (SDEdit)
    wan_components.json                           optional: VAE / umT5 shapes when not the published ones
    diffusion_pytorch_model.safetensors           the DiT (or -0000i-of-0000n shards + .index.json)
    Wan2.1_VAE.safetensors | Wan2.1_VAE.pth       the 3-D causal VAE
    models_t5_umt5-xxl-enc-bf16.safetensors|.pth  the umT5-XXL encoder
    google/umt5-xxl/tokenizer.json                its tokenizer

``check_wan_folder`` reads only safetensors headers and, for ``.pth`` files, a weights-only load on the
meta device, and names every missing, unexpected or misshapen tensor. ``load_wan_folder`` loads only
``.safetensors`` (a ``.pth`` is converted once with ``main.py models convert``). The DiT's RTR extras
(``source_embedding``, ``ref_adapter``) may be absent: a plain Wan or Self-Forcing checkpoint then runs
as a text-to-video model used video-to-video through the stylizer's strength (SDEdit), with the source
embedding at zero and the reference adapter freshly initialised.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
from safetensors import safe_open

from .checkpoint import CheckpointError, LoadedModel, compare_tensors, expected_shapes, read_header
from .config import ConfigError, ModelConfig
from .umt5 import TOKENIZER_SUBPATH, UMT5Config, UMT5Encoder, UMT5TextEncoder, load_tokenizer
from .wan_vae import WanCodec, WanVAE, WanVAEConfig

DIT_STEM = "diffusion_pytorch_model"
DIT_INDEX = f"{DIT_STEM}.safetensors.index.json"
VAE_STEM = "Wan2.1_VAE"
T5_STEM = "models_t5_umt5-xxl-enc-bf16"
COMPONENTS_FILE = "wan_components.json"
CARD_FILE = "model_card.json"
OPTIONAL_DIT = ("source_embedding", "ref_adapter")
DEFAULT_CONFIG = "wan-1.3b"
DEFAULT_STRENGTH = 0.6  # SDEdit start for a text-to-video checkpoint used video-to-video
PICKLE_SUFFIXES = (".pth", ".pt")


# --------------------------------------------------------------------------- folder description
@dataclass
class WanSpec:
    config: ModelConfig
    vae: WanVAEConfig
    umt5: UMT5Config
    assumed: str = ""  # why the config was assumed rather than read from our config.json ("" if it was read)


RELEASE_CONFIG = "wan_release_config.json"  # where `models init` moves the release's own config.json


def is_release_config(data) -> bool:
    """The public release's own config.json (``"_class_name": "WanModel"``), not our ModelConfig."""
    return isinstance(data, dict) and (data.get("_class_name") == "WanModel"
                                       or ("model_type" in data and "in_dim" in data and "vae" not in data))


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def config_from_release(data: dict) -> tuple[ModelConfig, list[str]]:
    """wan-1.3b (our streaming defaults) with the DiT shape of a release config.json."""
    problems = []
    if data.get("model_type", "t2v") != "t2v":
        problems.append(f"config.json: model_type {data.get('model_type')!r} is not supported "
                        "(text-to-video 't2v' only)")
    if data.get("in_dim", 16) != data.get("out_dim", data.get("in_dim", 16)):
        problems.append("config.json: in_dim and out_dim differ; the stylizer needs them equal")
    keys = {"dim": "dim", "ffn_dim": "ffn_dim", "freq_dim": "freq_dim", "num_heads": "num_heads",
            "num_layers": "num_layers", "text_len": "text_len", "eps": "eps", "in_dim": "latent_channels"}
    changes = {ours: data[theirs] for theirs, ours in keys.items() if theirs in data}
    try:
        return ModelConfig.named(DEFAULT_CONFIG).replace(**changes), problems
    except (ConfigError, TypeError) as e:
        return ModelConfig.named(DEFAULT_CONFIG), problems + [f"config.json: {e}"]


def folder_kind(folder: str | Path) -> str | None:
    """'wan' for a Wan-layout folder, 'tiny' for a tiny one, None when it is neither."""
    folder = Path(folder)
    cfg = folder / "config.json"
    if cfg.is_file():
        data = _read_json(cfg)
        if is_release_config(data) or (isinstance(data, dict) and data.get("vae") == "wan"):
            return "wan"
        if isinstance(data, dict) and data.get("vae", "tiny") == "tiny":
            return "tiny"
    markers = [DIT_INDEX, f"{VAE_STEM}.safetensors", f"{VAE_STEM}.pth", f"{T5_STEM}.safetensors", f"{T5_STEM}.pth"]
    if any((folder / m).exists() for m in markers) or any(folder.glob(f"{DIT_STEM}*.safetensors")):
        return "wan"
    return "tiny" if cfg.is_file() else None


def read_spec(folder: Path, config: ModelConfig | None = None) -> tuple[WanSpec | None, list[str]]:
    problems: list[str] = []
    assumed = ""
    if config is None:
        path = folder / "config.json"
        data = _read_json(path) if path.is_file() else None
        if is_release_config(data):
            config, problems = config_from_release(data)
            assumed = (f"config.json is the Wan release's own; {DEFAULT_CONFIG} streaming settings assumed. "
                       f"Loading needs ours: python main.py models init {folder} --config {DEFAULT_CONFIG}")
        elif path.is_file():
            try:
                config = ModelConfig.load(path)
            except ConfigError as e:
                return None, [f"config.json: {e}"]
        else:
            config = ModelConfig.named(DEFAULT_CONFIG)
            assumed = (f"the folder has no config.json; {DEFAULT_CONFIG} assumed. Loading needs one: "
                       f"python main.py models init {folder} --config {DEFAULT_CONFIG}")
    if config.vae != "wan":
        problems.append(f"config.json: vae is {config.vae!r}; a Wan-layout folder needs 'wan'")
    if config.text_encoder != "umt5":
        problems.append(f"config.json: text_encoder is {config.text_encoder!r}; a Wan-layout folder needs 'umt5'")
    vae_cfg, t5_cfg = WanVAEConfig(), UMT5Config()
    comp = folder / COMPONENTS_FILE
    if comp.is_file():
        try:
            data = json.loads(comp.read_text())
            vae_cfg = WanVAEConfig.from_dict(data.get("vae", {}))
            t5_cfg = UMT5Config.from_dict(data.get("umt5", {}))
        except (json.JSONDecodeError, ValueError, TypeError, AttributeError) as e:
            return None, problems + [f"{COMPONENTS_FILE}: {e}"]
    if vae_cfg.z_dim != config.latent_channels:
        problems.append(f"the VAE has {vae_cfg.z_dim} latent channels, the DiT expects {config.latent_channels}")
    stride = (vae_cfg.temporal_stride, vae_cfg.spatial_stride, vae_cfg.spatial_stride)
    if stride != tuple(config.vae_stride):
        problems.append(f"the VAE compresses by {list(stride)}, config.json says vae_stride {list(config.vae_stride)}")
    if t5_cfg.dim != config.text_dim:
        problems.append(f"the umT5 encoder outputs {t5_cfg.dim} features, the DiT expects text_dim {config.text_dim}")
    return WanSpec(config, vae_cfg, t5_cfg, assumed), problems


def build_parts(spec: WanSpec, device="meta"):
    """DiT, VAE and umT5 encoder for a spec (on the meta device by default: shapes only)."""
    from .dit import CausalDiT

    with torch.device(device):
        return CausalDiT(spec.config), WanVAE(spec.vae), UMT5Encoder(spec.umt5)


# --------------------------------------------------------------------------- files and headers
def dit_files(folder: Path) -> tuple[list[Path], dict[str, str] | None, list[str]]:
    """The DiT's safetensors files (from the shard index when there is one)."""
    index = folder / DIT_INDEX
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
            if not isinstance(weight_map, dict):
                raise TypeError("weight_map is not an object")
        except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as e:
            return [], None, [f"{index.name} is not a valid shard index ({e})"]
        names = sorted(set(weight_map.values()))
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            return [], weight_map, [f"{index.name} lists shard files that are missing: {', '.join(missing)}"]
        return [folder / n for n in names], weight_map, []
    files = sorted(p for p in folder.glob(f"{DIT_STEM}*.safetensors") if p.is_file())
    if not files:
        pickles = [p.name for p in folder.glob(f"{DIT_STEM}*") if p.suffix in PICKLE_SUFFIXES]
        hint = f" (found {pickles[0]}: convert it with `main.py models convert`)" if pickles else ""
        return [], None, [f"no DiT weights: expected {DIT_STEM}.safetensors or sharded "
                          f"{DIT_STEM}-0000i-of-0000n.safetensors with {DIT_INDEX}{hint}"]
    return files, None, []


def component_file(folder: Path, stem: str) -> Path | None:
    for suffix in (".safetensors", ".pth", ".pt"):
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    return None


def file_header(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    if path.suffix in PICKLE_SUFFIXES:
        from .convert import pth_header

        return pth_header(path)
    return read_header(path)


def dit_header(folder: Path) -> tuple[dict, list[Path], list[str]]:
    files, weight_map, problems = dit_files(folder)
    found: dict = {}
    for f in files:
        try:
            header = read_header(f)
        except CheckpointError as e:
            problems.append(str(e))
            continue
        for name, info in header.items():
            if name in found:
                problems.append(f"{name} is stored twice (again in {f.name})")
            found[name] = info
            if weight_map is not None and weight_map.get(name) != f.name:
                problems.append(f"{name} is in {f.name} but the shard index says {weight_map.get(name)}")
    if weight_map is not None and not problems:
        for name, fname in weight_map.items():
            if name not in found:
                problems.append(f"the shard index lists {name} in {fname}, which does not hold it")
    return found, files, problems


# --------------------------------------------------------------------------- check
@dataclass
class ComponentCheck:
    name: str
    files: list[str] = field(default_factory=list)
    tensors: int = 0
    parameters: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class WanCheckReport:
    folder: Path
    config_name: str | None
    assumed: str
    problems: list[str]
    components: list[ComponentCheck]

    @property
    def ok(self) -> bool:
        return not self.problems and all(c.ok for c in self.components)

    def all_problems(self) -> list[str]:
        return list(self.problems) + [f"{c.name}: {p}" for c in self.components for p in c.problems]

    def lines(self) -> list[str]:
        cfg = f"config '{self.config_name}'" if self.config_name else "no usable config"
        n = len(self.all_problems())
        head = f"OK {self.folder}: Wan layout, {cfg}" if self.ok else \
            f"FAIL {self.folder}: Wan layout, {cfg}: {n} problem{'s' if n != 1 else ''}"
        out = [head] + ([f"  note: {self.assumed}"] if self.assumed else []) + [f"  {p}" for p in self.problems]
        for c in self.components:
            where = ", ".join(c.files) or "no file"
            if c.ok and not c.tensors:
                out.append(f"  {c.name}: OK ({where})")
            elif c.ok:
                out.append(f"  {c.name}: OK, {c.tensors} tensors, {_human(c.parameters)} parameters ({where})")
            else:
                out.append(f"  {c.name}: FAIL ({where})")
                out.extend(f"    {p}" for p in c.problems)
            out.extend(f"    note: {note}" for note in c.notes)
        return out


def _human(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return str(n)


def _count(found: dict, expected: dict) -> tuple[int, int]:
    names = [n for n in found if n in expected]
    total = 0
    for n in names:
        p = 1
        for s in found[n][0]:
            p *= s
        total += p
    return len(names), total


def _check_weights(name: str, expected: dict, found: dict, files: list[Path], problems: list[str],
                   optional: tuple[str, ...] = ()) -> ComponentCheck:
    comp = ComponentCheck(name, [f.name for f in files], problems=list(problems))
    if found or not problems:
        comp.problems += compare_tensors(expected, found, optional)
    comp.tensors, comp.parameters = _count(found, expected)
    return comp


def check_wan_folder(folder: str | Path, config: ModelConfig | None = None) -> WanCheckReport:
    """Check a Wan-layout folder from file headers only (no tensor data is read)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"model folder not found: {folder}")
    spec, problems = read_spec(folder, config)
    if spec is None:
        return WanCheckReport(folder, None, "", problems, [])
    dit_m, vae_m, t5_m = build_parts(spec)
    comps = []

    found, files, file_problems = dit_header(folder)
    dit = _check_weights("dit", expected_shapes(dit_m), found, files, file_problems, OPTIONAL_DIT)
    for group in OPTIONAL_DIT:
        names = [n for n in expected_shapes(dit_m) if n.startswith(group + ".")]
        have = [n for n in names if n in found]
        if names and not have:
            dit.notes.append(f"{group} absent: it starts {'at zero' if group == 'source_embedding' else 'untrained'}"
                             " (plain Wan/Self-Forcing checkpoint; used video-to-video through the strength)")
        elif names and len(have) < len(names):
            dit.problems.append(f"{group} is incomplete: {len(names) - len(have)} of its {len(names)} "
                                "tensors are missing")
    comps.append(dit)

    for cname, stem, module in (("vae", VAE_STEM, vae_m), ("text encoder", T5_STEM, t5_m)):
        path = component_file(folder, stem)
        if path is None:
            comps.append(ComponentCheck(cname, problems=[f"missing {stem}.safetensors (or the public {stem}.pth)"]))
            continue
        try:
            header, err = file_header(path), []
        except CheckpointError as e:
            header, err = {}, [str(e)]
        comp = _check_weights(cname, expected_shapes(module), header, [path], err)
        if path.suffix in PICKLE_SUFFIXES and comp.ok:
            comp.notes.append(f"{path.name} is a pickle: convert it once before loading: "
                              f"python main.py models convert {path} {path.with_suffix('.safetensors')}")
        comps.append(comp)

    tok = ComponentCheck("tokenizer", [TOKENIZER_SUBPATH.as_posix()])
    try:
        tokenizer = load_tokenizer(folder / TOKENIZER_SUBPATH)
        vocab = tokenizer.get_vocab_size()
        tok.tensors, tok.parameters = 0, 0
        if tokenizer.token_to_id("</s>") is None:
            tok.problems.append("the tokenizer has no '</s>' token")
        if vocab > spec.umt5.vocab:
            tok.problems.append(f"the tokenizer has {vocab} tokens, the encoder's embedding only {spec.umt5.vocab}")
        tok.notes.append(f"vocabulary of {vocab} tokens")
    except Exception as e:  # noqa: BLE001 - TextEncoderError or anything the tokenizers package raises
        tok.problems.append(str(e).splitlines()[0])
    comps.append(tok)
    return WanCheckReport(folder, spec.config.name, spec.assumed, problems, comps)


# --------------------------------------------------------------------------- load
def _read_tensors(files: list[Path], device, dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    state = {}
    dev = str(torch.device(device))
    for f in files:
        try:
            with safe_open(str(f), framework="pt", device=dev) as fh:
                for name in fh.keys():
                    t = fh.get_tensor(name)
                    state[name] = t.to(dtype) if dtype is not None and t.is_floating_point() else t
        except Exception as e:  # noqa: BLE001 - a corrupt payload behind a valid header
            raise CheckpointError(f"{f} could not be read: {str(e).splitlines()[0]}") from None
    return state


def _assign(module: nn.Module, state: dict, what: str, optional: tuple[str, ...] = ()) -> list[str]:
    result = module.load_state_dict(state, strict=False, assign=True)
    missing = [k for k in result.missing_keys if not k.startswith(optional)]
    if missing or result.unexpected_keys:
        raise CheckpointError(f"{what} does not match the model (run `main.py models check`): "
                              f"missing {missing[:3]}, unexpected {result.unexpected_keys[:3]}")
    return list(result.missing_keys)


def _materialize_extras(dit: nn.Module, cfg: ModelConfig, missing: list[str], device, dtype) -> None:
    """Create the RTR extras a plain Wan checkpoint lacks, initialised as the DiT's constructor does."""
    from .dit import ReferenceAdapter

    groups = {k.split(".")[0] for k in missing}
    if "source_embedding" in groups:
        conv = nn.Conv3d(cfg.latent_channels, cfg.dim, kernel_size=cfg.patch_size, stride=cfg.patch_size,
                         device=device, dtype=dtype)
        nn.init.zeros_(conv.weight)
        nn.init.zeros_(conv.bias)
        dit.source_embedding = conv
    if "ref_adapter" in groups:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            dit.ref_adapter = ReferenceAdapter(cfg).to(device=device, dtype=dtype)


def load_wan_folder(folder: str | Path, config: ModelConfig | None = None, device="cpu", dtype=torch.float32,
                    text_device="cpu", text_dtype: torch.dtype | None = None) -> LoadedModel:
    """Load a checked Wan-layout folder. The umT5 encoder stays on ``text_device`` (CPU by default) in
    its stored precision unless ``text_dtype`` is given; its embeddings are moved by the stylizer."""
    folder = Path(folder)
    report = check_wan_folder(folder, config)
    problems = report.all_problems()
    for c in report.components:
        if c.ok and any(f.endswith(PICKLE_SUFFIXES) for f in c.files):
            problems.append(next(n for n in c.notes if "convert" in n))
    if problems:
        more = f"\n  (and {len(problems) - 40} more: run `main.py models check {folder}`)" if len(problems) > 40 else ""
        raise CheckpointError(f"invalid model folder {folder}:\n  " + "\n  ".join(problems[:40]) + more)
    spec, _ = read_spec(folder, config)
    dit, vae, t5 = build_parts(spec)

    files, _, _ = dit_files(folder)
    missing = _assign(dit, _read_tensors(files, device, dtype), "the DiT weights", OPTIONAL_DIT)
    _materialize_extras(dit, spec.config, missing, device, dtype)
    _assign(vae, _read_tensors([component_file(folder, VAE_STEM)], device, dtype), VAE_STEM)
    _assign(t5, _read_tensors([component_file(folder, T5_STEM)], text_device, text_dtype), T5_STEM)
    for name, module in (("DiT", dit), ("VAE", vae), ("umT5", t5)):
        if any(t.is_meta for t in (*module.parameters(), *module.buffers())):
            raise CheckpointError(f"{folder}: the {name} was left with uninitialised tensors")
    dit = dit.eval().requires_grad_(False)
    vae = vae.eval().requires_grad_(False)
    text = UMT5TextEncoder(t5, load_tokenizer(folder / TOKENIZER_SUBPATH), spec.config.text_len)
    return LoadedModel(folder, spec.config, dit, WanCodec(vae), text, read_card(folder))


def read_card(folder: Path) -> dict:
    path = folder / CARD_FILE
    card = {}
    if path.is_file():
        try:
            card = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CheckpointError(f"{path} is not valid JSON: {e}") from None
        if not isinstance(card, dict):
            raise CheckpointError(f"{path} must hold a JSON object")
    card.setdefault("name", folder.name)
    card.setdefault("trained", True)
    card.setdefault("default_strength", DEFAULT_STRENGTH)
    return card


# --------------------------------------------------------------------------- init / save
def init_wan_folder(folder: str | Path, config: ModelConfig) -> list[str]:
    """Write our config.json (and a model card) into a folder holding the public Wan files.

    The release's own config.json, if present, is kept as ``wan_release_config.json``; its DiT shape
    overrides ``config``'s. Returns what was done, for the CLI.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    done = []
    path = folder / "config.json"
    data = _read_json(path) if path.is_file() else None
    if is_release_config(data):
        released, problems = config_from_release(data)
        if problems:
            raise CheckpointError("; ".join(problems))
        config = config.replace(**{k: getattr(released, k) for k in
                                   ("dim", "ffn_dim", "freq_dim", "num_heads", "num_layers", "text_len", "eps",
                                    "latent_channels")})
        path.replace(folder / RELEASE_CONFIG)
        done.append(f"kept the release's config.json as {RELEASE_CONFIG}")
    elif path.is_file():
        raise CheckpointError(f"{path} already exists; remove it first to write a new one")
    config.save(path)
    done.append(f"wrote config.json ('{config.name}')")
    if not (folder / CARD_FILE).exists():
        card = {"name": folder.name, "trained": True, "default_strength": DEFAULT_STRENGTH,
                "note": "text-to-video weights used video-to-video: SDEdit from the source latent at this strength"}
        (folder / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
        done.append(f"wrote {CARD_FILE} (default strength {DEFAULT_STRENGTH})")
    return done


# --------------------------------------------------------------------------- save
def _state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}


def save_wan_folder(folder: str | Path, config: ModelConfig, dit: nn.Module, vae: WanVAE, umt5: UMT5Encoder,
                    tokenizer_json: str | Path, card: dict | None = None, dit_shards: int = 1,
                    include_extras: bool = True) -> Path:
    """Write a Wan-layout folder (e.g. an RTR fine-tune, or a reduced test model)."""
    from .convert import write_safetensors

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config.save(folder / "config.json")
    comps = {}
    if vae.cfg != WanVAEConfig():
        comps["vae"] = vae.cfg.to_dict()
    if umt5.cfg != UMT5Config():
        comps["umt5"] = umt5.cfg.to_dict()
    if comps:
        (folder / COMPONENTS_FILE).write_text(json.dumps(comps, indent=2) + "\n")
    state = _state(dit)
    if not include_extras:
        state = {k: v for k, v in state.items() if not k.startswith(OPTIONAL_DIT)}
    names = sorted(state)
    if dit_shards <= 1:
        write_safetensors(state, folder / f"{DIT_STEM}.safetensors")
    else:
        weight_map = {}
        per = -(-len(names) // dit_shards)
        for i in range(dit_shards):
            fname = f"{DIT_STEM}-{i + 1:05d}-of-{dit_shards:05d}.safetensors"
            part = {n: state[n] for n in names[i * per:(i + 1) * per]}
            write_safetensors(part, folder / fname)
            weight_map.update({n: fname for n in part})
        index = {"metadata": {"total_size": sum(v.numel() * v.element_size() for v in state.values())},
                 "weight_map": weight_map}
        (folder / DIT_INDEX).write_text(json.dumps(index, indent=2) + "\n")
    write_safetensors(_state(vae), folder / f"{VAE_STEM}.safetensors")
    write_safetensors(_state(umt5), folder / f"{T5_STEM}.safetensors")
    tok_dst = folder / TOKENIZER_SUBPATH
    tok_dst.parent.mkdir(parents=True, exist_ok=True)
    if Path(tokenizer_json).resolve() != tok_dst.resolve():
        shutil.copyfile(tokenizer_json, tok_dst)
    card = dict(card or {})
    card.setdefault("name", folder.name)
    card.setdefault("default_strength", DEFAULT_STRENGTH)
    (folder / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
    return folder
