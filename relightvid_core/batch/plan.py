"""Turning manifest rows into jobs, every one checked before any model loads.

A row's columns are ``relight``'s options (``--bg-fit`` is column ``bg_fit``) plus ``output``: each value is
parsed by the option's own type (:mod:`relightvid_core.options`), so it is refused with the sentence ``relight``
would give, then laid over the command line's values (a row that names a lighting source replaces the command
line's). Paths a row reads are relative to the manifest's folder; the files it writes must stay inside the
batch's output folder. Then every file the job reads is opened, its size plan made, and a seed drawn for a
row without one. A row that fails any of this becomes a :class:`Refusal` naming the row and the column; the
other rows go on.

Each job carries a ``key``: a digest of everything that decides its result (its resolved options, the model
files, the precision) but not of a seed that was drawn for it, so a rerun recognises a job already done.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path, PurePath
from typing import Any, TypeVar

from ..errors import InputError
from ..options import (
    INPUT_PATHS,
    LIGHTING_OPTIONS,
    OUTPUT_PATHS,
    SWITCHES,
    OptionError,
    add_job_options,
    flag,
    job_from_options,
)
from .manifest import ManifestRow, unknown_column_problem

# Batch-wide options: one set of models, one precision and one device serve every job.
BATCH_WIDE = ("models", "sd", "iclight", "motion", "merged", "motion_variant", "no_download", "dtype", "device")
# Options taking several values: a JSON list, or one text of values separated by commas or spaces.
LIST_OPTIONS = ("light_color", "iie")
TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")
SEED_BITS = 63  # as the library draws seeds
T = TypeVar("T")


@dataclass(frozen=True)
class BatchJob:
    """One checked job.

    Attributes:
        row: its manifest row.
        options: ``relight``'s options for it, resolved (absolute paths as text, the seed drawn if it had none).
        output, contact_sheet, latent: its files as the row names them, relative to the batch's output folder.
        seed_drawn: the seed in ``options`` was drawn for this run (the row gave none).
        key: digest of its settings (module docstring).
    """

    row: int
    options: dict[str, Any]
    output: str
    contact_sheet: str | None
    latent: str | None
    seed_drawn: bool
    key: str

    @property
    def seed(self) -> int:
        return self.options["seed"]

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> BatchJob:
        return cls(**json.loads(text))

    def library_job(self):
        """The :class:`~relightvid_core.pipeline.VideoJob` and settings these options describe."""
        return job_from_options(self.options)

    def targets(self) -> list[Path]:
        """The absolute paths of the files the job writes."""
        return [Path(self.options[name]) for name in OUTPUT_PATHS if self.options.get(name) is not None]


@dataclass(frozen=True)
class Refusal:
    """A row that cannot run: ``problem`` is one sentence about ``column`` (None: the row as a whole)."""

    row: int
    column: str | None
    problem: str
    output: str | None
    key: str

    def __str__(self) -> str:
        where = f"row {self.row}" if self.column is None else f"row {self.row}, column {self.column}"
        return f"{where}: {self.problem}"


@dataclass(frozen=True)
class BatchPlan:
    """The manifest's rows, checked: the ``jobs`` that can run and the ``refused`` rows, both in row order."""

    jobs: list[BatchJob]
    refused: list[Refusal]


class _RowProblem(Exception):
    def __init__(self, column: str | None, problem: str):
        super().__init__(problem)
        self.column = column
        self.problem = problem


def job_columns() -> list[str]:
    """Every column a row may have: relight's per-job options (``output`` for its output) and nothing else."""
    parser = argparse.ArgumentParser(add_help=False)
    add_job_options(parser, official_defaults=False)
    return sorted(vars(parser.parse_args([])))


def _flag(column: str) -> str:
    return "--output" if column == "output" else flag(column)


class _RowParser(argparse.ArgumentParser):
    """relight's option parser for one row: defaults left out, errors raised (naming the column) instead of
    printed."""

    def __init__(self, columns: list[str]):
        super().__init__(add_help=False)
        add_job_options(self, official_defaults=False, with_defaults=False)
        self.columns_by_flag = {_flag(column): column for column in columns}

    def error(self, message: str):
        found = re.match(r"argument (\S+?)(?:/\S+)?: (.*)", message)
        if found is None:
            raise _RowProblem(None, f"{message}.")
        option_flag, problem = found.groups()
        raise _RowProblem(self.columns_by_flag.get(option_flag), f"{problem}.")


