"""Conditioning nodes: frame fitting, the foreground, the lighting source (background video, light preset,
HDR map) and the text embeddings, each producing a payload of :mod:`.payloads` plus a preview IMAGE."""

from __future__ import annotations

import dataclasses
import logging
import os

import torch

from ...relightvid_core.conditioning import (
    ICLIGHT_GRAY,
    LIGHT_DIRECTIONS,
    OFFICIAL_GRAY,
    PRESET_NAMES,
    LengthPolicy,
    SizePolicy,
    ToneMap,
    apply_geometry,
    composite_foreground,
    env_map_plates,
    fit_background,
    light_plate,
    plan_geometry,
    prepare_masks,
    read_env_map,
)
from ...relightvid_core.conditioning.geometry import LATENT_FACTOR, OFFICIAL_SIZE
from ...relightvid_core.errors import InputError
from ...relightvid_core.video_io import read_video_frames
from .. import checks, host
from ..payloads import (
    BACKGROUND_TYPE,
    FOREGROUND_TYPE,
    TEXT_TYPE,
    Background,
    Foreground,
    TextConditioning,
)
from .clip_conditions import check_text_conditioning
from .video_inputs import (
    FRAME_BUDGET_INPUTS,
    VIDEO_INPUT,
    fitted_clip,
    frame_selection,
    selected_images,
)

logger = logging.getLogger(__name__)

CATEGORY = "RelightVid/conditioning"
GRAYS = {"official_128": OFFICIAL_GRAY, "iclight_127": ICLIGHT_GRAY}
SIZE_POLICIES = [policy.value for policy in SizePolicy]
BACKGROUND_SIZE_POLICIES = [p for p in SIZE_POLICIES if p != SizePolicy.MULTIPLE_OF_64.value]
LENGTH_POLICIES = [policy.value for policy in LengthPolicy]
NO_SWEEP = "none"
MAX_SIZE = 8192
MASK_PADDING = 1.0  # padded pixels count as subject, so the official black padding survives compositing


def _size_inputs(tooltip_target: str) -> dict:
    size = {
        "min": LATENT_FACTOR,
        "max": MAX_SIZE,
        "step": LATENT_FACTOR,
        "default": OFFICIAL_SIZE,
    }
    return {
        "size_policy": (
            SIZE_POLICIES,
            {
                "default": SizePolicy.CENTER_CROP.value,
                "tooltip": f"How {tooltip_target} reach width x height. center_crop: the official 512 crop, no resize "
                f"(pads black when smaller); cover: resize and crop; contain: resize and letterbox; stretch: resize "
                f"to the size; multiple_of_64: keep the aspect ratio inside the width x height box, sides rounded to "
                f"64.",
            },
        ),
        "width": (
            "INT",
            {
                **size,
                "tooltip": "Output width in pixels, a multiple of 8 (the official crop is 512). For multiple_of_64 it "
                "is the box the frames are fitted into.",
            },
        ),
        "height": (
            "INT",
            {
                **size,
                "tooltip": "Output height in pixels, a multiple of 8 (the official crop is 512). For multiple_of_64 "
                "it is the box the frames are fitted into.",
            },
        ),
    }


def _size_problem(width, height) -> str | None:
    """The size widgets must be whole latent pixels, which every size policy needs (their ranges are checked
    with the other numbers)."""
    return checks.multiple_problem("width", width, LATENT_FACTOR, "pixels") or checks.multiple_problem(
        "height", height, LATENT_FACTOR, "pixels"
    )


def _fit_masks(mask: torch.Tensor, invert: bool, count: int, plan) -> torch.Tensor:
    """Any MASK (``count`` frames or a single mask, any size) → (T or 1, H', W') at the plan's output size."""
    height, width = plan.source_size
    mask = 1.0 - mask.float() if invert else mask.float()
    at_source = prepare_masks(mask, height, width, count)
    return apply_geometry(at_source, plan, fill=MASK_PADDING)


