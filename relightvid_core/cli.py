"""The ``relightvid`` command: ``relight``, ``demo``, ``metrics`` and ``convert``.

Parsing and printing only; every action is one library call. A failure the user can fix (a missing file,
an unreadable video, masks that do not match, missing weights) prints one ``relightvid: error: …`` message
on stderr and exits with status 2, as argparse does for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InputError, RelightVidError
from .values import SEED_MAX, Range, check_number, check_seed, check_whole

# The library (torch, diffusers, OpenCV …) is imported by the sub-command that runs, and a sub-command's
# options only when it is named: `relightvid --help` then answers at once instead of after seconds of imports.
if TYPE_CHECKING:
    import torch
    from tqdm import tqdm

    from .pipeline import Components, JobPlan, LightingSource
    from .sampling import StepInfo

PROG = "relightvid"
EXIT_USER_ERROR = 2  # argparse's status for bad arguments; used for every input the user can fix
EXIT_INTERRUPTED = 130
# The official inference.py defaults (UPSTREAM.md §c).
OFFICIAL_INPUT = "./assets/input/woman.mp4"
OFFICIAL_MASK = "./assets/mask/woman"
OFFICIAL_BG = "./assets/video_bg/universe1.mp4"
OFFICIAL_OUTPUT = "output/woman_universe1.mp4"
# The demo's tiny networks run thousands of very small ops, which more threads barely speed up; on cores shared
# with other work, OpenMP's spinning barriers made 2 threads about 5x slower than 1 (bench: 76 s against 14 s).
DEMO_THREADS = 1
UNTRAINED_NOTE = (
    "The networks are tiny and untrained (seeded random weights), so the relit video is noise-like: "
    "the demo shows that every stage runs end to end, not what RelightVid looks like."
)


MAX_SIZE = 8192  # pixels per side; far beyond what the networks were trained on
# Libraries that log warnings or draw bars of their own while models load; quiet unless --verbose.
LIBRARY_LOGGERS = ("diffusers", "transformers", "huggingface_hub", "httpx", "urllib3")


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (``prog: error: ...``), as the command's own errors are."""

    def error(self, message: str):
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


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


