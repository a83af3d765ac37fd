"""Reading a batch manifest: one job per row, as JSON Lines (``.jsonl``) or CSV (``.csv``).

Only the file's structure is read here; what the values mean is :mod:`.plan`'s job. Rows are numbered from 1
in the order they appear (blank lines are not rows), and every message names a row by that number.
A row that cannot be read (a JSON line that is not an object) becomes a row with a problem, so it fails
alone; a CSV header naming an unknown column makes the whole manifest unusable, since every row has it.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError

FORMATS = {".jsonl": "JSON Lines", ".ndjson": "JSON Lines", ".csv": "CSV"}


@dataclass(frozen=True)
class ManifestRow:
    """Row ``number`` (from 1): its ``values`` by column (empty cells left out), or the ``problem`` that kept
    it from being read."""

    number: int
    values: dict[str, object] = field(default_factory=dict)
    problem: str | None = None


def unknown_column_problem(column: str, known: Collection[str]) -> str:
    """The sentence for a column that names no option, with the nearest option's name when one is close."""
    close = difflib.get_close_matches(column, sorted(known), n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return (
        f"unknown column {column!r}: {hint}columns are relight's option names with _ for - "
        "(input, mask, bg_cond, prompt, seed, steps, ...) plus output."
    )


def read_manifest(path: str | Path, known_columns: Collection[str]) -> list[ManifestRow]:
    """Read every row of the manifest at ``path``.

    Args:
        path: a ``.jsonl``/``.ndjson`` (one JSON object per line) or ``.csv`` (a header row of column names)
            file, in UTF-8.
        known_columns: the column names the caller understands; a CSV header naming another is refused.

    Returns:
        The rows, numbered from 1.

    Raises:
        InputError: the file is missing, unreadable, of another kind, has no row, or (CSV) its header names
            an unknown column or no column twice.
    """
    path = Path(path).expanduser()
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise InputError(
            f"the manifest {path} must be JSON Lines (.jsonl, .ndjson) or CSV (.csv), "
            f"got {path.suffix or 'no suffix'!r}."
        )
    if not path.is_file():
        raise InputError(f"the manifest {path} does not exist or is not a file.")
    try:
        # utf-8-sig: spreadsheets often save CSV with a byte-order mark, which would stick to the first column.
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(f"the manifest {path} is not UTF-8 text ({error.reason} at byte {error.start}).") from error
    except OSError as error:
        raise InputError(f"the manifest {path} cannot be read ({error.strerror or error}).") from error
    rows = _json_lines(text) if kind == "JSON Lines" else _csv_rows(text, path, known_columns)
    if not rows:
        raise InputError(f"the manifest {path} holds no row; give one job per {'line' if kind != 'CSV' else 'row'}.")
    return rows


def _json_lines(text: str) -> list[ManifestRow]:
    rows: list[ManifestRow] = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        number = len(rows) + 1
        try:
            values = json.loads(line)
        except json.JSONDecodeError as error:
            rows.append(
                ManifestRow(number, problem=f"line {line_number} is not JSON ({error.msg}, column {error.colno}).")
            )
            continue
        if not isinstance(values, dict):
            rows.append(ManifestRow(number, problem=f"line {line_number} is not a JSON object ({{...}}) of columns."))
            continue
        rows.append(ManifestRow(number, {key: value for key, value in values.items() if value is not None}))
    return rows


def _csv_rows(text: str, path: Path, known_columns: Collection[str]) -> list[ManifestRow]:
    # newline="": a quoted cell may hold line breaks (a multi-line prompt); csv splits the records itself.
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        return []
    header = [name.strip() for name in header]
    for name in header:
        if name not in known_columns:
            raise InputError(f"the manifest {path}'s header: {unknown_column_problem(name, known_columns)}")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise InputError(f"the manifest {path}'s header names {', '.join(repeated)} more than once.")
    rows: list[ManifestRow] = []
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        number = len(rows) + 1
        if len(cells) > len(header):
            rows.append(
                ManifestRow(number, problem=f"has {len(cells)} cells but the header names {len(header)} columns.")
            )
            continue
        rows.append(
            ManifestRow(number, {name: cell for name, cell in zip(header, cells, strict=False) if cell.strip()})
        )
    return rows
