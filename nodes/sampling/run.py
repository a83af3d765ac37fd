"""One sampling run of a GUIDER, as SamplerCustomAdvanced does it: ComfyUI's noise from the seed, the sampler and
sigmas a RelightVid scheduler name stands for, ComfyUI's progress bar and preview.

This module talks to ComfyUI (``comfy.sample``, ``comfy.samplers``, ``latent_preview``) and is imported only
inside ComfyUI, when the RelightVid Sampler first runs.
"""

from __future__ import annotations

import comfy.sample
import comfy.samplers
import comfy.utils
import latent_preview
import torch

from ...relightvid_core.sampling.schedulers import OFFICIAL_SCHEDULERS
from .official import OfficialSampler
from .schedule import COMFY_SAMPLERS, require_model_sampling, sampler_sigmas


def sampler_for(scheduler: str):
    """The SAMPLER of a RelightVid scheduler name: the official sampler, or ComfyUI's sampler of that kind."""
    if scheduler in OFFICIAL_SCHEDULERS:
        return OfficialSampler(scheduler)
    return comfy.samplers.sampler_object(COMFY_SAMPLERS[scheduler])


def run_guider(guider, scheduler: str, steps: int, latent: torch.Tensor, seed: int) -> torch.Tensor:
    """Sample ``guider`` from ``latent`` (F, 4, h, w, unscaled) with ``scheduler``; the result is unscaled too."""
    model = guider.model_patcher
    sigmas = sampler_sigmas(require_model_sampling(model), scheduler, steps)
    noise = comfy.sample.prepare_noise(latent, seed)
    callback = latent_preview.prepare_callback(model, len(sigmas) - 1)
    samples = guider.sample(
        noise,
        latent,
        sampler_for(scheduler),
        sigmas,
        callback=callback,
        disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED,
        seed=seed,
    )
    return samples.cpu()
