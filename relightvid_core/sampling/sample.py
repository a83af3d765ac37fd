"""``sample(...)``: the denoising loop, composing the U-Net, guidance, context windows and a scheduler.

Composition (innermost first): the U-Net evaluates guidance branches (:class:`UNetBranches`, batched or
split), :class:`Guidance` turns them into one ε per clip (IIE members averaged), :class:`ContextWindows`
runs that per window; the loop only ever sees ``model_fn(x, t, cond) -> eps`` and a diffusers scheduler.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .branches import UNetBranches
from .checks import check_guidance, check_sampler_inputs
from .context import MAX_WINDOW_FRAMES, ContextWindows
from .guidance import Conditions, Guidance, ModelFn
from .schedulers import build_scheduler, noise_levels, predict_x0, scheduler_spec


@dataclass(frozen=True)
class StepInfo:
    """What the callback receives after each step.

    Attributes:
        index: 0-based step index; progress is ``(index + 1) / total``.
        total: number of steps.
        timestep: the scheduler's timestep of this step (DDPM: 950, 900, …).
        latents: (B, F, 4, h, w) float32 latents after the step (on the U-Net's device).
        denoised: (B, F, 4, h, w) float32 clean-latent prediction x̂₀ of this step, for previews.
    """

    index: int
    total: int
    timestep: float
    latents: torch.Tensor
    denoised: torch.Tensor


def match_token_counts(*contexts: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Repeat each (B, tokens, D) context along its tokens to their least common multiple.

    The guidance branches share one U-Net batch, so a long prompt (77·k tokens) and the empty prompt
    (77) must agree in length. Cross-attention over a key set repeated n times gives exactly the same
    output (each copy gets 1/n of the weight), so repeating changes nothing but the shape.
    """
    target = math.lcm(*(context.shape[1] for context in contexts))
    return tuple(context.repeat(1, target // context.shape[1], 1) for context in contexts)


def guided_model(
    unet: nn.Module,
    guidance: Guidance,
    window: ContextWindows | None = None,
    max_batch: int | None = None,
    should_interrupt: Callable[[], bool] | None = None,
) -> ModelFn:
    """The :data:`ModelFn` that :func:`sample` steps with: U-Net branches → guidance → windows."""
    model_fn = guidance.wrap(UNetBranches(unet, max_batch, should_interrupt))
    return model_fn if window is None else window.wrap(model_fn)


@torch.no_grad()
def sample(
    unet: nn.Module,
    latents: torch.Tensor,
    img_cond: torch.Tensor | Sequence[torch.Tensor],
    text_cond: torch.Tensor,
    text_uncond: torch.Tensor,
    *,
    scheduler: str = "ddpm",
    steps: int = 20,
    text_cfg: float = 7.5,
    img_cfg: float = 1.2,
    generator: torch.Generator | None = None,
    window: ContextWindows | None = None,
    callback: Callable[[StepInfo], None] | None = None,
    should_interrupt: Callable[[], bool] | None = None,
    guidance_rescale: float = 0.0,
    max_batch: int | None = None,
    hdr_tokens: torch.Tensor | None = None,
    hdr_cfg: float = 7.5,
) -> torch.Tensor:
    """Denoise ``latents`` into relit latents, as the official sampler does (docs/official_code.md §c).

    Args:
        unet: a :class:`~relightvid_core.RelightVidUNet`; inputs are cast to its device and dtype, scheduler
            maths stays in float32.
        latents: (B, F, 4, h, w) unit-variance initial noise (scaled by the scheduler's
            ``init_noise_sigma`` here where it needs it). Never modified.
        img_cond: (B, F, 8, h, w) fg latent(4) ‖ bg latent(4), scaled; or a list of such tensors, one per
            IIE brightness factor (see :func:`iie_image_conditions`), whose guided predictions are averaged.
        text_cond, text_uncond: (B or 1, tokens, D) prompt and empty-prompt embeddings; differing token
            counts (a long prompt's 77·k) are matched by repetition, which leaves cross-attention unchanged.
        scheduler: a name in :data:`SCHEDULER_NAMES`; ``ddpm`` (20 steps) is the official default.
        steps: number of denoising steps, 1..1000.
        text_cfg, img_cfg: text and image guidance scales (official 7.5 and 1.2).
        generator: the source of every random draw of stochastic schedulers (``ddpm``,
            ``euler_ancestral``); None uses torch's global RNG, as upstream does.
        window: context windows for long clips (required beyond 32 frames); None: the whole clip at once.
        callback: called with a :class:`StepInfo` after every step (progress and previews).
        should_interrupt: polled before every U-Net call; True raises :class:`SamplingInterrupted`.
        guidance_rescale: 0..1, rescale the guided ε toward the std of the unconditional branch (0: off).
        max_batch: U-Net batch items per call; a small number splits the 3 (IIE: 1 + 2N) branches over
            several calls (same result, less memory). None: all in one call on a GPU, calls of at most 3 items
            on the CPU, where larger batches are slower per item.
        hdr_tokens: (B, F, n, D) per-frame HDR tokens adding a 4th guidance branch; None: 3-way guidance.
        hdr_cfg: HDR guidance scale.

    Returns:
        (B, F, 4, h, w) final latents, with ``latents``' device and dtype.

    Raises:
        InputError: mismatched frames, sizes or batch, 0 frames, NaN/inf in an input, guidance scales that
            are not finite in 0..100, an unknown scheduler, bad steps, or a window the motion modules cannot take; the message names the argument.
        SamplingInterrupted: ``should_interrupt`` returned True.
    """
    images = (img_cond,) if isinstance(img_cond, torch.Tensor) else tuple(img_cond)
    max_frames = min(MAX_WINDOW_FRAMES, unet.max_frames)
    window_length = None if window is None else window.length
    check_sampler_inputs(unet, latents, images, text_cond, text_uncond, hdr_tokens, window_length, max_frames)
    check_guidance(text_cfg, img_cfg, hdr_cfg, guidance_rescale)
    spec = scheduler_spec(scheduler)
    parameter = next(unet.parameters())
    device, dtype = parameter.device, parameter.dtype
    batch = latents.shape[0]
    noise_scheduler = build_scheduler(scheduler, steps, device)
    sigmas = noise_levels(noise_scheduler).tolist()
    text_cond, text_uncond = match_token_counts(text_cond, text_uncond)
    cond = Conditions(
        images=tuple(image.to(device, dtype) for image in images),
        text=text_cond.to(device, dtype).expand(batch, -1, -1),
        text_uncond=text_uncond.to(device, dtype).expand(batch, -1, -1),
        hdr=None if hdr_tokens is None else hdr_tokens.to(device, dtype),
    )
    guidance = Guidance(text_cfg=text_cfg, img_cfg=img_cfg, hdr_cfg=hdr_cfg, rescale=guidance_rescale)
    model_fn = guided_model(unet, guidance, window, max_batch, should_interrupt)
    step_options = {"generator": generator} if spec.stochastic else {}

    def on_step(index: int, t: torch.Tensor, model_input: torch.Tensor, eps: torch.Tensor, x: torch.Tensor) -> None:
        if callback is not None:
            callback(StepInfo(index, len(sigmas), t.item(), x, predict_x0(model_input, eps, sigmas[index])))

    # A new tensor (even where init_noise_sigma is 1): the caller's latents are never written to.
    x = latents.to(device, torch.float32) * noise_scheduler.init_noise_sigma
    def predict_eps(_index: int, model_input: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return model_fn(model_input, t, cond)

    x = run_steps(noise_scheduler, x, predict_eps, step_options, on_step)
    return x.to(latents.device, latents.dtype)


StepCallback = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], None]
"""Called after each step with (index, timestep, model input, ε, latents after the step)."""


def run_steps(
    scheduler,
    x: torch.Tensor,
    predict_eps: Callable[[int, torch.Tensor, torch.Tensor], torch.Tensor],
    step_options: dict,
    on_step: StepCallback | None = None,
    start: int = 0,
) -> torch.Tensor:
    """The denoising loop: from ``x`` (in the scheduler's own scale), one scheduler step per timestep from
    ``start`` on; ``predict_eps(index, model input, timestep)`` gives ε. The library's :func:`sample` and the
    ComfyUI pack's official samplers both run it, so they step, and draw their noise, alike.

    ``step_options``: passed to every ``scheduler.step`` (the ``generator`` of stochastic schedulers).
    """
    for index, t in enumerate(scheduler.timesteps[start:]):
        model_input = scheduler.scale_model_input(x, t)
        eps = predict_eps(index, model_input, t)
        x = scheduler.step(eps, t, x, **step_options).prev_sample
        if on_step is not None:
            on_step(index, t, model_input, eps, x)
    return x
