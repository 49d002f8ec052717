"""StreamStylizer: the one stateful object the app, the CLI and scripts talk to.

Frames (uint8 RGB, any size) go in, stylized frames (uint8 RGB at the working resolution) come out,
chunk by chunk: encode -> few-step denoise against the rolling KV cache -> clean pass that writes the
cache (skipped when the window holds only the current chunk: nothing would read it) -> decode. A style
change between chunks resets the cross-attention cache, keeps the last frame in the self-attention
cache and anchors a new reference image if one is given.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from .adacache import AdaCache
from .build import default_dtype
from .checkpoint import CheckpointError, LoadedModel, load_model
from .guided_codec import GuidedCodec
from .palette import ReferencePalette
from .schedule import FlowSchedule
from .smoothing import LatentSmoother
from .speed import SpeedSettings, speed_settings
from .style import StyleSpec

NOISE_MODES = ("fresh", "fixed")
MAX_OUTPUT = (720, 1280)  # a guided model renders at the source's size, shrunk to fit this (short, long side)


def output_size(h: int, w: int) -> tuple[int, int]:
    """The size a source-size (guided) model renders an h x w frame at: shrunk to fit MAX_OUTPUT, never
    enlarged."""
    f = min(1.0, MAX_OUTPUT[0] / min(h, w), MAX_OUTPUT[1] / max(h, w))
    return (h, w) if f == 1.0 else (max(16, round(h * f)), max(16, round(w * f)))


def working_size(h: int, w: int, min_side: int) -> tuple[int, int]:
    """The size a guided model stylizes an ``output_size`` frame at: enlarged so that its short side is at
    least ``min_side`` (a 160x120 camera would give the DiT a 10x8 latent, 4x5 tokens for a whole face),
    else the frame's own."""
    f = min(max(1.0, min_side / min(h, w)), MAX_OUTPUT[0] / min(h, w), MAX_OUTPUT[1] / max(h, w))
    return (h, w) if f <= 1.0 else (round(h * f), round(w * f))


