"""Checks every bad-input case of the reliability suite makes: one error line, no traceback, exit status 2,
nothing left behind, inputs unchanged."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from _support.clips import CLIP_SIZE, ClipFiles

from relightvid_core.cli import EXIT_USER_ERROR, main

# Fast settings for runs that reach the models: 64x64, 2 steps, fixed seed, no bars, never downloading.
TINY_RUN = ["--width", str(CLIP_SIZE), "--height", str(CLIP_SIZE), "--steps", "2", "--seed", "0", "--no-progress"]


def tree(folder: Path) -> dict[str, str]:
    """Relative path → content hash ('dir' for folders) of everything under ``folder``."""
    listing = {}
    for path in sorted(folder.rglob("*")):
        relative = str(path.relative_to(folder))
        listing[relative] = "dir" if path.is_dir() else hashlib.sha1(path.read_bytes()).hexdigest()
    return listing


@dataclass
class Workspace:
    """A test's folders: ``inputs`` (clip files, a models folder) and ``out`` (where outputs go), both watched."""

    root: Path
    clip: ClipFiles
    models: Path
    out: Path

    def relight_args(self, *extra: str, output: Path | None = None) -> list[str]:
        clip = self.clip
        argv = ["relight", "--input", str(clip.video), "--mask", str(clip.masks), "--bg_cond", str(clip.background)]
        output = self.out / "relit.mp4" if output is None else output
        return [*argv, "--output_path", str(output), "--models", str(self.models), "--no-download", *TINY_RUN, *extra]


@dataclass
class Outcome:
    code: int
    out: str
    err: str


def run_cli(argv: list[str], capsys) -> Outcome:
    """``relightvid ARGV`` in process; argparse's exits count as the command's exit status."""
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


def assert_refused(outcome: Outcome, *needles: str, listing: bool = False) -> str:
    """Exit status 2, exactly one error line (no traceback) holding every needle; returns the message.

    ``listing``: the one message that lists several items (the missing model files) goes on over further lines.
    """
    assert "Traceback" not in outcome.err + outcome.out
    lines = outcome.err.strip().splitlines()
    assert outcome.code == EXIT_USER_ERROR, (outcome.code, outcome.err)
    assert lines and lines[0].startswith("relightvid") and ": error: " in lines[0], lines
    assert len(lines) == 1 or (listing and not any(": error: " in line for line in lines[1:])), lines
    message = "\n".join(lines)
    for needle in needles:
        assert needle in message, (needle, message)
    return message