class RelightVidFitFrames:
    DESCRIPTION = (
        "Brings a clip (and optionally its mask) to a size the model takes — crop, cover, letterbox, stretch or "
        "round to multiples of 64 — applying one plan to frames and masks so they stay aligned. Use it before "
        "masking or previews; RelightVid Foreground does the same fitting itself."
    )
    CATEGORY = CATEGORY
    FUNCTION = "fit"
    RETURN_TYPES = ("IMAGE", "MASK", "INT", "INT", "INT")
    RETURN_NAMES = ("images", "mask", "width", "height", "frame_count")
    OUTPUT_TOOLTIPS = (
        "The fitted frames.",
        "The fitted mask (all ones when no mask was connected).",
        "Width of the fitted frames in pixels.",
        "Height of the fitted frames in pixels.",
        "Number of frames.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                **_size_inputs("the frames"),
                **FRAME_BUDGET_INPUTS,
            },
            "optional": {
                "images": (
                    "IMAGE",
                    {"tooltip": "The frames of a clip (or a single image); or connect video."},
                ),
                "mask": (
                    "MASK",
                    {"tooltip": "Optional mask (one per kept frame or one for all) fitted the same way."},
                ),
                "video": VIDEO_INPUT,
            },
            "hidden": checks.HIDDEN_NODE_ID,
        }

    @classmethod
    def VALIDATE_INPUTS(cls, settings):
        return checks.queued_problem(cls, settings, _size_problem, "width", "height")

    def fit(
        self,
        size_policy,
        width,
        height,
        skip_first_frames,
        frame_stride,
        max_frames,
        images=None,
        mask=None,
        video=None,
        settings=None,
    ):
        checks.check_numbers(type(self), locals())
        checks.check(_size_problem(width, height))
        selection = frame_selection(skip_first_frames, frame_stride, max_frames)
        fitted, plan = fitted_clip(images, video, selection, size_policy, width, height)
        out_h, out_w = plan.output_size
        masks = torch.ones(fitted.shape[:3]) if mask is None else _fit_masks(mask, False, fitted.shape[0], plan)
        return (fitted, masks, out_w, out_h, fitted.shape[0])


