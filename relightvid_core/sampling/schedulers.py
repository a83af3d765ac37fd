"""Diffusers schedulers by name, with RelightVid's exact settings, and the noise level of each step.

Every scheduler shares SD1.5's training schedule: 1000 steps, β scaled-linear 0.00085 → 0.012,
ε-prediction. ``ddpm`` and ``ddim`` reproduce the official sampler's settings exactly (docs/official_code.md §c);
the sigma-based solvers (Euler, Euler ancestral, DPM++ 2M, UniPC) use "trailing" spacing, so that, like
ComfyUI's ``normal`` schedule, their first step starts at the top of the training schedule (t = 999).
"""

from __future__ import annotations

import importlib
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from ..errors import InputError
from .checks import is_whole_number

if TYPE_CHECKING:
    from diffusers.schedulers.scheduling_utils import SchedulerMixin

TRAIN_SCHEDULE = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "epsilon",
}
SIGMA_SPACING = {"timestep_spacing": "trailing"}
# What NumPy 2 says when diffusers' sigma schedulers call np.array() on a torch tensor, whose __array__ takes no
# `copy` argument; the call is inside diffusers (their __init__ and set_timesteps), so it cannot be avoided here.
NUMPY_COPY_DEPRECATION = r"__array__ implementation doesn't accept a copy keyword"


