"""Image conditions for the Illumination-Invariant Ensemble (IIE).

The paper stabilises relighting by ensembling predictions over foregrounds of different brightness, so the
result depends less on the input's own lighting. The brightness factor scales the foreground *pixels*
before VAE encoding; the guidance (:mod:`.guidance`) then averages the guided predictions of the copies.
Neither the paper's exact factors nor its member count are public (no IIE code was released, see
docs/official_code.md §d); :data:`DEFAULT_IIE_FACTORS` is our choice, symmetric around 1 so the ensemble is centred
on the input's own exposure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from ..errors import InputError

DEFAULT_IIE_FACTORS: tuple[float, ...] = (0.5, 0.75, 1.0, 1.25, 1.5)
"""Five foreground brightness factors spread evenly over 0.5–1.5 (ours: the paper's are not public)."""


def iie_image_conditions(
    frames: torch.Tensor,
    masks: torch.Tensor | None,
    factors: Sequence[float],
    encode: Callable[[torch.Tensor], torch.Tensor],
    background_latents: torch.Tensor,
    gray: float | None = None,
) -> list[torch.Tensor]:
    """One image condition per brightness factor: fg(clamp(frames·k, 0, 1)) ‖ background, for :func:`sample`.

    The gray fill outside the mask is the same for every factor: only the subject's brightness changes.

    Args:
        frames: (T, H, W, 3) float RGB in 0..1, the foreground video.
        masks: (T, H, W) in 0..1, 1 = subject (see ``composite_foreground``); None: the whole frame.
        factors: brightness factors, each finite and > 0, e.g. :data:`DEFAULT_IIE_FACTORS`; (1.0,) gives
            plain sampling's condition.
        encode: frames (T, H, W, 3) in 0..1 → scaled latents (T, 4, h, w) (VAE mean × 0.18215).
        background_latents: (T, 4, h, w) scaled latents of the background plates.
        gray: fill outside the mask, in 0..1; None: the official ``OFFICIAL_GRAY`` (128/255).

    Returns:
        one (1, T, 8, h, w) tensor per factor, channels fg latent(4) ‖ bg latent(4).

    Raises:
        InputError: empty or non-positive factors, or latents whose frames or size disagree.
    """
    # Imported here: the conditioning package pulls in OpenCV, OpenEXR and transformers, which sampling
    # itself never needs.
    from ..conditioning import OFFICIAL_GRAY, composite_foreground

    if len(factors) == 0 or not all(math.isfinite(k) and k > 0 for k in factors):
        raise InputError(f"factors must be one or more finite brightness factors > 0; got {tuple(factors)!r}.")
    gray = OFFICIAL_GRAY if gray is None else gray
    conditions = []
    for factor in factors:
        foreground = encode(composite_foreground(frames.float().mul(factor).clamp(0.0, 1.0), masks, gray))
        if foreground.shape[0] != background_latents.shape[0] or foreground.shape[2:] != background_latents.shape[2:]:
            raise InputError(
                f"background_latents must be (T, 4, h, w) matching the encoded foreground "
                f"{tuple(foreground.shape)}; got {tuple(background_latents.shape)}."
            )
        image = torch.cat([foreground, background_latents.to(foreground)], dim=1)
        conditions.append(image.unsqueeze(0))
    return conditions
