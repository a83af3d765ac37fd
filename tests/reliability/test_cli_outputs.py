"""Outputs on the command line: checked before any work, created with their folders, never left half-made."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from _support.reliability import assert_refused, run_cli, tree

from relightvid_core import demo, pipeline
from relightvid_core.cli import EXIT_INTERRUPTED
from relightvid_core.video_io import read_video


def _no_work(*args, **kwargs):
    raise AssertionError("the run started work although its outputs cannot be written")


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if the clip is relit: output problems must be found before."""
    monkeypatch.setattr(pipeline, "relight_clip", _no_work)


@pytest.mark.parametrize(
    ("name", "needle"),
    [("relit.gif", ".mp4"), ("relit", "no suffix"), ("relit.avi", ".mov")],
)
def test_a_video_name_the_writer_cannot_make_is_refused(name, needle, workspace, refused, no_work):
    refused(workspace.relight_args(output=workspace.out / name), "output video", needle)


def test_an_output_that_is_a_folder_is_refused(workspace, refused, no_work):
    (workspace.out / "relit.mp4").mkdir()
    refused(workspace.relight_args(), "is a folder")


def test_an_output_under_a_file_is_refused(workspace, refused, no_work):
    (workspace.out / "file").write_text("x")
    refused(workspace.relight_args(output=workspace.out / "file" / "deeper" / "relit.mp4"), "is a file")


def test_an_output_folder_without_permission_is_refused_before_any_work(workspace, refused, no_work, monkeypatch):
    # Tests run as root, whom permissions do not stop; the check asks os.access, so it is asked here.
    locked = str(workspace.out)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: str(path) != locked and real_access(path, mode))
    refused(workspace.relight_args(), "no permission", locked)


@pytest.mark.parametrize(("name", "needle"), [("sheet.gif", "contact sheet"), ("sheet", "no suffix")])
def test_contact_sheet_settings_are_checked_before_the_video_is_written(name, needle, workspace, refused, no_work):
    refused(workspace.relight_args("--contact-sheet", str(workspace.out / name)), needle)


def test_a_contact_sheet_under_a_file_is_refused(workspace, refused, no_work):
    (workspace.out / "file").write_text("x")
    refused(workspace.relight_args("--contact-sheet", str(workspace.out / "file" / "sheet.png")), "is a file")


@pytest.mark.parametrize(("name", "needle"), [("relit.safetensors", ".latent"), ("relit", "no suffix")])
def test_a_latent_file_name_is_checked_before_any_work(name, needle, workspace, refused, no_work):
    refused(workspace.relight_args("--latent", str(workspace.out / name)), "latent file", needle)


def test_missing_output_folders_are_created_and_the_run_is_quiet(workspace, capsys):
    output, sheet = workspace.out / "new" / "deeper" / "relit.mp4", workspace.out / "sheets" / "sheet.png"
    latent = workspace.out / "latents" / "relit.latent"
    argv = workspace.relight_args("--contact-sheet", str(sheet), "--latent", str(latent), output=output)
    outcome = run_cli(argv, capsys)
    assert outcome.code == 0, outcome.err
    assert outcome.err == ""  # quiet: no library warning block, no "Loading weights" bar with --no-progress
    assert read_video(output)[0].shape[0] == 6 and sheet.is_file() and latent.is_file()
    assert not [path for path in workspace.out.rglob(".*")]  # no temporary file left


def test_a_failed_run_leaves_no_file_or_folder_and_keeps_an_existing_output(workspace, capsys, monkeypatch):
    existing = workspace.out / "relit.mp4"
    existing.write_bytes(b"an earlier result")
    before = tree(workspace.root)
    # The contact sheet fails to write after the video (and the latent file) have been written under their
    # temporary names.
    monkeypatch.setattr(pipeline, "contact_sheet", lambda *args: np.full((8, 8, 3), np.nan, np.float32))
    argv = workspace.relight_args(
        "--latent", str(workspace.out / "latents" / "relit.latent"), "--contact-sheet", str(workspace.out / "new" / "sheet.png")
    )
    assert_refused(run_cli(argv, capsys), "NaN")
    assert tree(workspace.root) == before


