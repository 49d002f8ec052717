"""AdaCache for the streaming engine: training-free reuse of DiT block residuals.

After Kahatapitiya et al., "Adaptive Caching for Faster Video Generation with Diffusion Transformers"
(AdaCache), adapted to few-step streaming:

- What is cached: the residuals of every block (self-attention, cross-attention, FFN). They are always
  reused together (one schedule for all blocks, as in the paper), so each block keeps their sum. A
  reused block adds the cached residuals to its input and computes nothing.
- Distance: the relative L1 change of the self-attention residual of a middle block between the two
  latest computed passes, divided by how many steps (or chunks) lie between them (paper eq. 4):
  ``c = mean|p_now - p_then| / mean|p_then| / k``. Relative, so that thresholds do not depend on the
  model's activation scale.
- Codebook: ascending ``(threshold, rate)`` pairs; the first pair whose threshold is strictly greater
  than the distance gives the cache rate, and a distance at or above every threshold gives rate 1.
  Rate ``r`` means: the ``r - 1`` following passes reuse, then the next one computes (paper eq. 6).
- Motion regularisation (MoReg): in a stream the source frames are known exactly, so motion is
  measured on the source latents rather than on noisy ones: ``m`` is the mean absolute difference of
  consecutive source latent frames (the previous chunk's last frame included), relative to the
  latents' content scale (``content_scale``), and ``mg = m - m_prev``
  its change since the previous chunk (the paper's motion gradient). The distance is scaled by
  ``1 + gain * max(0, m + mg)`` (paper eq. 9, shifted so that a still scene leaves it unchanged), so a
  moving scene gets lower cache rates. A motion guard also cancels a scheduled cross-chunk reuse as
  soon as the source has drifted too far from the source of the chunk whose residuals would be reused.

Where it applies (``where``):
- ``"steps"``: across the denoising steps of one chunk (the paper's setting). With two steps the first
  decision of a chunk can only come from the distance measured in a recent chunk (``step_carry``).
- ``"chunks"``: across consecutive chunks at the same denoising step (same timestep), which is where a
  few-step streaming engine can save most when the source barely moves. One schedule per chunk: every
  denoising step of a chunk reuses the same earlier chunk, or none does; the distance is the largest over
  the steps, and ``k`` counts chunks.
- ``"both"``: cross-chunk reuse first, else cross-step reuse.

Noise. Each chunk draws fresh noise, and residuals computed under one noise draw do not fit another: a
chunk that reuses the residuals of an earlier chunk therefore replays that chunk's noise (``lock_noise``;
the stream's generator still advances as without AdaCache, so computed chunks draw exactly the noise
the plain engine would). On a still scene a reusing chunk then reproduces the cached chunk's result.

Safety with the rolling KV cache. A reused block writes no keys/values. Keys/values written by the
denoising passes are only ever read by the same block in the same pass (a block writes this chunk's
slots and then attends to them), and the clean cache-write pass, which runs every block, overwrites
them before the chunk is committed. So AdaCache never touches the clean pass: every key/value that later
chunks attend to is computed by all blocks from the chunk's final latent. Cached residuals are dropped
(never reused) across: a style switch (new
cross-attention condition or reference), a dropped or rewritten frame history (``keep_last_frame``,
``abort_chunk``, ``reset``), a compaction of a partly filled ring, a roll that evicts the reference
(``anchor_reference=False``), a change of the latent shape, of the timestep, or of the preset. A steady
roll of a full ring (the oldest chunk leaves, the reference is re-anchored in front of the window) keeps
the attention context's layout (same length, same relative positions) and does not invalidate them.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

WHERE = ("steps", "chunks", "both")


@dataclass(frozen=True)
class Codebook:
    """Ascending distance thresholds, each with the cache rate it selects (a rate is >= 1)."""

    entries: tuple[tuple[float, int], ...]

    def __post_init__(self):
        ths = [float(t) for t, _ in self.entries]
        if any(b <= a for a, b in zip(ths, ths[1:])):
            raise ValueError(f"codebook thresholds must be strictly ascending, got {ths}")
        if any(int(r) != r or r < 1 for _, r in self.entries):
            raise ValueError("codebook cache rates must be integers >= 1")

    @classmethod
    def of(cls, mapping) -> "Codebook":
        """From a ``{threshold: rate}`` dict (the paper's notation) or (threshold, rate) pairs."""
        items = mapping.items() if isinstance(mapping, dict) else mapping
        return cls(tuple(sorted((float(t), int(r)) for t, r in items)))

    def select(self, distance: float) -> int:
        """The rate of the first threshold strictly above ``distance``; 1 (recompute) past all of them."""
        if distance != distance:  # NaN: the residuals blew up, recompute
            return 1
        for threshold, rate in self.entries:
            if distance < threshold:
                return rate
        return 1

    @property
    def max_rate(self) -> int:
        return max([1] + [r for _, r in self.entries])


@dataclass(frozen=True)
class AdaCacheConfig:
    name: str
    where: str = "chunks"
    chunk_codebook: Codebook = Codebook(())
    step_codebook: Codebook = Codebook(())
    metric_block: int | None = None  # None: the middle block (num_layers // 2)
    cached_blocks: tuple[int, int] | None = None  # [start, stop) of the blocks that may reuse; None: all
    moreg: bool = True
    moreg_gain: float = 0.0
    motion_guard: float | None = None  # max relative L1 source drift for a cross-chunk reuse; None: off
    step_carry: int = 0  # chunks a step-to-step distance stays usable for a later chunk's first decision
    lock_noise: bool = True  # a chunk that reuses another chunk's residuals also replays that chunk's noise
    force_rate: int | None = None  # fixed cache rate after every computed pass (tests, sweeps)

    def __post_init__(self):
        if self.where not in WHERE:
            raise ValueError(f"where must be one of {WHERE}, got {self.where!r}")
        if self.force_rate is not None and self.force_rate < 1:
            raise ValueError("force_rate must be >= 1")


# Tuned on the tiny model (CPU; 2 denoising steps + the clean pass; 2-latent-frame chunks) with
# benchmarks/adacache_bench.py on clips of a held-out photo other than the one reported in
# benchmarks/results/adacache_tiny_cpu.json. Cross-step reuse is off in both presets: with two steps
# it costs several dB (see the "steps-forced-2" ablation there), and the step codebooks below never pick
# a rate above 1 on it (step-to-step distances are ~0.5-1.4). Distances between computed chunks are large
# while the window fills (~0.5-1), then settle around 0.02-0.1 whatever the motion (fresh noise dominates
# them), so motion comes in through MoReg (source motion: 0 still, ~0.05-0.15 slow pan, 0.15-0.6 fast)
# and the guard (source drift: ~0.1-0.2 per chunk for a slow pan, 0.35-0.7 fast).
PRESETS: dict[str, AdaCacheConfig] = {
    "slow": AdaCacheConfig(
        name="slow", where="chunks",
        chunk_codebook=Codebook.of({0.10: 4, 0.20: 2}),
        step_codebook=Codebook.of({0.05: 2}),
        moreg=True, moreg_gain=6.0, motion_guard=0.30, step_carry=2),
    "fast": AdaCacheConfig(
        name="fast", where="chunks",
        chunk_codebook=Codebook.of({0.06: 12, 0.12: 8, 0.25: 4, 0.40: 2}),
        step_codebook=Codebook.of({0.10: 2}),
        moreg=True, moreg_gain=8.0, motion_guard=0.60, step_carry=3),
}
MODES = ("off",) + tuple(PRESETS)


def resolve(mode) -> AdaCacheConfig | None:
    """``"off"``/False/None -> None; True -> "slow"; a preset name or an AdaCacheConfig -> a config."""
    if mode is None or mode is False:
        return None
    if mode is True:
        return PRESETS["slow"]
    if isinstance(mode, AdaCacheConfig):
        return mode
    if isinstance(mode, str):
        key = mode.strip().lower()
        if key == "off":
            return None
        if key in PRESETS:
            return PRESETS[key]
    raise ValueError(f"AdaCache mode must be one of {', '.join(MODES)} (or True/False), got {mode!r}")


def rel_l1(a: torch.Tensor, b: torch.Tensor) -> float:
    """mean|a - b| / mean|b| (float32)."""
    a, b = a.float(), b.float()
    return float((a - b).abs().mean() / b.abs().mean().clamp_min(1e-12))


def content_scale(latent: torch.Tensor) -> torch.Tensor:
    """Mean absolute deviation of a latent [B, F, C, h, w] from its per-channel mean: the size of what
    the picture shows, without the channels' constant offsets (which say nothing about motion)."""
    x = latent.float()
    return (x - x.mean(dim=(1, 3, 4), keepdim=True)).abs().mean().clamp_min(1e-12)


def source_drift(now: torch.Tensor, then: torch.Tensor) -> float:
    """How far the source moved: mean|now - then| / content_scale(then)."""
    return float((now.float() - then.float()).abs().mean() / content_scale(then))


@dataclass
class AdaCacheStats:
    chunks: int = 0
    passes: int = 0  # denoising passes (the clean cache-write pass is counted in clean_blocks only)
    passes_reused: dict = field(default_factory=lambda: {"chunks": 0, "steps": 0})
    blocks_computed: int = 0  # blocks run in denoising passes
    blocks_reused: int = 0  # blocks whose cached residuals were reused instead
    clean_blocks: int = 0  # blocks run by the clean cache-write passes (never reused)
    guard_stops: int = 0  # scheduled cross-chunk reuses cancelled by the source motion guard
    rolls_crossed: int = 0  # steady ring rolls that cached residuals survived
    invalidations: dict = field(default_factory=dict)  # reason -> count
    decisions: list = field(default_factory=list)  # (where, chunk, step, distance, scaled distance, rate)
    motion: list = field(default_factory=list)  # (m, mg, scale) per chunk

    @property
    def skipped_fraction(self) -> float:
        """Reused blocks / all block computations of the stream (clean passes included)."""
        total = self.blocks_computed + self.blocks_reused + self.clean_blocks
        return self.blocks_reused / total if total else 0.0

    @property
    def denoise_skipped_fraction(self) -> float:
        """Reused blocks / block computations of the denoising passes."""
        total = self.blocks_computed + self.blocks_reused
        return self.blocks_reused / total if total else 0.0

    def as_dict(self) -> dict:
        return {"chunks": self.chunks, "passes": self.passes, "passes_reused": dict(self.passes_reused),
                "blocks_computed": self.blocks_computed, "blocks_reused": self.blocks_reused,
                "clean_blocks": self.clean_blocks, "skipped_fraction": self.skipped_fraction,
                "denoise_skipped_fraction": self.denoise_skipped_fraction, "guard_stops": self.guard_stops,
                "rolls_crossed": self.rolls_crossed, "invalidations": dict(self.invalidations)}


@dataclass
class _Stored:
    """The residuals of one computed chunk, reusable by the same steps of later chunks."""
    chunk: int
    epoch: int
    source: torch.Tensor
    noise_state: torch.Tensor | None  # generator state the chunk drew its noise from
    deltas: dict  # step key -> per block: summed residuals (None for a block that is never reused)
    metrics: dict  # step key -> the metric block's self-attention residual
    left: int = 0  # following chunks that reuse these residuals


@dataclass
class _ChunkState:
    source: torch.Tensor
    scale: float
    planned: _Stored | None = None  # the earlier chunk whose residuals this chunk reuses
    computed: dict = field(default_factory=dict)  # step key -> (deltas, metric) of the computed passes
    noise_state: torch.Tensor | None = None  # generator state this chunk's noise comes from
    generator: torch.Generator | None = None  # the stream's generator, when the noise was replayed
    draw: tuple | None = None  # (shape, device, dtype) of the noise draws, to advance ``generator``
    steps: int = 0
    last: tuple | None = None  # (step index, key, metric residual, deltas) of the last computed pass
    step_until: int = -1  # steps with index < step_until reuse ``last``'s residuals


class PassPlan:
    """One denoising pass of one chunk: ``CausalDiT.forward_chunk`` asks it to run or reuse each block."""

    def __init__(self, owner: "AdaCache", index: int, key, reuse: list | None, kind: str | None):
        self.owner, self.index, self.key = owner, index, key
        self.reuse, self.kind = reuse, kind
        n = owner.num_layers
        self.deltas: list = [None] * n
        self.metric: torch.Tensor | None = None
        self.computed: list[int] = []
        self.skipped: list[int] = []

    def block(self, layer: int, x: torch.Tensor, compute) -> torch.Tensor:
        """``compute(x, residuals)`` runs the block and appends its three residuals to ``residuals``."""
        if self.reuse is not None and self.reuse[layer] is not None:
            self.skipped.append(layer)
            return x + self.reuse[layer].to(x.dtype)
        residuals: list = []
        out = compute(x, residuals)
        self.computed.append(layer)
        if self.owner.caches_block(layer):
            p, c, r = residuals
            self.deltas[layer] = p + c + r
        if layer == self.owner.metric_block:
            self.metric = residuals[0]
        return out


class AdaCache:
    """Adaptive residual caching for ``CausalDiT.forward_chunk`` in a stream (see the module doc).

    Per chunk: ``begin_chunk(source, cache)`` before ``cache.begin_chunk``, ``step(i, t)`` for the plan
    of each denoising pass, ``end_chunk(cache)`` after ``cache.end_chunk``; ``invalidate(reason)`` on a
    style switch or a failed chunk, ``reset()`` for a new stream.
    """

    def __init__(self, num_layers: int, mode="off"):
        self.num_layers = num_layers
        self.config: AdaCacheConfig | None = None
        self.stats = AdaCacheStats()
        self.set_mode(mode)
        self.reset()

    # -------------------------------------------------------------- settings
    @property
    def enabled(self) -> bool:
        return self.config is not None

    @enabled.setter
    def enabled(self, value: bool) -> None:
        if bool(value) != self.enabled:
            self.set_mode(bool(value))

    @property
    def mode(self) -> str:
        return self.config.name if self.config else "off"

    def set_mode(self, mode) -> None:
        """``"off"``, ``"slow"``, ``"fast"``, True (``"slow"``, or the current preset if one is on),
        False, or an ``AdaCacheConfig``. Cached residuals never survive a change."""
        if mode is True and self.config is not None:
            return
        cfg = resolve(mode)
        if cfg is not None:
            mb = self._metric_block(cfg)
            if not 0 <= mb < self.num_layers:
                raise ValueError(f"metric_block {mb} is outside the model's {self.num_layers} blocks")
        if cfg != self.config:
            self.config = cfg
            self.invalidate("mode")

    @staticmethod
    def _default_metric(n: int) -> int:
        return n // 2

    def _metric_block(self, cfg: AdaCacheConfig) -> int:
        return self._default_metric(self.num_layers) if cfg.metric_block is None else cfg.metric_block

    @property
    def metric_block(self) -> int:
        return self._metric_block(self.config) if self.config else self._default_metric(self.num_layers)

    def caches_block(self, layer: int) -> bool:
        span = self.config.cached_blocks if self.config else None
        return span is None or span[0] <= layer < span[1]

    # ----------------------------------------------------------------- state
    def reset(self) -> None:
        """A new stream: forget residuals, motion history and statistics (the preset stays)."""
        self.stats = AdaCacheStats()
        self._epoch = 0
        self._chunk = 0
        self._stored: _Stored | None = None
        self._carry: dict = {}
        self._expect = None
        self._cur: _ChunkState | None = None
        self._pending: PassPlan | None = None
        self._prev_last = None
        self._prev_motion: float | None = None

    def invalidate(self, reason: str) -> None:
        """Drop every cached residual (they were computed under a condition that no longer holds)."""
        if getattr(self, "_stored", None) is not None or getattr(self, "_carry", None):
            self.stats.invalidations[reason] = self.stats.invalidations.get(reason, 0) + 1
        self._epoch = getattr(self, "_epoch", 0) + 1
        self._stored, self._carry = None, {}
        if getattr(self, "_cur", None) is not None:
            self._cur.last, self._cur.step_until, self._cur.planned = None, -1, None
        self._pending = None

    def abort(self) -> None:
        """The current chunk failed: nothing it computed may be reused."""
        self.invalidate("abort")
        self._cur = None
        self._expect = None

    @staticmethod
    def _fingerprint(cache) -> tuple:
        return (float(cache.cross_k.float().sum()), float(cache.cross_v.float().abs().sum()),
                cache.ref_len, cache.ref_position)

    def _snapshot(self, cache) -> tuple:
        return (self._fingerprint(cache), cache.next_frame, tuple(cache.slot_frame), cache.count)

    def _cache_change(self, cache, frames: int) -> str | None:
        """Why residuals cached before this chunk can no longer be reused, or None."""
        if self._expect is not None:
            fp, next_frame, slots, count = self._expect
            now = self._fingerprint(cache)
            if now[:2] != fp[:2]:
                return "style"
            if now[2:] != fp[2:]:
                return "reference"
            if (cache.next_frame, tuple(cache.slot_frame), cache.count) != (next_frame, slots, count):
                return "history"
        if cache.full:
            if cache.ref_len and not cache.anchor_reference:
                return "reference evicted"
            if self._stored is not None or self._carry:
                self.stats.rolls_crossed += 1
        elif cache.count + frames > cache.window_frames:
            return "compaction"
        return None

    # ---------------------------------------------------------------- motion
    def _motion(self, source: torch.Tensor) -> float:
        src = source.detach().float()
        prev = self._prev_last
        frames = torch.cat([prev, src], 1) if prev is not None and prev.shape[2:] == src.shape[2:] \
            and prev.shape[0] == src.shape[0] else src
        if frames.shape[1] >= 2:
            m = float((frames[:, 1:] - frames[:, :-1]).abs().mean() / content_scale(frames))
        else:
            m = 0.0
        mg = m - self._prev_motion if self._prev_motion is not None else 0.0
        self._prev_last = src[:, -1:].clone()
        self._prev_motion = m
        cfg = self.config
        scale = 1.0 + cfg.moreg_gain * max(0.0, m + mg) if cfg.moreg else 1.0
        self.stats.motion.append((m, mg, scale))
        return scale

    # ---------------------------------------------------------------- chunks
    def begin_chunk(self, source: torch.Tensor, cache) -> "AdaCache":
        """Call before ``cache.begin_chunk``: checks what the cache went through since the last chunk."""
        if not self.enabled:
            raise RuntimeError("AdaCache is off")
        reason = self._cache_change(cache, source.shape[1])
        if reason:
            self.invalidate(reason)
        if self._stored is not None and self._stored.source.shape != source.shape:
            self.invalidate("shape")
        cur = self._cur = _ChunkState(source=source.detach(), scale=self._motion(source))
        self._pending = None
        cfg, ent = self.config, self._stored
        # one schedule for the whole chunk: all its denoising steps reuse the same earlier chunk, or none
        if cfg.where in ("chunks", "both") and ent is not None and ent.epoch == self._epoch and ent.left > 0:
            if cfg.motion_guard is not None and source_drift(cur.source, ent.source) > cfg.motion_guard:
                self.stats.guard_stops += 1
                ent.left = 0
            else:
                ent.left -= 1
                cur.planned = ent
        return self

    def noise_generator(self, generator: torch.Generator, shape, dtype) -> torch.Generator:
        """The generator the chunk should draw its noise from (call after ``begin_chunk``).

        With ``lock_noise``, a chunk that reuses residuals computed by an earlier chunk replays that
        chunk's noise: the residuals were computed for that noise, and a still scene then repeats the
        same result instead of flickering with the noise. The stream's generator is advanced at
        ``end_chunk`` by the draws the chunk would have made, so later computed chunks draw the same
        noise as without AdaCache."""
        cur = self._cur
        cur.noise_state = generator.get_state()
        state = cur.planned.noise_state if self.config.lock_noise and cur.planned is not None else None
        if state is None:
            return generator
        replay = torch.Generator(generator.device)
        replay.set_state(state)
        cur.noise_state = state
        cur.generator, cur.draw = generator, (tuple(shape), generator.device, dtype)
        return replay

    def step(self, index: int, t: float) -> PassPlan:
        """The plan for denoising pass ``index`` (timestep ``t``) of the current chunk."""
        self._finish_pass()
        cur, cfg = self._cur, self.config
        if cur is None or cfg is None:
            raise RuntimeError("call begin_chunk first")
        key = (int(index), round(float(t), 3))
        cur.steps += 1
        reuse, kind = None, None
        if cur.planned is not None and key in cur.planned.deltas:
            reuse, kind = cur.planned.deltas[key], "chunks"
        if reuse is None and cfg.where in ("steps", "both") and cur.last is not None and index < cur.step_until:
            reuse, kind = cur.last[3], "steps"
        plan = PassPlan(self, int(index), key, reuse, kind)
        self._pending = plan
        return plan

    def _decide(self, book: Codebook, distance: float | None, where: str, step: int | None) -> int:
        cfg = self.config
        if cfg.force_rate is not None:
            rate = cfg.force_rate
            scaled = None if distance is None else distance * self._cur.scale
        elif distance is None:
            return 1
        else:
            scaled = distance * self._cur.scale
            rate = book.select(scaled)
        self.stats.decisions.append((where, self._chunk, step, distance, scaled, rate))
        return rate

    def _finish_pass(self) -> None:
        plan, self._pending = self._pending, None
        if plan is None:
            return
        st, cfg, cur = self.stats, self.config, self._cur
        st.passes += 1
        st.blocks_computed += len(plan.computed)
        st.blocks_reused += len(plan.skipped)
        if plan.kind is not None:
            st.passes_reused[plan.kind] += 1
            return
        p = plan.metric
        cur.computed[plan.key] = (plan.deltas, p)
        if cfg.where in ("steps", "both"):
            dist = None
            if cur.last is not None and p is not None and cur.last[2] is not None:
                dist = rel_l1(p, cur.last[2]) / max(1, plan.index - cur.last[0])
                self._carry[cur.last[1]] = (dist, self._chunk, self._epoch)
            else:
                carried = self._carry.get(plan.key)
                if carried is not None and carried[2] == self._epoch and self._chunk - carried[1] <= cfg.step_carry:
                    dist = carried[0]
            rate = self._decide(cfg.step_codebook, dist, "steps", plan.index)
            cur.step_until = plan.index + rate
            cur.last = (plan.index, plan.key, p, plan.deltas)

    def _schedule_chunks(self, cur: _ChunkState) -> None:
        """After a computed chunk: the distance to the previous computed chunk (the largest over the
        denoising steps, divided by the chunks between them) picks how many following chunks reuse it."""
        old, dists = self._stored, []
        if old is not None and old.epoch == self._epoch:
            for key, (_, metric) in cur.computed.items():
                prev = old.metrics.get(key)
                if metric is not None and prev is not None and prev.shape == metric.shape:
                    dists.append(rel_l1(metric, prev))
        dist = max(dists) / max(1, self._chunk - old.chunk) if dists else None
        rate = self._decide(self.config.chunk_codebook, dist, "chunks", None)
        self._stored = _Stored(self._chunk, self._epoch, cur.source, cur.noise_state,
                               {k: d for k, (d, _) in cur.computed.items()},
                               {k: m for k, (_, m) in cur.computed.items()}, rate - 1)

    def end_chunk(self, cache, clean_pass: bool = True) -> None:
        """Call after ``cache.end_chunk``; ``clean_pass``: whether a clean pass ran every block (it is
        skipped when the window holds only the current chunk)."""
        self._finish_pass()
        cur, cfg = self._cur, self.config
        if cur is not None and cfg.where in ("chunks", "both") and cur.planned is None and cur.computed:
            self._schedule_chunks(cur)
        if cur is not None and cur.generator is not None:  # keep the stream's noise where it would be
            shape, device, dtype = cur.draw
            for _ in range(cur.steps):
                torch.randn(shape, generator=cur.generator, device=device, dtype=dtype)
        self.stats.chunks += 1
        self.stats.clean_blocks += self.num_layers if clean_pass else 0
        self._expect = self._snapshot(cache)
        self._chunk += 1
        self._cur = None

    def describe(self) -> str:
        s = self.stats
        return (f"AdaCache {self.mode}: {100 * s.skipped_fraction:.0f}% of block computations reused "
                f"({s.blocks_reused} of {s.blocks_computed + s.blocks_reused + s.clean_blocks})")


def with_options(mode, **changes) -> AdaCacheConfig:
    """A preset (or config) with some fields changed, e.g. ``with_options("fast", where="both")``."""
    cfg = resolve(mode)
    if cfg is None:
        raise ValueError("cannot change the options of 'off'")
    if "chunk_codebook" in changes and not isinstance(changes["chunk_codebook"], Codebook):
        changes["chunk_codebook"] = Codebook.of(changes["chunk_codebook"])
    if "step_codebook" in changes and not isinstance(changes["step_codebook"], Codebook):
        changes["step_codebook"] = Codebook.of(changes["step_codebook"])
    return replace(cfg, **changes)
