"""The sampling nodes: the one-node RelightVid Sampler (IIE), and the pieces it is built from for ComfyUI's own
samplers (conditioning, schedule, official sampler, IIE guider, context windows).

The nodes check their inputs and hand the work to the modules beside them; those that subclass or call
ComfyUI's sampling machinery (:mod:`.official`, :mod:`.guider`, :mod:`.windows`, :mod:`.run`) are imported
when a node runs, so the pack imports (and its other nodes' checks run) without ComfyUI.

* **RelightVid Conditioning** puts the fg ‖ bg latents of every frame on the prompt and the empty-prompt
  CONDITIONING: ``positive`` (image + prompt), ``middle`` (image + empty prompt) and ``negative`` (no image,
  empty prompt). Core *DualCFGGuider* with ``cfg_conds`` = text scale (7.5) and ``cfg_cond2_negative`` =
  image scale (1.2), style ``regular``, computes ``x̂_neg + cfg2·(x̂_mid − x̂_neg) + cfg1·(x̂_pos − x̂_mid)``,
  which is RelightVid's 3-way guidance term for term (docs/official_code.md §c).
* **RelightVid Schedule** and **RelightVid Official Sampler** are the official DDPM/DDIM for
  SamplerCustomAdvanced; **RelightVid IIE Guider** is the ensemble as a GUIDER.
* **RelightVid Context Windows** makes long clips run in windows that each see their own frames of every
  per-frame condition.
"""

from __future__ import annotations

from ...relightvid_core.errors import InputError
from ...relightvid_core.sampling import ContextWindows
from ...relightvid_core.sampling.schedulers import OFFICIAL_SCHEDULERS
from .. import checks
from ..conditioning.clip_conditions import (
    check_text_conditioning,
    clip_images,
    empty_clip_latent,
    with_image,
)
from ..model_patch.patch import is_relightvid_model, require_comfy
from ..payloads import BACKGROUND_TYPE, FOREGROUND_TYPE, TEXT_TYPE
from .schedule import official_sigmas, require_model_sampling
from .settings import (
    EXAMPLE_FACTORS,
    GUIDANCE_INPUTS,
    WINDOW_INPUTS,
    factors_problem,
    parse_factors,
    sampler_settings_problem,
    specs,
    window_problem,
)

CATEGORY = "RelightVid/sampling"
FOREGROUND_INPUT = (
    FOREGROUND_TYPE,
    {"tooltip": "The subject, from RelightVid Foreground."},
)
BACKGROUND_INPUT = (
    BACKGROUND_TYPE,
    {"tooltip": "The lighting: RelightVid Background, Light Preset or HDR Map, made from the same foreground."},
)
PROMPT_INPUT = ("CONDITIONING", {"tooltip": "The prompt, from CLIP Text Encode."})
EMPTY_PROMPT_INPUT = (
    "CONDITIONING",
    {"tooltip": "CLIP Text Encode of the empty prompt (upstream's uncond)."},
)


def require_relightvid_model(model, name: str) -> None:
    """Raises InputError unless ``model`` has RelightVid's temporal modules."""
    if not is_relightvid_model(model):
        raise InputError(
            f"{name} must be a RelightVid MODEL: the output of Load RelightVid Temporal Weights or Apply RelightVid "
            "(LoRA and other MODEL nodes may come after them)."
        )


def image_members(positive, negative, images) -> list[tuple[list, list]]:
    """(middle, positive) per image condition: the empty prompt and the prompt, each with that image."""
    return [(with_image(negative, image), with_image(positive, image)) for image in images]


