"""A few bad inputs through a real ``python -m relightvid_core`` process: the exit status and stderr users see."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from _support.reliability import tree

import relightvid_core

PACKAGE_ROOT = Path(relightvid_core.__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["relight", "--input", "clip.mp4", "--mask", "m", "--text-scale", "nan"], "--text-scale"),
        (["demo", "--output", "taken.txt", "--no-progress"], "is a file"),
    ],
    ids=["nan guidance", "demo onto a file"],
)
def test_a_real_process_exits_2_with_one_line(argv, needle, tmp_path):
    (tmp_path / "taken.txt").write_text("mine")
    before = tree(tmp_path)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PACKAGE_ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-m", "relightvid_core", *argv], cwd=tmp_path, env=environment, capture_output=True, text=True
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert len(lines) == 1 and ": error: " in lines[0] and needle in lines[0], lines
    assert tree(tmp_path) == before
