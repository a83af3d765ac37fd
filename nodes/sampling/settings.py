"""The sampling settings the sampling nodes share: their input specs, and the checks of the values a user types.

Plain Python (no ComfyUI import): the specs are ComfyUI's V1 input declarations, data only.
"""

from __future__ import annotations

import math
import re

from ...relightvid_core.errors import InputError
from ...relightvid_core.sampling import FUSIONS, MAX_WINDOW_FRAMES, SCHEDULER_NAMES
from ...relightvid_core.sampling.schedulers import OFFICIAL_SCHEDULERS

MAX_IIE_FACTORS = 16
MAX_SEED = 0xFFFFFFFFFFFFFFFF
EXAMPLE_FACTORS = "0.5, 0.75, 1.0, 1.25, 1.5"

SPECS = {
    "seed": (
        "INT",
        {
            "default": 0,
            "min": 0,
            "max": MAX_SEED,
            "control_after_generate": True,
            "tooltip": "Seed of the initial noise and of DDPM's per-step noise, drawn on the CPU as the command line "
            "draws them: the same seed and settings give the same video here, with SamplerCustomAdvanced and "
            "RelightVid Official Sampler, and with `relightvid relight`.",
        },
    ),
    "steps": (
        "INT",
        {
            "default": 20,
            "min": 1,
            "max": 1000,
            "tooltip": "Denoising steps (upstream: 20).",
        },
    ),
    "scheduler": (
        list(SCHEDULER_NAMES),
        {
            "default": "ddpm",
            "tooltip": f"{' and '.join(OFFICIAL_SCHEDULERS)} are the official samplers (ddpm ancestral, the default; "
            "ddim deterministic), equal to the command line's. The others run ComfyUI's sampler of that name over the "
            "command line's noise levels: close to the command line's result, not equal to it.",
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
            "tooltip": "Text guidance: pull from the image-only prediction toward the prompt (upstream 7.5).",
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
            "tooltip": "Image guidance: pull from the unconditional prediction toward the foreground/background "
            "(upstream 1.2).",
        },
    ),
    "iie_factors": (
        "STRING",
        {
            "default": "1.0",
            "tooltip": f"Illumination-Invariant Ensemble: foreground brightness factors whose guided predictions are "
            f"averaged, e.g. {EXAMPLE_FACTORS}. 1.0 turns it off; each extra factor adds two U-Net branches per step.",
        },
    ),
    "window_length": (
        "INT",
        {
            "default": 16,
            "min": 1,
            "max": MAX_WINDOW_FRAMES,
            "tooltip": "Frames per context window (16 = the training clip length). Clips up to this length are "
            "sampled at once.",
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
            "tooltip": "How overlapping windows are blended: pyramid (trust window centres), linear (cross-fade) or "
            "flat (average).",
        },
    ),
    "closed_loop": (
        "BOOLEAN",
        {
            "default": False,
            "tooltip": "Wrap the last window around to the first frames (for looping clips).",
        },
    ),
}
GUIDANCE_INPUTS = ("text_scale", "image_scale")
WINDOW_INPUTS = ("window_length", "window_overlap", "window_fusion", "closed_loop")


def specs(*names: str) -> dict:
    """The input specs of ``names``, in that order."""
    return {name: SPECS[name] for name in names}


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


def sampler_settings_problem(iie_factors, window_length, window_overlap) -> str | None:
    """The RelightVid Sampler's checks of its typed values, at queue time and when it runs."""
    return factors_problem(iie_factors) or window_problem(window_length, window_overlap)
