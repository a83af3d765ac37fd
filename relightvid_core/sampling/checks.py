"""Input checks for :func:`sample`: fail before the first U-Net call, naming the argument at fault."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..errors import InputError
from ..values import GUIDANCE_MAX, Range, check_number


def is_whole_number(value: object) -> bool:
    """An ``int`` that is not a ``bool`` (``True`` is an int to Python, never a count to a user)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _shape(value: object) -> object:
    return tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__


def _check_finite(name: str, tensor: torch.Tensor) -> None:
    if not torch.isfinite(tensor).all():
        raise InputError(f"{name} contains NaN or infinite values.")


def _check_clip_tensor(name: str, tensor: object, layout: str, expected: tuple[int | None, ...]) -> None:
    """A per-frame tensor whose dims equal ``expected`` wherever that is not None, and finite."""
    if not isinstance(tensor, torch.Tensor) or tensor.ndim != len(expected):
        raise InputError(f"{name} must be a {layout} tensor; got {_shape(tensor)}.")
    if any(want is not None and got != want for got, want in zip(tensor.shape, expected)):
        wanted = tuple("*" if want is None else want for want in expected)
        raise InputError(f"{name} must be {layout} = {wanted} to match latents; got {tuple(tensor.shape)}.")
    _check_finite(name, tensor)


def _check_text(name: str, tensor: object, batch: int, width: int) -> None:
    if (
        not isinstance(tensor, torch.Tensor)
        or tensor.ndim != 3
        or tensor.shape[0] not in (1, batch)
        or tensor.shape[2] != width
    ):
        raise InputError(f"{name} must be (1 or {batch}, tokens, {width}) text embeddings; got {_shape(tensor)}.")
    _check_finite(name, tensor)


def check_sampler_inputs(
    unet: nn.Module,
    latents: torch.Tensor,
    images: Sequence[torch.Tensor],
    text_cond: torch.Tensor,
    text_uncond: torch.Tensor,
    hdr_tokens: torch.Tensor | None,
    window_length: int | None,
    max_frames: int,
) -> None:
    """Check layouts, agreeing frame counts, sizes and batches, finiteness, and the frame limit.

    ``window_length``: frames per context window (None: no windows); ``max_frames``: the most frames one U-Net
    call may take (its position encoding).

    Raises:
        InputError: the message names the argument (``latents``, ``img_cond[i]``, ``text_cond``,
            ``text_uncond``, ``hdr_tokens`` or ``window``).
    """
    if not isinstance(latents, torch.Tensor) or latents.ndim != 5:
        raise InputError(f"latents must be (batch, frames, 4, h, w); got {_shape(latents)}.")
    batch, frames, channels, height, width = latents.shape
    if frames == 0:
        raise InputError("latents has 0 frames; give at least 1.")
    _check_finite("latents", latents)
    if len(images) == 0:
        raise InputError("img_cond must be a tensor or a non-empty list of tensors (one per IIE factor).")
    image_layout = (batch, frames, unet.config.in_channels - channels, height, width)
    for i, image in enumerate(images):
        name = "img_cond" if len(images) == 1 else f"img_cond[{i}]"
        _check_clip_tensor(name, image, "(batch, frames, fg+bg channels, h, w)", image_layout)
    context_width = unet.config.cross_attention_dim
    _check_text("text_cond", text_cond, batch, context_width)
    _check_text("text_uncond", text_uncond, batch, context_width)
    if hdr_tokens is not None:
        _check_clip_tensor("hdr_tokens", hdr_tokens, "(batch, frames, n, D)", (batch, frames, None, context_width))
    if window_length is not None and window_length > max_frames:
        raise InputError(f"window length {window_length} exceeds the {max_frames} frames the motion modules take.")
    if window_length is None and frames > max_frames:
        raise InputError(
            f"latents has {frames} frames, more than the {max_frames} the motion modules take at once; "
            "pass window=ContextWindows(...) to sample it in context windows."
        )


GUIDANCE_RANGE = Range(0.0, GUIDANCE_MAX)


def check_guidance(text_cfg: float, img_cfg: float, hdr_cfg: float, guidance_rescale: float) -> None:
    """Guidance scales must be finite in 0..100 and the rescale amount in 0..1: beyond that the guided
    prediction overflows and the video comes out black.

    Raises:
        InputError: naming the argument (``text_cfg``, ``img_cfg``, ``hdr_cfg`` or ``guidance_rescale``).
    """
    for name, value in (("text_cfg", text_cfg), ("img_cfg", img_cfg), ("hdr_cfg", hdr_cfg)):
        check_number(name, value, GUIDANCE_RANGE)
    check_number("guidance_rescale", guidance_rescale, Range(0.0, 1.0))
