"""The options of one relighting job, declared once: ``relightvid relight`` and ``relightvid batch`` take them
on the command line, and a batch manifest's columns are the same options (``--bg-fit`` is column ``bg_fit``).

Each option's type checks its value where it enters (a whole number in range, a finite number, a preset
name), so a manifest row is refused with the same sentence as the same value typed after ``relight``.
:func:`job_from_options` turns a parsed set of options into the library's :class:`~relightvid_core.pipeline.VideoJob`
and :class:`~relightvid_core.pipeline.SamplingSettings`; the command line and every batch worker call it, so a job
means the same wherever it runs.

Declaring the options imports the parts of the library that list their choices (torch among them), so only
the sub-command that runs declares them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InputError
from .values import SEED_MAX, Range, check_number, check_seed, check_whole

if TYPE_CHECKING:
    from .model_files import ModelOptions
    from .pipeline import LightingSource, SamplingSettings, VideoJob

MAX_SIZE = 8192  # pixels per side; far beyond what the networks were trained on
# The official inference.py defaults (the official repository's command line).
OFFICIAL_INPUT = "./assets/input/woman.mp4"
OFFICIAL_MASK = "./assets/mask/woman"
OFFICIAL_BG = "./assets/video_bg/universe1.mp4"
OFFICIAL_OUTPUT = "output/woman_universe1.mp4"
# The official inference.py flags are spelled with underscores, as there.
OFFICIAL_SPELLING = ("input", "mask", "prompt", "output_path", "bg_cond")
# The lighting sources, one per job: a background (the official --bg_cond), a light preset or an HDR map.
LIGHTING_OPTIONS = ("bg_cond", "light", "hdr")
# Options whose values are paths of files the job reads, or writes.
INPUT_PATHS = ("input", "mask", "bg_cond", "hdr")
OUTPUT_PATHS = ("output", "contact_sheet", "latent")
# Options that are plain switches (present or absent on the command line; true or false in a manifest).
SWITCHES = ("closed_loop", "bg_flip")


class OptionError(InputError):
    """The value of one option cannot be used; ``option`` is its name as a manifest column (``overlap``) and
    ``problem`` the sentence without it, so the command line and a manifest can each name it their way."""

    def __init__(self, option: str, problem: str):
        super().__init__(f"{flag(option)} {problem}")
        self.option = option
        self.problem = problem


def flag(option: str) -> str:
    """The command-line spelling of an option: ``bg_fit`` → ``--bg-fit`` (the official flags keep their ``_``)."""
    return "--" + (option if option in OFFICIAL_SPELLING else option.replace("_", "-"))


def _parsed(text: str, kind: type) -> int | float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected {'a whole number' if kind is int else 'a number'}, got {text!r}"
        ) from None


def _checked(check: Callable[[], object]) -> None:
    try:
        check()
    except InputError as error:
        raise argparse.ArgumentTypeError(str(error).rstrip(".")) from None


def whole(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number in low..high (argparse names the option in its message)."""

    def parse(text: str) -> int:
        value = _parsed(text, int)
        _checked(lambda: check_whole("the value", value, low, high))
        return value

    return parse


def number(allowed: Range | None = None) -> Callable[[str], float]:
    """An argparse type: a finite number inside ``allowed``."""

    def parse(text: str) -> float:
        value = _parsed(text, float)
        _checked(lambda: check_number("the value", value, allowed))
        return value

    return parse


def seed(text: str) -> int:
    """An argparse type: a noise seed, 0..2**64−1."""
    value = _parsed(text, int)
    _checked(lambda: check_seed("the value", value))
    return value


def direction(text: str) -> str | float:
    """An argparse type: a light preset name, or a finite angle in degrees."""
    from .conditioning import PRESET_NAMES
    from .conditioning.presets import LIGHT_DIRECTIONS

    if text in LIGHT_DIRECTIONS or text == "ambient":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected one of {', '.join(PRESET_NAMES)} or an angle in degrees, got {text!r}"
        ) from None
    _checked(lambda: check_number("the angle", value))
    return value


