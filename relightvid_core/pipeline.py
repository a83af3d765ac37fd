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
from .conditioning.hdr import check_view
from .conditioning.presets import check_light
from .contact_sheet import DEFAULT_SHEET_FRAMES, IMAGE_SUFFIXES, MAX_SHEET_FRAMES, contact_sheet, write_image
from .errors import InputError, RelightVidError
from .latent_file import LATENT_SUFFIXES, write_latent
from .outputs import check_destination, publish
from .sampling import ContextWindows, StepInfo, iie_image_conditions, sample, window_indices
from .sampling.checks import GUIDANCE_RANGE
from .sampling.schedulers import TRAIN_SCHEDULE, scheduler_spec
from .vae import (
    DEFAULT_DECODE_CHUNK,
    DEFAULT_ENCODE_CHUNK,
    LATENT_CHANNELS,
    LATENT_FACTOR,
    decode_latents,
    encode_frames,
)
from .values import Range, check_number, check_seed, check_whole, counted
from .video_io import VIDEO_FORMATS, read_image, read_video, write_video

if TYPE_CHECKING:  # the network imports diffusers (seconds); callers bring a built one
    from .models import RelightVidUNet

logger = logging.getLogger(__name__)

DEFAULT_PROMPT = "change the background"  # the official CLI default (docs/official_code.md §c)
OFFICIAL_FPS = 8.0  # the official writer's rate; used when a container does not state its own
SEED_BITS = 63  # torch.Generator.manual_seed takes any non-negative int64
SHEET_LABELS = ("input", "background", "output")
IIE_FACTOR_RANGE = Range(0.0, 4.0, open_low=True)  # foreground brightness factors; official 0.7..1.3
MAX_FRAMES = 100_000
MAX_STEPS = TRAIN_SCHEDULE["num_train_timesteps"]
VaeProgress = Callable[[str, int], None]
"""Progress of the VAE: called with ``"encode"`` or ``"decode"`` and the frames of each VAE call just made."""


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

    def __post_init__(self) -> None:
        check_light(self.direction, self.color, self.intensity, self.softness, self.end_direction)

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

    def __post_init__(self) -> None:
        check_view(self.yaw, self.pitch, self.fov, self.yaw_speed, self.exposure)

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
    (docs/official_code.md §c) — identical whenever the source covers the target, as with every shipped clip.

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
    """How a clip is sampled; the defaults are the official run's (docs/official_code.md §c) plus windows.

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

    def __post_init__(self) -> None:
        """Every setting is checked here, so a bad one fails before any model is loaded.

        Raises:
            InputError: naming the setting at fault.
        """
        if not isinstance(self.prompt, str):
            raise InputError(f"prompt must be a string, got {type(self.prompt).__name__}.")
        scheduler_spec(self.scheduler)
        check_whole("steps", self.steps, 1, MAX_STEPS)
        check_number("text_scale", self.text_scale, GUIDANCE_RANGE)
        check_number("image_scale", self.image_scale, GUIDANCE_RANGE)
        if self.seed is not None:
            check_seed("seed", self.seed)
        if isinstance(self.iie_factors, str | bytes) or not len(self.iie_factors):
            raise InputError(f"iie_factors must be a non-empty sequence of numbers, got {self.iie_factors!r}.")
        for factor in self.iie_factors:
            check_number("iie factor", factor, IIE_FACTOR_RANGE)
        if not isinstance(self.window, ContextWindows):
            raise InputError(f"window must be a ContextWindows, got {type(self.window).__name__}.")
        check_whole("encode_chunk", self.encode_chunk, 1)
        check_whole("decode_chunk", self.decode_chunk, 1)

    def unet_evaluations(self, frames: int) -> int:
        """U-Net batch items the sampling of ``frames`` frames takes: steps x windows x guidance branches
        (the unconditional one, then image and image+text per IIE factor)."""
        window = self.window
        windows = len(window_indices(frames, window.length, window.overlap, window.closed_loop))
        return self.steps * windows * (1 + 2 * len(self.iie_factors))

    def encoded_frames(self, frames: int) -> int:
        """Frames the VAE encodes for a clip of ``frames``: the background, then the foreground per IIE factor."""
        return frames * (1 + len(self.iie_factors))


@dataclass(frozen=True)
class RelightResult:
    """``frames`` (T, H, W, 3) relit video in 0..1 (CPU), the sampled ``latents`` it was decoded from (T, 4,
    H / 8, W / 8, scaled as the U-Net sees them) and the ``seed`` that made it."""

    frames: torch.Tensor
    latents: torch.Tensor
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
    vae_progress: VaeProgress | None = None,
) -> RelightResult:
    """Relight a prepared clip: VAE encode → (IIE) image conditions → sample → VAE decode.

    Args:
        components: U-Net, VAE and text encoder (see :class:`Components`).
        clip: from :func:`prepare_clip`.
        settings: :class:`SamplingSettings`.
        callback: called after every sampling step with a :class:`~relightvid_core.sampling.StepInfo`.
        vae_progress: called with ``("encode" | "decode", frames)`` after every VAE call (see :data:`VaeProgress`).

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
        return encode_frames(vae, frames, settings.encode_chunk, progress=_frames_done("encode", vae_progress))

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
    if not torch.isfinite(latents).all():
        raise RelightVidError(
            "sampling produced NaN or infinite values (a numeric overflow, often fp16 on this device); "
            "nothing was written; try --dtype fp32 (Python: dtype=torch.float32)."
        )
    decoded = decode_latents(vae, latents[0], settings.decode_chunk, progress=_frames_done("decode", vae_progress))
    return RelightResult(decoded.cpu(), latents[0].cpu(), seed)


