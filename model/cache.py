"""Reference-preserving rolling KV cache for the causal DiT.

One preallocated buffer per block holds ``[reference tokens | ring of window_frames latent frames]``.
A chunk's keys/values are written straight into the ring slots it will occupy (the oldest ones once
the ring is full), so attention always reads one contiguous view and nothing is concatenated or
reallocated per step. Slot order does not matter: keys are stored already rotated (RoPE) at their
absolute frame positions, and attention over the cache needs no mask.

The reference image's keys are stored unrotated and re-rotated for every chunk to sit just before the
oldest frame of the window, so the reference stays "anchored at the front" however long the stream
runs (the paper's reference-preserving update). With ``anchor_reference=False`` the reference behaves
like an ordinary first frame: it keeps its original position and is evicted at the first roll (the
paper's ablation).
"""
from __future__ import annotations

import torch

from .rope import apply_rope, rope_angles


class RollingKVCache:
    def __init__(self, num_layers: int, num_heads: int, head_dim: int, grid: tuple[int, int],
                 window_frames: int, chunk_frames: int, text_len: int, batch: int = 1,
                 device=None, dtype=torch.float32, anchor_reference: bool = True):
        if window_frames % chunk_frames:
            raise ValueError("window_frames must be a multiple of chunk_frames")
        self.num_layers, self.num_heads, self.head_dim = num_layers, num_heads, head_dim
        self.grid = grid
        self.frame_tokens = grid[0] * grid[1]
        self.window_frames, self.chunk_frames = window_frames, chunk_frames
        self.anchor_reference = anchor_reference
        self.ref_capacity = self.frame_tokens
        shape = (num_layers, batch, self.ref_capacity + window_frames * self.frame_tokens, num_heads, head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        ref_shape = (num_layers, batch, self.ref_capacity, num_heads, head_dim)
        self.ref_k_raw = torch.zeros(ref_shape, device=device, dtype=dtype)
        self.cross_k = torch.zeros((num_layers, batch, text_len, num_heads, head_dim), device=device, dtype=dtype)
        self.cross_v = torch.zeros_like(self.cross_k)
        self.condition_version = 0  # counts completed set_condition calls (a cheap "did the text change")
        self.style: torch.Tensor | None = None  # [batch, dim] style vector of a style-modulated DiT
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget everything: frames, reference, text condition."""
        self.slot_frame = [-1] * self.window_frames  # absolute frame index held by each ring slot
        self.count = 0  # frames held in the ring
        self.head = 0  # oldest slot once the ring is full
        self.next_frame = 0  # absolute index of the next frame to be generated
        self.ref_len = 0
        self.ref_position = -1
        self.cross_ready = False
        self.rolls = 0
        self._chunk = None

    @property
    def full(self) -> bool:
        return self.count == self.window_frames

    @property
    def keeps_history(self) -> bool:
        """Whether a chunk's keys outlive it. With a window of one chunk the next chunk overwrites every
        slot before it attends, so the clean cache-write pass would compute keys nobody reads."""
        return self.window_frames > self.chunk_frames

    def frames_in_window(self) -> list[int]:
        """Absolute indices of the cached frames, oldest first."""
        return sorted(f for f in self.slot_frame if f >= 0)

    # ---------------------------------------------------------- conditioning
    @property
    def text_len(self) -> int:
        """Text tokens the cross-attention cache holds per block."""
        return self.cross_k.shape[2]

    def set_cross(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> None:
        self.cross_k[layer].copy_(k)
        self.cross_v[layer].copy_(v)

    def commit_cross(self) -> None:
        """Every block got its text keys: cross-attention is ready, and a new condition is counted."""
        self.cross_ready = True
        self.condition_version += 1

    def cross(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-attention keys/values of one block."""
        return self.cross_k[layer], self.cross_v[layer]

    def invalidate_cross(self) -> None:
        self.cross_ready = False

    def set_reference_layer(self, layer: int, k_raw: torch.Tensor, v: torch.Tensor) -> None:
        """Store one block's reference keys (before temporal RoPE) and values."""
        self.ref_k_raw[layer].copy_(k_raw)
        self.v[layer, :, : self.ref_capacity].copy_(v)

    def anchor_new_reference(self) -> None:
        """Called after all layers got their reference keys: the reference sits before the next frame."""
        self.ref_len = self.ref_capacity
        self.ref_position = self.next_frame - 1

    def clear_reference(self) -> None:
        self.ref_len = 0

    def keep_last_frame(self) -> None:
        """Style switch: keep only the most recent frame in the self-attention cache."""
        if self.count == 0:
            return
        last_slot = max(range(self.window_frames), key=lambda s: self.slot_frame[s])
        base = self.ref_capacity
        ft = self.frame_tokens
        if last_slot != 0:
            src = slice(base + last_slot * ft, base + (last_slot + 1) * ft)
            self.k[:, :, base: base + ft].copy_(self.k[:, :, src].clone())
            self.v[:, :, base: base + ft].copy_(self.v[:, :, src].clone())
        last = self.slot_frame[last_slot]
        self.slot_frame = [-1] * self.window_frames
        self.slot_frame[0] = last
        self.count, self.head = 1, 0

    # --------------------------------------------------------------- chunks
    def begin_chunk(self, frames: int) -> torch.Tensor:
        """Reserve ring slots for the next chunk; returns the chunk's absolute frame positions."""
        if frames != self.chunk_frames:
            raise ValueError(f"chunks must hold {self.chunk_frames} latent frames, got {frames}")
        ft, base, w = self.frame_tokens, self.ref_capacity, self.window_frames
        rolled = False
        if self.full:
            start = self.head
            rolled = True
        elif self.count + frames <= w:
            start = self.count
        else:  # partly filled after a style switch: compact so the chunk lands at the end
            drop = self.count + frames - w
            keep = self.count - drop
            for buf in (self.k, self.v):
                buf[:, :, base: base + keep * ft].copy_(buf[:, :, base + drop * ft: base + self.count * ft].clone())
            self.slot_frame = self.slot_frame[drop: self.count] + [-1] * (w - keep)
            self.count, self.head, start = keep, 0, keep
            rolled = True
        if rolled:
            self.rolls += 1
            if not self.anchor_reference:
                self.ref_len = 0  # the naive strategy lets the reference roll out with the oldest frame
        positions = torch.arange(self.next_frame, self.next_frame + frames)
        valid = w if (self.full or self.count + frames == w) else self.count + frames
        self._chunk = (start, valid, positions)
        surviving = [f for s, f in enumerate(self.slot_frame) if f >= 0 and not start <= s < start + frames]
        window_start = min(surviving + [self.next_frame])
        if self.ref_len:
            pos = window_start - 1 if self.anchor_reference else self.ref_position
            cos, sin = rope_angles(torch.tensor([pos]), *self.grid, self.head_dim, device=self.k.device)
            nl, b = self.num_layers, self.k.shape[1]
            raw = self.ref_k_raw.reshape(nl * b, self.ref_capacity, self.num_heads, self.head_dim)
            self.k[:, :, :base].copy_(apply_rope(raw, cos, sin).reshape_as(self.ref_k_raw))
        return positions

    @property
    def chunk_positions(self) -> torch.Tensor:
        """Absolute frame positions of the chunk in progress (between begin_chunk and end_chunk)."""
        if self._chunk is None:
            raise RuntimeError("no chunk in progress: call begin_chunk first")
        return self._chunk[2]

    def write(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> None:
        start = self._chunk[0]
        a = self.ref_capacity + start * self.frame_tokens
        self.k[layer, :, a: a + k.shape[1]].copy_(k)
        self.v[layer, :, a: a + v.shape[1]].copy_(v)

    def view(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys/values visible to the current chunk: anchored reference + ring (incl. this chunk)."""
        valid = self._chunk[1]
        a = self.ref_capacity - self.ref_len
        b = self.ref_capacity + valid * self.frame_tokens
        return self.k[layer, :, a:b], self.v[layer, :, a:b]

    def end_chunk(self) -> None:
        """Commit the chunk: its slots now hold the clean keys written by the last pass."""
        start, _, positions = self._chunk
        for i, f in enumerate(positions.tolist()):
            self.slot_frame[start + i] = f
        if self.full:
            self.head = (self.head + len(positions)) % self.window_frames
        else:
            self.count += len(positions)
        self.next_frame += len(positions)
        self._chunk = None

    def abort_chunk(self) -> None:
        """Recover from a chunk that failed mid-way (e.g. out of memory).

        Its slots may hold half-written keys, so the frame history is dropped; the text condition and
        the anchored reference are kept, and the stream goes on from the next frame.
        """
        self._chunk = None
        self.slot_frame = [-1] * self.window_frames
        self.count, self.head = 0, 0

    def memory_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.k, self.v, self.ref_k_raw, self.cross_k, self.cross_v))
