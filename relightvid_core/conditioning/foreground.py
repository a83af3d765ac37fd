"""Foreground conditioning: frames and (soft) masks → the gray-filled composite the model was trained on.

Official recipe (docs/official_code.md §c, ``apply_mask_to_video``): ``frame·α + gray·(1−α)`` with gray 128 in
8-bit, truncated to uint8. IC-Light's own pipelines fill with 127, which is exactly 0 after its
``/127 − 1`` scaling. Both are offered as named constants; the official one is the default.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..optional import require
from ..values import counted
from ..video_io import read_mask_folder, read_video

logger = logging.getLogger(__name__)

# Gray fill outside the mask: 128 in the official RelightVid code (docs/official_code.md §c), 127 in IC-Light.
OFFICIAL_GRAY = 128 / 255
ICLIGHT_GRAY = 127 / 255
# A feather's Gaussian is cut at 3 sigma, so ``feather`` pixels is the blur's reach on each side.
FEATHER_SIGMAS = 3.0


def _check_frames(frames: torch.Tensor) -> None:
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise InputError(f"frames must be (T, H, W, 3) RGB in 0..1, got shape {tuple(frames.shape)}.")
    if frames.shape[0] == 0:
        raise InputError("frames must hold at least 1 frame, got 0.")


def _as_mask_sequence(masks: torch.Tensor, frame_count: int) -> torch.Tensor:
    """(T, H, W), (T, H, W, 1) or (H, W) → (T or 1, H, W) float; checks the count."""
    if masks.ndim == 2:
        masks = masks[None]
    elif masks.ndim == 4 and masks.shape[-1] == 1:
        masks = masks[..., 0]
    if masks.ndim != 3:
        raise InputError(f"masks must be (T, H, W) or (H, W) in 0..1, got shape {tuple(masks.shape)}.")
    if masks.shape[0] not in (1, frame_count):
        raise InputError(
            f"masks has {counted(masks.shape[0], 'frame')} but frames has {frame_count}; give one mask per frame, "
            "or a single mask for all frames."
        )
    return masks.float()


def _per_mask(masks: torch.Tensor, operation) -> torch.Tensor:
    """Apply an OpenCV operation on float32 (H, W) arrays to each mask of a (T, H, W) tensor."""
    planes = masks.detach().cpu().float().numpy()
    return torch.from_numpy(np.stack([operation(plane) for plane in planes])).to(masks.device, masks.dtype)


def _morph(masks: torch.Tensor, grow: int) -> torch.Tensor:
    """Grey-scale dilation (grow > 0) or erosion (grow < 0) with a square of side 2·|grow|+1.

    OpenCV's default border leaves the image edge alone, so erosion never eats in from the border.
    """
    cv2 = require("cv2", "growing or shrinking masks")
    element = np.ones((2 * abs(grow) + 1,) * 2, np.uint8)
    operation = cv2.dilate if grow > 0 else cv2.erode
    return _per_mask(masks, lambda plane: operation(plane, element))


def _gaussian_blur(masks: torch.Tensor, radius: float) -> torch.Tensor:
    """Gaussian of sigma ``radius / 3`` reaching ``radius`` pixels (OpenCV, reflecting at the borders)."""
    cv2 = require("cv2", "feathering masks")
    size = 2 * max(1, math.ceil(radius)) + 1
    sigma = radius / FEATHER_SIGMAS
    return _per_mask(masks, lambda plane: cv2.GaussianBlur(plane, (size, size), sigma, borderType=cv2.BORDER_REFLECT))


def prepare_masks(
    masks: torch.Tensor,
    height: int,
    width: int,
    frame_count: int,
    grow: int = 0,
    feather: float = 0.0,
) -> torch.Tensor:
    """Bring masks to the frames' size, then grow/shrink and feather them.

    Args:
        masks: (T, H', W'), (T, H', W', 1) or (H', W') in 0..1 (1 = foreground); T = ``frame_count`` or 1.
        height, width: the frames' size; masks of another size are resized (bilinear).
        frame_count: the frames' count, used to check T.
        grow: pixels to grow (> 0) or shrink (< 0) the mask (grey-scale morphology, square element).
        feather: blur radius in pixels (Gaussian, sigma = feather / 3); 0 = none.

    Returns:
        (T, height, width) float in 0..1, T = ``frame_count`` or 1.

    Raises:
        InputError: a wrong layout, a count that is neither ``frame_count`` nor 1, or ``feather`` < 0.
    """
    masks = _as_mask_sequence(masks, frame_count)
    if feather < 0:
        raise InputError(f"feather must be >= 0 pixels, got {feather}.")
    if tuple(masks.shape[1:]) != (height, width):
        logger.info("resizing masks from %dx%d to the frames' %dx%d", masks.shape[2], masks.shape[1], width, height)
        masks = F.interpolate(masks[:, None], size=(height, width), mode="bilinear", align_corners=False)[:, 0]
    if grow:
        masks = _morph(masks, int(grow))
    if feather > 0:
        masks = _gaussian_blur(masks, float(feather))
    return masks.clamp(0.0, 1.0)


def composite_foreground(
    frames: torch.Tensor,
    masks: torch.Tensor | None = None,
    gray: float = OFFICIAL_GRAY,
    *,
    grow: int = 0,
    feather: float = 0.0,
    truncate_to_uint8: bool = False,
) -> torch.Tensor:
    """The model's foreground condition: ``frames·α + gray·(1−α)``.

    Args:
        frames: (T, H, W, 3) float RGB in 0..1 (ComfyUI IMAGE layout), T >= 1.
        masks: (T, H', W') or (H', W') in 0..1, 1 = foreground; soft values blend. One mask (T = 1)
            serves all frames; another size is resized to the frames'. None: the whole frame is foreground.
        gray: fill outside the mask, in 0..1: ``OFFICIAL_GRAY`` (128/255, default) or ``ICLIGHT_GRAY`` (127/255).
        grow: pixels to grow (> 0) or shrink (< 0) the masks before compositing.
        feather: blur radius of the mask edge in pixels (0 = none).
        truncate_to_uint8: reproduce the official uint8 truncation (``floor(v·255)/255``) exactly;
            off by default, keeping full precision.

    Returns:
        (T, H, W, 3) float32 in 0..1, on ``frames``' device.

    Raises:
        InputError: wrong layouts, 0 frames, a mask count neither T nor 1, or ``gray`` outside 0..1.
    """
    _check_frames(frames)
    if not 0.0 <= gray <= 1.0:
        raise InputError(f"gray must be in 0..1 (e.g. OFFICIAL_GRAY = 128/255), got {gray}.")
    frames = frames.float()
    if masks is None:
        composite = frames.clone()
    else:
        count, height, width = frames.shape[:3]
        alpha = prepare_masks(masks.to(frames.device), height, width, count, grow=grow, feather=feather)[..., None]
        composite = frames * alpha + gray * (1.0 - alpha)
    if truncate_to_uint8:
        # Official: float32 composite in 0..255, clip, astype(uint8) — truncation, not rounding.
        composite = torch.floor(composite.mul(255.0).clamp(0.0, 255.0)).div(255.0)
    return composite.clamp(0.0, 1.0)


@dataclass(frozen=True)
class OfficialClip:
    """A foreground video read in the official layout. ``frames`` (T, H, W, 3), ``masks`` (T, H, W), 0..1."""

    frames: torch.Tensor
    masks: torch.Tensor
    fps: float


def read_official_clip(video: str | Path, mask_folder: str | Path, max_frames: int | None = None) -> OfficialClip:
    """Read a foreground video and its mask folder (``0000.png`` …, 255 = foreground), as the official CLI takes them.

    Unlike the official reader, no frame is ever dropped silently: every frame needs its mask, and a
    folder with another number of masks than the video has frames is refused with both counts.
    With ``max_frames``, only the first ``max_frames`` frames and masks are used (the folder may hold more).

    Raises:
        InputError: a missing/unreadable video or mask, or differing counts.
    """
    frames, fps = read_video(video, max_frames=max_frames)
    masks = read_mask_folder(mask_folder, frames.shape[0], allow_extra=max_frames is not None)
    return OfficialClip(frames=frames, masks=masks, fps=fps)