class RelightVidForeground:
    DESCRIPTION = (
        "The subject to relight: frames fitted to the output size and, outside the mask, filled with the gray the "
        "model was trained on. The VAE is kept so the sampler can encode brightness-scaled copies for the "
        "Illumination-Invariant Ensemble. Without a mask the whole frame counts as the subject."
    )
    CATEGORY = CATEGORY
    FUNCTION = "prepare"
    RETURN_TYPES = (FOREGROUND_TYPE, "IMAGE", "MASK", "INT", "INT", "INT")
    RETURN_NAMES = ("foreground", "preview", "mask", "width", "height", "frame_count")
    OUTPUT_TOOLTIPS = (
        "The foreground for the background/light nodes and the RelightVid Sampler.",
        "What the model sees: the fitted frames composited over gray.",
        "The fitted, grown and feathered mask (1 = subject).",
        "Output width in pixels (x8 = latent width).",
        "Output height in pixels (x8 = latent height).",
        "Number of frames.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "vae": (
                    "VAE",
                    {"tooltip": "The SD1.5 VAE (from Load Checkpoint), used by the sampler to encode the foreground."},
                ),
                **_size_inputs("frames and mask"),
                "gray": (
                    list(GRAYS),
                    {
                        "default": "official_128",
                        "tooltip": "Fill outside the mask: official_128 (RelightVid's code) or iclight_127 "
                        "(IC-Light's, exactly 0 in latent input scale).",
                    },
                ),
                "grow": (
                    "INT",
                    {
                        "default": 0,
                        "min": -64,
                        "max": 64,
                        "step": 1,
                        "tooltip": "Grow (> 0) or shrink (< 0) the mask by this many output pixels before compositing.",
                    },
                ),
                "feather": (
                    "FLOAT",
                    {
                        "default": 0.0,
                        "min": 0.0,
                        "max": 64.0,
                        "step": 0.5,
                        "tooltip": "Soften the mask edge over this many output pixels (Gaussian); 0 keeps it as it is.",
                    },
                ),
                "invert_mask": (
                    "BOOLEAN",
                    {
                        "default": False,
                        "tooltip": "Turn the mask over. Masks here are 1 on the subject; Load Image's alpha mask is 1 "
                        "on the transparent part, so switch this on for it.",
                    },
                ),
                **FRAME_BUDGET_INPUTS,
            },
            "optional": {
                "images": (
                    "IMAGE",
                    {
                        "tooltip": "The video frames (e.g. from Get Video Components) or a single image; or "
                        "connect video."
                    },
                ),
                "mask": (
                    "MASK",
                    {
                        "tooltip": "Subject mask, one per kept frame or one for all frames, any size (resized). "
                        "Soft values blend. Not connected: the whole frame is the subject."
                    },
                ),
                "video": VIDEO_INPUT,
            },
            "hidden": checks.HIDDEN_NODE_ID,
        }

    @classmethod
    def VALIDATE_INPUTS(cls, settings):
        return checks.queued_problem(cls, settings, _size_problem, "width", "height")

    def prepare(
        self,
        vae,
        size_policy,
        width,
        height,
        gray,
        grow,
        feather,
        invert_mask,
        skip_first_frames,
        frame_stride,
        max_frames,
        images=None,
        mask=None,
        video=None,
        settings=None,
    ):
        checks.check_numbers(type(self), locals())
        checks.check(_size_problem(width, height))
        selection = frame_selection(skip_first_frames, frame_stride, max_frames)
        fitted, plan = fitted_clip(images, video, selection, size_policy, width, height)
        count, out_h, out_w = fitted.shape[:3]
        masks = None
        if mask is not None:
            masks = prepare_masks(
                _fit_masks(mask, invert_mask, count, plan),
                out_h,
                out_w,
                count,
                grow,
                feather,
            )
            masks = masks.expand(count, out_h, out_w).contiguous()
        foreground = Foreground(fitted, masks, GRAYS[gray], vae)
        preview = composite_foreground(fitted, masks, GRAYS[gray])
        mask_out = torch.ones(count, out_h, out_w) if masks is None else masks
        return (foreground, preview, mask_out, out_w, out_h, count)


def _background_outputs(background: Background) -> tuple:
    preview = background.frames
    if preview is None:
        preview = torch.zeros(background.count, background.height, background.width, 3)
    return (background, preview)


BACKGROUND_OUTPUTS = (BACKGROUND_TYPE, "IMAGE")
BACKGROUND_NAMES = ("background", "preview")
BACKGROUND_TOOLTIPS = (
    "Background plates matched to the foreground, for the RelightVid Sampler.",
    "The plates the model sees (black for none).",
)
FOREGROUND_INPUT = (
    FOREGROUND_TYPE,
    {"tooltip": "The foreground: the plates get its frame count and size."},
)