def at_output_size(frame: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """``frame`` resized to ``size`` (default: its ``output_size``); unchanged when it already has it."""
    h, w = size or output_size(*frame.shape[:2])
    if (h, w) == frame.shape[:2]:
        return frame
    interp = cv2.INTER_AREA if h < frame.shape[0] else cv2.INTER_LINEAR
    return cv2.resize(frame, (w, h), interpolation=interp)


class StyleError(ValueError):
    """A style that cannot be applied (empty prompt, unreadable reference image)."""


def fit_frame(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize to cover (height, width) keeping the aspect ratio, then centre-crop."""
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 HxWx3 RGB arrays, got {frame.dtype} {frame.shape}")
    h, w = frame.shape[:2]
    scale = max(height / h, width / w)
    nh, nw = max(height, round(h * scale)), max(width, round(w * scale))
    if (nh, nw) != (h, w):
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        frame = cv2.resize(frame, (nw, nh), interpolation=interp)
    y, x = (nh - height) // 2, (nw - width) // 2
    return frame[y: y + height, x: x + width]


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as uint8 RGB, with a clear error when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise StyleError(f"reference image not found: {path}")
    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise StyleError(f"cannot read {path.name}: not an image OpenCV can decode")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


@dataclass
class StageTimes:
    """Milliseconds spent per stage, summed since the last reset (for the status bar and benchmarks)."""
    encode: float = 0.0
    steps: list[float] = field(default_factory=list)
    cache_write: float = 0.0
    decode: float = 0.0
    chunks: int = 0
    frames: int = 0

    def add_step(self, i: int, ms: float) -> None:
        while len(self.steps) <= i:
            self.steps.append(0.0)
        self.steps[i] += ms

    def per_frame(self) -> dict:
        n = max(self.frames, 1)
        return {"encode_ms": self.encode / n, "steps_ms": [s / n for s in self.steps],
                "dit_ms": sum(self.steps) / n, "cache_write_ms": self.cache_write / n,
                "decode_ms": self.decode / n, "frames": self.frames, "chunks": self.chunks}


class StreamStylizer:
    def __init__(self, model: LoadedModel | str | Path | None = None, device: str = "cpu",
                 dtype: torch.dtype | None = None, seed: int = 0, steps: list[int] | int | None = None,
                 strength: float | None = None, anchor_reference: bool = True, profile: bool = False,
                 adacache="off", match_prompts: bool = True, speed: str | None = None, noise: str | None = None,
                 smoothing: float | None = None, min_side: int | None = None):
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("CUDA was requested but no CUDA device is available")
        dtype = dtype or default_dtype(self.device)
        self.model = model if isinstance(model, LoadedModel) else load_model(model, self.device, dtype)
        self.cfg = self.model.config
        self.dtype = dtype
        self.seed = seed
        # None: the model card's default (Wan text-to-video folders record an SDEdit strength), else 1.0
        self.strength = float(self.model.card.get("default_strength", 1.0)) if strength is None else strength
        self.profile = profile
        # "fixed": every chunk replays the stream's first noise draw, so a still scene renders the same way
        # chunk after chunk instead of flickering with the noise; None: the model card's choice, else fresh
        self.noise = self.model.card.get("stream_noise", "fresh") if noise is None else noise
        if self.noise not in NOISE_MODES:
            raise ValueError(f"noise must be one of {', '.join(NOISE_MODES)}, got {self.noise!r}")
        # motion-gated blend of each output latent with the previous one (model.smoothing); None: the card's
        self.smoother = LatentSmoother(float(self.model.card.get("latent_smoothing", 0.0)) if smoothing is None
                                       else smoothing)
        # reference mode: the output's colours mapped to where its reference's targets put them (model.palette)
        try:
            self.palette = ReferencePalette((self.model.card.get("reference_palette") or {}).get("weights"))
        except ValueError as e:
            raise CheckpointError(f"{self.model.folder}: model_card.json: {e}") from None
        self.set_steps(steps)
        self.height, self.width = self.cfg.resolution
        # a guided codec renders at the source's own size (up to MAX_OUTPUT); others at the config's resolution
        self.guided = isinstance(self.model.codec, GuidedCodec)
        self._frame_hw: tuple[int, int] | None = None  # guided: the stream's frame size, set by its first frame
        self._work_hw: tuple[int, int] | None = None  # guided: the size it is stylized at (working_size)
        # a guided stream's frames are stylized with their short side at least this (None: the model's own)
        self.min_side = min(self.cfg.resolution) if min_side is None else min_side
        self._ref_image: np.ndarray | None = None
        self.anchor_reference = anchor_reference
        self.cache = self._new_cache(self.cfg.window_frames)
        self.adacache = AdaCache(self.cfg.num_layers, adacache)  # residual caching; "off" runs the plain engine
        self.speed: str | None = None  # the speed preset last applied (model.speed), if any
        self.times = StageTimes()
        self.style: StyleSpec | None = None  # the style in effect
        # a model that lists its trained styles is conditioned on the trained prompt closest to the typed one
        self.match_prompts = match_prompts
        self.prompt_match = None  # model.vocabulary.PromptMatch of the current text style
        self._context = None
        self._ref_latent = None
        self.reset()
        if speed is not None:
            self.set_speed(speed)

    # ------------------------------------------------------------ settings
    @property
    def chunk_size(self) -> int:
        """Video frames per chunk (what ``push`` buffers before it can return output)."""
        return self.model.codec.frames_needed(self.cfg.chunk_frames)

    def set_steps(self, steps: list[int] | int | None) -> None:
        if steps is None:
            steps = self.cfg.denoising_steps
        elif isinstance(steps, int):
            if steps < 1:
                raise ValueError("steps must be >= 1")
            steps = [round(1000 * (1 - i / steps)) for i in range(steps)]
        self.schedule = FlowSchedule(list(steps), self.cfg.shift)

    @property
    def window_frames(self) -> int:
        """Latent frames a chunk attends to, itself included."""
        return self.cache.window_frames

    def set_window(self, frames: int) -> None:
        """Change the attention window; the stream starts over (the style stays)."""
        if frames == self.cache.window_frames:
            return
        c = self.cfg.chunk_frames
        if frames < c or frames % c:
            raise ValueError(f"the window must be a positive multiple of the chunk ({c} latent frames), got {frames}")
        self.cache = self._new_cache(frames)
        self.reset()

    def set_speed(self, name: str) -> SpeedSettings:
        """Apply a speed preset (``model.speed``: steps, window, AdaCache); a new window restarts the stream."""
        settings = speed_settings(name, self.cfg)
        self.set_steps(settings.steps)
        self.set_adacache(settings.adacache)
        self.set_window(settings.window_frames)
        self.speed = settings.name
        return settings

    def _new_cache(self, window_frames: int):
        lh, lw = self.cfg.latent_grid(*self._padded_hw())
        return self.model.dit.new_cache(lh, lw, anchor_reference=self.anchor_reference, window_frames=window_frames)

    def set_adacache(self, mode) -> None:
        """AdaCache preset: "off", "slow", "fast", or True ("slow") / False ("off")."""
        self.adacache.set_mode(mode)

    def set_strength(self, strength: float) -> None:
        if not 0.0 < strength <= 1.0:
            raise ValueError("strength must be in (0, 1]")
        self.strength = strength

    # -------------------------------------------------------------- styles
    def set_text(self, prompt: str) -> None:
        prompt = (prompt or "").strip()
        if not prompt:
            raise StyleError("the style prompt is empty")
        vocabulary = self.model.vocabulary
        match = vocabulary.match(prompt, self.model.text_encoder) if self.match_prompts and vocabulary else None
        conditioning = match.trained_prompt if match else prompt
        context = self.model.text_encoder.encode(conditioning).to(self.device, self.dtype)
        self._switch(context, None)
        self.palette.set_reference(None)
        self.style = StyleSpec(prompt=prompt)
        self.prompt_match = match

    def set_reference(self, image: np.ndarray | str | Path, prompt: str | None = None) -> None:
        if isinstance(image, np.ndarray):
            spec = StyleSpec(prompt=prompt, image=image)
        else:
            spec = StyleSpec(prompt=prompt, reference=Path(image))
            image = load_image(image)
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] not in (3, 4) or min(image.shape[:2]) < 8:
            raise StyleError(f"the reference image has an unusable shape {image.shape}")
        image = np.ascontiguousarray(image[..., :3]).astype(np.uint8, copy=False)
        self._ref_image = image
        latent = self._encode_reference(image)
        context = self.model.text_encoder.encode(prompt or self.cfg.reference_prompt).to(self.device, self.dtype)
        self._switch(context, latent)
        self.palette.set_reference(image)
        self.style = spec
        self.prompt_match = None

    def _encode_reference(self, image: np.ndarray) -> torch.Tensor:
        ref = self._to_tensor(fit_frame(image, *self._padded_hw())[None])
        with torch.no_grad():
            return self.model.codec.encode_image(ref)

    def _padded_hw(self) -> tuple[int, int]:
        """The frame size the codec works at: the config's, or a guided stream's padded to the token grid."""
        if not self.guided or self._frame_hw is None:
            return self.height, self.width
        step = self.cfg.vae_stride[1] * self.cfg.patch_size[1]
        return tuple(-(-x // step) * step for x in self._work_hw)

    def _set_frame_size(self, hw: tuple[int, int]) -> None:
        """A guided stream's first frame fixes its size: the token grid, the cache and the reference follow."""
        self._frame_hw = hw
        self._work_hw = working_size(*hw, self.min_side)
        self.cache = self._new_cache(self.cache.window_frames)
        self.adacache.reset()
        if self._ref_image is not None and self._ref_latent is not None:
            self._ref_latent = self._encode_reference(self._ref_image)
        if self._context is not None:
            self.model.dit.set_condition(self.cache, self._context, self._ref_latent)

    def _guided_frame(self, frame: np.ndarray) -> np.ndarray:
        """A frame at the stream's size: shrunk to fit MAX_OUTPUT, never enlarged."""
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frames must be uint8 HxWx3 RGB arrays, got {frame.dtype} {frame.shape}")
        if self._frame_hw is None:
            self._set_frame_size(output_size(*frame.shape[:2]))
        return at_output_size(self.as_output(frame), self._work_hw)

    def as_output(self, frame: np.ndarray) -> np.ndarray:
        """The source frame as the output shows it, for side-by-side views: at the stream's size for a
        model that renders at the source's size, else fitted to the working resolution."""
        if not self.guided:
            return fit_frame(frame, self.height, self.width)
        return at_output_size(frame, self._frame_hw)

    def _switch(self, context, ref_latent) -> None:
        self.adacache.invalidate("style")
        self.cache.keep_last_frame()
        self.smoother.reset()  # the new style shows from its first frame, not blended with the old one
        self.model.dit.set_condition(self.cache, context, ref_latent)
        self._context, self._ref_latent = context, ref_latent

    # ---------------------------------------------------------- streaming
    def reset(self) -> None:
        """Start a new stream: empty caches and buffers, same style, same seed (a guided stream's size is
        set again by its first frame)."""
        if self.guided and self._frame_hw is not None:
            self._frame_hw = None
            self.cache = self._new_cache(self.cache.window_frames)
            if self._ref_image is not None and self._ref_latent is not None:
                self._ref_latent = self._encode_reference(self._ref_image)
        self.cache.reset()
        self.adacache.reset()
        self.model.codec.reset()
        self.smoother.reset()
        self.palette.reset()
        self._pending: list[np.ndarray] = []
        self.generator = torch.Generator(self.device).manual_seed(self.seed)
        self._stream_noise = self.generator.get_state()
        self.times = StageTimes()
        if self._context is not None:
            self.model.dit.set_condition(self.cache, self._context, self._ref_latent)

    def push(self, frames) -> list[np.ndarray]:
        """Add frames (uint8 HxWx3 RGB, any size); returns the stylized frames of every completed chunk."""
        return list(self.stream(frames))

    def stream(self, frames) -> Iterator[np.ndarray]:
        """``push``, yielding each stylized frame as soon as it is ready. Why: a source-size model decodes
        a chunk frame by frame, so its first frame leaves one decode earlier (lower latency live; a remote
        server encodes it while the next one decodes). The frames are taken at once; iterate to the end
        before the next call."""
        if self._context is None:
            raise StyleError("no style set: call set_text or set_reference first")
        if isinstance(frames, np.ndarray) and frames.ndim == 3:
            frames = [frames]
        for f in frames:
            f = np.asarray(f)
            self._pending.append(self._guided_frame(f) if self.guided else fit_frame(f, self.height, self.width))
        return self._completed_chunks()

    def _completed_chunks(self) -> Iterator[np.ndarray]:
        while len(self._pending) >= self.chunk_size:  # re-read: a causal codec's first chunk is shorter
            n = self.chunk_size
            chunk, self._pending = self._pending[:n], self._pending[n:]
            yield from self._process(chunk)

    def flush(self) -> list[np.ndarray]:
        """Process buffered frames, padding the last chunk by repeating its final frame."""
        if not self._pending:
            return []
        real = len(self._pending)
        chunk = self._pending + [self._pending[-1]] * (self.chunk_size - real)
        self._pending = []
        return list(self._process(chunk))[:real]

    @property
    def pending(self) -> int:
        return len(self._pending)

    # ------------------------------------------------------------ internals
    def _to_tensor(self, frames: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device)
        return (t.permute(0, 3, 1, 2).to(self.dtype) / 127.5 - 1.0)

    def _tick(self) -> float:
        if self.profile and self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    @torch.no_grad()
    def _process(self, frames: list[np.ndarray]) -> Iterator[np.ndarray]:
        dit, codec, cache, times = self.model.dit, self.model.codec, self.cache, self.times
        t0 = self._tick()
        stack = np.stack(frames)
        if self.guided:  # reflect-pad to the token grid; the output is cropped back below
            (hp, wp), (h, w) = self._padded_hw(), stack.shape[1:3]
            stack = np.pad(stack, ((0, 0), (0, hp - h), (0, wp - w), (0, 0)), mode="reflect")
        video = self._to_tensor(stack)[None]
        source = codec.encode(video)
        t1 = self._tick()
        times.encode += (t1 - t0) * 1000
        ada = self.adacache.begin_chunk(source, cache) if self.adacache.enabled else None
        cache.begin_chunk(source.shape[1])
        try:
            step = [0]

            def denoise(x, sigma):
                ts = self._tick()
                # AdaCache plans the denoising passes only; the clean pass below always runs every block
                kw = {} if ada is None else {"adacache": ada.step(step[0], sigma * 1000.0)}
                v = dit.forward_chunk(x, source, torch.full((1,), sigma * 1000.0, device=self.device), cache, **kw)
                times.add_step(step[0], (self._tick() - ts) * 1000)
                step[0] += 1
                return v

            if self.noise == "fixed":
                self.generator.set_state(self._stream_noise)
            gen = self.generator if ada is None else ada.noise_generator(self.generator, source.shape, self.dtype)
            latent = self.schedule.sample(denoise, source.shape, gen, self.device, self.dtype,
                                          start=source, strength=self.strength)
            t2 = self._tick()
            if cache.keeps_history:  # the clean pass writes the keys later chunks attend to
                dit.forward_chunk(latent, source, torch.zeros(1, device=self.device), cache)
            cache.end_chunk()
            if ada is not None:
                ada.end_chunk(cache, clean_pass=cache.keeps_history)
        except BaseException:
            cache.abort_chunk()
            self.adacache.abort()
            self.model.codec.reset()  # a causal codec's history now ends before the dropped chunk
            raise
        times.cache_write += (self._tick() - t2) * 1000
        times.chunks += 1
        times.frames += len(frames)
        latent = self.smoother(latent)
        if not self.guided:
            t3 = self._tick()
            images = [self.palette(i) for i in self._images(codec.decode(latent)[0])]
            times.decode += (self._tick() - t3) * 1000
            yield from images
            return
        h, w = frames[0].shape[:2]
        for i in range(latent.shape[1]):  # frame by frame: each leaves as soon as it is decoded
            t3 = self._tick()
            image = self._images(codec.decode(latent[:, i:i + 1], style=cache.style, frames=slice(i, i + 1))[0])[0]
            image = image[:h, :w]
            if self._work_hw != self._frame_hw:  # stylized at a larger size: shown at the stream's own
                image = at_output_size(image, self._frame_hw)
            image = self.palette(image)
            times.decode += (self._tick() - t3) * 1000
            yield image

    @staticmethod
    def _images(decoded: torch.Tensor) -> np.ndarray:
        """[F, 3, H, W] in [-1, 1] -> [F, H, W, 3] uint8."""
        out = ((decoded.float() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
        return out.permute(0, 2, 3, 1).cpu().numpy()