@contextmanager
def _numpy_copy_deprecation_ignored():
    """Silence exactly that DeprecationWarning around the diffusers calls that raise it; nothing else."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=NUMPY_COPY_DEPRECATION, category=DeprecationWarning)
        yield


@dataclass(frozen=True)
class SchedulerSpec:
    """How to build one named scheduler: a diffusers class with settings beyond the training schedule.
    ``stochastic``: its ``step`` draws noise from the generator."""

    class_name: str
    stochastic: bool
    settings: dict[str, Any] = field(default_factory=dict)

    def build(self) -> SchedulerMixin:
        # diffusers costs seconds to import; the table is read at start-up (names), the classes only here.
        scheduler_class = getattr(importlib.import_module("diffusers"), self.class_name)
        with _numpy_copy_deprecation_ignored():
            return scheduler_class(**TRAIN_SCHEDULE, **self.settings)


SCHEDULERS: dict[str, SchedulerSpec] = {
    # Official default: ancestral DDPM, 20 steps → timesteps 950, 900, …, 0 (docs/official_code.md §c).
    "ddpm": SchedulerSpec(
        "DDPMScheduler",
        stochastic=True,
        settings={"clip_sample": False, "variance_type": "fixed_small", "timestep_spacing": "leading", "steps_offset": 0},
    ),
    # Official alternative and IC-Light's own: eta 0 → timesteps 951, 901, …, 1; final ᾱ_prev = ᾱ[0].
    "ddim": SchedulerSpec(
        "DDIMScheduler",
        stochastic=False,
        settings={"clip_sample": False, "set_alpha_to_one": False, "steps_offset": 1, "timestep_spacing": "leading"},
    ),
    "euler": SchedulerSpec("EulerDiscreteScheduler", stochastic=False, settings=SIGMA_SPACING),
    "euler_ancestral": SchedulerSpec("EulerAncestralDiscreteScheduler", stochastic=True, settings=SIGMA_SPACING),
    "dpmpp_2m": SchedulerSpec(
        "DPMSolverMultistepScheduler",
        stochastic=False,
        settings={**SIGMA_SPACING, "algorithm_type": "dpmsolver++", "solver_order": 2},
    ),
    "dpmpp_2m_karras": SchedulerSpec(
        "DPMSolverMultistepScheduler",
        stochastic=False,
        settings={**SIGMA_SPACING, "algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True},
    ),
    "unipc": SchedulerSpec("UniPCMultistepScheduler", stochastic=False, settings=SIGMA_SPACING),
}
SCHEDULER_NAMES = tuple(SCHEDULERS)


def scheduler_spec(name: str) -> SchedulerSpec:
    """The table entry for ``name``.

    Raises:
        InputError: an unknown name (the message lists the known ones).
    """
    try:
        return SCHEDULERS[name]
    except KeyError:
        raise InputError(f"scheduler must be one of {', '.join(SCHEDULER_NAMES)}; got {name!r}.") from None


def build_scheduler(name: str, steps: int, device: torch.device | str = "cpu") -> SchedulerMixin:
    """A fresh scheduler (diffusers schedulers are stateful: one per sampling run) with its timesteps set.

    Raises:
        InputError: an unknown name, or ``steps`` outside 1..1000.
    """
    spec = scheduler_spec(name)
    most = TRAIN_SCHEDULE["num_train_timesteps"]
    if not (is_whole_number(steps) and 1 <= steps <= most):
        raise InputError(f"steps must be an integer in 1..{most}; got {steps!r}.")
    scheduler = spec.build()
    with _numpy_copy_deprecation_ignored():
        scheduler.set_timesteps(steps, device=device)
    return scheduler


def noise_levels(scheduler: SchedulerMixin) -> torch.Tensor:
    """σ_t = √((1 − ᾱ_t)/ᾱ_t) of each of the scheduler's timesteps, (steps,) float32 on the CPU.

    Sigma-based schedulers keep this table (``sigmas``, one entry more than there are steps, ending in the
    final level); DDPM and DDIM only keep ᾱ, indexed by their integer timesteps.
    """
    steps = len(scheduler.timesteps)
    if getattr(scheduler, "sigmas", None) is not None:
        return scheduler.sigmas[:steps].detach().float().cpu()
    alphas_cumprod = scheduler.alphas_cumprod[scheduler.timesteps.long().cpu()].float()
    return ((1 - alphas_cumprod) / alphas_cumprod).sqrt()


def predict_x0(model_input: torch.Tensor, eps: torch.Tensor, sigma: float) -> torch.Tensor:
    """The clean latents a noise prediction implies: x̂₀ = x·√(1 + σ²) − σ·ε.

    ``model_input`` is the variance-preserving latent the U-Net saw (after ``scale_model_input``), so one
    formula serves every scheduler: it equals (x − √(1−ᾱ)·ε)/√ᾱ (DDPM eq. 15) with ᾱ = 1/(1 + σ²), and
    x_σ − σ·ε for Karras-style schedulers whose latent is x_σ = x·√(1 + σ²).
    """
    return model_input * (1.0 + sigma**2) ** 0.5 - sigma * eps


# --- the official samplers' schedules ---

OFFICIAL_SCHEDULERS = ("ddpm", "ddim")
# Where each official scheduler's last step lands (docs/official_code.md §c): DDIM (set_alpha_to_one off) ends on
# ᾱ[0], i.e. timestep 0; DDPM's last step ends on ᾱ = 1, noise level 0 (None).
FINAL_TIMESTEP: dict[str, int | None] = {"ddpm": None, "ddim": 0}


def _check_official(name: str) -> None:
    if name not in OFFICIAL_SCHEDULERS:
        raise InputError(f"scheduler must be one of {', '.join(OFFICIAL_SCHEDULERS)}; got {name!r}.")


def official_timesteps(name: str, steps: int, denoise: float = 1.0) -> tuple[list[int], int | None]:
    """The official sampler's timesteps (leading spacing) and the timestep its last step lands on.

    ``denoise`` < 1 keeps the last ``steps`` of a ``steps / denoise``-step schedule, as ComfyUI's schedulers do.

    Returns:
        (timesteps, final): e.g. ddpm 20 → ([950, 900, …, 0], None: noise level 0); ddim 20 → ([951, …, 1], 0).

    Raises:
        InputError: an unknown scheduler, denoise outside (0, 1], or more than 1000 steps in all.
    """
    _check_official(name)
    if not (0.0 < denoise <= 1.0):
        raise InputError(f"denoise must be in (0, 1]; got {denoise!r}.")
    total = int(steps / denoise)
    timesteps = build_scheduler(name, total).timesteps.tolist()[-steps:]
    return [int(t) for t in timesteps], FINAL_TIMESTEP[name]


def scheduler_for_timesteps(name: str, timesteps: list[int]) -> tuple[SchedulerMixin, int]:
    """The official scheduler ``name`` whose schedule ends with ``timesteps``, and the index of their first.

    Any tail of an official schedule (what :func:`official_timesteps` gives for a ``denoise``) names its schedule:
    leading spacing steps by 1000 // (step count), so the spacing of two timesteps leaves a few step counts to try;
    one timestep is always a schedule's last, whose step lands on the final level whatever the count.

    Raises:
        InputError: the timesteps are no tail of an official schedule of ``name``.
    """
    _check_official(name)
    most = TRAIN_SCHEDULE["num_train_timesteps"]
    if len(timesteps) >= 2 and timesteps[0] > timesteps[1]:
        stride = timesteps[0] - timesteps[1]
        candidates = range(most // (stride + 1) + 1, most // stride + 1)
    else:
        candidates = range(len(timesteps), most + 1)
    for total in candidates:
        if total < len(timesteps):
            continue
        scheduler = build_scheduler(name, total)
        tail = [int(t) for t in scheduler.timesteps.tolist()[-len(timesteps) :]]
        if tail == list(timesteps):
            return scheduler, total - len(timesteps)
    raise InputError(
        f"the timesteps {timesteps[:3]}… are not the official {name} schedule's; make the sigmas with RelightVid "
        f"Schedule ({name})."
    )
