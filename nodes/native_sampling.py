"""Nodes for sampling RelightVid with ComfyUI's own samplers (KSampler, SamplerCustomAdvanced, LoRA, ControlNet).

The MODEL comes from *Apply RelightVid* (:mod:`.native_model`); these nodes supply what it is conditioned
on and how it is sampled:

* **RelightVid Conditioning** puts the fg ‖ bg latents of every frame on the prompt and the empty-prompt
  CONDITIONING: ``positive`` (image + prompt), ``middle`` (image + empty prompt) and ``negative`` (no image,
  empty prompt). Core *DualCFGGuider* with ``cfg_conds`` = text scale (7.5) and ``cfg_cond2_negative`` =
  image scale (1.2), style ``regular``, computes ``ε_neg + cfg2·(ε_mid − ε_neg) + cfg1·(ε_pos − ε_mid)``,
  which is RelightVid's 3-way guidance term for term (UPSTREAM.md §c). KSampler with positive/negative is
  2-way guidance (image and text together).
* **RelightVid Schedule** gives the official DDPM/DDIM timesteps as SIGMAS of the MODEL's schedule.
* **RelightVid IIE Guider** is the Illumination-Invariant Ensemble as a GUIDER.
* **RelightVid Context Windows** makes long clips run in windows that each see their own frames of every
  per-frame condition (core's windows hand every window the first frames' concat latents and hints).

ComfyUI's guider and window-handler subclasses live in :mod:`.native_extensions`, which needs ComfyUI;
everything here imports without it (the node tests run without ComfyUI).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..relightvid_core.errors import InputError
from ..relightvid_core.sampling import ContextWindows, Guidance, build_scheduler
from ..relightvid_core.sampling.iie import iie_image_conditions
from ..relightvid_core.vae import LATENT_CHANNELS, SD_LATENT_SCALE
from . import checks, host
from .native_model import RELIGHTVID_IMAGE_KEY
from .payloads import BACKGROUND_TYPE, FOREGROUND_TYPE, Background, Foreground
from .sampler import (
    EXAMPLE_FACTORS,
    RelightVidSampler,
    background_latents,
    check_pairing,
    factors_problem,
    parse_factors,
    window_problem,
)

try:  # ComfyUI's conditioning helper; absent when the tests import the pack without ComfyUI
    import node_helpers
except ImportError:
    node_helpers = None

CATEGORY = "RelightVid/native sampling"
OFFICIAL_SCHEDULERS = ("ddpm", "ddim")
# Where each official scheduler's last step lands (UPSTREAM.md §c): DDIM (set_alpha_to_one=False) ends on
# ᾱ[0], i.e. timestep 0; DDPM's last step ends on ᾱ = 1, noise level 0 (None here).
FINAL_TIMESTEP = {"ddpm": None, "ddim": 0}
# Settings shared with the RelightVid Sampler (IIE): the same input specs, defaults and tooltips.
GUIDANCE_INPUTS = ("text_scale", "image_scale")
WINDOW_INPUTS = ("window_length", "window_overlap", "window_fusion", "closed_loop")


def sampler_inputs(names: tuple[str, ...]) -> dict:
    """The RelightVid Sampler's specs of the inputs ``names``."""
    specs = RelightVidSampler.INPUT_TYPES()["required"]
    return {name: specs[name] for name in names}



def _extensions(node: str):
    """:mod:`.native_extensions`, imported on first use: it subclasses ComfyUI's classes and imports this module."""
    try:
        from . import native_extensions
    except ImportError as error:
        raise InputError(f"{node} only runs inside ComfyUI (its sampling machinery could not be imported).") from error
    return native_extensions


# --- conditioning ----------------------------------------------------------------------------------------