class RelightVidSampler:
    DESCRIPTION = (
        "Relights the foreground under the background/light condition with RelightVid's 3-way guidance "
        "(text 7.5, image 1.2 upstream), through ComfyUI's own sampling (LoRA, ControlNet, fp8, low VRAM, "
        "previews and Cancel work here). With several IIE factors, the foreground is encoded at each brightness and "
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
                "relightvid_model": (
                    "MODEL",
                    {"tooltip": "The MODEL of Load RelightVid Temporal Weights or Apply RelightVid (LoRAs welcome)."},
                ),
                "foreground": FOREGROUND_INPUT,
                "background": BACKGROUND_INPUT,
                "text": (
                    TEXT_TYPE,
                    {"tooltip": "Prompt and uncond, from RelightVid Text Conditioning."},
                ),
                **specs(
                    "seed",
                    "steps",
                    "scheduler",
                    *GUIDANCE_INPUTS,
                    "iie_factors",
                    *WINDOW_INPUTS,
                ),
            },
            "hidden": checks.HIDDEN_NODE_ID,
        }

    @classmethod
    def VALIDATE_INPUTS(cls, settings):
        return checks.queued_problem(
            cls,
            settings,
            sampler_settings_problem,
            "iie_factors",
            "window_length",
            "window_overlap",
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
        settings=None,
    ):
        checks.check_numbers(type(self), locals())
        checks.check(sampler_settings_problem(iie_factors, window_length, window_overlap))
        factors = parse_factors(iie_factors)
        images = clip_images(foreground, background, factors)
        require_comfy("RelightVid Sampler (IIE)")
        require_relightvid_model(relightvid_model, "relightvid_model")
        from .guider import iie_guider
        from .run import run_guider
        from .windows import with_context_windows

        windows = ContextWindows(window_length, window_overlap, closed_loop, window_fusion)
        model = with_context_windows(relightvid_model, windows)
        members = image_members(text.positive, text.negative, images)
        guider = iie_guider(model, text.negative, members, text_scale, image_scale)
        return ({"samples": run_guider(guider, scheduler, steps, empty_clip_latent(images[0]), seed)},)


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
        (
            "Zero latents of the clip's size, one per frame (the latent to sample from noise; use VAE Encode of the "
            "clip and denoise < 1 for video-to-video)."
        ),
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "foreground": FOREGROUND_INPUT,
                "background": BACKGROUND_INPUT,
                "positive": PROMPT_INPUT,
                "negative": EMPTY_PROMPT_INPUT,
            }
        }

    def condition(self, foreground, background, positive, negative):
        check_text_conditioning(positive, "positive")
        check_text_conditioning(negative, "negative")
        (image,) = clip_images(foreground, background, (1.0,))
        ((middle, image_positive),) = image_members(positive, negative, [image])
        return (image_positive, middle, negative, {"samples": empty_clip_latent(image)})


class RelightVidSchedule:
    DESCRIPTION = (
        "The official RelightVid timesteps as SIGMAS for SamplerCustomAdvanced with RelightVid Official Sampler: "
        "ddpm 950, 900, ..., 0 or ddim 951, 901, ..., 1 (ending at timestep 0)."
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
                "model": (
                    "MODEL",
                    {"tooltip": "The model to sample (its noise schedule gives the sigmas)."},
                ),
                "scheduler": (
                    list(OFFICIAL_SCHEDULERS),
                    {
                        "default": "ddpm",
                        "tooltip": "ddpm: the official default (950..0, ends at noise 0); ddim: the official "
                        "alternative (951..1, ends at timestep 0). Use the same in RelightVid Official Sampler.",
                    },
                ),
                **specs("steps"),
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
        return (official_sigmas(require_model_sampling(model), scheduler, steps, denoise),)


class RelightVidOfficialSampler:
    DESCRIPTION = (
        "The official RelightVid sampler as a SAMPLER for SamplerCustomAdvanced, over RelightVid Schedule's sigmas "
        "of the same scheduler. Its noise is drawn from the seed as the command line draws it, so the same seed "
        "and settings give the same latents as the RelightVid Sampler and `relightvid relight`."
    )
    CATEGORY = CATEGORY
    FUNCTION = "sampler"
    RETURN_TYPES = ("SAMPLER",)
    RETURN_NAMES = ("sampler",)
    OUTPUT_TOOLTIPS = ("The official DDPM or DDIM sampler.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "scheduler": (
                    list(OFFICIAL_SCHEDULERS),
                    {
                        "default": "ddpm",
                        "tooltip": "ddpm: ancestral, the official default; ddim: deterministic (eta 0). Give it "
                        "RelightVid Schedule's sigmas of the same scheduler.",
                    },
                ),
            }
        }

    def sampler(self, scheduler):
        if scheduler not in OFFICIAL_SCHEDULERS:
            raise InputError(f"scheduler must be one of {', '.join(OFFICIAL_SCHEDULERS)}; got {scheduler!r}.")
        require_comfy("RelightVid Official Sampler")
        from .official import OfficialSampler

        return (OfficialSampler(scheduler),)