def _switch(column: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS + FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    raise _RowProblem(column, f"expected true or false, got {json.dumps(value)}.")


def _text(value: object) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _tokens(column: str, value: object) -> list[str]:
    """The command-line words that give ``column`` the row's ``value``."""
    option_flag = _flag(column)
    if column in LIST_OPTIONS:
        if column == "iie" and not isinstance(value, list) and str(value).strip().lower() in TRUE_WORDS:
            return [option_flag]  # IIE over its default factors, as ``--iie`` alone
        items = value if isinstance(value, list) else re.split(r"[,\s]+", str(value).strip())
        if any(isinstance(item, (bool, list, dict)) for item in items):
            raise _RowProblem(column, f"expected numbers, got {json.dumps(value)}.")
        return [option_flag, *map(_text, items)]
    if isinstance(value, (bool, list, dict)):
        raise _RowProblem(column, f"expected one value, got {json.dumps(value)}.")
    # --name=value: a value that starts with "-" (a prompt, a negative angle) is not taken for an option.
    return [f"{option_flag}={_text(value)}"]


class RowReader:
    """Parses rows with relight's own option types."""

    def __init__(self) -> None:
        self.columns = job_columns()
        self.parser = _RowParser(self.columns)

    def given(self, values: Mapping[str, object]) -> dict[str, Any]:
        """The options a row gives, parsed; only its own columns (no defaults).

        Raises:
            _RowProblem: an unknown or batch-wide column, two lighting sources, or a value its option refuses.
        """
        for column in values:
            if column in BATCH_WIDE:
                raise _RowProblem(
                    column, f"is batch-wide: give it once, on the command line ({flag(column)}), not per row."
                )
            if column not in self.columns:
                raise _RowProblem(None, unknown_column_problem(column, self.columns))
        lighting = [column for column in LIGHTING_OPTIONS if column in values]
        if len(lighting) > 1:
            raise _RowProblem(lighting[1], f"this row also names {lighting[0]}; give one lighting source per row.")
        switches = {column: _switch(column, value) for column, value in values.items() if column in SWITCHES}
        iie_off = (
            "iie" in values
            and not isinstance(values["iie"], list)
            and str(values["iie"]).strip().lower() in FALSE_WORDS
        )
        words = [
            word
            for column, value in values.items()
            if column not in SWITCHES and not (column == "iie" and iie_off)
            for word in _tokens(column, value)
        ]
        given = vars(self.parser.parse_args(words))
        if iie_off:
            given["iie"] = None
        return {**given, **switches}


def _inside(folder: Path, column: str, value: object) -> Path:
    """``folder / value`` for a path the job writes, refusing one that leaves ``folder``."""
    text = str(value)
    relative = PurePath(text)
    if relative.is_absolute() or text.startswith("~") or ".." in relative.parts or not relative.parts:
        raise _RowProblem(column, f"must be a path inside the output folder (relative, without '..'), got {text!r}.")
    return folder / relative


def _as_column(column: str, check: Callable[[], T]) -> T:
    """Run ``check``, turning what it refuses into a problem of ``column``."""
    try:
        return check()
    except OptionError:
        raise
    except InputError as error:
        raise _RowProblem(column, str(error)) from error


def _digest(value: object) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _json_safe(options: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: str(value) if isinstance(value, PurePath) else list(value) if isinstance(value, tuple) else value
        for name, value in options.items()
    }


def _check_files(job) -> None:
    """Open what the job reads and check where it writes, naming the column at fault."""
    from ..conditioning import plan_geometry
    from ..contact_sheet import IMAGE_SUFFIXES
    from ..latent_file import LATENT_SUFFIXES
    from ..outputs import check_destination
    from ..pipeline import BackgroundFile, EnvironmentMap
    from ..video_io import VIDEO_FORMATS, mask_folder_files, probe_video, read_image, read_mask, read_video

    _as_column("output", lambda: check_destination(job.output, "output video", VIDEO_FORMATS))
    if job.contact_sheet is not None:
        _as_column("contact_sheet", lambda: check_destination(job.contact_sheet, "contact sheet", IMAGE_SUFFIXES))
    if job.latent is not None:
        _as_column("latent", lambda: check_destination(job.latent, "latent file", LATENT_SUFFIXES))
    first = _as_column("input", lambda: read_video(job.input, 1)[0])
    frames = _as_column("input", lambda: probe_video(job.input).frame_count)
    count = frames if job.max_frames is None else min(frames, job.max_frames)
    masks = _as_column("mask", lambda: mask_folder_files(job.mask, count, allow_extra=job.max_frames is not None))
    _as_column("mask", lambda: read_mask(masks[0]))
    lighting = job.lighting
    if isinstance(lighting, BackgroundFile):
        path = Path(lighting.path)
        opener = read_image if path.suffix.lower() in IMAGE_SUFFIXES else lambda p: read_video(p, 1)
        _as_column("bg_cond", lambda: opener(path))
    elif isinstance(lighting, EnvironmentMap):
        from ..conditioning import read_env_map

        _as_column("hdr", lambda: read_env_map(lighting.path))
    try:
        plan_geometry(first.shape[1], first.shape[2], job.size_policy, job.width, job.height)
    except InputError as error:
        side = str(error).split(" ", 1)[0]
        raise _RowProblem(side if side in ("width", "height") else "size_policy", str(error)) from error


class Planner:
    """Checks rows against the command line's options (module docstring)."""

    def __init__(self, defaults: Mapping[str, Any], manifest_folder: Path, out: Path, context: Mapping[str, Any]):
        """
        Args:
            defaults: the command line's value of every per-job option but the job's own files.
            manifest_folder: where relative input paths of rows start.
            out: the batch's output folder (absolute).
            context: batch-wide settings that change results (model files, precision), part of every key.
        """
        self.reader = RowReader()
        self.defaults = {**dict.fromkeys(("input", "mask", *OUTPUT_PATHS)), **defaults}
        self.manifest_folder = manifest_folder
        self.out = out
        self.context = dict(context)

    def plan(self, rows: list[ManifestRow]) -> BatchPlan:
        """Check every row; a row whose output another row already writes is refused too."""
        jobs: list[BatchJob] = []
        refused: list[Refusal] = []
        writers: dict[Path, int] = {}
        for row in rows:
            try:
                job = self._job(row)
                for column, target in zip(OUTPUT_PATHS, (job.output, job.contact_sheet, job.latent), strict=True):
                    path = self.out / target if target is not None else None
                    if path is not None and path in writers:
                        raise _RowProblem(
                            column, f"{target} is also written by row {writers[path]}; give each row its own files."
                        )
                for path in job.targets():
                    writers[path] = row.number
                jobs.append(job)
            except (_RowProblem, InputError) as error:
                # _RowProblem and OptionError name their column; any other refusal of the library, the row.
                column = getattr(error, "column", None) or getattr(error, "option", None)
                problem = getattr(error, "problem", str(error))
                output = row.values.get("output")
                refused.append(
                    Refusal(row.number, column, problem, None if output is None else str(output), self._raw_key(row))
                )
        return BatchPlan(jobs, refused)

    def _raw_key(self, row: ManifestRow) -> str:
        return _digest({"row": row.number, "values": row.values, "defaults": _json_safe(self.defaults), **self.context})

    def _job(self, row: ManifestRow) -> BatchJob:
        if row.problem is not None:
            raise _RowProblem(None, row.problem)
        given = self.reader.given(row.values)
        options = dict(self.defaults)
        if any(column in given for column in LIGHTING_OPTIONS):
            options.update(dict.fromkeys(LIGHTING_OPTIONS))  # the row's lighting replaces the command line's
        options.update(given)
        for column in INPUT_PATHS:
            if options.get(column) is not None:
                start = self.manifest_folder if column in given else Path.cwd()
                options[column] = (start / Path(options[column]).expanduser()).absolute()
        for column in ("input", "output"):
            if options.get(column) is None:
                raise _RowProblem(
                    column,
                    "is missing; every row needs its "
                    + ("foreground video." if column == "input" else "output video, relative to --out."),
                )
        for column in OUTPUT_PATHS:
            if column in given:
                options[column] = _inside(self.out, column, given[column])
        seed_drawn = options.get("seed") is None
        if seed_drawn:
            options["seed"] = secrets.randbits(SEED_BITS)
        safe = _json_safe(options)
        job, _settings = job_from_options(safe)
        _check_files(job)
        key = _digest({"options": {**safe, "seed": None if seed_drawn else safe["seed"]}, **self.context})
        sheet, latent = (given.get(column) for column in ("contact_sheet", "latent"))
        return BatchJob(
            row.number,
            safe,
            str(given["output"]),
            None if sheet is None else str(sheet),
            None if latent is None else str(latent),
            seed_drawn,
            key,
        )