def test_an_interrupted_run_leaves_nothing(workspace, capsys, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "relight_clip", interrupt)
    before = tree(workspace.root)
    outcome = run_cli(workspace.relight_args(output=workspace.out / "new" / "relit.mp4"), capsys)
    assert outcome.code == EXIT_INTERRUPTED and "Traceback" not in outcome.err
    assert tree(workspace.root) == before


def test_nan_from_sampling_is_refused_not_written_black(workspace, capsys, monkeypatch):
    original = pipeline.sample
    monkeypatch.setattr(pipeline, "sample", lambda *args, **kwargs: original(*args, **kwargs) * float("nan"))
    before = tree(workspace.root)
    assert_refused(run_cli(workspace.relight_args(), capsys), "NaN", "--dtype fp32")
    assert tree(workspace.root) == before


def test_demo_into_an_existing_file_is_refused(workspace, refused):
    target = workspace.out / "demo.txt"
    target.write_text("mine")
    refused(["demo", "--output", str(target), "--no-progress"], "is a file")


def test_a_failed_demo_leaves_no_folder(workspace, capsys, monkeypatch):
    def fail(*args, **kwargs):
        raise pipeline.InputError("stopped on purpose.")

    monkeypatch.setattr(demo, "run_video_job", fail)
    before = tree(workspace.root)
    assert_refused(run_cli(["demo", "--output", str(workspace.out / "a" / "demo"), "--no-progress"], capsys), "on purpose")
    assert tree(workspace.root) == before


def test_an_interrupted_demo_keeps_an_earlier_demo_untouched(workspace, capsys, monkeypatch):
    folder = workspace.out / "demo"
    folder.mkdir()
    (folder / "relit.mp4").write_bytes(b"earlier demo")

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "run_video_job", interrupt)
    before = tree(workspace.root)
    assert run_cli(["demo", "--output", str(folder), "--no-progress"], capsys).code == EXIT_INTERRUPTED
    assert tree(workspace.root) == before


# --- relightvid metrics --plot: written like every other output ---------------------------------------------


def _metrics_args(workspace, plot):
    return ["metrics", str(workspace.clip.video), "--plot", str(plot)]


def test_metrics_plot_into_missing_folders_is_written(workspace, capsys):
    plot = workspace.out / "new" / "deeper" / "plot.png"
    outcome = run_cli(_metrics_args(workspace, plot), capsys)
    assert outcome.code == 0, outcome.err
    assert plot.is_file() and f"wrote {plot}" in outcome.out
    assert not [path for path in workspace.out.rglob(".*")]  # no temporary file left


def test_metrics_plot_into_a_folder_without_permission_is_refused(workspace, refused, monkeypatch):
    # Tests run as root, whom permissions do not stop; the check asks os.access, so it is asked here.
    locked = str(workspace.out)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: str(path) != locked and real_access(path, mode))
    refused(_metrics_args(workspace, workspace.out / "plot.png"), "--plot image", "no permission", locked)


def test_metrics_plot_the_disk_refuses_is_one_line(workspace, refused, monkeypatch):
    # The folder passes the check, then writing fails (a read-only mount, a full disk): no traceback, no file.
    def read_only(path, data):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(Path, "write_bytes", read_only)
    plot = workspace.out / "new" / "plot.png"
    refused(_metrics_args(workspace, plot), f"{plot} cannot be written", "Permission denied")


@pytest.mark.parametrize(("name", "needle"), [("plot.gif", ".png"), ("plot", "no suffix")])
def test_metrics_plot_name_the_writer_cannot_make_is_refused(name, needle, workspace, refused):
    refused(_metrics_args(workspace, workspace.out / name), needle)