def clip_images(foreground: Foreground, background: Background, factors: Sequence[float]) -> list[torch.Tensor]:
    """One fg ‖ bg image condition per foreground brightness factor, as ComfyUI latents.

    The same conditions the RelightVid Sampler (IIE) samples with (``iie_image_conditions``), but unscaled,
    as VAE Encode returns latents: the MODEL scales them with its latent format.

    Returns:
        one (F, 8, h, w) float32 CPU tensor per factor, channels fg latent(4) ‖ bg latent(4).

    Raises:
        InputError: a background made for another foreground (frame count or size).
    """
    check_pairing(foreground, background)
    conditions = iie_image_conditions(
        foreground.frames,
        foreground.masks,
        factors,
        lambda frames: host.encode_frames(foreground.vae, frames),
        background_latents(foreground, background, None),
        foreground.gray,
    )
    return [condition[0] / SD_LATENT_SCALE for condition in conditions]


def check_text_conditioning(conditioning, name: str) -> None:
    """A CONDITIONING (a non-empty list of [embedding, extras] pairs) that carries no RelightVid image yet.

    Raises:
        InputError: naming the input.
    """
    if not isinstance(conditioning, (list, tuple)) or not conditioning:
        raise InputError(f"{name} must be the CONDITIONING of a CLIP Text Encode node.")
    for entry in conditioning:
        if len(entry) != 2 or not isinstance(entry[0], torch.Tensor) or not isinstance(entry[1], dict):
            raise InputError(f"{name} must be the CONDITIONING of a CLIP Text Encode node.")
        if RELIGHTVID_IMAGE_KEY in entry[1]:
            raise InputError(
                f"{name} already carries a RelightVid image; connect the CLIP Text Encode output, not the output "
                "of a RelightVid Conditioning node."
            )


def with_image(conditioning, image: torch.Tensor) -> list:
    """A copy of ``conditioning`` whose every entry carries ``image`` (the input is not changed)."""
    return node_helpers.conditioning_set_values(conditioning, {RELIGHTVID_IMAGE_KEY: image})


class RelightVidNativeConditioning:
    DESCRIPTION = (
        "Adds the foreground and background latents of every frame to the prompt and empty-prompt conditioning "
        "for ComfyUI's samplers: positive = image + prompt, middle = image + empty prompt, negative = no image + "
        "empty prompt. DualCFGGuider(positive, middle, negative, cfg_conds 7.5, cfg_cond2_negative 1.2, regular) "
        "is RelightVid's 3-way guidance; KSampler(positive, negative) is 2-way guidance."
    )
    CATEGORY = CATEGORY
    FUNCTION = "condition"
    RETURN_TYPES = ("CONDITIONING", "CONDITIONING", "CONDITIONING", "LATENT")
    RETURN_NAMES = ("positive", "middle", "negative", "latent")
    OUTPUT_TOOLTIPS = (
        "The prompt with the fg/bg image (DualCFGGuider cond1, KSampler positive).",
        "The empty prompt with the fg/bg image (DualCFGGuider cond2).",
        "The empty prompt without an image (DualCFGGuider and KSampler negative).",
        "Zero latents of the clip's size, one per frame (KSampler latent_image for text-to-video; use VAE Encode "
        "of the clip and denoise < 1 for video-to-video).",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "foreground": (FOREGROUND_TYPE, {"tooltip": "The subject, from RelightVid Foreground."}),
                "background": (
                    BACKGROUND_TYPE,
                    {
                        "tooltip": "The lighting: RelightVid Background, Light Preset or HDR Map, made from the same "
                        "foreground."
                    },
                ),
                "positive": ("CONDITIONING", {"tooltip": "The prompt, from CLIP Text Encode."}),
                "negative": (
                    "CONDITIONING",
                    {"tooltip": "CLIP Text Encode of the empty prompt (upstream's uncond)."},
                ),
            }
        }

    def condition(self, foreground, background, positive, negative):
        check_text_conditioning(positive, "positive")
        check_text_conditioning(negative, "negative")
        if node_helpers is None:
            raise InputError("RelightVid Conditioning only runs inside ComfyUI (node_helpers could not be imported).")
        (image,) = clip_images(foreground, background, (1.0,))
        latent = torch.zeros(image.shape[0], LATENT_CHANNELS, *image.shape[2:])
        return (with_image(positive, image), with_image(negative, image), negative, {"samples": latent})


