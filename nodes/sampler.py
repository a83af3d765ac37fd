"""The RelightVid sampler node: 3-way guidance with the Illumination-Invariant Ensemble, in context windows."""

from __future__ import annotations

import dataclasses
import logging
import math
import re

import torch

from ..relightvid_core.errors import InputError, SamplingInterrupted
from ..relightvid_core.sampling import (
    FUSIONS,
    MAX_WINDOW_FRAMES,
    SCHEDULER_NAMES,
    ContextWindows,
    iie_image_conditions,
    sample,
)
from ..relightvid_core.sampling.memory import activation_bytes, batch_that_fits
from ..relightvid_core.vae import LATENT_CHANNELS, LATENT_FACTOR, SD_LATENT_SCALE
from ..relightvid_core.values import counted
from . import checks, host
from .payloads import BACKGROUND_TYPE, FOREGROUND_TYPE, MODEL_TYPE, TEXT_TYPE, Background, Foreground

logger = logging.getLogger(__name__)

CATEGORY = "RelightVid/sampling"
MAX_IIE_FACTORS = 16
MAX_SEED = 0xFFFFFFFFFFFFFFFF
MEMORY_MODES = ("auto", "fast", "low")
EXAMPLE_FACTORS = "0.5, 0.75, 1.0, 1.25, 1.5"


def parse_factors(text: str) -> tuple[float, ...]:
    """'0.5, 0.75, 1.0' → (0.5, 0.75, 1.0): comma- or space-separated brightness factors, each finite and > 0.

    Raises:
        InputError: an empty list, a non-number, a factor <= 0, or more than :data:`MAX_IIE_FACTORS`.
    """
    parts = [part for part in re.split(r"[,\s;]+", text.strip()) if part]
    try:
        factors = tuple(float(part) for part in parts)
    except ValueError:
        raise InputError(
            f"iie_factors must be numbers separated by commas, e.g. {EXAMPLE_FACTORS!r}; got {text!r}."
        ) from None
    if not factors or not all(math.isfinite(k) and k > 0 for k in factors):
        raise InputError(
            f"iie_factors must be one or more brightness factors > 0, e.g. {EXAMPLE_FACTORS!r} (or 1.0 for off); got "
            f"{text!r}."
        )
    if len(factors) > MAX_IIE_FACTORS:
        raise InputError(f"iie_factors holds {len(factors)} factors; at most {MAX_IIE_FACTORS} are allowed.")
    return factors


def factors_problem(text: object) -> str | None:
    """:func:`parse_factors`' message for ``text``, or None when it parses (or is linked: None)."""
    if text is None:
        return None
    try:
        parse_factors(str(text))
    except InputError as error:
        return str(error)
    return None


def window_problem(length: object, overlap: object) -> str | None:
    """Neighbouring windows must advance: the overlap has to be smaller than the window."""
    if isinstance(length, int) and isinstance(overlap, int) and overlap >= length:
        return f"window_overlap must be smaller than window_length ({length}); got {overlap}."
    return None


def _settings_problem(iie_factors, window_length, window_overlap) -> str | None:
    return factors_problem(iie_factors) or window_problem(window_length, window_overlap)


def check_pairing(foreground: Foreground, background: Background) -> None:
    """The background must have been made for this foreground's frame count and size.

    Raises:
        InputError: naming both counts or sizes.
    """
    if background.count != foreground.count:
        raise InputError(
            f"the background has {counted(background.count, 'frame')} but the foreground has {foreground.count}; make the "
            "background from the same RelightVid Foreground node that feeds the sampler."
        )
    if (background.height, background.width) != (foreground.height, foreground.width):
        raise InputError(
            f"the background is {background.width}x{background.height} but the foreground is "
            f"{foreground.width}x{foreground.height}; make both from the same RelightVid Foreground node."
        )


def background_latents(foreground: Foreground, background: Background, progress) -> torch.Tensor:
    """(T, 4, h, w) scaled latents; no background is the trained zero latent (UPSTREAM.md §d)."""
    if background.frames is None:
        shape = (
            foreground.count,
            LATENT_CHANNELS,
            foreground.height // LATENT_FACTOR,
            foreground.width // LATENT_FACTOR,
        )
        return torch.zeros(shape)
    return host.encode_frames(foreground.vae, background.frames, progress)