def _frames_done(stage: str, report: VaeProgress | None) -> Callable[[int, int], None] | None:
    """The VAE's (done, total) per call turned into ``report(stage, frames of this call)``."""
    if report is None:
        return None
    done_before = 0

    def advance(done: int, _total: int) -> None:
        nonlocal done_before
        report(stage, done - done_before)
        done_before = done

    return advance


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
        latent: an optional ComfyUI latent file (``.latent``) of the sampled latents (see
            :mod:`~relightvid_core.latent_file`).
        max_frames: use at most this many frames from the start (None: all).
        size_policy, width, height: the output geometry (see :func:`prepare_clip`).
        sheet_frames: frames per contact-sheet row, sampled evenly across the clip.
    """

    input: Path
    mask: Path | None
    lighting: LightingSource
    output: Path
    contact_sheet: Path | None = None
    latent: Path | None = None
    max_frames: int | None = None
    size_policy: SizePolicy | str = SizePolicy.CENTER_CROP
    width: int | None = None
    height: int | None = None
    sheet_frames: int = DEFAULT_SHEET_FRAMES

    def __post_init__(self) -> None:
        if self.max_frames is not None:
            check_whole("max_frames", self.max_frames, 1, MAX_FRAMES)
        check_whole("sheet_frames", self.sheet_frames, 1, MAX_SHEET_FRAMES)

    def check_outputs(self) -> None:
        """Raise unless the video (and the contact sheet) can be written, before any work is done."""
        check_destination(self.output, "output video", VIDEO_FORMATS)
        if self.contact_sheet is not None:
            check_destination(self.contact_sheet, "contact sheet", IMAGE_SUFFIXES)
            if Path(self.contact_sheet).expanduser().resolve() == Path(self.output).expanduser().resolve():
                raise InputError(f"the contact sheet and the output video are both {self.output}; give two names.")
        if self.latent is not None:  # its suffix is neither a video's nor an image's: no name to share
            check_destination(self.latent, "latent file", LATENT_SUFFIXES)


@dataclass(frozen=True)
class JobPlan:
    """How much work a clip takes, known before the models load: ``unet_evaluations`` U-Net batch items
    (``steps`` x windows x guidance branches) for ``frames`` frames of ``width`` x ``height``, after the VAE
    has encoded ``encoded_frames`` frames (background and IIE foregrounds); the VAE then decodes ``frames``."""

    frames: int
    width: int
    height: int
    steps: int
    unet_evaluations: int
    encoded_frames: int

    def __str__(self) -> str:
        return (
            f"{counted(self.frames, 'frame')} at {self.width}x{self.height}: the VAE encodes "
            f"{counted(self.encoded_frames, 'frame')}, then {counted(self.steps, 'step')} of "
            f"{counted(self.unet_evaluations, 'U-Net evaluation')} in all, then the VAE decodes "
            f"{counted(self.frames, 'frame')}"
        )


@dataclass(frozen=True)
class JobResult:
    """What :func:`run_video_job` wrote: the video (``frames`` of ``height`` x ``width`` at ``fps``), the
    contact sheet and the latent file (each None when not asked for) and the ``seed`` used."""

    output: Path
    contact_sheet: Path | None
    latent: Path | None
    frames: int
    height: int
    width: int
    fps: float
    seed: int


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
    announce: Callable[[JobPlan], None] | None = None,
    vae_progress: VaeProgress | None = None,
) -> JobResult:
    """Read, check, relight and write one clip.

    Everything that can fail on the user's inputs (where the outputs go, the video, its masks, the lighting
    source, sizes, settings) is checked before ``components`` is called, so a bad input never waits for
    model loading. Missing output folders are created when the files are written. The video, the contact
    sheet and the latent file are written together at the end: a failure or an interruption leaves none of
    them, no folder created for them, and any file already at those paths unchanged.

    Args:
        job: the :class:`VideoJob`.
        settings: the :class:`SamplingSettings`.
        components: :class:`Components`, or a function returning them (called once, after the checks).
        callback: per sampling step (progress bars).
        announce: receives the :class:`JobPlan` (how much work the clip takes) before the models load.
        vae_progress: called with ``("encode" | "decode", frames)`` after every VAE call.

    Returns:
        A :class:`JobResult`.

    Raises:
        InputError: a missing or unreadable input, masks that do not match the video, an output that cannot
            be written, or a setting out of range.
        MissingFileError, WeightFormatError: from ``components`` when it loads model files.
    """
    job.check_outputs()
    frames, masks, fps = _read_foreground(job)
    clip = prepare_clip(frames, masks, job.lighting, job.size_policy, job.width, job.height)
    _check_latent_size(*clip.size)
    if fps <= 0:
        logger.warning("%s does not state its frame rate; writing at the official %g fps", job.input, OFFICIAL_FPS)
        fps = OFFICIAL_FPS
    height, width = clip.size
    count = clip.frames.shape[0]
    if announce is not None:
        plan = JobPlan(
            count, width, height, settings.steps, settings.unet_evaluations(count), settings.encoded_frames(count)
        )
        announce(plan)
    loaded = components() if callable(components) else components
    result = relight_clip(loaded, clip, settings, callback, vae_progress)
    writes = [(Path(job.output).expanduser(), lambda path: write_video(path, result.frames, fps))]
    if job.latent is not None:
        writes.append((Path(job.latent).expanduser(), lambda path: write_latent(path, result.latents)))
    if job.contact_sheet is not None:
        sheet = contact_sheet([clip.frames, clip.background, result.frames], job.sheet_frames, SHEET_LABELS)
        writes.append((Path(job.contact_sheet).expanduser(), lambda path: write_image(path, sheet)))
    publish(writes)
    return JobResult(job.output, job.contact_sheet, job.latent, count, height, width, fps, result.seed)
