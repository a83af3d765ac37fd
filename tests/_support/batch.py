"""Batch tests' material: tiny models, clips, manifests and a way to run ``relightvid batch``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from _support.clips import CLIP_SIZE, ClipFiles, write_clip
from relightvid_core.cli import main
from relightvid_core.video_io import read_video

REPO = Path(__file__).resolve().parents[2]
# Every job of these tests: the tiny models at 64x64, 2 steps, no downloads.
TINY_DEFAULTS = ["--size-policy", "cover", "--width", str(CLIP_SIZE), "--height", str(CLIP_SIZE), "--steps", "2"]


def write_tiny_models(folder: Path) -> Path:
    """``relightvid convert --tiny-demo``: a complete models folder of tiny networks."""
    assert main(["convert", "--tiny-demo", str(folder)]) == 0
    return folder


def write_clips(folder: Path, count: int, frames: int = 6) -> list[ClipFiles]:
    return [write_clip(folder / f"clip{k}", frames=frames) for k in range(count)]


def write_jsonl(path: Path, rows: Sequence[dict]) -> Path:
    # allow_nan: a NaN in a row is what a user's tool may write; the row must be refused, not the file.
    path.write_text("".join(json.dumps(row, allow_nan=True) + "\n" for row in rows), encoding="utf-8")
    return path


def clip_row(clip: ClipFiles, output: str, relative_to: Path | None = None, **values) -> dict:
    def where(path: Path) -> str:
        return str(path.relative_to(relative_to)) if relative_to is not None else str(path)

    return {
        "input": where(clip.video),
        "mask": where(clip.masks),
        "bg_cond": where(clip.background),
        "output": output,
        **values,
    }


def batch_args(manifest: Path, out: Path, models: Path, *extra: str) -> list[str]:
    return ["batch", str(manifest), "--out", str(out), "--models", str(models), "--no-download", *TINY_DEFAULTS, *extra]


def run_batch(manifest: Path, out: Path, models: Path, *extra: str) -> int:
    """``relightvid batch`` in this process; its exit status."""
    return main(batch_args(manifest, out, models, "--no-progress", *extra))


def start_batch(manifest: Path, out: Path, models: Path, *extra: str) -> subprocess.Popen:
    """``relightvid batch`` as its own process (to be interrupted), its output in pipes.

    Its SIGINT is reset to the default: a shell that starts the test run in the background hands its children an
    ignored SIGINT, and Python then never turns SIGINT into KeyboardInterrupt.
    """
    return subprocess.Popen(
        [sys.executable, "-m", "relightvid_core", *batch_args(manifest, out, models, "--no-progress", *extra)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def results(out: Path) -> list[dict]:
    path = out / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def by_row(out: Path) -> dict[int, dict]:
    """The last record of each row."""
    return {record["row"]: record for record in results(out)}


def frames(path: Path) -> np.ndarray:
    return read_video(path)[0].numpy()


def partial_files(folder: Path) -> list[Path]:
    """Files staged by a writer and never renamed (``outputs.staging_name``)."""
    return sorted(path for path in folder.rglob(".*.partial*"))


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` with its size and modification time."""
    return {
        str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