def fit_choices() -> list[str]:
    """The size policies that fit a clip to a given size (backgrounds, flow clips)."""
    from .conditioning import SizePolicy

    return [p.value for p in SizePolicy if p is not SizePolicy.MULTIPLE_OF_64]


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """Where the weights are: ``--models``, ``--sd``, ``--iclight``, ``--motion``, ``--merged`` and friends."""
    from .weights.detect import MOTION_VARIANT_FORMATS

    group = parser.add_argument_group("model files (default: the official layout in ./models, downloaded if missing)")
    add = group.add_argument
    add("--models", type=Path, metavar="DIR", help="models folder (default ./models)")
    add("--sd", type=Path, metavar="DIR", help="SD1.5 diffusers folder (unet/ vae/ text_encoder/ tokenizer/)")
    add("--iclight", type=Path, metavar="FILE", help="IC-Light fbc offsets, iclight_sd15_fbc.safetensors")
    add("--motion", type=Path, metavar="FILE", help="RelightVid temporal weights, relvid_mm_sd15_fbc.pth")
    add(
        "--merged",
        type=Path,
        metavar="FILE",
        help="merged U-Net from `relightvid convert` (replaces the 3 U-Net files)",
    )
    add(
        "--motion-variant",
        choices=list(MOTION_VARIANT_FORMATS),
        help="how the temporal file's network normalises frames, for a file whose keys cannot tell "
        "(no 'unet.' prefix, 32-frame position encoding, no mid-block module): relightvid (clip-wide "
        "GroupNorm) or animatediff_v3 (per-frame GroupNorm)",
    )
    add("--no-download", action="store_true", help="never download; fail, listing what is missing")


def add_device_options(parser: argparse.ArgumentParser) -> None:
    """``--dtype`` and ``--device``."""
    from .model_files import DTYPES

    add = parser.add_argument_group("device").add_argument
    add("--dtype", choices=("auto", *DTYPES), default="auto", help="auto: fp16 on GPUs, fp32 on the CPU")
    add("--device", default="auto", help="auto (CUDA, MPS, else CPU), cpu, cuda, cuda:1, mps ...")


class _Declarer:
    """``add_argument`` for one group, with the defaults dropped when a parser must only see given values."""

    def __init__(self, group: argparse._ArgumentGroup, with_defaults: bool):
        self.group = group
        self.with_defaults = with_defaults

    def __call__(self, *names: str, **settings: Any) -> None:
        if not self.with_defaults:
            settings["default"] = argparse.SUPPRESS
        self.group.add_argument(*names, **settings)


