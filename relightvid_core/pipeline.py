"""The end-to-end relighting call: frames, masks and a lighting source → relit frames (and files → files).

Three steps, each usable on its own (the command line runs all three through :func:`run_video_job`):

1. :func:`prepare_clip` — no model needed: one size policy brings the foreground frames and their masks to
   the output size, and the lighting source (a background clip or still, a light preset, an HDR map) is
   rendered at that size for every frame.
2. :func:`relight_clip` — VAE-encode the background and the gray-filled foreground (once per IIE
   brightness factor), encode the prompt, :func:`~relightvid_core.sampling.sample` in context windows,
   decode.
3. :func:`run_video_job` — read the files, check everything that can be checked before any model is loaded,
   load the models, relight, write the mp4 (and a contact sheet) atomically.

Components are passed in, never built here, so the real models (:mod:`.model_files`) and the tiny seeded
ones (:mod:`.demo`) take exactly the same path.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import torch
from torch import nn

from .conditioning import (
    LengthPolicy,
    SizePolicy,
    TextEncoder,
    apply_geometry,
    env_map_plates,
    fit_background,
    light_plate,
    plan_geometry,
    read_official_clip,
)
from .contact_sheet import DEFAULT_SHEET_FRAMES, contact_sheet, write_image
from .errors import InputError
from .sampling import ContextWindows, StepInfo, iie_image_conditions, sample
from .vae import (
    DEFAULT_DECODE_CHUNK,
    DEFAULT_ENCODE_CHUNK,
    LATENT_CHANNELS,
    LATENT_FACTOR,
    decode_latents,
    encode_frames,
)
from .video_io import read_image, read_video, write_video

if TYPE_CHECKING:  # the network imports diffusers (seconds); callers bring a built one
    from .models import RelightVidUNet

logger = logging.getLogger(__name__)

DEFAULT_PROMPT = "change the background"  # the official CLI default (UPSTREAM.md §c)
OFFICIAL_FPS = 8.0  # the official writer's rate; used when a container does not state its own
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
SEED_BITS = 63  # torch.Generator.manual_seed takes any non-negative int64
SHEET_LABELS = ("input", "background", "output")


@dataclass(frozen=True)
class Components:
    """The three networks a relighting run needs, already placed on one device.

    Attributes:
        unet: the RelightVid U-Net (12 input channels: noisy | fg | bg latents).
        vae: a diffusers ``AutoencoderKL`` with 4 latent channels and downscale 8 (SD1.5's).
        text: the prompt encoder; its width must equal the U-Net's ``cross_attention_dim``.
    """

    unet: RelightVidUNet
    vae: nn.Module
    text: TextEncoder


ComponentsLike = Components | Callable[[], Components]


# --- lighting sources: each renders (count, height, width, 3) plates in 0..1 for a given output size ---


class LightingSource(Protocol):
    """Anything that renders per-frame background plates: ``render(count, height, width) -> (T, H, W, 3)``."""

    def render(self, count: int, height: int, width: int) -> torch.Tensor: ...


@dataclass(frozen=True)
class BackgroundFrames:
    """A background clip or still already in memory, fitted with :func:`fit_background` (loop, cover, ...).

    ``frames`` None renders black frames ("no background").
    """

    frames: torch.Tensor | None
    length: LengthPolicy | str = LengthPolicy.LOOP
    fit: SizePolicy | str = SizePolicy.COVER
    flip: bool = False

    def render(self, count: int, height: int, width: int) -> torch.Tensor:
        return fit_background(self.frames, count, height, width, self.length, self.fit, self.flip)


@dataclass(frozen=True)
class BackgroundFile:
    """A background video (the official ``--bg_cond``) or still image, read when rendered."""

    path: Path
    length: LengthPolicy | str = LengthPolicy.LOOP
    fit: SizePolicy | str = SizePolicy.COVER
    flip: bool = False

    def read(self, count: int) -> torch.Tensor:
        """(n, H, W, 3) in 0..1; only the frames the length policy can use are decoded."""
        path = Path(self.path)
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return read_image(path)
        # Every policy but stretch uses at most the first `count` frames (a str enum: plain names compare too).
        return read_video(path, None if self.length == LengthPolicy.STRETCH else count)[0]

    def render(self, count: int, height: int, width: int) -> torch.Tensor:
        return BackgroundFrames(self.read(count), self.length, self.fit, self.flip).render(count, height, width)


@dataclass(frozen=True)
class LightPreset:
    """A light-direction plate (:func:`~relightvid_core.conditioning.light_plate`), optionally sweeping."""

    direction: str | float
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    intensity: float = 1.0
    softness: float = 1.0
    end_direction: str | float | None = None

    def render(self, count: int, height: int, width: int) -> torch.Tensor:
        return light_plate(
            self.direction,
            count,
            height,
            width,
            color=self.color,
            intensity=self.intensity,
            softness=self.softness,
            end_direction=self.end_direction,
        )


@dataclass(frozen=True)
class EnvironmentMap:
    """Perspective plates of an ``.hdr``/``.exr`` map (:func:`~relightvid_core.conditioning.env_map_plates`)."""

    path: Path
    yaw: float = 0.0
    pitch: float = 0.0
    fov: float = 60.0
    yaw_speed: float = 0.0
    exposure: float = 0.0

    def render(self, count: int, height: int, width: int) -> torch.Tensor:
        return env_map_plates(
            Path(self.path),
            count,
            height,
            width,
            self.yaw,
            self.pitch,
            self.fov,
            self.yaw_speed,
            exposure=self.exposure,
        )


# --- step 1: geometry and plates ---


@dataclass(frozen=True)
class PreparedClip:
    """Model inputs at the output size, all in IMAGE layout.

    Attributes:
        frames: (T, H, W, 3) foreground video in 0..1 (not yet gray-filled).
        masks: (T, H, W) in 0..1, 1 = subject; None: the whole frame is the subject.
        background: (T, H, W, 3) lighting plates in 0..1.
    """

    frames: torch.Tensor
    masks: torch.Tensor | None
    background: torch.Tensor

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return self.frames.shape[1], self.frames.shape[2]


def prepare_clip(
    frames: torch.Tensor,
    masks: torch.Tensor | None,
    lighting: LightingSource,
    size_policy: SizePolicy | str = SizePolicy.CENTER_CROP,
    width: int | None = None,
    height: int | None = None,
) -> PreparedClip:
    """Bring a foreground clip and its masks to the output size and render the lighting plates for it.

    One :class:`~relightvid_core.conditioning.GeometryPlan` is applied to frames and masks, so they stay
    aligned. Pixels padded in (a source smaller than the target under ``center_crop``/``contain``) get
    mask 0 and so the gray fill; the official code pads its gray-filled composite with black instead
    (UPSTREAM.md §c) — identical whenever the source covers the target, as with every shipped clip.

    Args:
        frames: (T, H, W, 3) float RGB in 0..1.
        masks: (T, H, W) in 0..1 of the same size, or None.
        lighting: a :class:`LightingSource` (e.g. :class:`BackgroundFile`, :class:`LightPreset`).
        size_policy, width, height: see :func:`~relightvid_core.conditioning.plan_geometry` (default: the
            official 512x512 centre crop).

    Returns:
        A :class:`PreparedClip`.

    Raises:
        InputError: wrong layouts, masks of another count or size than the frames, a bad size policy or
            target size, or a lighting source that cannot be rendered.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise InputError(f"frames must be (T, H, W, 3) RGB with T >= 1, got shape {tuple(frames.shape)}.")
    if masks is not None and tuple(masks.shape) != tuple(frames.shape[:3]):
        raise InputError(
            f"masks must be one (H, W) mask per frame, {tuple(frames.shape[:3])}; got {tuple(masks.shape)}."
        )
    plan = plan_geometry(frames.shape[1], frames.shape[2], size_policy, width, height)
    out_height, out_width = plan.output_size
    fitted = apply_geometry(frames, plan)
    fitted_masks = None if masks is None else apply_geometry(masks, plan)
    plates = lighting.render(frames.shape[0], out_height, out_width)
    return PreparedClip(fitted, fitted_masks, plates)


# --- step 2: encode, sample, decode ---


@dataclass(frozen=True)
class SamplingSettings:
    """How a clip is sampled; the defaults are the official run's (UPSTREAM.md §c) plus windows.

    Attributes:
        prompt: the text condition (official default ``"change the background"``).
        scheduler: a name in ``relightvid_core.sampling.SCHEDULER_NAMES`` (official ``ddpm``).
        steps: denoising steps (official 20).
        text_scale, image_scale: guidance scales (official 7.5 and 1.2).
        seed: seeds the initial noise and every stochastic step; None draws a fresh seed (reported back).
        iie_factors: foreground brightness factors of the Illumination-Invariant Ensemble; ``(1.0,)`` is
            plain sampling.
        window: context windows (the default 16 frames with overlap 4 is exactly the unwindowed run on
            clips of at most 16 frames).
        encode_chunk, decode_chunk: frames per VAE call (memory only; results do not change).
    """

    prompt: str = DEFAULT_PROMPT
    scheduler: str = "ddpm"
    steps: int = 20
    text_scale: float = 7.5
    image_scale: float = 1.2
    seed: int | None = None
    iie_factors: tuple[float, ...] = (1.0,)
    window: ContextWindows = field(default_factory=ContextWindows)
    encode_chunk: int = DEFAULT_ENCODE_CHUNK
    decode_chunk: int = DEFAULT_DECODE_CHUNK


@dataclass(frozen=True)
class RelightResult:
    """``frames`` (T, H, W, 3) relit video in 0..1 (CPU), and the ``seed`` that made it."""

    frames: torch.Tensor
    seed: int


def _check_latent_size(height: int, width: int) -> None:
    if height % LATENT_FACTOR or width % LATENT_FACTOR:
        raise InputError(
            f"the clip is {width}x{height}; both sides must be multiples of {LATENT_FACTOR} (the latent grid)."
        )


def relight_clip(
    components: Components,
    clip: PreparedClip,
    settings: SamplingSettings = SamplingSettings(),
    callback: Callable[[StepInfo], None] | None = None,
) -> RelightResult:
    """Relight a prepared clip: VAE encode → (IIE) image conditions → sample → VAE decode.

    Args:
        components: U-Net, VAE and text encoder (see :class:`Components`).
        clip: from :func:`prepare_clip`.
        settings: :class:`SamplingSettings`.
        callback: called after every sampling step with a :class:`~relightvid_core.sampling.StepInfo`.

    Returns:
        A :class:`RelightResult`.

    Raises:
        InputError: a size that is not a multiple of 8, or sampling settings the sampler refuses (the message
            names the setting).
    """
    height, width = clip.size
    _check_latent_size(height, width)
    seed = secrets.randbits(SEED_BITS) if settings.seed is None else settings.seed
    generator = torch.Generator().manual_seed(seed)
    vae, unet = components.vae, components.unet

    def encode(frames: torch.Tensor) -> torch.Tensor:
        return encode_frames(vae, frames, settings.encode_chunk)

    background_latents = encode(clip.background)
    images = iie_image_conditions(clip.frames, clip.masks, settings.iie_factors, encode, background_latents)
    text_cond, text_uncond = components.text.encode(settings.prompt), components.text.encode_uncond()
    count = clip.frames.shape[0]
    # Drawn on the CPU from the seed, so a seed gives the same clip on every device.
    noise = torch.randn(1, count, LATENT_CHANNELS, height // LATENT_FACTOR, width // LATENT_FACTOR, generator=generator)
    logger.info("sampling %d frames at %dx%d, seed %d, %d IIE member(s)", count, width, height, seed, len(images))
    latents = sample(
        unet,
        noise,
        images,
        text_cond,
        text_uncond,
        scheduler=settings.scheduler,
        steps=settings.steps,
        text_cfg=settings.text_scale,
        img_cfg=settings.image_scale,
        generator=generator,
        window=settings.window,
        callback=callback,
    )
    return RelightResult(decode_latents(vae, latents[0], settings.decode_chunk).cpu(), seed)


# --- step 3: files to files ---


@dataclass(frozen=True)
class VideoJob:
    """One command-line run: where the inputs are and where the results go.

    Attributes:
        input: the foreground video.
        mask: its mask folder (``0000.png`` …, one per frame); None: the whole frame is the subject.
        lighting: the lighting source (e.g. :class:`BackgroundFile` for the official ``--bg_cond``).
        output: the mp4 to write (its folder must exist); written at the input's frame rate.
        contact_sheet: an optional image (``.png``) with rows input | background | output.
        max_frames: use at most this many frames from the start (None: all).
        size_policy, width, height: the output geometry (see :func:`prepare_clip`).
        sheet_frames: frames per contact-sheet row, sampled evenly across the clip.
    """

    input: Path
    mask: Path | None
    lighting: LightingSource
    output: Path
    contact_sheet: Path | None = None
    max_frames: int | None = None
    size_policy: SizePolicy | str = SizePolicy.CENTER_CROP
    width: int | None = None
    height: int | None = None
    sheet_frames: int = DEFAULT_SHEET_FRAMES


@dataclass(frozen=True)
class JobResult:
    """What :func:`run_video_job` wrote: the video (``frames`` of ``height`` x ``width`` at ``fps``), the
    contact sheet (or None) and the ``seed`` used."""

    output: Path
    contact_sheet: Path | None
    frames: int
    height: int
    width: int
    fps: float
    seed: int


def _check_destination(path: Path, what: str) -> None:
    if not Path(path).parent.is_dir():
        raise InputError(f"the folder of the {what} {path} does not exist; create it first.")
    if Path(path).is_dir():
        raise InputError(f"the {what} {path} is a folder; give a file name.")


def _read_foreground(job: VideoJob) -> tuple[torch.Tensor, torch.Tensor | None, float]:
    if job.mask is None:
        frames, fps = read_video(job.input, job.max_frames)
        return frames, None, fps
    clip = read_official_clip(job.input, job.mask, job.max_frames)
    return clip.frames, clip.masks, clip.fps


def run_video_job(
    job: VideoJob,
    settings: SamplingSettings,
    components: ComponentsLike,
    callback: Callable[[StepInfo], None] | None = None,
) -> JobResult:
    """Read, check, relight and write one clip.

    Everything that can fail on the user's inputs (destination folders, the video, its masks, the lighting
    source, sizes) is checked before ``components`` is called, so a bad input never waits for model loading.
    Files are written atomically: a failure leaves no partial output behind.

    Args:
        job: the :class:`VideoJob`.
        settings: the :class:`SamplingSettings`.
        components: :class:`Components`, or a function returning them (called once, after the checks).
        callback: per sampling step (progress bars).

    Returns:
        A :class:`JobResult`.

    Raises:
        InputError: a missing or unreadable input, masks that do not match the video, a destination folder
            that does not exist, or a setting out of range.
        MissingFileError, WeightFormatError: from ``components`` when it loads model files.
    """
    _check_destination(job.output, "output video")
    if job.contact_sheet is not None:
        _check_destination(job.contact_sheet, "contact sheet")
    frames, masks, fps = _read_foreground(job)
    clip = prepare_clip(frames, masks, job.lighting, job.size_policy, job.width, job.height)
    _check_latent_size(*clip.size)
    if fps <= 0:
        logger.warning("%s does not state its frame rate; writing at the official %g fps", job.input, OFFICIAL_FPS)
        fps = OFFICIAL_FPS
    loaded = components() if callable(components) else components
    result = relight_clip(loaded, clip, settings, callback)
    write_video(job.output, result.frames, fps)
    if job.contact_sheet is not None:
        sheet = contact_sheet([clip.frames, clip.background, result.frames], job.sheet_frames, SHEET_LABELS)
        write_image(job.contact_sheet, sheet)
    height, width = clip.size
    return JobResult(job.output, job.contact_sheet, result.frames.shape[0], height, width, fps, result.seed)
