"""Noise levels (ComfyUI SIGMAS) for the RelightVid samplers, in the MODEL's own noise schedule.

Plain Python over ComfyUI's ``model_sampling`` object (passed in): no ComfyUI import.
"""

from __future__ import annotations

import torch

from ...relightvid_core.errors import InputError
from ...relightvid_core.sampling import build_scheduler
from ...relightvid_core.sampling.schedulers import (
    OFFICIAL_SCHEDULERS,
    official_timesteps,
)

# The command line's sigma-based schedulers run here as ComfyUI's samplers of these names.
COMFY_SAMPLERS = {
    "euler": "euler",
    "euler_ancestral": "euler_ancestral",
    "dpmpp_2m": "dpmpp_2m",
    "dpmpp_2m_karras": "dpmpp_2m",
    "unipc": "uni_pc",
}
SIGMA_TOLERANCE = 1e-4  # relative: what float32 leaves between two computations of one timestep's noise level


def require_model_sampling(model):
    """The discrete noise schedule of ``model`` (a ComfyUI MODEL).

    Raises:
        InputError: the MODEL has none (not an SD1.5-style diffusion model).
    """
    model_sampling = model.get_model_object("model_sampling")
    if not hasattr(model_sampling, "sigma"):
        raise InputError("model must be a diffusion MODEL with a discrete noise schedule (SD1.5).")
    return model_sampling


def timestep_sigmas(model_sampling, timesteps: list[int], final: int | None) -> torch.Tensor:
    """(len(timesteps) + 1,) float32: the noise level of each timestep, then of ``final`` (None: noise level 0)."""
    sigmas = model_sampling.sigma(torch.tensor(timesteps, dtype=torch.float32)).float().cpu()
    last = torch.zeros(1) if final is None else model_sampling.sigma(torch.tensor([float(final)])).float().cpu()
    return torch.cat([sigmas, last])


def official_sigmas(model_sampling, scheduler: str, steps: int, denoise: float = 1.0) -> torch.Tensor:
    """SIGMAS of the official timesteps (``scheduler`` ddpm or ddim) in the model's own schedule."""
    return timestep_sigmas(model_sampling, *official_timesteps(scheduler, steps, denoise))


def library_sigmas(scheduler: str, steps: int) -> torch.Tensor:
    """SIGMAS of one of the command line's sigma-based schedulers (:data:`COMFY_SAMPLERS`), ending in 0."""
    return build_scheduler(scheduler, steps).sigmas.float().cpu()


def sampler_sigmas(model_sampling, scheduler: str, steps: int) -> torch.Tensor:
    """The SIGMAS the RelightVid Sampler samples ``scheduler`` over."""
    if scheduler in OFFICIAL_SCHEDULERS:
        return official_sigmas(model_sampling, scheduler, steps)
    return library_sigmas(scheduler, steps)


def sigmas_timesteps(model_sampling, sigmas: torch.Tensor) -> list[int]:
    """The training timestep of each noise level but the last (the one each step starts from)."""
    return [round(float(t)) for t in model_sampling.timestep(sigmas[:-1].float().cpu()).tolist()]
