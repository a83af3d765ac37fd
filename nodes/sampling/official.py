"""The official RelightVid samplers, DDPM and DDIM, as ComfyUI SAMPLERs.

This module talks to ComfyUI: it subclasses ComfyUI's ``KSAMPLER`` and is imported only inside ComfyUI, when a
sampling node first needs it. The loop is the library's (``run_steps``, the diffusers DDPM/DDIM schedulers the
command line steps with); ComfyUI supplies the guided prediction, progress, previews and Cancel. So that the
same seed gives the same video here and on the command line:

* the starting noise is ComfyUI's (``prepare_noise``: one CPU draw from the seed, as the library draws it), and
  a full schedule starts from it unscaled, as the official sampler does, not at ComfyUI's σ·noise;
* every DDPM step draws its noise from a CPU generator seeded with the seed, after the draw of the starting
  noise, as the library does;
* the result is the official sampler's last latent. After DDIM's last step (timestep 0) that latent is the
  official one, not ComfyUI's rescaled x (a factor √(1 + σ₀²) = 1.000425 apart).
"""

from __future__ import annotations

import math

import comfy.samplers
import torch

from ...relightvid_core.errors import InputError
from ...relightvid_core.sampling.sample import run_steps
from ...relightvid_core.sampling.schedulers import (
    FINAL_TIMESTEP,
    scheduler_for_timesteps,
    scheduler_spec,
)
from .schedule import SIGMA_TOLERANCE, sigmas_timesteps, timestep_sigmas


def official_schedule(model_sampling, name: str, sigmas: torch.Tensor):
    """The official scheduler ``name`` positioned on ``sigmas``, and the index of their first step in it.

    Raises:
        InputError: ``sigmas`` are not the noise levels of an official schedule of ``name`` (or a tail of one).
    """
    if len(sigmas) < 2:
        raise InputError("the RelightVid official sampler needs at least one step (two sigmas).")
    advice = f"give it the sigmas of RelightVid Schedule with scheduler {name}"
    try:
        scheduler, start = scheduler_for_timesteps(name, sigmas_timesteps(model_sampling, sigmas))
    except InputError as error:
        raise InputError(f"{str(error).rstrip('.')}: {advice}.") from None
    timesteps = [int(t) for t in scheduler.timesteps[start:].tolist()]
    expected = timestep_sigmas(model_sampling, timesteps, FINAL_TIMESTEP[name])
    if not torch.allclose(sigmas.float().cpu(), expected, rtol=SIGMA_TOLERANCE, atol=0.0):
        raise InputError(
            f"the sigmas are not the official {name} noise levels of timesteps {timesteps[:3]}…: {advice}."
        )
    return scheduler, start


def step_generator(seed: object, shape: torch.Size) -> torch.Generator:
    """The CPU generator the library draws DDPM's step noise from: seeded with ``seed``, past the starting noise.

    Raises:
        InputError: the sampling run has no integer seed.
    """
    if not isinstance(seed, int):
        raise InputError(f"the RelightVid official sampler needs the sampling run's integer seed; got {seed!r}.")
    generator = torch.Generator("cpu").manual_seed(seed)
    torch.randn(shape, generator=generator)  # the starting noise's draw (ComfyUI's prepare_noise made it)
    return generator


@torch.no_grad()
def sample_official(
    model,
    x,
    sigmas,
    extra_args=None,
    callback=None,
    disable=None,
    scheduler_name="ddpm",
):
    """A k-diffusion-style sampler function: ``x`` is ComfyUI's starting latent (noise · √(1 + σ₀²) for a
    full schedule, see :meth:`OfficialSampler.max_denoise`), ``model(x, σ)`` its denoiser."""
    extra_args = {} if extra_args is None else extra_args
    model_sampling = model.inner_model.inner_model.model_sampling
    scheduler, start = official_schedule(model_sampling, scheduler_name, sigmas)
    options = (
        {"generator": step_generator(extra_args.get("seed"), x.shape)}
        if scheduler_spec(scheduler_name).stochastic
        else {}
    )
    s_in = x.new_ones([x.shape[0]])

    def predict_eps(index: int, model_input: torch.Tensor, _timestep: torch.Tensor) -> torch.Tensor:
        sigma = sigmas[index]
        scaled = model_input * math.sqrt(1.0 + float(sigma) ** 2)  # ComfyUI's variance-exploding latent
        denoised = model(scaled, sigma * s_in, **extra_args)
        if callback is not None:
            callback(
                {
                    "x": scaled,
                    "i": index,
                    "sigma": sigma,
                    "sigma_hat": sigma,
                    "denoised": denoised,
                }
            )
        return (scaled - denoised) / sigma

    start_latent = x.float() / math.sqrt(1.0 + float(sigmas[0]) ** 2)  # the scheduler's variance-preserving latent
    return run_steps(scheduler, start_latent, predict_eps, options, start=start).to(x.dtype)


class OfficialSampler(comfy.samplers.KSAMPLER):
    """:func:`sample_official` for ``scheduler_name`` (ddpm or ddim) as a SAMPLER."""

    def __init__(self, scheduler_name: str):
        super().__init__(sample_official, extra_options={"scheduler_name": scheduler_name})
        self.scheduler_name = scheduler_name

    def max_denoise(self, model_wrap, sigmas) -> bool:
        # ComfyUI starts a run at its largest noise level from √(1 + σ²)·noise and any later one from σ·noise; the
        # official sampler starts its full schedule (from 950 or 951, below the largest level) from the noise itself.
        _scheduler, start = official_schedule(model_wrap.inner_model.model_sampling, self.scheduler_name, sigmas)
        return start == 0