class RelightVidBackground:
    DESCRIPTION = (
        "The lighting as a background clip: a video or a still, looped/trimmed/stretched to the foreground's "
        "length and fitted to its size. Not connected: no background, given to the model as zero latents "
        "(the condition training used for an all-black background)."
    )
    CATEGORY = CATEGORY
    FUNCTION = "fit"
    RETURN_TYPES = BACKGROUND_OUTPUTS
    RETURN_NAMES = BACKGROUND_NAMES
    OUTPUT_TOOLTIPS = BACKGROUND_TOOLTIPS

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "foreground": FOREGROUND_INPUT,
                "length_policy": (
                    LENGTH_POLICIES,
                    {
                        "default": LengthPolicy.LOOP.value,
                        "tooltip": "How the background's frames become the foreground's count: loop, ping_pong, hold "
                        "(the last frame), trim (only shortens) or stretch (spread over the clip). A still is "
                        "repeated.",
                    },
                ),
                "size_policy": (
                    BACKGROUND_SIZE_POLICIES,
                    {
                        "default": SizePolicy.COVER.value,
                        "tooltip": "How the background fills the frame: cover (resize and crop), center_crop "
                        "(official, no resize), contain (letterbox) or stretch.",
                    },
                ),
                "flip": (
                    "BOOLEAN",
                    {
                        "default": False,
                        "tooltip": "Mirror the background left-right (moves a key light to the other side).",
                    },
                ),
                **FRAME_BUDGET_INPUTS,
            },
            "optional": {
                "images": (
                    "IMAGE",
                    {
                        "tooltip": "Background frames or a single still; any size and length. Not connected (and no "
                        "video): no background."
                    },
                ),
                "video": VIDEO_INPUT,
            },
        }

    def fit(
        self,
        foreground,
        length_policy,
        size_policy,
        flip,
        skip_first_frames,
        frame_stride,
        max_frames,
        images=None,
        video=None,
    ):
        selection = frame_selection(skip_first_frames, frame_stride, max_frames)
        if images is not None and video is not None:
            raise InputError("connect either images or video as the background, not both.")
        frames = None if images is None else selected_images(images, selection)
        if video is not None:
            frames = self._video_plates(foreground, video, selection, length_policy, size_policy)
        plates = None
        if frames is not None:
            plates = fit_background(
                frames,
                foreground.count,
                foreground.height,
                foreground.width,
                length_policy,
                size_policy,
                flip,
            )
        label = "no background" if frames is None else f"{frames.shape[0]} background frame(s)"
        return _background_outputs(Background(plates, foreground.count, foreground.height, foreground.width, label))

    @staticmethod
    def _video_plates(foreground, video, selection, length_policy, size_policy) -> torch.Tensor:
        """The kept background frames, each fitted to the foreground's size as it is decoded. Without a cap only
        the frames the length policy can use are read: the first ``count`` (all of them for ``stretch``)."""
        if selection.limit is None and length_policy != LengthPolicy.STRETCH.value:
            selection = dataclasses.replace(selection, limit=foreground.count)

        def fit(frame: torch.Tensor) -> torch.Tensor:
            plan = plan_geometry(
                frame.shape[1],
                frame.shape[2],
                size_policy,
                foreground.width,
                foreground.height,
            )
            return apply_geometry(frame, plan)

        frames, _fps = read_video_frames(video.get_stream_source(), selection, fit)
        return frames


def parse_color(text: str) -> tuple[float, float, float]:
    """'#RRGGBB' (or 'RRGGBB') → RGB in 0..1.

    Raises:
        InputError: anything else.
    """
    digits = text.strip().lstrip("#")
    if len(digits) != 6 or any(c not in "0123456789abcdefABCDEF" for c in digits):
        raise InputError(f"color must be a hex colour like #FFD8A8; got {text!r}.")
    return tuple(int(digits[i : i + 2], 16) / 255.0 for i in (0, 2, 4))


def _color_problem(color) -> str | None:
    """:func:`parse_color`'s message for ``color``, or None when it parses (or is linked: None)."""
    if color is None:
        return None
    try:
        parse_color(color)
    except InputError as error:
        return str(error)
    return None