class RelightVidSampler:
    DESCRIPTION = (
        "Relights the foreground under the background/light condition with RelightVid's 3-way guidance "
        "(text 7.5, image 1.2 upstream). With several IIE factors, the foreground is encoded at each brightness and "
        "the guided predictions are averaged (Illumination-Invariant Ensemble). Clips longer than the window are "
        "sampled in overlapping windows. Decode the LATENT with VAE Decode."
    )
    CATEGORY = CATEGORY
    FUNCTION = "relight"
    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("The relit clip as SD1.5 latents, one per frame (decode with VAE Decode).",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "relightvid_model": (MODEL_TYPE, {"tooltip": "The model from Load RelightVid Temporal Weights."}),
                "foreground": (FOREGROUND_TYPE, {"tooltip": "The subject, from RelightVid Foreground."}),
                "background": (
                    BACKGROUND_TYPE,
                    {
                        "tooltip": "The lighting: RelightVid Background, Light Preset or HDR Map, made from the same "
                        "foreground."
                    },
                ),
                "text": (TEXT_TYPE, {"tooltip": "Prompt and uncond, from RelightVid Text Conditioning."}),
                "seed": (
                    "INT",
                    {
                        "default": 0,
                        "min": 0,
                        "max": MAX_SEED,
                        "control_after_generate": True,
                        "tooltip": "Seed of the initial noise and of the stochastic schedulers' noise, drawn on the "
                        "CPU so a seed gives the same result on any device.",
                    },
                ),
                "steps": ("INT", {"default": 20, "min": 1, "max": 1000, "tooltip": "Denoising steps (upstream: 20)."}),
                "scheduler": (
                    list(SCHEDULER_NAMES),
                    {
                        "default": "ddpm",
                        "tooltip": "ddpm is the official sampler (ancestral); ddim is the deterministic alternative; "
                        "the others are diffusers solvers.",
                    },
                ),
                "text_scale": (
                    "FLOAT",
                    {
                        "default": 7.5,
                        "min": 0.0,
                        "max": 30.0,
                        "step": 0.1,
                        "round": 0.01,
                        "tooltip": "Text guidance: pull from the image-only prediction toward the prompt (upstream "
                        "7.5).",
                    },
                ),
                "image_scale": (
                    "FLOAT",
                    {
                        "default": 1.2,
                        "min": 0.0,
                        "max": 10.0,
                        "step": 0.05,
                        "round": 0.01,
                        "tooltip": "Image guidance: pull from the unconditional prediction toward the "
                        "foreground/background (upstream 1.2).",
                    },
                ),
                "iie_factors": (
                    "STRING",
                    {
                        "default": "1.0",
                        "tooltip": f"Illumination-Invariant Ensemble: foreground brightness factors whose predictions "
                        f"are averaged, e.g. {EXAMPLE_FACTORS}. 1.0 turns it off; each extra factor adds two U-Net "
                        f"branches per step.",
                    },
                ),
                "window_length": (
                    "INT",
                    {
                        "default": 16,
                        "min": 1,
                        "max": MAX_WINDOW_FRAMES,
                        "tooltip": "Frames per context window (16 = the training clip length). Clips up to this "
                        "length are sampled at once.",
                    },
                ),
                "window_overlap": (
                    "INT",
                    {
                        "default": 4,
                        "min": 0,
                        "max": MAX_WINDOW_FRAMES - 1,
                        "tooltip": "Frames shared by neighbouring windows; must be smaller than window_length.",
                    },
                ),
                "window_fusion": (
                    list(FUSIONS),
                    {
                        "default": "pyramid",
                        "tooltip": "How overlapping windows are blended: pyramid (trust window centres), linear "
                        "(cross-fade) or flat (average).",
                    },
                ),
                "closed_loop": (
                    "BOOLEAN",
                    {
                        "default": False,
                        "tooltip": "Wrap the last window around to the first frames (for looping clips).",
                    },
                ),
                "memory_mode": (
                    list(MEMORY_MODES),
                    {
                        "default": "auto",
                        "tooltip": "auto: split the guidance branches over several U-Net calls when free memory is "
                        "short; fast: all in one call on a GPU (calls of 3 on the CPU, where that is faster); low: one "
                        "branch per call and unload the model afterwards. Results are the same.",
                    },
                ),
                "guidance_rescale": (
                    "FLOAT",
                    {
                        "default": 0.0,
                        "min": 0.0,
                        "max": 1.0,
                        "step": 0.05,
                        "tooltip": "Rescale the guided prediction toward the unconditional one's spread (0: off, as "
                        "upstream).",
                    },
                ),
            },
            "hidden": checks.HIDDEN_NODE_ID,
        }

    @classmethod
    def VALIDATE_INPUTS(cls, settings):
        return checks.queued_problem(
            cls, settings, _settings_problem, "iie_factors", "window_length", "window_overlap"
        )

    def relight(
        self,
        relightvid_model,
        foreground,
        background,
        text,
        seed,
        steps,
        scheduler,
        text_scale,
        image_scale,
        iie_factors,
        window_length,
        window_overlap,
        window_fusion,
        closed_loop,
        memory_mode,
        guidance_rescale,
        settings=None,
    ):
        checks.check_numbers(type(self), locals())
        checks.check(_settings_problem(iie_factors, window_length, window_overlap))
        factors = parse_factors(iie_factors)
        check_pairing(foreground, background)
        window = ContextWindows(window_length, window_overlap, closed_loop, window_fusion)
        encoded_frames = foreground.count * (len(factors) + (background.frames is not None))
        unet_passes = steps * window.count(foreground.count)
        branches = 1 + 2 * len(factors)
        logger.info(
            "RelightVid Sampler: %d frames at %dx%d: the VAE encodes %d frames, then %d steps x %d window(s) = %d "
            "U-Net passes of up to %d frames, each evaluating %d guidance branches (%d branch evaluations)",
            foreground.count,
            foreground.width,
            foreground.height,
            encoded_frames,
            steps,
            unet_passes // steps,
            unet_passes,
            min(foreground.count, window_length),
            branches,
            unet_passes * branches,
        )
        # One bar over the whole job: a frame through the VAE or a window through the U-Net is one unit.
        progress = host.JobProgress(encoded_frames + unet_passes)
        window = dataclasses.replace(window, progress=lambda _done, _total: progress.advance())
        # Encode first: the VAE's own load may push the U-Net off the GPU, so the U-Net is placed last.
        conditions = iie_image_conditions(
            foreground.frames,
            foreground.masks,
            factors,
            lambda frames: host.encode_frames(foreground.vae, frames, progress.advance),
            background_latents(foreground, background, progress.advance),
            foreground.gray,
        )
        latent_shape = (1, foreground.count, LATENT_CHANNELS, *conditions[0].shape[-2:])
        generator = torch.Generator("cpu").manual_seed(seed)
        noise = torch.randn(latent_shape, generator=generator)

        unet = relightvid_model.model.diffusion_model
        # Memory of one branch of one window, from the network's own traced forward (fake tensors, cached per size).
        call_size = (min(foreground.count, window_length), *latent_shape[-2:])
        tokens = text.cond.shape[-2]
        per_item = activation_bytes(unet, *call_size, tokens=tokens)
        device = host.load_for_sampling(relightvid_model, per_item * (1 if memory_mode == "low" else branches))
        if memory_mode == "fast":
            max_batch = None
        elif memory_mode == "low":
            max_batch = 1
        else:
            max_batch = batch_that_fits(branches, per_item, host.activation_budget(device))
        try:
            with host.ClipPreview(device) as preview:  # every frame of each step's x̂₀, animated
                latents = sample(
                    unet,
                    noise,
                    conditions,
                    text.cond,
                    text.uncond,
                    scheduler=scheduler,
                    steps=steps,
                    text_cfg=text_scale,
                    img_cfg=image_scale,
                    generator=generator,
                    window=window,
                    callback=lambda info: preview.show(info.denoised[0]),  # the windows move the bar
                    should_interrupt=host.should_interrupt,
                    guidance_rescale=guidance_rescale,
                    max_batch=max_batch,
                )
        except SamplingInterrupted as error:
            host.raise_interrupted(error)
        finally:
            if memory_mode == "low":
                host.offload(relightvid_model)
        # ComfyUI's LATENT holds unscaled VAE latents: VAE Decode applies the model's scale itself.
        return ({"samples": latents[0].float().cpu() / SD_LATENT_SCALE},)