def add_job_options(
    parser: argparse.ArgumentParser,
    *,
    files: bool = True,
    official_defaults: bool = True,
    with_defaults: bool = True,
) -> None:
    """Declare one job's options on ``parser``.

    Args:
        files: declare the job's own files (``--input``, ``--mask``, the output, ``--contact-sheet``, ``--latent``);
            ``relightvid batch`` takes them from each manifest row instead.
        official_defaults: default ``--input``, ``--bg_cond`` and the output to the official example's
            paths (``relight``, which keeps inference.py's flags); otherwise they have no default.
        with_defaults: False declares every option without a default, so parsing gives only what was given
            (a manifest row, laid over the command line's values).
    """
    from .conditioning import PRESET_NAMES, LengthPolicy, SizePolicy
    from .conditioning.hdr import ANGLE_RANGE, EXPOSURE_RANGE
    from .conditioning.presets import MAX_INTENSITY
    from .contact_sheet import DEFAULT_SHEET_FRAMES, MAX_SHEET_FRAMES
    from .pipeline import DEFAULT_PROMPT, IIE_FACTOR_RANGE, MAX_FRAMES, MAX_STEPS
    from .sampling import DEFAULT_IIE_FACTORS, FUSIONS, MAX_WINDOW_FRAMES, SCHEDULER_NAMES
    from .sampling.checks import GUIDANCE_RANGE
    from .video_io import VIDEO_FORMATS

    def group(title: str) -> _Declarer:
        return _Declarer(parser.add_argument_group(title), with_defaults)

    official = parser.add_argument_group("official inference.py flags")
    add = _Declarer(official, with_defaults)
    if files:
        add(
            "--input",
            type=Path,
            default=Path(OFFICIAL_INPUT) if official_defaults else None,
            help="foreground video" + (" (default %(default)s)" if official_defaults else ""),
        )
        add(
            "--mask",
            type=Path,
            help=f"mask folder, 0000.png … (required; {OFFICIAL_MASK} only with the default --input)",
        )
    add("--prompt", default=DEFAULT_PROMPT, help="text prompt (default %(default)r)")
    if files:
        add(
            "--output_path" if official_defaults else "--output",
            dest="output",
            type=Path,
            default=Path(OFFICIAL_OUTPUT) if official_defaults else None,
            help=f"output video, {'/'.join(VIDEO_FORMATS)}; missing folders are created"
            + (" (default %(default)s)" if official_defaults else ""),
        )
    lighting = _Declarer(official.add_mutually_exclusive_group(), with_defaults)
    lighting(
        "--bg_cond",
        type=Path,
        default=Path(OFFICIAL_BG) if official_defaults else None,
        help="background video or image" + (" (default %(default)s)" if official_defaults else ""),
    )
    lighting(
        "--light",
        type=direction,
        metavar="PRESET",
        help=f"light preset instead: {', '.join(PRESET_NAMES)}, or an angle",
    )
    lighting("--hdr", type=Path, metavar="MAP", help="equirectangular .hdr/.exr environment map instead")

    add = group("size and length")
    add(
        "--size-policy",
        choices=[p.value for p in SizePolicy],
        default=SizePolicy.CENTER_CROP.value,
        help="default %(default)s (official)",
    )
    size = whole(8, MAX_SIZE)
    add("--width", type=size, help="output width, a multiple of 8 (default 512)")
    add("--height", type=size, help="output height, a multiple of 8 (default 512)")
    add("--frames", type=whole(1, MAX_FRAMES), metavar="N", help="use at most the first N frames (default all)")
    add(
        "--window",
        type=whole(1, MAX_WINDOW_FRAMES),
        default=16,
        metavar="N",
        help="context window length in frames (default %(default)s)",
    )
    add(
        "--overlap",
        type=whole(0, MAX_WINDOW_FRAMES - 1),
        default=4,
        metavar="N",
        help="frames shared by neighbouring windows, less than --window (default %(default)s)",
    )
    add(
        "--fusion",
        choices=list(FUSIONS),
        default="pyramid",
        help="blending of overlapping windows (default %(default)s)",
    )
    add("--closed-loop", action="store_true", help="wrap the windows around, for looping clips")

    add = group("background fitting (--bg_cond)")
    add(
        "--bg-length",
        choices=[p.value for p in LengthPolicy],
        default=LengthPolicy.LOOP.value,
        help="default %(default)s",
    )
    add("--bg-fit", choices=fit_choices(), default=SizePolicy.COVER.value, help="default %(default)s")
    add("--bg-flip", action="store_true", help="mirror the background left-right")

    add = group("light preset (--light)")
    add(
        "--light-color",
        type=number(Range(0.0, 1.0)),
        nargs=3,
        default=(1.0, 1.0, 1.0),
        metavar=("R", "G", "B"),
        help="0..1 each (default white)",
    )
    add(
        "--light-intensity",
        type=number(Range(0.0, MAX_INTENSITY)),
        default=1.0,
        help="brightness multiplier (default %(default)s)",
    )
    add(
        "--light-softness",
        type=number(Range(0.0, 1.0, open_low=True)),
        default=1.0,
        help="gradient length in (0, 1] (default %(default)s)",
    )
    add("--light-end", type=direction, metavar="PRESET", help="sweep the light to this direction over the clip")

    add = group("environment map (--hdr)")
    angle = number(ANGLE_RANGE)
    add("--hdr-yaw", type=angle, default=0.0, help="degrees in -360..360, positive turns right (default %(default)s)")
    add(
        "--hdr-pitch",
        type=number(Range(-90.0, 90.0)),
        default=0.0,
        help="degrees in -90..90, positive looks up (default %(default)s)",
    )
    add(
        "--hdr-fov",
        type=number(Range(0.0, 180.0, open_low=True, open_high=True)),
        default=60.0,
        help="horizontal field of view in degrees, in (0, 180) (default %(default)s)",
    )
    add("--hdr-yaw-speed", type=angle, default=0.0, help="degrees of yaw added per frame (default %(default)s)")
    add("--hdr-exposure", type=number(EXPOSURE_RANGE), default=0.0, help="in stops (default %(default)s)")

    add = group("sampling")
    add("--scheduler", choices=SCHEDULER_NAMES, default="ddpm", help="default %(default)s (official)")
    add("--steps", type=whole(1, MAX_STEPS), default=20, help="denoising steps (default %(default)s)")
    scale = number(GUIDANCE_RANGE)
    add("--text-scale", type=scale, default=7.5, help="text guidance, 0..100 (default %(default)s)")
    add("--image-scale", type=scale, default=1.2, help="image guidance, 0..100 (default %(default)s)")
    add("--seed", type=seed, help=f"seed of the noise, 0..{SEED_MAX} (default: a fresh one, printed)")
    factors = " ".join(f"{k:g}" for k in DEFAULT_IIE_FACTORS)
    add(
        "--iie",
        type=number(IIE_FACTOR_RANGE),
        nargs="*",
        metavar="K",
        help=f"IIE over these fg brightness factors; alone: {factors} (default off)",
    )

    add = group("output")
    if files:
        add("--contact-sheet", type=Path, metavar="PNG", help="also write rows input | background | output")
        add(
            "--latent",
            type=Path,
            metavar="FILE",
            help="also write the sampled latents as a ComfyUI .latent file (for its Load Latent node)",
        )
    add(
        "--sheet-frames",
        type=whole(1, MAX_SHEET_FRAMES),
        default=DEFAULT_SHEET_FRAMES,
        metavar="N",
        help="frames per row (default %(default)s)",
    )