class RelightVidLightPreset:
    DESCRIPTION = (
        "The lighting as a light direction: background plates bright on the side the light comes from (as IC-Light's "
        "demo), optionally sweeping to another direction over the clip. Pair it with a prompt describing the light."
    )
    CATEGORY = CATEGORY
    FUNCTION = "render"
    RETURN_TYPES = BACKGROUND_OUTPUTS
    RETURN_NAMES = BACKGROUND_NAMES
    OUTPUT_TOOLTIPS = BACKGROUND_TOOLTIPS

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "foreground": FOREGROUND_INPUT,
                "direction": (
                    list(PRESET_NAMES),
                    {
                        "default": "left",
                        "tooltip": "Where the light comes from (ambient: uniform light with no direction).",
                    },
                ),
                "sweep_to": (
                    [NO_SWEEP, *LIGHT_DIRECTIONS],
                    {
                        "default": NO_SWEEP,
                        "tooltip": "Move the light to this direction over the clip, the shorter way round; none keeps "
                        "it fixed.",
                    },
                ),
                "color": (
                    "STRING",
                    {
                        "default": "#FFFFFF",
                        "tooltip": "Light colour as hex RGB, e.g. #FFD8A8 for warm light.",
                    },
                ),
                "intensity": (
                    "FLOAT",
                    {
                        "default": 1.0,
                        "min": 0.0,
                        "max": 4.0,
                        "step": 0.05,
                        "tooltip": "Brightness of the plate (values above 1 saturate sooner).",
                    },
                ),
                "softness": (
                    "FLOAT",
                    {
                        "default": 1.0,
                        "min": 0.05,
                        "max": 1.0,
                        "step": 0.05,
                        "tooltip": "1: a gradient across the whole frame (IC-Light's); smaller: the light falls off "
                        "sooner.",
                    },
                ),
            },
            "hidden": checks.HIDDEN_NODE_ID,
        }

    @classmethod
    def VALIDATE_INPUTS(cls, settings):
        return checks.queued_problem(cls, settings, _color_problem, "color")

    def render(self, foreground, direction, sweep_to, color, intensity, softness, settings=None):
        checks.check_numbers(type(self), locals())
        checks.check(_color_problem(color))
        plates = light_plate(
            direction,
            foreground.count,
            foreground.height,
            foreground.width,
            color=parse_color(color),
            intensity=intensity,
            softness=softness,
            end_direction=None if sweep_to == NO_SWEEP else sweep_to,
        )
        label = f"light from {direction}" + ("" if sweep_to == NO_SWEEP else f" to {sweep_to}")
        return _background_outputs(Background(plates, foreground.count, foreground.height, foreground.width, label))


def _env_map_problem(env_map) -> str | None:
    """An HDR or EXR file in ComfyUI's input folder (None, a linked input, passes)."""
    if env_map is None:
        return None
    if not env_map.lower().endswith(host.ENV_MAP_EXTENSIONS):
        return f"env_map must be a .hdr or .exr file; got {env_map!r}."
    path = host.input_file_path(env_map)
    if not path or not os.path.isfile(path):
        return f"env_map {env_map!r} was not found in ComfyUI's input folder ({host.input_directory()})."
    return None