# --- schedule --------------------------------------------------------------------------------------------


def official_timesteps(scheduler: str, steps: int, denoise: float) -> tuple[list[int], int | None]:
    """The official sampler's timesteps (leading spacing) and the timestep its last step lands on.

    ``denoise`` < 1 keeps the last ``steps`` of a ``steps / denoise``-step schedule, as ComfyUI's schedulers do.

    Returns:
        (timesteps, final): e.g. ddpm 20 → ([950, 900, …, 0], None: noise level 0); ddim 20 → ([951, …, 1], 0).

    Raises:
        InputError: an unknown scheduler, denoise outside (0, 1], or more than 1000 steps in all.
    """
    if scheduler not in OFFICIAL_SCHEDULERS:
        raise InputError(f"scheduler must be one of {', '.join(OFFICIAL_SCHEDULERS)}; got {scheduler!r}.")
    if not (0.0 < denoise <= 1.0):
        raise InputError(f"denoise must be in (0, 1]; got {denoise!r}.")
    total = int(steps / denoise)
    timesteps = build_scheduler(scheduler, total).timesteps.tolist()[-steps:]
    return [int(t) for t in timesteps], FINAL_TIMESTEP[scheduler]


def official_sigmas(model_sampling, scheduler: str, steps: int, denoise: float) -> torch.Tensor:
    """(steps + 1,) float32 SIGMAS: the official timesteps' noise levels in the model's own schedule."""
    timesteps, final = official_timesteps(scheduler, steps, denoise)
    sigmas = model_sampling.sigma(torch.tensor(timesteps, dtype=torch.float32)).float().cpu()
    last = torch.zeros(1) if final is None else model_sampling.sigma(torch.tensor([float(final)])).float().cpu()
    return torch.cat([sigmas, last])


class RelightVidSchedule:
    DESCRIPTION = (
        "The official RelightVid timesteps as SIGMAS for SamplerCustomAdvanced: ddpm 950, 900, ..., 0 (use the ddpm "
        "sampler for the official ancestral DDPM) or ddim 951, 901, ..., 1 (euler over them is the official DDIM)."
    )
    CATEGORY = CATEGORY
    FUNCTION = "schedule"
    RETURN_TYPES = ("SIGMAS",)
    RETURN_NAMES = ("sigmas",)
    OUTPUT_TOOLTIPS = ("Noise levels of the official timesteps in the model's schedule, ending in the final level.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "The model to sample (its noise schedule gives the sigmas)."}),
                "scheduler": (
                    list(OFFICIAL_SCHEDULERS),
                    {
                        "default": "ddim",
                        "tooltip": "ddpm: the official default (950..0, ends at noise 0); ddim: the official "
                        "alternative (951..1, ends at timestep 0).",
                    },
                ),
                **sampler_inputs(("steps",)),
                "denoise": (
                    "FLOAT",
                    {
                        "default": 1.0,
                        "min": 0.01,
                        "max": 1.0,
                        "step": 0.01,
                        "tooltip": "Below 1: only the last steps of a longer schedule (video-to-video from an encoded "
                        "clip).",
                    },
                ),
            },
            "hidden": checks.HIDDEN_NODE_ID,
        }

    @classmethod
    def VALIDATE_INPUTS(cls, settings):
        return checks.queued_problem(cls, settings)

    def schedule(self, model, scheduler, steps, denoise, settings=None):
        checks.check_numbers(type(self), locals())
        model_sampling = model.get_model_object("model_sampling")
        if not hasattr(model_sampling, "sigma"):
            raise InputError("model must be a diffusion MODEL with a discrete noise schedule (SD1.5).")
        return (official_sigmas(model_sampling, scheduler, steps, denoise),)


# --- Illumination-Invariant Ensemble ---------------------------------------------------------------------


def ensemble_prediction(guidance: Guidance, uncond: torch.Tensor, members: Sequence[torch.Tensor]) -> torch.Tensor:
    """The IIE prediction: ``members`` is [image₁, image+text₁, image₂, …]; one guided prediction per
    brightness factor, all sharing ``uncond``, averaged (a single member is returned bit for bit)."""
    guided = [guidance.combine(uncond, members[i], members[i + 1]) for i in range(0, len(members), 2)]
    return torch.stack(guided).mean(dim=0)