def lighting_from(options: Mapping[str, Any]) -> LightingSource:
    """The lighting source the options name: ``light``, else ``hdr``, else ``bg_cond``.

    Raises:
        OptionError: none is given.
    """
    from .pipeline import BackgroundFile, EnvironmentMap, LightPreset

    if options.get("light") is not None:
        return LightPreset(
            options["light"],
            tuple(options["light_color"]),
            options["light_intensity"],
            options["light_softness"],
            options["light_end"],
        )
    if options.get("hdr") is not None:
        return EnvironmentMap(
            options["hdr"],
            options["hdr_yaw"],
            options["hdr_pitch"],
            options["hdr_fov"],
            options["hdr_yaw_speed"],
            options["hdr_exposure"],
        )
    if options.get("bg_cond") is not None:
        return BackgroundFile(options["bg_cond"], options["bg_length"], options["bg_fit"], options["bg_flip"])
    raise OptionError("bg_cond", "is missing: give a lighting source, a background (--bg_cond), --light or --hdr.")


def mask_folder(options: Mapping[str, Any]) -> Path:
    """The mask folder: given, or the official one only for the official clip (never another clip's).

    Raises:
        OptionError: no mask folder for a clip other than the official one.
    """
    if options.get("mask") is not None:
        return Path(options["mask"])
    if options["input"] == Path(OFFICIAL_INPUT):
        return Path(OFFICIAL_MASK)
    raise OptionError(
        "mask",
        f"is required with --input {options['input']}: give the folder of its masks (0000.png, ...); "
        f"the default {OFFICIAL_MASK} belongs to the official {OFFICIAL_INPUT}.",
    )


def job_from_options(options: Mapping[str, Any]) -> tuple[VideoJob, SamplingSettings]:
    """The job and sampling settings that a set of parsed options (``vars(args)``, or a manifest row laid
    over the command line's values) describes.

    Raises:
        OptionError: a value that only fails next to another (the overlap against the window), a missing
            mask folder or lighting source; InputError from the library for anything else it refuses.
    """
    from .pipeline import SamplingSettings, VideoJob
    from .sampling import DEFAULT_IIE_FACTORS, ContextWindows

    if options["overlap"] >= options["window"]:
        raise OptionError(
            "overlap",
            f"must be less than the window length ({options['window']}), got {options['overlap']}.",
        )
    job = VideoJob(
        input=Path(options["input"]),
        mask=mask_folder(options),
        lighting=lighting_from(options),
        output=Path(options["output"]),
        contact_sheet=None if options.get("contact_sheet") is None else Path(options["contact_sheet"]),
        latent=None if options.get("latent") is None else Path(options["latent"]),
        max_frames=options["frames"],
        size_policy=options["size_policy"],
        width=options["width"],
        height=options["height"],
        sheet_frames=options["sheet_frames"],
    )
    iie = options["iie"]
    settings = SamplingSettings(
        prompt=options["prompt"],
        scheduler=options["scheduler"],
        steps=options["steps"],
        text_scale=options["text_scale"],
        image_scale=options["image_scale"],
        seed=options["seed"],
        iie_factors=(1.0,) if iie is None else tuple(iie) or DEFAULT_IIE_FACTORS,
        window=ContextWindows(options["window"], options["overlap"], options["closed_loop"], options["fusion"]),
    )
    return job, settings


def model_options(options: Mapping[str, Any]) -> ModelOptions:
    """The model files that parsed model options (:func:`add_model_options`) name."""
    from .model_files import ModelOptions

    return ModelOptions(
        models=options["models"],
        sd=options["sd"],
        iclight=options["iclight"],
        motion=options["motion"],
        merged=options["merged"],
        motion_variant=options["motion_variant"],
        download=not options["no_download"],
    )
