"""Few-step flow-matching schedule.

Noisy latents follow x_t = (1 - s) * x0 + s * noise and the model predicts the velocity noise - x0.
Timesteps come from a fixed list (e.g. [1000, 750, 500, 250]) warped by the usual shift
s' = shift * s / (1 + (shift - 1) * s). Between steps the predicted clean latent is re-noised with
fresh noise to the next level, as in Self Forcing; the clean result is what writes the KV cache.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


def shift_sigma(sigma: torch.Tensor | float, shift: float):
    return shift * sigma / (1 + (shift - 1) * sigma)


@dataclass
class FlowSchedule:
    steps: list[int]
    shift: float = 1.0

    @property
    def sigmas(self) -> list[float]:
        return [float(shift_sigma(t / 1000.0, self.shift)) for t in self.steps]

    @staticmethod
    def add_noise(x0, noise, sigma):
        return (1 - sigma) * x0 + sigma * noise

    @staticmethod
    def predict_x0(xt, velocity, sigma):
        return xt - sigma * velocity

    @staticmethod
    def velocity_target(x0, noise):
        return noise - x0

    def sample(self, denoise, shape, generator=None, device=None, dtype=torch.float32, start=None,
               strength: float = 1.0):
        """Run the few-step loop. ``denoise(x_t, sigma) -> velocity``.

        ``start`` with ``strength < 1`` starts from a noised ``start`` latent (SDEdit) and skips the
        steps above that noise level.
        """
        sigmas = self.sigmas
        if start is not None and strength < 1.0:
            sigmas = [s for s in sigmas if s <= strength + 1e-6] or [sigmas[-1]]
        noise = torch.randn(shape, generator=generator, device=device, dtype=dtype)
        x = noise if start is None or strength >= 1.0 else self.add_noise(start, noise, sigmas[0])
        x0 = x
        for i, s in enumerate(sigmas):
            x0 = self.predict_x0(x, denoise(x, s), s)
            if i + 1 < len(sigmas):
                fresh = torch.randn(shape, generator=generator, device=device, dtype=dtype)
                x = self.add_noise(x0, fresh, sigmas[i + 1])
        return x0