class RelightVidIIEGuider:
    DESCRIPTION = (
        "The Illumination-Invariant Ensemble as a GUIDER for SamplerCustomAdvanced: the foreground is encoded at each "
        "brightness factor, each step runs the image and image+text predictions per factor and one shared no-image "
        "prediction (1 + 2N), and the N guided predictions are averaged. One factor of 1.0 equals DualCFGGuider."
    )
    CATEGORY = CATEGORY
    FUNCTION = "guider"
    RETURN_TYPES = ("GUIDER",)
    RETURN_NAMES = ("guider",)
    OUTPUT_TOOLTIPS = ("The ensemble guider for SamplerCustomAdvanced.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "The model from Apply RelightVid."}),
                "foreground": (FOREGROUND_TYPE, {"tooltip": "The subject, from RelightVid Foreground."}),
                "background": (
                    BACKGROUND_TYPE,
                    {"tooltip": "The lighting, made from the same foreground."},
                ),
                "positive": ("CONDITIONING", {"tooltip": "The prompt, from CLIP Text Encode."}),
                "negative": ("CONDITIONING", {"tooltip": "CLIP Text Encode of the empty prompt."}),
                "iie_factors": (
                    "STRING",
                    {
                        "default": EXAMPLE_FACTORS,
                        "tooltip": "Foreground brightness factors whose guided predictions are averaged; each factor "
                        "adds two batch items per step.",
                    },
                ),
                **sampler_inputs(GUIDANCE_INPUTS),
            },
            "hidden": checks.HIDDEN_NODE_ID,
        }

    @classmethod
    def VALIDATE_INPUTS(cls, settings):
        # The sampler's factor check: the same list, the same one-sentence refusal, at queue time.
        return checks.queued_problem(cls, settings, factors_problem, "iie_factors")

    def guider(
        self, model, foreground, background, positive, negative, iie_factors, text_scale, image_scale, settings=None
    ):
        checks.check_numbers(type(self), locals())
        factors = parse_factors(iie_factors)
        check_text_conditioning(positive, "positive")
        check_text_conditioning(negative, "negative")
        extensions = _extensions("RelightVid IIE Guider")
        images = clip_images(foreground, background, factors)
        members = [(with_image(negative, image), with_image(positive, image)) for image in images]
        guider = extensions.IIEGuider(model)
        guider.set_guidance(Guidance(text_cfg=text_scale, img_cfg=image_scale))
        guider.set_conds(negative, members)
        return (guider,)


# --- context windows ------------------------------------------------------------------------------------


class RelightVidContextWindows:
    DESCRIPTION = (
        "Samples clips longer than the window in overlapping windows (MODEL to MODEL, for KSampler and "
        "SamplerCustomAdvanced). Each window gets its own frames of the noise, of the foreground/background "
        "latents and of ControlNet hints; overlaps are blended. Use this instead of core's Context Windows, which "
        "give every window the first frames' conditions."
    )
    CATEGORY = CATEGORY
    FUNCTION = "apply"
    RETURN_TYPES = ("MODEL",)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The model, sampling in context windows.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "The model from Apply RelightVid (LoRAs may be applied before)."}),
                **sampler_inputs(WINDOW_INPUTS),
            },
            "hidden": checks.HIDDEN_NODE_ID,
        }

    @classmethod
    def VALIDATE_INPUTS(cls, settings):
        return checks.queued_problem(cls, settings, window_problem, "window_length", "window_overlap")

    def apply(self, model, window_length, window_overlap, window_fusion, closed_loop, settings=None):
        checks.check_numbers(type(self), locals())
        checks.check(window_problem(window_length, window_overlap))
        windows = ContextWindows(window_length, window_overlap, closed_loop, window_fusion)
        return (_extensions("RelightVid Context Windows").with_context_windows(model, windows),)