class RelightVidHDRMap:
    DESCRIPTION = (
        "The lighting as an HDR environment map (.hdr or .exr in ComfyUI's input folder): a virtual camera renders "
        "a tone-mapped background plate per frame, optionally panning. The released model is background-"
        "conditioned, so the map lights the subject through these plates."
    )
    CATEGORY = CATEGORY
    FUNCTION = "render"
    RETURN_TYPES = BACKGROUND_OUTPUTS
    RETURN_NAMES = BACKGROUND_NAMES
    OUTPUT_TOOLTIPS = BACKGROUND_TOOLTIPS

    @classmethod
    def INPUT_TYPES(cls):
        angle = {"min": -360.0, "max": 360.0, "step": 1.0}
        return {
            "required": {
                "foreground": FOREGROUND_INPUT,
                "env_map": (
                    host.input_files(host.ENV_MAP_EXTENSIONS),
                    {
                        "tooltip": "Equirectangular .hdr/.exr map in ComfyUI's input folder (copy or upload it there; "
                        "refresh to list it)."
                    },
                ),
                "yaw": (
                    "FLOAT",
                    {
                        **angle,
                        "default": 0.0,
                        "tooltip": "Camera heading in degrees; 0 looks at the map's centre, positive turns right.",
                    },
                ),
                "pitch": (
                    "FLOAT",
                    {
                        "default": 0.0,
                        "min": -90.0,
                        "max": 90.0,
                        "step": 1.0,
                        "tooltip": "Camera tilt in degrees; positive looks up.",
                    },
                ),
                "fov": (
                    "FLOAT",
                    {
                        "default": 60.0,
                        "min": 1.0,
                        "max": 179.0,
                        "step": 1.0,
                        "tooltip": "Horizontal field of view in degrees.",
                    },
                ),
                "yaw_speed": (
                    "FLOAT",
                    {
                        "default": 0.0,
                        "min": -45.0,
                        "max": 45.0,
                        "step": 0.1,
                        "tooltip": "Degrees of yaw added per frame: pans the environment (and its light) over the "
                        "clip.",
                    },
                ),
                "exposure": (
                    "FLOAT",
                    {
                        "default": 0.0,
                        "min": -16.0,
                        "max": 16.0,
                        "step": 0.1,
                        "tooltip": "Exposure in stops (EV); +1 doubles the light.",
                    },
                ),
                "tone_map": (
                    [t.value for t in ToneMap],
                    {
                        "default": ToneMap.REINHARD.value,
                        "tooltip": "reinhard keeps highlights (x/(1+x)); clip cuts everything above 1.",
                    },
                ),
            },
            "hidden": checks.HIDDEN_NODE_ID,
        }

    @classmethod
    def VALIDATE_INPUTS(cls, settings):
        # ComfyUI itself refuses a name missing from the (freshly listed) input folder when queued.
        return checks.queued_problem(cls, settings, _env_map_problem, "env_map")

    @classmethod
    def IS_CHANGED(cls, env_map, **_ignored):
        path = host.input_file_path(env_map)
        return host.file_digest(path) if os.path.isfile(path) else env_map

    def render(
        self,
        foreground,
        env_map,
        yaw,
        pitch,
        fov,
        yaw_speed,
        exposure,
        tone_map,
        settings=None,
    ):
        checks.check_numbers(type(self), locals())
        checks.check(_env_map_problem(env_map))
        radiance = read_env_map(host.input_file_path(env_map))
        plates = env_map_plates(
            radiance,
            foreground.count,
            foreground.height,
            foreground.width,
            yaw=yaw,
            pitch=pitch,
            fov=fov,
            yaw_speed=yaw_speed,
            exposure=exposure,
            operator=tone_map,
        )
        label = f"environment map {env_map}"
        return _background_outputs(Background(plates, foreground.count, foreground.height, foreground.width, label))


class RelightVidTextConditioning:
    DESCRIPTION = (
        'The prompt for the text guidance branch (upstream default: "change the background") and the uncond, '
        "which is the empty prompt unless a negative is connected. Connect a CLIP to encode the empty prompt, "
        "or a negative CONDITIONING."
    )
    CATEGORY = CATEGORY
    FUNCTION = "combine"
    RETURN_TYPES = (TEXT_TYPE,)
    RETURN_NAMES = ("text",)
    OUTPUT_TOOLTIPS = ("The prompt and uncond CONDITIONING for the RelightVid Sampler.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "positive": (
                    "CONDITIONING",
                    {"tooltip": "The prompt, from CLIP Text Encode (SD1.5 CLIP)."},
                )
            },
            "optional": {
                "negative": (
                    "CONDITIONING",
                    {"tooltip": "Optional uncond from CLIP Text Encode; upstream uses the empty prompt."},
                ),
                "clip": (
                    "CLIP",
                    {"tooltip": "The SD1.5 CLIP, used to encode the empty prompt when no negative is connected."},
                ),
            },
        }

    def combine(self, positive, negative=None, clip=None):
        check_text_conditioning(positive, "positive")
        if negative is None:
            if clip is None:
                raise InputError(
                    "connect a CLIP (to encode the empty uncond prompt) or a negative CONDITIONING to RelightVid Text "
                    "Conditioning."
                )
            negative = host.encode_empty_prompt(clip)
        check_text_conditioning(negative, "negative")
        widths = {entry[0].shape[-1] for entry in (*positive, *negative)}
        if len(widths) > 1:
            raise InputError(
                f"positive and negative come from different text encoders (embedding widths {sorted(widths)})."
            )
        return (TextConditioning(positive, negative),)