def _whole(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number in low..high (argparse names the option in its message)."""

    def parse(text: str) -> int:
        value = _parsed(text, int)
        _checked(lambda: check_whole("the value", value, low, high))
        return value

    return parse


def _number(allowed: Range | None = None) -> Callable[[str], float]:
    """An argparse type: a finite number inside ``allowed``."""

    def parse(text: str) -> float:
        value = _parsed(text, float)
        _checked(lambda: check_number("the value", value, allowed))
        return value

    return parse


def _seed(text: str) -> int:
    value = _parsed(text, int)
    _checked(lambda: check_seed("the value", value))
    return value


def _direction(text: str) -> str | float:
    """A light preset name, or a finite angle in degrees."""
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


def _fit_choices() -> list[str]:
    """The size policies that fit a clip to a given size (backgrounds, flow clips)."""
    from .conditioning import SizePolicy

    return [p.value for p in SizePolicy if p is not SizePolicy.MULTIPLE_OF_64]


def _add_model_options(parser: argparse.ArgumentParser) -> None:
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


def _add_relight(commands: argparse._SubParsersAction, with_options: bool = True) -> None:
    parser = commands.add_parser(
        "relight",
        help="relight a video (the official inference.py flags work as there)",
        description="Relight a foreground video with a background video, a light preset or an HDR map.",
    )
    if not with_options:
        return
    from .conditioning import PRESET_NAMES, LengthPolicy, SizePolicy
    from .conditioning.hdr import ANGLE_RANGE, EXPOSURE_RANGE
    from .conditioning.presets import MAX_INTENSITY
    from .contact_sheet import DEFAULT_SHEET_FRAMES, MAX_SHEET_FRAMES
    from .model_files import DTYPES
    from .pipeline import DEFAULT_PROMPT, IIE_FACTOR_RANGE, MAX_FRAMES, MAX_STEPS
    from .sampling import DEFAULT_IIE_FACTORS, FUSIONS, MAX_WINDOW_FRAMES, SCHEDULER_NAMES
    from .sampling.checks import GUIDANCE_RANGE
    from .video_io import VIDEO_FORMATS

    official = parser.add_argument_group("official inference.py flags")
    add = official.add_argument
    add("--input", type=Path, default=Path(OFFICIAL_INPUT), help="foreground video (default %(default)s)")
    add(
        "--mask",
        type=Path,
        help=f"mask folder, 0000.png … (required; {OFFICIAL_MASK} only with the default --input)",
    )
    add("--prompt", default=DEFAULT_PROMPT, help="text prompt (default %(default)r)")
    add(
        "--output_path",
        type=Path,
        default=Path(OFFICIAL_OUTPUT),
        help=f"output video, {'/'.join(VIDEO_FORMATS)}; missing folders are created (default %(default)s)",
    )
    lighting = official.add_mutually_exclusive_group()
    lighting.add_argument(
        "--bg_cond", type=Path, default=Path(OFFICIAL_BG), help="background video or image (default %(default)s)"
    )
    lighting.add_argument(
        "--light",
        type=_direction,
        metavar="PRESET",
        help=f"light preset instead: {', '.join(PRESET_NAMES)}, or an angle",
    )
    lighting.add_argument("--hdr", type=Path, metavar="MAP", help="equirectangular .hdr/.exr environment map instead")

    _add_model_options(parser)

    add = parser.add_argument_group("size and length").add_argument
    add(
        "--size-policy",
        choices=[p.value for p in SizePolicy],
        default=SizePolicy.CENTER_CROP.value,
        help="default %(default)s (official)",
    )
    size = _whole(8, MAX_SIZE)
    add("--width", type=size, help="output width, a multiple of 8 (default 512)")
    add("--height", type=size, help="output height, a multiple of 8 (default 512)")
    add("--frames", type=_whole(1, MAX_FRAMES), metavar="N", help="use at most the first N frames (default all)")
    add(
        "--window",
        type=_whole(1, MAX_WINDOW_FRAMES),
        default=16,
        metavar="N",
        help="context window length in frames (default %(default)s)",
    )
    add(
        "--overlap",
        type=_whole(0, MAX_WINDOW_FRAMES - 1),
        default=4,
        metavar="N",
        help="frames shared by neighbouring windows (default %(default)s)",
    )
    add(
        "--fusion",
        choices=list(FUSIONS),
        default="pyramid",
        help="blending of overlapping windows (default %(default)s)",
    )
    add("--closed-loop", action="store_true", help="wrap the windows around, for looping clips")

    add = parser.add_argument_group("background fitting (--bg_cond)").add_argument
    add(
        "--bg-length",
        choices=[p.value for p in LengthPolicy],
        default=LengthPolicy.LOOP.value,
        help="default %(default)s",
    )
    add("--bg-fit", choices=_fit_choices(), default=SizePolicy.COVER.value, help="default %(default)s")
    add("--bg-flip", action="store_true", help="mirror the background left-right")

    add = parser.add_argument_group("light preset (--light)").add_argument
    add(
        "--light-color",
        type=_number(Range(0.0, 1.0)),
        nargs=3,
        default=(1.0, 1.0, 1.0),
        metavar=("R", "G", "B"),
        help="0..1 each (default white)",
    )
    add(
        "--light-intensity",
        type=_number(Range(0.0, MAX_INTENSITY)),
        default=1.0,
        help="brightness multiplier (default %(default)s)",
    )
    add(
        "--light-softness",
        type=_number(Range(0.0, 1.0, open_low=True)),
        default=1.0,
        help="gradient length in (0, 1] (default %(default)s)",
    )
    add("--light-end", type=_direction, metavar="PRESET", help="sweep the light to this direction over the clip")

    add = parser.add_argument_group("environment map (--hdr)").add_argument
    angle = _number(ANGLE_RANGE)
    add("--hdr-yaw", type=angle, default=0.0, help="degrees in -360..360, positive turns right (default %(default)s)")
    add(
        "--hdr-pitch",
        type=_number(Range(-90.0, 90.0)),
        default=0.0,
        help="degrees in -90..90, positive looks up (default %(default)s)",
    )
    add(
        "--hdr-fov",
        type=_number(Range(0.0, 180.0, open_low=True, open_high=True)),
        default=60.0,
        help="horizontal field of view in degrees, in (0, 180) (default %(default)s)",
    )
    add("--hdr-yaw-speed", type=angle, default=0.0, help="degrees of yaw added per frame (default %(default)s)")
    add("--hdr-exposure", type=_number(EXPOSURE_RANGE), default=0.0, help="in stops (default %(default)s)")

    add = parser.add_argument_group("sampling").add_argument
    add("--scheduler", choices=SCHEDULER_NAMES, default="ddpm", help="default %(default)s (official)")
    add("--steps", type=_whole(1, MAX_STEPS), default=20, help="denoising steps (default %(default)s)")
    scale = _number(GUIDANCE_RANGE)
    add("--text-scale", type=scale, default=7.5, help="text guidance, 0..100 (default %(default)s)")
    add("--image-scale", type=scale, default=1.2, help="image guidance, 0..100 (default %(default)s)")
    add("--seed", type=_seed, help=f"seed of the noise, 0..{SEED_MAX} (default: a fresh one, printed)")
    factors = " ".join(f"{k:g}" for k in DEFAULT_IIE_FACTORS)
    add(
        "--iie",
        type=_number(IIE_FACTOR_RANGE),
        nargs="*",
        metavar="K",
        help=f"IIE over these fg brightness factors; alone: {factors} (default off)",
    )
    add("--dtype", choices=("auto", *DTYPES), default="auto", help="auto: fp16 on GPUs, fp32 on the CPU")
    add("--device", default="auto", help="auto (CUDA, MPS, else CPU), cpu, cuda, cuda:1, mps ...")

    add = parser.add_argument_group("output").add_argument
    add("--contact-sheet", type=Path, metavar="PNG", help="also write rows input | background | output")
    add(
        "--sheet-frames",
        type=_whole(1, MAX_SHEET_FRAMES),
        default=DEFAULT_SHEET_FRAMES,
        metavar="N",
        help="frames per row (default %(default)s)",
    )
    add("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(run=_run_relight)


def _add_demo(commands: argparse._SubParsersAction, with_options: bool = True) -> None:
    parser = commands.add_parser(
        "demo",
        help="the whole pipeline on tiny untrained networks and a procedural clip (no downloads)",
        description="Make a procedural clip, mask and background, relight them with tiny seeded random networks "
        "(IIE, two context windows) and write an mp4 and a contact sheet. " + UNTRAINED_NOTE,
    )
    if not with_options:
        return
    from .demo import DEMO_FOLDER, DEMO_SEED, DEMO_SEED_MAX, DEMO_STEPS
    from .pipeline import MAX_STEPS

    add = parser.add_argument
    add(
        "--output",
        type=Path,
        default=Path(DEMO_FOLDER),
        metavar="DIR",
        help="folder, created if needed; the demo's files in it are replaced (default ./%(default)s)",
    )
    add(
        "--seed",
        type=_whole(0, DEMO_SEED_MAX),
        default=DEMO_SEED,
        help="seed of the networks and the noise (default %(default)s)",
    )
    add("--steps", type=_whole(1, MAX_STEPS), default=DEMO_STEPS, help="DDPM steps (default %(default)s)")
    add("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(run=_run_demo)


def _add_metrics(commands: argparse._SubParsersAction, with_options: bool = True) -> None:
    parser = commands.add_parser(
        "metrics",
        help="PSNR/SSIM against a reference, warp error and flicker index",
        description="Measure a video: PSNR and SSIM against --reference, warp error (Farnebäck flow, frame t+1 "
        "warped back to t, mean absolute error over non-occluded pixels) and flicker index (mean absolute "
        "change of per-frame mean luma). Values in 0..1 units except PSNR (dB).",
    )
    if not with_options:
        return
    add = parser.add_argument
    add("video", type=Path, help="the video to measure")
    add("--reference", type=Path, help="reference video of the same frames and size (for PSNR, SSIM)")
    add("--flow-from", type=Path, metavar="VIDEO", help="take the warp error's flow from this video (e.g. the input)")
    add(
        "--flow-fit",
        choices=_fit_choices(),
        default="cover",
        help="how the --flow-from clip is brought to the video's size: the --size-policy of the run that "
        "made the video (default %(default)s)",
    )
    add("--json", action="store_true", help="print one JSON object instead of a table")
    add("--plot", type=Path, metavar="PNG", help="also draw the values per frame into this image")
    parser.set_defaults(run=_run_metrics)


def _add_convert(commands: argparse._SubParsersAction, with_options: bool = True) -> None:
    parser = commands.add_parser(
        "convert",
        help="merge the three official files into one safetensors U-Net",
        description="Merge SD1.5 U-Net + IC-Light fbc offsets + RelightVid temporal modules into one file "
        "that `relight --merged` (or a models folder) loads directly.",
    )
    if not with_options:
        return
    from .model_files import DTYPES, MERGED_NAME

    _add_model_options(parser)
    add = parser.add_argument
    add("--output", type=Path, metavar="FILE", help=f"the merged file (default <models>/{MERGED_NAME})")
    add("--dtype", choices=tuple(DTYPES), default="fp16", help="stored precision (default %(default)s)")
    add(
        "--tiny-demo",
        type=Path,
        metavar="DIR",
        help="write tiny synthetic official-format files into DIR and convert those",
    )
    parser.set_defaults(run=_run_convert)


COMMANDS = {"relight": _add_relight, "demo": _add_demo, "metrics": _add_metrics, "convert": _add_convert}


def build_parser(with_options: Collection[str] = tuple(COMMANDS)) -> argparse.ArgumentParser:
    """The command line; only the sub-commands in ``with_options`` get their options (each imports its part
    of the library to list choices and defaults); the others are named, for the top-level help."""
    parser = _Parser(prog=PROG, description="RelightVid: temporally consistent video relighting.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the library does")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, add_command in COMMANDS.items():
        add_command(commands, with_options=name in with_options)
    return parser


def _named_command(argv: Sequence[str]) -> list[str]:
    """The sub-command in ``argv``: its first word that is not an option (the top level takes no values)."""
    return [word for word in argv if not word.startswith("-")][:1]


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


class _StepBar:
    """A tqdm bar over sampling steps, opened at the first step (after model loading).

    With :meth:`watch`, the bar counts U-Net evaluations instead (every window and guidance branch, so a long
    clip moves within a step) and shows the step as a postfix; :meth:`plan` gives it its total. :meth:`vae`
    drives one bar each for the frames the VAE encodes before sampling and decodes after it.
    """

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bar: tqdm | None = None
        self.evaluations: int | None = None
        self.vae_totals: dict[str, int] = {}
        self.vae_bars: dict[str, tqdm] = {}

    def plan(self, plan: JobPlan) -> None:
        print(plan)
        self.evaluations = plan.unet_evaluations
        self.vae_totals = {"encode": plan.encoded_frames, "decode": plan.frames}

    def vae(self, stage: str, frames: int) -> None:
        """``frames`` more frames went through the VAE's ``stage`` ("encode" or "decode")."""
        from tqdm import tqdm

        if stage not in self.vae_bars:
            total = self.vae_totals.get(stage)
            self.vae_bars[stage] = tqdm(total=total, desc=f"VAE {stage}", unit="frame", disable=not self.enabled)
        bar = self.vae_bars[stage]
        bar.update(frames)
        if bar.total is not None and bar.n >= bar.total:
            bar.close()

    def watch(self, unet: torch.nn.Module) -> None:
        """Count every U-Net call's batch items (a forward pre-hook; the network is unchanged)."""
        def count(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
            self._open().update(args[0].shape[0])

        unet.register_forward_pre_hook(count, with_kwargs=True)

    def _open(self) -> tqdm:
        from tqdm import tqdm

        if self.bar is None:
            total, unit = (self.evaluations, "U-Net eval") if self.evaluations else (None, "step")
            self.bar = tqdm(total=total, desc="sampling", unit=unit, disable=not self.enabled)
        return self.bar

    def __call__(self, info: StepInfo) -> None:
        if self.evaluations:
            self._open().set_postfix_str(f"step {info.index + 1}/{info.total}")
        else:
            self._open().update(1)

    def close(self) -> None:
        for bar in (self.bar, *self.vae_bars.values()):
            if bar is not None:
                bar.close()


def _lighting(args: argparse.Namespace) -> LightingSource:
    from .pipeline import BackgroundFile, EnvironmentMap, LightPreset

    if args.light is not None:
        return LightPreset(
            args.light, tuple(args.light_color), args.light_intensity, args.light_softness, args.light_end
        )
    if args.hdr is not None:
        return EnvironmentMap(
            args.hdr, args.hdr_yaw, args.hdr_pitch, args.hdr_fov, args.hdr_yaw_speed, args.hdr_exposure
        )
    return BackgroundFile(args.bg_cond, args.bg_length, args.bg_fit, args.bg_flip)


def _components_loader(
    args: argparse.Namespace, device: torch.device, dtype: torch.dtype, bar: _StepBar
) -> Callable[[], Components]:
    from .model_files import describe, load_components, locate_model_files

    def load() -> Components:
        files = locate_model_files(
            args.models,
            sd=args.sd,
            iclight=args.iclight,
            motion=args.motion,
            merged=args.merged,
            download=not args.no_download,
        )
        print(f"loading models ({_dtype_name(dtype)} on {device}):")
        for line in describe(files):
            print(f"  {line}")
        components = load_components(files, dtype=dtype, device=device, motion_variant=args.motion_variant)
        bar.watch(components.unet)
        return components

    return load


def _mask_folder(args: argparse.Namespace) -> Path:
    """The mask folder: given, or the official one only for the official clip (never another clip's)."""
    if args.mask is not None:
        return args.mask
    if args.input == Path(OFFICIAL_INPUT):
        return Path(OFFICIAL_MASK)
    raise InputError(
        f"--mask is required with --input {args.input}: give the folder of its masks (0000.png, ...); "
        f"the default {OFFICIAL_MASK} belongs to the official {OFFICIAL_INPUT}."
    )


def _run_relight(args: argparse.Namespace) -> None:
    from .model_files import pick_device, pick_dtype
    from .pipeline import SamplingSettings, VideoJob, run_video_job
    from .sampling import DEFAULT_IIE_FACTORS, ContextWindows

    # The device is checked first: a machine without it fails at once, not after reading the clip.
    device = pick_device(args.device)
    dtype = pick_dtype(args.dtype, device)
    job = VideoJob(
        input=args.input,
        mask=_mask_folder(args),
        lighting=_lighting(args),
        output=args.output_path,
        contact_sheet=args.contact_sheet,
        max_frames=args.frames,
        size_policy=args.size_policy,
        width=args.width,
        height=args.height,
        sheet_frames=args.sheet_frames,
    )
    iie = (1.0,) if args.iie is None else tuple(args.iie) or DEFAULT_IIE_FACTORS
    settings = SamplingSettings(
        prompt=args.prompt,
        scheduler=args.scheduler,
        steps=args.steps,
        text_scale=args.text_scale,
        image_scale=args.image_scale,
        seed=args.seed,
        iie_factors=iie,
        window=ContextWindows(args.window, args.overlap, args.closed_loop, args.fusion),
    )
    bar = _StepBar(not args.no_progress)
    try:
        loader = _components_loader(args, device, dtype, bar)
        result = run_video_job(job, settings, loader, bar, announce=bar.plan, vae_progress=bar.vae)
    finally:
        bar.close()
    print(
        f"wrote {result.output} ({result.frames} frames, {result.width}x{result.height}, {result.fps:g} fps, "
        f"seed {result.seed})"
    )
    if result.contact_sheet is not None:
        print(f"wrote {result.contact_sheet} (contact sheet: input | background | output)")


def _run_demo(args: argparse.Namespace) -> None:
    import torch

    from .demo import run_demo

    start = time.perf_counter()
    bar = _StepBar(not args.no_progress)
    threads = torch.get_num_threads()
    torch.set_num_threads(DEMO_THREADS)
    try:
        result = run_demo(args.output, seed=args.seed, steps=args.steps, callback=bar)
    finally:
        torch.set_num_threads(threads)
        bar.close()
    job = result.job
    print(f"RelightVid demo finished in {time.perf_counter() - start:.1f} s; files in {result.folder}:")
    print(f"  input clip     {result.input}")
    print(f"  masks          {result.mask}/")
    print(f"  background     {result.background}")
    print(f"  relit video    {job.output} ({job.frames} frames, {job.width}x{job.height}, {job.fps:g} fps)")
    print(f"  contact sheet  {job.contact_sheet} (rows: input | background | output)")
    print(UNTRAINED_NOTE)


def _run_metrics(args: argparse.Namespace) -> None:
    from .contact_sheet import write_image
    from .metrics import measure_files
    from .metrics_plot import plot_frame_metrics

    metrics = measure_files(args.video, args.reference, args.flow_from, args.flow_fit)
    if args.plot is not None:
        write_image(args.plot, plot_frame_metrics(metrics.series))
    if args.json:
        print(json.dumps({"video": str(args.video), **metrics.as_dict()}))
        return
    print(f"{args.video}")
    for name, value in metrics.table_rows():
        print(f"  {name:<14}{value:>12}")
    if args.plot is not None:
        print(f"wrote {args.plot} (per-frame plot)")


def _run_convert(args: argparse.Namespace) -> None:
    from .demo import write_tiny_models
    from .model_files import DEFAULT_MODELS_DIR, DTYPES, MERGED_NAME, convert_to_merged, describe, locate_model_files
    from .models import TINY

    dtype = DTYPES[args.dtype]
    if args.tiny_demo is not None:
        files = write_tiny_models(args.tiny_demo)
        print(f"wrote tiny official-format files (seeded random weights, TINY config) into {args.tiny_demo}:")
        for line in describe(files):
            print(f"  {line}")
        report = convert_to_merged(files, args.output or args.tiny_demo / MERGED_NAME, dtype=dtype, config=TINY)
    else:
        models = args.models or DEFAULT_MODELS_DIR
        files = locate_model_files(
            models,
            sd=args.sd,
            iclight=args.iclight,
            motion=args.motion,
            merged=args.merged,
            download=not args.no_download,
            use_merged=False,
        )
        report = convert_to_merged(files, args.output or models / MERGED_NAME, dtype=dtype)
    size_mb = report.bytes / 2**20
    print(f"wrote {report.output} ({report.tensors} tensors, {size_mb:.1f} MiB, {_dtype_name(report.dtype)})")
    if args.tiny_demo is not None:
        print(
            f"try it: {PROG} relight --models {args.tiny_demo} --input CLIP.mp4 --mask MASKS/ --bg_cond BG.mp4 "
            "--width 64 --height 64 --steps 4"
        )


def _quiet_libraries(verbose: bool, bars: bool) -> None:
    """Only this command speaks: the libraries' own warnings show with --verbose, their bars without
    --no-progress (this process is the command's own, so setting their global switches is ours to do)."""
    import diffusers
    import huggingface_hub
    import transformers

    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.ERROR)
    if bars:
        huggingface_hub.utils.enable_progress_bars()
    else:
        huggingface_hub.utils.disable_progress_bars()
        transformers.utils.logging.disable_progress_bar()
        diffusers.utils.logging.disable_progress_bar()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0, 2 for a user error, 130 when interrupted)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(with_options=_named_command(argv)).parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    _quiet_libraries(args.verbose, bars=not getattr(args, "no_progress", False))
    try:
        args.run(args)
    except RelightVidError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0
