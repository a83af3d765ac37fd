"""The ``relightvid`` command: ``relight``, ``batch``, ``demo``, ``metrics`` and ``convert``.

Parsing and printing only; every action is one library call. A failure the user can fix (a missing file,
an unreadable video, masks that do not match, missing weights) prints one ``relightvid: error: …`` message
on stderr and exits with status 2, as argparse does for bad arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .cli_batch import add_batch_command
from .errors import RelightVidError
from .values import counted

# The library (torch, diffusers, OpenCV …) is imported by the sub-command that runs, and a sub-command's
# options only when it is named: `relightvid --help` then answers at once instead of after seconds of imports.
if TYPE_CHECKING:
    import torch
    from tqdm import tqdm

    from .model_files import ModelOptions
    from .pipeline import Components, JobPlan
    from .sampling import StepInfo

PROG = "relightvid"
EXIT_USER_ERROR = 2  # argparse's status for bad arguments; used for every input the user can fix
EXIT_INTERRUPTED = 130
# The demo's tiny networks run thousands of very small ops, which more threads barely speed up; on cores shared
# with other work, OpenMP's spinning barriers made 2 threads about 5x slower than 1 (bench: 76 s against 14 s).
DEMO_THREADS = 1
UNTRAINED_NOTE = (
    "The networks are tiny and untrained (seeded random weights), so the relit video is noise-like: "
    "the demo shows that every stage runs end to end, not what RelightVid looks like."
)

# Libraries that log warnings or draw bars of their own while models load; quiet unless --verbose.
LIBRARY_LOGGERS = ("diffusers", "transformers", "huggingface_hub", "httpx", "urllib3")


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (``prog: error: ...``), as the command's own errors are."""

    def error(self, message: str):
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_relight(commands: argparse._SubParsersAction, with_options: bool = True) -> None:
    parser = commands.add_parser(
        "relight",
        help="relight a video (the official inference.py flags work as there)",
        description="Relight a foreground video with a background video, a light preset or an HDR map.",
    )
    if not with_options:
        return
    from .options import add_device_options, add_job_options, add_model_options

    add_job_options(parser)
    add_model_options(parser)
    add_device_options(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
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
    from .options import whole
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
        type=whole(0, DEMO_SEED_MAX),
        default=DEMO_SEED,
        help="seed of the networks and the noise (default %(default)s)",
    )
    add("--steps", type=whole(1, MAX_STEPS), default=DEMO_STEPS, help="DDPM steps (default %(default)s)")
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
    from .options import fit_choices

    add = parser.add_argument
    add("video", type=Path, help="the video to measure")
    add("--reference", type=Path, help="reference video of the same frames and size (for PSNR, SSIM)")
    add("--flow-from", type=Path, metavar="VIDEO", help="take the warp error's flow from this video (e.g. the input)")
    add(
        "--flow-fit",
        choices=fit_choices(),
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
    from .options import add_model_options

    add_model_options(parser)
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


COMMANDS = {
    "relight": _add_relight,
    "batch": add_batch_command,
    "demo": _add_demo,
    "metrics": _add_metrics,
    "convert": _add_convert,
}


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


class _Progress:
    """The progress of one clip, one tqdm bar at a time: the VAE encoding (frames), sampling, the VAE decoding.

    Sampling counts U-Net evaluations once :meth:`watch` hooks the network (every window and guidance branch,
    so a long clip moves within a step; the step shows as a postfix) and :meth:`plan` gave the total; else
    it counts ``steps``. A bar closes before the next opens, so bars never stack, and none is drawn when the
    output is not a terminal (a log file gets no carriage returns or cursor movements).
    """

    def __init__(self, enabled: bool, steps: int | None = None):
        self.enabled = enabled
        self.steps = steps
        self.evaluations: int | None = None
        self.totals: dict[str, int] = {}
        self.stage: str | None = None
        self.bar: tqdm | None = None

    def plan(self, plan: JobPlan) -> None:
        print(plan)
        self.evaluations = plan.unet_evaluations
        self.totals = {"VAE encode": plan.encoded_frames, "VAE decode": plan.frames}

    def _at(self, stage: str) -> tqdm:
        """The bar of ``stage``, closing the previous stage's bar first."""
        from tqdm import tqdm

        if self.stage != stage:
            self.close()
            if stage == "sampling":
                total, unit = (self.evaluations, "U-Net eval") if self.evaluations else (self.steps, "step")
            else:
                total, unit = self.totals.get(stage), "frame"
            # disable=None: tqdm draws only on a terminal.
            self.bar = tqdm(total=total, desc=stage, unit=unit, disable=None if self.enabled else True)
            self.stage = stage
        return self.bar

    def vae(self, stage: str, frames: int) -> None:
        """``frames`` more frames went through the VAE's ``stage`` ("encode" or "decode")."""
        self._at(f"VAE {stage}").update(frames)

    def watch(self, unet: torch.nn.Module) -> None:
        """Count every U-Net call's batch items (a forward pre-hook; the network is unchanged)."""

        def count(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
            self._at("sampling").update(args[0].shape[0])

        unet.register_forward_pre_hook(count, with_kwargs=True)

    def __call__(self, info: StepInfo) -> None:
        bar = self._at("sampling")
        if self.evaluations:
            bar.set_postfix_str(f"step {info.index + 1}/{info.total}")
        else:
            bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.bar, self.stage = None, None


def _components_loader(
    models: ModelOptions, device: torch.device, dtype: torch.dtype, progress: _Progress
) -> Callable[[], Components]:
    from .model_files import describe, load_components

    def load() -> Components:
        files = models.locate()
        print(f"loading models ({_dtype_name(dtype)} on {device}):")
        for line in describe(files):
            print(f"  {line}")
        components = load_components(files, dtype=dtype, device=device, motion_variant=models.motion_variant)
        progress.watch(components.unet)
        return components

    return load


def _run_relight(args: argparse.Namespace) -> None:
    from .model_files import pick_device, pick_dtype
    from .options import job_from_options, model_options
    from .pipeline import run_video_job

    # The device is checked first: a machine without it fails at once, not after reading the clip.
    device = pick_device(args.device)
    dtype = pick_dtype(args.dtype, device)
    job, settings = job_from_options(vars(args))
    progress = _Progress(not args.no_progress)
    try:
        loader = _components_loader(model_options(vars(args)), device, dtype, progress)
        result = run_video_job(job, settings, loader, progress, announce=progress.plan, vae_progress=progress.vae)
    finally:
        progress.close()
    print(
        f"wrote {result.output} ({counted(result.frames, 'frame')}, {result.width}x{result.height}, "
        f"{result.fps:g} fps, seed {result.seed})"
    )
    if result.contact_sheet is not None:
        print(f"wrote {result.contact_sheet} (contact sheet: input | background | output)")
    if result.latent is not None:
        print(f"wrote {result.latent} (latents for ComfyUI's Load Latent)")


def _run_demo(args: argparse.Namespace) -> None:
    import torch

    from .demo import run_demo

    start = time.perf_counter()
    progress = _Progress(not args.no_progress, steps=args.steps)
    threads = torch.get_num_threads()
    torch.set_num_threads(DEMO_THREADS)
    try:
        result = run_demo(args.output, seed=args.seed, steps=args.steps, callback=progress)
    finally:
        torch.set_num_threads(threads)
        progress.close()
    job = result.job
    print(f"RelightVid demo finished in {time.perf_counter() - start:.1f} s; files in {result.folder}:")
    print(f"  input clip     {result.input}")
    print(f"  masks          {result.mask}/")
    print(f"  background     {result.background}")
    print(f"  relit video    {job.output} ({counted(job.frames, 'frame')}, {job.width}x{job.height}, {job.fps:g} fps)")
    print(f"  contact sheet  {job.contact_sheet} (rows: input | background | output)")
    print(UNTRAINED_NOTE)


def _run_metrics(args: argparse.Namespace) -> None:
    from .contact_sheet import IMAGE_SUFFIXES, write_image
    from .metrics import measure_files
    from .metrics_plot import plot_frame_metrics
    from .outputs import check_destination

    if args.plot is not None:  # refused before the measuring, which takes a while on a long clip
        check_destination(args.plot, "--plot image", IMAGE_SUFFIXES)
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
            "--size-policy cover --width 64 --height 64 --steps 4"
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
    """Run the command line; returns the exit status (0; 1 when a batch job failed; 2 for a user error;
    130 when interrupted)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(with_options=_named_command(argv)).parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    _quiet_libraries(args.verbose, bars=not getattr(args, "no_progress", False))
    with _terminate_as_interrupt():
        try:
            status = args.run(args)
        except RelightVidError as error:
            print(f"{PROG}: error: {error}", file=sys.stderr)
            return EXIT_USER_ERROR
        except KeyboardInterrupt:
            print(f"{PROG}: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
    return status or 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a scheduler's or ``kill``'s stop) ends the command as Ctrl+C does: cleanly, partial files removed."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
