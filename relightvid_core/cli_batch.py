"""``relightvid batch``: relight every clip a manifest lists, in this process or on a Ray cluster.

Parsing and printing only: the rows are checked by :mod:`relightvid_core.batch.plan` and run by
:mod:`relightvid_core.batch.run`. What is printed: each refused row and each failed job, one line each; one
progress bar over the jobs (done, failed, running, time left) when the output is a terminal, else a line per
finished job; one summary line. Ray's own logs go to ``<out>/logs/ray-driver.log`` unless ``-v``.
Exit status: 0 when every job ended ``ok``, 1 when one failed, 2 for a problem with the command itself,
130 when interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .errors import InputError
from .values import counted

if TYPE_CHECKING:
    from tqdm import tqdm

    from .batch.run import BatchRun
    from .sampling import StepInfo

EXIT_SOME_FAILED = 1
RAY_DRIVER_LOG = "ray-driver.log"
# Options of a Ray run only; given without --ray they would silently do nothing, so they are refused.
RAY_ONLY = ("workers", "gpus_per_worker", "cpus_per_worker")
MAX_RESOURCE = 1024.0


def _workers(text: str) -> tuple[int, int]:
    """An argparse type: ``N`` workers, or ``MIN-MAX`` for a pool that grows and shrinks between the two."""
    least, _, most = text.partition("-")
    try:
        low, high = int(least), int(most or least)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of workers N or a range MIN-MAX, got {text!r}") from None
    if not 1 <= low <= high:
        raise argparse.ArgumentTypeError(f"expected 1 <= MIN <= MAX, got {text!r}")
    return (1, high) if not most else (low, high)


def add_batch_command(commands: argparse._SubParsersAction, with_options: bool = True) -> None:
    parser = commands.add_parser(
        "batch",
        help="relight every clip a manifest lists, here or on a Ray cluster (resumable)",
        description="Relight every job of a manifest (.jsonl or .csv, one job per row; columns are relight's "
        "options with _ for -, plus output relative to --out). Options given here are every row's defaults; "
        "a row's own value wins. Models load once per worker. Results go to OUT/results.jsonl as each job "
        "finishes, each job's log to OUT/logs/; running the same command again skips the jobs already done.",
    )
    if not with_options:
        return
    from .options import add_device_options, add_job_options, add_model_options, number, whole
    from .values import Range

    add = parser.add_argument
    add("manifest", type=Path, help="the jobs: a .jsonl (one JSON object per line) or .csv (a header row) file")
    add("--out", type=Path, required=True, metavar="DIR", help="output folder (created if needed)")
    batch = parser.add_argument_group("batch")
    add = batch.add_argument
    add("--check", action="store_true", help="only check every row (files, values); run nothing, write nothing")
    add("--force", action="store_true", help="run every job again, even those already done")
    add(
        "--ray",
        metavar="ADDRESS",
        help="run on a Ray cluster: auto (the cluster this machine belongs to), local (start one here) or "
        'host:port; needs pip install "relightvid[ray]" (default: in this process)',
    )
    add(
        "--workers",
        type=_workers,
        metavar="N|MIN-MAX",
        help="with --ray: N workers, or a pool between MIN and MAX (default: as many as the cluster holds)",
    )
    add(
        "--gpus-per-worker",
        type=number(Range(0.0, MAX_RESOURCE)),
        metavar="G",
        help="with --ray: GPUs per worker, fractions share a card (default 1 on a cluster with GPUs, else 0)",
    )
    add(
        "--cpus-per-worker",
        type=number(Range(0.0, MAX_RESOURCE, open_low=True)),
        metavar="C",
        help="with --ray: CPUs per worker (default 1 beside a GPU; on CPU-only clusters, a whole node)",
    )
    add(
        "--retries",
        type=whole(0, 100),
        default=3,
        metavar="N",
        help="with --ray: run a job again this often when its worker is lost (default %(default)s)",
    )
    add("--no-progress", action="store_true", help="no progress bar: one line per finished job")
    add_job_options(parser, files=False, official_defaults=False)
    add_model_options(parser)
    add_device_options(parser)
    parser.set_defaults(run=run_batch_command)


def _check_command(args: argparse.Namespace) -> None:
    """Refuse options that cannot work together, before anything is read."""
    if args.ray is None:
        for name in RAY_ONLY:
            if getattr(args, name) is not None:
                raise InputError(
                    f"--{name.replace('_', '-')} is for runs on a Ray cluster; add --ray ADDRESS or leave it out."
                )
    elif args.device != "auto":
        raise InputError(
            "--device is chosen per worker on a Ray cluster (a GPU each by --gpus-per-worker, else the CPU); "
            "leave it out with --ray."
        )


def run_batch_command(args: argparse.Namespace) -> int:
    from .batch.manifest import read_manifest
    from .batch.plan import Planner, job_columns
    from .batch.run import BatchRun
    from .batch.worker import RunnerConfig
    from .model_files import pick_device
    from .optional import require
    from .options import OUTPUT_PATHS, model_options
    from .outputs import check_folder_writable

    _check_command(args)
    if args.ray is not None:
        require("ray.data", "running a batch on a Ray cluster (--ray)")
    else:
        pick_device(args.device)  # a device this machine lacks fails now, not at the first job
    out = args.out.expanduser().absolute()
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {args.out} is a file; give a folder (it is created if needed).")
    check_folder_writable(out, "output folder (--out)")
    columns = job_columns()
    rows = read_manifest(args.manifest, columns)
    per_row_only = {"input", "mask", *OUTPUT_PATHS}
    defaults = {name: value for name, value in vars(args).items() if name in columns and name not in per_row_only}
    models = model_options(vars(args)).absolute()
    context = {"models": {name: str(value) for name, value in vars(models).items()}, "dtype": args.dtype}
    plan = Planner(defaults, args.manifest.expanduser().absolute().parent, out, context).plan(rows)
    for refusal in plan.refused:
        print(f"{refusal}", file=sys.stderr)
    if args.check:
        print(
            f"checked {counted(len(rows), 'row')} of {args.manifest}: {len(plan.jobs)} ready, "
            f"{len(plan.refused)} refused; nothing was run"
        )
        return EXIT_SOME_FAILED if plan.refused else 0
    run = BatchRun(plan, RunnerConfig(models, args.dtype, args.device, out), force=args.force)
    start = time.perf_counter()
    ray = _ray_settings(args)
    quiet = ray is not None and not args.verbose and run.to_run
    with _others_to(out / "logs" / RAY_DRIVER_LOG if quiet else None) as console:
        progress = _BatchProgress(console, not args.no_progress, len(run.to_run), len(run.done), len(run.refused))
        try:
            summary = run.execute(progress, ray)
        finally:
            progress.close()
    print(_summary_line(summary, run, out, time.perf_counter() - start))
    return 0 if summary.all_ok else EXIT_SOME_FAILED


def _ray_settings(args: argparse.Namespace):
    if args.ray is None:
        return None
    from .batch.interfaces import RaySettings

    return RaySettings(
        address=args.ray,
        workers=args.workers,
        gpus_per_worker=args.gpus_per_worker,
        cpus_per_worker=args.cpus_per_worker,
        retries=args.retries,
        verbose=args.verbose,
    )


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def _summary_line(summary, run: BatchRun, out: Path, seconds: float) -> str:
    skipped = f" ({summary.done_before} done before)" if summary.done_before else ""
    if not run.to_run and not run.refused:
        return f"nothing to do: {counted(summary.jobs, 'job')}, all done before (results in {out / 'results.jsonl'})"
    return (
        f"batch: {counted(summary.jobs, 'job')}, {summary.ok} ok{skipped}, {summary.failed} failed, "
        f"in {_duration(seconds)}; results in {out / 'results.jsonl'}"
    )


@contextlib.contextmanager
def _others_to(log: Path | None) -> Iterator[IO[str]]:
    """While the batch runs, send everything else this process prints — Ray's Python and C++ logs, which no
    setting fully silences — to ``log``; yield the terminal's stream for our own bar and lines.

    ``log`` None: nothing is redirected and the stream is stderr."""
    if log is None:
        yield sys.stderr
        return
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    console = os.fdopen(os.dup(saved[2]), "w", buffering=1)
    try:
        with open(log, "a", encoding="utf-8") as sink:
            for fd in saved:
                os.dup2(sink.fileno(), fd)
            try:
                yield console
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                for fd, copy in saved.items():
                    os.dup2(copy, fd)
    finally:
        for copy in saved.values():
            os.close(copy)
        console.close()


class _BatchProgress:
    """The driver's view of a batch (:class:`~relightvid_core.batch.interfaces.BatchEvents`): one bar over the
    jobs on a terminal, else one line per finished job; a failed job is always named with its sentence."""

    def __init__(self, stream: IO[str], enabled: bool, to_run: int, done: int, refused: int):
        from tqdm import tqdm

        self.stream = stream
        self.counts = {"ok": done, "failed": refused}
        self.running_rows: list[int] = []
        self.detail = ""
        self.ended = 0
        self.to_run = to_run
        self.bar: tqdm = tqdm(
            total=to_run + done + refused,
            initial=done + refused,
            desc="jobs",
            unit="job",
            file=stream,
            # Only on a terminal, and only when there is something to run; elsewhere, the lines below.
            disable=None if enabled and to_run else True,
            dynamic_ncols=True,
        )
        self._show()

    def _show(self) -> None:
        running = f", running {len(self.running_rows)}" if self.running_rows else ""
        self.bar.set_postfix_str(f"ok {self.counts['ok']}, failed {self.counts['failed']}{running}{self.detail}")

    def running(self, rows: Sequence[int]) -> None:
        self.running_rows = list(rows)
        self.detail = ""
        self._show()

    def step(self, row: int, info: StepInfo) -> None:
        self.detail = f" (row {row}: step {info.index + 1}/{info.total})"
        self._show()

    def finished(self, record: dict[str, Any]) -> None:
        self.counts[record["status"]] += 1
        self.ended += 1
        self.bar.update(1)
        self._show()
        worker = record.get("worker") or {}
        where = f"{worker.get('host', '?')} {worker.get('device', '')}".strip()
        if record["status"] == "failed":
            self._line(f"row {record['row']} failed: {record['error']}")
        elif self.bar.disable:
            self._line(
                f"[{self.ended}/{self.to_run}] row {record['row']} ok: {record['output']} "
                f"({record['seconds']:.1f} s on {where})"
            )

    def _line(self, text: str) -> None:
        from tqdm import tqdm

        tqdm.write(text, file=self.stream)

    def close(self) -> None:
        self.bar.close()