class RelightVidIIEGuider:
    DESCRIPTION = (
        "The Illumination-Invariant Ensemble as a GUIDER for SamplerCustomAdvanced: the foreground is encoded at each "
        "brightness factor, each step runs the image and image+text predictions per factor and one shared no-image "
        "prediction (1 + 2N), and the N guided predictions are averaged. One factor of 1.0 equals DualCFGGuider. "
        "cfg patches on the MODEL (RescaleCFG ...) apply to every member."
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
                "model": (
                    "MODEL",
                    {"tooltip": "A RelightVid MODEL (Load RelightVid Temporal Weights, Apply RelightVid)."},
                ),
                "foreground": FOREGROUND_INPUT,
                "background": BACKGROUND_INPUT,
                "positive": PROMPT_INPUT,
                "negative": EMPTY_PROMPT_INPUT,
                "iie_factors": (
                    "STRING",
                    {
                        "default": EXAMPLE_FACTORS,
                        "tooltip": "Foreground brightness factors whose guided predictions are averaged; each factor "
                        "adds two batch items per step.",
                    },
                ),
                **specs(*GUIDANCE_INPUTS),
            },
            "hidden": checks.HIDDEN_NODE_ID,
        }

    @classmethod
    def VALIDATE_INPUTS(cls, settings):
        return checks.queued_problem(cls, settings, factors_problem, "iie_factors")

    def guider(
        self,
        model,
        foreground,
        background,
        positive,
        negative,
        iie_factors,
        text_scale,
        image_scale,
        settings=None,
    ):
        checks.check_numbers(type(self), locals())
        factors = parse_factors(iie_factors)
        check_text_conditioning(positive, "positive")
        check_text_conditioning(negative, "negative")
        images = clip_images(foreground, background, factors)
        require_comfy("RelightVid IIE Guider")
        require_relightvid_model(model, "model")
        from .guider import iie_guider

        members = image_members(positive, negative, images)
        return (iie_guider(model, negative, members, text_scale, image_scale),)


class RelightVidContextWindows:
    DESCRIPTION = (
        "Samples clips longer than the window in overlapping windows (MODEL to MODEL, for KSampler and "
        "SamplerCustomAdvanced). Each window gets its own frames of the noise, of the foreground/background "
        "latents and of ControlNet hints; overlaps are blended. Use this instead of core's Context Windows, which "
        "give every window the first frames' conditions. The RelightVid Sampler has the same settings built in."
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
                "model": (
                    "MODEL",
                    {"tooltip": "A RelightVid MODEL (LoRAs may be applied before)."},
                ),
                **specs(*WINDOW_INPUTS),
            },
            "hidden": checks.HIDDEN_NODE_ID,
        }

    @classmethod
    def VALIDATE_INPUTS(cls, settings):
        return checks.queued_problem(cls, settings, window_problem, "window_length", "window_overlap")

    def apply(
        self,
        model,
        window_length,
        window_overlap,
        window_fusion,
        closed_loop,
        settings=None,
    ):
        checks.check_numbers(type(self), locals())
        checks.check(window_problem(window_length, window_overlap))
        require_comfy("RelightVid Context Windows")
        from .windows import with_context_windows

        windows = ContextWindows(window_length, window_overlap, closed_loop, window_fusion)
        return (with_context_windows(model, windows),)
